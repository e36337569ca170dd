//! From a path argument to "this directory fd + this relative path": inside the root the path is
//! opened beneath the project root fd exactly as given (kernel order, so the kernel refuses any
//! escape); outside it the policy's resolved path is used and walked from `/` without following
//! any symlink, so the file opened is the one the policy checked.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::json;

use super::beneath::{self, RootDir};
use crate::policy::{Access, RealFs};
use crate::{FailReason, Result, ToolContext, ToolError};

/// A path ready to be opened.
#[derive(Debug)]
pub(crate) struct Located {
    base: Arc<RootDir>,
    /// Relative to `base`; empty = `base` itself.
    pub(crate) rel: PathBuf,
    /// Walk with `O_NOFOLLOW` everywhere instead of `openat2` (outside-root exceptions).
    strict: bool,
    /// What results show: relative to the root, or absolute outside it.
    pub(crate) display: String,
    /// Inside the root: the policy to re-check against when the kernel followed a symlink
    /// (see [`Located::open`]).
    guard: Option<Arc<crate::policy::PolicySet>>,
}

/// Where an fd opened beneath the root through a symlink really landed is still allowed: inside
/// the root, not in the state dir or the scratch base, not a sensitive path (SPEC §5.4 step 7,
/// §5.5). The policy judged the path when the call was checked; a directory swapped for a link
/// to `.codeward/state` or `.ssh` afterwards stays beneath the root, so `RESOLVE_BENEATH` alone
/// lets it through.
pub(crate) fn lands_safely(policy: &crate::policy::PolicySet, root: &Path, real: &Path) -> bool {
    let Ok(rel) = real.strip_prefix(root) else {
        return false;
    };
    let pc = policy.context();
    let reserved = [&pc.state_dir, &pc.scratch_base]
        .into_iter()
        .flatten()
        .any(|d| real.starts_with(d));
    !reserved && policy.sensitive_match(rel).is_none()
}

