//! The one long-lived spawner thread that clones every per-call reaper (SPEC §6.1), and the
//! [`Reaper`] handle codeward drives a reaper through.
//!
//! The reaper's `PR_SET_PDEATHSIG` fires when the *creating thread* exits, so clones happen
//! only here, on a thread that lives as long as the process and blocks every signal (a reaper
//! starts with everything blocked until it has reset its dispositions). Reapers are cloned with
//! `CLONE_VM` (no page tables copied, none torn down at exit) and `CLONE_PIDFD`.
//!
//! One reaper is kept *warm*: cloned ahead, set up and waiting for its handoff. [`reaper`] takes
//! it without a thread hop and asks the spawner thread to clone the next one off the hot path;
//! when none is ready (first call, concurrent calls) the spawner thread clones one on request.
//! A warm reaper is used for exactly one call. It holds no fd of codeward's but its socket (it
//! closes the rest at once), so fds codeward opens later never reach it; its process attributes
//! (credentials, umask, cgroup, limits other than those the command sets) are those of codeward
//! when it was cloned.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

use super::reaper::{ChildSpec, HANDOFF, ReaperMem, StatusMsg, reaper_entry};

/// How long a reaper gets to finish a kill before its process group is SIGKILLed.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(2);

/// Pending requests to the spawner thread (bounded; a full queue fails the spawn).
const QUEUE: usize = 256;

/// Reaper memories kept for reuse.
const POOL: usize = 4;

/// Reaper memories given up on because a killed reaper's command might still run on them
/// (never reused nor unmapped).
static ABANDONED_MEMS: AtomicU64 = AtomicU64::new(0);

enum Job {
    /// Clone a reaper and reply with it.
    Spawn(oneshot::Sender<io::Result<Reaper>>),
    /// Clone a warm reaper if none is waiting.
    Refill,
}

struct Spawner {
    tx: mpsc::SyncSender<Job>,
}

fn spawner() -> io::Result<&'static Spawner> {
    static SPAWNER: OnceLock<Option<Spawner>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
            std::thread::Builder::new()
                .name("codeward-spawner".into())
                .spawn(move || spawner_loop(&rx))
                .ok()
                .map(|_| Spawner { tx })
        })
        .as_ref()
        .ok_or_else(|| io::Error::other("spawner thread could not start"))
}

/// The warm reaper, when one is waiting.
static WARM: Mutex<Option<Reaper>> = Mutex::new(None);

/// Reaper memories for reuse.
#[expect(
    clippy::vec_box,
    reason = "a reaper runs on its ReaperMem by address: it stays boxed from allocation to free"
)]
static MEMS: Mutex<Vec<Box<ReaperMem>>> = Mutex::new(Vec::new());

fn spawner_loop(rx: &mpsc::Receiver<Job>) {
    // Reapers start with this thread's signal mask: everything blocked until they reset their
    // dispositions. This thread takes no signals itself.
    // SAFETY: sigset_t is plain data; sigfillset initialises it; masking only this thread.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    }
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    while let Ok(job) = rx.recv() {
        match job {
            Job::Spawn(reply) => {
                // A reaper whose caller went away is dropped: its socket closes and it exits.
                let _ = reply.send(clone_reaper(parent));
                refill(parent);
            }
            Job::Refill => refill(parent),
        }
    }
}

fn refill(parent: libc::pid_t) {
    let empty = WARM.lock().is_ok_and(|w| w.is_none());
    if !empty {
        return;
    }
    if let Ok(r) = clone_reaper(parent)
        && let Ok(mut slot) = WARM.lock()
        && slot.is_none()
    {
        *slot = Some(r);
    }
    // Else a concurrent refill won, and `r` drops here and exits.
}

