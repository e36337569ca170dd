//! Guards for operations that act on a whole directory tree through one name (`fs.move` of a
//! directory, recursive `fs.delete`) and for walks (`fs.list`, `fs.search`): the policy judges
//! the one path it is given, but moving a directory moves everything beneath it. Without these
//! checks `fs.move .codeward → x` carried the state dir (the journal) to a readable name, and
//! `fs.move .ssh → ssh-copy` (or `.aws → aws`) turned `.ssh/*` / `.aws/credentials` into names no
//! sensitive pattern matches.
//!
//! Paths are taken from the opened directory fd (`/proc/self/fd/N`), not from the string the
//! caller gave, so an in-root symlink (`link → .codeward`) does not hide what is really moved.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use codeward_policies::PolicyError;
use serde_json::json;

use super::beneath::{lstatat, openat, read_dir_names};
use crate::{FailReason, Result, ToolContext, ToolError};

/// Most entries beneath a directory checked before it is moved or deleted.
pub(crate) const MAX_TREE_ENTRIES: usize = 100_000;

/// Deepest directory nesting checked.
const MAX_TREE_DEPTH: u32 = 256;

/// The absolute path of the directory open as `dir`, as the kernel sees it now.
pub(crate) fn real_dir(dir: BorrowedFd<'_>) -> io::Result<PathBuf> {
    let p = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))?;
    // A deleted directory reads `… (deleted)`; anything not absolute is not a path.
    if !p.is_absolute() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    Ok(p)
}

/// What a path is called for the sensitive patterns: relative to the root inside it, absolute
/// outside (SPEC §5.5).
fn subject(ctx: &ToolContext, abs: &Path) -> PathBuf {
    abs.strip_prefix(ctx.root.path())
        .map_or_else(|_| abs.to_path_buf(), Path::to_path_buf)
}

fn denied(shown: &Path, pattern: &str) -> ToolError {
    ToolError::Policy(PolicyError::SensitivePathDenied {
        path: shown.display().to_string(),
        pattern: pattern.to_owned(),
    })
}

/// Refuses to move or delete `name` in `dir` (whose `lstat` is `st`) as a whole when the state
/// dir or the scratch base lies beneath it, or — for a directory — when anything beneath it is
/// a sensitive path. Bounded: more than [`MAX_TREE_ENTRIES`] entries fail `too_large`.
pub(crate) fn check_whole(
    ctx: &ToolContext,
    dir: BorrowedFd<'_>,
    name: &Path,
    st: &libc::stat,
    shown: &str,
) -> Result<()> {
    let io_err = |e: &io::Error| ToolError::from_io(e, shown);
    let abs = real_dir(dir).map_err(|e| io_err(&e))?.join(name);
    let pc = ctx.policy.context();
    for (reserved, what) in [
        (&pc.state_dir, "state_dir"),
        (&pc.scratch_base, "scratch_dir"),
    ] {
        if reserved.as_deref().is_some_and(|r| r.starts_with(&abs)) {
            return Err(denied(Path::new(shown), what));
        }
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Ok(());
    }
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let top = openat(dir, name, flags, 0).map_err(|e| io_err(&e))?;
    let mut seen = 0usize;
    let base = subject(ctx, &abs);
    let hit = sensitive_beneath(ctx, top.as_fd(), &base, 0, &mut seen).map_err(|e| io_err(&e))?;
    if let Some((path, pattern)) = hit {
        return Err(denied(&path, &pattern));
    }
    if seen > MAX_TREE_ENTRIES {
        return Err(ToolError::failed_with(
            FailReason::TooLarge,
            format!(
                "`{shown}` holds more than {MAX_TREE_ENTRIES} entries; they cannot all be \
                 checked against the sensitive paths, so it is not moved or deleted as a whole"
            ),
            json!({ "path": shown, "max_entries": MAX_TREE_ENTRIES }),
        ));
    }
    Ok(())
}

/// The first sensitive path beneath `dir` (called `at` for the patterns), with its pattern.
fn sensitive_beneath(
    ctx: &ToolContext,
    dir: BorrowedFd<'_>,
    at: &Path,
    depth: u32,
    seen: &mut usize,
) -> io::Result<Option<(PathBuf, String)>> {
    if depth > MAX_TREE_DEPTH {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    for name in read_dir_names(dir)? {
        *seen += 1;
        if *seen > MAX_TREE_ENTRIES {
            return Ok(None);
        }
        let path = at.join(&name);
        if let Some(pattern) = ctx.policy.sensitive_match(&path) {
            return Ok(Some((path, pattern)));
        }
        let name = Path::new(&name);
        let Ok(st) = lstatat(dir, name) else { continue };
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
            let sub = openat(dir, name, flags, 0)?;
            if let Some(hit) = sensitive_beneath(ctx, sub.as_fd(), &path, depth + 1, seen)? {
                return Ok(Some(hit));
            }
        }
    }
    Ok(None)
}
