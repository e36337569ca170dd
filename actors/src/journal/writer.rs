//! The writer thread: the one read-write connection, on a dedicated OS thread fed by a bounded
//! tokio channel, with group commit.
//!
//! **Group commit.** The thread blocks for the next command, then takes whatever else is already
//! queued — up to [`MAX_GROUP_ROWS`] signal rows (a single larger append is a transaction of its
//! own) and [`MAX_GROUP_COMMANDS`] commands — and runs them in one `BEGIN IMMEDIATE` … `COMMIT`,
//! each command inside its own savepoint so a duplicate in one append fails only that append.
//! Only after the commit does it answer each command. It never waits for company: an idle writer
//! commits a lone append at once, and under load the batch is whatever queued up while the
//! previous commit ran.
//!
//! Compaction and backup run here too, in batches; between batches the thread serves the
//! writes queued meanwhile (stopping at the next maintenance or close command, so order is
//! kept). The thread ends on `Close` (checkpoint, close the connection, fail whatever is still
//! queued with `journal_unavailable{closed}`) or when every sender is gone (it drains the queue
//! first). However it ends — a panic included — it unpublishes itself from the writer slot and
//! reports a [`WriterExit`].

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use super::config::{JournalNotice, JournalObserver, JournalSync};
use super::error::{JournalError, Result, UnavailableReason};
use super::report::{BackupReport, CompactionReport, ConversationRow, JournalCounters};
use super::store::{self, CompactParams, EventRow, SignalRow};
use crate::telemetry::WallClock;

/// Commands queued for the writer.
pub(crate) const WRITER_QUEUE: usize = 1024;
/// Signal rows per group transaction (SPEC §12.2).
pub(crate) const MAX_GROUP_ROWS: usize = 256;
/// Commands per group transaction.
pub(crate) const MAX_GROUP_COMMANDS: usize = 1024;
/// Groups served between two maintenance batches.
const GROUPS_BETWEEN_BATCHES: usize = 8;

/// How a writer thread ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriterExit {
    /// Closed on request (journal close or actor stop).
    Closed,
    /// Every sender was dropped (its owner went away); the queue was drained first.
    Disconnected,
    /// The connection could not be opened.
    OpenFailed,
    /// The thread panicked.
    Panicked,
}

impl std::fmt::Display for WriterExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Closed => "closed",
            Self::Disconnected => "disconnected",
            Self::OpenFailed => "open_failed",
            Self::Panicked => "panicked",
        })
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

/// What the writer does.
pub(crate) enum WriterCmd {
    Signals {
        rows: Vec<SignalRow>,
        reply: Reply<()>,
    },
    Events {
        rows: Vec<EventRow>,
        reply: Reply<()>,
    },
    Register {
        row: ConversationRow,
        reply: Reply<()>,
    },
    MarkStopped {
        conversation_id: String,
        reason: String,
        at_ms: i64,
        reply: Reply<()>,
    },
    Snapshot {
        conversation_id: String,
        conv_seq: i64,
        state: Value,
        reply: Reply<()>,
    },
    SetMeta {
        key: &'static str,
        value: rusqlite::types::Value,
        reply: Reply<()>,
    },
    Compact {
        params: CompactParams,
        reply: Reply<CompactionReport>,
    },
    Backup {
        dest: PathBuf,
        reply: Reply<BackupReport>,
    },
    /// Checkpoint and close. Commands still queued behind it fail with `closed` when the
    /// journal is closing for good, else with `writer_down` (safe to retry on the next writer).
    Close {
        journal_closed: bool,
        reply: Reply<()>,
    },
    /// Fault injection for the restart tests.
    #[cfg(test)]
    Panic,
}

impl WriterCmd {
    fn is_groupable(&self) -> bool {
        matches!(
            self,
            Self::Signals { .. }
                | Self::Events { .. }
                | Self::Register { .. }
                | Self::MarkStopped { .. }
                | Self::Snapshot { .. }
                | Self::SetMeta { .. }
        )
    }

    fn signal_rows(&self) -> usize {
        match self {
            Self::Signals { rows, .. } => rows.len(),
            _ => 0,
        }
    }

    fn event_rows(&self) -> u64 {
        match self {
            Self::Events { rows, .. } => rows.len() as u64,
            _ => 0,
        }
    }

