//! `ToolError`: the one error type of the built-in tools, with the stable codes of SPEC §2.3
//! (`tool_failed` with a snake_case reason, `timeout`, `cancelled`, policy codes passed through).

use serde_json::{Value, json};

/// Result of a tool function.
pub type Result<T, E = ToolError> = std::result::Result<T, E>;

/// Why a tool failed (`tool_failed{reason}`), as a stable snake_case code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailReason {
    /// The path does not exist.
    NotFound,
    /// A file was expected, the path is a directory.
    IsADirectory,
    /// A directory was expected (or a path component is not one).
    NotADirectory,
    /// FIFO, socket, device or other non-regular file: never opened for content.
    NotARegularFile,
    /// The content is not valid UTF-8 and `encoding` is `utf8`.
    NotUtf8,
    /// `fs.edit`: `old_string` occurs more than once and `replace_all` is false.
    NotUnique,
    /// `fs.edit`: `old_string` does not occur.
    NoMatch,
    /// The destination exists (`create_new`, `overwrite: false`).
    AlreadyExists,
    /// A directory move across file systems.
    CrossDevice,
    /// A regular file with more than one hard link, refused by `deny_multiply_linked_files`.
    MultiplyLinked,
    /// The OS refused access.
    PermissionDenied,
    /// A directory that must be empty is not (`fs.delete` without `recursive`).
    DirectoryNotEmpty,
    /// An input is too large (content, request body).
    TooLarge,
    /// An argument is well-formed for the schema but unusable (bad regex, bad base64, bad header).
    InvalidArgument,
    /// `http.fetch`: connecting, TLS or the HTTP exchange failed.
    RequestFailed,
    /// `http.fetch`: more than 5 redirects.
    TooManyRedirects,
    /// A path component changed type while the tool walked it (symlink swap).
    PathChanged,
    /// A process could not be started (`command.run`).
    SpawnFailed,
    /// Another I/O error.
    Io,
    /// The tool panicked.
    Panic,
}

impl FailReason {
    /// The stable snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::IsADirectory => "is_a_directory",
            Self::NotADirectory => "not_a_directory",
            Self::NotARegularFile => "not_a_regular_file",
            Self::NotUtf8 => "not_utf8",
            Self::NotUnique => "not_unique",
            Self::NoMatch => "no_match",
            Self::AlreadyExists => "already_exists",
            Self::CrossDevice => "cross_device",
            Self::MultiplyLinked => "multiply_linked",
            Self::PermissionDenied => "permission_denied",
            Self::DirectoryNotEmpty => "directory_not_empty",
            Self::TooLarge => "too_large",
            Self::InvalidArgument => "invalid_argument",
            Self::RequestFailed => "request_failed",
            Self::TooManyRedirects => "too_many_redirects",
            Self::PathChanged => "path_changed",
            Self::SpawnFailed => "spawn_failed",
            Self::Io => "io",
            Self::Panic => "panic",
        }
    }
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a built-in tool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The tool itself failed (`tool_failed`).
    #[error("tool failed ({reason}): {message}")]
    Failed {
        /// Stable reason code.
        reason: FailReason,
        /// Human-readable message (paths in backticks).
        message: String,
        /// Extra data (e.g. `count` for `not_unique`).
        details: Value,
    },
    /// A policy check inside the tool denied (DNS answer, redirect, path re-check).
    #[error(transparent)]
    Policy(#[from] codeward_policies::PolicyError),
    /// The kernel refused to resolve a path beneath its allowed root (`outside_root`): the
    /// file system changed after the policy check (e.g. a directory swapped for a symlink).
    #[error("path `{path}` escapes its allowed root")]
    Escaped {
        /// The path as given.
        path: String,
    },
    /// A path the kernel could not resolve (`invalid_path{symlink_loop}` and friends).
    #[error("invalid path `{path}`: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// `symlink_loop`, `too_long`, `nul_byte`.
        reason: &'static str,
    },
    /// The arguments do not fit the tool (`invalid_tool_args`); normally caught by the schema.
    #[error("invalid arguments: {message}")]
    InvalidArgs {
        /// What did not fit.
        message: String,
    },
    /// No built-in tool has this name (`unknown_tool`).
    #[error("unknown tool `{name}`")]
    UnknownTool {
        /// The name asked for.
        name: String,
    },
    /// The call ran past its deadline (`timeout`).
    #[error("tool timed out after {timeout_ms} ms")]
    Timeout {
        /// The budget that ran out.
        timeout_ms: u64,
    },
    /// The call was cancelled (`cancelled`).
    #[error("tool call cancelled: {reason}")]
    Cancelled {
        /// Why (e.g. `cancel_requested`, `shutdown`).
        reason: String,
    },
    /// The OS sandbox needed for the call is unavailable (`os_sandbox_unavailable`).
    #[error("os sandbox unavailable: {missing}")]
    OsSandboxUnavailable {
        /// What is missing (e.g. `landlock`).
        missing: String,
    },
}

