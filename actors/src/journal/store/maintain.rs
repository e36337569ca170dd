//! Maintenance on the writer connection: compaction (SPEC §12.3 retention and size rules in
//! 10 000-row batches, then checkpoint and incremental vacuum) and the online backup (256-page
//! steps). Both call `between` after every batch or step: the writer serves the appends queued
//! meanwhile there, so writes continue while maintenance runs.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{meta, put_meta, sidecar};
use crate::journal::error::{JournalError, Result, UnavailableReason};
use crate::journal::report::CompactionReport;

/// Rows deleted per compaction transaction.
pub(crate) const COMPACT_BATCH: i64 = 10_000;
/// Pages copied per backup step.
pub(crate) const BACKUP_PAGES_PER_STEP: i32 = 256;
/// Pause between backup steps.
pub(crate) const BACKUP_PAUSE: Duration = Duration::from_millis(1);
/// Consecutive busy/locked backup steps tolerated before giving up.
const BACKUP_MAX_BUSY_STEPS: u32 = 5_000;

const DAY_MS: i64 = 86_400_000;

/// Inputs of one compaction run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CompactParams {
    pub(crate) now_ms: i64,
    pub(crate) retention_days: u32,
    pub(crate) max_bytes: u64,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> JournalError + '_ {
    move |e| JournalError::sqlite(path, &e)
}

fn in_tx<T>(conn: &Connection, path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sql(path))?;
    match f() {
        Ok(v) => match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(v),
            Err(e) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                Err(JournalError::sqlite(path, &e))
            }
        },
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    }
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// Database plus WAL size on disk.
pub(crate) fn disk_bytes(path: &Path) -> u64 {
    file_len(path) + file_len(&sidecar(path, "-wal"))
}

/// Bytes of pages in use (free pages excluded), as this connection sees the database.
fn used_bytes(conn: &Connection, path: &Path) -> Result<u64> {
    let q = |p: &str| -> Result<i64> {
        conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
            .map_err(sql(path))
    };
    let used = (q("page_count")? - q("freelist_count")?).max(0) * q("page_size")?;
    Ok(u64::try_from(used).unwrap_or(0))
}

/// `wal_checkpoint(TRUNCATE)`; returns whether a reader kept it from completing.
pub(crate) fn checkpoint_truncate(conn: &Connection, path: &Path) -> Result<bool> {
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .map_err(sql(path))?;
    Ok(busy != 0)
}

/// Runs the retention and size rules, then checkpoints and vacuums.
pub(crate) fn compact(
    conn: &Connection,
    path: &Path,
    p: CompactParams,
    between: &mut dyn FnMut(),
) -> Result<CompactionReport> {
    let mut report = CompactionReport {
        bytes_before: disk_bytes(path),
        ..CompactionReport::default()
    };
    if p.retention_days > 0 {
        let cutoff = p
            .now_ms
            .saturating_sub(i64::from(p.retention_days).saturating_mul(DAY_MS));
        loop {
            let n = in_tx(conn, path, || {
                conn.prepare_cached(
                    "DELETE FROM events WHERE seq IN (
                         SELECT seq FROM events WHERE at_ms < ?1 ORDER BY seq LIMIT ?2)",
                )
                .and_then(|mut s| s.execute(params![cutoff, COMPACT_BATCH]))
                .map_err(sql(path))
            })?;
            report.deleted_events += n as u64;
            between();
            if (n as i64) < COMPACT_BATCH {
                break;
            }
        }
        // Keyset over conversation ids, so every candidate is visited once.
        let mut after = String::new();
        loop {
            let ids: Vec<String> = conn
                .prepare_cached(
                    "SELECT conversation_id FROM conversations
                     WHERE stopped_at IS NOT NULL AND stopped_at < ?1 AND conversation_id > ?2
                     ORDER BY conversation_id LIMIT 100",
                )
                .and_then(|mut s| {
                    s.query_map(params![cutoff, after], |r| r.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()
                })
                .map_err(sql(path))?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            for id in &ids {
                delete_conversation(conn, path, id, Some(cutoff), &mut report, between)?;
            }
            after = last;
        }
    }
    if p.max_bytes > 0 {
        while used_bytes(conn, path)? > p.max_bytes {
            let n = in_tx(conn, path, || {
                conn.prepare_cached(
                    "DELETE FROM events WHERE seq IN (
                         SELECT seq FROM events ORDER BY seq LIMIT ?1)",
                )
                .and_then(|mut s| s.execute(params![COMPACT_BATCH]))
                .map_err(sql(path))
            })?;
            report.deleted_events += n as u64;
            between();
            if n == 0 {
                break;
            }
        }
        let mut tried = HashSet::new();
        while used_bytes(conn, path)? > p.max_bytes {
            let oldest: Option<String> = conn
                .query_row(
                    "SELECT conversation_id FROM conversations WHERE stopped_at IS NOT NULL
                     ORDER BY stopped_at, conversation_id LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql(path))?;
            let Some(id) = oldest else { break };
            if !tried.insert(id.clone()) {
                break;
            }
            delete_conversation(conn, path, &id, None, &mut report, between)?;
        }
        let used = used_bytes(conn, path)?;
        if used > p.max_bytes {
            report.warnings.push(format!(
                "over_max_bytes: {used} bytes in use after compaction exceed journal_max_bytes {}; \
                 live conversations are never trimmed",
                p.max_bytes
            ));
        }
    }
    put_meta(conn, meta::LAST_COMPACTION_AT, &p.now_ms).map_err(sql(path))?;
    checkpoint_truncate(conn, path)?;
    conn.execute_batch("PRAGMA incremental_vacuum")
        .map_err(sql(path))?;
    if checkpoint_truncate(conn, path)? {
        report
            .warnings
            .push("checkpoint_busy: readers kept the WAL from being truncated".into());
    }
    report.bytes_after = disk_bytes(path);
    Ok(report)
}

