//! Alert routing (SPEC §8.5): which events become alerts, at what severity, to which sinks;
//! dedupe and rate limits; and delivery that can never block the caller.
//!
//! Shape: [`AlertRouter::spawn`] starts one router task and one task per sink. The caller (the
//! telemetry actor) hands alerts over with [`AlertRouter::submit`], a `try_send` into the
//! router's bounded queue — full means dropped and counted, never waiting. The router task
//! de-duplicates per (event, project) within the dedupe window (repeats are suppressed and
//! counted; when a window closes with repeats, one summary alert carries `suppressed_count`),
//! matches routes, and `try_send`s into each sink's bounded queue (256; newest dropped and counted
//! when full). Each sink task enforces the per-sink rate limit (60 per minute; excess dropped and
//! counted) and delivers under a timeout, catching panics: a slow, hanging or panicking sink only
//! ever costs its own queue. Built-in sinks: [`ChannelSink`] and [`LogSink`]; webhook and exec
//! sinks come with the runtime.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::event::{DEFAULT_CRITICAL_EVENTS, EventName, RecordedEvent, Severity};
use crate::ids::{AlertId, ConversationId, CorrelationId, ProjectId};

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `alert-` + ULID.
    pub alert_id: AlertId,
    /// The event name.
    pub event: String,
    /// `warning` or `critical`.
    pub severity: Severity,
    /// Project.
    pub project_id: ProjectId,
    /// Conversation.
    pub conversation_id: Option<ConversationId>,
    /// Correlation.
    pub correlation_id: Option<CorrelationId>,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The redacted event payload.
    pub payload: Value,
    /// Repeats suppressed in the dedupe window (summary alerts only).
    pub suppressed_count: u64,
}

/// A sink failed to deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum AlertError {
    /// The sink reported a failure (peer at fault).
    #[error("alert sink `{sink}` failed: {message}")]
    DeliveryFailed {
        /// Sink name.
        sink: String,
        /// What went wrong.
        message: String,
    },
    /// The sink did not finish within the delivery timeout.
    #[error("alert sink `{sink}` timed out")]
    Timeout {
        /// Sink name.
        sink: String,
    },
    /// The sink panicked.
    #[error("alert sink `{sink}` panicked")]
    Panicked {
        /// Sink name.
        sink: String,
    },
}

impl AlertError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::DeliveryFailed { .. } => "alert_delivery_failed",
            Self::Timeout { .. } => "alert_timeout",
            Self::Panicked { .. } => "alert_sink_panicked",
        }
    }
}

/// Bad alert configuration (caller or config at fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum AlertConfigError {
    /// A route names a sink that is not registered.
    #[error("alert route names unknown sink `{name}`")]
    UnknownSink {
        /// The name.
        name: String,
    },
    /// Two sinks share a name.
    #[error("alert sink `{name}` is registered twice")]
    DuplicateSink {
        /// The name.
        name: String,
    },
}

impl AlertConfigError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSink { .. } => "unknown_sink",
            Self::DuplicateSink { .. } => "duplicate_sink",
        }
    }
}

/// Where alerts go.
pub trait AlertSink: Send + Sync {
    /// Unique name referenced by routes.
    fn name(&self) -> &str;
    /// Delivers one alert.
    fn deliver<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), AlertError>>;
}

/// A route: events (names or `*` patterns) at or above `min_severity` go to `sinks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRoute {
    /// Event names or patterns (`*` matches any run of characters).
    pub events: Vec<String>,
    /// Lowest severity routed.
    pub min_severity: Severity,
    /// Sink names.
    pub sinks: Vec<String>,
}