impl ToolError {
    /// A `tool_failed` error without details.
    pub fn failed(reason: FailReason, message: impl Into<String>) -> Self {
        Self::Failed {
            reason,
            message: message.into(),
            details: Value::Null,
        }
    }

    /// A `tool_failed` error with details.
    pub fn failed_with(reason: FailReason, message: impl Into<String>, details: Value) -> Self {
        Self::Failed {
            reason,
            message: message.into(),
            details,
        }
    }

    /// Maps an OS error on `path` to the matching `tool_failed` reason (or `outside_root` for
    /// `EXDEV` from `RESOLVE_BENEATH`, `invalid_path` for `ELOOP`/`ENAMETOOLONG`).
    pub fn from_io(err: &std::io::Error, path: &str) -> Self {
        let reason = match err.raw_os_error() {
            Some(libc::ENOENT) => FailReason::NotFound,
            Some(libc::EISDIR) => FailReason::IsADirectory,
            Some(libc::ENOTDIR) => FailReason::NotADirectory,
            Some(libc::EACCES | libc::EPERM | libc::EROFS) => FailReason::PermissionDenied,
            Some(libc::EEXIST) => FailReason::AlreadyExists,
            Some(libc::ENOTEMPTY) => FailReason::DirectoryNotEmpty,
            Some(libc::ENXIO | libc::ENODEV) => FailReason::NotARegularFile,
            Some(libc::EXDEV) => {
                return Self::Escaped {
                    path: path.to_owned(),
                };
            }
            Some(libc::ELOOP) => {
                return Self::InvalidPath {
                    path: path.to_owned(),
                    reason: "symlink_loop",
                };
            }
            Some(libc::ENAMETOOLONG) => {
                return Self::InvalidPath {
                    path: path.to_owned(),
                    reason: "too_long",
                };
            }
            _ => FailReason::Io,
        };
        Self::failed_with(reason, format!("`{path}`: {err}"), json!({ "path": path }))
    }

    /// The stable snake_case code (SPEC §2.3).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Failed { .. } => "tool_failed",
            Self::Policy(e) => e.code(),
            Self::Escaped { .. } => "outside_root",
            Self::InvalidPath { .. } => "invalid_path",
            Self::InvalidArgs { .. } => "invalid_tool_args",
            Self::UnknownTool { .. } => "unknown_tool",
            Self::Timeout { .. } => "timeout",
            Self::Cancelled { .. } => "cancelled",
            Self::OsSandboxUnavailable { .. } => "os_sandbox_unavailable",
        }
    }

    /// The `tool_failed` reason, if this is one.
    pub fn reason(&self) -> Option<FailReason> {
        match self {
            Self::Failed { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// Structured details, as in SPEC §2.3.
    pub fn details(&self) -> Value {
        match self {
            Self::Failed {
                reason,
                message,
                details,
            } => {
                json!({ "reason": reason, "message": message, "details": details })
            }
            Self::Policy(e) => e.details(),
            Self::Escaped { path } => json!({ "path": path, "location": "open" }),
            Self::InvalidPath { reason, .. } => json!({ "reason": reason }),
            Self::InvalidArgs { message } => {
                json!({ "errors": [{ "instance_path": "", "schema_path": "", "message": message }] })
            }
            Self::UnknownTool { name } => json!({ "name": name }),
            Self::Timeout { timeout_ms } => json!({ "timeout_ms": timeout_ms }),
            Self::Cancelled { reason } => json!({ "reason": reason }),
            Self::OsSandboxUnavailable { missing } => json!({ "missing": missing }),
        }
    }
}
