//! The telemetry actor: `handle` dispatches; the functions below record, snapshot and log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;

use super::msg::{EventBatch, TelemetryMsg};
use crate::ids::ProjectId;
use crate::supervision::{ChildSpec, RestartPolicy};
use crate::telemetry::{
    AlertRouter, EventName, RecordedEvent, Redactor, Severity, Stored, TelemetrySnapshot,
    TelemetryStore,
};

/// The engine-owned store, shared across actor restarts.
pub type SharedStore = Arc<Mutex<TelemetryStore>>;

/// Wall-clock milliseconds since the Unix epoch (the runtime plugs in its `Clock`).
pub type WallClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Called for every recorded event after it is stored (the runtime's journal batcher).
pub type RecordObserver = Arc<dyn Fn(&RecordedEvent) + Send + Sync>;

/// Which events the observer wants, by name and whether the event belongs to a conversation
/// (records are only built for wanted events).
pub type ObserveFilter = Arc<dyn Fn(EventName, bool) -> bool + Send + Sync>;

/// Configuration of a telemetry actor.
#[derive(Clone)]
pub struct TelemetryConfig {
    /// Applied to every payload before it is stored or routed.
    pub redactor: Redactor,
    /// Alert routing, if any.
    pub router: Option<AlertRouter>,
    /// Wall clock for `at_ms`.
    pub clock: WallClock,
    /// Optional observer of recorded events.
    pub observer: Option<RecordObserver>,
    /// Restricts the observer to some events (`None` = all).
    pub observe_filter: Option<ObserveFilter>,
    /// Shared with the handles: events dropped at the ingest channel.
    pub dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for TelemetryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryConfig")
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl TelemetryConfig {
    /// System wall clock, no router, no observer.
    pub fn new(redactor: Redactor) -> Self {
        Self {
            redactor,
            router: None,
            clock: Arc::new(system_now_ms),
            observer: None,
            observe_filter: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// With an alert router.
    pub fn with_router(mut self, router: AlertRouter) -> Self {
        self.router = Some(router);
        self
    }

    /// With a wall clock.
    pub fn with_clock(mut self, clock: WallClock) -> Self {
        self.clock = clock;
        self
    }

    /// With an observer.
    pub fn with_observer(mut self, observer: RecordObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// With a filter on what the observer sees.
    pub fn with_observe_filter(mut self, filter: ObserveFilter) -> Self {
        self.observe_filter = Some(filter);
        self
    }

    fn observes(&self, event: EventName, in_conversation: bool) -> bool {
        self.observer.is_some()
            && self
                .observe_filter
                .as_ref()
                .is_none_or(|f| f(event, in_conversation))
    }
}

fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The telemetry actor (`self` is its configuration).
#[derive(Debug, Clone)]
pub struct TelemetryActor {
    config: TelemetryConfig,
}

impl TelemetryActor {
    /// An actor with this configuration.
    pub fn new(config: TelemetryConfig) -> Self {
        Self { config }
    }

    /// The child spec: permanent, rebuilt from `store` on every restart.
    pub fn child_spec(name: &str, config: TelemetryConfig, store: SharedStore) -> ChildSpec {
        ChildSpec::actor(name, RestartPolicy::Permanent, move || {
            (TelemetryActor::new(config.clone()), store.clone())
        })
    }
}

fn lock(store: &SharedStore) -> MutexGuard<'_, TelemetryStore> {
    // A panic while holding the lock cannot leave the store half-updated in a way that matters
    // more than losing telemetry; keep serving.
    store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Actor for TelemetryActor {
    type Msg = TelemetryMsg;
    type State = SharedStore;
    type Arguments = SharedStore;

    async fn pre_start(
        &self,
        _myself: ActorRef<TelemetryMsg>,
        store: SharedStore,
    ) -> Result<SharedStore, ActorProcessingErr> {
        Ok(store)
    }

    async fn handle(
        &self,
        _myself: ActorRef<TelemetryMsg>,
        msg: TelemetryMsg,
        store: &mut SharedStore,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TelemetryMsg::RecordBatch { events, reply } => {
                record_batch(&self.config, store, &events);
                let _ = reply.send(());
            }
            TelemetryMsg::Snapshot { reply } => {
                let _ = reply.send(snapshot(&self.config, store));
            }
            TelemetryMsg::Health { reply } => {
                let _ = reply.send(lock(store).health(Instant::now()));
            }
            TelemetryMsg::AddCounter { name, n } => lock(store).add_counter(&name, n),
            TelemetryMsg::SetFailing { component, reason } => {
                lock(store).set_failing(&component, reason.as_deref())
            }
        }
        Ok(())
    }
}

/// Records a batch: sequences and stores it, then logs each event and hands the records the
/// observer or the alert router want to them (only those are built as [`RecordedEvent`]s).
fn record_batch(config: &TelemetryConfig, store: &SharedStore, events: &EventBatch) {
    let events = events.take();
    let now = Instant::now();
    let at_ms = (config.clock)();
    let keep = |e: EventName, in_conversation: bool| {
        config.observes(e, in_conversation) || config.router.as_ref().is_some_and(|r| r.wants(e))
    };
    let mut stored: Vec<Stored> = Vec::with_capacity(events.len());
    let project_id = {
        let mut guard = lock(store);
        for ev in events {
            guard.record_kept(ev, &config.redactor, now, at_ms, &keep, &mut stored);
        }
        guard.project_id().clone()
    };
    for s in &stored {
        log_event(s, &project_id);
        let Some(rec) = &s.record else { continue };
        if let Some(observer) = &config.observer
            && config.observes(rec.event, rec.conversation_id.is_some())
        {
            observer(rec);
        }
        if let Some(router) = &config.router {
            router.consider(rec);
        }
    }
}

fn snapshot(config: &TelemetryConfig, store: &SharedStore) -> TelemetrySnapshot {
    let mut guard = lock(store);
    guard.set_counter("telemetry.dropped", config.dropped.load(Ordering::Relaxed));
    if let Some(router) = &config.router {
        let (sent, suppressed, dropped, failed) = router.stats().totals();
        guard.set_counter("alerts.sent", sent);
        guard.set_counter("alerts.suppressed", suppressed);
        guard.set_counter("alerts.dropped", dropped);
        guard.set_counter("alerts.failed", failed);
    }
    guard.snapshot(Instant::now())
}

/// Logs at target `codeward::telemetry`: errors WARN, `security.*` INFO, others DEBUG (§8.6).
fn log_event(s: &Stored, project: &ProjectId) {
    let sev = if s.is_error {
        Severity::Error
    } else {
        s.event.severity()
    };
    let (name, seq) = (s.event.as_str(), s.seq);
    match sev {
        Severity::Error | Severity::Critical | Severity::Warning => {
            tracing::warn!(target: "codeward::telemetry", event = name, seq, project = %project, "event");
        }
        Severity::Info => {
            tracing::info!(target: "codeward::telemetry", event = name, seq, project = %project, "event");
        }
        Severity::Debug => {
            tracing::debug!(target: "codeward::telemetry", event = name, seq, project = %project, "event");
        }
    }
}
