//! Telemetry actor tests: record never waits (hanging and panicking sinks, full ingest channel),
//! drops are counted, dedupe and rate limits on paused time, health recovery, ring bounds,
//! redaction before rings and alerts, and counters surviving an actor restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::ids::ProjectId;
use crate::supervision::{
    ChildRegistry, Supervisor, SupervisorArgs, SupervisorConfig, SupervisorHandle,
};
use crate::telemetry::{
    Alert, AlertConfig, AlertError, AlertRoute, AlertRouter, AlertSink, ChannelSink, EventName,
    HealthStatus, Redactor, Severity, TelemetryActor, TelemetryConfig, TelemetryEvent,
    TelemetryHandle, TelemetryLimits, TelemetrySnapshot, TelemetryStore, no_redaction,
};

struct Hanging;
impl AlertSink for Hanging {
    fn name(&self) -> &str {
        "hanging"
    }
    fn deliver<'a>(&'a self, _: &'a Alert) -> BoxFuture<'a, Result<(), AlertError>> {
        Box::pin(std::future::pending())
    }
}

struct Panicking;
impl AlertSink for Panicking {
    fn name(&self) -> &str {
        "panicking"
    }
    fn deliver<'a>(&'a self, _: &'a Alert) -> BoxFuture<'a, Result<(), AlertError>> {
        Box::pin(async { panic!("sink exploded") })
    }
}

fn route_all(sinks: &[&str]) -> AlertRoute {
    AlertRoute {
        events: vec!["*".into()],
        min_severity: Severity::Warning,
        sinks: sinks.iter().map(|s| (*s).to_owned()).collect(),
    }
}

struct Setup {
    sup: SupervisorHandle,
    handle: TelemetryHandle,
    store: Arc<Mutex<TelemetryStore>>,
    registry: ChildRegistry,
}

async fn setup(
    name: &str,
    limits: TelemetryLimits,
    capacity: usize,
    redactor: Redactor,
    router: Option<AlertRouter>,
) -> Setup {
    let store = Arc::new(Mutex::new(TelemetryStore::new(
        ProjectId::parse("proj").unwrap(),
        limits,
        0,
    )));
    let mut config = TelemetryConfig::new(redactor).with_clock(Arc::new(|| 1_700_000_000_000));
    if let Some(r) = router {
        config = config.with_router(r);
    }
    let dropped = config.dropped.clone();
    let registry = ChildRegistry::new();
    let sup = Supervisor::start(
        SupervisorConfig::new(name),
        SupervisorArgs {
            children: vec![TelemetryActor::child_spec(
                "telemetry",
                config,
                store.clone(),
            )],
            registry: registry.clone(),
        },
    )
    .await
    .unwrap();
    let handle = TelemetryHandle::new(&registry, "telemetry", capacity, dropped);
    Setup {
        sup,
        handle,
        store,
        registry,
    }
}

/// Polls snapshots until `pred` holds (bounded by a timeout, no fixed sleeps).
async fn snapshot_until(
    h: &TelemetryHandle,
    pred: impl Fn(&TelemetrySnapshot) -> bool,
) -> TelemetrySnapshot {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let snap = h.snapshot().await.unwrap();
            if pred(&snap) {
                return snap;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("condition reached")
}

#[tokio::test]
async fn full_ingest_channel_drops_and_counts_without_waiting() {
    let s = setup(
        "tel-full",
        TelemetryLimits::default(),
        4,
        no_redaction(),
        None,
    )
    .await;
    // No await between records: the pump cannot run, so exactly `capacity` are accepted.
    assert!(!s.handle.backlogged());
    for _ in 0..2 {
        s.handle
            .record(TelemetryEvent::new(EventName::ToolStarted, json!({})));
    }
    assert!(!s.handle.backlogged(), "half taken is not yet backlogged");
    s.handle
        .record(TelemetryEvent::new(EventName::ToolStarted, json!({})));
    assert!(s.handle.backlogged());
    let accepted = 3
        + (0..97)
            .filter(|_| {
                s.handle
                    .record(TelemetryEvent::new(EventName::ToolStarted, json!({})))
            })
            .count();
    assert_eq!(accepted, 4);
    assert_eq!(s.handle.dropped(), 96);
    s.handle.flush().await.unwrap();
    let snap = s.handle.snapshot().await.unwrap();
    assert_eq!(snap.total_events, 4);
    assert_eq!(snap.counters["telemetry.dropped"], 96);
    s.sup.stop("done").await;
}

#[tokio::test]
async fn hanging_and_panicking_sinks_never_block_record_and_drops_are_counted() {
    let (chan, mut rx) = ChannelSink::new("chan", 1024);
    let cfg = AlertConfig {
        routes: vec![route_all(&["hanging", "panicking", "chan"])],
        dedupe_window_ms: 0,
        sink_rate_per_minute: 10_000,
        sink_queue: 4,
        ..AlertConfig::default()
    };
    let router = AlertRouter::spawn(
        cfg,
        vec![Arc::new(Hanging), Arc::new(Panicking), Arc::new(chan)],
    )
    .unwrap();
    let s = setup(
        "tel-sinks",
        TelemetryLimits::default(),
        4096,
        no_redaction(),
        Some(router),
    )
    .await;
    // One at a time, so the per-sink queues fill deterministically: the hanging sink holds one
    // alert in delivery forever, queues 4 and drops the rest; record itself never waits.
    for i in 0..50 {
        assert!(s.handle.record(TelemetryEvent::new(
            EventName::SandboxViolation,
            json!({ "i": i })
        )));
        s.handle.flush().await.unwrap();
        let a = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.event.as_str(), a.severity, &a.payload),
            (
                "security.sandbox_violation",
                Severity::Critical,
                &json!({ "i": i })
            )
        );
    }
    let snap = snapshot_until(&s.handle, |s| {
        s.counters["alerts.sent"] == 50 && s.counters["alerts.failed"] == 50
    })
    .await;
    // hanging: 1 in delivery + 4 queued, the other 45 dropped
    assert_eq!(snap.counters["alerts.dropped"], 45);
    assert_eq!(snap.total_events, 50);
    s.sup.stop("done").await;
}

