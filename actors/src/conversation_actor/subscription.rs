//! Subscriptions (SPEC §11.5): the per-conversation [`Hub`] that fans applied entries out, and
//! the [`ConversationSubscription`] stream a subscriber reads.
//!
//! The hub lives in the conversation's start arguments, so it survives actor restarts:
//! subscribers keep their stream across a crash and see the restored conversation's
//! interruption entries. Its `tokio::sync::broadcast` channel (1024 entries per subscriber) is
//! created on the first subscribe and dropped again when a publish finds no receiver left, so
//! an idle conversation carries no channel.
//!
//! Gap-free, duplicate-free replay: the actor takes a receiver and its `last_seq` inside one
//! handler (nothing is published in between); the stream then replays `from_seq..=last_seq` from
//! the journal in pages and continues with live entries `> last_seq`. A live entry that jumps
//! ahead (entries journaled but not published — only possible across a crash) is back-filled
//! from the journal. A subscriber that falls more than 1024 entries behind gets
//! `Err(Lagged{missed})` once and continues with newer entries (`subscribers.lagged` is
//! counted). The stream ends after a live `conversation.stopped` entry, or when the hub closes
//! (the conversation stopped for good).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::stream::{BoxStream, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::ports::ConversationStore;
use crate::conversation::{ConversationEvent, SignalType};
use crate::ids::ConversationId;
use crate::telemetry::TelemetryHandle;

/// Entries buffered per subscriber before it lags.
pub const SUBSCRIBER_BUFFER: usize = 1024;
/// Entries loaded from the journal per replay page.
const REPLAY_PAGE: usize = 256;

type Entry = Arc<ConversationEvent>;

/// A subscriber fell behind and missed `missed` entries (it continues with newer ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("subscriber lagged: {missed} entries missed")]
pub struct Lagged {
    /// Entries skipped.
    pub missed: u64,
}

#[derive(Default)]
struct HubSlot {
    tx: Option<broadcast::Sender<Entry>>,
    closed: bool,
}

/// The fan-out point of one conversation.
#[derive(Default)]
pub(crate) struct Hub {
    slot: Mutex<HubSlot>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubSlot> {
        // Nothing panics while holding the lock; a poisoned slot is still consistent.
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new receiver, creating the channel on first use; `None` once closed.
    pub(crate) fn subscribe(&self) -> Option<broadcast::Receiver<Entry>> {
        let mut slot = self.lock();
        if slot.closed {
            return None;
        }
        Some(match &slot.tx {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(SUBSCRIBER_BUFFER);
                slot.tx = Some(tx);
                rx
            }
        })
    }

    /// Pushes entries (in seq order) to every receiver; frees the channel when none is left.
    pub(crate) fn publish<'a>(&self, entries: impl IntoIterator<Item = &'a ConversationEvent>) {
        let mut slot = self.lock();
        let Some(tx) = &slot.tx else {
            return;
        };
        if tx.receiver_count() == 0 {
            slot.tx = None;
            return;
        }
        for e in entries {
            // Err only when every receiver is gone; the next publish frees the channel.
            let _ = tx.send(Arc::new(e.clone()));
        }
    }

    /// Live receivers.
    pub(crate) fn subscriber_count(&self) -> usize {
        self.lock().tx.as_ref().map_or(0, |tx| tx.receiver_count())
    }

    /// Ends every subscription (after the entries already sent) and refuses new ones.
    pub(crate) fn close(&self) {
        let mut slot = self.lock();
        slot.closed = true;
        slot.tx = None;
    }
}

/// A stream of a conversation's applied entries, in seq order, each once: journal replay from
/// `from_seq` (when given), then live. Dropping it unsubscribes.
pub struct ConversationSubscription {
    inner: BoxStream<'static, Result<ConversationEvent, Lagged>>,
}

impl std::fmt::Debug for ConversationSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationSubscription")
            .finish_non_exhaustive()
    }
}

