//! The SQLite store, plain rusqlite and blocking: opening (file modes, pragmas, schema v1,
//! migrations, `quick_check`, quarantine of corrupt files) and the connections the writer thread
//! and the reader pool use. `write.rs`, `read.rs` and `maintain.rs` hold the statements; nothing
//! here knows about threads or tokio.

mod maintain;
mod read;
mod write;

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use super::config::JournalConfig;
use super::error::{JournalError, Result};
use super::report::{CheckKind, IntegrityReport, MAX_CHECK_MESSAGES, OpenReport, Quarantine};

pub(crate) use maintain::{CompactParams, backup, checkpoint_truncate, compact};
pub(crate) use read::{
    check, conversation, events, last_conv_seq, latest_snapshot, live_conversations, max_event_seq,
    signals, stats,
};
pub(crate) use write::{
    EventRow, SignalRow, insert_events, insert_signals, mark_stopped, put_snapshot, set_meta,
    upsert_conversation,
};

/// The schema version this binary writes.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// `busy_timeout` of every connection.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// Schema v1, exactly SPEC §12.1 (column types and `NOT NULL` added).
const SCHEMA_V1: &str = "
CREATE TABLE meta(key TEXT PRIMARY KEY, value);
CREATE TABLE conversations(
    conversation_id TEXT PRIMARY KEY,
    parent_conversation_id TEXT,
    created_at INTEGER NOT NULL,
    stopped_at INTEGER,
    stop_reason TEXT,
    options_json TEXT NOT NULL
);
CREATE TABLE signals(
    seq INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    conv_seq INTEGER NOT NULL,
    signal_id TEXT NOT NULL,
    type TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    causation_id TEXT,
    at_ms INTEGER NOT NULL,
    body_json TEXT NOT NULL,
    UNIQUE(conversation_id, conv_seq),
    UNIQUE(conversation_id, signal_id)
);
CREATE TABLE events(
    seq INTEGER PRIMARY KEY,
    event TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    conversation_id TEXT,
    correlation_id TEXT,
    tool TEXT,
    payload_json TEXT NOT NULL
);
CREATE TABLE snapshots(
    conversation_id TEXT NOT NULL,
    conv_seq INTEGER NOT NULL,
    state_json TEXT NOT NULL,
    PRIMARY KEY(conversation_id, conv_seq)
);
CREATE INDEX signals_correlation ON signals(correlation_id);
CREATE INDEX events_conversation_at ON events(conversation_id, at_ms);
CREATE INDEX events_correlation ON events(correlation_id);
";

/// Forward migrations: `(from, sql)` moves a journal from version `from` to `from + 1`. All steps
/// from the file's version to [`SCHEMA_VERSION`] run in the one open transaction. Empty while v1
/// is the only version.
const MIGRATIONS: &[(i64, &str)] = &[];

/// `meta` keys.
pub(crate) mod meta {
    /// Schema version (integer).
    pub(crate) const SCHEMA_VERSION: &str = "schema_version";
    /// Owning project (text).
    pub(crate) const PROJECT_ID: &str = "project_id";
    /// Creation time, ms (integer).
    pub(crate) const CREATED_AT: &str = "created_at";
    /// Last completed backup, ms.
    pub(crate) const LAST_BACKUP_AT: &str = "last_backup_at_ms";
    /// Last completed compaction, ms.
    pub(crate) const LAST_COMPACTION_AT: &str = "last_compaction_at_ms";
    /// Last integrity report (JSON text).
    pub(crate) const LAST_CHECK: &str = "last_check";
    /// Highest telemetry seq ever journaled (survives compaction of the events).
    pub(crate) const EVENT_SEQ_HWM: &str = "event_seq_hwm";
}

/// A freshly opened journal: the read-write connection (handed to the writer thread) and what
/// opening found.
pub(crate) struct Opened {
    pub(crate) conn: Connection,
    pub(crate) report: OpenReport,
}

