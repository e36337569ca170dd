//! `fs.edit`: exact string replacement in a UTF-8 file, with a uniqueness check. The new content
//! replaces the file atomically (temp file + rename), like `fs.write`.

use std::io::Read as _;
use std::os::fd::AsFd;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::beneath::{fstat, openat};
use super::locate;
use super::write::{MAX_WRITE_BYTES, follow_final, replace};
use crate::policy::Access;
use crate::{FailReason, Result, ToolContext, ToolError};

/// Input of `fs.edit`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-codeward-complete" = true))]
pub struct EditArgs {
    /// File to edit.
    #[schemars(extend("x-codeward" = "path", "x-codeward-access" = "write"))]
    pub path: String,
    /// Exact text to find.
    #[schemars(length(min = 1))]
    pub old_string: String,
    /// Replacement text.
    pub new_string: String,
    /// Replace every occurrence instead of requiring exactly one.
    #[serde(default)]
    pub replace_all: bool,
}

/// Result of `fs.edit`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct EditResult {
    /// The file edited.
    pub path: String,
    /// Occurrences replaced.
    pub replacements: u64,
}

/// Runs `fs.edit` (blocking).
pub fn edit(ctx: &ToolContext, args: EditArgs) -> Result<EditResult> {
    if args.old_string.is_empty() {
        return Err(ToolError::failed(
            FailReason::InvalidArgument,
            "`old_string` is empty",
        ));
    }
    let loc = locate(ctx, &args.path, Access::Write)?;
    let (loc, parent, name) = follow_final(ctx, loc)?;
    let dir = loc.open_parent(&parent, false)?;
    let fd = openat(
        dir.as_fd(),
        &name,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW,
        0,
    )
    .map_err(|e| loc.err(&e))?;
    let st = fstat(fd.as_fd()).map_err(|e| loc.err(&e))?;
    super::read::check_regular(&st, &loc.display, ctx.limits.deny_multiply_linked_files)?;
    if st.st_size as u64 > MAX_WRITE_BYTES as u64 {
        return Err(ToolError::failed_with(
            FailReason::TooLarge,
            format!("`{}` is larger than {MAX_WRITE_BYTES} bytes", loc.display),
            json!({ "path": loc.display, "size": st.st_size, "max": MAX_WRITE_BYTES }),
        ));
    }
    let mut bytes = Vec::with_capacity(st.st_size as usize);
    std::fs::File::from(fd)
        .take(MAX_WRITE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| loc.err(&e))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ToolError::failed_with(
            FailReason::NotUtf8,
            format!("`{}` is not valid UTF-8", loc.display),
            json!({ "path": loc.display }),
        )
    })?;
    let count = text.matches(args.old_string.as_str()).count() as u64;
    if count == 0 {
        return Err(ToolError::failed_with(
            FailReason::NoMatch,
            format!("`old_string` does not occur in `{}`", loc.display),
            json!({ "path": loc.display }),
        ));
    }
    if count > 1 && !args.replace_all {
        return Err(ToolError::failed_with(
            FailReason::NotUnique,
            format!(
                "`old_string` occurs {count} times in `{}`; add context or set `replace_all`",
                loc.display
            ),
            json!({ "path": loc.display, "count": count }),
        ));
    }
    let new = text.replace(args.old_string.as_str(), &args.new_string);
    replace(
        dir.as_fd(),
        &name,
        new.as_bytes(),
        Some(st.st_mode & 0o7777),
        false,
    )
    .map_err(|e| loc.err(&e))?;
    Ok(EditResult {
        path: loc.display,
        replacements: count,
    })
}
