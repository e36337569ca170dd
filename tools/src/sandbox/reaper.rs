//! The code that runs after `fork`: the per-call reaper and the command it starts (SPEC §6.1,
//! §6.3). Everything here is async-signal-safe — raw `libc` calls on memory prepared before the
//! fork ([`ChildSpec`], [`Scratch`]); no allocation, no locks, no formatting, no panics.
//!
//! The reaper: `setsid`, `PR_SET_CHILD_SUBREAPER`, `PR_SET_PDEATHSIG(SIGTERM)`, blocks
//! SIGCHLD/SIGTERM/SIGINT/SIGHUP into a `signalfd`, forks the command, then polls the signalfd and
//! the control pipe. A byte or EOF on the control pipe, or a terminating signal, is a kill
//! request; the command's exit ends the wait too (leftovers are then killed, reason
//! `completed`). Killing: scan `/proc` for live descendants (transitively by ppid; orphans
//! reparent to the reaper), SIGSTOP them until a scan finds none new (stopped processes cannot
//! fork), SIGKILL them, reap, repeat until `waitpid` says `ECHILD`. Then one [`StatusMsg`] on
//! the status pipe and `_exit`.
//!
//! The command: `PR_SET_PDEATHSIG(SIGKILL)`, default signal mask and dispositions, stdio
//! `dup2`s, every other fd close-on-exec, rlimits, `chdir`, `PR_SET_NO_NEW_PRIVS`,
//! `landlock_restrict_self`, `execve`. A failing step writes `(stage, errno)` to a close-on-exec
//! pipe the reaper reads, which tells exec success (EOF) from failure.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use libc::{c_char, c_int};

use super::Rlimits;

/// Everything the reaper and the command need, prepared before `fork`.
pub(crate) struct ChildSpec {
    /// Resolved executable path.
    pub path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const c_char>,
    /// Working directory of the command.
    pub cwd: CString,
    /// Landlock ruleset fd, when Landlock is available.
    pub ruleset: Option<OwnedFd>,
    /// Resource limits.
    pub rlimits: Rlimits,
    /// Command stdin (pipe read end or `/dev/null`).
    pub stdin: OwnedFd,
    /// Command stdout (pipe write end).
    pub stdout: OwnedFd,
    /// Command stderr (pipe write end).
    pub stderr: OwnedFd,
    /// Reaper → codeward status pipe (write end).
    pub status: OwnedFd,
    /// Codeward → reaper control pipe (read end).
    pub control: OwnedFd,
}

// SAFETY: the raw pointers point into the `CString`s owned by the same struct (heap data that
// does not move when the struct moves); nothing else aliases them.
unsafe impl Send for ChildSpec {}

impl ChildSpec {
    /// Builds the NULL-terminated argv/envp arrays.
    #[expect(
        clippy::too_many_arguments,
        reason = "one plain constructor of a plain struct"
    )]
    pub(crate) fn new(
        path: CString,
        argv: Vec<CString>,
        envp: Vec<CString>,
        cwd: CString,
        ruleset: Option<OwnedFd>,
        rlimits: Rlimits,
        stdio: [OwnedFd; 3],
        status: OwnedFd,
        control: OwnedFd,
    ) -> Self {
        let ptrs = |v: &[CString]| -> Vec<*const c_char> {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let argv_ptrs = ptrs(&argv);
        let envp_ptrs = ptrs(&envp);
        let [stdin, stdout, stderr] = stdio;
        Self {
            path,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            cwd,
            ruleset,
            rlimits,
            stdin,
            stdout,
            stderr,
            status,
            control,
        }
    }
}

/// Capacity of the `/proc` scan tables.
const MAX_PROCS: usize = 32_768;

/// Buffers for scanning `/proc`, allocated once in the spawner thread and inherited (copy on
/// write) by every reaper.
pub(crate) struct Scratch {
    pids: Box<[i32]>,
    ppids: Box<[i32]>,
    desc: Box<[i32]>,
    round: Box<[i32]>,
    seen: Box<[i32]>,
    zombie: Box<[bool]>,
    taken: Box<[bool]>,
    dents: Box<[u8]>,
    stack: Box<[u8]>,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Self {
            pids: vec![0; MAX_PROCS].into_boxed_slice(),
            ppids: vec![0; MAX_PROCS].into_boxed_slice(),
            desc: vec![0; MAX_PROCS].into_boxed_slice(),
            round: vec![0; MAX_PROCS].into_boxed_slice(),
            seen: vec![0; MAX_PROCS].into_boxed_slice(),
            zombie: vec![false; MAX_PROCS].into_boxed_slice(),
            taken: vec![false; MAX_PROCS].into_boxed_slice(),
            dents: vec![0; 32 * 1024].into_boxed_slice(),
            stack: vec![0; 256 * 1024].into_boxed_slice(),
        }
    }
}

