//! The event catalogue of SPEC §8.2 as a typed enum with stable dotted names and severities,
//! the event a caller emits and the record the store keeps.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::payload::{EventPayload, LazyPayload, Payload};
use crate::ids::{ConversationId, CorrelationId, ProjectId};

/// Severity, ordered `Debug < Info < Warning < Error < Critical`. Alerts use `Warning` and
/// `Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Routine.
    Debug,
    /// Security-relevant but expected.
    Info,
    /// Attention.
    Warning,
    /// An error event (§8.3 rule).
    Error,
    /// Needs a human now.
    Critical,
}

macro_rules! catalogue {
    ($($(#[$m:meta])* $variant:ident = $name:literal;)*) => {
        /// Every telemetry event of the catalogue.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventName {
            $($(#[$m])* $variant,)*
        }

        impl EventName {
            /// All events, catalogue order.
            pub const ALL: &'static [EventName] = &[$(EventName::$variant,)*];

            /// How many events the catalogue has.
            pub const COUNT: usize = Self::ALL.len();

            /// The position in [`EventName::ALL`] (dense, `< COUNT`): tables keyed by event.
            pub fn index(self) -> usize {
                self as usize
            }

            /// The stable dotted name.
            pub fn as_str(self) -> &'static str {
                match self { $(EventName::$variant => $name,)* }
            }
        }
    };
}

catalogue! {
    /// `project.started`
    ProjectStarted = "project.started";
    /// `project.stopped`
    ProjectStopped = "project.stopped";
    /// `project.assets_loaded`
    ProjectAssetsLoaded = "project.assets_loaded";
    /// `project.assets_reloaded`
    ProjectAssetsReloaded = "project.assets_reloaded";
    /// `project.assets_reload_failed`
    ProjectAssetsReloadFailed = "project.assets_reload_failed";
    /// `project.watcher_started`
    ProjectWatcherStarted = "project.watcher_started";
    /// `project.watcher_stopped`
    ProjectWatcherStopped = "project.watcher_stopped";
    /// `project.watcher_reload_completed`
    ProjectWatcherReloadCompleted = "project.watcher_reload_completed";
    /// `project.watcher_reload_failed`
    ProjectWatcherReloadFailed = "project.watcher_reload_failed";
    /// `conversation.started`
    ConversationStarted = "conversation.started";
    /// `conversation.stopped`
    ConversationStopped = "conversation.stopped";
    /// `conversation.restored`
    ConversationRestored = "conversation.restored";
    /// `conversation.event_ingested`
    ConversationEventIngested = "conversation.event_ingested";
    /// `conversation.queue_overflow`
    ConversationQueueOverflow = "conversation.queue_overflow";
    /// `conversation.llm.completed`
    LlmCompleted = "conversation.llm.completed";
    /// `conversation.llm.failed`
    LlmFailed = "conversation.llm.failed";
    /// `conversation.tool.started`
    ToolStarted = "conversation.tool.started";
    /// `conversation.tool.completed`
    ToolCompleted = "conversation.tool.completed";
    /// `conversation.tool.failed`
    ToolFailed = "conversation.tool.failed";
    /// `conversation.tool.timeout`
    ToolTimeout = "conversation.tool.timeout";
    /// `conversation.tool.cancelled`
    ToolCancelled = "conversation.tool.cancelled";
    /// `conversation.tool.child_processes_terminated`
    ToolChildProcessesTerminated = "conversation.tool.child_processes_terminated";
    /// `conversation.subagent.started`
    SubagentStarted = "conversation.subagent.started";
    /// `conversation.subagent.completed`
    SubagentCompleted = "conversation.subagent.completed";
    /// `conversation.subagent.failed`
    SubagentFailed = "conversation.subagent.failed";
    /// `conversation.subagent.stopped`
    SubagentStopped = "conversation.subagent.stopped";
    /// `policy.allowed`
    PolicyAllowed = "policy.allowed";
    /// `policy.denied`
    PolicyDenied = "policy.denied";
    /// `security.sandbox_violation`
    SandboxViolation = "security.sandbox_violation";
    /// `security.sandbox_exception_used`
    SandboxExceptionUsed = "security.sandbox_exception_used";
    /// `security.network_denied`
    NetworkDenied = "security.network_denied";
    /// `security.sensitive_path_denied`
    SensitivePathDenied = "security.sensitive_path_denied";
    /// `security.env_denied`
    EnvDenied = "security.env_denied";
    /// `security.sensitive_artifact_detected`
    SensitiveArtifactDetected = "security.sensitive_artifact_detected";
    /// `security.repeated_timeout_failures`
    RepeatedTimeoutFailures = "security.repeated_timeout_failures";
    /// `security.protocol_denied`
    ProtocolDenied = "security.protocol_denied";
    /// `security.subagent.spawn_denied`
    SubagentSpawnDenied = "security.subagent.spawn_denied";
    /// `security.subagent.quota_denied`
    SubagentQuotaDenied = "security.subagent.quota_denied";
    /// `security.os_sandbox_degraded`
    OsSandboxDegraded = "security.os_sandbox_degraded";
    /// `runtime.actor_restarted`
    ActorRestarted = "runtime.actor_restarted";
    /// `runtime.restart_intensity_exceeded`
    RestartIntensityExceeded = "runtime.restart_intensity_exceeded";
    /// `journal.write_failed`
    JournalWriteFailed = "journal.write_failed";
    /// `journal.compacted`
    JournalCompacted = "journal.compacted";
    /// `journal.backup_completed`
    JournalBackupCompleted = "journal.backup_completed";
    /// `journal.integrity_failed`
    JournalIntegrityFailed = "journal.integrity_failed";
}

/// Escalation events alerted as critical by default (SPEC §8.5).
pub const DEFAULT_CRITICAL_EVENTS: &[EventName] = &[
    EventName::SandboxViolation,
    EventName::RepeatedTimeoutFailures,
    EventName::RestartIntensityExceeded,
];

impl EventName {
    /// Whether the name alone makes it an error event (§8.3): ends in `.failed`, `_failed` or
    /// `.timeout`, or is `security.repeated_timeout_failures`, `runtime.*` or
    /// `journal.integrity_failed`. A payload with an `error` key also makes any event an error.
    pub fn is_error_name(self) -> bool {
        let n = self.as_str();
        n.ends_with(".failed")
            || n.ends_with("_failed")
            || n.ends_with(".timeout")
            || self == EventName::RepeatedTimeoutFailures
            || n.starts_with("runtime.")
    }

    /// The event's own severity: critical for the default escalation events and integrity
    /// failures, error for error names, info for `security.*`, debug otherwise.
    pub fn severity(self) -> Severity {
        if DEFAULT_CRITICAL_EVENTS.contains(&self) || self == EventName::JournalIntegrityFailed {
            Severity::Critical
        } else if self.is_error_name() {
            Severity::Error
        } else if self.as_str().starts_with("security.") {
            Severity::Info
        } else {
            Severity::Debug
        }
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown event name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown telemetry event `{0}`")]
pub struct UnknownEvent(pub String);

impl FromStr for EventName {
    type Err = UnknownEvent;
    fn from_str(s: &str) -> Result<Self, UnknownEvent> {
        EventName::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownEvent(s.to_owned()))
    }
}

impl Serialize for EventName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What a caller emits.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryEvent {
    /// Which event.
    pub event: EventName,
    /// Conversation, for conversation and call events.
    pub conversation_id: Option<ConversationId>,
    /// Correlation, for call events.
    pub correlation_id: Option<CorrelationId>,
    /// Tool name, for call events.
    pub tool: Option<String>,
    /// Event-specific payload (redacted by the store before it is kept or routed).
    pub payload: EventPayload,
    /// The emitter already redacted `conversation_id`, `correlation_id` and `tool` (or
    /// generated them), so the store skips that step. Default `false`: the store redacts them.
    pub ids_redacted: bool,
}

impl TelemetryEvent {
    /// An event with a JSON payload and no ids.
    pub fn new(event: EventName, payload: Value) -> Self {
        Self::with_payload(event, EventPayload::Json(payload))
    }

    /// An event with a lazy payload (rendered and redacted only when its JSON is needed) and
    /// no ids.
    pub fn lazy(event: EventName, source: Arc<dyn LazyPayload>) -> Self {
        Self::with_payload(event, EventPayload::Lazy(source))
    }

    fn with_payload(event: EventName, payload: EventPayload) -> Self {
        Self {
            event,
            conversation_id: None,
            correlation_id: None,
            tool: None,
            payload,
            ids_redacted: false,
        }
    }

    /// Marks `conversation_id`, `correlation_id` and `tool` as already redacted by the emitter
    /// (see [`TelemetryEvent::ids_redacted`]).
    pub fn with_ids_redacted(mut self) -> Self {
        self.ids_redacted = true;
        self
    }

    /// With a conversation id.
    pub fn conversation(mut self, id: ConversationId) -> Self {
        self.conversation_id = Some(id);
        self
    }

    /// With a correlation id.
    pub fn correlation(mut self, id: CorrelationId) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// With a tool name.
    pub fn tool(mut self, tool: impl Into<String>) -> Self {
        self.tool = Some(tool.into());
        self
    }
}

/// A recorded (redacted, sequenced) event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Per-project telemetry seq.
    pub seq: u64,
    /// Event.
    pub event: EventName,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Project.
    pub project_id: ProjectId,
    /// Conversation.
    pub conversation_id: Option<ConversationId>,
    /// Correlation.
    pub correlation_id: Option<CorrelationId>,
    /// Tool.
    pub tool: Option<String>,
    /// Redacted payload (derefs to its JSON; a lazy one is rendered on first use).
    pub payload: Payload,
}

impl RecordedEvent {
    /// Whether this is an error event (§8.3).
    pub fn is_error(&self) -> bool {
        is_error_event(self.event, &self.payload)
    }
}

/// The §8.3 error rule for an event and its recorded payload.
pub(crate) fn is_error_event(event: EventName, payload: &Payload) -> bool {
    event.is_error_name()
        || event == EventName::JournalIntegrityFailed
        || payload.has_ring_key("error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_classify() {
        for e in EventName::ALL {
            assert_eq!(e.as_str().parse::<EventName>().unwrap(), *e);
        }
        assert_eq!(EventName::ALL.len(), 45);
        for (i, e) in EventName::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
        }
        assert!(EventName::ToolTimeout.is_error_name());
        assert!(EventName::ProjectAssetsReloadFailed.is_error_name());
        assert!(EventName::ActorRestarted.is_error_name());
        assert!(!EventName::PolicyDenied.is_error_name());
        assert_eq!(EventName::SandboxViolation.severity(), Severity::Critical);
        assert_eq!(EventName::NetworkDenied.severity(), Severity::Info);
        assert_eq!(EventName::ToolFailed.severity(), Severity::Error);
        assert_eq!(EventName::ToolStarted.severity(), Severity::Debug);
        assert_eq!(
            serde_json::to_string(&EventName::PolicyAllowed).unwrap(),
            "\"policy.allowed\""
        );
    }
}
