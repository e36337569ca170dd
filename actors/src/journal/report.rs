//! The journal's data types: the conversation row, the event query, and the reports of open,
//! stats, integrity checks, backups and compactions (the `journal` block of SPEC §9.1 and the
//! payloads of the `journal.*` events of §8.2).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{ConversationId, CorrelationId};

/// One row of `conversations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRow {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its parent, for sub-agents.
    pub parent_conversation_id: Option<ConversationId>,
    /// First registration (kept when re-registered).
    pub created_at_ms: i64,
    /// When it stopped; `None` while live.
    pub stopped_at_ms: Option<i64>,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// The options it runs with (what a restore rebuilds its config from).
    pub options_json: Value,
}

impl ConversationRow {
    /// A live row with no parent and empty options.
    pub fn new(conversation_id: ConversationId, created_at_ms: i64) -> Self {
        Self {
            conversation_id,
            parent_conversation_id: None,
            created_at_ms,
            stopped_at_ms: None,
            stop_reason: None,
            options_json: Value::Object(serde_json::Map::new()),
        }
    }
}

/// Upper bound of [`EventQuery::limit`] (larger values are clamped).
pub const MAX_EVENT_QUERY: usize = 10_000;

/// Which journaled telemetry events to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Only events of this conversation.
    pub conversation_id: Option<ConversationId>,
    /// Only events with this correlation id.
    pub correlation_id: Option<CorrelationId>,
    /// The newest `limit` matching events are returned, ascending by seq (0 → none; clamped to
    /// [`MAX_EVENT_QUERY`]).
    pub limit: usize,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            conversation_id: None,
            correlation_id: None,
            limit: 100,
        }
    }
}

/// `quick_check` or `integrity_check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// `PRAGMA quick_check`.
    Quick,
    /// `PRAGMA integrity_check`.
    Full,
}

impl CheckKind {
    /// `quick` or `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Full => "full",
        }
    }
}

/// Messages kept from one check.
pub const MAX_CHECK_MESSAGES: usize = 20;

/// The outcome of an integrity check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityReport {
    /// No problem found.
    pub ok: bool,
    /// Which check.
    pub check: CheckKind,
    /// SQLite's findings (≤ [`MAX_CHECK_MESSAGES`]); empty when `ok`.
    pub messages: Vec<String>,
    /// When it ran.
    pub at_ms: i64,
}

/// What a backup wrote (`journal.backup_completed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReport {
    /// The backup file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Wall time it took.
    pub duration_ms: u64,
}

/// What a compaction did (`journal.compacted`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompactionReport {
    /// Signal rows deleted (with their stopped conversations).
    pub deleted_signals: u64,
    /// Event rows deleted.
    pub deleted_events: u64,
    /// Stopped conversations deleted.
    pub deleted_conversations: u64,
    /// Database plus WAL file size before.
    pub bytes_before: u64,
    /// Database plus WAL file size after.
    pub bytes_after: u64,
    /// `over_max_bytes: …` when live conversations alone exceed `max_bytes` (the runtime adds a
    /// `policy.warnings` entry and reports health `degraded`), `checkpoint_busy: …` when readers
    /// kept the WAL from being truncated.
    pub warnings: Vec<String>,
}

/// A corrupt file moved aside at open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    /// Where the corrupt database now is.
    pub moved_to: PathBuf,
    /// Why it was judged corrupt.
    pub reason: String,
}

/// What opening found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenReport {
    /// The journal file.
    pub path: PathBuf,
    /// A new, empty journal was created (first start, or after a quarantine).
    pub created: bool,
    /// The schema version now in the file.
    pub schema_version: i64,
    /// The version it was migrated from, if a migration ran.
    pub migrated_from: Option<i64>,
    /// The `quick_check` of the file that is now open.
    pub quick_check: IntegrityReport,
    /// A corrupt file moved aside (the runtime emits `journal.integrity_failed` with
    /// `action: quarantine` and raises a critical alert).
    pub quarantined: Option<Quarantine>,
}

/// Counters of one open journal (this process).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JournalCounters {
    /// Signal rows committed.
    pub signals_appended: u64,
    /// Telemetry events committed.
    pub events_written: u64,
    /// Telemetry events lost: ingest channel full, write failed, or journal closed.
    pub events_dropped: u64,
    /// Telemetry events ignored because their seq was already journaled (first write wins).
    pub events_duplicate: u64,
    /// Event batches handed to the writer.
    pub event_batches: u64,
    /// Write transactions committed (group commits).
    pub transactions: u64,
    /// Failed writes (signals or events).
    pub write_failures: u64,
    /// The last write failed and none has succeeded since (health `failing`).
    pub failing: bool,
}

/// The `journal` block of project diagnostics (SPEC §9.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalStats {
    /// The database file.
    pub path: PathBuf,
    /// Its size.
    pub size_bytes: u64,
    /// The size of its `-wal` file (0 when absent).
    pub wal_bytes: u64,
    /// Signal rows.
    pub signal_count: u64,
    /// Event rows.
    pub event_count: u64,
    /// The oldest journaled signal or event time.
    pub oldest_at_ms: Option<i64>,
    /// The last completed backup.
    pub last_backup_at_ms: Option<i64>,
    /// The last integrity check (at open or on request).
    pub last_check: Option<IntegrityReport>,
    /// The last completed compaction.
    pub last_compaction_at_ms: Option<i64>,
    /// Process-local counters.
    pub counters: JournalCounters,
}
