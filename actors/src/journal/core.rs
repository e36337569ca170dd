//! The state one open journal shares between its handles, its actor and its event pump: the
//! configuration, the published writer slot, the reader pool, the counters, and the telemetry
//! event pump.
//!
//! Requests reach the writer through the slot: the current writer's queue sender, republished
//! by whoever (re)starts a writer. A send that finds the writer gone waits (≤ [`RETRY_WAIT`]) for
//! a newer one and goes there instead — the command never reached the old writer, so this is
//! safe for appends. A writer that took a command always answers it, unless it panics: then the
//! caller gets `journal_unavailable{writer_stopped}`, never a hang.
//!
//! The event pump is a tokio task fed by a bounded channel ([`INGEST_CAPACITY`] events,
//! `try_send`, overflow counted): it hands the writer one batch at a time, when it holds
//! [`EVENT_BATCH`] events or [`EVENT_FLUSH_EVERY`] after the batch's first event, whichever
//! comes first, and waits for the commit before it starts the next one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::config::JournalConfig;
use super::error::{JournalError, Result, UnavailableReason};
use super::readers::ReaderPool;
use super::store::EventRow;
use super::writer::{self, Reply, Shared, Slot, Source, WriterCmd, WriterGuard, WriterSlot};
use crate::telemetry::RecordedEvent;

/// How long a request waits for a (re)started writer (SPEC §13.2: ≤ 1 s).
pub(crate) const RETRY_WAIT: Duration = Duration::from_secs(1);
/// How long a new writer waits for the previous one to finish draining.
const PREVIOUS_WRITER_WAIT: Duration = Duration::from_secs(10);
/// Telemetry events waiting for the pump.
pub(crate) const INGEST_CAPACITY: usize = 4096;
/// Events per journal batch (SPEC §12.2).
pub(crate) const EVENT_BATCH: usize = 512;
/// Longest an event waits in the pump (SPEC §12.2).
pub(crate) const EVENT_FLUSH_EVERY: Duration = Duration::from_millis(100);

/// What travels to the event pump.
pub(crate) enum Ingest {
    Event(RecordedEvent),
    /// Answered once every event accepted before it was committed (or dropped).
    Flush(oneshot::Sender<Result<()>>),
}

/// One open journal.
pub(crate) struct JournalCore {
    pub(crate) config: JournalConfig,
    pub(crate) shared: Arc<Shared>,
    slot: Slot,
    exited: Arc<watch::Sender<u64>>,
    spawned: AtomicU64,
    /// A writer nobody supervises yet (started by `open`; the actor adopts it).
    unowned: Mutex<Option<WriterGuard>>,
    pub(crate) readers: Arc<ReaderPool>,
    ingest: mpsc::Sender<Ingest>,
    closed: AtomicBool,
    pub(crate) compacted_once: AtomicBool,
}