#[tokio::test(start_paused = true)]
async fn dedupe_window_suppresses_repeats_and_sends_one_summary() {
    let (chan, mut rx) = ChannelSink::new("chan", 64);
    let cfg = AlertConfig {
        routes: vec![route_all(&["chan"])],
        ..AlertConfig::default()
    };
    let router = AlertRouter::spawn(cfg, vec![Arc::new(chan)]).unwrap();
    let s = setup(
        "tel-dedupe",
        TelemetryLimits::default(),
        4096,
        no_redaction(),
        Some(router),
    )
    .await;
    for _ in 0..5 {
        s.handle.record(TelemetryEvent::new(
            EventName::RestartIntensityExceeded,
            json!({ "actor": "x" }),
        ));
    }
    // a different event is its own window
    s.handle
        .record(TelemetryEvent::new(EventName::SandboxViolation, json!({})));
    s.handle.flush().await.unwrap();
    let first = rx.recv().await.unwrap();
    assert_eq!(
        (first.event.as_str(), first.suppressed_count),
        ("runtime.restart_intensity_exceeded", 0)
    );
    let other = rx.recv().await.unwrap();
    assert_eq!(other.event, "security.sandbox_violation");
    // nothing more until the 60 s window closes; then one summary (paused time auto-advances)
    let summary = rx.recv().await.unwrap();
    assert_eq!(
        (summary.event.as_str(), summary.suppressed_count),
        ("runtime.restart_intensity_exceeded", 4)
    );
    assert_ne!(summary.alert_id, first.alert_id);
    let snap = s.handle.snapshot().await.unwrap();
    assert_eq!(snap.counters["alerts.suppressed"], 4);
    assert!(rx.try_recv().is_err());
    s.sup.stop("done").await;
}

#[tokio::test(start_paused = true)]
async fn sink_rate_limit_drops_the_excess_per_minute() {
    let (chan, mut rx) = ChannelSink::new("chan", 64);
    let cfg = AlertConfig {
        routes: vec![route_all(&["chan"])],
        dedupe_window_ms: 0,
        sink_rate_per_minute: 3,
        ..AlertConfig::default()
    };
    let router = AlertRouter::spawn(cfg, vec![Arc::new(chan)]).unwrap();
    let s = setup(
        "tel-rate",
        TelemetryLimits::default(),
        4096,
        no_redaction(),
        Some(router),
    )
    .await;
    for _ in 0..5 {
        s.handle
            .record(TelemetryEvent::new(EventName::SandboxViolation, json!({})));
    }
    s.handle.flush().await.unwrap();
    for _ in 0..3 {
        rx.recv().await.unwrap();
    }
    let snap = snapshot_until(&s.handle, |s| s.counters["alerts.dropped"] == 2).await;
    assert_eq!(snap.counters["alerts.sent"], 3);
    // a minute later the sink accepts again
    tokio::time::advance(Duration::from_secs(61)).await;
    s.handle
        .record(TelemetryEvent::new(EventName::SandboxViolation, json!({})));
    s.handle.flush().await.unwrap();
    rx.recv().await.unwrap();
    s.sup.stop("done").await;
}

