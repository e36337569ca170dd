//! [`ExecSink`]: runs an operator-configured command (no shell) per alert with the alert JSON on
//! stdin (SPEC §8.5 `exec{argv, timeout_ms = 5000}`).
//!
//! The child gets a cleared environment ([`EXEC_PATH`], [`EXEC_LANG`] only), `/` as working
//! directory, stdout discarded and stderr captured up to [`MAX_STDERR_BYTES`] (redacted, for the
//! error message; the rest is read and dropped). It runs in its own process group
//! (`process_group(0)`); exit 0 is delivered, anything else is `DeliveryFailed`.
//!
//! No process outlives its delivery: when the command exits, leftover background descendants in
//! its group are killed; on timeout the whole group is killed (`AlertError::Timeout`); and when
//! the delivery future is dropped (the router's own timeout, shutdown) a guard kills the group
//! and `kill_on_drop` reaps the child. The group is always killed *before* the child is reaped —
//! an unreaped child keeps its pid, hence the group id, from being reused — so the kill can never
//! hit an unrelated process. Exit is detected without reaping by `waitid(WEXITED | WNOWAIT)` on a
//! blocking-pool thread (never a tokio worker); that thread ends as soon as the child dies.
//!
//! Known limits: a descendant that calls `setsid`/`setpgid` leaves the group and is not killed
//! (the engine's subreaper is the backstop); the pipes it holds are waited for at most
//! [`PIPE_GRACE`] after the command exits.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use codeward_actors::telemetry::{Alert, AlertError, AlertSink};
use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStderr, ChildStdin, Command};

use super::{SinkConfigError, validate_name, validate_timeout};

/// `PATH` of the child.
pub const EXEC_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// `LANG` of the child.
pub const EXEC_LANG: &str = "C.UTF-8";
/// Most stderr bytes kept for the error message.
pub const MAX_STDERR_BYTES: usize = 1024;
/// Most argv entries.
const MAX_ARGS: usize = 256;
/// Longest argv entry, bytes.
const MAX_ARG_BYTES: usize = 4096;
/// How long pipes still held by escaped descendants are read after the command exited.
const PIPE_GRACE: Duration = Duration::from_millis(250);

/// Runs a command per alert with the alert JSON on stdin.
#[derive(Clone)]
pub struct ExecSink {
    name: String,
    argv: Vec<String>,
    timeout: Duration,
}

impl std::fmt::Debug for ExecSink {
    /// Shows the program and the argument count, not the arguments (they may hold secrets).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSink")
            .field("name", &self.name)
            .field("program", &self.program())
            .field("args", &self.argv.len().saturating_sub(1))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ExecSink {
    /// A sink named `name` running `argv` (program first; an absolute path or a bare name looked
    /// up in [`EXEC_PATH`]); `timeout_ms` bounds each run (`None` = 5000). Refuses a bad name, an
    /// empty argv or program, a relative program path with `/`, NUL bytes, more than 256
    /// entries or entries over 4 KiB, and a timeout outside 1..=600 000 ms.
    pub fn new(
        name: impl Into<String>,
        argv: Vec<String>,
        timeout_ms: Option<u64>,
    ) -> Result<Self, SinkConfigError> {
        let name = name.into();
        validate_name(&name)?;
        let timeout = Duration::from_millis(validate_timeout(&name, timeout_ms)?);
        let bad = |reason: &str| SinkConfigError::InvalidArgv {
            sink: name.clone(),
            reason: reason.into(),
        };
        let Some(program) = argv.first() else {
            return Err(bad("empty"));
        };
        if program.is_empty() {
            return Err(bad("empty_program"));
        }
        if program.contains('/') && !program.starts_with('/') {
            return Err(bad("relative_program"));
        }
        if argv.len() > MAX_ARGS {
            return Err(bad("too_many_args"));
        }
        if argv.iter().any(|a| a.len() > MAX_ARG_BYTES) {
            return Err(bad("arg_too_long"));
        }
        if argv.iter().any(|a| a.contains('\0')) {
            return Err(bad("nul_byte"));
        }
        Ok(Self {
            name,
            argv,
            timeout,
        })
    }

    fn program(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }

    async fn deliver_inner(&self, alert: &Alert) -> Result<(), AlertError> {
        let payload =
            serde_json::to_vec(alert).map_err(|e| self.failed(format!("encoding: {e}")))?;
        let mut cmd = Command::new(self.program());
        cmd.args(self.argv.iter().skip(1))
            .env_clear()
            .env("PATH", EXEC_PATH)
            .env("LANG", EXEC_LANG)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| self.failed(format!("cannot start `{}`: {e}", self.program())))?;
        let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
            return Err(self.failed("the child has no pid".into()));
        };
        // Declared after `child`, so on drop it kills the group before `child` is dropped.
        let mut group = GroupKill { pgid: pid };
        let stdin = child.stdin.take();
        let stderr = child.stderr.take();
        let mut captured = Vec::new();
        let run = supervise(pid, &group, stdin, stderr, &payload, &mut captured);
        let finished = tokio::time::timeout(self.timeout, run).await.is_ok();
        if !finished {
            group.kill();
        }
        // The group is dead or empty by now (killed after exit or on timeout): reaping is prompt.
        let status = child.wait().await;
        // INVARIANT: once reaped, the pid (= group id) may be reused; never signal it again.
        group.disarm();
        if !finished {
            return Err(AlertError::Timeout {
                sink: self.name.clone(),
            });
        }
        match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => {
                let how = match (s.code(), s.signal()) {
                    (Some(code), _) => format!("exited with status {code}"),
                    (None, Some(sig)) => format!("was killed by signal {sig}"),
                    (None, None) => format!("failed ({s})"),
                };
                Err(self.failed(format!(
                    "`{}` {how}{}",
                    self.program(),
                    stderr_snippet(&captured)
                )))
            }
            Err(e) => Err(self.failed(format!("waiting for `{}`: {e}", self.program()))),
        }
    }

    fn failed(&self, message: String) -> AlertError {
        AlertError::DeliveryFailed {
            sink: self.name.clone(),
            message,
        }
    }
}

