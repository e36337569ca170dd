//! Sandbox paths (SPEC §5.4): NUL/length checks, lexical normalization, full symlink
//! resolution through a [`PathResolver`], component-wise containment in the allowed areas,
//! `outside_root_allowlist` exceptions and the unreachable state dir. Sensitive patterns
//! (§5.5) live in `sensitive.rs`; both run from [`PolicySet::check_path`].

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::error::{InvalidPathReason, PolicyError};
use crate::options::{ExceptionAccess, OutsideRootTarget};
use crate::policy_set::PolicySet;
use crate::resolver::{EntryKind, PathResolver};

/// Maximum length of a path candidate in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Maximum length of one component in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Maximum symlink hops while resolving one candidate.
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Component-wise containment (`base` itself or below it) by bytes, for normalized absolute
/// paths: `/r/allowed` contains `/r/allowed/x` but not `/r/allowed_evil`.
// INVARIANT: both paths are lexically normalized (no `.`/`..`/empty segments, no trailing
// `/`), which every form and every configured area is after compile.
pub(crate) fn under(p: &Path, base: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (p, b) = (p.as_os_str().as_bytes(), base.as_os_str().as_bytes());
    if b == b"/" {
        return p.first() == Some(&b'/');
    }
    p.starts_with(b) && (p.len() == b.len() || p.get(b.len()) == Some(&b'/'))
}

/// The part of `p` below `base` (no leading `/`), if `under(p, base)`.
pub(crate) fn rel_to<'p>(p: &'p Path, base: &Path) -> Option<&'p str> {
    if !under(p, base) {
        return None;
    }
    let s = p.to_str()?;
    let n = base.as_os_str().len();
    Some(s.get(n..).unwrap_or("").trim_start_matches('/'))
}

/// How a location uses the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// The tool only reads (or lists, stats) the path.
    Read,
    /// The tool writes, creates, moves or deletes at the path (`x-codeward-access: write`).
    Write,
}

/// Device nodes every command may read and write (the OS sandbox grants the same, SPEC §6.2).
pub const COMMAND_DEVICES: [&str; 5] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// The allowed area a checked path lies in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "area")]
pub enum Area {
    /// Inside the canonical root or the root as given.
    Root,
    /// Inside this call's scratch dir (command tools).
    Scratch,
    /// Inside a `command_read_paths` entry (read only, command tools).
    ReadPath,
    /// One of the [`COMMAND_DEVICES`] every command may read and write (SPEC §6.2), command
    /// tools only.
    Device,
    /// Admitted by an `outside_root_allowlist` entry.
    Exception {
        /// The entry's `reason_code`.
        reason_code: String,
        /// The entry's access.
        access: ExceptionAccess,
    },
}

/// A path that passed §5.4 and §5.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPath {
    /// The fully resolved path (kernel order); tools act on this, never on the raw string.
    pub resolved: PathBuf,
    /// Where it lies.
    pub area: Area,
}

/// The three forms of one candidate judged by §5.4 step 4 and §5.5.
#[derive(Debug, Clone)]
pub(crate) struct PathForms {
    pub lexical: PathBuf,
    pub resolved_lexical: PathBuf,
    pub resolved_raw: PathBuf,
}

impl PathForms {
    /// The distinct forms, lexical first.
    pub(crate) fn distinct(&self) -> impl Iterator<Item = &Path> {
        let a = self.lexical.as_path();
        let b = self.resolved_lexical.as_path();
        let c = self.resolved_raw.as_path();
        let b = (b != a).then_some(b);
        let c = (c != a && Some(c) != b).then_some(c);
        std::iter::once(a).chain(b).chain(c)
    }
}

/// A sandbox denial with the rule that produced it (for decision records).
#[derive(Debug, Clone)]
pub(crate) struct PathDenial {
    pub error: PolicyError,
    pub rule_layer: &'static str,
    pub rule_key: String,
    pub rule_value: String,
    pub normalized: Option<String>,
    pub explain: String,
}

