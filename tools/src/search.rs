//! `fs.search`: content search (`grep-regex` + `grep-searcher`) or file-name search (`glob`)
//! over an `ignore` walk that never follows links. Every file is opened beneath its allowed
//! directory fd (like the `fs` tools) and checked to be a regular file; sensitive files are
//! skipped and counted; binaries are skipped; output stays within the call's budget.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use grep_regex::RegexMatcherBuilder;
use grep_searcher::{
    BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkContextKind, SinkMatch,
};
use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fs::{fstat, locate};
use crate::policy::Access;
use crate::{FailReason, Result, ToolContext, ToolError};

/// Longest line (bytes) returned in a match; longer ones are cut at a character boundary.
const MAX_LINE_BYTES: usize = 1000;

fn default_path() -> String {
    ".".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_max_results() -> u32 {
    200
}
fn default_max_file_bytes() -> u64 {
    1024 * 1024
}

/// Input of `fs.search`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-codeward-complete" = true))]
pub struct SearchArgs {
    /// Regex (or literal with `fixed_strings`) to find; without it, a file-name search by `glob`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 1024))]
    pub pattern: Option<String>,
    /// Directory (or file) to search.
    #[serde(default = "default_path")]
    #[schemars(extend("x-codeward" = "path"))]
    pub path: String,
    /// Globs files must match (gitignore syntax; `!` excludes).
    #[serde(default)]
    pub glob: Vec<String>,
    /// `pattern` is a literal string.
    #[serde(default)]
    pub fixed_strings: bool,
    /// Match case-insensitively.
    #[serde(default)]
    pub case_insensitive: bool,
    /// Lines of context before and after each match.
    #[serde(default)]
    #[schemars(range(min = 0, max = 5))]
    pub context_lines: u8,
    /// Search hidden files and directories.
    #[serde(default)]
    pub include_hidden: bool,
    /// Honour `.gitignore`, `.ignore` and `.git/info/exclude`.
    #[serde(default = "default_true")]
    pub respect_gitignore: bool,
    /// Most matches (or file names) to return.
    #[serde(default = "default_max_results")]
    #[schemars(range(min = 1, max = 5000))]
    pub max_results: u32,
    /// Larger files are skipped.
    #[serde(default = "default_max_file_bytes")]
    #[schemars(range(min = 1))]
    pub max_file_bytes: u64,
}

/// One matching line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct SearchMatch {
    /// File path (relative to the root, absolute outside it).
    pub path: String,
    /// 1-based line number.
    pub line_number: u64,
    /// The line, without its terminator.
    pub line: String,
    /// Context lines before.
    pub before: Vec<String>,
    /// Context lines after.
    pub after: Vec<String>,
}

/// Result of `fs.search`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct SearchResult {
    /// Matching lines (content search).
    pub matches: Vec<SearchMatch>,
    /// Files with a match (content search) or matching the globs (name search).
    pub files: Vec<String>,
    /// Files opened and searched.
    pub files_searched: u64,
    /// Files skipped because they are sensitive (§5.5).
    pub skipped_sensitive: u64,
    /// Stopped early (`max_results` or the output budget).
    pub truncated: bool,
}

struct Collect {
    matches: Vec<SearchMatch>,
    before: Vec<String>,
    path: String,
    max: usize,
    budget: usize,
    used: usize,
    full: bool,
    hit: bool,
}

impl Collect {
    fn take(&mut self, cost: usize) -> bool {
        if self.used + cost > self.budget {
            self.full = true;
            return false;
        }
        self.used += cost;
        true
    }
}