    /// Answers a grouped command (or `Close`).
    fn answer(self, result: Result<()>) {
        match self {
            Self::Signals { reply, .. }
            | Self::Events { reply, .. }
            | Self::Register { reply, .. }
            | Self::MarkStopped { reply, .. }
            | Self::Snapshot { reply, .. }
            | Self::SetMeta { reply, .. }
            | Self::Close { reply, .. } => {
                let _ = reply.send(result);
            }
            other => {
                other.fail(result.err().unwrap_or_else(|| {
                    JournalError::invalid("writer command answered out of order")
                }))
            }
        }
    }

    /// Answers any command with an error.
    fn fail(self, err: JournalError) {
        match self {
            Self::Signals { reply, .. }
            | Self::Events { reply, .. }
            | Self::Register { reply, .. }
            | Self::MarkStopped { reply, .. }
            | Self::Snapshot { reply, .. }
            | Self::SetMeta { reply, .. }
            | Self::Close { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Self::Compact { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Self::Backup { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            #[cfg(test)]
            Self::Panic => {}
        }
    }
}

/// State shared by the writer threads, the event pump and the handles: counters, health, the
/// observer.
pub(crate) struct Shared {
    pub(crate) path: PathBuf,
    pub(crate) clock: WallClock,
    observer: Option<JournalObserver>,
    failing: AtomicBool,
    pub(crate) signals_appended: AtomicU64,
    pub(crate) events_written: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    pub(crate) events_duplicate: AtomicU64,
    pub(crate) event_batches: AtomicU64,
    pub(crate) transactions: AtomicU64,
    pub(crate) write_failures: AtomicU64,
}

impl Shared {
    pub(crate) fn new(path: PathBuf, clock: WallClock, observer: Option<JournalObserver>) -> Self {
        Self {
            path,
            clock,
            observer,
            failing: AtomicBool::new(false),
            signals_appended: AtomicU64::new(0),
            events_written: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
            events_duplicate: AtomicU64::new(0),
            event_batches: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
        }
    }

    pub(crate) fn notify(&self, notice: JournalNotice) {
        if let Some(observer) = &self.observer {
            observer(&notice);
        }
    }

    /// A write failed: count it, mark health failing, tell the observer.
    pub(crate) fn write_failed(&self, reason: String, dropped_events: u64) {
        self.write_failures.fetch_add(1, Ordering::Relaxed);
        self.failing.store(true, Ordering::Relaxed);
        tracing::warn!(target: "codeward::journal", path = %self.path.display(), %reason, dropped_events, "journal write failed");
        self.notify(JournalNotice::WriteFailed {
            reason,
            dropped_events,
        });
    }

    /// A write committed: health recovers if it was failing.
    fn write_ok(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(target: "codeward::journal", path = %self.path.display(), "journal writes recovered");
            self.notify(JournalNotice::WriteRecovered);
        }
    }

    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    pub(crate) fn counters(&self) -> JournalCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        JournalCounters {
            signals_appended: get(&self.signals_appended),
            events_written: get(&self.events_written),
            events_dropped: get(&self.events_dropped),
            events_duplicate: get(&self.events_duplicate),
            event_batches: get(&self.event_batches),
            transactions: get(&self.transactions),
            write_failures: get(&self.write_failures),
            failing: self.is_failing(),
        }
    }
}

/// The published writer: handles send to `tx` while it is `Some`.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriterSlot {
    /// Bumped on every published writer; 0 = none yet.
    pub(crate) generation: u64,
    /// The live writer's queue.
    pub(crate) tx: Option<mpsc::Sender<WriterCmd>>,
    /// The journal was closed: no writer will come back.
    pub(crate) closed: bool,
}

impl std::fmt::Debug for WriterCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Signals { .. } => "Signals",
            Self::Events { .. } => "Events",
            Self::Register { .. } => "Register",
            Self::MarkStopped { .. } => "MarkStopped",
            Self::Snapshot { .. } => "Snapshot",
            Self::SetMeta { .. } => "SetMeta",
            Self::Compact { .. } => "Compact",
            Self::Backup { .. } => "Backup",
            Self::Close { .. } => "Close",
            #[cfg(test)]
            Self::Panic => "Panic",
        })
    }
}

pub(crate) type Slot = Arc<watch::Sender<WriterSlot>>;

fn unpublish(slot: &Slot, generation: u64) {
    slot.send_if_modified(|s| {
        if s.generation == generation && s.tx.is_some() {
            s.tx = None;
            true
        } else {
            false
        }
    });
}

/// Where a writer's connection comes from.
pub(crate) enum Source {
    /// The connection `store::open` set up.
    Opened(Connection),
    /// Reopen the existing file (a restarted writer).
    Reopen(JournalSync),
}