/// A sandbox pass: forms, area and exceptions used.
#[derive(Debug, Clone)]
pub(crate) struct PathPass {
    pub forms: PathForms,
    pub area: Area,
    pub exceptions: Vec<String>,
}

/// §5.4 step 1: NUL and length limits.
pub(crate) fn precheck(raw: &str) -> Result<(), InvalidPathReason> {
    if memchr::memchr(0, raw.as_bytes()).is_some() {
        return Err(InvalidPathReason::NulByte);
    }
    if raw.len() > MAX_PATH_BYTES || raw.split('/').any(|c| c.len() > MAX_COMPONENT_BYTES) {
        return Err(InvalidPathReason::TooLong);
    }
    Ok(())
}

/// Joins `raw` to `base` (when relative) and folds `.`, empty segments and `..` lexically
/// (never above `/`). No expansion of `~` or `$VAR`; backslash is an ordinary character.
pub fn normalize_lexically(base: &Path, raw: &str) -> PathBuf {
    normalize_from(lexical_base(base), raw)
}

/// `normalize_lexically` with an already normalized base.
fn normalize_from(base: PathBuf, raw: &str) -> PathBuf {
    let mut out = if raw.starts_with('/') {
        PathBuf::with_capacity(raw.len())
    } else {
        let mut b = base;
        b.reserve(raw.len() + 1);
        b
    };
    if raw.starts_with('/') {
        out.push("/");
    }
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn lexical_base(base: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in base.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Number of normal components of an absolute, normalized path.
fn depth_of(p: &Path) -> usize {
    p.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

/// Full symlink resolution (§5.4 step 3) of `comps` (which may hold `.`, `..` and empty
/// segments) starting at `start`, an absolute path already free of symlinks.
///
/// Symlink targets are spliced in (absolute ones restart at `/`), `..` applies to the resolved
/// prefix, dangling links are followed, and below a missing component the rest is appended
/// lexically (a later `..` back above it resumes resolution).
pub(crate) fn resolve<'a>(
    start: PathBuf,
    comps: impl DoubleEndedIterator<Item = &'a OsStr>,
    resolver: &dyn PathResolver,
) -> Result<PathBuf, InvalidPathReason> {
    let mut depth = depth_of(&start);
    let mut cur = start;
    let mut pending: Vec<Cow<'a, OsStr>> = comps.rev().map(Cow::Borrowed).collect();
    let mut hops = 0usize;
    let mut missing_depth: Option<usize> = None;
    while let Some(c) = pending.pop() {
        if c.is_empty() || *c == *OsStr::new(".") {
            continue;
        }
        if *c == *OsStr::new("..") {
            if depth > 0 {
                cur.pop();
                depth -= 1;
                if missing_depth.is_some_and(|m| depth < m) {
                    missing_depth = None;
                }
            }
            continue;
        }
        cur.push(&*c);
        depth += 1;
        if missing_depth.is_some() {
            continue;
        }
        match resolver.lstat(&cur) {
            Ok(EntryKind::Symlink) => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(InvalidPathReason::SymlinkLoop);
                }
                let target = resolver
                    .read_link(&cur)
                    .map_err(|_| InvalidPathReason::Unresolvable)?;
                cur.pop();
                depth -= 1;
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                    depth = 0;
                }
                for tc in target.components().rev() {
                    match tc {
                        Component::Normal(n) => pending.push(Cow::Owned(n.to_os_string())),
                        Component::ParentDir => pending.push(Cow::Owned(OsString::from(".."))),
                        Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                    }
                }
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                missing_depth = Some(depth);
            }
            Err(_) => return Err(InvalidPathReason::Unresolvable),
        }
    }
    Ok(cur)
}

fn comp_str(c: Component<'_>) -> Option<&OsStr> {
    match c {
        Component::RootDir | Component::Prefix(_) => None,
        c => Some(c.as_os_str()),
    }
}

