//! `TelemetryStore`: counters, bounded rings, the per-project telemetry seq, health and the
//! repeated-timeout rule (SPEC §8.3–8.4). Pure: instants (tokio monotonic) and wall-clock
//! milliseconds are passed in. The store is engine-owned so it survives actor restarts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::event::{EventName, RecordedEvent, TelemetryEvent, is_error_event};
use super::payload::{EventPayload, Payload};
use crate::ids::{ConversationId, CorrelationId, ProjectId};

/// The redaction step, applied to every payload before it is stored or routed. The runtime plugs
/// in `codeward_policies::secrets::redact`.
pub type Redactor = Arc<dyn Fn(&Value) -> Value + Send + Sync>;

/// Redacts an event's envelope (§5.9 covers rings and persisted telemetry too): a tool name or
/// correlation id that held a secret keeps its redacted form; a conversation id cannot hold
/// `[REDACTED]` (not in its alphabet) and is dropped from the envelope instead.
fn redact_ids(
    redact: &Redactor,
    conversation_id: &mut Option<ConversationId>,
    correlation_id: &mut Option<CorrelationId>,
    tool: &mut Option<String>,
) {
    let redacted = |s: &str| match redact(&Value::String(s.to_owned())) {
        Value::String(r) if r == s => None,
        Value::String(r) => Some(r),
        other => Some(other.to_string()),
    };
    if conversation_id
        .as_ref()
        .is_some_and(|c| redacted(c.as_str()).is_some())
    {
        *conversation_id = None;
    }
    if let Some(r) = correlation_id.as_ref().and_then(|c| redacted(c.as_str())) {
        *correlation_id = CorrelationId::parse(&r).ok();
    }
    if let Some(r) = tool.as_deref().and_then(redacted) {
        *tool = Some(r);
    }
}

/// A redactor that keeps values as they are (tests and tools that redact upstream).
pub fn no_redaction() -> Redactor {
    Arc::new(|v: &Value| v.clone())
}

/// Counter names of SPEC §8.3, reported even when zero.
pub const COUNTER_NAMES: &[&str] = &[
    "tool.calls",
    "tool.completed",
    "tool.failed",
    "tool.timeouts",
    "tool.cancelled",
    "tool.child_processes_terminated",
    "policy.allowed",
    "policy.denied",
    "alerts.sent",
    "alerts.suppressed",
    "alerts.dropped",
    "alerts.failed",
    "telemetry.dropped",
    "conversation.late_results_discarded",
    "subscribers.lagged",
    "journal.appends",
];

/// Ring sizes and windows (options `telemetry_recent_events`, `telemetry_recent_errors`,
/// `policy_recent_decisions`, `health_error_window_ms`, `tool_timeout_alert_threshold`,
/// `tool_timeout_alert_window_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelemetryLimits {
    /// Recent events ring (200).
    pub recent_events: usize,
    /// Recent errors ring (25).
    pub recent_errors: usize,
    /// Recent policy decisions ring (200).
    pub recent_decisions: usize,
    /// Health error window in ms (300 000).
    pub health_error_window_ms: u64,
    /// Timeouts per tool that trigger `security.repeated_timeout_failures` (3).
    pub timeout_alert_threshold: u32,
    /// Their window in ms (600 000).
    pub timeout_alert_window_ms: u64,
}

impl Default for TelemetryLimits {
    fn default() -> Self {
        Self {
            recent_events: 200,
            recent_errors: 25,
            recent_decisions: 200,
            health_error_window_ms: 300_000,
            timeout_alert_threshold: 3,
            timeout_alert_window_ms: 600_000,
        }
    }
}

/// A bounded ring; the oldest entry goes first and is counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ring<T> {
    capacity: usize,
    // INVARIANT: items.len() <= capacity (and capacity >= 1).
    items: VecDeque<T>,
    overflowed: u64,
}

impl<T: Clone> Ring<T> {
    /// An empty ring (capacity at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            items: VecDeque::new(),
            overflowed: 0,
        }
    }

    /// Adds an entry, dropping (and counting) the oldest when full.
    pub fn push(&mut self, item: T) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
            self.overflowed += 1;
        }
        self.items.push_back(item);
    }

    /// Entries, newest first.
    pub fn newest_first(&self) -> Vec<T> {
        self.iter_newest_first().cloned().collect()
    }

    /// Entries, newest first, borrowed.
    pub fn iter_newest_first(&self) -> impl Iterator<Item = &T> {
        self.items.iter().rev()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries dropped because the ring was full.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }
}