/// Router configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertConfig {
    /// Patterns alerted as critical (engine `alert_events`; default: sandbox violation, repeated
    /// timeouts, restart intensity exceeded).
    pub critical_events: Vec<String>,
    /// Patterns alerted as warning (the project's `alert_events`).
    pub warning_events: Vec<String>,
    /// Routes; with none, everything goes to `log`.
    pub routes: Vec<AlertRoute>,
    /// Dedupe window per (event, project), ms (60 000).
    pub dedupe_window_ms: u64,
    /// Deliveries per sink per minute (60).
    pub sink_rate_per_minute: u32,
    /// Router queue bound (1024).
    pub router_queue: usize,
    /// Per-sink queue bound (256).
    pub sink_queue: usize,
    /// Delivery timeout, ms (5000).
    pub delivery_timeout_ms: u64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            critical_events: DEFAULT_CRITICAL_EVENTS
                .iter()
                .map(|e| e.as_str().to_owned())
                .collect(),
            warning_events: Vec::new(),
            routes: Vec::new(),
            dedupe_window_ms: 60_000,
            sink_rate_per_minute: 60,
            router_queue: 1024,
            sink_queue: 256,
            delivery_timeout_ms: 5000,
        }
    }
}

impl AlertConfig {
    /// The alert severity of an event, or `None` when it is not an escalation event.
    pub fn severity_of(&self, event: &str) -> Option<Severity> {
        if self
            .critical_events
            .iter()
            .any(|p| pattern_matches(p, event))
        {
            Some(Severity::Critical)
        } else if self
            .warning_events
            .iter()
            .any(|p| pattern_matches(p, event))
        {
            Some(Severity::Warning)
        } else {
            None
        }
    }
}

/// `*` matches any run of characters (including dots); everything else is literal.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == name;
    };
    if parts.len() == 1 {
        return pattern == name;
    }
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Alert counters, shared by the router, the sink tasks and snapshot readers.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// Delivered.
    pub sent: AtomicU64,
    /// Suppressed as repeats.
    pub suppressed: AtomicU64,
    /// Dropped: queue full or rate limit.
    pub dropped: AtomicU64,
    /// Sink errors, timeouts and panics.
    pub failed: AtomicU64,
    /// Time of the last alert routed (0 = none).
    pub last_alert_at_ms: AtomicI64,
}

