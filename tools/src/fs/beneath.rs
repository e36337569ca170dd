//! Opening paths beneath a directory fd: `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`, with
//! a component-by-component `O_NOFOLLOW` walk where `openat2` is unavailable. This is the only
//! place the file tools turn a path into an fd, so a symlink swapped in after the policy check
//! still cannot lead outside the allowed directory.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

/// `struct open_how` of `openat2(2)`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

/// 0 = not probed, 1 = openat2 works, 2 = use the walk.
static OPENAT2: AtomicU8 = AtomicU8::new(0);

/// A directory opened once (`O_PATH | O_DIRECTORY`) that tools open paths beneath: the project
/// root (opened once per project) or an allowed outside-root directory.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl RootDir {
    /// Opens `path` (which should be canonical) as a directory fd.
    pub fn open(path: &Path) -> io::Result<Self> {
        let c = cstr(path)?;
        // SAFETY: `c` is a valid NUL-terminated string; the returned fd is checked before use.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The path this directory was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for RootDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Makes every later open use the `O_NOFOLLOW` walk instead of `openat2` (tests of the fallback).
#[doc(hidden)]
pub fn force_walk_fallback(on: bool) {
    OPENAT2.store(if on { 2 } else { 0 }, Ordering::SeqCst);
}

pub(crate) fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Opens `rel` beneath `dir`; `rel` empty means `dir` itself. Symlinks are followed only while
/// they stay beneath `dir` (an escape is `EXDEV`); magic links never. With the fallback walk no
/// symlink is followed at all (`ELOOP`/`ENOTDIR`).
///
/// Every symlink is refused first (`RESOLVE_NO_SYMLINKS`); only on `ELOOP` is the open redone
/// following those beneath `dir`, and the flag says so: the caller then checks where the fd
/// really is, since a link can lead somewhere beneath `dir` the policy never judged.
pub(crate) fn open_beneath_tracked(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<(OwnedFd, bool)> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    if rel.is_absolute() {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    match open_beneath_how(dir, rel, flags, mode, RESOLVE_NO_SYMLINKS) {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            open_beneath_how(dir, rel, flags, mode, 0).map(|(fd, _)| (fd, true))
        }
        other => other,
    }
}

fn open_beneath_how(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
    extra: u64,
) -> io::Result<(OwnedFd, bool)> {
    let flags = with_common_flags(flags);
    if OPENAT2.load(Ordering::Relaxed) != 2 {
        match openat2(dir, rel, flags, mode, extra).map(|fd| (fd, false)) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS)) => {
                OPENAT2.store(2, Ordering::Relaxed);
            }
            // EAGAIN: a concurrent rename made the kernel give up (RESOLVE_BENEATH); retry once
            // then walk.
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                if let Ok(fd) = openat2(dir, rel, flags, mode, extra) {
                    return Ok((fd, false));
                }
            }
            other => {
                OPENAT2.store(1, Ordering::Relaxed);
                return other;
            }
        }
    }
    walk(dir, rel, flags, mode).map(|fd| (fd, false))
}

fn openat2(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
    extra: u64,
) -> io::Result<OwnedFd> {
    let c = cstr(rel)?;
    let how = OpenHow {
        flags: flags as u64,
        mode: if flags & libc::O_CREAT != 0 {
            u64::from(mode)
        } else {
            0
        },
        resolve: RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | extra,
    };
    // SAFETY: `c` is NUL-terminated, `how` is a properly laid out `open_how` whose size we pass;
    // the kernel does not keep either pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative return of openat2 is a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as libc::c_int) })
}

/// The fallback: `..` folded lexically (never above `dir`), every component opened with
/// `O_NOFOLLOW` from the previous one.
fn walk(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(io::Error::from_raw_os_error(libc::EXDEV));
                }
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(io::Error::from_raw_os_error(libc::EXDEV));
            }
        }
    }
    let Some((last, inner)) = parts.split_last() else {
        return openat(dir, Path::new("."), flags, mode);
    };
    let mut cur: Option<OwnedFd> = None;
    for p in inner {
        let at = cur.as_ref().map_or(dir, |f| f.as_fd());
        let next = openat(
            at,
            Path::new(p),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        )?;
        cur = Some(next);
    }
    let at = cur.as_ref().map_or(dir, |f| f.as_fd());
    openat(at, Path::new(last), flags | libc::O_NOFOLLOW, mode)
}

pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    name: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: `c` is NUL-terminated; `dir` is a live fd for the duration of the call.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative return of openat is a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstat(2)`.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` points to writable memory of the right size; fstat fills it on success.
    let r = unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat returned 0, so `st` is initialised.
    Ok(unsafe { st.assume_init() })
}

