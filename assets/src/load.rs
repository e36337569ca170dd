//! File-system side of loading: [`ensure_layout`], walking the four asset directories in
//! sorted order without following symlinks ([`read_sources`]), and [`load`], which hands the
//! bytes to the pure parsers and [`build_snapshot`].

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{AssetError, AssetErrorReason, AssetsError};
use crate::kind::AssetKind;
use crate::parse::SKILL_FILE;
use crate::snapshot::{AssetSnapshot, SkippedFile};
use crate::text::{self, MAX_FILE_BYTES};

pub use crate::snapshot::build_snapshot;

/// Deepest directory nesting walked under an asset directory.
const MAX_DEPTH: usize = 16;
/// Most resources listed for one Agent Skills directory.
const MAX_RESOURCES: usize = 1000;

/// How to load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadOptions {
    /// Strict: any error rejects the whole load (SPEC §10.3). Default false.
    pub strict: bool,
    /// The project root that recorded paths are relative to; `None` = the data dir's parent.
    pub root: Option<PathBuf>,
    /// "Now" in Unix milliseconds for `loaded_at` (tests, injectable clocks); `None` = system
    /// clock.
    pub now_ms: Option<i64>,
}

impl LoadOptions {
    /// Lenient options.
    pub fn lenient() -> Self {
        Self::default()
    }

    /// Strict options.
    pub fn strict() -> Self {
        Self {
            strict: true,
            ..Self::default()
        }
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.now_ms
            .unwrap_or_else(|| text::system_time_ms(std::time::SystemTime::now()))
    }
}

/// One asset file's bytes, ready for the pure parsers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// The kind (from the top-level directory).
    pub kind: AssetKind,
    /// Path relative to the project root.
    pub path: PathBuf,
    /// The file contents.
    pub bytes: Vec<u8>,
    /// Modification time, Unix milliseconds.
    pub modified_ms: Option<i64>,
    /// Agent Skills only: other files of the skill directory, relative to it, sorted.
    pub resources: Vec<PathBuf>,
}

/// Everything read from disk for one load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sources {
    /// Files to parse.
    pub files: Vec<SourceFile>,
    /// Per-file read errors (too large, not a regular file, symlink outside, I/O).
    pub errors: Vec<AssetError>,
    /// Files deliberately not loaded (symlinks inside the data dir).
    pub skipped: Vec<SkippedFile>,
}

/// What a load produced.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    /// The snapshot built. When `rejected`, it must not be published; it is kept so tools
    /// like `assets validate` can show what would have loaded.
    pub snapshot: AssetSnapshot,
    /// Every error (also inside the snapshot when applied).
    pub errors: Vec<AssetError>,
    /// True in strict mode when there were errors.
    pub rejected: bool,
}

impl LoadOutcome {
    /// The snapshot, or `asset_load_failed{errors}` when rejected.
    pub fn into_result(self) -> Result<AssetSnapshot, AssetsError> {
        if self.rejected {
            Err(AssetsError::AssetLoadFailed {
                errors: self.errors,
            })
        } else {
            Ok(self.snapshot)
        }
    }
}