impl AlertStats {
    /// `(sent, suppressed, dropped, failed)`.
    pub fn totals(&self) -> (u64, u64, u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.suppressed.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// Handle to the running router: cheap to clone, `submit` never waits.
#[derive(Clone)]
pub struct AlertRouter {
    tx: mpsc::Sender<Alert>,
    config: Arc<AlertConfig>,
    // `config.severity_of` per catalogue event (by `EventName::index`), computed once.
    severities: Arc<[Option<Severity>]>,
    stats: Arc<AlertStats>,
}

impl std::fmt::Debug for AlertRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertRouter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AlertRouter {
    /// Starts the router and sink tasks on the current tokio runtime. A [`LogSink`] named `log`
    /// is added unless a sink of that name is given. The tasks end when every router handle is
    /// dropped. Fails with `duplicate_sink` / `unknown_sink` before starting anything.
    pub fn spawn(
        config: AlertConfig,
        sinks: Vec<Arc<dyn AlertSink>>,
    ) -> Result<Self, AlertConfigError> {
        let mut names: Vec<&str> = vec![];
        for sink in &sinks {
            if names.contains(&sink.name()) {
                return Err(AlertConfigError::DuplicateSink {
                    name: sink.name().to_owned(),
                });
            }
            names.push(sink.name());
        }
        for route in &config.routes {
            for name in &route.sinks {
                if name != "log" && !names.contains(&name.as_str()) {
                    return Err(AlertConfigError::UnknownSink { name: name.clone() });
                }
            }
        }
        let stats = Arc::new(AlertStats::default());
        let config = Arc::new(config);
        let mut workers = HashMap::new();
        let has_log = sinks.iter().any(|s| s.name() == "log");
        let all = sinks
            .into_iter()
            .chain((!has_log).then(|| Arc::new(LogSink) as Arc<dyn AlertSink>));
        for sink in all {
            let (tx, rx) = mpsc::channel(config.sink_queue.max(1));
            workers.insert(sink.name().to_owned(), tx);
            tokio::spawn(sink_task(sink, rx, config.clone(), stats.clone()));
        }
        let (tx, rx) = mpsc::channel(config.router_queue.max(1));
        tokio::spawn(router_task(rx, workers, config.clone(), stats.clone()));
        let severities = EventName::ALL
            .iter()
            .map(|e| config.severity_of(e.as_str()))
            .collect();
        Ok(Self {
            tx,
            config,
            severities,
            stats,
        })
    }

    /// The statistics.
    pub fn stats(&self) -> &Arc<AlertStats> {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// Whether `event` is an escalation event (so [`consider`](Self::consider) would alert).
    pub fn wants(&self, event: EventName) -> bool {
        self.severities
            .get(event.index())
            .copied()
            .flatten()
            .is_some()
    }

    /// Turns a recorded (already redacted) event into an alert if it is an escalation event and
    /// submits it. Returns whether an alert was submitted.
    pub fn consider(&self, ev: &RecordedEvent) -> bool {
        let Some(severity) = self.severities.get(ev.event.index()).copied().flatten() else {
            return false;
        };
        self.submit(Alert {
            alert_id: AlertId::generate(),
            event: ev.event.as_str().to_owned(),
            severity,
            project_id: ev.project_id.clone(),
            conversation_id: ev.conversation_id.clone(),
            correlation_id: ev.correlation_id.clone(),
            at_ms: ev.at_ms,
            payload: ev.payload.json().clone(),
            suppressed_count: 0,
        })
    }

    /// Hands an alert to the router without waiting; a full queue drops it (counted).
    pub fn submit(&self, alert: Alert) -> bool {
        self.stats
            .last_alert_at_ms
            .store(alert.at_ms, Ordering::Relaxed);
        if self.tx.try_send(alert).is_ok() {
            true
        } else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

struct DedupeEntry {
    opened: Instant,
    suppressed: u64,
    last: Alert,
}

async fn router_task(
    mut rx: mpsc::Receiver<Alert>,
    sinks: HashMap<String, mpsc::Sender<Alert>>,
    config: Arc<AlertConfig>,
    stats: Arc<AlertStats>,
) {
    let window = Duration::from_millis(config.dedupe_window_ms);
    let mut windows: HashMap<(String, String), DedupeEntry> = HashMap::new();
    loop {
        let next_close = windows.values().map(|e| e.opened + window).min();
        tokio::select! {
            msg = rx.recv() => {
                let Some(alert) = msg else { break };
                let now = Instant::now();
                let key = (alert.event.clone(), alert.project_id.to_string());
                match windows.get_mut(&key) {
                    Some(entry) if now.saturating_duration_since(entry.opened) < window => {
                        entry.suppressed += 1;
                        entry.last = alert;
                        stats.suppressed.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        windows.insert(key, DedupeEntry { opened: now, suppressed: 0, last: alert.clone() });
                        dispatch(&config, &sinks, &stats, alert);
                    }
                }
            }
            () = sleep_until_opt(next_close) => {
                let now = Instant::now();
                let closed: Vec<_> = windows
                    .iter()
                    .filter(|(_, e)| now.saturating_duration_since(e.opened) >= window)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in closed {
                    if let Some(entry) = windows.remove(&key)
                        && entry.suppressed > 0
                    {
                        let mut summary = entry.last;
                        summary.alert_id = AlertId::generate();
                        summary.suppressed_count = entry.suppressed;
                        dispatch(&config, &sinks, &stats, summary);
                    }
                }
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn dispatch(
    config: &AlertConfig,
    sinks: &HashMap<String, mpsc::Sender<Alert>>,
    stats: &AlertStats,
    alert: Alert,
) {
    let mut targets: Vec<&str> = Vec::new();
    if config.routes.is_empty() {
        targets.push("log");
    }
    for route in &config.routes {
        if alert.severity >= route.min_severity
            && route
                .events
                .iter()
                .any(|p| pattern_matches(p, &alert.event))
        {
            for s in &route.sinks {
                if !targets.contains(&s.as_str()) {
                    targets.push(s);
                }
            }
        }
    }
    for name in targets {
        match sinks.get(name) {
            Some(tx) if tx.try_send(alert.clone()).is_ok() => {}
            _ => {
                // full queue (newest dropped) or unknown sink
                stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn sink_task(
    sink: Arc<dyn AlertSink>,
    mut rx: mpsc::Receiver<Alert>,
    config: Arc<AlertConfig>,
    stats: Arc<AlertStats>,
) {
    let timeout = Duration::from_millis(config.delivery_timeout_ms);
    let per_minute = usize::try_from(config.sink_rate_per_minute).unwrap_or(usize::MAX);
    let mut recent: VecDeque<Instant> = VecDeque::new();
    while let Some(alert) = rx.recv().await {
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(60))
        {
            recent.pop_front();
        }
        if recent.len() >= per_minute {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        recent.push_back(now);
        // `deliver` itself may panic before returning its future: catch both.
        let delivery = AssertUnwindSafe(async { sink.deliver(&alert).await }).catch_unwind();
        let outcome = match tokio::time::timeout(timeout, delivery).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_panic)) => Err(AlertError::Panicked {
                sink: sink.name().to_owned(),
            }),
            Err(_elapsed) => Err(AlertError::Timeout {
                sink: sink.name().to_owned(),
            }),
        };
        match outcome {
            Ok(()) => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "codeward::alert", code = e.code(), "{e}");
            }
        }
    }
}

/// Feeds alerts into an in-process `tokio::sync::mpsc` receiver.
#[derive(Debug, Clone)]
pub struct ChannelSink {
    name: String,
    tx: mpsc::Sender<Alert>,
}

impl ChannelSink {
    /// A sink named `name` and its receiver (bounded by `capacity`, default 256 in config).
    pub fn new(name: impl Into<String>, capacity: usize) -> (Self, mpsc::Receiver<Alert>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                name: name.into(),
                tx,
            },
            rx,
        )
    }
}

impl AlertSink for ChannelSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), AlertError>> {
        Box::pin(async move {
            self.tx
                .send(alert.clone())
                .await
                .map_err(|_| AlertError::DeliveryFailed {
                    sink: self.name.clone(),
                    message: "receiver dropped".into(),
                })
        })
    }
}

/// Logs alerts through `tracing` at target `codeward::alert` (ERROR for critical, WARN
/// otherwise).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSink;

impl AlertSink for LogSink {
    fn name(&self) -> &str {
        "log"
    }

    fn deliver<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), AlertError>> {
        Box::pin(async move {
            let payload = alert.payload.to_string();
            if alert.severity >= Severity::Critical {
                tracing::error!(target: "codeward::alert", event = %alert.event, project = %alert.project_id,
                    suppressed = alert.suppressed_count, %payload, "alert");
            } else {
                tracing::warn!(target: "codeward::alert", event = %alert.event, project = %alert.project_id,
                    suppressed = alert.suppressed_count, %payload, "alert");
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("security.*", "security.env_denied"));
        assert!(pattern_matches("*", "anything"));
        assert!(!pattern_matches("*.failed", "journal.write_failed"));
        assert!(pattern_matches("*_failed", "journal.write_failed"));
        assert!(pattern_matches("a*b*c", "axxbyyc"));
        assert!(!pattern_matches("a*b*c", "axxc"));
        assert!(pattern_matches("policy.denied", "policy.denied"));
        assert!(!pattern_matches("policy.denied", "policy.denied2"));
        assert!(!pattern_matches("ab*ba", "aba"));
    }

    #[tokio::test]
    async fn unknown_and_duplicate_sinks_are_refused() {
        let route = AlertRoute {
            events: vec!["*".into()],
            min_severity: Severity::Warning,
            sinks: vec!["nope".into()],
        };
        let cfg = AlertConfig {
            routes: vec![route],
            ..AlertConfig::default()
        };
        assert_eq!(
            AlertRouter::spawn(cfg, vec![]).unwrap_err().code(),
            "unknown_sink"
        );
        let (a, _ra) = ChannelSink::new("a", 1);
        let (b, _rb) = ChannelSink::new("a", 1);
        let err =
            AlertRouter::spawn(AlertConfig::default(), vec![Arc::new(a), Arc::new(b)]).unwrap_err();
        assert_eq!(err.code(), "duplicate_sink");
    }

    #[test]
    fn severity_config() {
        let c = AlertConfig {
            warning_events: vec!["policy.*".into(), "security.sandbox_violation".into()],
            ..AlertConfig::default()
        };
        assert_eq!(
            c.severity_of("security.sandbox_violation"),
            Some(Severity::Critical)
        );
        assert_eq!(c.severity_of("policy.denied"), Some(Severity::Warning));
        assert_eq!(c.severity_of("project.started"), None);
    }
}