fn line_of(bytes: &[u8]) -> String {
    let mut end = bytes.len();
    while end > 0 && matches!(bytes[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let s = String::from_utf8_lossy(&bytes[..end.min(MAX_LINE_BYTES + 4)]);
    if s.len() <= MAX_LINE_BYTES {
        return s.into_owned();
    }
    let mut cut = MAX_LINE_BYTES;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].to_owned()
}

impl Sink for Collect {
    type Error = std::io::Error;

    fn matched(&mut self, _: &Searcher, m: &SinkMatch<'_>) -> std::io::Result<bool> {
        if self.matches.len() >= self.max {
            self.full = true;
            return Ok(false);
        }
        let line = line_of(m.bytes());
        let before = std::mem::take(&mut self.before);
        let cost =
            64 + self.path.len() + line.len() + before.iter().map(|b| b.len() + 4).sum::<usize>();
        if !self.take(cost) {
            return Ok(false);
        }
        self.hit = true;
        self.matches.push(SearchMatch {
            path: self.path.clone(),
            line_number: m.line_number().unwrap_or(0),
            line,
            before,
            after: Vec::new(),
        });
        Ok(true)
    }

    fn context(&mut self, _: &Searcher, c: &SinkContext<'_>) -> std::io::Result<bool> {
        let line = line_of(c.bytes());
        match c.kind() {
            SinkContextKind::After => {
                if !self.take(line.len() + 4) {
                    return Ok(false);
                }
                if let Some(last) = self.matches.last_mut() {
                    last.after.push(line);
                }
            }
            _ => self.before.push(line),
        }
        Ok(true)
    }
}

/// Runs `fs.search` (blocking).
pub fn search(ctx: &ToolContext, args: SearchArgs) -> Result<SearchResult> {
    let loc = locate(ctx, &args.path, Access::Read)?;
    // The start itself must open beneath its base (a symlink out of the root fails here).
    let start = loc.open(libc::O_PATH, 0).map_err(|e| loc.err(&e))?;
    // The walk reads directories by path; every file it yields is then opened beneath the
    // base fd, so a directory swapped for a symlink mid-walk cannot lead outside.
    let (walk_root, base_prefix, strict) = if loc.display.starts_with('/') {
        (PathBuf::from(&loc.display), PathBuf::from("/"), true)
    } else {
        // Walk from where the start really is (its fd), not the name given: through an in-root
        // link (`link → .codeward`) the walk's paths would not name the state dir, and its
        // reserved-dir filter and the sensitive patterns would not recognise what they read.
        let real = crate::fs::real_dir(start.as_fd()).map_err(|e| loc.err(&e))?;
        if !real.starts_with(ctx.root.path()) {
            return Err(ToolError::Escaped { path: loc.display });
        }
        (real, ctx.root.path().to_path_buf(), false)
    };
    let bad =
        |e: &dyn std::fmt::Display| ToolError::failed(FailReason::InvalidArgument, e.to_string());
    let mut walker = WalkBuilder::new(&walk_root);
    walker
        .follow_links(false)
        .hidden(!args.include_hidden)
        .git_ignore(args.respect_gitignore)
        .git_exclude(args.respect_gitignore)
        .ignore(args.respect_gitignore)
        .parents(args.respect_gitignore)
        .git_global(false)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b));
    let reserved_ctx = ctx.clone();
    walker.filter_entry(move |e| !crate::fs::is_reserved(&reserved_ctx, e.path()));
    if !args.glob.is_empty() {
        let mut ob = OverrideBuilder::new(&walk_root);
        for g in &args.glob {
            ob.add(g).map_err(|e| bad(&e))?;
        }
        walker.overrides(ob.build().map_err(|e| bad(&e))?);
    }
    let matcher = match &args.pattern {
        Some(p) => Some(
            RegexMatcherBuilder::new()
                .case_insensitive(args.case_insensitive)
                .fixed_strings(args.fixed_strings)
                .line_terminator(Some(b'\n'))
                .size_limit(10 * 1024 * 1024)
                .build(p)
                .map_err(|e| bad(&e))?,
        ),
        None => None,
    };
    let mut searcher = SearcherBuilder::new()
        .binary_detection(BinaryDetection::quit(0))
        .line_number(true)
        .before_context(args.context_lines.min(5) as usize)
        .after_context(args.context_lines.min(5) as usize)
        .build();
    let mut out = SearchResult {
        matches: Vec::new(),
        files: Vec::new(),
        files_searched: 0,
        skipped_sensitive: 0,
        truncated: false,
    };
    let mut collect = Collect {
        matches: Vec::new(),
        before: Vec::new(),
        path: String::new(),
        max: args.max_results.clamp(1, 5000) as usize,
        budget: ctx.limits.output_budget(),
        used: 128,
        full: false,
        hit: false,
    };
    for entry in walker.build() {
        ctx.check_live()?;
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(&base_prefix) else {
            continue;
        };
        let display = if strict {
            entry.path().to_string_lossy().into_owned()
        } else {
            rel.to_string_lossy().into_owned()
        };
        let sensitive_key: &Path = if strict { entry.path() } else { rel };
        if ctx.policy.sensitive_match(sensitive_key).is_some() {
            out.skipped_sensitive += 1;
            continue;
        }
        let Some(matcher) = &matcher else {
            // The walk lists directories by path: a directory swapped for a link mid-walk
            // would show names from wherever it points. Only names that open beneath the base
            // (and land in an allowed place) are reported.
            let fd = if strict {
                crate::fs::open_strict(rel, libc::O_PATH)
            } else {
                crate::fs::open_in_checked(ctx, rel, libc::O_PATH)
            };
            if fd.is_err() {
                continue;
            }
            if out.files.len() >= collect.max || !collect.take(display.len() + 4) {
                out.truncated = true;
                break;
            }
            out.files.push(display);
            continue;
        };
        let fd = if strict {
            crate::fs::open_strict(rel, libc::O_RDONLY | libc::O_NONBLOCK)
        } else {
            crate::fs::open_in_checked(ctx, rel, libc::O_RDONLY | libc::O_NONBLOCK)
        };
        let Ok(fd) = fd else { continue };
        let Ok(st) = fstat(fd.as_fd()) else { continue };
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size as u64 > args.max_file_bytes {
            continue;
        }
        if ctx.limits.deny_multiply_linked_files && st.st_nlink > 1 {
            continue;
        }
        out.files_searched += 1;
        collect.path = display;
        collect.before.clear();
        collect.hit = false;
        let file = std::fs::File::from(fd);
        let _ = searcher.search_file(matcher, &file, &mut collect);
        if collect.hit {
            if !collect.take(collect.path.len() + 4) {
                out.truncated = true;
                break;
            }
            out.files.push(collect.path.clone());
        }
        if collect.full {
            out.truncated = true;
            break;
        }
    }
    out.matches = collect.matches;
    out.truncated |= collect.full;
    Ok(out)
}