/// Creates `skills/`, `commands/`, `workflows/`, `skill_graph/`, and `state/` and `tmp/`
/// (mode 0700) under the data dir, like `mkdir -p`. Existing directories are left alone.
pub fn ensure_layout(data_dir: &Path) -> io::Result<()> {
    fs::create_dir_all(data_dir)?;
    for kind in AssetKind::ALL {
        fs::create_dir_all(data_dir.join(kind.dir_name()))?;
    }
    for private in ["state", "tmp"] {
        let dir = data_dir.join(private);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Loads every asset under `data_dir` into a snapshot numbered `generation`.
pub fn load(data_dir: &Path, opts: &LoadOptions, generation: u64) -> LoadOutcome {
    load_with_previous(data_dir, opts, generation, None)
}

/// Like [`load`], but in lenient mode a file that loaded in `previous` and now fails keeps its
/// previous version (its errors are marked `stale`), and per-kind versions carry over for
/// unchanged kinds.
pub fn load_with_previous(
    data_dir: &Path,
    opts: &LoadOptions,
    generation: u64,
    previous: Option<&AssetSnapshot>,
) -> LoadOutcome {
    let sources = read_sources(data_dir, opts);
    build_snapshot(sources, opts, generation, previous)
}

/// Walks the four asset directories of `data_dir` (sorted, symlinks never followed, editor
/// temp and hidden files ignored) and reads every markdown file.
pub fn read_sources(data_dir: &Path, opts: &LoadOptions) -> Sources {
    let root = opts
        .root
        .clone()
        .unwrap_or_else(|| data_dir.parent().map(Path::to_path_buf).unwrap_or_default());
    let canonical_data_dir = fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let mut walker = Walker {
        root,
        data_dir: canonical_data_dir,
        out: Sources::default(),
    };
    for kind in AssetKind::ALL {
        let dir = data_dir.join(kind.dir_name());
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => walker.symlink(kind, &dir),
            Ok(meta) if meta.is_dir() => walker.walk_dir(kind, &dir, 0),
            Ok(_) => {
                let e = walker.error(
                    kind,
                    &dir,
                    AssetErrorReason::IoError,
                    "asset directory is not a directory".into(),
                );
                walker.out.errors.push(e.with_detail("not_a_directory"));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                let e = walker.error(kind, &dir, AssetErrorReason::IoError, e.to_string());
                walker.out.errors.push(e);
            }
        }
    }
    walker.out
}

struct Walker {
    root: PathBuf,
    data_dir: PathBuf,
    out: Sources,
}

fn sorted_entries(dir: &Path) -> io::Result<Vec<fs::DirEntry>> {
    let mut entries = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    Ok(entries)
}

/// Lexically normalises `.` and `..` (no file-system access).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl Walker {
    fn rel(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf())
    }

    fn error(
        &self,
        kind: AssetKind,
        path: &Path,
        reason: AssetErrorReason,
        message: String,
    ) -> AssetError {
        AssetError::new(Some(kind), self.rel(path), reason, message)
    }

    fn walk_dir(&mut self, kind: AssetKind, dir: &Path, depth: usize) {
        if depth > MAX_DEPTH {
            let e = self.error(
                kind,
                dir,
                AssetErrorReason::IoError,
                format!("deeper than {MAX_DEPTH} levels"),
            );
            self.out.errors.push(e.with_detail("too_deep"));
            return;
        }
        let entries = match sorted_entries(dir) {
            Ok(e) => e,
            Err(e) => {
                let e = self.error(kind, dir, AssetErrorReason::IoError, e.to_string());
                self.out.errors.push(e);
                return;
            }
        };
        // Agent Skills directory: SKILL.md is the asset, everything else a resource.
        if kind == AssetKind::Skill && depth > 0 {
            let skill_file = dir.join(SKILL_FILE);
            if fs::symlink_metadata(&skill_file).is_ok_and(|m| m.is_file()) {
                let mut resources = Vec::new();
                collect_resources(dir, dir, &mut resources, 0);
                self.read_file(kind, &skill_file, resources);
                return;
            }
        }
        for entry in entries {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if text::is_ignored_name(&name) {
                continue;
            }
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_symlink() {
                self.symlink(kind, &path);
            } else if ft.is_dir() {
                self.walk_dir(kind, &path, depth + 1);
            } else if text::is_markdown_name(&name) {
                if ft.is_file() {
                    self.read_file(kind, &path, Vec::new());
                } else {
                    let what = if ft.is_fifo() {
                        "a fifo"
                    } else if ft.is_socket() {
                        "a socket"
                    } else {
                        "a device"
                    };
                    let e = self.error(
                        kind,
                        &path,
                        AssetErrorReason::IoError,
                        format!("not a regular file ({what})"),
                    );
                    self.out.errors.push(e.with_detail("not_a_regular_file"));
                }
            }
        }
    }

    fn symlink(&mut self, kind: AssetKind, path: &Path) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = fs::read_link(path).unwrap_or_default();
        let parent = path.parent().unwrap_or(Path::new(""));
        let resolved = fs::canonicalize(path).unwrap_or_else(|_| normalize(&parent.join(&target)));
        let is_dir = fs::metadata(path).is_ok_and(|m| m.is_dir());
        if !is_dir && !text::is_markdown_name(&name) {
            return; // not an asset candidate either way
        }
        if resolved.starts_with(&self.data_dir) {
            self.out.skipped.push(SkippedFile {
                kind: Some(kind),
                path: self.rel(path),
                reason: "symlink".into(),
                target: Some(self.rel(&resolved)),
            });
        } else {
            let e = self.error(
                kind,
                path,
                AssetErrorReason::SymlinkOutsideDataDir,
                format!(
                    "symlink to `{}` points outside the data dir; not followed",
                    target.display()
                ),
            );
            self.out.errors.push(e);
        }
    }

    fn read_file(&mut self, kind: AssetKind, path: &Path, resources: Vec<PathBuf>) {
        match read_capped(path) {
            Ok((bytes, modified_ms)) => self.out.files.push(SourceFile {
                kind,
                path: self.rel(path),
                bytes,
                modified_ms,
                resources,
            }),
            Err(ReadError::TooLarge(n)) => {
                let e = self.error(
                    kind,
                    path,
                    AssetErrorReason::AssetTooLarge,
                    format!("file is {n} bytes, the limit is {MAX_FILE_BYTES}"),
                );
                self.out.errors.push(e);
            }
            Err(ReadError::NotRegular) => {
                let e = self.error(
                    kind,
                    path,
                    AssetErrorReason::IoError,
                    "not a regular file".into(),
                );
                self.out.errors.push(e.with_detail("not_a_regular_file"));
            }
            Err(ReadError::Io(err)) if err.kind() == io::ErrorKind::NotFound => {
                // Deleted between listing and reading: it is simply gone.
            }
            Err(ReadError::Io(err)) => {
                let e = self.error(kind, path, AssetErrorReason::IoError, err.to_string());
                self.out.errors.push(e);
            }
        }
    }
}

enum ReadError {
    TooLarge(u64),
    NotRegular,
    Io(io::Error),
}

/// Opens without following symlinks and without blocking on FIFOs, checks the size, reads.
fn read_capped(path: &Path) -> Result<(Vec<u8>, Option<i64>), ReadError> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    (&mut file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    let modified = meta.modified().ok().map(text::system_time_ms);
    Ok((bytes, modified))
}

fn collect_resources(base: &Path, dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > MAX_DEPTH || out.len() >= MAX_RESOURCES {
        return;
    }
    let Ok(entries) = sorted_entries(dir) else {
        return;
    };
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if text::is_ignored_name(&name) || (depth == 0 && name == SKILL_FILE) {
            continue;
        }
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            collect_resources(base, &path, out, depth + 1);
        } else if out.len() < MAX_RESOURCES {
            out.push(
                path.strip_prefix(base)
                    .map(Path::to_path_buf)
                    .unwrap_or(path),
            );
        }
    }
}
