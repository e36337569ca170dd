//! The code that runs in a per-call reaper and in the command it starts before `execve` (SPEC
//! §6.1, §6.3), and the memory they share with codeward.
//!
//! A reaper is cloned by the spawner thread with `CLONE_VM` (see [`super::spawner`]): it is its
//! own process — own pid, session, fd table, signal dispositions — but shares codeward's address
//! space, so creating it copies no page tables and its exit tears none down. It therefore runs
//! only raw system calls ([`super::sys`], no libc `errno`, no allocation, no locks, no panics)
//! on its own stack and tables in a [`ReaperMem`], which codeward keeps alive until the reaper
//! has been reaped.
//!
//! The reaper, *warm* phase (right after the clone, off the hot path): `setsid`,
//! `PR_SET_CHILD_SUBREAPER`, `PR_SET_PDEATHSIG(SIGTERM)`, checks its parent, names itself
//! `codeward-reaper`, resets every signal disposition, closes every fd but its socket (stdio
//! becomes `/dev/null`), blocks SIGCHLD/SIGTERM/SIGINT/SIGHUP/SIGQUIT into a `signalfd`, and
//! waits. A terminating signal or the socket's EOF ends it. The *handoff* is one message on the
//! socket carrying the command's stdin/stdout/stderr and ruleset fds (`SCM_RIGHTS`); the
//! [`ChildSpec`] itself is read from shared memory. One reaper serves exactly one call.
//!
//! Then it starts the command vfork-style (`CLONE_VM | CLONE_VFORK` on a stack of its own) and
//! polls the signalfd and the socket. A byte or EOF on the socket, or a terminating signal, is a
//! kill request; the command's exit ends the wait too (leftovers are then killed, reason
//! `completed`). Killing: when `waitpid` already says `ECHILD` the tree is empty and nothing is
//! scanned; otherwise scan `/proc` for live descendants (transitively by ppid; orphans reparent
//! to the reaper), SIGSTOP them until a scan finds none new (stopped processes cannot fork),
//! SIGKILL them, reap, repeat until `ECHILD`. The result goes into [`Shared`], published by
//! one release store, and the reaper exits; codeward reads it after reaping the reaper.
//!
//! The command: `PR_SET_PDEATHSIG(SIGKILL)`, empty signal mask (dispositions are already the
//! defaults), stdio `dup3`s, every other fd close-on-exec, rlimits, `chdir`,
//! `PR_SET_NO_NEW_PRIVS`, `landlock_restrict_self`, `execve`. A failing step stores
//! `(stage, errno)` in [`Shared`] and exits; the reaper, resumed when the command execs or
//! exits, reads it there.

use std::ffi::CString;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, Ordering};

use libc::{c_char, c_int, c_void};

use super::Rlimits;
use super::sys;

/// What the command needs, prepared by codeward before the handoff and read by the reaper and
/// the command (shared memory) until the command execs.
pub(crate) struct ChildSpec {
    /// Resolved executable path.
    pub path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const c_char>,
    /// Working directory of the command.
    pub cwd: CString,
    /// Resource limits.
    pub rlimits: Rlimits,
}

// SAFETY: the raw pointers point into the `CString`s owned by the same struct (heap data that
// does not move when the struct moves); nothing else aliases them.
unsafe impl Send for ChildSpec {}
// SAFETY: never mutated after construction.
unsafe impl Sync for ChildSpec {}

