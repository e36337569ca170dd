//! Errors of the assets boundary.
//!
//! Two shapes live here: [`AssetError`] is a *per-file* finding (a path, a typed
//! [`AssetErrorReason`] and a message) collected while loading — it is data, listed in
//! diagnostics and reload reports — and [`AssetsError`] is the one `thiserror` enum returned
//! by the public API (`get`, `search`, `AssetKind::from_str`, strict reloads). Both carry a
//! stable snake_case `code()`.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::kind::AssetKind;

/// Result of the assets API.
pub type Result<T, E = AssetsError> = std::result::Result<T, E>;

/// Why one asset file could not be loaded (SPEC §10.1). Serialized as its snake_case code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AssetErrorReason {
    /// The file is not valid UTF-8 (the message names the byte offset).
    InvalidUtf8,
    /// The YAML front matter is malformed, unterminated or not a mapping (line in message).
    InvalidFrontMatter,
    /// A required field is missing (the field is in `detail`).
    MissingField,
    /// A field has the wrong type or an invalid value (the field is in `detail`).
    InvalidField,
    /// Another file of the same kind already uses this name; the first path in sort order wins.
    DuplicateName,
    /// Two skill-graph files share a node id (file stem); the first path in sort order wins.
    DuplicateNode,
    /// An Agent Skills `SKILL.md` whose `name` differs from its directory name.
    NameMismatch,
    /// The file exceeds 1 MiB or its front matter exceeds 64 KiB.
    AssetTooLarge,
    /// The file could not be read, or is not a regular file (`detail: not_a_regular_file`).
    IoError,
    /// A symlink pointing outside the data dir (never followed).
    SymlinkOutsideDataDir,
    /// A `[[wiki link]]` whose target node does not exist. Reported as a warning: it never
    /// fails a strict load (SPEC §10.2 keeps dangling edges).
    DanglingLink,
}

impl AssetErrorReason {
    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidUtf8 => "invalid_utf8",
            Self::InvalidFrontMatter => "invalid_front_matter",
            Self::MissingField => "missing_field",
            Self::InvalidField => "invalid_field",
            Self::DuplicateName => "duplicate_name",
            Self::DuplicateNode => "duplicate_node",
            Self::NameMismatch => "name_mismatch",
            Self::AssetTooLarge => "asset_too_large",
            Self::IoError => "io_error",
            Self::SymlinkOutsideDataDir => "symlink_outside_data_dir",
            Self::DanglingLink => "dangling_link",
        }
    }
}

impl fmt::Display for AssetErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One problem with one asset file: who (path), what (reason), and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetError {
    /// The kind of asset directory the file lives in, when known.
    pub kind: Option<AssetKind>,
    /// The file's path, relative to the project root (see [`crate::LoadOptions::root`]).
    pub path: PathBuf,
    /// The typed reason.
    pub reason: AssetErrorReason,
    /// A lowercase, human-readable message (user input in backticks).
    pub message: String,
    /// A machine-readable refinement: the field name for `missing_field`/`invalid_field`,
    /// `not_a_regular_file` for `io_error`, the link target for `dangling_link`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// 1-based line in the file, when the reason has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// True when the file's previous good version is still served (lenient mode).
    #[serde(default)]
    pub stale: bool,
}

impl AssetError {
    /// Builds an error with no detail or line.
    pub fn new(
        kind: Option<AssetKind>,
        path: impl Into<PathBuf>,
        reason: AssetErrorReason,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            path: path.into(),
            reason,
            message: message.into(),
            detail: None,
            line: None,
            stale: false,
        }
    }

    /// Sets `detail`.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets `line`.
    pub fn with_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    /// The reason's stable snake_case code.
    pub fn code(&self) -> &'static str {
        self.reason.code()
    }
}

impl fmt::Display for AssetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.path.display(),
            self.reason,
            self.message
        )
    }
}

impl std::error::Error for AssetError {}

/// Why a search query was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidQueryReason {
    /// The query is empty or whitespace only.
    Blank,
    /// The query is longer than [`crate::MAX_QUERY_BYTES`].
    TooLong,
}

impl fmt::Display for InvalidQueryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Blank => "blank",
            Self::TooLong => "too_long",
        })
    }
}

/// The assets API's error (SPEC §2.3). Callers misuse (`invalid_*`, `asset_not_found`) and
/// bad asset files (`asset_load_failed`) are different variants.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AssetsError {
    /// The caller named an asset kind that does not exist.
    #[error("invalid asset kind `{kind}`")]
    InvalidAssetKind {
        /// The string given.
        kind: String,
    },
    /// No asset of this kind has this key.
    #[error("{kind} `{key}` not found")]
    AssetNotFound {
        /// The kind looked in.
        kind: AssetKind,
        /// The key given.
        key: String,
    },
    /// The search query was refused.
    #[error("invalid query: {reason}")]
    InvalidQuery {
        /// Why.
        reason: InvalidQueryReason,
    },
    /// A strict load found errors; the previous snapshot keeps serving.
    #[error("asset load failed with {} error(s)", errors.len())]
    AssetLoadFailed {
        /// Every error found, with paths.
        errors: Vec<AssetError>,
    },
}

impl AssetsError {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidAssetKind { .. } => "invalid_asset_kind",
            Self::AssetNotFound { .. } => "asset_not_found",
            Self::InvalidQuery { .. } => "invalid_query",
            Self::AssetLoadFailed { .. } => "asset_load_failed",
        }
    }
}