/// A ring entry of `recent_events` / `recent_errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingEntry {
    /// Telemetry seq.
    pub seq: u64,
    /// Event name.
    pub event: EventName,
    /// Time.
    pub at_ms: i64,
    /// Conversation.
    pub conversation_id: Option<ConversationId>,
    /// Correlation.
    pub correlation_id: Option<CorrelationId>,
    /// Tool.
    pub tool: Option<String>,
    /// `payload.reason`, if a string.
    pub reason: Option<String>,
    /// `payload.error` rendered as text, if present.
    pub error: Option<String>,
}

/// Health status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Fine.
    Ok,
    /// An error happened within the window.
    Degraded,
    /// A component exceeded its intensity, the journal cannot be written, or quarantined.
    Failing,
}

/// Health report (the `health` block of diagnostics, §9.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Status.
    pub status: HealthStatus,
    /// Error events within the window.
    pub error_count: usize,
    /// Time of the last error event.
    pub last_error_at_ms: Option<i64>,
    /// The window.
    pub window_ms: u64,
    /// Components currently failing, with reasons (sorted by component).
    pub failing: BTreeMap<String, String>,
}

/// Everything a snapshot query returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetrySnapshot {
    /// Project.
    pub project_id: ProjectId,
    /// Last telemetry seq assigned.
    pub last_seq: u64,
    /// Events recorded.
    pub total_events: u64,
    /// Per event name.
    pub event_counts: BTreeMap<String, u64>,
    /// Named counters (§8.3).
    pub counters: BTreeMap<String, u64>,
    /// Newest first.
    pub recent_events: Vec<RingEntry>,
    /// Newest first.
    pub recent_errors: Vec<RingEntry>,
    /// Decision records, newest first.
    pub recent_decisions: Vec<Value>,
    /// Entries each ring dropped for space: events, errors, decisions.
    pub ring_overflows: BTreeMap<String, u64>,
    /// Health.
    pub health: Health,
}

/// An event on its way into the store (the fields of a [`RecordedEvent`] but its seq and
/// project).
struct Incoming {
    event: EventName,
    at_ms: i64,
    conversation_id: Option<ConversationId>,
    correlation_id: Option<CorrelationId>,
    tool: Option<String>,
    payload: Payload,
}

/// What recording one event produced (see [`TelemetryStore::record_kept`]).
#[derive(Debug)]
pub struct Stored {
    /// Its telemetry seq.
    pub seq: u64,
    /// Which event.
    pub event: EventName,
    /// Whether it is an error event (§8.3).
    pub is_error: bool,
    /// The record, when it was asked for.
    pub record: Option<RecordedEvent>,
}

#[derive(Debug, Clone, Default)]
struct TimeoutTrack {
    // INVARIANT: ascending instants, pruned to the window at every timeout.
    instants: VecDeque<Instant>,
    armed: bool,
}

/// Counters, rings, seq, health and timeout windows of one project.
#[derive(Debug, Clone)]
pub struct TelemetryStore {
    project_id: ProjectId,
    limits: TelemetryLimits,
    seq: u64,
    total_events: u64,
    // INVARIANT: one slot per catalogue event, indexed by `EventName::index`.
    event_counts: Vec<u64>,
    counters: BTreeMap<String, u64>,
    recent_events: Ring<RingEntry>,
    recent_errors: Ring<RingEntry>,
    // Decision records as recorded (lazy ones render on snapshot).
    recent_decisions: Ring<Payload>,
    error_instants: VecDeque<Instant>,
    last_error_at_ms: Option<i64>,
    failing: BTreeMap<String, String>,
    timeouts: HashMap<String, TimeoutTrack>,
}

impl TelemetryStore {
    /// An empty store whose seq continues after `start_seq` (the journal maximum).
    pub fn new(project_id: ProjectId, limits: TelemetryLimits, start_seq: u64) -> Self {
        Self {
            project_id,
            limits,
            seq: start_seq,
            total_events: 0,
            event_counts: vec![0; EventName::COUNT],
            counters: COUNTER_NAMES.iter().map(|n| ((*n).to_owned(), 0)).collect(),
            recent_events: Ring::new(limits.recent_events),
            recent_errors: Ring::new(limits.recent_errors),
            recent_decisions: Ring::new(limits.recent_decisions),
            error_instants: VecDeque::new(),
            last_error_at_ms: None,
            failing: BTreeMap::new(),
            timeouts: HashMap::new(),
        }
    }

