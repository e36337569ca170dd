//! The durable per-project journal (SPEC §12): one SQLite database per project holding the
//! applied signals of every conversation (write-ahead), the telemetry events (batched), the
//! conversation registry and state snapshots.
//!
//! # Schema (v1, SPEC §12.1)
//!
//! ```text
//! meta(key PRIMARY KEY, value)   -- schema_version, project_id, created_at, last_backup_at_ms,
//!                                --   last_compaction_at_ms, last_check (JSON), event_seq_hwm
//! conversations(conversation_id PRIMARY KEY, parent_conversation_id, created_at, stopped_at,
//!               stop_reason, options_json)
//! signals(seq INTEGER PRIMARY KEY, conversation_id, conv_seq, signal_id, type, correlation_id,
//!         causation_id, at_ms, body_json, UNIQUE(conversation_id, conv_seq),
//!         UNIQUE(conversation_id, signal_id))
//! events(seq INTEGER PRIMARY KEY /* telemetry seq */, event, at_ms, conversation_id,
//!        correlation_id, tool, payload_json /* redacted */)
//! snapshots(conversation_id, conv_seq, state_json, PRIMARY KEY(conversation_id, conv_seq))
//! -- indexes: signals(correlation_id), events(conversation_id, at_ms), events(correlation_id)
//! ```
//!
//! `signals.seq` is the global rowid; `conv_seq` is [`ConversationEvent::seq`]; `body_json` is
//! the serialized [`Signal`], so reading gives back identical events (their `project_id` is the
//! journal's). The file is created `0600` in a directory created `0700`; pragmas
//! `journal_mode=WAL`, `synchronous=NORMAL|FULL`, `auto_vacuum=INCREMENTAL` (set before the first
//! table), `busy_timeout=5000`. Opening runs `quick_check`; a newer `schema_version` fails with
//! `schema_too_new`, an older one migrates forward in one transaction; a corrupt file is
//! quarantined to `<stem>.corrupt-<unix_ms>.<ext>` (with its `-wal`/`-shm`) and replaced by a
//! fresh journal, or refused with `journal_corrupt`.
//!
//! # Threading
//!
//! - **One writer connection on a dedicated OS thread**, fed by a bounded channel (1024
//!   commands); SQLite calls never run on tokio worker threads. Appends await the writer's answer;
//!   the queue bounds them.
//! - **Two read-only connections** used through `spawn_blocking`, one query each at a time. WAL
//!   lets them read while the writer writes; a read after an acknowledged append sees it.
//! - **An event pump** (a tokio task) batches telemetry events for the writer.
//! - The [`JournalActor`] owns the writer thread's lifecycle under the project supervisor;
//!   handles reach the writer through a slot it republishes, so they survive its restarts (a
//!   request finding no writer waits ≤ 1 s for the next, then fails `journal_unavailable`).
//!
//! # Group commit
//!
//! The writer blocks for one command, takes everything else already queued (≤ 256 signal rows;
//! a larger single append commits alone) and runs it in one transaction, each append in a
//! savepoint so a duplicate fails only its own append; then it answers every appender. An idle
//! writer commits at once — it never waits for company; the batch is whatever arrived while the
//! previous commit ran (SPEC §12.2's "rows arriving within 2 ms" is the largest window, not a
//! delay).
//!
//! # What a crash may lose
//!
//! - **Never an acknowledged signal**: an append is answered only after its commit (against a
//!   process crash with `synchronous=NORMAL`; against power loss too with `FULL`).
//! - An append in flight is either committed and answered, or fails `journal_unavailable`
//!   (after a writer panic: `writer_stopped`, outcome unknown; a retry reports
//!   `duplicate_signal{signal_id}` if it had committed). It never hangs.
//! - **The last telemetry batch**: events wait in the pump up to 100 ms or 512 events before they
//!   are written; a failed event write drops them, counts them (`events_dropped`) and reports
//!   [`JournalNotice::WriteFailed`] (the runtime emits `journal.write_failed` and marks health
//!   `failing` until [`JournalNotice::WriteRecovered`]).
//!
//! # Maintenance
//!
//! [`JournalHandle::compact`] (SPEC §12.3; the actor runs it at first start and every 6 h),
//! [`JournalHandle::backup`] (online backup API from the writer connection, 256 pages per step,
//! appends served between steps) and [`JournalHandle::check`] report through the observer too
//! ([`JournalNotice`]), so each `journal.*` telemetry event has one source.
//!
//! Files: `config.rs`, `error.rs`, `report.rs` (data types), `store.rs` + `store/` (plain
//! rusqlite: open/schema, writes, reads, maintenance), `writer.rs` (the thread, group commit),
//! `readers.rs` (pool), `core.rs` (slot, requests, event pump), `handle.rs`, `journal_actor/`
//! (msg, actor, tests), `tests.rs`.
//!
//! [`ConversationEvent::seq`]: crate::conversation::ConversationEvent::seq
//! [`Signal`]: crate::conversation::Signal

mod config;
mod core;
mod error;
mod handle;
mod journal_actor;
mod readers;
mod report;
mod store;
#[cfg(test)]
mod tests;
mod writer;

pub use config::{
    DEFAULT_COMPACT_EVERY, DEFAULT_MAX_BYTES, DEFAULT_RETENTION_DAYS, JournalConfig, JournalNotice,
    JournalObserver, JournalSync, OnCorruption,
};
pub use error::{DuplicateKey, JournalError, Result, UnavailableReason};
pub use handle::{JournalHandle, MAX_APPEND};
pub use journal_actor::{JournalActor, JournalActorState, JournalMsg, journal_child_spec};
pub use report::{
    BackupReport, CheckKind, CompactionReport, ConversationRow, EventQuery, IntegrityReport,
    JournalCounters, JournalStats, MAX_CHECK_MESSAGES, MAX_EVENT_QUERY, OpenReport, Quarantine,
};
pub use writer::WriterExit;
