//! Write statements, run by the writer thread inside its group transaction: signal and event
//! rows (built on the caller's side, so serialization costs the caller, not the writer),
//! conversation upserts, stops, snapshots and `meta` values.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, params};
use serde_json::Value;

use super::meta;
use crate::conversation::ConversationEvent;
use crate::journal::error::{DuplicateKey, JournalError, Result};
use crate::journal::report::ConversationRow;
use crate::telemetry::RecordedEvent;

/// One `signals` row.
#[derive(Debug, Clone)]
pub(crate) struct SignalRow {
    pub(crate) conversation_id: String,
    pub(crate) conv_seq: i64,
    pub(crate) signal_id: String,
    pub(crate) kind: &'static str,
    pub(crate) correlation_id: String,
    pub(crate) causation_id: Option<String>,
    pub(crate) at_ms: i64,
    pub(crate) body_json: String,
}

impl SignalRow {
    /// The row of an applied signal; `body_json` is the serialized [`Signal`].
    ///
    /// [`Signal`]: crate::conversation::Signal
    pub(crate) fn from_event(entry: &ConversationEvent) -> Result<Self> {
        let conv_seq = i64::try_from(entry.seq)
            .ok()
            .filter(|s| *s >= 1)
            .ok_or_else(|| JournalError::invalid(format!("conv_seq {} out of range", entry.seq)))?;
        let body_json = serde_json::to_string(&entry.signal)
            .map_err(|e| JournalError::invalid(format!("signal does not serialize: {e}")))?;
        let sig = &entry.signal;
        Ok(Self {
            conversation_id: entry.conversation_id.to_string(),
            conv_seq,
            signal_id: sig.id.to_string(),
            kind: sig.kind.as_str(),
            correlation_id: sig.correlation_id.to_string(),
            causation_id: sig.causation_id.as_ref().map(ToString::to_string),
            at_ms: sig.at_ms,
            body_json,
        })
    }
}

/// One `events` row.
#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub(crate) seq: i64,
    pub(crate) event: &'static str,
    pub(crate) at_ms: i64,
    pub(crate) conversation_id: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) tool: Option<String>,
    pub(crate) payload_json: String,
}

impl EventRow {
    /// The row of a recorded (already redacted) event; `None` when its seq does not fit.
    pub(crate) fn from_event(ev: &RecordedEvent) -> Option<Self> {
        Some(Self {
            seq: i64::try_from(ev.seq).ok()?,
            event: ev.event.as_str(),
            at_ms: ev.at_ms,
            conversation_id: ev.conversation_id.as_ref().map(ToString::to_string),
            correlation_id: ev.correlation_id.as_ref().map(ToString::to_string),
            tool: ev.tool.clone(),
            payload_json: ev.payload.to_string(),
        })
    }
}

/// Inserts one append's rows (the caller wraps them in a savepoint: all or none).
pub(crate) fn insert_signals(conn: &Connection, path: &Path, rows: &[SignalRow]) -> Result<()> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO signals(conversation_id, conv_seq, signal_id, type, correlation_id,
                                 causation_id, at_ms, body_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(|e| JournalError::sqlite(path, &e))?;
    for row in rows {
        let res = stmt.execute(params![
            row.conversation_id,
            row.conv_seq,
            row.signal_id,
            row.kind,
            row.correlation_id,
            row.causation_id,
            row.at_ms,
            row.body_json,
        ]);
        if let Err(e) = res {
            if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
                let key = if e.to_string().contains("signal_id") {
                    DuplicateKey::SignalId
                } else {
                    DuplicateKey::ConvSeq
                };
                return Err(JournalError::DuplicateSignal {
                    conversation_id: row.conversation_id.clone(),
                    signal_id: row.signal_id.clone(),
                    conv_seq: row.conv_seq.unsigned_abs(),
                    key,
                });
            }
            return Err(JournalError::sqlite(path, &e));
        }
    }
    Ok(())
}