    /// The project.
    pub fn project_id(&self) -> &ProjectId {
        &self.project_id
    }

    /// The limits in force.
    pub fn limits(&self) -> TelemetryLimits {
        self.limits
    }

    /// Adds `n` to a named counter.
    pub fn add_counter(&mut self, name: &str, n: u64) {
        match self.counters.get_mut(name) {
            Some(c) => *c += n,
            None => {
                self.counters.insert(name.to_owned(), n);
            }
        }
    }

    /// Sets a named counter (for counters kept elsewhere, e.g. alert statistics).
    pub fn set_counter(&mut self, name: &str, value: u64) {
        match self.counters.get_mut(name) {
            Some(c) => *c = value,
            None => {
                self.counters.insert(name.to_owned(), value);
            }
        }
    }

    /// Marks a component failing (or recovered with `None`).
    pub fn set_failing(&mut self, component: &str, reason: Option<&str>) {
        match reason {
            Some(r) => {
                self.failing.insert(component.to_owned(), r.to_owned());
            }
            None => {
                self.failing.remove(component);
            }
        }
    }

    /// Records one event: redacts its payload, assigns the next seq, updates counters, rings,
    /// health and the timeout windows. Returns the recorded event followed by any events it
    /// derived (`security.repeated_timeout_failures`), which are recorded too.
    pub fn record(
        &mut self,
        ev: TelemetryEvent,
        redact: &Redactor,
        now: Instant,
        at_ms: i64,
    ) -> Vec<RecordedEvent> {
        let mut out = Vec::with_capacity(1);
        self.record_into(ev, redact, now, at_ms, &mut out);
        out
    }

    /// [`record`](Self::record), appending to `out` (one buffer for a whole batch).
    ///
    /// A JSON payload is redacted here; a lazy one is bundled with `redact` and rendered through
    /// it when something reads it (see [`Payload`]).
    pub fn record_into(
        &mut self,
        ev: TelemetryEvent,
        redact: &Redactor,
        now: Instant,
        at_ms: i64,
        out: &mut Vec<RecordedEvent>,
    ) {
        let mut stored = Vec::with_capacity(1);
        self.record_kept(ev, redact, now, at_ms, &|_, _| true, &mut stored);
        out.extend(stored.into_iter().filter_map(|s| s.record));
    }

    /// Records one event (and what it derives) like [`record`](Self::record), but builds the
    /// [`RecordedEvent`] only for events `keep` asks for (the ones an observer or the alert
    /// router will read): the others cost no copies of their ids, which move straight into the
    /// ring entry. Appends one [`Stored`] per recorded event to `out`.
    pub fn record_kept(
        &mut self,
        ev: TelemetryEvent,
        redact: &Redactor,
        now: Instant,
        at_ms: i64,
        keep: &dyn Fn(EventName, bool) -> bool,
        out: &mut Vec<Stored>,
    ) {
        let TelemetryEvent {
            event,
            mut conversation_id,
            mut correlation_id,
            mut tool,
            payload,
            ids_redacted,
        } = ev;
        if !ids_redacted {
            redact_ids(redact, &mut conversation_id, &mut correlation_id, &mut tool);
        }
        let mut payload = match payload {
            EventPayload::Json(v) => Payload::from(redact(&v)),
            EventPayload::Lazy(source) => Payload::lazy(source, event, redact.clone()),
        };
        let mut derived = None;
        if event == EventName::ToolTimeout {
            let (count, fire) = self.note_timeout(tool.as_deref().unwrap_or_default(), now);
            payload.insert("timeout_count", json!(count));
            if fire {
                let mut d = TelemetryEvent::new(
                    EventName::RepeatedTimeoutFailures,
                    json!({
                        "timeout_count": count,
                        "threshold": self.limits.timeout_alert_threshold,
                        "window_ms": self.limits.timeout_alert_window_ms,
                    }),
                );
                d.tool.clone_from(&tool);
                d.conversation_id.clone_from(&conversation_id);
                d.correlation_id.clone_from(&correlation_id);
                derived = Some(d.with_ids_redacted());
            }
        }
        let kept = keep(event, conversation_id.is_some());
        let incoming = Incoming {
            event,
            at_ms,
            conversation_id,
            correlation_id,
            tool,
            payload,
        };
        out.push(self.store(incoming, now, kept));
        if let Some(d) = derived {
            self.record_kept(d, redact, now, at_ms, keep, out);
        }
    }