/// Deletes one stopped conversation with its signals (in batches) and snapshots, as long as it
/// is still stopped (and, with a cutoff, stopped before it) — appends served between batches may
/// have re-registered it.
fn delete_conversation(
    conn: &Connection,
    path: &Path,
    id: &str,
    cutoff: Option<i64>,
    report: &mut CompactionReport,
    between: &mut dyn FnMut(),
) -> Result<()> {
    let cutoff = cutoff.unwrap_or(i64::MAX);
    loop {
        let deleted = in_tx(conn, path, || {
            let still_stopped: bool = conn
                .prepare_cached(
                    "SELECT count(*) FROM conversations WHERE conversation_id = ?1
                     AND stopped_at IS NOT NULL AND stopped_at < ?2",
                )
                .and_then(|mut s| s.query_row(params![id, cutoff], |r| r.get::<_, i64>(0)))
                .map_err(sql(path))?
                > 0;
            if !still_stopped {
                return Ok(None);
            }
            let n = conn
                .prepare_cached(
                    "DELETE FROM signals WHERE seq IN (
                         SELECT seq FROM signals WHERE conversation_id = ?1 LIMIT ?2)",
                )
                .and_then(|mut s| s.execute(params![id, COMPACT_BATCH]))
                .map_err(sql(path))?;
            let last = (n as i64) < COMPACT_BATCH;
            if last {
                conn.prepare_cached("DELETE FROM snapshots WHERE conversation_id = ?1")
                    .and_then(|mut s| s.execute([id]))
                    .map_err(sql(path))?;
                conn.prepare_cached("DELETE FROM conversations WHERE conversation_id = ?1")
                    .and_then(|mut s| s.execute([id]))
                    .map_err(sql(path))?;
            }
            Ok(Some((n as u64, last)))
        })?;
        between();
        match deleted {
            None => return Ok(()),
            Some((n, last)) => {
                report.deleted_signals += n;
                if last {
                    report.deleted_conversations += 1;
                    return Ok(());
                }
            }
        }
    }
}

/// The temporary file a backup is written to before it is renamed onto `dest`.
fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "journal-backup".into());
    dest.with_file_name(format!(".{name}.partial"))
}

fn same_file(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| -> Option<PathBuf> {
        let parent = p.parent().filter(|x| !x.as_os_str().is_empty())?;
        Some(fs::canonicalize(parent).ok()?.join(p.file_name()?))
    };
    match (canon(a), canon(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Copies the live database to `dest` (mode 0600) with the online backup API. The source is the
/// writer connection itself, so writes served in `between` go into the copy too instead of
/// restarting it. Writes to a temporary file next to `dest` and renames it on success.
pub(crate) fn backup(
    conn: &Connection,
    path: &Path,
    dest: &Path,
    between: &mut dyn FnMut(),
) -> Result<u64> {
    if same_file(path, dest)
        || [sidecar(path, "-wal"), sidecar(path, "-shm")]
            .iter()
            .any(|s| same_file(s, dest))
    {
        return Err(JournalError::invalid(format!(
            "backup destination `{}` is the journal itself",
            dest.display()
        )));
    }
    let tmp = partial_path(dest);
    let result = backup_to(conn, path, &tmp, between).and_then(|()| {
        fs::rename(&tmp, dest).map_err(|e| JournalError::io("rename backup", &tmp, &e))?;
        fs::set_permissions(dest, fs::Permissions::from_mode(0o600))
            .map_err(|e| JournalError::io("set mode 0600", dest, &e))?;
        Ok(file_len(dest))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn backup_to(conn: &Connection, path: &Path, tmp: &Path, between: &mut dyn FnMut()) -> Result<()> {
    match fs::remove_file(tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(JournalError::io("remove stale backup", tmp, &e)),
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| JournalError::io("create backup", tmp, &e))?;
    let mut dst = Connection::open_with_flags(
        tmp,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| JournalError::sqlite(tmp, &e))?;
    {
        let backup = Backup::new(conn, &mut dst).map_err(|e| JournalError::sqlite(tmp, &e))?;
        let mut busy_steps = 0u32;
        loop {
            match backup
                .step(BACKUP_PAGES_PER_STEP)
                .map_err(|e| JournalError::sqlite(path, &e))?
            {
                StepResult::Done => break,
                StepResult::More => busy_steps = 0,
                StepResult::Busy | StepResult::Locked => {
                    busy_steps += 1;
                    if busy_steps > BACKUP_MAX_BUSY_STEPS {
                        return Err(JournalError::Unavailable {
                            reason: UnavailableReason::Busy,
                            detail: "backup source stayed locked".into(),
                        });
                    }
                }
                _ => {}
            }
            between();
            std::thread::sleep(BACKUP_PAUSE);
        }
    }
    dst.close()
        .map_err(|(_, e)| JournalError::sqlite(tmp, &e))?;
    Ok(())
}
