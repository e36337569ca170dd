//! The one long-lived spawner thread that forks every per-call reaper (SPEC §6.1). The reaper's
//! `PR_SET_PDEATHSIG` fires when the *forking thread* exits, so forks happen only here, on a
//! thread that lives as long as the process. Jobs arrive on a channel; the reply is the
//! reaper's pid.

use std::io;
use std::sync::{Mutex, OnceLock, mpsc};

use tokio::sync::oneshot;

use super::reaper::{ChildSpec, Scratch, reaper_main};

struct Job {
    spec: ChildSpec,
    reply: oneshot::Sender<io::Result<libc::pid_t>>,
}

fn sender() -> io::Result<mpsc::Sender<Job>> {
    static TX: OnceLock<Mutex<Option<mpsc::Sender<Job>>>> = OnceLock::new();
    let slot = TX.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("codeward-spawner".into())
            .spawn(move || spawner_loop(rx))
            .is_ok();
        Mutex::new(started.then_some(tx))
    });
    let guard = slot
        .lock()
        .map_err(|_| io::Error::other("spawner lock poisoned"))?;
    guard
        .clone()
        .ok_or_else(|| io::Error::other("spawner thread could not start"))
}

fn spawner_loop(rx: mpsc::Receiver<Job>) {
    let mut scratch = Scratch::new();
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    while let Ok(job) = rx.recv() {
        // SAFETY: the child runs only async-signal-safe code on memory prepared before the fork
        // (`job.spec`, `scratch`) and never returns (reaper_main ends in `_exit`).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: we are the forked child.
            unsafe { reaper_main(&job.spec, &mut scratch, parent) }
        }
        let result = if pid < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(pid)
        };
        // Dropping the spec closes the child-side fds in codeward.
        drop(job.spec);
        if let Err(Ok(pid)) = job.reply.send(result) {
            // The caller went away: its control pipe end is closed, so the reaper kills the
            // tree and exits; reap it so it does not linger as a zombie.
            let _ = std::thread::Builder::new()
                .name("codeward-reap".into())
                .spawn(move || {
                    let mut st = 0;
                    // SAFETY: waiting for our own child; `st` is a valid out pointer.
                    unsafe { libc::waitpid(pid, &mut st, 0) };
                });
        }
    }
}

/// Forks a reaper for `spec` on the spawner thread; returns its pid (= its process group id).
pub(crate) async fn spawn(spec: ChildSpec) -> io::Result<libc::pid_t> {
    let (reply, rx) = oneshot::channel();
    sender()?
        .send(Job { spec, reply })
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    rx.await
        .map_err(|_| io::Error::other("spawner thread dropped the job"))?
}
