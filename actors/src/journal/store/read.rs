//! Read statements, run on the read-only pool connections: conversations, signal replay,
//! journaled telemetry events, snapshots, stats and integrity checks. Rows decode back into the
//! exact values that were written; a row that does not decode is `journal_corrupt`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{meta, sidecar};
use crate::conversation::{ConversationEvent, Signal};
use crate::ids::{ConversationId, CorrelationId, ProjectId};
use crate::journal::error::{JournalError, Result};
use crate::journal::report::{
    CheckKind, ConversationRow, EventQuery, IntegrityReport, JournalCounters, JournalStats,
    MAX_EVENT_QUERY,
};
use crate::telemetry::{EventName, RecordedEvent};

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> JournalError + '_ {
    move |e| JournalError::sqlite(path, &e)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

type RawConversation = (
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<String>,
    String,
);

fn decode_conversation(path: &Path, raw: RawConversation) -> Result<ConversationRow> {
    let (id, parent, created_at_ms, stopped_at_ms, stop_reason, options) = raw;
    let conversation_id =
        ConversationId::parse(&id).map_err(|e| JournalError::decode(path, "conversation id", e))?;
    let parent_conversation_id = parent
        .map(|p| ConversationId::parse(&p))
        .transpose()
        .map_err(|e| JournalError::decode(path, "parent conversation id", e))?;
    let options_json: Value = serde_json::from_str(&options)
        .map_err(|e| JournalError::decode(path, "options_json", e))?;
    Ok(ConversationRow {
        conversation_id,
        parent_conversation_id,
        created_at_ms,
        stopped_at_ms,
        stop_reason,
        options_json,
    })
}

const CONVERSATION_COLUMNS: &str = "conversation_id, parent_conversation_id, created_at, \
                                    stopped_at, stop_reason, options_json";

fn raw_conversation(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawConversation> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// One conversation row.
pub(crate) fn conversation(
    conn: &Connection,
    path: &Path,
    id: &ConversationId,
) -> Result<Option<ConversationRow>> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE conversation_id = ?1"
        ))
        .and_then(|mut s| s.query_row([id.as_str()], raw_conversation).optional())
        .map_err(sql(path))?;
    raw.map(|raw| decode_conversation(path, raw)).transpose()
}

/// Conversations not stopped, sorted by id.
pub(crate) fn live_conversations(conn: &Connection, path: &Path) -> Result<Vec<ConversationRow>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE stopped_at IS NULL
             ORDER BY conversation_id"
        ))
        .map_err(sql(path))?;
    let rows = stmt
        .query_map([], raw_conversation)
        .map_err(sql(path))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql(path))?;
    rows.into_iter()
        .map(|raw| decode_conversation(path, raw))
        .collect()
}

/// Signals with `conv_seq > after_seq`, ascending, at most `limit`.
pub(crate) fn signals(
    conn: &Connection,
    path: &Path,
    project_id: &ProjectId,
    id: &ConversationId,
    after_seq: u64,
    limit: Option<usize>,
) -> Result<Vec<ConversationEvent>> {
    let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
    let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut stmt = conn
        .prepare_cached(
            "SELECT conv_seq, body_json FROM signals
             WHERE conversation_id = ?1 AND conv_seq > ?2
             ORDER BY conv_seq LIMIT ?3",
        )
        .map_err(sql(path))?;
    let mut rows = stmt
        .query(params![id.as_str(), after, limit])
        .map_err(sql(path))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql(path))? {
        let seq: i64 = row.get(0).map_err(sql(path))?;
        let body = row.get_ref(1).map_err(sql(path))?;
        let body = body
            .as_str()
            .map_err(|e| JournalError::decode(path, "signal body", e))?;
        let signal: Signal = serde_json::from_str(body)
            .map_err(|e| JournalError::decode(path, &format!("signal {id}#{seq}"), e))?;
        out.push(ConversationEvent {
            project_id: project_id.clone(),
            conversation_id: id.clone(),
            seq: to_u64(seq),
            signal,
        });
    }
    Ok(out)
}

/// The highest journaled `conv_seq` of a conversation (0 = none).
pub(crate) fn last_conv_seq(conn: &Connection, path: &Path, id: &ConversationId) -> Result<u64> {
    let max: Option<i64> = conn
        .prepare_cached("SELECT max(conv_seq) FROM signals WHERE conversation_id = ?1")
        .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)))
        .map_err(sql(path))?;
    Ok(max.map_or(0, to_u64))
}

/// The newest `q.limit` matching events, ascending by seq.
pub(crate) fn events(
    conn: &Connection,
    path: &Path,
    project_id: &ProjectId,
    q: &EventQuery,
) -> Result<Vec<RecordedEvent>> {
    let limit = q.limit.min(MAX_EVENT_QUERY);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let conv = q.conversation_id.as_ref().map(|c| c.as_str());
    let corr = q.correlation_id.as_ref().map(|c| c.as_str());
    let filter = match (conv, corr) {
        (None, None) => "",
        (Some(_), None) => "WHERE conversation_id = ?2",
        (None, Some(_)) => "WHERE correlation_id = ?2",
        (Some(_), Some(_)) => "WHERE conversation_id = ?2 AND correlation_id = ?3",
    };
    let sql_text = format!(
        "SELECT seq, event, at_ms, conversation_id, correlation_id, tool, payload_json
         FROM events {filter} ORDER BY seq DESC LIMIT ?1"
    );
    let mut stmt = conn.prepare_cached(&sql_text).map_err(sql(path))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = match (conv, corr) {
        (None, None) => stmt.query(params![limit]),
        (Some(x), None) | (None, Some(x)) => stmt.query(params![limit, x]),
        (Some(c), Some(k)) => stmt.query(params![limit, c, k]),
    }
    .map_err(sql(path))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql(path))? {
        out.push(decode_event(row, path, project_id)?);
    }
    out.reverse();
    Ok(out)
}

