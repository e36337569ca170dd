//! `TelemetryHandle`: the cloneable way to emit events and query telemetry. `record` never
//! blocks, waits or fails loudly; queries go through the supervised [`Handle`] (one retry across
//! a restart, then `unavailable`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::msg::{EventBatch, TelemetryMsg};
use crate::supervision::{ChildRegistry, Handle, HandleResult};
use crate::telemetry::{Health, TelemetryEvent, TelemetrySnapshot};

/// Most events handed to the actor per batch (a batch is recorded in one handler run, so this
/// also bounds how long the actor holds its worker thread).
const BATCH: usize = 256;
/// Query timeout.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Emits events and queries the telemetry actor registered under a name.
#[derive(Clone, Debug)]
pub struct TelemetryHandle {
    tx: mpsc::Sender<Ingest>,
    dropped: Arc<AtomicU64>,
    actor: Handle<TelemetryMsg>,
}

impl TelemetryHandle {
    /// A handle to child `name` of `registry` with an ingest channel of `capacity` (4096 in
    /// SPEC §8.1). `dropped` is the counter shared with the actor's configuration
    /// ([`TelemetryConfig::dropped`](super::TelemetryConfig)). Spawns the pump task on the
    /// current runtime; it ends when every handle clone is dropped.
    pub fn new(
        registry: &ChildRegistry,
        name: &str,
        capacity: usize,
        dropped: Arc<AtomicU64>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let actor = registry.handle::<TelemetryMsg>(name);
        tokio::spawn(pump(rx, actor.clone(), dropped.clone()));
        Self { tx, dropped, actor }
    }

    /// Emits an event: never blocks, never fails loudly. Returns whether it was accepted; a full
    /// channel drops it and counts `telemetry.dropped`.
    pub fn record(&self, event: TelemetryEvent) -> bool {
        if self.tx.try_send(Ingest::Event(event)).is_ok() {
            true
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Whether more than half of the ingest channel is taken: emitters that can yield (the tool
    /// path between calls) should, so the pump and the actor get the thread before events are
    /// dropped. Never required for correctness; `record` stays non-blocking either way.
    pub fn backlogged(&self) -> bool {
        self.tx.capacity() < self.tx.max_capacity() / 2
    }

    /// Events dropped so far (full channel or actor unavailable).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Counters, rings and health. Events recorded before this call from the same task are
    /// included once the pump delivered them; use [`TelemetryHandle::flush`] to wait for that.
    pub async fn snapshot(&self) -> HandleResult<TelemetrySnapshot> {
        self.actor
            .call(
                |reply| TelemetryMsg::Snapshot { reply },
                Some(QUERY_TIMEOUT),
            )
            .await
    }

    /// Health.
    pub async fn health(&self) -> HandleResult<Health> {
        self.actor
            .call(|reply| TelemetryMsg::Health { reply }, Some(QUERY_TIMEOUT))
            .await
    }

    /// Waits until everything accepted so far was recorded (or counted as dropped).
    pub async fn flush(&self) -> HandleResult<()> {
        let (tx, rx) = oneshot::channel();
        let unavailable = || crate::supervision::HandleError::Unavailable {
            component: self.actor.component().to_owned(),
        };
        self.tx
            .send(Ingest::Flush(tx))
            .await
            .map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())
    }

    /// Adds to a named counter.
    pub async fn add_counter(&self, name: &str, n: u64) -> HandleResult<()> {
        let name = name.to_owned();
        self.actor
            .cast(|| TelemetryMsg::AddCounter {
                name: name.clone(),
                n,
            })
            .await
    }

    /// Marks a component failing or recovered.
    pub async fn set_failing(&self, component: &str, reason: Option<&str>) -> HandleResult<()> {
        let (component, reason) = (component.to_owned(), reason.map(str::to_owned));
        self.actor
            .cast(|| TelemetryMsg::SetFailing {
                component: component.clone(),
                reason: reason.clone(),
            })
            .await
    }
}

/// What travels through the ingest channel.
#[derive(Debug)]
enum Ingest {
    Event(TelemetryEvent),
    /// Answered once every earlier event was handed to the actor and recorded.
    Flush(oneshot::Sender<()>),
}

async fn pump(
    mut rx: mpsc::Receiver<Ingest>,
    actor: Handle<TelemetryMsg>,
    dropped: Arc<AtomicU64>,
) {
    let mut next = rx.recv().await;
    while let Some(item) = next.take() {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let mut item = Some(item);
        while let Some(it) = item.take() {
            match it {
                Ingest::Event(ev) => batch.push(ev),
                Ingest::Flush(done) => flushes.push(done),
            }
            if batch.len() < BATCH && flushes.is_empty() {
                item = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let batch = EventBatch::new(batch);
            let sent = actor
                .call(
                    |reply| TelemetryMsg::RecordBatch {
                        events: batch.clone(),
                        reply,
                    },
                    Some(QUERY_TIMEOUT),
                )
                .await;
            if sent.is_err() {
                // What no actor took is lost (an actor that took the batch recorded it, or died
                // recording it: that loss is not countable here).
                dropped.fetch_add(batch.take().len() as u64, Ordering::Relaxed);
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
        next = rx.recv().await;
    }
}

/// A supervisor observer that reports restarts to telemetry: `runtime.actor_restarted` and
/// `runtime.restart_intensity_exceeded` (payload `{supervisor, actor, reason, restart_count,
/// window_ms[, action]}`, `action` ∈ `escalated | child_stopped`; the runtime maps these to
/// `project_failed | conversation_failed`, it knows which supervisor is which). Never blocks.
pub fn supervision_observer(telemetry: TelemetryHandle) -> crate::supervision::SupervisorObserver {
    use crate::supervision::SupervisorEvent;
    use crate::telemetry::EventName;
    Arc::new(move |event: &SupervisorEvent| {
        let (name, mut payload) = match event {
            SupervisorEvent::ChildRestarted { .. } => {
                (EventName::ActorRestarted, serde_json::to_value(event))
            }
            SupervisorEvent::IntensityExceeded { .. } => (
                EventName::RestartIntensityExceeded,
                serde_json::to_value(event),
            ),
            SupervisorEvent::ChildRemoved { .. } => return,
        };
        if let Ok(serde_json::Value::Object(obj)) = payload.as_mut() {
            obj.remove("kind");
        }
        telemetry.record(TelemetryEvent::new(name, payload.unwrap_or_default()));
    })
}