/// The path the kernel gives for `fd` (`/proc/self/fd/N`).
pub(crate) fn fd_path(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn slash() -> io::Result<Arc<RootDir>> {
    static SLASH: OnceLock<Arc<RootDir>> = OnceLock::new();
    if let Some(s) = SLASH.get() {
        return Ok(s.clone());
    }
    let s = Arc::new(RootDir::open(Path::new("/"))?);
    Ok(SLASH.get_or_init(|| s).clone())
}

/// Folds `.` and `..` lexically (never above `/`).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir => out.push("/"),
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn display_rel(rel: &Path) -> String {
    if rel.as_os_str().is_empty() {
        ".".to_owned()
    } else {
        rel.to_string_lossy().into_owned()
    }
}

/// The path is (under) the state dir or the scratch base, which no tool may reach (SPEC §5.4
/// step 7).
pub(crate) fn is_reserved(ctx: &ToolContext, abs: &Path) -> bool {
    let pc = ctx.policy.context();
    [&pc.state_dir, &pc.scratch_base]
        .into_iter()
        .flatten()
        .any(|d| abs.starts_with(d))
}

/// Locates `raw` for `access`. Paths inside the root (lexically) skip the policy resolver: the
/// kernel enforces containment when they are opened. Others go through `PolicySet::check_path`.
pub(crate) fn locate(ctx: &ToolContext, raw: &str, access: Access) -> Result<Located> {
    if raw.contains('\0') {
        return Err(ToolError::InvalidPath {
            path: raw.to_owned(),
            reason: "nul_byte",
        });
    }
    if raw.len() > 4096 {
        return Err(ToolError::InvalidPath {
            path: raw.chars().take(64).collect(),
            reason: "too_long",
        });
    }
    let root = ctx.root.path();
    let raw_path = Path::new(raw);
    let joined = if raw_path.is_absolute() {
        raw_path.to_path_buf()
    } else {
        root.join(raw_path)
    };
    let lexical = normalize(&joined);
    if let Ok(rel_lex) = lexical.strip_prefix(root) {
        if is_reserved(ctx, &lexical) {
            // The state dir or a scratch dir inside the root: let the policy name the denial.
            ctx.policy.check_path(raw, access, None, None, &RealFs)?;
        }
        let rel = if raw_path.is_absolute() {
            raw_path
                .strip_prefix(root)
                .map_or_else(|_| rel_lex.to_path_buf(), Path::to_path_buf)
        } else {
            raw_path.to_path_buf()
        };
        return Ok(Located {
            base: ctx.root.clone(),
            rel,
            strict: false,
            display: display_rel(rel_lex),
            guard: Some(ctx.policy.clone()),
        });
    }
    let checked = ctx.policy.check_path(raw, access, None, None, &RealFs)?;
    let resolved = checked.resolved;
    if let Ok(rel) = resolved.strip_prefix(root) {
        return Ok(Located {
            base: ctx.root.clone(),
            rel: rel.to_path_buf(),
            strict: false,
            display: display_rel(rel),
            guard: Some(ctx.policy.clone()),
        });
    }
    // INVARIANT: `resolved` is absolute and free of symlinks as of the check; the strict walk
    // refuses any symlink that appears later.
    let rel = resolved
        .strip_prefix("/")
        .unwrap_or(&resolved)
        .to_path_buf();
    Ok(Located {
        base: slash().map_err(|e| ToolError::from_io(&e, raw))?,
        rel,
        strict: true,
        display: resolved.to_string_lossy().into_owned(),
        guard: None,
    })
}

impl Located {
    /// The path is its base directory itself (`.`, `a/..`, the root).
    pub(crate) fn is_base(&self) -> bool {
        normalize(&Path::new("/").join(&self.rel)) == Path::new("/")
    }

    /// Opens the path itself.
    pub(crate) fn open(&self, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
        self.open_rel(&self.rel, flags, mode, None)
    }

    /// Opens `rel` beneath the base. When the kernel followed a symlink on the way, where the fd
    /// really is (joined with `then`, the name about to be acted on in it) must still be an
    /// allowed place ([`lands_safely`]); otherwise the open fails `EXDEV` (`outside_root`).
    fn open_rel(
        &self,
        rel: &Path,
        flags: libc::c_int,
        mode: libc::mode_t,
        then: Option<&Path>,
    ) -> io::Result<OwnedFd> {
        if self.strict {
            return beneath::force_walk_open(self.base.as_fd(), rel, flags, mode);
        }
        let (fd, followed) = beneath::open_beneath_tracked(self.base.as_fd(), rel, flags, mode)?;
        if followed && let Some(policy) = &self.guard {
            let real = fd_path(fd.as_fd())?;
            let real = then.map_or_else(|| real.clone(), |n| real.join(n));
            if !lands_safely(policy, self.base.path(), &real) {
                return Err(io::Error::from_raw_os_error(libc::EXDEV));
            }
        }
        Ok(fd)
    }

    /// The final component and the directory holding it, for operations that act on a name
    /// (create, rename, unlink, lstat) and never follow a final symlink.
    pub(crate) fn split(&self) -> Result<(PathBuf, PathBuf)> {
        let rel = match self.rel.components().next_back() {
            Some(Component::Normal(_)) => self.rel.clone(),
            _ => normalize(&Path::new("/").join(&self.rel))
                .strip_prefix("/")
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        };
        match (rel.parent(), rel.file_name()) {
            (Some(parent), Some(name)) => Ok((parent.to_path_buf(), PathBuf::from(name))),
            _ => Err(ToolError::failed_with(
                FailReason::PermissionDenied,
                format!("`{}` is an allowed root itself", self.display),
                json!({ "path": self.display }),
            )),
        }
    }

    /// Opens the directory holding the final component (`O_PATH | O_DIRECTORY`), creating
    /// missing directories beneath the base when `create` is set.
    pub(crate) fn open_parent(&self, parent: &Path, create: bool) -> Result<OwnedFd> {
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        let name = self.split().ok().map(|(_, n)| n);
        let then = name.as_deref();
        match self.open_rel(parent, flags, 0, then) {
            Ok(fd) => Ok(fd),
            Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => {
                let mut cur = PathBuf::new();
                let mut fd = self
                    .open_rel(&cur, flags, 0, None)
                    .map_err(|e| self.err(&e))?;
                for c in parent.components() {
                    cur.push(c);
                    fd = match self.open_rel(&cur, flags, 0, None) {
                        Ok(fd) => fd,
                        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                            let name = Path::new(c.as_os_str());
                            match beneath::mkdirat(fd.as_fd(), name, 0o755) {
                                Ok(()) => {}
                                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                                Err(e) => return Err(self.err(&e)),
                            }
                            self.open_rel(&cur, flags, 0, None)
                                .map_err(|e| self.err(&e))?
                        }
                        Err(e) => return Err(self.err(&e)),
                    };
                }
                drop(fd);
                // Once more as a whole, so the final name is judged where it really lands.
                self.open_rel(parent, flags, 0, then)
                    .map_err(|e| self.err(&e))
            }
            Err(e) => Err(self.err(&e)),
        }
    }

    /// Maps an OS error on this path.
    pub(crate) fn err(&self, e: &io::Error) -> ToolError {
        ToolError::from_io(e, &self.display)
    }
}

/// Opens `rel` (relative to `/`) with the strict walk.
pub(crate) fn open_from_slash(rel: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    beneath::force_walk_open(slash()?.as_fd(), rel, flags, 0)
}