/// Ownership of one writer thread: dropping it unpublishes the writer and drops its queue
/// sender, so the thread drains what is queued and ends.
pub(crate) struct WriterGuard {
    generation: u64,
    tx: mpsc::Sender<WriterCmd>,
    slot: Slot,
    exit: Option<oneshot::Receiver<WriterExit>>,
}

impl std::fmt::Debug for WriterGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterGuard")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        unpublish(&self.slot, self.generation);
    }
}

impl WriterGuard {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the thread still takes commands.
    pub(crate) fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    /// The exit report (once).
    pub(crate) fn take_exit(&mut self) -> Option<oneshot::Receiver<WriterExit>> {
        self.exit.take()
    }

    /// Takes this writer out of the slot: new requests wait for the next writer.
    pub(crate) fn unpublish(&self) {
        unpublish(&self.slot, self.generation);
    }

    /// Closes this writer: queued commands first, then checkpoint and close.
    pub(crate) async fn close(self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(WriterCmd::Close {
                journal_closed: false,
                reply,
            })
            .await
            .is_err()
        {
            return Ok(()); // already gone
        }
        rx.await
            .unwrap_or_else(|_| Err(JournalError::unavailable(UnavailableReason::WriterStopped)))
    }
}

/// Reports the end of a writer thread however it ends (a panic included): unpublishes it,
/// records its generation as exited, sends the [`WriterExit`].
struct ExitGuard {
    generation: u64,
    reason: WriterExit,
    slot: Slot,
    exited: Arc<watch::Sender<u64>>,
    exit: Option<oneshot::Sender<WriterExit>>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let reason = if std::thread::panicking() {
            WriterExit::Panicked
        } else {
            self.reason
        };
        unpublish(&self.slot, self.generation);
        let generation = self.generation;
        self.exited.send_modify(|g| *g = (*g).max(generation));
        if let Some(exit) = self.exit.take() {
            let _ = exit.send(reason);
        }
    }
}