/// Stage of the command setup that failed (`StatusMsg::stage`).
pub(crate) mod stage {
    /// Everything worked.
    pub(crate) const NONE: i32 = 0;
    /// `fork` of the command failed.
    pub(crate) const FORK: i32 = 1;
    /// `dup2` of stdio failed.
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

const MAGIC: u32 = 0x6377_7270; // "cwrp"

/// The reaper's single report on the status pipe.
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
}

/// Size of an encoded [`StatusMsg`].
pub(crate) const STATUS_LEN: usize = 28;

impl StatusMsg {
    fn encode(&self) -> [u8; STATUS_LEN] {
        let words: [u32; 7] = [
            MAGIC,
            u32::from(self.wait_status.is_some()),
            self.wait_status.unwrap_or(0) as u32,
            self.killed,
            self.stage as u32,
            self.errno as u32,
            u32::from(self.kill_requested),
        ];
        let mut out = [0u8; STATUS_LEN];
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_ne_bytes());
        }
        out
    }

    /// Decodes a message; `None` when it is not one.
    pub(crate) fn decode(buf: &[u8; STATUS_LEN]) -> Option<Self> {
        let mut w = [0u32; 7];
        for (slot, chunk) in w.iter_mut().zip(buf.chunks_exact(4)) {
            *slot = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        (w[0] == MAGIC).then_some(Self {
            wait_status: (w[1] != 0).then_some(w[2] as i32),
            killed: w[3],
            stage: w[4] as i32,
            errno: w[5] as i32,
            kill_requested: w[6] != 0,
        })
    }
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Writes all of `buf` to `fd`, retrying on `EINTR`; errors are ignored (the reader is gone).
fn write_all(fd: c_int, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is a live slice; write reads at most `buf.len()` bytes from it.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return;
        }
        buf = buf.get(n as usize..).unwrap_or(&[]);
    }
}