#[tokio::test]
async fn routes_respect_min_severity_and_non_escalation_events_are_not_alerted() {
    let (crit, mut crit_rx) = ChannelSink::new("crit", 16);
    let (all, mut all_rx) = ChannelSink::new("all", 16);
    let cfg = AlertConfig {
        warning_events: vec!["policy.denied".into()],
        routes: vec![
            AlertRoute {
                events: vec!["*".into()],
                min_severity: Severity::Critical,
                sinks: vec!["crit".into()],
            },
            AlertRoute {
                events: vec!["policy.*".into(), "security.*".into()],
                min_severity: Severity::Warning,
                sinks: vec!["all".into()],
            },
        ],
        ..AlertConfig::default()
    };
    let router = AlertRouter::spawn(cfg, vec![Arc::new(crit), Arc::new(all)]).unwrap();
    let s = setup(
        "tel-routes",
        TelemetryLimits::default(),
        64,
        no_redaction(),
        Some(router),
    )
    .await;
    s.handle
        .record(TelemetryEvent::new(EventName::PolicyDenied, json!({})));
    s.handle
        .record(TelemetryEvent::new(EventName::PolicyAllowed, json!({})));
    s.handle
        .record(TelemetryEvent::new(EventName::SandboxViolation, json!({})));
    s.handle.flush().await.unwrap();
    let got: Vec<String> = vec![
        all_rx.recv().await.unwrap().event,
        all_rx.recv().await.unwrap().event,
    ];
    assert_eq!(got, vec!["policy.denied", "security.sandbox_violation"]);
    assert_eq!(
        crit_rx.recv().await.unwrap().event,
        "security.sandbox_violation"
    );
    let snap = snapshot_until(&s.handle, |s| s.counters["alerts.sent"] == 3).await;
    assert_eq!(snap.counters["alerts.dropped"], 0);
    assert!(crit_rx.try_recv().is_err());
    s.sup.stop("done").await;
}

#[tokio::test]
async fn a_canary_never_reaches_rings_or_alerts() {
    const CANARY: &str = "sk-ant-CANARY0123456789abcdefghij";
    let redactor: Redactor = Arc::new(|v: &Value| {
        serde_json::from_str(&v.to_string().replace(CANARY, "[REDACTED]")).unwrap()
    });
    let (chan, mut rx) = ChannelSink::new("chan", 16);
    let router = AlertRouter::spawn(
        AlertConfig {
            routes: vec![route_all(&["chan"])],
            ..AlertConfig::default()
        },
        vec![Arc::new(chan)],
    )
    .unwrap();
    let s = setup(
        "tel-canary",
        TelemetryLimits::default(),
        64,
        redactor,
        Some(router),
    )
    .await;
    let payload =
        json!({ "error": format!("key {CANARY}"), "reason": CANARY, "nested": [{ "k": CANARY }] });
    // The envelope too: caller-given ids and tool names go through the redactor.
    s.handle.record(
        TelemetryEvent::new(EventName::SandboxViolation, payload.clone())
            .correlation(crate::ids::CorrelationId::parse(&format!("c-{CANARY}")).unwrap())
            .conversation(crate::ids::ConversationId::parse(&format!("conv-{CANARY}")).unwrap())
            .tool(format!("t-{CANARY}")),
    );
    s.handle
        .record(TelemetryEvent::new(EventName::PolicyDenied, payload));
    s.handle.flush().await.unwrap();
    let alert = rx.recv().await.unwrap();
    assert!(!serde_json::to_string(&alert).unwrap().contains(CANARY));
    assert!(
        serde_json::to_string(&alert)
            .unwrap()
            .contains("[REDACTED]")
    );
    let snap = s.handle.snapshot().await.unwrap();
    let text = serde_json::to_string(&snap).unwrap();
    assert!(!text.contains(CANARY), "{text}");
    assert_eq!(
        snap.recent_events[1]
            .correlation_id
            .as_ref()
            .map(|c| c.as_str()),
        Some("c-[REDACTED]")
    );
    assert_eq!(snap.recent_events[1].tool.as_deref(), Some("t-[REDACTED]"));
    assert_eq!(
        snap.recent_events[1].conversation_id, None,
        "a conversation id cannot hold `[REDACTED]`"
    );
    assert_eq!(snap.recent_errors.len(), 2, "both payloads carry `error`");
    assert_eq!(snap.recent_decisions.len(), 1);
    s.sup.stop("done").await;
}

