//! `JournalHandle`: the cloneable, typed way to use a project's journal. Writes go to the writer
//! thread through the published slot (they keep working across a [`JournalActor`] restart),
//! reads run on the reader pool in `spawn_blocking`, telemetry events go to the batching pump.
//!
//! [`JournalActor`]: super::JournalActor

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::core::JournalCore;
use super::error::{JournalError, Result, UnavailableReason};
use super::report::{
    BackupReport, CheckKind, CompactionReport, ConversationRow, EventQuery, IntegrityReport,
    JournalCounters, JournalStats, OpenReport,
};
use super::store::{self, CompactParams, SignalRow};
use super::writer::{Source, WriterCmd};
use super::{JournalConfig, JournalNotice};
use crate::conversation::ConversationEvent;
use crate::ids::{ConversationId, ProjectId};
use crate::telemetry::RecordedEvent;

/// Entries accepted by one [`JournalHandle::append_signals`] call.
pub const MAX_APPEND: usize = 4096;

/// A handle to one open journal. Cheap to clone; every clone reaches the same writer, readers
/// and event pump. Dropping the last clone (and the actor, if any) lets the writer drain and
/// end; [`JournalHandle::close`] does it explicitly, with a checkpoint.
#[derive(Clone)]
pub struct JournalHandle {
    pub(crate) core: Arc<JournalCore>,
}

impl std::fmt::Debug for JournalHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalHandle")
            .field("path", &self.core.config.path)
            .field("writer_generation", &self.core.writer_generation())
            .finish_non_exhaustive()
    }
}

fn join_error(e: tokio::task::JoinError) -> JournalError {
    JournalError::Unavailable {
        reason: UnavailableReason::SqliteError,
        detail: format!("journal open task failed: {e}"),
    }
}

impl JournalHandle {
    /// Opens the journal at `config.path` (creating it, or quarantining a corrupt one per
    /// `config.on_corruption`), starts its writer thread and reader pool, and reports what it
    /// found. The writer runs unsupervised until a [`JournalActor`] adopts it
    /// ([`journal_child_spec`]).
    ///
    /// Errors: `journal_corrupt` (with `OnCorruption::Fail`), `schema_too_new`,
    /// `schema_unsupported`, `journal_project_mismatch`, `io`, `journal_unavailable`.
    ///
    /// [`JournalActor`]: super::JournalActor
    /// [`journal_child_spec`]: super::journal_child_spec
    pub async fn open(config: JournalConfig) -> Result<(JournalHandle, OpenReport)> {
        let cfg = config.clone();
        let opened = tokio::task::spawn_blocking(move || store::open(&cfg))
            .await
            .map_err(join_error)??;
        let report = opened.report;
        let core = JournalCore::new(config);
        if report.created {
            // A journal created just now holds nothing to trim: the start-up compaction (and
            // its checkpoint fsyncs) would be pure cost; the periodic one still runs.
            core.compacted_once
                .store(true, std::sync::atomic::Ordering::Release);
        }
        let guard = core.spawn_writer(Source::Opened(opened.conn)).await?;
        core.park(guard);
        Ok((JournalHandle { core }, report))
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.core.config.path
    }

    /// The owning project.
    pub fn project_id(&self) -> &ProjectId {
        &self.core.config.project_id
    }

    /// The generation of the running writer thread (0 while none is up); it grows on every
    /// restart.
    pub fn writer_generation(&self) -> u64 {
        self.core.writer_generation()
    }

    /// Whether the last write failed and none succeeded since (health `failing`).
    pub fn is_failing(&self) -> bool {
        self.core.shared.is_failing()
    }

    /// Process-local counters.
    pub fn counters(&self) -> JournalCounters {
        self.core.shared.counters()
    }