fn clone_reaper(parent: libc::pid_t) -> io::Result<Reaper> {
    let mut mem = match MEMS.lock().ok().and_then(|mut m| m.pop()) {
        Some(m) => m,
        None => ReaperMem::new()?,
    };
    let mut pair = [0 as libc::c_int; 2];
    // SAFETY: `pair` has room for the two fds socketpair writes.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded, so both fds are open and owned by nobody else.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    mem.reset(parent, theirs.as_raw_fd());
    let stack = mem.reaper_stack_top();
    let arg: *mut ReaperMem = &mut *mem;
    let mut pidfd: libc::c_int = -1;
    let mut flags = libc::CLONE_VM | libc::CLONE_PIDFD | libc::SIGCHLD;
    let pid = loop {
        // SAFETY: the reaper runs `reaper_entry` on its own stack in `mem`, which the returned
        // `Reaper` keeps alive until the reaper is reaped (ReaperMem's invariant); it uses only
        // raw syscalls and never returns into our frames.
        let pid = unsafe {
            libc::clone(
                reaper_entry,
                stack.cast(),
                flags,
                arg.cast(),
                &raw mut pidfd,
            )
        };
        if pid < 0
            && flags & libc::CLONE_PIDFD != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
        {
            // Kernel without CLONE_PIDFD (< 5.2): reap on a blocking thread instead.
            flags &= !libc::CLONE_PIDFD;
            continue;
        }
        break pid;
    };
    if pid < 0 {
        let e = io::Error::last_os_error();
        if let Ok(mut m) = MEMS.lock()
            && m.len() < POOL
        {
            m.push(mem);
        }
        return Err(e);
    }
    drop(theirs);
    let pidfd = (flags & libc::CLONE_PIDFD != 0 && pidfd >= 0).then(|| {
        // SAFETY: the kernel gave us this new pidfd; nobody else owns it.
        unsafe { OwnedFd::from_raw_fd(pidfd) }
    });
    Ok(Reaper {
        pid,
        pidfd,
        sock: Some(ours),
        mem: Some(mem),
        spec: None,
        kept: None,
        reaped: false,
    })
}

/// A reaper for one call: the warm one when it is waiting (and the spawner thread is asked for
/// the next), else one cloned now by the spawner thread.
pub(crate) async fn reaper() -> io::Result<Reaper> {
    let s = spawner()?;
    let warm = WARM.lock().ok().and_then(|mut w| w.take());
    if let Some(r) = warm {
        return Ok(r);
    }
    let (reply, rx) = oneshot::channel();
    s.tx.try_send(Job::Spawn(reply)).map_err(|e| match e {
        mpsc::TrySendError::Full(_) => io::Error::other("spawner queue full"),
        mpsc::TrySendError::Disconnected(_) => io::Error::other("spawner thread is gone"),
    })?;
    rx.await
        .map_err(|_| io::Error::other("spawner thread dropped the job"))?
}

/// Asks the spawner thread to clone a warm reaper if none is waiting (dropped when its queue
/// is full).
pub(crate) fn refill_warm() {
    if let Ok(s) = spawner() {
        let _ = s.tx.try_send(Job::Refill);
    }
}

/// One reaper, from clone to reap. Dropping it before it was reaped asks the reaper to kill the
/// tree, and a background thread gives it [`KILL_GRACE`], kills its group and reaps it.
pub(crate) struct Reaper {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    /// codeward's end of the socket: handoff, then kill requests (a byte, or EOF).
    sock: Option<OwnedFd>,
    /// INVARIANT: kept until the reaper is reaped (it runs on this memory).
    mem: Option<Box<ReaperMem>>,
    /// INVARIANT: kept until the reaper is reaped (the reaper and the command read it).
    spec: Option<Box<ChildSpec>>,
    /// Dropped once the reaper is reaped, i.e. once the tree is gone (see [`Reaper::keep`]).
    kept: Option<Box<dyn Send + Sync>>,
    reaped: bool,
}