fn decode_event(
    row: &rusqlite::Row<'_>,
    path: &Path,
    project_id: &ProjectId,
) -> Result<RecordedEvent> {
    let seq: i64 = row.get(0).map_err(sql(path))?;
    let name: String = row.get(1).map_err(sql(path))?;
    let at_ms: i64 = row.get(2).map_err(sql(path))?;
    let conversation: Option<String> = row.get(3).map_err(sql(path))?;
    let correlation: Option<String> = row.get(4).map_err(sql(path))?;
    let tool: Option<String> = row.get(5).map_err(sql(path))?;
    let payload: String = row.get(6).map_err(sql(path))?;
    let what = |field: &str| format!("event #{seq} {field}");
    Ok(RecordedEvent {
        seq: to_u64(seq),
        event: name
            .parse::<EventName>()
            .map_err(|e| JournalError::decode(path, &what("name"), e))?,
        at_ms,
        project_id: project_id.clone(),
        conversation_id: conversation
            .map(|c| ConversationId::parse(&c))
            .transpose()
            .map_err(|e| JournalError::decode(path, &what("conversation_id"), e))?,
        correlation_id: correlation
            .map(|c| CorrelationId::parse(&c))
            .transpose()
            .map_err(|e| JournalError::decode(path, &what("correlation_id"), e))?,
        tool,
        payload: serde_json::from_str(&payload)
            .map_err(|e| JournalError::decode(path, &what("payload"), e))?,
    })
}

/// The highest telemetry seq ever journaled (0 = none), compaction notwithstanding.
pub(crate) fn max_event_seq(conn: &Connection, path: &Path) -> Result<u64> {
    let max: Option<i64> = conn
        .query_row("SELECT max(seq) FROM events", [], |r| r.get(0))
        .map_err(sql(path))?;
    let hwm = meta_i64(conn, path, meta::EVENT_SEQ_HWM)?;
    Ok(to_u64(max.unwrap_or(0).max(hwm.unwrap_or(0))))
}

/// The newest snapshot of a conversation.
pub(crate) fn latest_snapshot(
    conn: &Connection,
    path: &Path,
    id: &ConversationId,
) -> Result<Option<(u64, Value)>> {
    let raw: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT conv_seq, state_json FROM snapshots WHERE conversation_id = ?1
             ORDER BY conv_seq DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql(path))?;
    raw.map(|(seq, json)| {
        serde_json::from_str(&json)
            .map(|v| (to_u64(seq), v))
            .map_err(|e| JournalError::decode(path, "snapshot", e))
    })
    .transpose()
}

fn meta_i64(conn: &Connection, path: &Path, key: &str) -> Result<Option<i64>> {
    let v: Option<rusqlite::types::Value> = super::get_meta(conn, key).map_err(sql(path))?;
    Ok(match v {
        Some(rusqlite::types::Value::Integer(i)) => Some(i),
        Some(rusqlite::types::Value::Text(t)) => t.trim().parse().ok(),
        _ => None,
    })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The `journal` diagnostics block (counters are filled in by the caller).
pub(crate) fn stats(conn: &Connection, path: &Path) -> Result<JournalStats> {
    let count = |table: &str| -> Result<u64> {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(sql(path))?;
        Ok(to_u64(n))
    };
    let oldest = |table: &str| -> Result<Option<i64>> {
        conn.query_row(
            &format!("SELECT at_ms FROM {table} ORDER BY seq LIMIT 1"),
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql(path))
    };
    let oldest_at_ms = match (oldest("signals")?, oldest("events")?) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let last_check: Option<String> = super::get_meta(conn, meta::LAST_CHECK).map_err(sql(path))?;
    Ok(JournalStats {
        path: path.to_path_buf(),
        size_bytes: file_len(path),
        wal_bytes: file_len(&sidecar(path, "-wal")),
        signal_count: count("signals")?,
        event_count: count("events")?,
        oldest_at_ms,
        last_backup_at_ms: meta_i64(conn, path, meta::LAST_BACKUP_AT)?,
        last_check: last_check.and_then(|j| serde_json::from_str(&j).ok()),
        last_compaction_at_ms: meta_i64(conn, path, meta::LAST_COMPACTION_AT)?,
        counters: JournalCounters::default(),
    })
}

/// `quick_check` or `integrity_check`; SQLite reporting corruption as an error (rather than as
/// findings) becomes a failed report too.
pub(crate) fn check(
    conn: &Connection,
    path: &Path,
    kind: CheckKind,
    at_ms: i64,
) -> Result<IntegrityReport> {
    match super::run_check(conn, kind, at_ms) {
        Ok(report) => Ok(report),
        Err(e) => match JournalError::sqlite(path, &e) {
            JournalError::Corrupt { reason, .. } => Ok(IntegrityReport {
                ok: false,
                check: kind,
                messages: vec![reason],
                at_ms,
            }),
            other => Err(other),
        },
    }
}