/// Why one open attempt failed.
enum Failure {
    /// The file is not a usable journal: quarantine or fail, per configuration.
    Corrupt(String),
    /// Anything else: reported as is.
    Other(JournalError),
}

impl From<JournalError> for Failure {
    fn from(e: JournalError) -> Self {
        Failure::Other(e)
    }
}

/// Opens (creating if needed) the journal of `config`: directory `0700`, file `0600`, pragmas,
/// `quick_check`, schema. A corrupt file is quarantined or refused per `on_corruption`.
pub(crate) fn open(config: &JournalConfig) -> Result<Opened> {
    let path = &config.path;
    prepare_dir(path)?;
    let now = config.now_ms();
    match open_once(config, now) {
        Ok(opened) => Ok(opened),
        Err(Failure::Other(e)) => Err(e),
        Err(Failure::Corrupt(reason)) => match config.on_corruption {
            super::OnCorruption::Fail => Err(JournalError::Corrupt {
                path: path.clone(),
                reason,
            }),
            super::OnCorruption::Quarantine => {
                let moved_to = quarantine(path, now)?;
                tracing::warn!(
                    target: "codeward::journal",
                    path = %path.display(),
                    moved_to = %moved_to.display(),
                    %reason,
                    "corrupt journal quarantined"
                );
                let mut opened = open_once(config, now).map_err(|f| match f {
                    Failure::Other(e) => e,
                    Failure::Corrupt(reason) => JournalError::Corrupt {
                        path: path.clone(),
                        reason,
                    },
                })?;
                opened.report.quarantined = Some(Quarantine { moved_to, reason });
                Ok(opened)
            }
        },
    }
}

fn open_once(config: &JournalConfig, now: i64) -> std::result::Result<Opened, Failure> {
    let path = &config.path;
    ensure_file(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| JournalError::sqlite(path, &e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| JournalError::sqlite(path, &e))?;
    let quick_check = match run_check(&conn, CheckKind::Quick, now) {
        Ok(report) if report.ok => report,
        Ok(report) => return Err(Failure::Corrupt(report.messages.join("; "))),
        Err(e) if is_corruption(&e) => return Err(Failure::Corrupt(e.to_string())),
        Err(e) => return Err(JournalError::sqlite(path, &e).into()),
    };
    let sql = |e: rusqlite::Error| -> Failure {
        if is_corruption(&e) {
            Failure::Corrupt(e.to_string())
        } else {
            Failure::Other(JournalError::sqlite(path, &e))
        }
    };
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    let fresh = tables == 0;
    // Everything that can refuse the file is decided before anything is written to it.
    let mut version = SCHEMA_VERSION;
    let mut project_missing = fresh;
    if !fresh {
        let Some(found) = schema_version(&conn).map_err(sql)? else {
            return Err(Failure::Corrupt(
                "not a codeward journal (no meta.schema_version)".into(),
            ));
        };
        if found > SCHEMA_VERSION {
            return Err(JournalError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            }
            .into());
        }
        if found < SCHEMA_VERSION && !has_migration_path(found) {
            return Err(JournalError::SchemaUnsupported {
                found,
                supported: SCHEMA_VERSION,
            }
            .into());
        }
        version = found;
        match get_meta::<String>(&conn, meta::PROJECT_ID).map_err(sql)? {
            Some(p) if p == config.project_id.as_str() => {}
            Some(found) => {
                return Err(JournalError::ProjectMismatch {
                    expected: config.project_id.to_string(),
                    found,
                }
                .into());
            }
            None => project_missing = true,
        }
    }
    if fresh {
        // A file created just now holds nothing to lose: the schema is written straight into
        // it (rollback journal in memory, no fsyncs), and only then is it switched to WAL with
        // the configured `synchronous` — so the schema pages are written once, not once to the
        // WAL and again by the first checkpoint. A crash mid-creation leaves a file that fails
        // its quick_check and is quarantined at the next start.
        conn.pragma_update(None, "synchronous", "OFF")
            .map_err(sql)?;
        // INVARIANT: auto_vacuum only takes effect before the first table is created.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "MEMORY")
            .map_err(sql)?;
    } else {
        set_connection_pragmas(&conn, config.sync.pragma()).map_err(sql)?;
    }

    let mut conn = conn;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let mut migrated_from = None;
    if fresh {
        tx.execute_batch(SCHEMA_V1).map_err(sql)?;
        put_meta(&tx, meta::SCHEMA_VERSION, &SCHEMA_VERSION).map_err(sql)?;
        put_meta(&tx, meta::CREATED_AT, &now).map_err(sql)?;
    } else if version < SCHEMA_VERSION {
        migrate(&tx, version).map_err(|e| match e {
            MigrateError::Sql(e) => sql(e),
            MigrateError::NoPath => Failure::Other(JournalError::SchemaUnsupported {
                found: version,
                supported: SCHEMA_VERSION,
            }),
        })?;
        migrated_from = Some(version);
    }
    if project_missing {
        put_meta(&tx, meta::PROJECT_ID, &config.project_id.as_str()).map_err(sql)?;
    }
    let check_json = serde_json::to_string(&quick_check).unwrap_or_default();
    put_meta(&tx, meta::LAST_CHECK, &check_json).map_err(sql)?;
    tx.commit().map_err(sql)?;
    if fresh {
        set_connection_pragmas(&conn, config.sync.pragma()).map_err(sql)?;
        // INVARIANT: a connection switched to WAL reports `SQLITE_LOCKED` on its first
        // `wal_checkpoint` until it has read through the WAL once (measured on the bundled
        // SQLite); one read here keeps the writer's checkpoints and close clean.
        conn.query_row("SELECT count(*) FROM meta", [], |r| r.get::<_, i64>(0))
            .map_err(sql)?;
    }
    Ok(Opened {
        conn,
        report: OpenReport {
            path: path.clone(),
            created: fresh,
            schema_version: SCHEMA_VERSION,
            migrated_from,
            quick_check,
            quarantined: None,
        },
    })
}