impl ChildSpec {
    /// Builds the NULL-terminated argv/envp arrays.
    pub(crate) fn new(
        path: CString,
        argv: Vec<CString>,
        envp: Vec<CString>,
        cwd: CString,
        rlimits: Rlimits,
    ) -> Self {
        let ptrs = |v: &[CString]| -> Vec<*const c_char> {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let argv_ptrs = ptrs(&argv);
        let envp_ptrs = ptrs(&envp);
        Self {
            path,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            cwd,
            rlimits,
        }
    }
}

/// Capacity of the `/proc` scan tables.
const MAX_PROCS: usize = 32_768;

/// Buffers for scanning `/proc`, one set per reaper (reapers share memory).
struct Scratch {
    pids: Box<[i32]>,
    ppids: Box<[i32]>,
    desc: Box<[i32]>,
    round: Box<[i32]>,
    seen: Box<[i32]>,
    zombie: Box<[bool]>,
    taken: Box<[bool]>,
    dents: Box<[u8]>,
}

impl Scratch {
    fn new() -> Self {
        Self {
            pids: vec![0; MAX_PROCS].into_boxed_slice(),
            ppids: vec![0; MAX_PROCS].into_boxed_slice(),
            desc: vec![0; MAX_PROCS].into_boxed_slice(),
            round: vec![0; MAX_PROCS].into_boxed_slice(),
            seen: vec![0; MAX_PROCS].into_boxed_slice(),
            zombie: vec![false; MAX_PROCS].into_boxed_slice(),
            taken: vec![false; MAX_PROCS].into_boxed_slice(),
            dents: vec![0; 32 * 1024].into_boxed_slice(),
        }
    }
}

/// Stage of the command setup that failed (`Status::stage`).
pub(crate) mod stage {
    /// Everything worked.
    pub(crate) const NONE: i32 = 0;
    /// `clone` of the command failed.
    pub(crate) const FORK: i32 = 1;
    /// `dup3` of stdio failed.
    pub(crate) const STDIO: i32 = 2;
    /// `setrlimit` failed.
    pub(crate) const RLIMIT: i32 = 3;
    /// `chdir` failed.
    pub(crate) const CHDIR: i32 = 4;
    /// `PR_SET_NO_NEW_PRIVS` failed.
    pub(crate) const NO_NEW_PRIVS: i32 = 5;
    /// `landlock_restrict_self` failed.
    pub(crate) const LANDLOCK: i32 = 6;
    /// `execve` failed.
    pub(crate) const EXEC: i32 = 7;
    /// The reaper's own setup failed.
    pub(crate) const REAPER: i32 = 8;

    /// A name for messages.
    pub(crate) fn name(stage: i32) -> &'static str {
        match stage {
            FORK => "fork",
            STDIO => "stdio",
            RLIMIT => "setrlimit",
            CHDIR => "chdir",
            NO_NEW_PRIVS => "no_new_privs",
            LANDLOCK => "landlock_restrict_self",
            EXEC => "execve",
            REAPER => "reaper setup",
            _ => "unknown",
        }
    }
}

/// The reaper's report, read by codeward after reaping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatusMsg {
    /// The command's wait status, when it was reaped.
    pub wait_status: Option<i32>,
    /// Processes the reaper SIGKILLed.
    pub killed: u32,
    /// Setup stage that failed ([`stage::NONE`] when the command ran).
    pub stage: i32,
    /// errno of the failed stage.
    pub errno: i32,
    /// The kill phase was requested (timeout, cancel) rather than started by the command's exit.
    pub kill_requested: bool,
    /// The reaper had received the handoff.
    pub handed_off: bool,
}

/// Memory codeward and a reaper share. Written by the reaper (and the kernel, for `cmd_pid`),
/// read by codeward after the reaper is reaped.
#[derive(Default)]
pub(crate) struct Shared {
    /// codeward's pid, for the reaper's parent check.
    parent: AtomicI32,
    /// The reaper's end of its socket (the same number in its fd table).
    sock: AtomicI32,
    /// The handoff's spec; null before it.
    spec: AtomicPtr<ChildSpec>,
    /// The command's pid, stored by the kernel (`CLONE_PARENT_SETTID`) before it runs.
    cmd_pid: AtomicI32,
    /// 1 once the command has left the shared memory (exec'd or exited).
    cmd_left: AtomicU32,
    /// Stage and errno of a failed command setup.
    cmd_stage: AtomicI32,
    cmd_errno: AtomicI32,
    /// 1 once the handoff was received.
    handed_off: AtomicU32,
    /// 1 once the fields below are final (release store).
    done: AtomicU32,
    has_ws: AtomicU32,
    ws: AtomicI32,
    killed: AtomicU32,
    stage: AtomicI32,
    errno: AtomicI32,
    kill_requested: AtomicU32,
}

