//! `command.run` against real processes: argv and shell forms, exit codes and signals,
//! head+tail truncation, spawn failures, and the attacks of issue 5 — process trees that fork,
//! `setsid` and double-fork past a timeout or cancel, leftovers after a normal exit, writes and
//! reads outside the sandbox, TCP connects with egress denied, signalling codeward.
//!
//! Every test that starts a tree marks it with a unique `CW_TREE_MARK` env var and a guard that
//! SIGKILLs any process still carrying it, so nothing leaks even when an assertion fails.

#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use codeward_tools::CallIds;
use codeward_tools::command::{
    self, CommandError, CommandLine, CommandOutput, CommandRequest, EnvInputs, NetRule,
};
use codeward_tools::sandbox::{self, SandboxLevel, SandboxPlan};
use tokio_util::sync::CancellationToken;

/// A project root, a data dir and a unique marker for one test.
struct Fixture {
    root: tempfile::TempDir,
    data: tempfile::TempDir,
    mark: String,
}

impl Fixture {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("root tempdir");
        let data = tempfile::tempdir().expect("data tempdir");
        let mark = format!(
            "cwmark{}x{}",
            std::process::id(),
            root.path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("r")
                .replace('.', "")
        );
        Self { root, data, mark }
    }

    fn root(&self) -> PathBuf {
        self.root.path().canonicalize().expect("canonical root")
    }

    fn request(&self, program: CommandLine) -> CommandRequest {
        let scratch = self.data.path().join("tmp").join("call-1");
        let ids = CallIds {
            project_id: "proj".into(),
            conversation_id: Some("conv".into()),
            correlation_id: "corr".into(),
            tool_call_id: "call-1".into(),
        };
        let call_env = vec![("CW_TREE_MARK".to_owned(), self.mark.clone())];
        let env = command::build_env(&EnvInputs {
            command_path: "/usr/local/bin:/usr/bin:/bin",
            scratch_dir: &scratch,
            ids: &ids,
            inherit: &[],
            call_env: &call_env,
        });
        CommandRequest {
            program,
            cwd: self.root(),
            env,
            stdin: None,
            timeout: Duration::from_secs(30),
            max_output_bytes: 64 * 1024,
            sandbox: SandboxPlan {
                read_paths: sandbox::default_read_paths(),
                read_write_paths: vec![self.root()],
                net: NetRule::DenyAll,
                ..SandboxPlan::default()
            },
            scratch_dir: scratch,
        }
    }

    fn shell(&self, script: &str) -> CommandRequest {
        self.request(CommandLine::Shell {
            shell: "/bin/sh".into(),
            script: script.to_owned(),
        })
    }

    /// Pids of live (non-zombie) processes whose environment carries this fixture's marker.
    fn marked_pids(&self) -> Vec<i32> {
        let needle = format!("CW_TREE_MARK={}", self.mark);
        let mut pids = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return pids;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            if zombie {
                continue;
            }
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            if environ.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Polls until no marked process is left or `limit` passes; returns the survivors.
    fn survivors_after(&self, limit: Duration) -> Vec<i32> {
        let start = Instant::now();
        loop {
            let left = self.marked_pids();
            if left.is_empty() || start.elapsed() > limit {
                return left;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for pid in self.marked_pids() {
            // SAFETY: signalling a pid we found carrying our marker.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

async fn run(req: CommandRequest) -> Result<CommandOutput, CommandError> {
    command::run(req, CancellationToken::new()).await
}

fn argv(args: &[&str]) -> CommandLine {
    CommandLine::Argv(args.iter().map(|s| (*s).to_owned()).collect())
}

/// A script that starts 50 background children, a `setsid` grandchild and a double-forked
/// grandchild, writes `ready` and hangs.
const TREE: &str = "for i in $(seq 1 50); do sleep 1000 & done; \
    setsid sleep 1000 & \
    ( sleep 1000 & ) ; \
    touch ready; sleep 1000";

fn expected_level() -> SandboxLevel {
    sandbox::probe().level_for(&NetRule::DenyAll)
}

#[tokio::test]
async fn argv_form_runs_and_reports_exit_code() {
    let fx = Fixture::new();
    let out = run(fx.request(argv(&["echo", "hello", "world"])))
        .await
        .expect("runs");
    assert_eq!(
        out,
        CommandOutput {
            exit_code: Some(0),
            signal: None,
            stdout: "hello world\n".into(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            omitted_bytes: 0,
            duration_ms: out.duration_ms,
            terminated_process_count: 0,
            os_sandbox: expected_level(),
        }
    );
}

#[tokio::test]
async fn shell_form_reports_non_zero_exit_and_stderr() {
    let fx = Fixture::new();
    let out = run(fx.shell("echo out; echo err >&2; exit 7"))
        .await
        .expect("runs");
    assert_eq!((out.exit_code, out.signal), (Some(7), None));
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );
}

#[tokio::test]
async fn death_by_signal_is_reported() {
    let fx = Fixture::new();
    let out = run(fx.shell("kill -TERM $$")).await.expect("runs");
    assert_eq!((out.exit_code, out.signal), (None, Some(libc::SIGTERM)));
}

#[tokio::test]
async fn output_keeps_head_and_tail_within_budget() {
    let fx = Fixture::new();
    let mut req = fx.request(argv(&["seq", "1", "100000"]));
    req.max_output_bytes = 1000;
    let out = run(req).await.expect("runs");
    assert!(out.stdout_truncated);
    assert!(!out.stderr_truncated);
    assert!(
        out.stdout.starts_with("1\n2\n3\n"),
        "head kept: {:?}",
        &out.stdout[..20]
    );
    assert!(out.stdout.ends_with("99999\n100000\n"), "tail kept");
    assert!(out.stdout.contains("bytes omitted"));
    let total: u64 = (1..=100_000u64)
        .map(|n| n.to_string().len() as u64 + 1)
        .sum();
    assert_eq!(out.omitted_bytes, total - 1000);
}

#[tokio::test]
async fn stdin_is_dev_null_unless_given() {
    let fx = Fixture::new();
    let out = run(fx.request(argv(&["cat"]))).await.expect("runs");
    assert_eq!((out.exit_code, out.stdout.as_str()), (Some(0), ""));
    let mut req = fx.request(argv(&["cat"]));
    req.stdin = Some(b"piped in".to_vec());
    let out = run(req).await.expect("runs");
    assert_eq!(out.stdout, "piped in");
}

#[tokio::test]
async fn blocking_fifo_read_cannot_hang_the_call() {
    let fx = Fixture::new();
    let fifo = fx.root().join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let mut req = fx.request(argv(&["cat", "fifo"]));
    req.timeout = Duration::from_millis(500);
    let err = run(req).await.expect_err("times out");
    assert!(
        matches!(
            err,
            CommandError::Timeout {
                timeout_ms: 500,
                terminated_process_count: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        fx.survivors_after(Duration::from_secs(5)),
        Vec::<i32>::new()
    );
}

#[tokio::test]
async fn missing_program_and_bad_cwd_fail_to_spawn() {
    let fx = Fixture::new();
    let err = run(fx.request(argv(&["no-such-program-cw"])))
        .await
        .expect_err("fails");
    assert_eq!(err.code(), "spawn_failed");
    let mut req = fx.request(argv(&["true"]));
    req.cwd = fx.root().join("missing-dir");
    let err = run(req).await.expect_err("fails");
    assert!(
        matches!(&err, CommandError::SpawnFailed { message } if message.contains("chdir")),
        "{err}"
    );
}

#[tokio::test]
async fn env_is_the_built_env_and_scratch_is_home() {
    let fx = Fixture::new();
    let req = fx.shell("env; touch \"$TMPDIR/x\" && echo tmp-ok");
    let scratch = req.scratch_dir.clone();
    let out = run(req).await.expect("runs");
    let mut names: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    names.sort_unstable();
    names.retain(|n| *n != "PWD" && *n != "SHLVL" && *n != "_"); // the shell's own
    assert_eq!(
        names,
        [
            "CODEWARD_CONVERSATION_ID",
            "CODEWARD_CORRELATION_ID",
            "CODEWARD_PROJECT_ID",
            "CODEWARD_TOOL_CALL_ID",
            "CW_TREE_MARK",
            "HOME",
            "LANG",
            "PATH",
            "TMPDIR"
        ]
    );
    assert!(
        out.stdout
            .contains(&format!("HOME={}\n", scratch.display()))
    );
    assert!(out.stdout.contains("tmp-ok"));
    assert!(!scratch.exists(), "scratch dir removed after the call");
}

#[tokio::test]
async fn rlimits_apply() {
    let fx = Fixture::new();
    let mut req = fx.shell("ulimit -n; ulimit -c");
    req.sandbox.rlimits.open_files = Some(64);
    let out = run(req).await.expect("runs");
    assert_eq!(out.stdout, "64\n0\n");
}

#[tokio::test]
async fn tree_is_killed_on_timeout() {
    let fx = Fixture::new();
    let mut req = fx.shell(TREE);
    req.timeout = Duration::from_secs(4);
    let err = run(req).await.expect_err("times out");
    assert!(
        fx.root().join("ready").exists(),
        "the tree was complete before the deadline"
    );
    let CommandError::Timeout {
        timeout_ms,
        terminated_process_count,
    } = err
    else {
        panic!("expected timeout, got {err:?}");
    };
    assert_eq!(timeout_ms, 4000);
    assert!(
        terminated_process_count >= 52,
        "killed {terminated_process_count}"
    );
    assert_eq!(
        fx.survivors_after(Duration::from_secs(5)),
        Vec::<i32>::new()
    );
}

#[tokio::test]
async fn tree_is_killed_on_cancel() {
    let fx = Fixture::new();
    let cancel = CancellationToken::new();
    let ready = fx.root().join("ready");
    let task = tokio::spawn(command::run(fx.shell(TREE), cancel.clone()));
    let start = Instant::now();
    while !ready.exists() && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    let err = task.await.expect("joins").expect_err("cancelled");
    assert!(ready.exists(), "the tree was complete before the cancel");
    let CommandError::Cancelled {
        terminated_process_count,
    } = err
    else {
        panic!("expected cancelled, got {err:?}");
    };
    assert!(
        terminated_process_count >= 52,
        "killed {terminated_process_count}"
    );
    assert_eq!(
        fx.survivors_after(Duration::from_secs(5)),
        Vec::<i32>::new()
    );
}

#[tokio::test]
async fn dropping_the_call_still_kills_the_tree() {
    let fx = Fixture::new();
    let ready = fx.root().join("ready");
    let task = tokio::spawn(command::run(fx.shell(TREE), CancellationToken::new()));
    let start = Instant::now();
    while !ready.exists() && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready.exists());
    task.abort();
    let _ = task.await;
    assert_eq!(
        fx.survivors_after(Duration::from_secs(5)),
        Vec::<i32>::new()
    );
}

#[tokio::test]
async fn leftovers_are_killed_when_the_command_exits() {
    let fx = Fixture::new();
    let out = run(fx.shell("sleep 1000 & setsid sleep 1000 & ( sleep 1000 & ) ; echo done"))
        .await
        .expect("runs");
    assert_eq!((out.exit_code, out.stdout.as_str()), (Some(0), "done\n"));
    assert!(
        out.terminated_process_count >= 3,
        "killed {}",
        out.terminated_process_count
    );
    assert_eq!(
        fx.survivors_after(Duration::from_secs(5)),
        Vec::<i32>::new()
    );
}

fn require_landlock() -> bool {
    let p = sandbox::probe();
    if !p.fs {
        eprintln!("skipping: landlock unavailable ({p:?})");
    }
    p.fs
}

#[tokio::test]
async fn write_outside_root_is_denied_by_the_os() {
    if !require_landlock() {
        return;
    }
    let fx = Fixture::new();
    let outside = tempfile::tempdir().expect("outside dir");
    let target = outside.path().join("escaped");
    let out = run(fx.shell(&format!("echo x > {}", target.display())))
        .await
        .expect("runs");
    assert_ne!(out.exit_code, Some(0));
    assert!(
        out.stderr.contains("Permission denied"),
        "stderr: {}",
        out.stderr
    );
    assert!(!target.exists());
    // Control: inside the root the same write works.
    let out = run(fx.shell("echo x > inside && cat inside"))
        .await
        .expect("runs");
    assert_eq!((out.exit_code, out.stdout.as_str()), (Some(0), "x\n"));
}

#[tokio::test]
async fn read_outside_root_and_read_paths_is_denied_by_the_os() {
    if !require_landlock() {
        return;
    }
    let fx = Fixture::new();
    let outside = tempfile::tempdir().expect("outside dir");
    let canary = outside.path().join("canary");
    std::fs::write(&canary, "CANARY-SECRET").expect("write canary");
    let out = run(fx.request(argv(&["cat", canary.to_str().expect("utf8")])))
        .await
        .expect("runs");
    assert_ne!(out.exit_code, Some(0));
    assert!(
        out.stderr.contains("Permission denied"),
        "stderr: {}",
        out.stderr
    );
    assert!(!out.stdout.contains("CANARY-SECRET"));
    // Control: the same file is readable once its dir is a read path.
    let mut req = fx.request(argv(&["cat", canary.to_str().expect("utf8")]));
    req.sandbox.read_paths.push(outside.path().to_path_buf());
    let out = run(req).await.expect("runs");
    assert_eq!(out.stdout, "CANARY-SECRET");
}

fn connect_script(port: u16) -> String {
    format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected")
}

#[tokio::test]
async fn tcp_connect_is_denied_when_egress_is_denied() {
    if !sandbox::probe().net {
        eprintln!(
            "skipping: landlock abi {} has no tcp rules",
            sandbox::probe().landlock_abi
        );
        return;
    }
    let fx = Fixture::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let bash = |fx: &Fixture| fx.request(argv(&["bash", "-c", &connect_script(port)]));
    let out = run(bash(&fx)).await.expect("runs");
    assert_ne!(out.exit_code, Some(0));
    assert!(
        out.stderr.contains("Permission denied"),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
    // Controls: the port allowed, or no network rule, and the connect goes through.
    let mut req = bash(&fx);
    req.sandbox.net = NetRule::AllowPorts(vec![port]);
    let out = run(req).await.expect("runs");
    assert_eq!(
        (out.exit_code, out.stdout.as_str()),
        (Some(0), "connected\n"),
        "{}",
        out.stderr
    );
    let mut req = bash(&fx);
    req.sandbox.net = NetRule::AllowPorts(vec![port.wrapping_add(1)]);
    let out = run(req).await.expect("runs");
    assert_ne!(out.exit_code, Some(0));
}

#[tokio::test]
async fn command_cannot_signal_codeward() {
    if sandbox::probe().landlock_abi < 6 {
        eprintln!(
            "skipping: landlock abi {} has no signal scoping",
            sandbox::probe().landlock_abi
        );
        return;
    }
    let fx = Fixture::new();
    let me = std::process::id();
    let out = run(fx.shell(&format!("kill -0 {me}"))).await.expect("runs");
    assert_ne!(out.exit_code, Some(0), "kill -0 on codeward must fail");
    assert!(
        out.stderr.contains("not permitted"),
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn probe_reports_this_kernel() {
    let p = sandbox::probe();
    assert_eq!(p.available, p.landlock_abi > 0);
    assert_eq!(p.net, p.landlock_abi >= 4);
    assert!(!p.limitations.is_empty());
    let json = serde_json::to_value(p).expect("serializes");
    assert!(json.get("tree_kill").is_some());
}

#[test]
fn scratch_dir_is_private() {
    // The scratch dir is created 0700: checked through a command that stats its own HOME.
    let fx = Fixture::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let out = rt
        .block_on(run(fx.shell("stat -c %a \"$HOME\"")))
        .expect("runs");
    assert_eq!(out.stdout, "700\n");
}
