//! `fs.delete`: removes a file, a symlink (never its target) or a directory (`recursive` for a
//! non-empty one), working from directory fds without following symlinks.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::beneath::{file_type, lstatat, openat, read_dir_names, unlinkat};
use super::locate;
use crate::policy::Access;
use crate::{Result, ToolContext};

/// Input of `fs.delete`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-codeward-complete" = true))]
pub struct DeleteArgs {
    /// Path to remove.
    #[schemars(extend("x-codeward" = "path", "x-codeward-access" = "write"))]
    pub path: String,
    /// Remove a directory and everything under it.
    #[serde(default)]
    pub recursive: bool,
}

/// Result of `fs.delete`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct DeleteResult {
    /// The path removed.
    pub path: String,
    /// What it was (`file`, `directory`, `symlink`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Entries removed, the path itself included.
    pub removed: u64,
}

/// Runs `fs.delete` (blocking).
pub fn delete(ctx: &ToolContext, args: DeleteArgs) -> Result<DeleteResult> {
    let loc = locate(ctx, &args.path, Access::Write)?;
    let (parent, name) = loc.split()?;
    let dir = loc.open_parent(&parent, false)?;
    let st = lstatat(dir.as_fd(), &name).map_err(|e| loc.err(&e))?;
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let mut removed = 0u64;
    if is_dir && args.recursive {
        // Removing the tree removes what is beneath it: the state dir and sensitive files
        // (which `fs.delete` refuses one by one) must not go with it.
        super::tree::check_whole(ctx, dir.as_fd(), &name, &st, &loc.display)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let sub = openat(dir.as_fd(), &name, flags, 0).map_err(|e| loc.err(&e))?;
        remove_tree(sub.as_fd(), &mut removed, 0).map_err(|e| loc.err(&e))?;
    }
    unlinkat(dir.as_fd(), &name, is_dir).map_err(|e| loc.err(&e))?;
    Ok(DeleteResult {
        path: loc.display,
        kind: file_type(&st).to_owned(),
        removed: removed + 1,
    })
}

fn remove_tree(dir: BorrowedFd<'_>, removed: &mut u64, depth: u32) -> std::io::Result<()> {
    if depth > 256 {
        return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
    }
    for name in read_dir_names(dir)? {
        let name = Path::new(&name);
        let st = lstatat(dir, name)?;
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir {
            let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
            let sub = openat(dir, name, flags, 0)?;
            remove_tree(sub.as_fd(), removed, depth + 1)?;
        }
        unlinkat(dir, name, is_dir)?;
        *removed += 1;
    }
    Ok(())
}