/// Opens another read-write connection to an existing journal (a restarted writer): never
/// creates a file, checks the schema version.
pub(crate) fn open_writer(path: &Path, sync: super::JournalSync) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| JournalError::sqlite(path, &e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| JournalError::sqlite(path, &e))?;
    set_connection_pragmas(&conn, sync.pragma()).map_err(|e| JournalError::sqlite(path, &e))?;
    match schema_version(&conn).map_err(|e| JournalError::sqlite(path, &e))? {
        Some(SCHEMA_VERSION) => Ok(conn),
        Some(found) if found > SCHEMA_VERSION => Err(JournalError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        }),
        _ => Err(JournalError::Corrupt {
            path: path.to_path_buf(),
            reason: "schema version changed under a running journal".into(),
        }),
    }
}

/// Opens a read-only connection (the reader pool).
pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| JournalError::sqlite(path, &e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| JournalError::sqlite(path, &e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Prepared statements kept per connection (the writer uses a few dozen distinct ones).
const STATEMENT_CACHE: usize = 64;

fn set_connection_pragmas(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("journal_mode=WAL refused (got `{mode}`)")),
        ));
    }
    conn.pragma_update(None, "synchronous", synchronous)
}

/// Runs `quick_check` / `integrity_check` and keeps at most [`MAX_CHECK_MESSAGES`] findings.
pub(crate) fn run_check(
    conn: &Connection,
    kind: CheckKind,
    at_ms: i64,
) -> rusqlite::Result<IntegrityReport> {
    let sql = match kind {
        CheckKind::Quick => "PRAGMA quick_check(20)",
        CheckKind::Full => "PRAGMA integrity_check(20)",
    };
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut messages = Vec::new();
    for row in rows {
        let msg = row?;
        if messages.len() < MAX_CHECK_MESSAGES {
            messages.push(msg);
        }
    }
    let ok = messages.len() == 1 && messages.first().is_some_and(|m| m == "ok");
    if ok {
        messages.clear();
    }
    Ok(IntegrityReport {
        ok,
        check: kind,
        messages,
        at_ms,
    })
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

pub(crate) fn schema_version(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let has_meta: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get(0),
    )?;
    if has_meta == 0 {
        return Ok(None);
    }
    let v: Option<rusqlite::types::Value> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [meta::SCHEMA_VERSION],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match v {
        Some(rusqlite::types::Value::Integer(i)) => Some(i),
        Some(rusqlite::types::Value::Text(t)) => t.trim().parse().ok(),
        _ => None,
    })
}