/// Inserts a batch of events, first write wins per seq; returns `(written, duplicates)` and
/// raises the seq high-water mark.
pub(crate) fn insert_events(
    conn: &Connection,
    path: &Path,
    rows: &[EventRow],
) -> Result<(u64, u64)> {
    let sql = |e: rusqlite::Error| JournalError::sqlite(path, &e);
    let mut stmt = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO events(seq, event, at_ms, conversation_id, correlation_id,
                                          tool, payload_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(sql)?;
    let (mut written, mut duplicates, mut max_seq) = (0u64, 0u64, 0i64);
    for row in rows {
        let n = stmt
            .execute(params![
                row.seq,
                row.event,
                row.at_ms,
                row.conversation_id,
                row.correlation_id,
                row.tool,
                row.payload_json,
            ])
            .map_err(sql)?;
        if n == 0 {
            duplicates += 1;
        } else {
            written += 1;
        }
        max_seq = max_seq.max(row.seq);
    }
    conn.prepare_cached(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = max(CAST(value AS INTEGER), excluded.value)",
    )
    .and_then(|mut s| s.execute(params![meta::EVENT_SEQ_HWM, max_seq]))
    .map_err(sql)?;
    Ok((written, duplicates))
}

/// Registers a conversation, or re-registers it: parent and options are replaced, the stop is
/// cleared, `created_at` stays the first registration's.
pub(crate) fn upsert_conversation(
    conn: &Connection,
    path: &Path,
    row: &ConversationRow,
) -> Result<()> {
    let options = row.options_json.to_string();
    conn.prepare_cached(
        "INSERT INTO conversations(conversation_id, parent_conversation_id, created_at,
                                   stopped_at, stop_reason, options_json)
         VALUES (?1, ?2, ?3, NULL, NULL, ?4)
         ON CONFLICT(conversation_id) DO UPDATE SET
             parent_conversation_id = excluded.parent_conversation_id,
             options_json = excluded.options_json,
             stopped_at = NULL,
             stop_reason = NULL",
    )
    .and_then(|mut s| {
        s.execute(params![
            row.conversation_id.as_str(),
            row.parent_conversation_id.as_ref().map(|p| p.as_str()),
            row.created_at_ms,
            options,
        ])
    })
    .map_err(|e| JournalError::sqlite(path, &e))?;
    Ok(())
}

/// Marks a conversation stopped.
pub(crate) fn mark_stopped(
    conn: &Connection,
    path: &Path,
    conversation_id: &str,
    reason: &str,
    at_ms: i64,
) -> Result<()> {
    let n = conn
        .prepare_cached(
            "UPDATE conversations SET stopped_at = ?2, stop_reason = ?3
             WHERE conversation_id = ?1",
        )
        .and_then(|mut s| s.execute(params![conversation_id, at_ms, reason]))
        .map_err(|e| JournalError::sqlite(path, &e))?;
    if n == 0 {
        return Err(JournalError::ConversationNotFound {
            conversation_id: conversation_id.to_owned(),
        });
    }
    Ok(())
}

/// Snapshots kept per conversation (older ones are deleted when a newer one is written).
pub(crate) const SNAPSHOTS_KEPT: i64 = 2;

/// Writes a state snapshot taken at `conv_seq` and prunes older ones.
pub(crate) fn put_snapshot(
    conn: &Connection,
    path: &Path,
    conversation_id: &str,
    conv_seq: i64,
    state: &Value,
) -> Result<()> {
    let sql = |e: rusqlite::Error| JournalError::sqlite(path, &e);
    conn.prepare_cached(
        "INSERT INTO snapshots(conversation_id, conv_seq, state_json) VALUES (?1, ?2, ?3)
         ON CONFLICT(conversation_id, conv_seq) DO UPDATE SET state_json = excluded.state_json",
    )
    .and_then(|mut s| s.execute(params![conversation_id, conv_seq, state.to_string()]))
    .map_err(sql)?;
    conn.prepare_cached(
        "DELETE FROM snapshots WHERE conversation_id = ?1 AND conv_seq NOT IN (
             SELECT conv_seq FROM snapshots WHERE conversation_id = ?1
             ORDER BY conv_seq DESC LIMIT ?2)",
    )
    .and_then(|mut s| s.execute(params![conversation_id, SNAPSHOTS_KEPT]))
    .map_err(sql)?;
    Ok(())
}

/// Sets a `meta` value.
pub(crate) fn set_meta(
    conn: &Connection,
    path: &Path,
    key: &str,
    value: &rusqlite::types::Value,
) -> Result<()> {
    super::put_meta(conn, key, value).map_err(|e| JournalError::sqlite(path, &e))
}