/// Entry point of the forked reaper. Never returns.
///
/// # Safety
/// Must be called only in the child of a `fork`, with `spec`/`scratch` prepared before it.
pub(crate) unsafe fn reaper_main(
    spec: &ChildSpec,
    scratch: &mut Scratch,
    parent: libc::pid_t,
) -> ! {
    let status_fd = spec.status.as_raw_fd();
    let fail = |stage: i32, errno: i32| -> ! {
        let msg = StatusMsg {
            wait_status: None,
            killed: 0,
            stage,
            errno,
            kill_requested: false,
        };
        write_all(status_fd, &msg.encode());
        // SAFETY: _exit is async-signal-safe and ends the process.
        unsafe { libc::_exit(0) }
    };
    // SAFETY: plain syscalls on integers and on a stack `sigset_t` we initialise first.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() != parent {
            // codeward died before PDEATHSIG was armed.
            libc::_exit(1);
        }
    }
    close_other_fds(spec);
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t owned by this frame.
    let sfd = unsafe {
        libc::sigemptyset(&mut set);
        for sig in [
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
        ] {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    };
    if sfd < 0 {
        fail(stage::REAPER, errno());
    }
    let mut errpipe = [0 as c_int; 2];
    // SAFETY: `errpipe` has room for the two fds pipe2 writes.
    if unsafe { libc::pipe2(errpipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        fail(stage::REAPER, errno());
    }
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let mut args = CommandArgs {
        spec,
        errfd: errpipe[1],
        reaper: me,
        sfd,
        err_read: errpipe[0],
    };
    // vfork-style clone: the command shares our memory (no page-table copy) on its own stack,
    // and we are suspended until it execs or exits, like glibc's posix_spawn.
    let stack_top = {
        let stack = &mut scratch.stack;
        // SAFETY: one past the end of the stack buffer, rounded down to 16 bytes; the child
        // writes only below it.
        let top = unsafe { stack.as_mut_ptr().add(stack.len()) } as usize & !15;
        top as *mut libc::c_void
    };
    // SAFETY: `command_entry` never returns into our frames (it execs or `_exit`s); `args`
    // outlives the call because CLONE_VFORK suspends us until the child execs or exits.
    let child = unsafe {
        libc::clone(
            command_entry,
            stack_top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&raw mut args).cast(),
        )
    };
    if child < 0 {
        fail(stage::FORK, errno());
    }
    // SAFETY: closing fds this process owns and no longer needs; the command holds its copies.
    unsafe {
        libc::close(errpipe[1]);
        libc::close(spec.stdin.as_raw_fd());
        libc::close(spec.stdout.as_raw_fd());
        libc::close(spec.stderr.as_raw_fd());
        if let Some(fd) = &spec.ruleset {
            libc::close(fd.as_raw_fd());
        }
    }
    let mut report = [0u8; 8];
    let n = read_full(errpipe[0], &mut report);
    // SAFETY: closing our read end.
    unsafe { libc::close(errpipe[0]) };
    if n == report.len() {
        let st = i32::from_ne_bytes([report[0], report[1], report[2], report[3]]);
        let en = i32::from_ne_bytes([report[4], report[5], report[6], report[7]]);
        let mut ws = 0;
        // SAFETY: waiting for our own child; `ws` is a valid out pointer.
        unsafe { libc::waitpid(child, &mut ws, 0) };
        fail(st, en);
    }

    let control = spec.control.as_raw_fd();
    let mut cmd_status: Option<i32> = None;
    let mut kill_requested = false;
    while cmd_status.is_none() && !kill_requested {
        let mut fds = [
            libc::pollfd {
                fd: sfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: control,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a live array of two pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            kill_requested = true;
            break;
        }
        if fds[0].revents != 0 && drain_signalfd(sfd) {
            kill_requested = true;
        }
        reap_nohang(child, &mut cmd_status);
        if fds[1].revents != 0 {
            kill_requested = true;
        }
    }
    let killed = kill_tree(scratch, sfd, child, &mut cmd_status);
    let msg = StatusMsg {
        wait_status: cmd_status,
        killed,
        stage: stage::NONE,
        errno: 0,
        kill_requested,
    };
    write_all(status_fd, &msg.encode());
    // SAFETY: _exit ends the reaper.
    unsafe { libc::_exit(0) }
}

/// Closes every fd inherited from codeward except the ones in `spec`: the reaper never execs, so
/// close-on-exec does not help, and a kept copy of another call's pipe end (or of a listening
/// socket) would hold it open for as long as this reaper lives.
fn close_other_fds(spec: &ChildSpec) {
    let mut keep = [
        spec.stdin.as_raw_fd(),
        spec.stdout.as_raw_fd(),
        spec.stderr.as_raw_fd(),
        spec.status.as_raw_fd(),
        spec.control.as_raw_fd(),
        spec.ruleset.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
    ];
    keep.sort_unstable();
    let mut next: c_int = 3;
    for fd in keep {
        if fd < next {
            continue;
        }
        if fd > next {
            close_range(next as u32, (fd - 1) as u32);
        }
        next = fd + 1;
    }
    close_range(next as u32, u32::MAX);
}

/// `close_range(first, last, 0)`, falling back to `close` over the soft fd limit.
fn close_range(first: u32, last: u32) {
    // SAFETY: close_range only closes fds of this process.
    if unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) } == 0 {
        return;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let end = (lim.rlim_cur.min(65_536) as u32).min(last.saturating_add(1));
    for fd in first..end {
        // SAFETY: closing an fd of this process; EBADF is harmless.
        unsafe { libc::close(fd as c_int) };
    }
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(fd: c_int, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        let rest = buf.get_mut(got..).unwrap_or(&mut []);
        // SAFETY: `rest` is a live mutable slice of `rest.len()` bytes.
        let n = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    got
}

/// Drains the signalfd; true when a terminating signal (not SIGCHLD) arrived.
fn drain_signalfd(sfd: c_int) -> bool {
    let mut terminate = false;
    loop {
        // SAFETY: signalfd_siginfo is plain data.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: `info` is a live buffer of `size` bytes.
        let n = unsafe { libc::read(sfd, (&raw mut info).cast(), size) };
        if n != size as isize {
            return terminate;
        }
        if info.ssi_signo != libc::SIGCHLD as u32 {
            terminate = true;
        }
    }
}

/// Reaps every exited child without blocking, recording the command's status; true when the
/// reaper has no children left (`ECHILD`).
fn reap_nohang(cmd: libc::pid_t, cmd_status: &mut Option<i32>) -> bool {
    loop {
        let mut ws = 0;
        // SAFETY: `ws` is a valid out pointer.
        let r = unsafe { libc::waitpid(-1, &mut ws, libc::WNOHANG | libc::__WALL) };
        if r > 0 {
            if r == cmd {
                *cmd_status = Some(ws);
            }
            continue;
        }
        if r < 0 && errno() == libc::EINTR {
            continue;
        }
        return r < 0;
    }
}

/// Stops, kills and reaps every descendant; returns how many processes were SIGKILLed.
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
                let pid = s.desc[i];
                if s.round[..round_len].contains(&pid) {
                    continue;
                }
                // SAFETY: signalling a descendant pid we just found.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                if round_len < s.round.len() {
                    s.round[round_len] = pid;
                    round_len += 1;
                }
                new += 1;
            }
            if new == 0 {
                break;
            }
        }
        for i in 0..round_len {
            let pid = s.round[i];
            // SAFETY: signalling a stopped descendant.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            if !s.seen[..seen_len].contains(&pid) {
                killed = killed.saturating_add(1);
                if seen_len < s.seen.len() {
                    s.seen[seen_len] = pid;
                    seen_len += 1;
                }
            }
        }
        if reap_nohang(cmd, cmd_status) {
            return killed;
        }
        // Wait briefly for SIGCHLD before rescanning.
        let mut fds = [libc::pollfd {
            fd: sfd,
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: `fds` is a live array of one pollfd.
        unsafe { libc::poll(fds.as_mut_ptr(), 1, 5) };
        drain_signalfd(sfd);
    }
}

