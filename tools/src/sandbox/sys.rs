//! Raw Linux system calls for the code that runs inside a reaper and inside a command before
//! `execve` (see [`super::reaper`]). They return `Err(errno)` and never touch the thread-local
//! `errno`: a reaper is cloned with `CLONE_VM` and runs on the spawner thread's TLS, so a libc
//! wrapper writing `errno` there would race with that thread. No allocation, no locks, no
//! panics; inline assembly for x86_64 and aarch64 only.

use libc::{c_int, c_long, c_void};

/// An errno value.
pub(crate) type Errno = c_int;

/// The result of a system call: its non-negative return value or the errno.
pub(crate) type SysResult = Result<usize, Errno>;

/// One system call with up to six arguments; the raw kernel return value.
///
/// # Safety
/// The arguments must be valid for system call `nr` (pointers to live memory of the right
/// size, and so on).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn raw(nr: c_long, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the caller vouches for the arguments; `syscall` clobbers only rax, rcx and r11.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// One system call with up to six arguments; the raw kernel return value.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn raw(nr: c_long, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the caller vouches for the arguments; `svc 0` clobbers only x0.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a[0] as isize => ret,
            in("x1") a[1],
            in("x2") a[2],
            in("x3") a[3],
            in("x4") a[4],
            in("x5") a[5],
            options(nostack),
        );
    }
    ret
}

fn check(ret: isize) -> SysResult {
    if (-4095..0).contains(&ret) {
        Err(-ret as Errno)
    } else {
        Ok(ret as usize)
    }
}

/// A system call, retried while it fails with `EINTR`.
///
/// # Safety
/// As for [`raw`].
pub(crate) unsafe fn call(nr: c_long, a: [usize; 6]) -> SysResult {
    loop {
        // SAFETY: forwarded from the caller.
        match check(unsafe { raw(nr, a) }) {
            Err(libc::EINTR) => continue,
            r => return r,
        }
    }
}

/// Ends the calling process (every thread of it) with `code`.
pub(crate) fn exit(code: c_int) -> ! {
    loop {
        // SAFETY: exit_group takes an integer and does not return.
        unsafe { raw(libc::SYS_exit_group, [code as usize, 0, 0, 0, 0, 0]) };
    }
}

/// `close(fd)`; errors are ignored.
pub(crate) fn close(fd: c_int) {
    // SAFETY: closing an fd of this process; EBADF is harmless. Not retried on EINTR: the fd is
    // released either way.
    unsafe { raw(libc::SYS_close, [fd as usize, 0, 0, 0, 0, 0]) };
}