impl ConversationSubscription {
    /// Built by the actor: `rx` was taken while `last_seq` was the last applied seq.
    pub(crate) fn new(
        store: Arc<dyn ConversationStore>,
        conversation_id: ConversationId,
        telemetry: Option<TelemetryHandle>,
        rx: Option<broadcast::Receiver<Entry>>,
        last_seq: u64,
        from_seq: Option<u64>,
    ) -> Self {
        let next = from_seq.map_or(last_seq + 1, |f| f.max(1));
        let feed = Feed {
            store,
            conversation_id,
            telemetry,
            rx,
            next,
            replay_until: last_seq,
            buffer: VecDeque::new(),
            held_live: None,
            stop_at: None,
            after_lag: false,
            done: false,
        };
        let inner = futures::stream::unfold(feed, |mut feed| async move {
            feed.next_item().await.map(|item| (item, feed))
        })
        .boxed();
        Self { inner }
    }

    /// The next entry; `None` once the stream ended.
    pub async fn recv(&mut self) -> Option<Result<ConversationEvent, Lagged>> {
        self.inner.next().await
    }
}

impl Stream for ConversationSubscription {
    type Item = Result<ConversationEvent, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

struct Feed {
    store: Arc<dyn ConversationStore>,
    conversation_id: ConversationId,
    telemetry: Option<TelemetryHandle>,
    rx: Option<broadcast::Receiver<Entry>>,
    // INVARIANT: every seq < `next` was yielded (or deliberately skipped: before `from_seq`,
    // lagged, or missing from the journal); entries are yielded in strictly increasing seq.
    next: u64,
    /// Replay from the journal while `next <= replay_until`.
    replay_until: u64,
    buffer: VecDeque<ConversationEvent>,
    /// A live entry that arrived ahead of `next`, yielded after the back-fill.
    held_live: Option<Entry>,
    /// Seq of a live `conversation.stopped`: the stream ends after yielding it.
    stop_at: Option<u64>,
    after_lag: bool,
    done: bool,
}

impl Feed {
    async fn next_item(&mut self) -> Option<Result<ConversationEvent, Lagged>> {
        loop {
            if let Some(ev) = self.buffer.pop_front() {
                if ev.seq < self.next {
                    continue;
                }
                self.next = ev.seq + 1;
                if self.stop_at == Some(ev.seq) {
                    self.done = true;
                    self.rx = None;
                }
                return Some(Ok(ev));
            }
            if self.done {
                return None;
            }
            if self.next <= self.replay_until {
                if let Some(lag) = self.replay_page().await {
                    return Some(Err(lag));
                }
                continue;
            }
            if let Some(held) = self.held_live.take() {
                self.push_live(held);
                continue;
            }
            let rx = self.rx.as_mut()?;
            match rx.recv().await {
                Ok(ev) => {
                    if ev.seq < self.next {
                        continue; // replayed already, or before `from_seq`
                    }
                    if ev.seq > self.next && !self.after_lag {
                        // Journaled but never published (a crash in between): back-fill.
                        self.replay_until = ev.seq - 1;
                        self.held_live = Some(ev);
                        continue;
                    }
                    self.after_lag = false;
                    self.push_live(ev);
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.after_lag = true;
                    self.count_lag();
                    return Some(Err(Lagged { missed }));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                    self.rx = None;
                }
            }
        }
    }

    fn push_live(&mut self, ev: Entry) {
        if ev.signal.kind == SignalType::Stopped {
            self.stop_at = Some(ev.seq);
        }
        self.buffer
            .push_back(Arc::try_unwrap(ev).unwrap_or_else(|shared| (*shared).clone()));
    }

    /// Loads the next replay page into the buffer; a failing or short journal yields `Lagged`
    /// for what it could not deliver.
    async fn replay_page(&mut self) -> Option<Lagged> {
        let want = self.replay_until - self.next + 1;
        let limit = usize::try_from(want).unwrap_or(usize::MAX).min(REPLAY_PAGE);
        let loaded = self
            .store
            .load(&self.conversation_id, self.next - 1, Some(limit))
            .await;
        let entries: Vec<_> = match loaded {
            Ok(entries) => entries
                .into_iter()
                .filter(|e| e.seq >= self.next && e.seq <= self.replay_until)
                .collect(),
            Err(e) => {
                tracing::warn!(conversation_id = %self.conversation_id, code = e.code(), "subscription replay failed");
                Vec::new()
            }
        };
        if entries.is_empty() {
            self.next = self.replay_until + 1;
            return Some(Lagged { missed: want });
        }
        self.buffer.extend(entries);
        None
    }

    fn count_lag(&self) {
        let Some(telemetry) = self.telemetry.clone() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = telemetry.add_counter("subscribers.lagged", 1).await;
            });
        }
    }
}
