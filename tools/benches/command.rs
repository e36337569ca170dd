//! `command.run` figures of issue 5: the cost of `true` under the full sandbox next to a bare
//! spawn-and-wait of `true`, and the kill latency of a 50-process tree — from its deadline to the
//! call returning with every process reaped.
//!
//! The fair baseline is `bare_std_output_piped`: `std::process::Command` on the same resolved
//! binary (`/usr/bin/true`, which `command.run` finds on its `PATH` `/usr/bin:/bin`), the same
//! cleared environment, stdin `/dev/null`, stdout and stderr piped and drained (`output()`), as
//! `command.run` does. `bare_std_status` is `Command::new("true").status()` (inherited stdio,
//! `PATH` search by libc) for reference. `command.run` is driven from a task on a multi-thread
//! runtime, as the daemon calls it. After the criterion groups a summary line gives the medians
//! of interleaved rounds and the ratio.
//!
//! Run: `cargo bench -p codeward-tools --bench command`.

use std::path::Path;
use std::time::{Duration, Instant};

use codeward_tools::CallIds;
use codeward_tools::command::{self, CommandLine, CommandRequest, EnvInputs, NetRule};
use codeward_tools::sandbox::{self, SandboxPlan};
use criterion::{Criterion, criterion_group};
use tokio_util::sync::CancellationToken;

fn request(root: &Path, data: &Path, program: CommandLine, timeout: Duration) -> CommandRequest {
    let scratch = data.join("tmp").join("bench-call");
    let ids = CallIds::default();
    let env = command::build_env(&EnvInputs {
        command_path: "/usr/bin:/bin",
        scratch_dir: &scratch,
        ids: &ids,
        inherit: &[],
        call_env: &[],
    });
    CommandRequest {
        program,
        cwd: root.to_path_buf(),
        env,
        stdin: None,
        timeout,
        max_output_bytes: 64 * 1024,
        sandbox: SandboxPlan {
            read_paths: sandbox::default_read_paths(),
            read_write_paths: vec![root.to_path_buf()],
            net: NetRule::DenyAll,
            ..SandboxPlan::default()
        },
        scratch_dir: scratch,
    }
}

/// The fair bare spawn-and-wait: same binary, same env, same stdio as `command.run`.
fn bare_piped(env: &[(String, String)]) {
    let out = std::process::Command::new("/usr/bin/true")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("true");
    assert!(out.status.success());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `true` through `command.run` `iters` times in one task; the time of each call.
fn command_run_times(
    rt: &tokio::runtime::Runtime,
    root: &Path,
    data: &Path,
    iters: u64,
) -> Vec<Duration> {
    let (root, data) = (root.to_path_buf(), data.to_path_buf());
    rt.block_on(rt.spawn(async move {
        let mut times = Vec::new();
        for _ in 0..iters {
            let req = request(
                &root,
                &data,
                CommandLine::Argv(vec!["true".into()]),
                Duration::from_secs(10),
            );
            let start = Instant::now();
            let out = command::run(req, CancellationToken::new())
                .await
                .expect("runs");
            times.push(start.elapsed());
            assert_eq!(out.exit_code, Some(0));
        }
        times
    }))
    .expect("bench task")
}

fn spawn_true(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("root");
    let data = tempfile::tempdir().expect("data");
    let root_path = root.path().canonicalize().expect("canonical");
    let rt = runtime();
    let env = request(
        &root_path,
        data.path(),
        CommandLine::Argv(vec![]),
        Duration::ZERO,
    )
    .env;
    eprintln!("os sandbox: {:?}", sandbox::probe());
    let mut g = c.benchmark_group("spawn_true");
    g.bench_function("bare_std_status", |b| {
        b.iter(|| std::process::Command::new("true").status().expect("true"));
    });
    g.bench_function("bare_std_output_piped", |b| b.iter(|| bare_piped(&env)));
    g.bench_function("command_run_full_sandbox", |b| {
        b.iter_custom(|iters| {
            command_run_times(&rt, &root_path, data.path(), iters)
                .iter()
                .sum()
        });
    });
    g.finish();
}

fn kill_latency(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("root");
    let data = tempfile::tempdir().expect("data");
    let root_path = root.path().canonicalize().expect("canonical");
    let rt = runtime();
    let timeout = Duration::from_millis(400);
    let script = "for i in $(seq 1 49); do sleep 1000 & done; sleep 1000";
    let mut g = c.benchmark_group("tree_kill");
    g.sample_size(10);
    g.bench_function("deadline_to_all_reaped_50_procs", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let req = request(
                    &root_path,
                    data.path(),
                    CommandLine::Shell {
                        shell: "/bin/sh".into(),
                        script: script.into(),
                    },
                    timeout,
                );
                let start = Instant::now();
                let err = rt
                    .block_on(command::run(req, CancellationToken::new()))
                    .expect_err("times out");
                let elapsed = start.elapsed();
                assert!(err.terminated_process_count() >= 50, "{err}");
                // The deadline starts after the handoff, so this slightly overstates the latency.
                total += elapsed.saturating_sub(timeout);
            }
            total
        });
    });
    g.finish();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Interleaved rounds of the fair baseline and `command.run` (so both see the same machine
/// load), then one line: both medians and their ratio.
fn ratio_summary() {
    let root = tempfile::tempdir().expect("root");
    let data = tempfile::tempdir().expect("data");
    let root_path = root.path().canonicalize().expect("canonical");
    let rt = runtime();
    let env = request(
        &root_path,
        data.path(),
        CommandLine::Argv(vec![]),
        Duration::ZERO,
    )
    .env;
    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..30 {
        for _ in 0..50 {
            let start = Instant::now();
            bare_piped(&env);
            bare.push(start.elapsed());
        }
        ours.extend(command_run_times(&rt, &root_path, data.path(), 50));
    }
    let (bare, ours) = (median(bare), median(ours));
    println!(
        "spawn_true summary: bare_std_output_piped median {:.0} µs, command_run_full_sandbox \
         median {:.0} µs, ratio {:.2}",
        bare.as_secs_f64() * 1e6,
        ours.as_secs_f64() * 1e6,
        ours.as_secs_f64() / bare.as_secs_f64()
    );
}

criterion_group!(benches, spawn_true, kill_latency);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs each bench once in test mode: no summary there.
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        ratio_summary();
    }
}