/// `read(fd, buf)`.
pub(crate) fn read(fd: c_int, buf: &mut [u8]) -> SysResult {
    // SAFETY: `buf` is a live mutable slice of `buf.len()` bytes.
    unsafe {
        call(
            libc::SYS_read,
            [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    }
}

/// `poll(fds, timeout_ms)` (through `ppoll`, which every architecture has).
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: i64) -> SysResult {
    let ts = libc::timespec {
        tv_sec: timeout_ms / 1000,
        tv_nsec: (timeout_ms % 1000) * 1_000_000,
    };
    let tsp = if timeout_ms < 0 {
        0
    } else {
        (&raw const ts) as usize
    };
    // SAFETY: `fds` is a live array of `fds.len()` pollfds; `ts` outlives the call; no sigmask.
    check(unsafe {
        raw(
            libc::SYS_ppoll,
            [fds.as_mut_ptr() as usize, fds.len(), tsp, 0, 0, 0],
        )
    })
}

/// `wait4(pid, &status, options)`: the pid reaped (0 with `WNOHANG` when none is ready).
pub(crate) fn wait4(pid: libc::pid_t, status: &mut c_int, options: c_int) -> SysResult {
    // SAFETY: `status` is a valid out pointer; no rusage.
    unsafe {
        call(
            libc::SYS_wait4,
            [
                pid as usize,
                (status as *mut c_int) as usize,
                options as usize,
                0,
                0,
                0,
            ],
        )
    }
}

/// `kill(pid, sig)`.
pub(crate) fn kill(pid: libc::pid_t, sig: c_int) -> SysResult {
    // SAFETY: integer arguments only.
    unsafe { call(libc::SYS_kill, [pid as usize, sig as usize, 0, 0, 0, 0]) }
}

/// `getpid()`.
pub(crate) fn getpid() -> libc::pid_t {
    // SAFETY: no arguments; cannot fail.
    unsafe { raw(libc::SYS_getpid, [0; 6]) as libc::pid_t }
}

/// `getppid()`.
pub(crate) fn getppid() -> libc::pid_t {
    // SAFETY: no arguments; cannot fail.
    unsafe { raw(libc::SYS_getppid, [0; 6]) as libc::pid_t }
}

/// `setsid()`.
pub(crate) fn setsid() -> SysResult {
    // SAFETY: no arguments.
    unsafe { call(libc::SYS_setsid, [0; 6]) }
}

/// `prctl(option, arg2)` with integer arguments.
pub(crate) fn prctl(option: c_int, arg2: usize) -> SysResult {
    // SAFETY: integer arguments only (callers pass no pointer options).
    unsafe { call(libc::SYS_prctl, [option as usize, arg2, 0, 0, 0, 0]) }
}

/// `prctl(PR_SET_NAME, name)`.
pub(crate) fn set_name(name: &core::ffi::CStr) -> SysResult {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    unsafe {
        call(
            libc::SYS_prctl,
            [
                libc::PR_SET_NAME as usize,
                name.as_ptr() as usize,
                0,
                0,
                0,
                0,
            ],
        )
    }
}

/// The kernel's `sigset_t` (64 signals in one word).
pub(crate) type SigSet = u64;

/// The bit of `sig` in a [`SigSet`].
pub(crate) const fn sigbit(sig: c_int) -> SigSet {
    1 << (sig - 1)
}

/// `rt_sigprocmask(SIG_SETMASK, set)`.
pub(crate) fn set_sigmask(set: SigSet) -> SysResult {
    // SAFETY: `set` lives across the call; the kernel reads 8 bytes from it.
    unsafe {
        call(
            libc::SYS_rt_sigprocmask,
            [
                libc::SIG_SETMASK as usize,
                (&raw const set) as usize,
                0,
                8,
                0,
                0,
            ],
        )
    }
}

/// Resets every catchable signal to its default action (`SIG_DFL`): a reaper shares codeward's
/// memory, so a handler of codeward's must never run in it, and the command must not inherit
/// ignored signals (Rust ignores `SIGPIPE`).
pub(crate) fn reset_signal_dispositions() {
    // The kernel's `struct sigaction`: handler, flags, restorer, mask — all zero is SIG_DFL.
    let act = [0usize; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `act` is a live kernel sigaction; no old action is asked for. Errors (EINVAL
        // for numbers the kernel reserves) are harmless.
        let _ = unsafe {
            call(
                libc::SYS_rt_sigaction,
                [sig as usize, (&raw const act) as usize, 0, 8, 0, 0],
            )
        };
    }
}

/// `signalfd4(-1, set, flags)`: a new signalfd.
pub(crate) fn signalfd(set: SigSet, flags: c_int) -> SysResult {
    // SAFETY: `set` lives across the call; the kernel reads 8 bytes from it.
    unsafe {
        call(
            libc::SYS_signalfd4,
            [
                usize::MAX,
                (&raw const set) as usize,
                8,
                flags as usize,
                0,
                0,
            ],
        )
    }
}

/// `close_range(first, last, flags)`.
pub(crate) fn close_range(first: u32, last: u32, flags: u32) -> SysResult {
    // SAFETY: integer arguments only; affects only this process's fd table.
    unsafe {
        call(
            libc::SYS_close_range,
            [first as usize, last as usize, flags as usize, 0, 0, 0],
        )
    }
}

/// `dup3(old, new, 0)`.
pub(crate) fn dup3(old: c_int, new: c_int) -> SysResult {
    // SAFETY: integer arguments only.
    unsafe { call(libc::SYS_dup3, [old as usize, new as usize, 0, 0, 0, 0]) }
}

/// `fcntl(fd, cmd, arg)` with an integer argument.
pub(crate) fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> SysResult {
    // SAFETY: integer arguments only (callers pass no pointer commands).
    unsafe { call(libc::SYS_fcntl, [fd as usize, cmd as usize, arg, 0, 0, 0]) }
}

/// `prlimit64(0, resource, new, old)`: sets `new` when given, returns the old limits.
pub(crate) fn prlimit(
    resource: c_int,
    new: Option<libc::rlimit64>,
) -> Result<libc::rlimit64, Errno> {
    let mut old = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let newp = new
        .as_ref()
        .map_or(0, |n| (n as *const libc::rlimit64) as usize);
    // SAFETY: `new` (when given) and `old` are live rlimit64 structs for the whole call.
    unsafe {
        call(
            libc::SYS_prlimit64,
            [0, resource as usize, newp, (&raw mut old) as usize, 0, 0],
        )
    }?;
    Ok(old)
}

/// `chdir(path)`.
pub(crate) fn chdir(path: &core::ffi::CStr) -> SysResult {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    unsafe { call(libc::SYS_chdir, [path.as_ptr() as usize, 0, 0, 0, 0, 0]) }
}

/// `openat(dir, path, flags)`.
pub(crate) fn openat(dir: c_int, path: *const u8, flags: c_int) -> SysResult {
    // SAFETY: the caller passes a NUL-terminated path that outlives the call.
    unsafe {
        call(
            libc::SYS_openat,
            [dir as usize, path as usize, flags as usize, 0, 0, 0],
        )
    }
}

/// `getdents64(fd, buf)`.
pub(crate) fn getdents64(fd: c_int, buf: &mut [u8]) -> SysResult {
    // SAFETY: `buf` is a live mutable slice of `buf.len()` bytes.
    unsafe {
        call(
            libc::SYS_getdents64,
            [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    }
}

/// `recvmsg(fd, msg, flags)`.
///
/// # Safety
/// `msg` must describe live buffers.
pub(crate) unsafe fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> SysResult {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            libc::SYS_recvmsg,
            [fd as usize, msg as usize, flags as usize, 0, 0, 0],
        )
    }
}

/// `landlock_restrict_self(ruleset, 0)`.
pub(crate) fn landlock_restrict_self(ruleset: c_int) -> SysResult {
    // SAFETY: integer arguments only.
    unsafe {
        call(
            libc::SYS_landlock_restrict_self,
            [ruleset as usize, 0, 0, 0, 0, 0],
        )
    }
}

/// `execve(path, argv, envp)`; returns only on failure.
///
/// # Safety
/// `path` must be NUL-terminated; `argv`/`envp` NULL-terminated arrays of NUL-terminated
/// strings, all alive for the call.
pub(crate) unsafe fn execve(
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> Errno {
    // SAFETY: forwarded from the caller.
    match unsafe {
        call(
            libc::SYS_execve,
            [path as usize, argv as usize, envp as usize, 0, 0, 0],
        )
    } {
        Err(e) => e,
        Ok(_) => 0,
    }
}

/// `clone(CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID | SIGCHLD)` running `entry(arg)` on the
/// stack ending at `stack_top` (16-byte aligned); the kernel stores the child's pid in
/// `*child_pid` before the child runs. The caller is suspended until the child execs or exits.
/// Returns the child's pid.
///
/// # Safety
/// `stack_top` must be the aligned top of a live stack no one else uses until the child execs
/// or exits; `arg` must stay valid as long; `entry` must never return.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn clone_vfork(
    entry: unsafe extern "C" fn(*mut c_void) -> !,
    stack_top: *mut u8,
    arg: *mut c_void,
    child_pid: *mut libc::pid_t,
) -> SysResult {
    let flags =
        (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PARENT_SETTID | libc::SIGCHLD) as usize;
    let ret: isize;
    // SAFETY: the kernel starts the child with rsp = stack_top and every other register as in
    // the parent, so r12/r13 still hold `arg`/`entry`; the child calls `entry` (which never
    // returns) and never comes back into the parent's frames. The parent falls through with the
    // syscall's result; only rax, rcx, r11 change for it.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone as isize => ret,
            in("rdi") flags,
            in("rsi") stack_top as usize & !15,
            in("rdx") child_pid as usize,
            in("r10") 0usize,
            in("r8") 0usize,
            in("r12") arg as usize,
            in("r13") entry as usize,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    check(ret)
}

/// `clone(CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID | SIGCHLD)`; see the x86_64 version.
///
/// # Safety
/// As for the x86_64 version.
#[cfg(target_arch = "aarch64")]
pub(crate) unsafe fn clone_vfork(
    entry: unsafe extern "C" fn(*mut c_void) -> !,
    stack_top: *mut u8,
    arg: *mut c_void,
    child_pid: *mut libc::pid_t,
) -> SysResult {
    let flags =
        (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PARENT_SETTID | libc::SIGCHLD) as usize;
    let ret: isize;
    // SAFETY: the kernel starts the child with sp = stack_top and every other register as in
    // the parent, so x9/x10 still hold `arg`/`entry`; the child calls `entry` (which never
    // returns). aarch64 clone takes (flags, newsp, parent_tid, tls, child_tid).
    unsafe {
        core::arch::asm!(
            "svc 0",
            "cbnz x0, 2f",
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x0, x9",
            "blr x10",
            "brk #1",
            "2:",
            in("x8") libc::SYS_clone,
            inlateout("x0") flags as isize => ret,
            in("x1") stack_top as usize & !15,
            in("x2") child_pid as usize,
            in("x3") 0usize,
            in("x4") 0usize,
            in("x9") arg as usize,
            in("x10") entry as usize,
        );
    }
    check(ret)
}