/// Resolves an absolute path, skipping the lstat of a known-canonical prefix.
pub(crate) fn resolve_abs(
    path: &Path,
    known: &Path,
    resolver: &dyn PathResolver,
) -> Result<PathBuf, InvalidPathReason> {
    // INVARIANT: `known` is canonical (no symlink among its components), so its prefix needs
    // no lstat; the canonical root is canonicalized by the runtime before compile.
    if known.parent().is_some()
        && let Some(rest) = rel_to(path, known)
    {
        let mut start = PathBuf::with_capacity(path.as_os_str().len() + 16);
        start.push(known);
        return resolve(start, raw_comps(rest), resolver);
    }
    resolve(
        PathBuf::from("/"),
        path.components().filter_map(comp_str),
        resolver,
    )
}

fn raw_comps(raw: &str) -> impl DoubleEndedIterator<Item = &OsStr> {
    raw.split('/').filter(|c| !c.is_empty()).map(OsStr::new)
}

/// Computes the three forms of a candidate relative to `base` (absolute, resolved).
pub(crate) fn forms(
    raw: &str,
    base: &Path,
    canonical_root: &Path,
    resolver: &dyn PathResolver,
) -> Result<PathForms, InvalidPathReason> {
    precheck(raw)?;
    // INVARIANT: `base` is normalized (canonical root from compile, or a resolved cwd).
    let lexical = normalize_from(base.to_path_buf(), raw);
    let resolved_lexical = resolve_abs(&lexical, canonical_root, resolver)?;
    let has_dots = raw.split('/').any(|c| c == "." || c == "..");
    let resolved_raw = if !has_dots {
        resolved_lexical.clone()
    } else if raw.starts_with('/') {
        resolve(PathBuf::from("/"), raw_comps(raw), resolver)?
    } else {
        // INVARIANT: `base` is a resolved path (the canonical root or a checked cwd).
        resolve(lexical_base(base), raw_comps(raw), resolver)?
    };
    Ok(PathForms {
        lexical,
        resolved_lexical,
        resolved_raw,
    })
}

impl PolicySet {
    /// Whether `p` lies inside the canonical root or the root as given.
    pub(crate) fn in_root(&self, p: &Path) -> bool {
        under(p, &self.ctx.canonical_root) || under(p, &self.given_root)
    }

    /// The allowed area of one resolved form, or `None` (outside every area).
    fn area_of(
        &self,
        p: &Path,
        access: Access,
        scratch: Option<&Path>,
        command: bool,
    ) -> Option<Area> {
        if self.in_root(p) {
            return Some(Area::Root);
        }
        if scratch.is_some_and(|s| under(p, s)) {
            return Some(Area::Scratch);
        }
        // `cmd >/dev/null` is no escape: the OS sandbox grants these to every command (§6.2).
        if command && COMMAND_DEVICES.iter().any(|d| p == Path::new(d)) {
            return Some(Area::Device);
        }
        if command
            && access == Access::Read
            && self.opts.command_read_paths.iter().any(|r| under(p, r))
        {
            return Some(Area::ReadPath);
        }
        self.outside
            .iter()
            .zip(&self.outside_matchers)
            .find(|(e, m)| {
                let hit = match (&e.target, m) {
                    (OutsideRootTarget::Path(base), _) => under(p, base),
                    (OutsideRootTarget::Pattern(_), Some(m)) => m.is_match(p),
                    (OutsideRootTarget::Pattern(_), None) => false,
                };
                hit && (access == Access::Read || e.access == ExceptionAccess::ReadWrite)
            })
            .map(|(e, _)| e)
            .map(|e| Area::Exception {
                reason_code: e.reason_code.clone(),
                access: e.access,
            })
    }

