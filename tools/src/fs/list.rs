//! `fs.list`: lists a directory (optionally recursively) from directory fds, never following
//! symlinks; stops at `max_entries` or the output budget and reports `truncated`.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::beneath::{file_type, lstatat, modified_at, openat, read_dir_names};
use super::locate;
use crate::policy::Access;
use crate::{Result, ToolContext};

fn default_path() -> String {
    ".".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_max_entries() -> u32 {
    1000
}

/// Input of `fs.list`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-codeward-complete" = true))]
pub struct ListArgs {
    /// Directory to list.
    #[serde(default = "default_path")]
    #[schemars(extend("x-codeward" = "path"))]
    pub path: String,
    /// Descend into subdirectories (up to `max_depth`, 16 when unset).
    #[serde(default)]
    pub recursive: bool,
    /// Levels to list (1 = the directory's own entries).
    #[serde(default)]
    #[schemars(range(min = 1, max = 16))]
    pub max_depth: Option<u32>,
    /// Include names starting with `.`.
    #[serde(default = "default_true")]
    pub include_hidden: bool,
    /// Skip what `.gitignore` files (in the listed directory and below) ignore, and `.git`.
    #[serde(default)]
    pub respect_gitignore: bool,
    /// Most entries to return.
    #[serde(default = "default_max_entries")]
    #[schemars(range(min = 1, max = 10_000))]
    pub max_entries: u32,
}

/// One entry of `fs.list`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct ListEntry {
    /// Path relative to the root (absolute outside it).
    pub path: String,
    /// `file`, `directory`, `symlink`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, RFC 3339 UTC.
    pub modified_at: String,
}

/// Result of `fs.list`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct ListResult {
    /// Entries, depth-first, sorted by name within a directory.
    pub entries: Vec<ListEntry>,
    /// Stopped early (`max_entries` or the output budget).
    pub truncated: bool,
}

struct Walk<'a> {
    ctx: &'a ToolContext,
    /// Absolute path of the listed directory's base, to spot reserved dirs.
    entries: Vec<ListEntry>,
    max: usize,
    budget: usize,
    used: usize,
    hidden: bool,
    truncated: bool,
    /// `.gitignore` matchers from the listed directory down to the current one.
    ignores: Option<Vec<Gitignore>>,
}

/// Largest `.gitignore` read.
const MAX_GITIGNORE_BYTES: u64 = 1024 * 1024;

/// Reads `dir/.gitignore` from the fd (regular files only) into a matcher rooted at `abs`.
fn load_gitignore(dir: BorrowedFd<'_>, abs: &Path) -> Option<Gitignore> {
    use std::io::Read as _;
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW;
    let fd = openat(dir, Path::new(".gitignore"), flags, 0).ok()?;
    let st = super::fstat(fd.as_fd()).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_GITIGNORE_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    let mut b = GitignoreBuilder::new(abs);
    for line in text.lines() {
        let _ = b.add_line(None, line);
    }
    b.build().ok()
}

fn ignored(stack: &[Gitignore], abs: &Path, is_dir: bool) -> bool {
    for g in stack.iter().rev() {
        match g.matched(abs, is_dir) {
            ignore::Match::Ignore(_) => return true,
            ignore::Match::Whitelist(_) => return false,
            ignore::Match::None => {}
        }
    }
    false
}

/// Runs `fs.list` (blocking).
pub fn list(ctx: &ToolContext, args: ListArgs) -> Result<ListResult> {
    let loc = locate(ctx, &args.path, Access::Read)?;
    let fd = loc
        .open(libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK, 0)
        .map_err(|e| loc.err(&e))?;
    let depth = args
        .max_depth
        .unwrap_or(if args.recursive { 16 } else { 1 })
        .clamp(1, 16);
    // Reserved dirs and gitignore matching go by where the directory really is (its fd), not
    // by the name given: `fs.list link` with `link → .codeward` must not show the state dir.
    let abs_dir = super::real_dir(fd.as_fd()).map_err(|e| loc.err(&e))?;
    let mut walk = Walk {
        ctx,
        entries: Vec::new(),
        max: args.max_entries.clamp(1, 10_000) as usize,
        budget: ctx.limits.output_budget(),
        used: 32,
        hidden: args.include_hidden,
        truncated: false,
        ignores: args.respect_gitignore.then(Vec::new),
    };
    let prefix = if loc.display == "." {
        String::new()
    } else {
        loc.display.clone()
    };
    visit(fd.as_fd(), &prefix, &abs_dir, depth, &mut walk).map_err(|e| loc.err(&e))?;
    Ok(ListResult {
        entries: walk.entries,
        truncated: walk.truncated,
    })
}

fn visit(
    dir: BorrowedFd<'_>,
    prefix: &str,
    abs_dir: &Path,
    depth: u32,
    walk: &mut Walk<'_>,
) -> std::io::Result<()> {
    let pushed = match &mut walk.ignores {
        Some(stack) => {
            let g = load_gitignore(dir, abs_dir);
            let some = g.is_some();
            stack.extend(g);
            some
        }
        None => false,
    };
    let r = visit_entries(dir, prefix, abs_dir, depth, walk);
    if pushed && let Some(stack) = &mut walk.ignores {
        stack.pop();
    }
    r
}

fn visit_entries(
    dir: BorrowedFd<'_>,
    prefix: &str,
    abs_dir: &Path,
    depth: u32,
    walk: &mut Walk<'_>,
) -> std::io::Result<()> {
    for name in read_dir_names(dir)? {
        if walk.truncated {
            return Ok(());
        }
        if !walk.hidden && name.as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        let Ok(st) = lstatat(dir, Path::new(&name)) else {
            continue;
        };
        let shown = name.to_string_lossy();
        let path = if prefix.is_empty() {
            shown.into_owned()
        } else {
            format!("{prefix}/{shown}")
        };
        let abs = abs_dir.join(&name);
        if super::is_reserved(walk.ctx, &abs) {
            continue;
        }
        if let Some(stack) = &walk.ignores {
            let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
            if (is_dir && name == ".git") || ignored(stack, &abs, is_dir) {
                continue;
            }
        }
        let cost = path.len() + 96;
        if walk.entries.len() >= walk.max || walk.used + cost > walk.budget {
            walk.truncated = true;
            return Ok(());
        }
        walk.used += cost;
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        walk.entries.push(ListEntry {
            path: path.clone(),
            kind: file_type(&st).to_owned(),
            size: st.st_size as u64,
            modified_at: modified_at(&st),
        });
        if is_dir && depth > 1 {
            let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
            if let Ok(sub) = openat(dir, Path::new(&name), flags, 0) {
                visit(sub.as_fd(), &path, &abs, depth - 1, walk)?;
            }
        }
    }
    Ok(())
}
