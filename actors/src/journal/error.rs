//! `JournalError`: every error of the journal boundary, with a stable snake_case `code()`, and
//! the mapping from SQLite and I/O failures onto it.
//!
//! Who is at fault: the caller ([`JournalError::DuplicateSignal`], [`JournalError::InvalidInput`],
//! [`JournalError::ConversationNotFound`]), the configuration or the file found on disk
//! ([`JournalError::SchemaTooNew`], [`JournalError::SchemaUnsupported`],
//! [`JournalError::ProjectMismatch`], [`JournalError::Corrupt`]), or the storage at run time
//! ([`JournalError::Unavailable`], [`JournalError::Io`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Result of a journal operation.
pub type Result<T, E = JournalError> = std::result::Result<T, E>;

/// Why the journal could not serve a call (`journal_unavailable{reason}`, retryable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnavailableReason {
    /// The journal was closed; later calls fail with this.
    Closed,
    /// No writer is running (restarting for longer than the retry wait, or given up).
    WriterDown,
    /// The writer stopped before it answered (it panicked or was closed mid-call); whether the
    /// write committed is unknown — a retried signal append reports `duplicate_signal` if it did.
    WriterStopped,
    /// The disk is full (`SQLITE_FULL`).
    DiskFull,
    /// An I/O error below SQLite (`SQLITE_IOERR`, `SQLITE_CANTOPEN`, …).
    IoError,
    /// The database stayed locked past `busy_timeout` (`SQLITE_BUSY` / `SQLITE_LOCKED`).
    Busy,
    /// The file or directory became read-only (`SQLITE_READONLY`, `SQLITE_PERM`).
    ReadOnly,
    /// Any other SQLite failure.
    SqliteError,
}

impl UnavailableReason {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::WriterDown => "writer_down",
            Self::WriterStopped => "writer_stopped",
            Self::DiskFull => "disk_full",
            Self::IoError => "io_error",
            Self::Busy => "busy",
            Self::ReadOnly => "read_only",
            Self::SqliteError => "sqlite_error",
        }
    }
}

impl std::fmt::Display for UnavailableReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which unique key a duplicate signal hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateKey {
    /// `UNIQUE(conversation_id, signal_id)`: the signal is already journaled (a retry).
    SignalId,
    /// `UNIQUE(conversation_id, conv_seq)`: another signal already holds this seq (a bug in the
    /// caller's numbering).
    ConvSeq,
}