    /// Appends applied signals, write-ahead: returns once their rows committed (durable per
    /// `journal_sync`). All entries of one call commit together or not at all.
    ///
    /// Errors: `duplicate_signal` (an id or seq already journaled for its conversation; nothing
    /// of this call was written), `invalid_journal_input` (another project's entry, seq 0, more
    /// than [`MAX_APPEND`] entries), `journal_unavailable` (not written — for `writer_stopped`,
    /// possibly written: a retry then reports `duplicate_signal{signal_id}`).
    pub async fn append_signals(&self, entries: Vec<ConversationEvent>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        if entries.len() > MAX_APPEND {
            return Err(JournalError::invalid(format!(
                "{} entries in one append, at most {MAX_APPEND}",
                entries.len()
            )));
        }
        let project = &self.core.config.project_id;
        let rows = entries
            .iter()
            .map(|e| {
                if &e.project_id != project {
                    return Err(JournalError::invalid(format!(
                        "entry of project `{}` appended to the journal of `{project}`",
                        e.project_id
                    )));
                }
                SignalRow::from_event(e)
            })
            .collect::<Result<Vec<_>>>()?;
        self.core
            .request(0, |reply| WriterCmd::Signals { rows, reply })
            .await
    }

    /// Queues telemetry events for the next batch: never blocks, never fails loudly. Events that
    /// do not fit the ingest channel are dropped and counted (`events_dropped`). Returns how
    /// many were accepted.
    pub fn append_events(&self, events: Vec<RecordedEvent>) -> usize {
        self.core.offer_events(events)
    }

    /// Waits until every event accepted before this call was committed (shutdown, tests).
    /// `journal_unavailable` when some of them were dropped by a failed write.
    pub async fn flush_events(&self) -> Result<()> {
        self.core.flush_events().await
    }

    /// Registers a conversation, or re-registers it: parent and options are replaced, the stop
    /// is cleared, `created_at` stays the first registration's.
    pub async fn register_conversation(&self, row: ConversationRow) -> Result<()> {
        self.core
            .request(0, |reply| WriterCmd::Register { row, reply })
            .await
    }

    /// Marks a conversation stopped. `conversation_not_found` if it was never registered.
    pub async fn mark_stopped(&self, id: &ConversationId, reason: &str, at_ms: i64) -> Result<()> {
        let (conversation_id, reason) = (id.to_string(), reason.to_owned());
        self.core
            .request(0, |reply| WriterCmd::MarkStopped {
                conversation_id,
                reason,
                at_ms,
                reply,
            })
            .await
    }

    /// Stores a state snapshot of a conversation taken after `conv_seq` (SPEC §12.2: every 1000
    /// signals); the two newest per conversation are kept.
    pub async fn put_snapshot(
        &self,
        id: &ConversationId,
        conv_seq: u64,
        state: Value,
    ) -> Result<()> {
        let conv_seq = i64::try_from(conv_seq)
            .map_err(|_| JournalError::invalid(format!("conv_seq {conv_seq} out of range")))?;
        let conversation_id = id.to_string();
        self.core
            .request(0, |reply| WriterCmd::Snapshot {
                conversation_id,
                conv_seq,
                state,
                reply,
            })
            .await
    }

    /// The newest snapshot of a conversation: `(conv_seq, state)`.
    pub async fn latest_snapshot(&self, id: &ConversationId) -> Result<Option<(u64, Value)>> {
        let id = id.clone();
        self.read(move |c, p| store::latest_snapshot(c, p, &id))
            .await
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &Path) -> Result<T> + Send + 'static,
    {
        if self.core.is_closed() {
            return Err(JournalError::unavailable(UnavailableReason::Closed));
        }
        self.core.readers.run(f).await
    }

    /// One conversation row.
    pub async fn conversation(&self, id: &ConversationId) -> Result<Option<ConversationRow>> {
        let id = id.clone();
        self.read(move |c, p| store::conversation(c, p, &id)).await
    }

    /// Conversations not stopped (to restore at project start), sorted by id.
    pub async fn live_conversations(&self) -> Result<Vec<ConversationRow>> {
        self.read(store::live_conversations).await
    }

