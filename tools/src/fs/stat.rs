//! `fs.stat`: metadata of a path without following a final symlink; a symlink's target is shown
//! only when it resolves inside an allowed area.

use std::os::fd::AsFd;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::beneath::{file_type, lstatat, modified_at, readlinkat};
use super::locate;
use crate::policy::Access;
use crate::{Result, ToolContext};

/// Input of `fs.stat`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-codeward-complete" = true))]
pub struct StatArgs {
    /// Path to describe.
    #[schemars(extend("x-codeward" = "path"))]
    pub path: String,
}

/// Result of `fs.stat`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct StatResult {
    /// The path.
    pub path: String,
    /// `file`, `directory`, `symlink`, `fifo`, `socket`, `char_device`, `block_device`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (e.g. 420 = 0o644).
    pub mode: u32,
    /// Last modification, RFC 3339 UTC.
    pub modified_at: String,
    /// The path is a symlink.
    pub is_symlink: bool,
    /// The link target, when it resolves inside an allowed area.
    pub symlink_target: Option<String>,
}

/// Runs `fs.stat` (blocking).
pub fn stat(ctx: &ToolContext, args: StatArgs) -> Result<StatResult> {
    let loc = locate(ctx, &args.path, Access::Read)?;
    let st = if loc.is_base() {
        let fd = loc.open(libc::O_PATH, 0).map_err(|e| loc.err(&e))?;
        lstatat(fd.as_fd(), Path::new("")).map_err(|e| loc.err(&e))?
    } else {
        let (parent, name) = loc.split()?;
        let dir = loc.open_parent(&parent, false)?;
        let st = lstatat(dir.as_fd(), &name).map_err(|e| loc.err(&e))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            let target = readlinkat(dir.as_fd(), &name).ok();
            let shown = target.filter(|t| {
                let full = if t.is_absolute() {
                    t.clone()
                } else {
                    Path::new(&loc.display)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(t)
                };
                locate(ctx, &full.to_string_lossy(), Access::Read).is_ok()
            });
            return Ok(result(
                loc.display,
                &st,
                shown.map(|t| t.to_string_lossy().into_owned()),
            ));
        }
        st
    };
    Ok(result(loc.display, &st, None))
}

fn result(path: String, st: &libc::stat, target: Option<String>) -> StatResult {
    StatResult {
        path,
        kind: file_type(st).to_owned(),
        size: st.st_size as u64,
        mode: st.st_mode & 0o7777,
        modified_at: modified_at(st),
        is_symlink: st.st_mode & libc::S_IFMT == libc::S_IFLNK,
        symlink_target: target,
    }
}
