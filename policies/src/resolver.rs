//! The only I/O of this crate: [`PathResolver`] (`lstat` + `readlink`), with [`RealFs`] for
//! production and [`MemFs`], an in-memory tree, for tests and `policy explain` dry runs.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// What `lstat` saw at a path (symlinks are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (FIFO, socket, device).
    Other,
}

/// `lstat` / `readlink` access used by path resolution (SPEC §5.4 step 3).
///
/// Both are only ever called with absolute paths whose parent has been fully resolved (no
/// symlink among its components). A missing entry must be reported as
/// [`io::ErrorKind::NotFound`] (or `NotADirectory`); any other error denies the candidate.
pub trait PathResolver {
    /// Kind of the entry at `path`, without following a final symlink.
    fn lstat(&self, path: &Path) -> io::Result<EntryKind>;
    /// Target of the symlink at `path`, as stored (may be relative).
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;
}

/// The real filesystem (`std::fs::symlink_metadata` / `std::fs::read_link`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl PathResolver for RealFs {
    fn lstat(&self, path: &Path) -> io::Result<EntryKind> {
        let ft = std::fs::symlink_metadata(path)?.file_type();
        Ok(if ft.is_symlink() {
            EntryKind::Symlink
        } else if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        })
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::read_link(path)
    }
}

#[derive(Debug, Clone)]
enum MemEntry {
    File,
    Dir,
    Link(PathBuf),
    Denied,
}

/// An in-memory tree: directories, files and symlinks keyed by absolute path.
///
/// Lookups are exact byte lookups of the normalized path (the resolver contract guarantees
/// resolved parents). Adding an entry creates its missing parent directories. `/` always exists.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    entries: HashMap<OsString, MemEntry>,
}

/// `/a//b/./c/` → `/a/b/c` (components re-joined), so lookups can compare bytes.
fn key(p: &Path) -> OsString {
    p.components().collect::<PathBuf>().into_os_string()
}

impl MemFs {
    /// An empty tree (only `/`).
    pub fn new() -> Self {
        Self::default()
    }

    fn add_parents(&mut self, path: &Path) {
        let mut cur = path.parent();
        while let Some(p) = cur {
            if p.as_os_str().is_empty() || p == Path::new("/") {
                break;
            }
            self.entries.entry(key(p)).or_insert(MemEntry::Dir);
            cur = p.parent();
        }
    }

    /// Adds a directory (and its parents).
    pub fn dir(&mut self, path: impl AsRef<Path>) -> &mut Self {
        let p = path.as_ref();
        self.add_parents(p);
        self.entries.insert(key(p), MemEntry::Dir);
        self
    }

    /// Adds a regular file (and its parents).
    pub fn file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        let p = path.as_ref();
        self.add_parents(p);
        self.entries.insert(key(p), MemEntry::File);
        self
    }

    /// Adds a symlink at `path` pointing to `target` (absolute or relative, may dangle).
    pub fn symlink(&mut self, path: impl AsRef<Path>, target: impl AsRef<Path>) -> &mut Self {
        let p = path.as_ref();
        self.add_parents(p);
        self.entries
            .insert(key(p), MemEntry::Link(target.as_ref().to_path_buf()));
        self
    }

    /// Makes `lstat` of `path` fail with `PermissionDenied`.
    pub fn deny(&mut self, path: impl AsRef<Path>) -> &mut Self {
        let p = path.as_ref();
        self.add_parents(p);
        self.entries.insert(key(p), MemEntry::Denied);
        self
    }
}

impl PathResolver for MemFs {
    fn lstat(&self, path: &Path) -> io::Result<EntryKind> {
        if path == Path::new("/") {
            return Ok(EntryKind::Dir);
        }
        match self.entries.get(path.as_os_str()) {
            Some(MemEntry::File) => Ok(EntryKind::File),
            Some(MemEntry::Dir) => Ok(EntryKind::Dir),
            Some(MemEntry::Link(_)) => Ok(EntryKind::Symlink),
            Some(MemEntry::Denied) => Err(io::Error::from(io::ErrorKind::PermissionDenied)),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        match self.entries.get(path.as_os_str()) {
            Some(MemEntry::Link(t)) => Ok(t.clone()),
            Some(_) => Err(io::Error::from(io::ErrorKind::InvalidInput)),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
}

/// Remembers the directories seen during one decision, so candidates sharing a prefix (`src/a`,
/// `src/b`) cost one `lstat` of `src`. Lives for one `evaluate` call only: never across calls.
pub(crate) struct DirMemo<'r> {
    inner: &'r dyn PathResolver,
    dirs: std::cell::RefCell<Vec<PathBuf>>,
}

impl<'r> DirMemo<'r> {
    pub(crate) fn new(inner: &'r dyn PathResolver) -> Self {
        Self {
            inner,
            dirs: std::cell::RefCell::new(Vec::new()),
        }
    }
}

impl PathResolver for DirMemo<'_> {
    fn lstat(&self, path: &Path) -> io::Result<EntryKind> {
        if self.dirs.borrow().iter().any(|d| d.as_path() == path) {
            return Ok(EntryKind::Dir);
        }
        let kind = self.inner.lstat(path)?;
        if kind == EntryKind::Dir {
            let mut dirs = self.dirs.borrow_mut();
            if dirs.len() < 64 {
                dirs.push(path.to_path_buf());
            }
        }
        Ok(kind)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        self.inner.read_link(path)
    }
}