    /// Journaled signals of a conversation with `conv_seq > after_seq`, ascending, at most
    /// `limit` (`None`: all) — identical to the appended entries.
    pub async fn signals(
        &self,
        id: &ConversationId,
        after_seq: u64,
        limit: Option<usize>,
    ) -> Result<Vec<ConversationEvent>> {
        let (id, project) = (id.clone(), self.core.config.project_id.clone());
        self.read(move |c, p| store::signals(c, p, &project, &id, after_seq, limit))
            .await
    }

    /// The highest journaled `conv_seq` of a conversation (0 = none).
    pub async fn last_conv_seq(&self, id: &ConversationId) -> Result<u64> {
        let id = id.clone();
        self.read(move |c, p| store::last_conv_seq(c, p, &id)).await
    }

    /// Journaled telemetry events: the newest `q.limit` matching ones, ascending by seq.
    pub async fn events(&self, q: EventQuery) -> Result<Vec<RecordedEvent>> {
        let project = self.core.config.project_id.clone();
        self.read(move |c, p| store::events(c, p, &project, &q))
            .await
    }

    /// The highest telemetry seq ever journaled (0 = none); the telemetry seq continues from it
    /// after a restart.
    pub async fn max_event_seq(&self) -> Result<u64> {
        self.read(store::max_event_seq).await
    }

    /// The `journal` block of project diagnostics.
    pub async fn stats(&self) -> Result<JournalStats> {
        let mut stats = self.read(store::stats).await?;
        stats.counters = self.counters();
        Ok(stats)
    }

    /// Copies the live journal to `dest` (mode 0600) with SQLite's online backup API, 256 pages
    /// per step with short pauses; appends keep committing meanwhile and land in the copy.
    /// Reports to the observer (`journal.backup_completed`).
    pub async fn backup(&self, dest: &Path) -> Result<BackupReport> {
        let dest: PathBuf = dest.to_path_buf();
        self.core
            .request(0, |reply| WriterCmd::Backup { dest, reply })
            .await
    }

    /// `quick_check` (`full = false`) or `integrity_check` (`full = true`) on a reader
    /// connection; recorded as the last check; a failed check is reported to the observer
    /// (`journal.integrity_failed`).
    pub async fn check(&self, full: bool) -> Result<IntegrityReport> {
        let kind = if full {
            CheckKind::Full
        } else {
            CheckKind::Quick
        };
        let at_ms = self.core.config.now_ms();
        let report = self
            .read(move |c, p| store::check(c, p, kind, at_ms))
            .await?;
        let json = serde_json::to_string(&report).unwrap_or_default();
        // Best effort: the report is returned even when it cannot be recorded.
        let _ = self
            .core
            .request(0, |reply| WriterCmd::SetMeta {
                key: store::meta::LAST_CHECK,
                value: rusqlite::types::Value::Text(json),
                reply,
            })
            .await;
        if !report.ok {
            self.core
                .shared
                .notify(JournalNotice::IntegrityFailed(report.clone()));
        }
        Ok(report)
    }

    /// Runs the retention rules of SPEC §12.3 now (events older than `retention_days`,
    /// conversations stopped longer ago; above `max_bytes` the oldest events, then the oldest
    /// stopped conversations; live conversations never), in 10 000-row batches with appends
    /// served between them, then `wal_checkpoint(TRUNCATE)` and `incremental_vacuum`. Reports to
    /// the observer (`journal.compacted`).
    pub async fn compact(&self) -> Result<CompactionReport> {
        let params = CompactParams {
            now_ms: self.core.config.now_ms(),
            retention_days: self.core.config.retention_days,
            max_bytes: self.core.config.max_bytes,
        };
        self.core
            .request(0, |reply| WriterCmd::Compact { params, reply })
            .await
    }

    /// Flushes pending events, checkpoints and closes the writer, closes the readers. Later
    /// calls fail with `journal_unavailable{closed}`; closing again is a no-op.
    pub async fn close(&self) -> Result<()> {
        self.core.close().await
    }
}