impl JournalCore {
    /// The core of an opened journal (readers open on first use); spawns the event pump on the
    /// current runtime.
    pub(crate) fn new(config: JournalConfig) -> Arc<Self> {
        let (ingest, rx) = mpsc::channel(INGEST_CAPACITY);
        let shared = Arc::new(Shared::new(
            config.path.clone(),
            config.clock.clone(),
            config.observer.clone(),
        ));
        let core = Arc::new(Self {
            readers: ReaderPool::new(config.path.clone(), super::readers::READERS),
            config,
            shared,
            slot: Arc::new(watch::channel(WriterSlot::default()).0),
            exited: Arc::new(watch::channel(0).0),
            spawned: AtomicU64::new(0),
            unowned: Mutex::new(None),
            ingest,
            closed: AtomicBool::new(false),
            compacted_once: AtomicBool::new(false),
        });
        tokio::spawn(pump(rx, Arc::downgrade(&core)));
        core
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The generation of the published writer (0 while none is up).
    pub(crate) fn writer_generation(&self) -> u64 {
        let slot = self.slot.borrow();
        if slot.tx.is_some() {
            slot.generation
        } else {
            0
        }
    }

    /// The published writer's queue (fault-injection tests).
    #[cfg(test)]
    pub(crate) fn writer_sender(&self) -> Option<mpsc::Sender<WriterCmd>> {
        self.slot.borrow().tx.clone()
    }

    /// Starts a new writer, after the previous one finished draining.
    pub(crate) async fn spawn_writer(&self, source: Source) -> Result<WriterGuard> {
        let previous = self.spawned.load(Ordering::Acquire);
        if previous > 0 {
            let mut exited = self.exited.subscribe();
            let _ = tokio::time::timeout(PREVIOUS_WRITER_WAIT, exited.wait_for(|g| *g >= previous))
                .await;
        }
        let generation = self.spawned.fetch_add(1, Ordering::AcqRel) + 1;
        writer::spawn(
            source,
            generation,
            self.shared.clone(),
            self.slot.clone(),
            self.exited.clone(),
        )
        .await
    }

    /// Parks a writer nobody supervises yet.
    pub(crate) fn park(&self, guard: WriterGuard) {
        *self.unowned.lock().unwrap_or_else(PoisonError::into_inner) = Some(guard);
    }

    /// Takes the parked writer, if any.
    pub(crate) fn take_parked(&self) -> Option<WriterGuard> {
        self.unowned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The current writer's queue, newer than `after` if given; waits ≤ [`RETRY_WAIT`].
    async fn current_writer(&self, after: Option<u64>) -> Result<(u64, mpsc::Sender<WriterCmd>)> {
        let mut rx = self.slot.subscribe();
        let wait = async {
            let slot = rx
                .wait_for(|s| {
                    s.closed || (s.tx.is_some() && after.is_none_or(|a| s.generation > a))
                })
                .await
                .map_err(|_| JournalError::unavailable(UnavailableReason::WriterDown))?;
            match (&slot.tx, slot.closed) {
                (Some(tx), false) => Ok((slot.generation, tx.clone())),
                (_, true) => Err(JournalError::unavailable(UnavailableReason::Closed)),
                (None, false) => Err(JournalError::unavailable(UnavailableReason::WriterDown)),
            }
        };
        tokio::time::timeout(RETRY_WAIT, wait)
            .await
            .unwrap_or_else(|_| Err(JournalError::unavailable(UnavailableReason::WriterDown)))
    }

    /// Sends a command to the writer and waits for its answer. `events` is the number of
    /// telemetry events the command carries (reported as dropped if it never reaches a writer).
    pub(crate) async fn request<T>(
        &self,
        events: u64,
        make: impl FnOnce(Reply<T>) -> WriterCmd,
    ) -> Result<T> {
        if self.is_closed() {
            return Err(JournalError::unavailable(UnavailableReason::Closed));
        }
        self.request_unchecked(events, make).await
    }

    async fn request_unchecked<T>(
        &self,
        events: u64,
        make: impl FnOnce(Reply<T>) -> WriterCmd,
    ) -> Result<T> {
        let result = self.deliver(make).await;
        if let Err(JournalError::Unavailable {
            reason: reason @ (UnavailableReason::WriterDown | UnavailableReason::WriterStopped),
            ..
        }) = &result
        {
            // No writer answered: nobody else reports this one.
            self.shared.write_failed(reason.as_str().to_owned(), events);
        }
        result
    }

    async fn deliver<T>(&self, make: impl FnOnce(Reply<T>) -> WriterCmd) -> Result<T> {
        let (generation, tx) = self.current_writer(None).await?;
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(cmd)) = tx.send(make(reply)).await {
            drop(tx);
            // The writer was gone before it took the command: one retry on a newer writer.
            let (_, tx) = self.current_writer(Some(generation)).await?;
            tx.send(cmd)
                .await
                .map_err(|_| JournalError::unavailable(UnavailableReason::WriterDown))?;
        }
        answer
            .await
            .unwrap_or_else(|_| Err(JournalError::unavailable(UnavailableReason::WriterStopped)))
    }

    /// Hands events to the pump without waiting; returns how many were accepted.
    pub(crate) fn offer_events(&self, events: Vec<RecordedEvent>) -> usize {
        let mut accepted = 0;
        for event in events {
            if self.ingest.try_send(Ingest::Event(event)).is_ok() {
                accepted += 1;
            } else {
                self.shared.events_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        accepted
    }

    /// Waits until every event offered before this call was committed or dropped; `Err` when
    /// some were dropped by a failed write since the previous flush.
    pub(crate) async fn flush_events(&self) -> Result<()> {
        let (done, rx) = oneshot::channel();
        let stopped = || JournalError::unavailable(UnavailableReason::WriterStopped);
        self.ingest
            .send(Ingest::Flush(done))
            .await
            .map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Writes one batch of events (the pump's only call).
    async fn write_events(&self, events: Vec<RecordedEvent>) -> Result<()> {
        let offered = events.len() as u64;
        let rows: Vec<EventRow> = events.iter().filter_map(EventRow::from_event).collect();
        let unfit = offered - rows.len() as u64;
        self.shared
            .events_dropped
            .fetch_add(unfit, Ordering::Relaxed);
        self.shared.event_batches.fetch_add(1, Ordering::Relaxed);
        let n = rows.len() as u64;
        let result = self
            .request(n, |reply| WriterCmd::Events { rows, reply })
            .await;
        if result.is_err() {
            self.shared.events_dropped.fetch_add(n, Ordering::Relaxed);
        }
        result
    }

    /// Flushes events, closes the writer (checkpoint), closes the readers; later calls fail
    /// with `journal_unavailable{closed}`. Idempotent.
    pub(crate) async fn close(&self) -> Result<()> {
        if self.is_closed() {
            return Ok(());
        }
        let writer_up = self.writer_generation() > 0;
        let flushed = if writer_up {
            self.flush_events().await
        } else {
            Ok(())
        };
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(()); // a concurrent close won
        }
        let closed = if writer_up {
            match self
                .request_unchecked(0, |reply| WriterCmd::Close {
                    journal_closed: true,
                    reply,
                })
                .await
            {
                Err(JournalError::Unavailable {
                    reason: UnavailableReason::Closed,
                    ..
                }) => Ok(()),
                other => other,
            }
        } else {
            Ok(())
        };
        self.slot.send_modify(|s| {
            s.closed = true;
            s.tx = None;
        });
        drop(self.take_parked());
        self.readers.close();
        closed.and(flushed)
    }
}

/// The event pump: batches of ≤ [`EVENT_BATCH`] events, ≤ [`EVENT_FLUSH_EVERY`] old, one in
/// flight at a time. Ends when the core is gone.
async fn pump(mut rx: mpsc::Receiver<Ingest>, core: Weak<JournalCore>) {
    let mut failed_since_flush: Option<JournalError> = None;
    loop {
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut batch = Vec::new();
        let mut waiters = Vec::new();
        let mut disconnected = false;
        match first {
            Ingest::Event(e) => batch.push(e),
            Ingest::Flush(w) => waiters.push(w),
        }
        if waiters.is_empty() {
            let deadline = Instant::now() + EVENT_FLUSH_EVERY;
            while batch.len() < EVENT_BATCH {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(Ingest::Event(e))) => batch.push(e),
                    Ok(Some(Ingest::Flush(w))) => {
                        waiters.push(w);
                        break;
                    }
                    Ok(None) => {
                        disconnected = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        if !batch.is_empty() {
            let Some(core) = core.upgrade() else {
                return;
            };
            if let Err(e) = core.write_events(batch).await {
                failed_since_flush = Some(e);
            }
        }
        if !waiters.is_empty() {
            let result = failed_since_flush.take().map_or(Ok(()), Err);
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
        if disconnected {
            return;
        }
    }
}