impl AlertSink for ExecSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), AlertError>> {
        Box::pin(self.deliver_inner(alert))
    }
}

/// Feeds stdin and drains stderr while waiting for the child to exit (without reaping it); then
/// kills what is left of its group and gives the pipes [`PIPE_GRACE`] to close.
async fn supervise(
    pid: i32,
    group: &GroupKill,
    stdin: Option<ChildStdin>,
    stderr: Option<ChildStderr>,
    payload: &[u8],
    captured: &mut Vec<u8>,
) {
    let io = async {
        tokio::join!(feed(stdin, payload), drain(stderr, captured));
    };
    let exited = async {
        // A JoinError means the runtime is shutting down: fall through and kill.
        let _ = tokio::task::spawn_blocking(move || wait_exited(pid)).await;
        group.kill();
    };
    tokio::pin!(io, exited);
    tokio::select! {
        () = &mut io => exited.await,
        () = &mut exited => {
            let _ = tokio::time::timeout(PIPE_GRACE, io).await;
        }
    }
}

/// Writes the alert and closes stdin. Errors (a child that does not read its input exits and
/// breaks the pipe) are ignored: the exit status is the verdict.
async fn feed(stdin: Option<ChildStdin>, payload: &[u8]) {
    if let Some(mut stdin) = stdin {
        let _ = stdin.write_all(payload).await;
    }
}

/// Reads stderr to EOF, keeping the first [`MAX_STDERR_BYTES`].
async fn drain(stderr: Option<ChildStderr>, captured: &mut Vec<u8>) {
    let Some(mut stderr) = stderr else { return };
    let mut buf = [0u8; 4096];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let keep = n.min(MAX_STDERR_BYTES.saturating_sub(captured.len()));
                captured.extend_from_slice(buf.get(..keep).unwrap_or_default());
            }
        }
    }
}

/// `: stderr: …` — one line, control characters replaced, secrets redacted; empty when there
/// was no output.
fn stderr_snippet(captured: &[u8]) -> String {
    let text = String::from_utf8_lossy(captured);
    let line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.is_empty() {
        return String::new();
    }
    let cut = if captured.len() >= MAX_STDERR_BYTES {
        "…"
    } else {
        ""
    };
    format!(
        ": stderr: {}{cut}",
        codeward_policies::secrets::redact_str(&line)
    )
}

/// Blocks until `pid` has exited, leaving it unreaped (`WNOWAIT`). Runs on the blocking pool.
fn wait_exited(pid: i32) {
    let Ok(id) = libc::id_t::try_from(pid) else {
        return;
    };
    loop {
        // SAFETY: an all-zero `siginfo_t` is a valid value of this plain C struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable `siginfo_t`; `WNOWAIT` leaves the child a zombie, so
        // the tokio `Child` still reaps it.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                id,
                &raw mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Kills the child's process group; armed from spawn until the child is reaped, and fires on
/// drop so a cancelled delivery leaves nothing running.
struct GroupKill {
    /// The child's pid, which is its group id (`process_group(0)`); 0 once disarmed.
    pgid: i32,
}

impl GroupKill {
    /// SIGKILLs every process in the group (no-op once disarmed).
    fn kill(&self) {
        // INVARIANT: pgid > 1 — killpg(0) would signal our own group and 1 is init.
        if self.pgid > 1 {
            // SAFETY: plain syscall; ESRCH (group already empty) is fine.
            unsafe {
                libc::killpg(self.pgid, libc::SIGKILL);
            }
        }
    }

    /// Called right after the child is reaped.
    fn disarm(&mut self) {
        self.pgid = 0;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}