impl Shared {
    /// The report, once the reaper published it.
    pub(crate) fn status(&self) -> Option<StatusMsg> {
        (self.done.load(Ordering::Acquire) == 1).then(|| StatusMsg {
            wait_status: (self.has_ws.load(Ordering::Relaxed) == 1)
                .then(|| self.ws.load(Ordering::Relaxed)),
            killed: self.killed.load(Ordering::Relaxed),
            stage: self.stage.load(Ordering::Relaxed),
            errno: self.errno.load(Ordering::Relaxed),
            kill_requested: self.kill_requested.load(Ordering::Relaxed) == 1,
            handed_off: self.handed_off.load(Ordering::Relaxed) == 1,
        })
    }

    /// The command may still be running on this memory: it was cloned but neither exec'd nor
    /// exited as far as the reaper saw (only possible when the reaper died abnormally).
    pub(crate) fn command_may_be_on_memory(&self) -> Option<libc::pid_t> {
        let pid = self.cmd_pid.load(Ordering::Acquire);
        (self.done.load(Ordering::Acquire) == 0
            && pid > 0
            && self.cmd_left.load(Ordering::Acquire) == 0)
            .then_some(pid)
    }

    /// Publishes the report and ends the reaper.
    fn finish(&self, ws: Option<i32>, killed: u32, stage: i32, errno: i32, kill: bool) -> ! {
        self.has_ws
            .store(u32::from(ws.is_some()), Ordering::Relaxed);
        self.ws.store(ws.unwrap_or(0), Ordering::Relaxed);
        self.killed.store(killed, Ordering::Relaxed);
        self.stage.store(stage, Ordering::Relaxed);
        self.errno.store(errno, Ordering::Relaxed);
        self.kill_requested
            .store(u32::from(kill), Ordering::Relaxed);
        self.done.store(1, Ordering::Release);
        sys::exit(0)
    }
}

/// Size of the reaper's stack.
const REAPER_STACK: usize = 128 * 1024;
/// Size of the command's pre-exec stack.
const COMMAND_STACK: usize = 64 * 1024;
/// One guard page below each stack.
const GUARD: usize = 4096;

/// The two stacks, in one private mapping: `[guard | command stack | guard | reaper stack]`.
struct Stacks {
    base: *mut u8,
    len: usize,
}

impl Stacks {
    fn new() -> std::io::Result<Self> {
        let len = GUARD + COMMAND_STACK + GUARD + REAPER_STACK;
        // SAFETY: a fresh anonymous private mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = base.cast::<u8>();
        let stacks = Self { base, len };
        for guard in [0, GUARD + COMMAND_STACK] {
            // SAFETY: a page inside the mapping we just made.
            let r = unsafe { libc::mprotect(base.add(guard).cast(), GUARD, libc::PROT_NONE) };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(stacks)
    }

    fn command_top(&self) -> *mut u8 {
        // SAFETY: within the mapping (the end of the command stack).
        unsafe { self.base.add(GUARD + COMMAND_STACK) }
    }

    fn reaper_top(&self) -> *mut u8 {
        // SAFETY: one past the end of the mapping, the top of the reaper stack.
        unsafe { self.base.add(self.len) }
    }
}

impl Drop for Stacks {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping we made; callers drop it only once no reaper or command
        // runs on it (see `ReaperMem`).
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// Everything one reaper and its command run on: stacks, scan tables, shared report.
///
/// INVARIANT: dropped or reused only after the reaper has been reaped and the command has left
/// it (`Shared::command_may_be_on_memory` is `None`, or the command is gone).
pub(crate) struct ReaperMem {
    stacks: Stacks,
    scratch: Scratch,
    /// The shared report.
    pub(crate) shared: Shared,
}

// SAFETY: the raw stack pointer is owned by this struct; the reaper that runs on it is
// synchronised with through the atomics in `Shared` and through reaping.
unsafe impl Send for ReaperMem {}
// SAFETY: shared access goes through the atomics in `Shared`; the stacks are touched only by the
// reaper and its command.
unsafe impl Sync for ReaperMem {}

impl ReaperMem {
    /// Fresh stacks and tables.
    pub(crate) fn new() -> std::io::Result<Box<Self>> {
        Ok(Box::new(Self {
            stacks: Stacks::new()?,
            scratch: Scratch::new(),
            shared: Shared::default(),
        }))
    }

    /// Clears the report for a new reaper of `parent` whose socket end is `sock`.
    pub(crate) fn reset(&mut self, parent: libc::pid_t, sock: c_int) {
        self.shared = Shared::default();
        self.shared.parent.store(parent, Ordering::Relaxed);
        self.shared.sock.store(sock, Ordering::Relaxed);
    }