/// Errors of the journal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code")]
pub enum JournalError {
    /// Storage at fault or journal closed: the write did not happen (or, for `writer_stopped`,
    /// may not have). Retryable.
    #[error("journal unavailable: {reason}{}", detail_suffix(.detail))]
    #[serde(rename = "journal_unavailable")]
    Unavailable {
        /// Why.
        reason: UnavailableReason,
        /// The underlying message, if any.
        detail: String,
    },
    /// The file is not a usable journal (failed `quick_check`, not a database, not a codeward
    /// journal, or a row that does not decode).
    #[error("journal `{}` is corrupt: {reason}", path.display())]
    #[serde(rename = "journal_corrupt")]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The file was written by a newer binary.
    #[error("journal schema version {found} is newer than the supported {supported}")]
    #[serde(rename = "schema_too_new")]
    SchemaTooNew {
        /// Version found in `meta`.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
    /// The file has a schema version no migration starts from.
    #[error("journal schema version {found} cannot be migrated to {supported}")]
    #[serde(rename = "schema_unsupported")]
    SchemaUnsupported {
        /// Version found in `meta`.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
    /// The file belongs to another project.
    #[error("journal belongs to project `{found}`, not `{expected}`")]
    #[serde(rename = "journal_project_mismatch")]
    ProjectMismatch {
        /// The configured project.
        expected: String,
        /// The project recorded in `meta`.
        found: String,
    },
    /// Caller misuse: a signal with this id or seq is already journaled for the conversation;
    /// nothing of that append was written.
    #[error(
        "duplicate signal `{signal_id}` (conv_seq {conv_seq}) in conversation `{conversation_id}`"
    )]
    #[serde(rename = "duplicate_signal")]
    DuplicateSignal {
        /// Conversation.
        conversation_id: String,
        /// The offending signal's id.
        signal_id: String,
        /// The offending signal's seq.
        conv_seq: u64,
        /// Which unique key it hit.
        key: DuplicateKey,
    },
    /// Caller misuse: the conversation was never registered.
    #[error("conversation `{conversation_id}` is not in the journal")]
    #[serde(rename = "conversation_not_found")]
    ConversationNotFound {
        /// The conversation.
        conversation_id: String,
    },
    /// Caller misuse: malformed input (another project's entries, seq 0, too many entries, a
    /// backup onto the journal itself …).
    #[error("invalid journal input: {reason}")]
    #[serde(rename = "invalid_journal_input")]
    InvalidInput {
        /// What was wrong.
        reason: String,
    },
    /// A filesystem operation outside SQLite failed (creating the directory, setting modes,
    /// quarantining, renaming a backup).
    #[error("journal i/o failed: {op} `{}`: {message}", path.display())]
    #[serde(rename = "io")]
    Io {
        /// What was attempted.
        op: String,
        /// On which path.
        path: PathBuf,
        /// The OS message.
        message: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl JournalError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable { .. } => "journal_unavailable",
            Self::Corrupt { .. } => "journal_corrupt",
            Self::SchemaTooNew { .. } => "schema_too_new",
            Self::SchemaUnsupported { .. } => "schema_unsupported",
            Self::ProjectMismatch { .. } => "journal_project_mismatch",
            Self::DuplicateSignal { .. } => "duplicate_signal",
            Self::ConversationNotFound { .. } => "conversation_not_found",
            Self::InvalidInput { .. } => "invalid_journal_input",
            Self::Io { .. } => "io",
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// `journal_unavailable` with a reason and no detail.
    pub fn unavailable(reason: UnavailableReason) -> Self {
        Self::Unavailable {
            reason,
            detail: String::new(),
        }
    }

    /// Caller misuse.
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            reason: reason.into(),
        }
    }

    /// A filesystem failure.
    pub(crate) fn io(op: &str, path: &std::path::Path, err: &std::io::Error) -> Self {
        Self::Io {
            op: op.to_owned(),
            path: path.to_path_buf(),
            message: err.to_string(),
        }
    }

    /// Maps a SQLite failure at run time: corruption is `journal_corrupt`, everything else
    /// `journal_unavailable` with the closest reason.
    pub(crate) fn sqlite(path: &std::path::Path, err: &rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        let reason = match err.sqlite_error_code() {
            Some(C::DatabaseCorrupt | C::NotADatabase) => {
                return Self::Corrupt {
                    path: path.to_path_buf(),
                    reason: err.to_string(),
                };
            }
            Some(C::DiskFull) => UnavailableReason::DiskFull,
            Some(C::SystemIoFailure | C::CannotOpen | C::FileLockingProtocolFailed) => {
                UnavailableReason::IoError
            }
            Some(C::DatabaseBusy | C::DatabaseLocked) => UnavailableReason::Busy,
            Some(C::ReadOnly | C::PermissionDenied) => UnavailableReason::ReadOnly,
            _ => UnavailableReason::SqliteError,
        };
        Self::Unavailable {
            reason,
            detail: err.to_string(),
        }
    }

    /// A row that does not decode.
    pub(crate) fn decode(path: &std::path::Path, what: &str, err: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{what} does not decode: {err}"),
        }
    }

    /// The short reason for `journal.write_failed` payloads.
    pub fn reason(&self) -> String {
        match self {
            Self::Unavailable { reason, .. } => reason.as_str().to_owned(),
            other => other.code().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_serde_tags_match() {
        let cases = [
            (
                JournalError::unavailable(UnavailableReason::Closed),
                "journal_unavailable",
            ),
            (
                JournalError::SchemaTooNew {
                    found: 9,
                    supported: 1,
                },
                "schema_too_new",
            ),
            (
                JournalError::DuplicateSignal {
                    conversation_id: "c".into(),
                    signal_id: "s".into(),
                    conv_seq: 1,
                    key: DuplicateKey::SignalId,
                },
                "duplicate_signal",
            ),
            (JournalError::invalid("x"), "invalid_journal_input"),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code);
            let v = serde_json::to_value(&err).unwrap();
            assert_eq!(v["code"], code);
        }
        let msg = JournalError::Unavailable {
            reason: UnavailableReason::DiskFull,
            detail: "database or disk is full".into(),
        }
        .to_string();
        assert_eq!(
            msg,
            "journal unavailable: disk_full (database or disk is full)"
        );
    }
}