/// Starts writer `generation` and publishes it into `slot` once its connection is ready.
pub(crate) async fn spawn(
    source: Source,
    generation: u64,
    shared: Arc<Shared>,
    slot: Slot,
    exited: Arc<watch::Sender<u64>>,
) -> Result<WriterGuard> {
    let (tx, rx) = mpsc::channel(WRITER_QUEUE);
    let (ready_tx, ready_rx) = oneshot::channel::<Result<()>>();
    let (exit_tx, exit_rx) = oneshot::channel();
    let thread_slot = slot.clone();
    let path = shared.path.clone();
    std::thread::Builder::new()
        .name("codeward-journal-writer".into())
        .spawn(move || {
            // INVARIANT: declared before the writer, so it drops after the connection closed.
            let mut guard = ExitGuard {
                generation,
                reason: WriterExit::Panicked,
                slot: thread_slot,
                exited,
                exit: Some(exit_tx),
            };
            let conn = match source {
                Source::Opened(conn) => conn,
                Source::Reopen(sync) => match store::open_writer(&shared.path, sync) {
                    Ok(conn) => conn,
                    Err(e) => {
                        guard.reason = WriterExit::OpenFailed;
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                },
            };
            let _ = ready_tx.send(Ok(()));
            let writer = Writer {
                conn,
                queue: Queue {
                    rx,
                    pending: VecDeque::new(),
                },
                shared,
            };
            guard.reason = writer.run();
        })
        .map_err(|e| JournalError::io("spawn writer thread", &path, &e))?;
    ready_rx
        .await
        .unwrap_or_else(|_| Err(JournalError::unavailable(UnavailableReason::WriterStopped)))?;
    slot.send_modify(|s| {
        s.generation = generation;
        s.tx = Some(tx.clone());
    });
    Ok(WriterGuard {
        generation,
        tx,
        slot,
        exit: Some(exit_rx),
    })
}

/// The queue in order: commands set aside (`pending`, oldest first) come before the channel.
struct Queue {
    rx: mpsc::Receiver<WriterCmd>,
    pending: VecDeque<WriterCmd>,
}

impl Queue {
    fn next_queued(&mut self) -> Option<WriterCmd> {
        self.pending.pop_front().or_else(|| self.rx.try_recv().ok())
    }

    fn next_blocking(&mut self) -> Option<WriterCmd> {
        self.pending.pop_front().or_else(|| self.rx.blocking_recv())
    }

    /// `first` plus the grouped commands queued behind it.
    fn gather(&mut self, first: WriterCmd) -> Vec<WriterCmd> {
        let mut rows = first.signal_rows();
        let mut group = vec![first];
        while group.len() < MAX_GROUP_COMMANDS {
            let Some(cmd) = self.next_queued() else { break };
            if !cmd.is_groupable() || rows + cmd.signal_rows() > MAX_GROUP_ROWS {
                self.pending.push_front(cmd);
                break;
            }
            rows += cmd.signal_rows();
            group.push(cmd);
        }
        group
    }
}

struct Writer {
    conn: Connection,
    queue: Queue,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self) -> WriterExit {
        loop {
            let Some(cmd) = self.queue.next_blocking() else {
                return WriterExit::Disconnected;
            };
            if cmd.is_groupable() {
                let group = self.queue.gather(cmd);
                commit_group(&self.conn, &self.shared, group);
                continue;
            }
            match cmd {
                WriterCmd::Compact { params, reply } => {
                    let result = self.compact(params);
                    if let Ok(report) = &result {
                        self.shared.notify(JournalNotice::Compacted(report.clone()));
                    }
                    let _ = reply.send(result);
                }
                WriterCmd::Backup { dest, reply } => {
                    let result = self.backup(dest);
                    if let Ok(report) = &result {
                        self.shared
                            .notify(JournalNotice::BackupCompleted(report.clone()));
                    }
                    let _ = reply.send(result);
                }
                WriterCmd::Close {
                    journal_closed,
                    reply,
                } => {
                    self.close(journal_closed, reply);
                    return WriterExit::Closed;
                }
                #[cfg(test)]
                WriterCmd::Panic => panic!("journal writer fault injection"),
                grouped => grouped.fail(JournalError::invalid("unroutable writer command")),
            }
        }
    }

    fn compact(&mut self, params: CompactParams) -> Result<CompactionReport> {
        let Writer {
            conn,
            queue,
            shared,
        } = self;
        let conn: &Connection = conn;
        let mut between = || serve_queued(conn, queue, shared);
        store::compact(conn, &shared.path, params, &mut between)
    }

    fn backup(&mut self, dest: PathBuf) -> Result<BackupReport> {
        let started = std::time::Instant::now();
        let Writer {
            conn,
            queue,
            shared,
        } = self;
        let conn: &Connection = conn;
        let mut between = || serve_queued(conn, queue, shared);
        let bytes = store::backup(conn, &shared.path, &dest, &mut between)?;
        let now = (shared.clock)();
        store::set_meta(
            conn,
            &shared.path,
            store::meta::LAST_BACKUP_AT,
            &rusqlite::types::Value::Integer(now),
        )?;
        Ok(BackupReport {
            path: dest,
            bytes,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    fn close(self, journal_closed: bool, reply: Reply<()>) {
        let Writer {
            conn,
            mut queue,
            shared,
        } = self;
        let checkpoint = store::checkpoint_truncate(&conn, &shared.path).map(|_| ());
        let closed = conn
            .close()
            .map_err(|(_, e)| JournalError::sqlite(&shared.path, &e));
        queue.rx.close();
        let reason = if journal_closed {
            UnavailableReason::Closed
        } else {
            UnavailableReason::WriterDown
        };
        while let Some(cmd) = queue.next_queued() {
            cmd.fail(JournalError::unavailable(reason));
        }
        let _ = reply.send(checkpoint.and(closed));
    }
}

/// Serves the grouped writes queued at the front (between maintenance batches).
fn serve_queued(conn: &Connection, queue: &mut Queue, shared: &Shared) {
    for _ in 0..GROUPS_BETWEEN_BATCHES {
        let Some(cmd) = queue.next_queued() else {
            return;
        };
        if !cmd.is_groupable() {
            queue.pending.push_front(cmd);
            return;
        }
        let group = queue.gather(cmd);
        commit_group(conn, shared, group);
    }
}

/// What one grouped command wrote.
#[derive(Default)]
struct Applied {
    signals: u64,
    events: u64,
    duplicates: u64,
}

fn apply(conn: &Connection, shared: &Shared, cmd: &WriterCmd) -> Result<Applied> {
    let path = &shared.path;
    match cmd {
        WriterCmd::Signals { rows, .. } => {
            store::insert_signals(conn, path, rows)?;
            Ok(Applied {
                signals: rows.len() as u64,
                ..Applied::default()
            })
        }
        WriterCmd::Events { rows, .. } => {
            let (events, duplicates) = store::insert_events(conn, path, rows)?;
            Ok(Applied {
                events,
                duplicates,
                ..Applied::default()
            })
        }
        WriterCmd::Register { row, .. } => {
            store::upsert_conversation(conn, path, row).map(|()| Applied::default())
        }
        WriterCmd::MarkStopped {
            conversation_id,
            reason,
            at_ms,
            ..
        } => store::mark_stopped(conn, path, conversation_id, reason, *at_ms)
            .map(|()| Applied::default()),
        WriterCmd::Snapshot {
            conversation_id,
            conv_seq,
            state,
            ..
        } => store::put_snapshot(conn, path, conversation_id, *conv_seq, state)
            .map(|()| Applied::default()),
        WriterCmd::SetMeta { key, value, .. } => {
            store::set_meta(conn, path, key, value).map(|()| Applied::default())
        }
        other => Err(JournalError::invalid(format!(
            "writer command {other:?} cannot be grouped"
        ))),
    }
}

/// Whether an error is the storage's (health) rather than the caller's.
fn is_storage_failure(e: &JournalError) -> bool {
    matches!(
        e,
        JournalError::Unavailable { .. } | JournalError::Corrupt { .. } | JournalError::Io { .. }
    )
}

/// Runs a transaction-control statement through the statement cache (no re-parsing per group).
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// One group transaction: savepoint per command, one commit, then the replies.
fn commit_group(conn: &Connection, shared: &Shared, group: Vec<WriterCmd>) {
    let path = &shared.path;
    let sql = |e: rusqlite::Error| JournalError::sqlite(path, &e);
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        fail_group(shared, group, sql(e));
        return;
    }
    let mut outcomes: Vec<(WriterCmd, Result<Applied>)> = Vec::with_capacity(group.len());
    let mut aborted: Option<JournalError> = None;
    for cmd in group {
        if aborted.is_some() {
            outcomes.push((cmd, Ok(Applied::default())));
            continue;
        }
        if let Err(e) = control(conn, "SAVEPOINT cmd") {
            aborted = Some(sql(e));
            outcomes.push((cmd, Ok(Applied::default())));
            continue;
        }
        let result = apply(conn, shared, &cmd);
        let closed = if result.is_ok() {
            control(conn, "RELEASE cmd")
        } else {
            control(conn, "ROLLBACK TO cmd").and_then(|()| control(conn, "RELEASE cmd"))
        };
        // SQLite may roll the whole transaction back by itself (disk full, I/O error): then
        // nothing of this group is written.
        if let Err(e) = closed {
            aborted = Some(sql(e));
        } else if conn.is_autocommit() {
            aborted = Some(match &result {
                Err(e) => e.clone(),
                Ok(_) => JournalError::unavailable(UnavailableReason::SqliteError),
            });
        }
        outcomes.push((cmd, result));
    }
    let committed = match aborted {
        Some(e) => Err(e),
        None => control(conn, "COMMIT").map_err(sql),
    };
    if let Err(e) = committed {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let cmds = outcomes.into_iter().map(|(cmd, _)| cmd).collect();
        fail_group(shared, cmds, e);
        return;
    }
    shared.transactions.fetch_add(1, Ordering::Relaxed);
    // Counters and health first, so a caller that sees its answer also sees them.
    let mut storage_failure: Option<(String, u64)> = None;
    let mut any_ok = false;
    for (cmd, result) in &outcomes {
        match result {
            Ok(applied) => {
                any_ok = true;
                shared
                    .signals_appended
                    .fetch_add(applied.signals, Ordering::Relaxed);
                shared
                    .events_written
                    .fetch_add(applied.events, Ordering::Relaxed);
                shared
                    .events_duplicate
                    .fetch_add(applied.duplicates, Ordering::Relaxed);
            }
            Err(e) if is_storage_failure(e) => {
                let entry = storage_failure.get_or_insert_with(|| (e.reason(), 0));
                entry.1 += cmd.event_rows();
            }
            Err(_) => {}
        }
    }
    match storage_failure {
        Some((reason, dropped)) => shared.write_failed(reason, dropped),
        None if any_ok => shared.write_ok(),
        None => {}
    }
    for (cmd, result) in outcomes {
        cmd.answer(result.map(|_| ()));
    }
}

fn fail_group(shared: &Shared, group: Vec<WriterCmd>, err: JournalError) {
    let dropped: u64 = group.iter().map(WriterCmd::event_rows).sum();
    shared.write_failed(err.reason(), dropped);
    for cmd in group {
        cmd.fail(err.clone());
    }
}