    fn store(&mut self, ev: Incoming, now: Instant, keep: bool) -> Stored {
        // INVARIANT: the telemetry seq strictly increases.
        self.seq += 1;
        let seq = self.seq;
        self.total_events += 1;
        if let Some(c) = self.event_counts.get_mut(ev.event.index()) {
            *c += 1;
        }
        self.count(ev.event, &ev.payload);
        let is_error = is_error_event(ev.event, &ev.payload);
        let reason = ev
            .payload
            .ring_field("reason")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let error = ev.payload.ring_field("error").map(|e| match e {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let Incoming {
            event,
            at_ms,
            conversation_id,
            correlation_id,
            tool,
            payload,
        } = ev;
        let decision = matches!(event, EventName::PolicyAllowed | EventName::PolicyDenied);
        let (entry, record) = if keep {
            let entry = RingEntry {
                seq,
                event,
                at_ms,
                conversation_id: conversation_id.clone(),
                correlation_id: correlation_id.clone(),
                tool: tool.clone(),
                reason,
                error,
            };
            if decision {
                self.recent_decisions.push(payload.clone());
            }
            let record = RecordedEvent {
                seq,
                event,
                at_ms,
                project_id: self.project_id.clone(),
                conversation_id,
                correlation_id,
                tool,
                payload,
            };
            (entry, Some(record))
        } else {
            if decision {
                self.recent_decisions.push(payload);
            }
            let entry = RingEntry {
                seq,
                event,
                at_ms,
                conversation_id,
                correlation_id,
                tool,
                reason,
                error,
            };
            (entry, None)
        };
        if is_error {
            self.recent_errors.push(entry.clone());
            self.error_instants.push_back(now);
            self.last_error_at_ms = Some(at_ms);
        }
        self.recent_events.push(entry);
        Stored {
            seq,
            event,
            is_error,
            record,
        }
    }

    fn count(&mut self, event: EventName, payload: &Payload) {
        let names: &[&str] = match event {
            EventName::ToolCompleted => &["tool.calls", "tool.completed"],
            EventName::ToolFailed => &["tool.calls", "tool.failed"],
            EventName::ToolCancelled => &["tool.calls", "tool.cancelled"],
            EventName::ToolTimeout => &["tool.timeouts"],
            EventName::PolicyAllowed => &["policy.allowed"],
            EventName::PolicyDenied => &["policy.denied"],
            _ => &[],
        };
        for n in names {
            self.add_counter(n, 1);
        }
        if event == EventName::ToolChildProcessesTerminated {
            let n = payload
                .get("terminated_process_count")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            self.add_counter("tool.child_processes_terminated", n);
        }
    }

    /// The repeated-timeout rule: returns (timeouts in window, whether to fire now).
    fn note_timeout(&mut self, tool: &str, now: Instant) -> (u32, bool) {
        let window = Duration::from_millis(self.limits.timeout_alert_window_ms);
        let threshold = self.limits.timeout_alert_threshold.max(1);
        let track = self
            .timeouts
            .entry(tool.to_owned())
            .or_insert_with(|| TimeoutTrack {
                instants: VecDeque::new(),
                armed: true,
            });
        while track
            .instants
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            track.instants.pop_front();
        }
        if (track.instants.len() as u64) < u64::from(threshold) {
            track.armed = true; // re-arms once the count dropped below the threshold
        }
        track.instants.push_back(now);
        let count = u32::try_from(track.instants.len()).unwrap_or(u32::MAX);
        let fire = count >= threshold && track.armed;
        if fire {
            track.armed = false;
        }
        (count, fire)
    }

    /// Forgets the timeout windows (project stop).
    pub fn reset_timeouts(&mut self) {
        self.timeouts.clear();
    }

    /// Health at `now`: failing components first, then errors within the window.
    pub fn health(&mut self, now: Instant) -> Health {
        let window = Duration::from_millis(self.limits.health_error_window_ms);
        while self
            .error_instants
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.error_instants.pop_front();
        }
        let status = if !self.failing.is_empty() {
            HealthStatus::Failing
        } else if !self.error_instants.is_empty() {
            HealthStatus::Degraded
        } else {
            HealthStatus::Ok
        };
        Health {
            status,
            error_count: self.error_instants.len(),
            last_error_at_ms: self.last_error_at_ms,
            window_ms: self.limits.health_error_window_ms,
            failing: self.failing.clone(),
        }
    }

