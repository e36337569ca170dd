//! `fs.read`: reads a window of a regular file. The file is opened `O_NONBLOCK` beneath its
//! allowed directory and its type checked on the fd, so FIFOs, sockets and devices are refused
//! at once (`not_a_regular_file`); output stays within the call's output budget.

use std::fs::File;
use std::os::unix::fs::FileExt;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Encoding, fstat, locate};
use crate::policy::Access;
use crate::{FailReason, Result, ToolContext, ToolError};

/// Input of `fs.read`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-codeward-complete" = true))]
pub struct ReadArgs {
    /// File to read, relative to the project root or absolute.
    #[schemars(extend("x-codeward" = "path"))]
    pub path: String,
    /// Byte offset to start at.
    #[serde(default)]
    pub offset: u64,
    /// Most bytes to return (also bounded by the output limit).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_bytes: Option<u64>,
    /// How `content` is encoded.
    #[serde(default)]
    pub encoding: Encoding,
}

/// Result of `fs.read`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct ReadResult {
    /// The path as shown to callers (relative to the root, absolute outside it).
    pub path: String,
    /// File size in bytes.
    pub size: u64,
    /// The bytes read, encoded.
    pub content: String,
    /// Encoding of `content`.
    pub encoding: Encoding,
    /// More bytes follow.
    pub truncated: bool,
    /// Offset to continue from when truncated.
    pub next_offset: Option<u64>,
}

/// Runs `fs.read` (blocking).
pub fn read(ctx: &ToolContext, args: ReadArgs) -> Result<ReadResult> {
    let loc = locate(ctx, &args.path, Access::Read)?;
    let fd = loc
        .open(libc::O_RDONLY | libc::O_NONBLOCK, 0)
        .map_err(|e| loc.err(&e))?;
    let st = fstat(std::os::fd::AsFd::as_fd(&fd)).map_err(|e| loc.err(&e))?;
    check_regular(&st, &loc.display, ctx.limits.deny_multiply_linked_files)?;
    let size = st.st_size as u64;
    // Room for the content once the fixed fields are serialized around it.
    let budget = ctx
        .limits
        .output_budget()
        .saturating_sub(loc.display.len() + 256)
        .max(256) as u64;
    let cap = match args.encoding {
        Encoding::Utf8 => budget,
        Encoding::Base64 => budget / 4 * 3,
    };
    let want = size
        .saturating_sub(args.offset)
        .min(args.max_bytes.unwrap_or(u64::MAX))
        .min(cap);
    let file = File::from(fd);
    let mut buf = vec![0u8; want as usize];
    let mut got = 0usize;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], args.offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(loc.err(&e)),
        }
    }
    buf.truncate(got);
    let (content, returned) = match args.encoding {
        Encoding::Base64 => (
            base64::engine::general_purpose::STANDARD.encode(&buf),
            buf.len(),
        ),
        Encoding::Utf8 => {
            let limited = json_budget_cut(&buf, budget as usize);
            buf.truncate(limited);
            let more = args.offset + (buf.len() as u64) < size;
            match std::str::from_utf8(&buf) {
                Ok(_) => {}
                // A character cut by the window: return up to it, the rest comes next time.
                Err(e) if more && e.error_len().is_none() && e.valid_up_to() > 0 => {
                    buf.truncate(e.valid_up_to());
                }
                Err(e) => {
                    return Err(ToolError::failed_with(
                        FailReason::NotUtf8,
                        format!(
                            "`{}` is not valid UTF-8; read it with encoding `base64`",
                            loc.display
                        ),
                        json!({ "path": loc.display, "offset": args.offset + e.valid_up_to() as u64 }),
                    ));
                }
            }
            let n = buf.len();
            // INVARIANT: `buf` was validated just above, so this never yields the default.
            (String::from_utf8(buf).unwrap_or_default(), n)
        }
    };
    let end = args.offset.saturating_add(returned as u64);
    let truncated = end < size;
    Ok(ReadResult {
        path: loc.display,
        size,
        content,
        encoding: args.encoding,
        truncated,
        next_offset: truncated.then_some(end),
    })
}

/// Refuses anything but a regular file (and multiply linked ones when asked to).
pub(crate) fn check_regular(st: &libc::stat, path: &str, deny_multi: bool) -> Result<()> {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => {}
        libc::S_IFDIR => {
            return Err(ToolError::failed_with(
                FailReason::IsADirectory,
                format!("`{path}` is a directory"),
                json!({ "path": path }),
            ));
        }
        _ => {
            return Err(ToolError::failed_with(
                FailReason::NotARegularFile,
                format!(
                    "`{path}` is a {}, not a regular file",
                    super::beneath::file_type(st)
                ),
                json!({ "path": path, "type": super::beneath::file_type(st) }),
            ));
        }
    }
    if deny_multi && st.st_nlink > 1 {
        return Err(ToolError::failed_with(
            FailReason::MultiplyLinked,
            format!(
                "`{path}` has {} hard links and may be a window onto a file outside the root; \
                 reading multiply linked files is disabled (deny_multiply_linked_files)",
                st.st_nlink
            ),
            json!({ "path": path, "links": st.st_nlink }),
        ));
    }
    Ok(())
}

/// How many leading bytes of `buf` fit in `budget` once JSON-escaped.
fn json_budget_cut(buf: &[u8], budget: usize) -> usize {
    let mut used = 0usize;
    for (i, &b) in buf.iter().enumerate() {
        used += match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        };
        if used > budget {
            return i;
        }
    }
    buf.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_budget_counts_escapes() {
        assert_eq!(json_budget_cut(b"abc", 10), 3);
        assert_eq!(json_budget_cut(b"\"\"\"", 4), 2);
        assert_eq!(json_budget_cut(b"\x01a", 6), 1);
    }
}