#[tokio::test(start_paused = true)]
async fn health_recovers_after_the_window_and_rings_are_bounded() {
    let limits = TelemetryLimits {
        recent_events: 5,
        recent_errors: 2,
        health_error_window_ms: 300_000,
        ..TelemetryLimits::default()
    };
    let s = setup("tel-health", limits, 64, no_redaction(), None).await;
    for _ in 0..10 {
        s.handle.record(TelemetryEvent::new(
            EventName::ToolFailed,
            json!({ "reason": "tool_failed" }),
        ));
    }
    s.handle.flush().await.unwrap();
    let snap = s.handle.snapshot().await.unwrap();
    assert_eq!((snap.recent_events.len(), snap.recent_errors.len()), (5, 2));
    assert_eq!(
        (
            snap.ring_overflows["recent_events"],
            snap.ring_overflows["recent_errors"]
        ),
        (5, 8)
    );
    assert_eq!(snap.health.status, HealthStatus::Degraded);
    tokio::time::advance(Duration::from_secs(301)).await;
    assert_eq!(s.handle.health().await.unwrap().status, HealthStatus::Ok);
    s.handle
        .set_failing("journal", Some("write failed"))
        .await
        .unwrap();
    assert_eq!(
        s.handle.health().await.unwrap().status,
        HealthStatus::Failing
    );
    s.sup.stop("done").await;
}

#[tokio::test]
async fn counters_and_seq_survive_an_actor_restart() {
    let s = setup(
        "tel-restart",
        TelemetryLimits::default(),
        64,
        no_redaction(),
        None,
    )
    .await;
    s.handle
        .record(TelemetryEvent::new(EventName::ProjectStarted, json!({})));
    s.handle.flush().await.unwrap();
    let actor = s
        .registry
        .handle::<crate::telemetry::TelemetryMsg>("telemetry");
    let generation = actor.generation();
    actor.current_cell().expect("running").kill();
    actor
        .clone()
        .with_retry_wait(Duration::from_secs(10))
        .wait_ready_after(generation)
        .await
        .unwrap();
    s.handle
        .record(TelemetryEvent::new(EventName::ProjectStopped, json!({})));
    s.handle.flush().await.unwrap();
    let snap = s.handle.snapshot().await.unwrap();
    assert_eq!((snap.last_seq, snap.total_events), (2, 2));
    assert_eq!(
        s.store
            .lock()
            .unwrap()
            .snapshot(tokio::time::Instant::now())
            .last_seq,
        2
    );
    s.sup.stop("done").await;
}

#[tokio::test]
async fn supervisor_restarts_are_reported_as_runtime_events() {
    use crate::supervision::{ChildSpec, RestartPolicy};
    use crate::telemetry::supervision_observer;

    struct Fragile;
    impl ractor::Actor for Fragile {
        type Msg = ();
        type State = ();
        type Arguments = ();
        async fn pre_start(
            &self,
            _: ractor::ActorRef<()>,
            _: (),
        ) -> Result<(), ractor::ActorProcessingErr> {
            Ok(())
        }
        async fn handle(
            &self,
            _: ractor::ActorRef<()>,
            _: (),
            _: &mut (),
        ) -> Result<(), ractor::ActorProcessingErr> {
            Err("fragile failed".into())
        }
    }

    let s = setup(
        "tel-observer",
        TelemetryLimits::default(),
        64,
        no_redaction(),
        None,
    )
    .await;
    let registry = ChildRegistry::new();
    let observed = Supervisor::start(
        SupervisorConfig::new("observed").with_observer(supervision_observer(s.handle.clone())),
        SupervisorArgs {
            children: vec![ChildSpec::actor(
                "fragile",
                RestartPolicy::Permanent,
                || (Fragile, ()),
            )],
            registry: registry.clone(),
        },
    )
    .await
    .unwrap();
    let fragile = registry.handle::<()>("fragile");
    fragile.try_cast(()).unwrap();
    fragile
        .clone()
        .with_retry_wait(Duration::from_secs(10))
        .wait_ready_after(1)
        .await
        .unwrap();
    s.handle.flush().await.unwrap();
    let snap = s.handle.snapshot().await.unwrap();
    assert_eq!(snap.event_counts.get("runtime.actor_restarted"), Some(&1));
    let entry = &snap.recent_errors[0];
    assert_eq!(entry.event, EventName::ActorRestarted);
    assert_eq!(entry.reason.as_deref(), Some("fragile failed"));
    assert_eq!(snap.health.status, HealthStatus::Degraded);
    observed.stop("done").await;
    s.sup.stop("done").await;
}

#[tokio::test]
async fn events_for_an_unavailable_actor_are_dropped_and_counted() {
    let s = setup(
        "tel-gone",
        TelemetryLimits::default(),
        64,
        no_redaction(),
        None,
    )
    .await;
    s.sup.stop("done").await;
    assert!(
        s.handle
            .record(TelemetryEvent::new(EventName::ProjectStopped, json!({})))
    );
    s.handle.flush().await.unwrap();
    assert_eq!(s.handle.dropped(), 1);
    assert!(matches!(
        s.handle.snapshot().await,
        Err(crate::supervision::HandleError::Unavailable { .. })
    ));
}