    /// Publishes the handoff's spec (before the handoff message is sent), or withdraws it.
    pub(crate) fn set_spec(&self, spec: Option<&ChildSpec>) {
        let ptr = spec.map_or(std::ptr::null_mut(), |s| (s as *const ChildSpec).cast_mut());
        self.shared.spec.store(ptr, Ordering::Release);
    }

    /// Top of the reaper's stack.
    pub(crate) fn reaper_stack_top(&self) -> *mut u8 {
        self.stacks.reaper_top()
    }
}

/// The handoff message's one payload byte.
pub(crate) const HANDOFF: u8 = b'H';

/// The signals the reaper takes through its signalfd.
const REAPER_SIGNALS: sys::SigSet = sys::sigbit(libc::SIGCHLD)
    | sys::sigbit(libc::SIGTERM)
    | sys::sigbit(libc::SIGINT)
    | sys::sigbit(libc::SIGHUP)
    | sys::sigbit(libc::SIGQUIT);

/// Entry point of a cloned reaper (`arg` is its `ReaperMem`). Never returns. Only meaningful
/// as the start routine of the spawner's `clone(CLONE_VM)`, with `arg` a `ReaperMem` that stays
/// alive (see its invariant); nothing else calls it.
pub(crate) extern "C" fn reaper_entry(arg: *mut c_void) -> c_int {
    let mem = arg.cast::<ReaperMem>();
    // SAFETY: the spawner passes its live ReaperMem (see its invariant). Codeward keeps reading
    // `shared` (atomics) and never touches `stacks` or `scratch` while we run, so only `scratch`
    // is borrowed uniquely, field by field through the raw pointer: a `&mut ReaperMem` would
    // claim `shared` too, which codeward reads concurrently.
    let (shared, stacks, scratch) =
        unsafe { (&(*mem).shared, &(*mem).stacks, &mut (*mem).scratch) };
    reaper_main(shared, stacks, scratch)
}

fn reaper_main(sh: &Shared, stacks: &Stacks, scratch: &mut Scratch) -> ! {
    let fail = |stage: i32, errno: i32| -> ! { sh.finish(None, 0, stage, errno, false) };
    let _ = sys::setsid();
    let _ = sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as usize);
    if sys::getppid() != sh.parent.load(Ordering::Relaxed) {
        // codeward died before PDEATHSIG was armed.
        sys::exit(1);
    }
    let _ = sys::set_name(c"codeward-reaper");
    sys::reset_signal_dispositions();
    if let Err(e) = sys::set_sigmask(REAPER_SIGNALS) {
        fail(stage::REAPER, e);
    }
    let sock = sh.sock.load(Ordering::Relaxed);
    close_all_but(sock);
    let sfd = match sys::signalfd(REAPER_SIGNALS, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) {
        Ok(fd) => fd as c_int,
        Err(e) => fail(stage::REAPER, e),
    };

    // Warm: wait for the handoff (or for the end).
    let fds = loop {
        let mut pfds = [pollfd(sfd), pollfd(sock)];
        if sys::poll(&mut pfds, -1).is_err() {
            sys::exit(1);
        }
        if pfds[0].revents != 0 && drain_signalfd(sfd) {
            sys::exit(0);
        }
        if pfds[1].revents != 0 {
            match recv_handoff(sock) {
                Some(fds) => break fds,
                None => sys::exit(0),
            }
        }
    };
    sh.handed_off.store(1, Ordering::Relaxed);
    let spec = sh.spec.load(Ordering::Acquire);
    if spec.is_null() {
        fail(stage::REAPER, libc::EINVAL);
    }
    // SAFETY: codeward published the spec before the handoff and keeps it alive until this
    // reaper is reaped.
    let spec = unsafe { &*spec };