/// `fstatat(2)` with `AT_SYMLINK_NOFOLLOW` (an empty name stats `dir` itself).
pub(crate) fn lstatat(dir: BorrowedFd<'_>, name: &Path) -> io::Result<libc::stat> {
    let c = cstr(name)?;
    let flags = if name.as_os_str().is_empty() {
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `c` is NUL-terminated, `st` is writable and correctly sized.
    let r = unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), st.as_mut_ptr(), flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat returned 0, so `st` is initialised.
    Ok(unsafe { st.assume_init() })
}

/// `readlinkat(2)`.
pub(crate) fn readlinkat(dir: BorrowedFd<'_>, name: &Path) -> io::Result<PathBuf> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; 4097];
    // SAFETY: `buf` is writable for `buf.len()` bytes; `c` is NUL-terminated.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(
        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(buf),
    ))
}

/// `mkdirat(2)`.
pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &Path, mode: libc::mode_t) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: `c` is NUL-terminated; `dir` is live.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `unlinkat(2)`; `dir_flag` removes a directory.
pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &Path, remove_dir: bool) -> io::Result<()> {
    let c = cstr(name)?;
    let flags = if remove_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `c` is NUL-terminated; `dir` is live.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `renameat2(2)`; `noreplace` fails with `EEXIST` instead of replacing.
pub(crate) fn renameat(
    from_dir: BorrowedFd<'_>,
    from: &Path,
    to_dir: BorrowedFd<'_>,
    to: &Path,
    noreplace: bool,
) -> io::Result<()> {
    let a = cstr(from)?;
    let b = cstr(to)?;
    let flags = if noreplace { libc::RENAME_NOREPLACE } else { 0 };
    // SAFETY: both names are NUL-terminated; both dir fds are live.
    let r = unsafe {
        libc::renameat2(
            from_dir.as_raw_fd(),
            a.as_ptr(),
            to_dir.as_raw_fd(),
            b.as_ptr(),
            flags,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// File type bits of a `stat`.
pub(crate) fn file_type(st: &libc::stat) -> &'static str {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => "file",
        libc::S_IFDIR => "directory",
        libc::S_IFLNK => "symlink",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        libc::S_IFCHR => "char_device",
        libc::S_IFBLK => "block_device",
        _ => "unknown",
    }
}

/// Modification time of a `stat` as RFC 3339 UTC (`2026-01-02T03:04:05.678Z`).
pub(crate) fn modified_at(st: &libc::stat) -> String {
    rfc3339(st.st_mtime, st.st_mtime_nsec)
}

fn rfc3339(secs: i64, nsec: i64) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        nsec / 1_000_000
    )
}

/// Opens `rel` beneath `dir` with the strict walk (no symlink followed anywhere).
pub(crate) fn force_walk_open(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    walk(dir, rel, with_common_flags(flags), mode)
}

/// Adds `O_CLOEXEC`, and `O_NOCTTY` unless `O_PATH` is set (openat2 refuses `O_PATH` with any
/// flag but `O_CLOEXEC`, `O_DIRECTORY`, `O_NOFOLLOW`).
fn with_common_flags(flags: libc::c_int) -> libc::c_int {
    if flags & libc::O_PATH != 0 {
        flags | libc::O_CLOEXEC
    } else {
        flags | libc::O_CLOEXEC | libc::O_NOCTTY
    }
}

/// The names in the directory open (for reading) as `dir`, without `.` and `..`, sorted.
pub(crate) fn read_dir_names(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
    let dup = dir.try_clone_to_owned()?;
    // SAFETY: `dup` is an fd we own; fdopendir takes it over on success.
    let dirp = unsafe { libc::fdopendir(std::os::fd::IntoRawFd::into_raw_fd(dup)) };
    if dirp.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut names = Vec::new();
    // SAFETY: `dirp` is a valid DIR* until closedir below; entries are copied out before the
    // next readdir call.
    unsafe {
        libc::rewinddir(dirp);
        loop {
            let ent = libc::readdir64(dirp);
            if ent.is_null() {
                break;
            }
            let name = std::ffi::CStr::from_ptr((*ent).d_name.as_ptr());
            let bytes = name.to_bytes();
            if bytes != b"." && bytes != b".." {
                names.push(std::ffi::OsStr::from_bytes(bytes).to_owned());
            }
        }
        libc::closedir(dirp);
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(1_709_210_096, 5_000_000),
            "2024-02-29T12:34:56.005Z"
        );
    }
}