/// Fills `s.desc` with the live (not zombie) descendants of this process; returns how many.
fn scan_descendants(s: &mut Scratch) -> usize {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let total = scan_proc(s);
    // Transitive closure by ppid over all descendants (zombies too, so their children are
    // found); `taken` marks entries already in `desc`.
    let mut n = 0usize;
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..total {
            if s.taken[i] {
                continue;
            }
            let ppid = s.ppids[i];
            if ppid == me || s.desc[..n].contains(&ppid) {
                s.taken[i] = true;
                if n < s.desc.len() {
                    s.desc[n] = s.pids[i];
                    n += 1;
                }
                changed = true;
            }
        }
    }
    // Keep the live ones, in place.
    let mut live = 0usize;
    for i in 0..total {
        if s.taken[i] && !s.zombie[i] && live < s.desc.len() {
            s.desc[live] = s.pids[i];
            live += 1;
        }
    }
    live
}

/// Reads pid, ppid and zombie-ness of every process into the scratch tables; returns how many
/// entries were filled (at most `MAX_PROCS`; a bigger system is scanned in part, and the kill
/// loop's rescans pick up the rest as processes die).
fn scan_proc(s: &mut Scratch) -> usize {
    // SAFETY: a NUL-terminated literal path.
    let dir = unsafe {
        libc::open(
            c"/proc".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        return 0;
    }
    let mut total = 0usize;
    'outer: loop {
        // SAFETY: `dents` is a live buffer of `dents.len()` bytes.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir,
                s.dents.as_mut_ptr(),
                s.dents.len(),
            )
        };
        if n <= 0 {
            break;
        }
        let n = n as usize;
        let mut off = 0usize;
        while off + 19 < n {
            let reclen = match s.dents.get(off + 16..off + 18) {
                Some(b) => u16::from_ne_bytes([b[0], b[1]]) as usize,
                None => break,
            };
            if reclen == 0 {
                break;
            }
            let name = s.dents.get(off + 19..(off + reclen).min(n)).unwrap_or(&[]);
            off += reclen;
            let Some(pid) = parse_pid(name) else { continue };
            if total >= MAX_PROCS.min(s.pids.len()) {
                break 'outer;
            }
            if let Some((ppid, zombie)) = read_stat(dir, name) {
                s.pids[total] = pid;
                s.ppids[total] = ppid;
                s.zombie[total] = zombie;
                s.taken[total] = false;
                total += 1;
            }
        }
    }
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(dir) };
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
    // SAFETY: `path` is NUL-terminated (written above) and lives across the call.
    let fd = unsafe { libc::openat(dir, path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut buf = [0u8; 512];
    let n = read_full(fd, &mut buf);
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(fd) };
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

/// What the cloned command child needs.
struct CommandArgs<'a> {
    spec: &'a ChildSpec,
    errfd: c_int,
    reaper: libc::pid_t,
    sfd: c_int,
    err_read: c_int,
}