    let mut args = CommandArgs {
        spec,
        stdio: [fds.stdin, fds.stdout, fds.stderr],
        ruleset: fds.ruleset,
        reaper: sys::getpid(),
        shared: sh,
    };
    let cmd_pid_slot = sh.cmd_pid.as_ptr();
    // SAFETY: the command runs on its own stack in `stacks` until it execs or exits, and we are
    // suspended (CLONE_VFORK) until then, so `args` outlives its use; `command_entry` never
    // returns.
    let child = unsafe {
        sys::clone_vfork(
            command_entry,
            stacks.command_top(),
            (&raw mut args).cast(),
            cmd_pid_slot,
        )
    };
    let child = match child {
        Ok(pid) => pid as libc::pid_t,
        Err(e) => fail(stage::FORK, e),
    };
    sh.cmd_left.store(1, Ordering::Release);
    for fd in [fds.stdin, fds.stdout, fds.stderr, fds.ruleset] {
        if fd >= 0 {
            sys::close(fd);
        }
    }
    let cmd_stage = sh.cmd_stage.load(Ordering::Acquire);
    if cmd_stage != stage::NONE {
        let mut ws = 0;
        let _ = sys::wait4(child, &mut ws, libc::__WALL);
        fail(cmd_stage, sh.cmd_errno.load(Ordering::Relaxed));
    }

