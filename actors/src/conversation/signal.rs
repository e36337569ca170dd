//! The signal envelope (SPEC §11.1): types, validation of external input, and constructors for
//! the internal signals the reducer and the actor write.
//!
//! Deviation: the envelope carries `at_ms` (milliseconds since the Unix epoch, from the runtime's
//! injectable clock) instead of an RFC 3339 `time` string; the facade renders RFC 3339 at its edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::ids::{CorrelationId, IdError, SignalId, ToolCallId};

/// Maximum size of a user message's `content` (1 MiB).
pub const MAX_CONTENT_BYTES: usize = 1024 * 1024;

macro_rules! signal_types {
    ($($(#[$m:meta])* $variant:ident = $name:literal, $external:literal;)*) => {
        /// Every signal type, with its stable dotted name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SignalType {
            $($(#[$m])* $variant,)*
        }

        impl SignalType {
            /// All types, in catalogue order.
            pub const ALL: &'static [SignalType] = &[$(SignalType::$variant,)*];

            /// The stable dotted name.
            pub fn as_str(self) -> &'static str {
                match self { $(SignalType::$variant => $name,)* }
            }

            /// Whether callers may send it through call/cast.
            pub fn is_external(self) -> bool {
                match self { $(SignalType::$variant => $external,)* }
            }
        }
    };
}

signal_types! {
    /// `conversation.user.message {content}`
    UserMessage = "conversation.user.message", true;
    /// `conversation.cancel {reason}`
    Cancel = "conversation.cancel", true;
    /// `conversation.resume {}`
    Resume = "conversation.resume", true;
    /// `conversation.assistant.delta {content, index}`
    AssistantDelta = "conversation.assistant.delta", false;
    /// `conversation.assistant.message {content}`
    AssistantMessage = "conversation.assistant.message", false;
    /// `conversation.llm.requested {run_id, step, model, message_count, tool_count}`
    LlmRequested = "conversation.llm.requested", false;
    /// `conversation.llm.completed {finish_reason, model, tool_call_count, usage}`
    LlmCompleted = "conversation.llm.completed", false;
    /// `conversation.llm.failed {reason, retryable, message}`
    LlmFailed = "conversation.llm.failed", false;
    /// `conversation.tool.requested {tool_call_id, name, args, run_mode}`
    ToolRequested = "conversation.tool.requested", false;
    /// `conversation.tool.completed {tool_call_id, name, result, duration_ms, risk_flags}`
    ToolCompleted = "conversation.tool.completed", false;
    /// `conversation.tool.failed {tool_call_id, name, error}`
    ToolFailed = "conversation.tool.failed", false;
    /// `conversation.tool.cancelled {tool_call_id, name, reason, call_correlation_id}`
    ToolCancelled = "conversation.tool.cancelled", false;
    /// `conversation.resume.rejected {reason, status}`
    ResumeRejected = "conversation.resume.rejected", false;
    /// `conversation.queue.overflow {reason, queue_size, max_queue_size, dropped_signal_id}`
    QueueOverflow = "conversation.queue.overflow", false;
    /// `conversation.run.opened {run_id}`
    RunOpened = "conversation.run.opened", false;
    /// `conversation.run.closed {run_id, status, reason}`
    RunClosed = "conversation.run.closed", false;
    /// `conversation.run.resumed {resume_policy, replay_boundary}`
    RunResumed = "conversation.run.resumed", false;
    /// `conversation.subagent.requested {child_id, template_id}`
    SubagentRequested = "conversation.subagent.requested", false;
    /// `conversation.subagent.started {child_id, template_id}`
    SubagentStarted = "conversation.subagent.started", false;
    /// `conversation.subagent.completed {child_id, template_id, result}`
    SubagentCompleted = "conversation.subagent.completed", false;
    /// `conversation.subagent.failed {child_id, template_id, reason}`
    SubagentFailed = "conversation.subagent.failed", false;
    /// `conversation.subagent.stopped {child_id, template_id, reason}`
    SubagentStopped = "conversation.subagent.stopped", false;
    /// `conversation.stopped {reason}`
    Stopped = "conversation.stopped", false;
}

impl fmt::Display for SignalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignalType {
    type Err = SignalError;
    fn from_str(s: &str) -> Result<Self, SignalError> {
        if s.starts_with("conversation.cmd.") {
            return Err(SignalError::ReservedType {
                r#type: s.to_owned(),
            });
        }
        SignalType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or(SignalError::Invalid {
                reason: InvalidSignalReason::InvalidType,
            })
    }
}

impl Serialize for SignalType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SignalType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why an external signal was refused (`invalid_signal{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidSignalReason {
    /// No `type`.
    MissingType,
    /// Unknown `type`.
    InvalidType,
    /// `data` is not an object (or null).
    DataNotObject,
    /// Unknown top-level member.
    UnknownField,
    /// Bad `id`.
    InvalidId,
    /// Bad `correlation_id`.
    InvalidCorrelationId,
    /// `content` missing, empty or larger than 1 MiB.
    ContentTooLarge,
}

/// Errors of signal validation (the call/cast boundary).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum SignalError {
    /// Malformed signal.
    #[error("invalid signal: {reason:?}")]
    Invalid {
        /// Why.
        reason: InvalidSignalReason,
    },
    /// An internal type sent through call/cast.
    #[error("signal type `{type}` is internal and cannot be sent by callers")]
    ExternalTypeNotAllowed {
        /// The type.
        r#type: String,
    },
    /// A `conversation.cmd.*` type.
    #[error("signal type `{type}` is reserved")]
    ReservedType {
        /// The type.
        r#type: String,
    },
}

impl SignalError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid_signal",
            Self::ExternalTypeNotAllowed { .. } => "external_type_not_allowed",
            Self::ReservedType { .. } => "reserved_type",
        }
    }

    fn invalid(reason: InvalidSignalReason) -> Self {
        Self::Invalid { reason }
    }
}

/// The CloudEvents-like envelope of every conversation entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// Always `"1.0"`.
    pub specversion: String,
    /// Unique per conversation; duplicates are acknowledged, not applied.
    pub id: SignalId,
    /// The type.
    #[serde(rename = "type")]
    pub kind: SignalType,
    /// `/codeward/api|http|mcp|model|tool`, or `/codeward/runtime` for reducer-written signals.
    pub source: String,
    /// Milliseconds since the Unix epoch (0 until the actor stamps it).
    pub at_ms: i64,
    /// The run's correlation id, carried to every derived signal.
    pub correlation_id: CorrelationId,
    /// The signal that caused this one, if any.
    pub causation_id: Option<SignalId>,
    /// The payload, always an object.
    pub data: Map<String, Value>,
    /// Free-form extensions.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extensions: Map<String, Value>,
}

const ENVELOPE_FIELDS: &[&str] = &[
    "specversion",
    "id",
    "type",
    "source",
    "time",
    "at_ms",
    "correlation_id",
    "causation_id",
    "data",
    "extensions",
];

impl Signal {
    /// A signal of `kind` with fresh id and correlation id, source `/codeward/api`.
    pub fn new(kind: SignalType, data: Value) -> Self {
        Self {
            specversion: "1.0".into(),
            id: SignalId::generate(),
            kind,
            source: "/codeward/api".into(),
            at_ms: 0,
            correlation_id: CorrelationId::generate(),
            causation_id: None,
            data: into_object(data),
            extensions: Map::new(),
        }
    }

    /// `conversation.user.message {content}`.
    pub fn user_message(text: impl Into<String>) -> Self {
        Self::new(SignalType::UserMessage, json!({ "content": text.into() }))
    }

    /// `conversation.cancel {reason}` (default reason `conversation_cancelled`).
    pub fn cancel(reason: Option<&str>) -> Self {
        let reason = reason.unwrap_or("conversation_cancelled");
        Self::new(SignalType::Cancel, json!({ "reason": reason }))
    }

    /// `conversation.resume {}`.
    pub fn resume() -> Self {
        Self::new(SignalType::Resume, json!({}))
    }

    /// A reducer- or runtime-written signal continuing the run of `cause`.
    pub fn derived(
        kind: SignalType,
        data: Value,
        correlation_id: &CorrelationId,
        cause: Option<&SignalId>,
    ) -> Self {
        let mut s = Self::new(kind, data);
        s.source = "/codeward/runtime".into();
        s.correlation_id = correlation_id.clone();
        s.causation_id = cause.cloned();
        s
    }

    /// With this correlation id.
    pub fn with_correlation_id(mut self, id: CorrelationId) -> Self {
        self.correlation_id = id;
        self
    }

    /// With this source.
    pub fn with_source(mut self, source: &str) -> Self {
        self.source = source.to_owned();
        self
    }

    /// A string field of `data`.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }

    /// A `u64` field of `data`.
    pub fn u64_field(&self, key: &str) -> Option<u64> {
        self.data.get(key).and_then(Value::as_u64)
    }

    /// The `tool_call_id` of a tool signal, if valid.
    pub fn tool_call_id(&self) -> Option<ToolCallId> {
        self.str_field("tool_call_id")
            .and_then(|s| ToolCallId::parse(s).ok())
    }

    /// Validates a caller-supplied JSON signal (call/cast): envelope members, type (external
    /// only), `data` object, ids; generates absent `id` / `correlation_id`
    /// (`extensions.correlation_id` is the fallback) and applies `default_source`.
    pub fn from_external_json(value: Value, default_source: &str) -> Result<Self, SignalError> {
        let Value::Object(mut obj) = value else {
            return Err(SignalError::invalid(InvalidSignalReason::MissingType));
        };
        if obj.keys().any(|k| !ENVELOPE_FIELDS.contains(&k.as_str())) {
            return Err(SignalError::invalid(InvalidSignalReason::UnknownField));
        }
        let kind: SignalType = match obj.get("type") {
            Some(Value::String(t)) => t.parse()?,
            Some(_) => return Err(SignalError::invalid(InvalidSignalReason::InvalidType)),
            None => return Err(SignalError::invalid(InvalidSignalReason::MissingType)),
        };
        if !kind.is_external() {
            return Err(SignalError::ExternalTypeNotAllowed {
                r#type: kind.as_str().into(),
            });
        }
        let data = match obj.remove("data") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(SignalError::invalid(InvalidSignalReason::DataNotObject)),
        };
        let extensions = match obj.remove("extensions") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(SignalError::invalid(InvalidSignalReason::UnknownField)),
        };
        let id = opt_id(obj.get("id"), SignalId::parse_or_generate)
            .map_err(|_| SignalError::invalid(InvalidSignalReason::InvalidId))?;
        let corr_raw = obj
            .get("correlation_id")
            .or_else(|| extensions.get("correlation_id"));
        let correlation_id = opt_id(corr_raw, CorrelationId::parse_or_generate)
            .map_err(|_| SignalError::invalid(InvalidSignalReason::InvalidCorrelationId))?;
        if kind == SignalType::UserMessage {
            match data.get("content") {
                Some(Value::String(c)) if !c.is_empty() && c.len() <= MAX_CONTENT_BYTES => {}
                _ => return Err(SignalError::invalid(InvalidSignalReason::ContentTooLarge)),
            }
        }
        let source = match obj.get("source") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => default_source.to_owned(),
        };
        let at_ms = obj.get("at_ms").and_then(Value::as_i64).unwrap_or(0);
        Ok(Self {
            specversion: "1.0".into(),
            id,
            kind,
            source,
            at_ms,
            correlation_id,
            causation_id: None,
            data,
            extensions,
        })
    }
}

fn opt_id<T>(
    raw: Option<&Value>,
    parse: impl Fn(Option<&str>) -> Result<T, IdError>,
) -> Result<T, IdError> {
    match raw {
        None | Some(Value::Null) => parse(None),
        Some(Value::String(s)) => parse(Some(s)),
        Some(_) => parse(Some("\u{0}")), // not a string: refused by the id rules
    }
}

fn into_object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other);
            m
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_roundtrip_and_reserved() {
        for t in SignalType::ALL {
            assert_eq!(t.as_str().parse::<SignalType>().unwrap(), *t);
        }
        assert_eq!(
            "conversation.cmd.x"
                .parse::<SignalType>()
                .unwrap_err()
                .code(),
            "reserved_type"
        );
        assert_eq!(
            "nope".parse::<SignalType>().unwrap_err().code(),
            "invalid_signal"
        );
    }

    #[test]
    fn external_validation_reasons() {
        let reason = |v: Value| match Signal::from_external_json(v, "/codeward/api") {
            Err(SignalError::Invalid { reason }) => Some(reason),
            Err(e) => panic!("{e:?}"),
            Ok(_) => None,
        };
        use InvalidSignalReason::*;
        assert_eq!(reason(json!({})), Some(MissingType));
        assert_eq!(reason(json!({"type": "x"})), Some(InvalidType));
        assert_eq!(
            reason(json!({"type": "conversation.resume", "data": 3})),
            Some(DataNotObject)
        );
        assert_eq!(
            reason(json!({"type": "conversation.resume", "zzz": 1})),
            Some(UnknownField)
        );
        assert_eq!(
            reason(json!({"type": "conversation.resume", "id": "a b"})),
            Some(InvalidId)
        );
        assert_eq!(
            reason(json!({"type": "conversation.resume", "correlation_id": " "})),
            None,
            "blank means generate"
        );
        assert_eq!(
            reason(json!({"type": "conversation.resume", "correlation_id": "a\tb"})),
            Some(InvalidCorrelationId)
        );
        assert_eq!(
            reason(json!({"type": "conversation.user.message", "data": {"content": ""}})),
            Some(ContentTooLarge)
        );
        let big = "x".repeat(MAX_CONTENT_BYTES + 1);
        assert_eq!(
            reason(json!({"type": "conversation.user.message", "data": {"content": big}})),
            Some(ContentTooLarge)
        );
        let internal =
            Signal::from_external_json(json!({"type": "conversation.tool.completed"}), "/x");
        assert_eq!(internal.unwrap_err().code(), "external_type_not_allowed");
        let ok = Signal::from_external_json(
            json!({"type": "conversation.user.message", "data": {"content": "hi"}, "extensions": {"correlation_id": "corr-1"}}),
            "/codeward/http",
        )
        .unwrap();
        assert_eq!(
            (ok.correlation_id.as_str(), ok.source.as_str()),
            ("corr-1", "/codeward/http")
        );
    }

    #[test]
    fn envelope_serde_roundtrip() {
        let s = Signal::user_message("hello");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["type"], "conversation.user.message");
        let back: Signal = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