    /// A full snapshot at `now`.
    pub fn snapshot(&mut self, now: Instant) -> TelemetrySnapshot {
        let health = self.health(now);
        TelemetrySnapshot {
            project_id: self.project_id.clone(),
            last_seq: self.seq,
            total_events: self.total_events,
            event_counts: EventName::ALL
                .iter()
                .zip(&self.event_counts)
                .filter(|(_, n)| **n > 0)
                .map(|(e, n)| (e.as_str().to_owned(), *n))
                .collect(),
            counters: self.counters.clone(),
            recent_events: self.recent_events.newest_first(),
            recent_errors: self.recent_errors.newest_first(),
            // Renders each lazy record once; the ring keeps the rendered JSON for the next one.
            recent_decisions: self
                .recent_decisions
                .iter_newest_first()
                .map(|p| p.json().clone())
                .collect(),
            ring_overflows: BTreeMap::from([
                ("recent_events".to_owned(), self.recent_events.overflowed()),
                ("recent_errors".to_owned(), self.recent_errors.overflowed()),
                (
                    "recent_decisions".to_owned(),
                    self.recent_decisions.overflowed(),
                ),
            ]),
            health,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn store(limits: TelemetryLimits) -> TelemetryStore {
        TelemetryStore::new(ProjectId::parse("p").unwrap(), limits, 0)
    }

    fn timeout(tool: &str) -> TelemetryEvent {
        TelemetryEvent::new(EventName::ToolTimeout, json!({ "timeout_ms": 10 })).tool(tool)
    }

    #[test]
    fn rings_are_bounded_and_count_overflow() {
        let limits = TelemetryLimits {
            recent_events: 3,
            recent_errors: 2,
            recent_decisions: 1,
            ..Default::default()
        };
        let mut s = store(limits);
        let now = Instant::now();
        let r = no_redaction();
        for i in 0..5 {
            s.record(
                TelemetryEvent::new(EventName::ToolFailed, json!({ "reason": format!("r{i}") })),
                &r,
                now,
                i,
            );
            s.record(
                TelemetryEvent::new(EventName::PolicyDenied, json!({ "n": i })),
                &r,
                now,
                i,
            );
        }
        let snap = s.snapshot(now);
        assert_eq!(snap.recent_events.len(), 3);
        assert_eq!(snap.recent_events[0].seq, 10, "newest first");
        assert_eq!(
            snap.recent_errors
                .iter()
                .map(|e| e.reason.clone().unwrap())
                .collect::<Vec<_>>(),
            vec!["r4", "r3"]
        );
        assert_eq!(snap.recent_decisions, vec![json!({ "n": 4 })]);
        assert_eq!(snap.ring_overflows["recent_events"], 7);
        assert_eq!(snap.ring_overflows["recent_errors"], 3);
        assert_eq!(snap.counters["tool.failed"], 5);
        assert_eq!(snap.counters["tool.calls"], 5);
        assert_eq!(snap.counters["policy.denied"], 5);
        assert_eq!(snap.event_counts["conversation.tool.failed"], 5);
        assert_eq!(snap.total_events, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn health_recovers_when_errors_age_out() {
        let mut s = store(TelemetryLimits {
            health_error_window_ms: 1000,
            ..Default::default()
        });
        let r = no_redaction();
        assert_eq!(s.health(Instant::now()).status, HealthStatus::Ok);
        s.record(
            TelemetryEvent::new(EventName::ProjectStarted, json!({ "error": "x" })),
            &r,
            Instant::now(),
            5,
        );
        let h = s.health(Instant::now());
        assert_eq!(
            (h.status, h.error_count, h.last_error_at_ms),
            (HealthStatus::Degraded, 1, Some(5))
        );
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(s.health(Instant::now()).status, HealthStatus::Degraded);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(s.health(Instant::now()).status, HealthStatus::Ok);
        s.set_failing("journal", Some("disk full"));
        assert_eq!(s.health(Instant::now()).status, HealthStatus::Failing);
        s.set_failing("journal", None);
        assert_eq!(s.health(Instant::now()).status, HealthStatus::Ok);
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_timeouts_fire_once_and_rearm_below_threshold() {
        let limits = TelemetryLimits {
            timeout_alert_threshold: 2,
            timeout_alert_window_ms: 10_000,
            ..Default::default()
        };
        let mut s = store(limits);
        let r = no_redaction();
        let fired = |out: &[RecordedEvent]| {
            out.iter()
                .any(|e| e.event == EventName::RepeatedTimeoutFailures)
        };
        let out = s.record(timeout("cmd"), &r, Instant::now(), 0);
        assert_eq!(out[0].payload["timeout_count"], 1);
        assert!(!fired(&out));
        let out = s.record(timeout("cmd"), &r, Instant::now(), 0);
        assert!(fired(&out));
        assert_eq!(
            out[1].payload,
            json!({ "timeout_count": 2, "threshold": 2, "window_ms": 10_000 })
        );
        assert_eq!(out[1].seq, out[0].seq + 1);
        // another tool has its own window
        assert!(!fired(&s.record(timeout("other"), &r, Instant::now(), 0)));
        // still above the threshold: no second alert
        assert!(!fired(&s.record(timeout("cmd"), &r, Instant::now(), 0)));
        // the window passes: the count drops below the threshold and the rule re-arms
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!fired(&s.record(timeout("cmd"), &r, Instant::now(), 0)));
        assert!(fired(&s.record(timeout("cmd"), &r, Instant::now(), 0)));
        assert_eq!(s.snapshot(Instant::now()).counters["tool.timeouts"], 6);
    }

    #[test]
    fn redaction_is_applied_before_storing() {
        let mut s = store(TelemetryLimits::default());
        let redact: Redactor = Arc::new(|v: &Value| {
            serde_json::from_str(&v.to_string().replace("CANARY-123", "[REDACTED]")).unwrap()
        });
        let ev = TelemetryEvent::new(
            EventName::PolicyDenied,
            json!({ "error": "token CANARY-123", "reason": "CANARY-123" }),
        );
        let out = s.record(ev, &redact, Instant::now(), 0);
        assert!(!out[0].payload.to_string().contains("CANARY-123"));
        let snap = serde_json::to_string(&s.snapshot(Instant::now())).unwrap();
        assert!(!snap.contains("CANARY-123"), "{snap}");
    }

    #[test]
    fn kept_or_not_the_store_ends_up_the_same() {
        let events = || {
            vec![
                TelemetryEvent::new(EventName::PolicyAllowed, json!({ "decision": "allow" }))
                    .tool("fs.read"),
                TelemetryEvent::new(
                    EventName::ToolFailed,
                    json!({ "reason": "x", "error": "e" }),
                )
                .tool("fs.read"),
                timeout("fs.read"),
            ]
        };
        let r = no_redaction();
        let now = Instant::now();
        let (mut a, mut b) = (
            store(TelemetryLimits::default()),
            store(TelemetryLimits::default()),
        );
        let (mut kept, mut not_kept) = (Vec::new(), Vec::new());
        for ev in events() {
            a.record_kept(ev, &r, now, 7, &|_, _| true, &mut kept);
        }
        for ev in events() {
            b.record_kept(
                ev,
                &r,
                now,
                7,
                &|e, _| e == EventName::ToolFailed,
                &mut not_kept,
            );
        }
        assert_eq!(a.snapshot(now), b.snapshot(now));
        assert!(kept.iter().all(|s| s.record.is_some()));
        let built: Vec<_> = not_kept.iter().filter_map(|s| s.record.as_ref()).collect();
        assert_eq!(built.len(), 1);
        assert_eq!(built[0].event, EventName::ToolFailed);
        assert_eq!(
            not_kept
                .iter()
                .map(|s| (s.seq, s.is_error))
                .collect::<Vec<_>>(),
            vec![(1, false), (2, true), (3, true)]
        );
    }

    proptest! {
        #[test]
        fn seq_strictly_increases_and_rings_stay_bounded(
            start in 0u64..1000,
            cap in 1usize..8,
            events in proptest::collection::vec(0usize..45, 0..60),
        ) {
            let limits = TelemetryLimits { recent_events: cap, recent_errors: cap, recent_decisions: cap, ..Default::default() };
            let mut s = TelemetryStore::new(ProjectId::parse("p").unwrap(), limits, start);
            let r = no_redaction();
            let mut last = start;
            for i in events {
                for rec in s.record(TelemetryEvent::new(EventName::ALL[i], json!({})), &r, Instant::now(), 0) {
                    prop_assert_eq!(rec.seq, last + 1);
                    last = rec.seq;
                }
            }
            let snap = s.snapshot(Instant::now());
            prop_assert!(snap.recent_events.len() <= cap);
            prop_assert!(snap.recent_errors.len() <= cap);
            prop_assert!(snap.recent_decisions.len() <= cap);
            prop_assert_eq!(snap.last_seq, last);
            prop_assert_eq!(snap.ring_overflows["recent_events"] + snap.recent_events.len() as u64, snap.total_events);
        }
    }
}