impl Reaper {
    /// Hands the call over: publishes `spec` and sends the command's stdio fds and ruleset fd.
    /// The fds may be closed on our side once this returns. On failure nothing reached the
    /// reaper, and the spec comes back for another one.
    pub(crate) fn start(
        &mut self,
        spec: Box<ChildSpec>,
        stdio: [BorrowedFd<'_>; 3],
        ruleset: Option<BorrowedFd<'_>>,
    ) -> Result<(), (io::Error, Box<ChildSpec>)> {
        let (Some(mem), Some(sock)) = (&self.mem, &self.sock) else {
            return Err((io::Error::other("reaper already used"), spec));
        };
        if self.spec.is_some() {
            return Err((io::Error::other("reaper already used"), spec));
        }
        let mut fds: Vec<RawFd> = stdio.iter().map(|fd| fd.as_raw_fd()).collect();
        if let Some(fd) = ruleset {
            fds.push(fd.as_raw_fd());
        }
        mem.set_spec(Some(&spec));
        match send_fds(sock.as_raw_fd(), &fds) {
            Ok(()) => {
                self.spec = Some(spec);
                Ok(())
            }
            Err(e) => {
                // No message, so the reaper never reads the spec; unpublish it anyway.
                mem.set_spec(None);
                Err((e, spec))
            }
        }
    }

    /// Keeps `value` until the reaper has been reaped — also when this handle is dropped early
    /// and the reap happens in the background — and drops it then. For what the tree may still
    /// use while it runs: the call's scratch dir must not be removed under a live command.
    pub(crate) fn keep(&mut self, value: impl Send + Sync + 'static) {
        self.kept = Some(Box::new(value));
    }

    /// Asks the reaper to kill the tree (a byte on the socket); idempotent.
    pub(crate) fn request_kill(&self) {
        if let Some(sock) = &self.sock {
            // SAFETY: sending one byte from a live buffer on our socket, without SIGPIPE.
            unsafe {
                libc::send(
                    sock.as_raw_fd(),
                    [1u8].as_ptr().cast(),
                    1,
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
        }
    }

    /// SIGKILLs the reaper's process group.
    pub(crate) fn kill_group(&self) {
        if !self.reaped {
            // SAFETY: the reaper is our unreaped child, so its pid (= its pgid, it called
            // setsid) cannot have been reused.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        }
    }

    /// The reaper has exited (it is not reaped by this check).
    fn has_exited(&self) -> bool {
        exited_unreaped(self.pid)
    }

    /// Waits until the reaper has exited (its pidfd turns readable), without reaping it.
    pub(crate) async fn exited(&self) {
        if self.reaped {
            return;
        }
        let Some(fd) = &self.pidfd else {
            // No pidfd: poll cheaply (old kernels only).
            while !self.has_exited() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            return;
        };
        // SAFETY: the pidfd is owned by `self`, which outlives this AsyncFd (dropped at the end
        // of this function), so the fd stays open and the same for its whole life.
        match unsafe { AsyncFd::register_with_interest(fd.as_raw_fd(), Interest::READABLE) } {
            Ok(afd) => {
                let _ = afd.readable().await;
            }
            Err(_) => {
                let pid = self.pid;
                let _ = tokio::task::spawn_blocking(move || {
                    // SAFETY: siginfo_t is plain data; waitid with WNOWAIT leaves the child
                    // unreaped.
                    unsafe {
                        let mut info: libc::siginfo_t = std::mem::zeroed();
                        libc::waitid(
                            libc::P_PID,
                            pid as libc::id_t,
                            &mut info,
                            libc::WEXITED | libc::WNOWAIT,
                        )
                    };
                })
                .await;
            }
        }
    }

    /// The reaper's report, once it published one (readable before the reap).
    pub(crate) fn status(&self) -> Option<StatusMsg> {
        self.mem.as_ref().and_then(|m| m.shared.status())
    }

    /// Reaps the exited reaper and returns its report (`None`: it died without one — the
    /// caller has SIGKILLed its group before; the members codeward adopted are then reaped in
    /// the background, see [`reap_group_members`]).
    pub(crate) fn reap(&mut self) -> Option<StatusMsg> {
        let first = !self.reaped;
        if first {
            waitpid_blocking(self.pid);
            self.reaped = true;
        }
        let status = self.mem.as_ref().and_then(|m| m.shared.status());
        if first && status.is_none() {
            let pgid = self.pid;
            let _ = std::thread::Builder::new()
                .name("codeward-reap".into())
                .spawn(move || reap_group_members(pgid));
        }
        self.release();
        status
    }

    /// After the reap: frees the spec and returns the memory for reuse.
    fn release(&mut self) {
        self.sock = None;
        let mem = self.mem.take();
        let spec = self.spec.take();
        if let Some(mem) = mem {
            release_mem(mem, spec);
        }
        drop(self.kept.take());
    }
}

/// Returns a reaped reaper's memory to the pool — unless its command may still run on it (the
/// reaper was killed while the command was between clone and exec): then waits up to
/// [`KILL_GRACE`] on a thread for that process to go, and gives the memory up if it does not.
fn release_mem(mem: Box<ReaperMem>, spec: Option<Box<ChildSpec>>) {
    let Some(cmd) = mem.shared.command_may_be_on_memory() else {
        drop(spec);
        pool_or_drop(mem);
        return;
    };
    let _ = std::thread::Builder::new()
        .name("codeward-reap".into())
        .spawn(move || {
            let start = Instant::now();
            while start.elapsed() < KILL_GRACE {
                if process_gone(cmd) {
                    drop(spec);
                    pool_or_drop(mem);
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let n = ABANDONED_MEMS.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                pid = cmd,
                abandoned = n,
                "a killed reaper's command did not exit; its stacks are kept, never reused"
            );
            std::mem::forget(spec);
            std::mem::forget(mem);
        });
}

/// The process is gone or a zombie (either way it has left its memory). A reused pid reads as
/// alive, which only delays the release.
fn process_gone(pid: libc::pid_t) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| {
            let state = rest.trim_start();
            state.starts_with('Z') || state.starts_with('X')
        }),
    }
}

fn pool_or_drop(mem: Box<ReaperMem>) {
    if let Ok(mut m) = MEMS.lock()
        && m.len() < POOL
    {
        m.push(mem);
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if self.reaped {
            self.release();
            return;
        }
        // Closing our socket end asks the reaper to kill the tree (or, still warm, to exit).
        self.sock = None;
        let pid = self.pid;
        let mem = self.mem.take();
        let spec = self.spec.take();
        let kept = self.kept.take();
        // Reap off-thread: give the reaper its grace; kill its group if it did not report.
        let _ = std::thread::Builder::new()
            .name("codeward-reap".into())
            .spawn(move || {
                let start = Instant::now();
                while !exited_unreaped(pid) && start.elapsed() <= KILL_GRACE {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let reported = mem.as_ref().is_some_and(|m| m.shared.status().is_some());
                if !reported {
                    // Past its grace, or dead without a report (killed from outside): SIGKILL
                    // the group. SAFETY: the reaper is not reaped yet, so its pid (= the pgid,
                    // it called setsid) cannot have been reused.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
                waitpid_blocking(pid);
                if !reported {
                    reap_group_members(pid);
                }
                if let Some(mem) = mem {
                    release_mem(mem, spec);
                }
                drop(kept);
            });
    }
}

/// `pid`, a child of ours, has exited (or cannot be waited for); it is left unreaped.
fn exited_unreaped(pid: libc::pid_t) -> bool {
    // SAFETY: siginfo_t is plain data; waitid with WNOWAIT leaves the child unreaped and fills
    // `info`, whose pid field we then read.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r != 0 || info.si_pid() != 0
    }
}

/// After a reaper died without a report and its process group was SIGKILLed: reaps the
/// group's processes that codeward adopted (it is a child subreaper, SPEC §6.1) as they die,
/// until none of its children is left in the group or [`KILL_GRACE`] passes. Without this they
/// would stay zombies of codeward for good. Nothing else waits for them: tokio and the alert
/// sink wait for their own pids, in groups of their own.
///
/// INVARIANT: called only once the reaper itself is reaped, with its pid as `pgid`. While a
/// member of the group exists the group id cannot be reused, and the loop ends at the first
/// `ECHILD`, so it reaps only members of the dead tree.
fn reap_group_members(pgid: libc::pid_t) {
    let start = Instant::now();
    loop {
        // SAFETY: siginfo_t is plain data; waitid fills it for a reaped child.
        let (r, reaped) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PGID,
                pgid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            );
            (r, info.si_pid())
        };
        if r != 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return; // ECHILD: no child of ours left in the group.
        }
        if reaped != 0 {
            continue;
        }
        if start.elapsed() > KILL_GRACE {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn waitpid_blocking(pid: libc::pid_t) {
    let mut st = 0;
    // SAFETY: waiting for our own child; `st` is a valid out pointer.
    while unsafe { libc::waitpid(pid, &mut st, libc::__WALL) } < 0
        && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
}

/// Sends the handoff byte with `fds` (`SCM_RIGHTS`) on `sock`.
fn send_fds(sock: RawFd, fds: &[RawFd]) -> io::Result<()> {
    let byte = [HANDOFF];
    let mut iov = libc::iovec {
        iov_base: byte.as_ptr().cast_mut().cast(),
        iov_len: 1,
    };
    let data_len = std::mem::size_of_val(fds);
    let mut control = [0u64; 8];
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE(data_len as u32) } as usize;
    if space > std::mem::size_of_val(&control) {
        return Err(io::Error::other("too many fds for one handoff"));
    }
    // SAFETY: msghdr is plain data; the fields set below make it describe live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer has room for one header plus `fds` (checked above); the
    // CMSG_* helpers only compute addresses inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(data_len as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(cmsg), data_len);
    }
    loop {
        // SAFETY: `msg` describes live buffers; no SIGPIPE if the reaper is gone.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
        if n == 1 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}