fn has_migration_path(from: i64) -> bool {
    (from..SCHEMA_VERSION).all(|v| MIGRATIONS.iter().any(|(m, _)| *m == v))
}

enum MigrateError {
    Sql(rusqlite::Error),
    NoPath,
}

fn migrate(tx: &Connection, from: i64) -> std::result::Result<(), MigrateError> {
    for version in from..SCHEMA_VERSION {
        let Some((_, sql)) = MIGRATIONS.iter().find(|(v, _)| *v == version) else {
            return Err(MigrateError::NoPath);
        };
        tx.execute_batch(sql).map_err(MigrateError::Sql)?;
    }
    put_meta(tx, meta::SCHEMA_VERSION, &SCHEMA_VERSION).map_err(MigrateError::Sql)
}

pub(crate) fn put_meta(
    conn: &Connection,
    key: &str,
    value: &dyn rusqlite::ToSql,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![key, value])?;
    Ok(())
}

pub(crate) fn get_meta<T: rusqlite::types::FromSql>(
    conn: &Connection,
    key: &str,
) -> rusqlite::Result<Option<T>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

fn prepare_dir(path: &Path) -> Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| JournalError::io("create directory", parent, &e))
}

/// Creates the file `0600` when missing; tightens an existing file (and its `-wal` / `-shm`) to
/// `0600`. SQLite creates `-wal` / `-shm` with the mode of the database file.
fn ensure_file(path: &Path) -> Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            for p in [
                path.to_path_buf(),
                sidecar(path, "-wal"),
                sidecar(path, "-shm"),
            ] {
                if p.exists() {
                    fs::set_permissions(&p, fs::Permissions::from_mode(0o600))
                        .map_err(|e| JournalError::io("set mode 0600", &p, &e))?;
                }
            }
            Ok(())
        }
        Err(e) => Err(JournalError::io("create", path, &e)),
    }
}

/// `<path>-wal`, `<path>-shm`.
pub(crate) fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Moves a corrupt journal and its sidecars to `<stem>.corrupt-<unix_ms>.<ext>`.
fn quarantine(path: &Path, now_ms: i64) -> Result<PathBuf> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "journal".into());
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned());
    let name = |n: u32| {
        let tag = if n == 0 {
            format!("corrupt-{now_ms}")
        } else {
            format!("corrupt-{now_ms}-{n}")
        };
        match &ext {
            Some(ext) => format!("{stem}.{tag}.{ext}"),
            None => format!("{stem}.{tag}"),
        }
    };
    let target = (0..1000)
        .map(|n| path.with_file_name(name(n)))
        .find(|candidate| !candidate.exists())
        .ok_or_else(|| JournalError::Io {
            op: "quarantine".into(),
            path: path.to_path_buf(),
            message: "no free quarantine name".into(),
        })?;
    fs::rename(path, &target).map_err(|e| JournalError::io("quarantine", path, &e))?;
    for suffix in ["-wal", "-shm"] {
        let from = sidecar(path, suffix);
        if from.exists() {
            let to = sidecar(&target, suffix);
            fs::rename(&from, &to).map_err(|e| JournalError::io("quarantine", &from, &e))?;
        }
    }
    Ok(target)
}