extern "C" fn command_entry(arg: *mut libc::c_void) -> c_int {
    // SAFETY: `arg` is the `CommandArgs` the reaper passed to clone, alive while it is
    // suspended (CLONE_VFORK); closing fds in the child affects only its own fd table.
    unsafe {
        let args = &*arg.cast::<CommandArgs<'_>>();
        libc::close(args.sfd);
        libc::close(args.err_read);
        command_main(args.spec, args.errfd, args.reaper)
    }
}

/// The forked command: confine, then exec. Never returns.
///
/// # Safety
/// Must be called only in the child of the reaper's `fork`.
unsafe fn command_main(spec: &ChildSpec, errfd: c_int, reaper: libc::pid_t) -> ! {
    let fail = |stage: i32| -> ! {
        let e = errno();
        let mut report = [0u8; 8];
        report[..4].copy_from_slice(&stage.to_ne_bytes());
        report[4..].copy_from_slice(&e.to_ne_bytes());
        write_all(errfd, &report);
        // SAFETY: _exit ends the child.
        unsafe { libc::_exit(127) }
    };
    // SAFETY: integer-only prctl/getppid calls.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() != reaper {
            libc::_exit(127);
        }
    }
    // Default signal mask and dispositions (Rust ignores SIGPIPE; ignored stays ignored on exec).
    // SAFETY: `set` and `act` are plain data initialised before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_DFL;
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &act, std::ptr::null_mut());
            }
        }
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    let stdio = [
        spec.stdin.as_raw_fd(),
        spec.stdout.as_raw_fd(),
        spec.stderr.as_raw_fd(),
    ];
    for (target, fd) in stdio.into_iter().enumerate() {
        let target = target as c_int;
        // SAFETY: dup2/fcntl on fds we own.
        let ok = unsafe {
            if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(fd, target) == target
            }
        };
        if !ok {
            fail(stage::STDIO);
        }
    }
    // Everything above stdio closes on exec (the ruleset and error fds are used before exec).
    // SAFETY: close_range with the CLOEXEC flag only changes fd flags; failure is harmless
    // because codeward opens all its fds close-on-exec anyway.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    set_rlimits(&spec.rlimits).unwrap_or_else(|()| fail(stage::RLIMIT));
    // SAFETY: `cwd` is a NUL-terminated CString prepared before fork.
    if unsafe { libc::chdir(spec.cwd.as_ptr()) } != 0 {
        fail(stage::CHDIR);
    }
    // SAFETY: integer-only prctl.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
        fail(stage::NO_NEW_PRIVS);
    }
    if let Some(fd) = &spec.ruleset {
        // SAFETY: landlock_restrict_self takes a ruleset fd and flags; no memory.
        let r = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0u32) };
        if r != 0 {
            fail(stage::LANDLOCK);
        }
    }
    // SAFETY: path, argv and envp are NUL-terminated strings / NULL-terminated arrays prepared
    // before fork and alive in this copy of the address space.
    unsafe {
        libc::execve(
            spec.path.as_ptr(),
            spec.argv_ptrs.as_ptr(),
            spec.envp_ptrs.as_ptr(),
        )
    };
    fail(stage::EXEC)
}

fn set_rlimits(r: &Rlimits) -> Result<(), ()> {
    let set = |res, v: Option<u64>| -> Result<(), ()> {
        let Some(v) = v else { return Ok(()) };
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `cur` is a live rlimit struct getrlimit fills.
        if unsafe { libc::getrlimit(res, &mut cur) } != 0 {
            return Err(());
        }
        // Never above the current hard limit (raising it needs privileges).
        let v = (v as libc::rlim_t).min(cur.rlim_max);
        let lim = libc::rlimit {
            rlim_cur: v,
            rlim_max: v,
        };
        // SAFETY: `lim` is a live rlimit struct.
        if unsafe { libc::setrlimit(res, &lim) } == 0 {
            Ok(())
        } else {
            Err(())
        }
    };
    set(libc::RLIMIT_CORE, Some(0))?;
    set(libc::RLIMIT_CPU, r.cpu_secs)?;
    set(libc::RLIMIT_FSIZE, r.file_bytes)?;
    set(libc::RLIMIT_NOFILE, r.open_files)?;
    set(libc::RLIMIT_AS, r.memory_bytes)?;
    Ok(())
}