    /// §5.4 step 7: the state dir and other calls' scratch dirs are unreachable.
    fn state_dir_hit(&self, p: &Path, scratch: Option<&Path>) -> Option<&'static str> {
        if self.ctx.state_dir.as_deref().is_some_and(|s| under(p, s)) {
            return Some("state_dir");
        }
        if let Some(base) = self.ctx.scratch_base.as_deref()
            && under(p, base)
            && !scratch.is_some_and(|s| under(p, s))
        {
            return Some("scratch_dir");
        }
        None
    }

    /// §5.4 for one candidate (no sensitive check): forms, state dir, containment, exceptions.
    pub(crate) fn sandbox_check(
        &self,
        raw: &str,
        access: Access,
        base: Option<&Path>,
        scratch: Option<&Path>,
        command: bool,
        resolver: &dyn PathResolver,
    ) -> Result<PathPass, Box<PathDenial>> {
        let base = base.unwrap_or(&self.ctx.canonical_root);
        let forms = forms(raw, base, &self.ctx.canonical_root, resolver).map_err(|reason| {
            Box::new(PathDenial {
                error: PolicyError::InvalidPath { reason },
                rule_layer: "sandbox",
                rule_key: format!("builtin:{}", reason.as_str()),
                rule_value: reason.as_str().to_owned(),
                normalized: None,
                explain: format!("is an invalid path ({})", reason.as_str()),
            })
        })?;
        for p in forms.distinct() {
            if let Some(what) = self.state_dir_hit(p, scratch) {
                let shown = p.display().to_string();
                return Err(Box::new(PathDenial {
                    error: PolicyError::SensitivePathDenied {
                        path: shown.clone(),
                        pattern: what.to_owned(),
                    },
                    rule_layer: "builtin",
                    rule_key: "builtin:state_dir".to_owned(),
                    rule_value: what.to_owned(),
                    normalized: Some(shown.clone()),
                    explain: format!(
                        "resolves to {shown}, inside the {what} (unreachable for tools)"
                    ),
                }));
            }
        }
        let mut exceptions = Vec::new();
        let mut area = Area::Root;
        for (i, p) in [&forms.resolved_raw, &forms.resolved_lexical]
            .into_iter()
            .enumerate()
        {
            if i == 1 && forms.resolved_lexical == forms.resolved_raw {
                break;
            }
            match self.area_of(p, access, scratch, command) {
                Some(a) => {
                    if let Area::Exception { reason_code, .. } = &a
                        && !exceptions.contains(reason_code)
                    {
                        exceptions.push(reason_code.clone());
                    }
                    if i == 0 {
                        area = a;
                    }
                }
                None => {
                    let shown = p.display().to_string();
                    let write_note = if access == Access::Write
                        && self.area_of(p, Access::Read, scratch, command).is_some()
                    {
                        "; the matching entry is read-only and this location writes"
                    } else {
                        "; no outside_root_allowlist entry matches"
                    };
                    return Err(Box::new(PathDenial {
                        error: PolicyError::OutsideRoot {
                            path: shown.clone(),
                            location: String::new(),
                        },
                        rule_layer: "sandbox",
                        rule_key: "builtin:outside_root".to_owned(),
                        rule_value: self.ctx.canonical_root.display().to_string(),
                        normalized: Some(shown.clone()),
                        explain: format!(
                            "resolves to {shown}, outside root {}{write_note}",
                            self.ctx.canonical_root.display()
                        ),
                    }));
                }
            }
        }
        Ok(PathPass {
            forms,
            area,
            exceptions,
        })
    }

    /// Checks one path candidate against §5.4 (sandbox) and §5.5 (sensitive paths).
    ///
    /// `base` is the directory relative candidates join (default: the canonical root; command
    /// tokens pass their checked `cwd`). `scratch_dir` is this call's scratch dir: passing it
    /// also admits the command areas (scratch dir, `command_read_paths` for reads).
    pub fn check_path(
        &self,
        raw: &str,
        access: Access,
        base: Option<&Path>,
        scratch_dir: Option<&Path>,
        resolver: &dyn PathResolver,
    ) -> Result<CheckedPath, PolicyError> {
        let pass = self
            .sandbox_check(
                raw,
                access,
                base,
                scratch_dir,
                scratch_dir.is_some(),
                resolver,
            )
            .map_err(|d| d.error)?;
        if let Some((path, pattern)) = self.sensitive_forms(&pass.forms) {
            return Err(PolicyError::SensitivePathDenied { path, pattern });
        }
        Ok(CheckedPath {
            resolved: pass.forms.resolved_raw,
            area: pass.area,
        })
    }
}
