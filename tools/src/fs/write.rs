//! `fs.write`: create, overwrite or append. Whole-file writes go to a temp file in the same
//! directory, are fsynced and renamed into place, so a hard link at the destination (possibly a
//! window onto a file outside the root) is replaced, never written through; appends write in
//! place only to a singly linked regular file.

use std::io::{self, Write as _};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::beneath::{self, fstat, lstatat, openat};
use super::{Encoding, Located, locate};
use crate::policy::Access;
use crate::{FailReason, Result, ToolContext, ToolError};

/// Largest decoded content `fs.write` accepts (10 MiB).
pub const MAX_WRITE_BYTES: usize = 10 * 1024 * 1024;

/// How `fs.write` treats an existing file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Replace the file (atomically).
    #[default]
    Overwrite,
    /// Fail with `already_exists` if the file exists.
    CreateNew,
    /// Append to the file (create it if missing).
    Append,
}

/// Input of `fs.write`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-codeward-complete" = true))]
pub struct WriteArgs {
    /// File to write.
    #[schemars(extend("x-codeward" = "path", "x-codeward-access" = "write"))]
    pub path: String,
    /// Content, encoded as `encoding` says (at most 10 MiB decoded).
    #[schemars(length(max = 14_000_000))]
    pub content: String,
    /// Encoding of `content`.
    #[serde(default)]
    pub encoding: Encoding,
    /// What to do with an existing file.
    #[serde(default)]
    pub mode: WriteMode,
    /// Create missing parent directories.
    #[serde(default)]
    pub create_parents: bool,
}

/// Result of `fs.write`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct WriteResult {
    /// The path written (after following a final symlink).
    pub path: String,
    /// Bytes written.
    pub bytes_written: u64,
    /// The file did not exist before.
    pub created: bool,
}

/// Runs `fs.write` (blocking).
pub fn write(ctx: &ToolContext, args: WriteArgs) -> Result<WriteResult> {
    let data = match args.encoding {
        Encoding::Utf8 => args.content.into_bytes(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(args.content.as_bytes())
            .map_err(|e| {
                ToolError::failed(FailReason::InvalidArgument, format!("bad base64: {e}"))
            })?,
    };
    if data.len() > MAX_WRITE_BYTES {
        return Err(ToolError::failed_with(
            FailReason::TooLarge,
            format!(
                "content is {} bytes, more than {MAX_WRITE_BYTES}",
                data.len()
            ),
            json!({ "size": data.len(), "max": MAX_WRITE_BYTES }),
        ));
    }
    let loc = locate(ctx, &args.path, Access::Write)?;
    let (loc, parent, name) = follow_final(ctx, loc)?;
    let dir = loc.open_parent(&parent, args.create_parents)?;
    let existing = match lstatat(dir.as_fd(), &name) {
        Ok(st) => Some(st),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
        Err(e) => return Err(loc.err(&e)),
    };
    if let Some(st) = &existing {
        super::read::check_regular(st, &loc.display, false)?;
    }
    let created = existing.is_none();
    match (args.mode, &existing) {
        (WriteMode::CreateNew, Some(_)) => return Err(exists(&loc.display)),
        (WriteMode::CreateNew, None) => {
            replace(dir.as_fd(), &name, &data, None, true).map_err(|e| loc.err(&e))?;
        }
        (WriteMode::Overwrite, st) | (WriteMode::Append, st @ None) => {
            let perm = st.as_ref().map(|s| s.st_mode & 0o7777);
            replace(dir.as_fd(), &name, &data, perm, false).map_err(|e| loc.err(&e))?;
        }
        (WriteMode::Append, Some(st)) => {
            if ctx.limits.deny_multiply_linked_files && st.st_nlink > 1 {
                super::read::check_regular(st, &loc.display, true)?;
            }
            append(dir.as_fd(), &name, &data).map_err(|e| loc.err(&e))?;
        }
    }
    Ok(WriteResult {
        path: loc.display,
        bytes_written: data.len() as u64,
        created,
    })
}

fn exists(path: &str) -> ToolError {
    ToolError::failed_with(
        FailReason::AlreadyExists,
        format!("`{path}` already exists"),
        json!({ "path": path }),
    )
}

/// Follows a symlink in the final component (up to 40 hops) so a write lands where the policy
/// judged it would; each hop is located afresh (through the policy when it leaves the root).
pub(crate) fn follow_final(
    ctx: &ToolContext,
    mut loc: Located,
) -> Result<(Located, PathBuf, PathBuf)> {
    for _ in 0..40 {
        let (parent, name) = loc.split()?;
        let dir = match loc.open_parent(&parent, false) {
            Ok(d) => d,
            // Missing parents are created later (or reported) by the caller.
            Err(ToolError::Failed {
                reason: FailReason::NotFound,
                ..
            }) => {
                return Ok((loc, parent, name));
            }
            Err(e) => return Err(e),
        };
        match lstatat(dir.as_fd(), &name) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                let target = beneath::readlinkat(dir.as_fd(), &name).map_err(|e| loc.err(&e))?;
                let next = if target.is_absolute() {
                    target
                } else {
                    let shown = Path::new(&loc.display);
                    let base = shown.parent().unwrap_or(Path::new(""));
                    base.join(target)
                };
                loc = locate(ctx, &next.to_string_lossy(), Access::Write)?;
            }
            _ => return Ok((loc, parent, name)),
        }
    }
    Err(ToolError::InvalidPath {
        path: loc.display,
        reason: "symlink_loop",
    })
}

fn temp_name(name: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let base: String = name.to_string_lossy().chars().take(100).collect();
    PathBuf::from(format!(".{base}.cw-{}-{n}.tmp", std::process::id()))
}

/// Writes `data` to a fresh temp file in `dir`, fsyncs it and renames it onto `name`
/// (`noreplace`: fail with `EEXIST` if `name` exists). `perm` keeps an existing file's mode.
pub(crate) fn replace(
    dir: BorrowedFd<'_>,
    name: &Path,
    data: &[u8],
    perm: Option<libc::mode_t>,
    noreplace: bool,
) -> io::Result<()> {
    replace_with(dir, name, perm, noreplace, |f| f.write_all(data))
}

pub(crate) fn replace_with(
    dir: BorrowedFd<'_>,
    name: &Path,
    perm: Option<libc::mode_t>,
    noreplace: bool,
    fill: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_name(name);
    let fd = openat(
        dir,
        &tmp,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        0o600,
    )?;
    let mut file = std::fs::File::from(fd);
    let result = (|| {
        fill(&mut file)?;
        let mode = perm.unwrap_or(0o644);
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        file.sync_all()?;
        beneath::renameat(dir, &tmp, dir, name, noreplace)
    })();
    if result.is_err() {
        let _ = beneath::unlinkat(dir, &tmp, false);
    }
    result
}

/// Appends in place to a singly linked regular file; a multiply linked one is copied, extended
/// and renamed over the link instead.
fn append(dir: BorrowedFd<'_>, name: &Path, data: &[u8]) -> io::Result<()> {
    let fd = openat(
        dir,
        name,
        libc::O_RDWR | libc::O_APPEND | libc::O_NONBLOCK | libc::O_NOFOLLOW,
        0,
    )?;
    let st = fstat(fd.as_fd())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(io::Error::from_raw_os_error(libc::ENXIO));
    }
    let mut file = std::fs::File::from(fd);
    if st.st_nlink <= 1 {
        file.write_all(data)?;
        return file.sync_data();
    }
    replace_with(dir, name, Some(st.st_mode & 0o7777), false, |out| {
        let mut src = &file;
        io::copy(&mut src, out)?;
        out.write_all(data)
    })
}