    let mut cmd_status: Option<i32> = None;
    let mut kill_requested = false;
    while cmd_status.is_none() && !kill_requested {
        let mut pfds = [pollfd(sfd), pollfd(sock)];
        if sys::poll(&mut pfds, -1).is_err() {
            kill_requested = true;
            break;
        }
        if pfds[0].revents != 0 && drain_signalfd(sfd) {
            kill_requested = true;
        }
        reap_nohang(child, &mut cmd_status);
        if pfds[1].revents != 0 {
            kill_requested = true;
        }
    }
    let killed = kill_tree(scratch, sfd, child, &mut cmd_status);
    sh.finish(cmd_status, killed, stage::NONE, 0, kill_requested)
}

fn pollfd(fd: c_int) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// The fds of one handoff, as numbered in the reaper (-1: none).
struct HandoffFds {
    stdin: c_int,
    stdout: c_int,
    stderr: c_int,
    ruleset: c_int,
}

/// Receives the handoff: one [`HANDOFF`] byte with 3 (stdio) or 4 (plus ruleset) fds. `None`
/// on EOF, an error or a malformed message (any fds received are closed).
fn recv_handoff(sock: c_int) -> Option<HandoffFds> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; the fields set below make it describe live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `iov`/`control`, alive for the call.
    let n = unsafe { sys::recvmsg(sock, &raw mut msg, libc::MSG_CMSG_CLOEXEC) }.ok()?;
    let mut fds = [-1 as c_int; 4];
    let mut count = 0usize;
    // SAFETY: the CMSG_* helpers walk the control buffer the kernel filled, within
    // `msg_controllen`; pure pointer arithmetic.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<c_int>();
                let header = libc::CMSG_LEN(0) as usize;
                let n_fds = ((*cmsg).cmsg_len as usize).saturating_sub(header) / 4;
                for i in 0..n_fds {
                    let fd = data.add(i).read_unaligned();
                    match fds.get_mut(count) {
                        Some(slot) => {
                            *slot = fd;
                            count += 1;
                        }
                        None => sys::close(fd),
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    let ok = n == 1
        && byte[0] == HANDOFF
        && msg.msg_flags & libc::MSG_CTRUNC == 0
        && (count == 3 || count == 4);
    if !ok {
        for fd in fds.into_iter().filter(|fd| *fd >= 0) {
            sys::close(fd);
        }
        return None;
    }
    Some(HandoffFds {
        stdin: fds[0],
        stdout: fds[1],
        stderr: fds[2],
        ruleset: fds[3],
    })
}

/// Closes every fd inherited from codeward but `keep` and puts `/dev/null` on 0–2: the reaper
/// never execs, so close-on-exec does not help, and a kept copy of another call's pipe end (or
/// of a listening socket, or of codeward's own stdout) would stay open as long as it lives.
fn close_all_but(keep: c_int) {
    let keep_u = keep.max(0) as u32;
    if keep_u > 0 {
        let _ = sys::close_range(0, keep_u - 1, 0);
    }
    let _ = sys::close_range(keep_u.saturating_add(1), u32::MAX, 0);
    // The lowest free fds get /dev/null until 0, 1 and 2 are all taken.
    for _ in 0..3 {
        match sys::openat(
            libc::AT_FDCWD,
            c"/dev/null".as_ptr().cast(),
            libc::O_RDWR | libc::O_CLOEXEC,
        ) {
            Ok(fd) if fd > 2 => {
                sys::close(fd as c_int);
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

/// Drains the signalfd; true when a terminating signal (not SIGCHLD) arrived.
fn drain_signalfd(sfd: c_int) -> bool {
    let mut terminate = false;
    let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
    loop {
        match sys::read(sfd, &mut buf) {
            Ok(n) if n == buf.len() => {
                let signo = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
                if signo != libc::SIGCHLD as u32 {
                    terminate = true;
                }
            }
            _ => return terminate,
        }
    }
}

/// Reaps every exited child without blocking, recording the command's status; true when the
/// reaper has no children left (`ECHILD`).
fn reap_nohang(cmd: libc::pid_t, cmd_status: &mut Option<i32>) -> bool {
    loop {
        let mut ws = 0;
        match sys::wait4(-1, &mut ws, libc::WNOHANG | libc::__WALL) {
            Ok(0) => return false,
            Ok(pid) => {
                if pid as libc::pid_t == cmd {
                    *cmd_status = Some(ws);
                }
            }
            Err(e) => return e == libc::ECHILD,
        }
    }
}

/// Stops, kills and reaps every descendant; returns how many processes were SIGKILLed. When the
/// reaper has no children left (`ECHILD`) the tree is empty and `/proc` is not scanned.
fn kill_tree(s: &mut Scratch, sfd: c_int, cmd: libc::pid_t, cmd_status: &mut Option<i32>) -> u32 {
    let mut seen_len = 0usize;
    let mut killed: u32 = 0;
    loop {
        if reap_nohang(cmd, cmd_status) {
            return killed;
        }
        // Stop until a scan finds nothing new: stopped processes cannot fork.
        let mut round_len = 0usize;
        loop {
            let n = scan_descendants(s);
            let mut new = 0;
            for i in 0..n {
                let Some(&pid) = s.desc.get(i) else { break };
                if s.round.get(..round_len).unwrap_or(&[]).contains(&pid) {
                    continue;
                }
                let _ = sys::kill(pid, libc::SIGSTOP);
                if let Some(slot) = s.round.get_mut(round_len) {
                    *slot = pid;
                    round_len += 1;
                }
                new += 1;
            }
            if new == 0 {
                break;
            }
        }
        for i in 0..round_len {
            let Some(&pid) = s.round.get(i) else { break };
            let _ = sys::kill(pid, libc::SIGKILL);
            if !s.seen.get(..seen_len).unwrap_or(&[]).contains(&pid) {
                killed = killed.saturating_add(1);
                if let Some(slot) = s.seen.get_mut(seen_len) {
                    *slot = pid;
                    seen_len += 1;
                }
            }
        }
        if reap_nohang(cmd, cmd_status) {
            return killed;
        }
        // Wait briefly for SIGCHLD before rescanning.
        let mut pfds = [pollfd(sfd)];
        let _ = sys::poll(&mut pfds, 5);
        drain_signalfd(sfd);
    }
}

/// Fills `s.desc` with the live (not zombie) descendants of this process; returns how many.
fn scan_descendants(s: &mut Scratch) -> usize {
    let me = sys::getpid();
    let total = scan_proc(s);
    // Transitive closure by ppid over all descendants (zombies too, so their children are
    // found); `taken` marks entries already in `desc`.
    let mut n = 0usize;
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..total {
            let (Some(&taken), Some(&ppid), Some(&pid)) =
                (s.taken.get(i), s.ppids.get(i), s.pids.get(i))
            else {
                break;
            };
            if taken {
                continue;
            }
            if ppid == me || s.desc.get(..n).unwrap_or(&[]).contains(&ppid) {
                if let Some(t) = s.taken.get_mut(i) {
                    *t = true;
                }
                if let Some(slot) = s.desc.get_mut(n) {
                    *slot = pid;
                    n += 1;
                }
                changed = true;
            }
        }
    }
    // Keep the live ones, in place.
    let mut live = 0usize;
    for i in 0..total {
        let (Some(&taken), Some(&zombie), Some(&pid)) =
            (s.taken.get(i), s.zombie.get(i), s.pids.get(i))
        else {
            break;
        };
        if taken
            && !zombie
            && let Some(slot) = s.desc.get_mut(live)
        {
            *slot = pid;
            live += 1;
        }
    }
    live
}

/// Reads pid, ppid and zombie-ness of every process into the scratch tables; returns how many
/// entries were filled (at most `MAX_PROCS`; a bigger system is scanned in part, and the kill
/// loop's rescans pick up the rest as processes die).
fn scan_proc(s: &mut Scratch) -> usize {
    let dir = match sys::openat(
        libc::AT_FDCWD,
        c"/proc".as_ptr().cast(),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    ) {
        Ok(fd) => fd as c_int,
        Err(_) => return 0,
    };
    let cap = MAX_PROCS.min(s.pids.len());
    let mut total = 0usize;
    'outer: loop {
        let n = match sys::getdents64(dir, &mut s.dents) {
            Ok(0) | Err(_) => break,
            Ok(n) => n.min(s.dents.len()),
        };
        let mut off = 0usize;
        while off + 19 < n {
            let reclen = match s.dents.get(off + 16..off + 18) {
                Some(&[a, b]) => u16::from_ne_bytes([a, b]) as usize,
                _ => break,
            };
            if reclen == 0 {
                break;
            }
            let name = s.dents.get(off + 19..(off + reclen).min(n)).unwrap_or(&[]);
            off += reclen;
            let Some(pid) = parse_pid(name) else { continue };
            if total >= cap {
                break 'outer;
            }
            if let Some((ppid, zombie)) = read_stat(dir, name)
                && let (Some(p), Some(pp), Some(z), Some(t)) = (
                    s.pids.get_mut(total),
                    s.ppids.get_mut(total),
                    s.zombie.get_mut(total),
                    s.taken.get_mut(total),
                )
            {
                *p = pid;
                *pp = ppid;
                *z = zombie;
                *t = false;
                total += 1;
            }
        }
    }
    sys::close(dir);
    total
}

/// The decimal pid of a NUL-terminated `/proc` entry name, if it is one.
fn parse_pid(name: &[u8]) -> Option<i32> {
    let mut pid: i32 = 0;
    let mut digits = 0;
    for &b in name {
        if b == 0 {
            break;
        }
        if !b.is_ascii_digit() {
            return None;
        }
        pid = pid.checked_mul(10)?.checked_add(i32::from(b - b'0'))?;
        digits += 1;
    }
    (digits > 0).then_some(pid)
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(fd: c_int, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..) {
        if rest.is_empty() {
            break;
        }
        match sys::read(fd, rest) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

/// `(ppid, zombie)` from `/proc/<name>/stat`, relative to the `/proc` dir fd.
fn read_stat(dir: c_int, name: &[u8]) -> Option<(i32, bool)> {
    let mut path = [0u8; 32];
    let mut len = 0;
    for &b in name {
        if b == 0 {
            break;
        }
        *path.get_mut(len)? = b;
        len += 1;
    }
    for &b in b"/stat\0" {
        *path.get_mut(len)? = b;
        len += 1;
    }
    let fd = sys::openat(dir, path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC).ok()? as c_int;
    let mut buf = [0u8; 512];
    let n = read_full(fd, &mut buf);
    sys::close(fd);
    let line = buf.get(..n)?;
    // "pid (comm) S ppid ..." — comm may hold ')' and spaces, so split at the last ')'.
    let close = line.iter().rposition(|&b| b == b')')?;
    let rest = line.get(close + 2..)?;
    let state = *rest.first()?;
    let mut ppid: i32 = 0;
    for &b in rest.get(2..)? {
        if b == b' ' {
            break;
        }
        if !b.is_ascii_digit() {
            return None;
        }
        ppid = ppid.checked_mul(10)?.checked_add(i32::from(b - b'0'))?;
    }
    Some((ppid, state == b'Z' || state == b'X'))
}

/// What the cloned command needs.
struct CommandArgs<'a> {
    spec: &'a ChildSpec,
    stdio: [c_int; 3],
    ruleset: c_int,
    reaper: libc::pid_t,
    shared: &'a Shared,
}

/// The command's start routine on its own stack: confine, then exec. Never returns.
///
/// # Safety
/// Only as the start routine of the reaper's `clone_vfork`, with `arg` its `CommandArgs`.
unsafe extern "C" fn command_entry(arg: *mut c_void) -> ! {
    // SAFETY: the reaper passes its CommandArgs and stays suspended (CLONE_VFORK) while we use
    // it.
    let args = unsafe { &*arg.cast::<CommandArgs<'_>>() };
    let errno = command_main(args);
    args.shared.cmd_errno.store(errno.1, Ordering::Relaxed);
    args.shared.cmd_stage.store(errno.0, Ordering::Release);
    sys::exit(127)
}

/// Confines and execs; returns `(stage, errno)` only on failure.
fn command_main(args: &CommandArgs<'_>) -> (i32, sys::Errno) {
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as usize);
    if sys::getppid() != args.reaper {
        sys::exit(127);
    }
    if let Err(e) = sys::set_sigmask(0) {
        return (stage::REAPER, e);
    }
    for (target, fd) in args.stdio.into_iter().enumerate() {
        let target = target as c_int;
        let r = if fd == target {
            sys::fcntl(fd, libc::F_SETFD, 0)
        } else {
            sys::dup3(fd, target)
        };
        if let Err(e) = r {
            return (stage::STDIO, e);
        }
    }
    // Everything above stdio closes on exec (the ruleset fd is used before exec). Failure is
    // harmless: every fd the reaper received or kept is close-on-exec already.
    let _ = sys::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
    if let Err(e) = set_rlimits(&args.spec.rlimits) {
        return (stage::RLIMIT, e);
    }
    if let Err(e) = sys::chdir(&args.spec.cwd) {
        return (stage::CHDIR, e);
    }
    if let Err(e) = sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1) {
        return (stage::NO_NEW_PRIVS, e);
    }
    if args.ruleset >= 0
        && let Err(e) = sys::landlock_restrict_self(args.ruleset)
    {
        return (stage::LANDLOCK, e);
    }
    // SAFETY: path, argv and envp are NUL-terminated strings / NULL-terminated arrays that
    // codeward keeps alive until the reaper is reaped.
    let e = unsafe {
        sys::execve(
            args.spec.path.as_ptr(),
            args.spec.argv_ptrs.as_ptr(),
            args.spec.envp_ptrs.as_ptr(),
        )
    };
    (stage::EXEC, e)
}

fn set_rlimits(r: &Rlimits) -> Result<(), sys::Errno> {
    let set = |res: c_int, v: Option<u64>| -> Result<(), sys::Errno> {
        let Some(v) = v else { return Ok(()) };
        let lim = |v: u64| libc::rlimit64 {
            rlim_cur: v,
            rlim_max: v,
        };
        match sys::prlimit(res, Some(lim(v))) {
            Ok(_) => Ok(()),
            // Never above the current hard limit (raising it needs privileges).
            Err(libc::EPERM) => {
                let cur = sys::prlimit(res, None)?;
                sys::prlimit(res, Some(lim(v.min(cur.rlim_max)))).map(|_| ())
            }
            Err(e) => Err(e),
        }
    };
    set(libc::RLIMIT_CORE as c_int, Some(0))?;
    set(libc::RLIMIT_CPU as c_int, r.cpu_secs)?;
    set(libc::RLIMIT_FSIZE as c_int, r.file_bytes)?;
    set(libc::RLIMIT_NOFILE as c_int, r.open_files)?;
    set(libc::RLIMIT_AS as c_int, r.memory_bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_parse_from_proc_names() {
        assert_eq!(parse_pid(b"1234\0"), Some(1234));
        assert_eq!(parse_pid(b"self\0"), None);
        assert_eq!(parse_pid(b"\0"), None);
        assert_eq!(parse_pid(b"99999999999\0"), None);
    }

    #[test]
    fn stat_of_self_gives_parent() {
        let dir = sys::openat(
            libc::AT_FDCWD,
            c"/proc".as_ptr().cast(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
        .expect("open /proc") as c_int;
        let me = std::process::id().to_string();
        let mut name = me.into_bytes();
        name.push(0);
        let got = read_stat(dir, &name);
        sys::close(dir);
        // SAFETY: getppid has no preconditions.
        let ppid = unsafe { libc::getppid() };
        assert_eq!(got, Some((ppid, false)));
    }
}
