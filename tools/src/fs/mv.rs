//! `fs.move`: `rename(2)` between two located names (no final symlink followed); across file
//! systems a regular file is copied (temp + rename) and the source removed, a directory is
//! refused with `cross_device`.

use std::os::fd::AsFd;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::beneath::{fstat, lstatat, openat, renameat, unlinkat};
use super::locate;
use crate::policy::Access;
use crate::{FailReason, Result, ToolContext, ToolError};

/// Input of `fs.move`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-codeward-complete" = true))]
pub struct MoveArgs {
    /// What to move.
    #[schemars(extend("x-codeward" = "path", "x-codeward-access" = "write"))]
    pub source: String,
    /// Where to move it.
    #[schemars(extend("x-codeward" = "path", "x-codeward-access" = "write"))]
    pub destination: String,
    /// Replace an existing destination.
    #[serde(default)]
    pub overwrite: bool,
    /// Create missing parent directories of the destination.
    #[serde(default)]
    pub create_parents: bool,
}

/// Result of `fs.move`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct MoveResult {
    /// The source as shown to callers.
    pub source: String,
    /// The destination as shown to callers.
    pub destination: String,
}

/// Runs `fs.move` (blocking).
pub fn move_path(ctx: &ToolContext, args: MoveArgs) -> Result<MoveResult> {
    let src = locate(ctx, &args.source, Access::Write)?;
    let dst = locate(ctx, &args.destination, Access::Write)?;
    let (sp, sn) = src.split()?;
    let (dp, dn) = dst.split()?;
    let sdir = src.open_parent(&sp, false)?;
    // A directory carries everything beneath it: the state dir, sensitive files (SPEC §5.4
    // step 7, §5.5) must not leave under a new name.
    let sst = lstatat(sdir.as_fd(), &sn).map_err(|e| src.err(&e))?;
    super::tree::check_whole(ctx, sdir.as_fd(), &sn, &sst, &src.display)?;
    let ddir = dst.open_parent(&dp, args.create_parents)?;
    match renameat(sdir.as_fd(), &sn, ddir.as_fd(), &dn, !args.overwrite) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let fd = openat(
                sdir.as_fd(),
                &sn,
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW,
                0,
            )
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => cross_device(&src.display),
                _ => src.err(&e),
            })?;
            let st = fstat(fd.as_fd()).map_err(|e| src.err(&e))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                return Err(cross_device(&src.display));
            }
            super::read::check_regular(&st, &src.display, ctx.limits.deny_multiply_linked_files)?;
            let mut file = std::fs::File::from(fd);
            super::write::replace_with(
                ddir.as_fd(),
                &dn,
                Some(st.st_mode & 0o7777),
                !args.overwrite,
                |out| std::io::copy(&mut file, out).map(|_| ()),
            )
            .map_err(|e| dst.err(&e))?;
            unlinkat(sdir.as_fd(), &sn, false).map_err(|e| src.err(&e))?;
        }
        Err(e) => {
            return Err(if e.raw_os_error() == Some(libc::EEXIST) {
                dst.err(&e)
            } else {
                src.err(&e)
            });
        }
    }
    Ok(MoveResult {
        source: src.display,
        destination: dst.display,
    })
}

fn cross_device(path: &str) -> ToolError {
    ToolError::failed_with(
        FailReason::CrossDevice,
        format!("`{path}` is not a regular file and cannot be moved across file systems"),
        json!({ "path": path }),
    )
}
