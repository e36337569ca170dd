//! TOML input: [`ProjectOptions::from_toml_str`] (flat TOML with the key names, list-of-map keys
//! as arrays of tables) and the project file layer, [`load_project_file`] reading
//! `<root>/codeward.toml` into a [`ProjectFile`] with a [`FileFingerprint`] for
//! `config_file_changed`.
//!
//! The file is repository content, so it is read defensively: it must be a regular file (a
//! symlink must resolve inside the root), at most [`MAX_CONFIG_FILE_BYTES`], UTF-8, and opened
//! non-blocking so a FIFO cannot stall `start_project`. Syntax errors report the parser's
//! message and a 1-based line, never a copy of the input.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Map, Number, Value, json};
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::error::{OptionsError, Result};
use super::keys::ProjectOptions;

/// Name of the project file under the root.
pub const PROJECT_FILE_NAME: &str = "codeward.toml";

/// Largest `codeward.toml` accepted (1 MiB).
pub const MAX_CONFIG_FILE_BYTES: u64 = 1 << 20;

/// 1-based line of byte offset `at` in `s`.
fn line_of(s: &str, at: usize) -> usize {
    s.as_bytes()
        .iter()
        .take(at)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// TOML → JSON. Datetimes become `{"datetime": "..."}` and non-finite floats their text, so
/// they fail type checks instead of passing as strings or nulls.
fn to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => {
            Number::from_f64(f).map_or_else(|| json!(f.to_string()), Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => json!({ "datetime": d.to_string() }),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
    }
}

/// Parses TOML text into options and the 1-based line of each top-level key.
pub(crate) fn parse_toml(
    text: &str,
    path: &Path,
) -> Result<(ProjectOptions, BTreeMap<String, usize>)> {
    let table: BTreeMap<Spanned<String>, toml::Value> =
        toml::from_str(text).map_err(|e| OptionsError::InvalidConfigFile {
            path: path.to_owned(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_owned(),
        })?;
    let mut lines = BTreeMap::new();
    let mut map = Map::new();
    for (k, v) in table {
        let line = line_of(text, k.span().start);
        let key = k.into_inner();
        if !ProjectOptions::KEYS.contains(&key.as_str()) {
            return Err(OptionsError::opt_with(
                &key,
                "unknown_option",
                json!({ "line": line }),
            ));
        }
        lines.insert(key.clone(), line);
        map.insert(key, to_json(v));
    }
    let options = ProjectOptions::from_json(&Value::Object(map))?;
    Ok((options, lines))
}

impl ProjectOptions {
    /// Parses flat TOML with the key names (list-of-map keys as arrays of tables, e.g.
    /// `[[outside_root_allowlist]]`). Syntax errors fail with `invalid_config_file{line}`
    /// (path `<toml>`); unknown keys with `invalid_runtime_opt{key, unknown_option}` and the
    /// key's `line` in the details.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        parse_toml(text, Path::new("<toml>")).map(|(o, _)| o)
    }
}

/// Identity of a config file's content at load: size, modification time and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFingerprint {
    len: u64,
    modified: Option<SystemTime>,
    sha256: [u8; 32],
}

impl FileFingerprint {
    fn of(bytes: &[u8], modified: Option<SystemTime>) -> Self {
        Self {
            len: bytes.len() as u64,
            modified,
            sha256: Sha256::digest(bytes).into(),
        }
    }

    /// Whether the file at `path` differs from this fingerprint now. Cheap when unchanged
    /// (one `stat`); reads and hashes only when size or mtime moved, so a `touch` is not a
    /// change. A file that vanished or cannot be read counts as changed.
    pub fn changed(&self, path: &Path) -> bool {
        let Ok(meta) = std::fs::metadata(path) else {
            return true;
        };
        if meta.len() == self.len && meta.modified().ok() == self.modified {
            return false;
        }
        match read_bounded(path) {
            Ok((bytes, _)) => Sha256::digest(&bytes).as_slice() != self.sha256,
            Err(_) => true,
        }
    }
}

/// The `codeward.toml` layer: where it was read, what it set, on which lines, and its
/// fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectFile {
    /// The file (under the canonical root).
    pub path: PathBuf,
    /// The options it sets.
    pub options: ProjectOptions,
    lines: BTreeMap<String, usize>,
    fingerprint: Option<FileFingerprint>,
}

impl ProjectFile {
    /// A file layer built in memory (no line numbers, no fingerprint: `config_file_changed`
    /// reports true once a file exists at `path`).
    pub fn new(path: impl Into<PathBuf>, options: ProjectOptions) -> Self {
        Self {
            path: path.into(),
            options,
            lines: BTreeMap::new(),
            fingerprint: None,
        }
    }

    /// 1-based line of `key` in the file, when read from disk.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.lines.get(key).copied()
    }

    /// The fingerprint taken when the file was read.
    pub fn fingerprint(&self) -> Option<&FileFingerprint> {
        self.fingerprint.as_ref()
    }
}

fn io_error(path: &Path, e: &io::Error) -> OptionsError {
    OptionsError::InvalidConfigFile {
        path: path.to_owned(),
        line: None,
        message: format!("cannot read: {}", e.kind()),
    }
}

/// Opens `path` non-blocking, requires a regular file ≤ the cap and reads it.
fn read_bounded(path: &Path) -> io::Result<(Vec<u8>, Option<SystemTime>)> {
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > MAX_CONFIG_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "file too large",
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "file too large",
        ));
    }
    Ok((bytes, meta.modified().ok()))
}

/// Reads `<root>/codeward.toml` if present (`root` canonical). `Ok(None)` when there is no
/// such file; `invalid_config_file` when it is not a regular file, is a symlink leading out
/// of the root, is larger than [`MAX_CONFIG_FILE_BYTES`], is not UTF-8 or not TOML;
/// `invalid_runtime_opt{key, unknown_option}` (details `source`, `path`, `line`) for an unknown
/// key.
pub fn load_project_file(root: &Path) -> Result<Option<ProjectFile>> {
    let path = root.join(PROJECT_FILE_NAME);
    let bad = |message: &str| OptionsError::InvalidConfigFile {
        path: path.clone(),
        line: None,
        message: message.to_owned(),
    };
    let link = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&path, &e)),
    };
    if link.file_type().is_symlink() {
        let target = std::fs::canonicalize(&path).map_err(|e| io_error(&path, &e))?;
        if !target.starts_with(root) {
            return Err(bad("symlink leads outside the project root"));
        }
    }
    let (bytes, modified) = read_bounded(&path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidInput => bad("not a regular file"),
        io::ErrorKind::FileTooLarge => bad("larger than 1 MiB"),
        _ => io_error(&path, &e),
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| OptionsError::InvalidConfigFile {
        path: path.clone(),
        line: Some(line_of(
            &String::from_utf8_lossy(bytes.get(..e.valid_up_to()).unwrap_or_default()),
            usize::MAX,
        )),
        message: "not valid UTF-8".to_owned(),
    })?;
    let file_details = {
        let mut m = Map::new();
        m.insert("source".to_owned(), json!("file"));
        m.insert("path".to_owned(), json!(path));
        m
    };
    let (options, lines) = parse_toml(text, &path).map_err(|e| e.with_details(&file_details))?;
    Ok(Some(ProjectFile {
        fingerprint: Some(FileFingerprint::of(&bytes, modified)),
        path,
        options,
        lines,
    }))
}
