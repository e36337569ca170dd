//! `command.run` figures of issue 5: the cost of `true` under the full sandbox next to a bare
//! `std::process::Command::new("true").status()`, and the kill latency of a 50-process tree —
//! from its deadline to the call returning with every process reaped.
//!
//! Run: `cargo bench -p codeward-tools --bench command`.

use std::path::Path;
use std::time::{Duration, Instant};

use codeward_tools::CallIds;
use codeward_tools::command::{self, CommandLine, CommandRequest, EnvInputs, NetRule};
use codeward_tools::sandbox::{self, SandboxPlan};
use criterion::{Criterion, criterion_group, criterion_main};
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

fn spawn_true(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("root");
    let data = tempfile::tempdir().expect("data");
    let root_path = root.path().canonicalize().expect("canonical");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    eprintln!("os sandbox: {:?}", sandbox::probe());
    let mut g = c.benchmark_group("spawn_true");
    g.bench_function("bare_std_command", |b| {
        b.iter(|| std::process::Command::new("true").status().expect("true"));
    });
    g.bench_function("command_run_full_sandbox", |b| {
        b.iter(|| {
            let req = request(
                &root_path,
                data.path(),
                CommandLine::Argv(vec!["true".into()]),
                Duration::from_secs(10),
            );
            let out = rt
                .block_on(command::run(req, CancellationToken::new()))
                .expect("runs");
            assert_eq!(out.exit_code, Some(0));
        });
    });
    g.finish();
}

fn kill_latency(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("root");
    let data = tempfile::tempdir().expect("data");
    let root_path = root.path().canonicalize().expect("canonical");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
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
                // The deadline starts after the fork, so this slightly overstates the latency.
                total += elapsed.saturating_sub(timeout);
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, spawn_true, kill_latency);
criterion_main!(benches);
