//! [`ConversationError`]: every way a conversation call can fail, with stable snake_case codes
//! (the facade maps them onto `codeward::Error`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::ConversationId;
use crate::supervision::{HandleError, SupervisorError};

/// Result of a conversation call.
pub type ConversationResult<T> = std::result::Result<T, ConversationError>;

/// Why a conversation call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code")]
pub enum ConversationError {
    /// The inbox is full; the signal was refused (a `queue.overflow` entry was journaled).
    #[error("conversation queue is full ({queue_size}/{max_queue_size})")]
    #[serde(rename = "conversation_queue_full")]
    QueueFull {
        /// Signals waiting at refusal.
        queue_size: usize,
        /// The bound.
        max_queue_size: usize,
    },
    /// The durable append failed; the signal was not applied.
    #[error("journal unavailable: {reason}")]
    #[serde(rename = "journal_unavailable")]
    JournalUnavailable {
        /// The store's message.
        reason: String,
    },
    /// An internal signal type was sent through call/cast.
    #[error("signal type `{type}` is internal and cannot be sent by callers")]
    #[serde(rename = "external_type_not_allowed")]
    ExternalTypeNotAllowed {
        /// The type.
        r#type: String,
    },
    /// The conversation actor is down (restarting too slowly, or given up).
    #[error("conversation `{conversation_id}` is unavailable")]
    #[serde(rename = "conversation_unavailable")]
    Unavailable {
        /// The conversation.
        conversation_id: String,
    },
    /// The actor did not answer in time (never retried).
    #[error("conversation did not answer within {timeout_ms} ms")]
    #[serde(rename = "timeout")]
    Timeout {
        /// The timeout.
        timeout_ms: u64,
    },
    /// The conversation stopped before the signal was applied.
    #[error("conversation `{conversation_id}` stopped")]
    #[serde(rename = "conversation_stopped")]
    Stopped {
        /// The conversation.
        conversation_id: String,
    },
    /// A conversation with this id is already live.
    #[error("conversation `{conversation_id}` is already started")]
    #[serde(rename = "conversation_already_started")]
    AlreadyStarted {
        /// The conversation.
        conversation_id: String,
    },
    /// The actor could not be started (registering or restoring from the journal failed).
    #[error("conversation `{conversation_id}` failed to start: {reason}")]
    #[serde(rename = "conversation_start_failed")]
    StartFailed {
        /// The conversation.
        conversation_id: String,
        /// Why.
        reason: String,
    },
}

impl ConversationError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::QueueFull { .. } => "conversation_queue_full",
            Self::JournalUnavailable { .. } => "journal_unavailable",
            Self::ExternalTypeNotAllowed { .. } => "external_type_not_allowed",
            Self::Unavailable { .. } => "conversation_unavailable",
            Self::Timeout { .. } => "timeout",
            Self::Stopped { .. } => "conversation_stopped",
            Self::AlreadyStarted { .. } => "conversation_already_started",
            Self::StartFailed { .. } => "conversation_start_failed",
        }
    }

    /// Whether retrying may succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::QueueFull { .. }
                | Self::JournalUnavailable { .. }
                | Self::Unavailable { .. }
                | Self::Timeout { .. }
        )
    }

    /// The variant's fields as a JSON object (without `code`).
    pub fn details(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.remove("code");
        }
        v
    }

    pub(crate) fn from_handle(err: HandleError, id: &ConversationId) -> Self {
        match err {
            HandleError::Unavailable { .. } => Self::Unavailable {
                conversation_id: id.to_string(),
            },
            HandleError::Timeout { timeout_ms, .. } => Self::Timeout { timeout_ms },
        }
    }

    pub(crate) fn from_supervisor(err: SupervisorError, id: &ConversationId) -> Self {
        let conversation_id = id.to_string();
        match err {
            SupervisorError::DuplicateChild { .. } => Self::AlreadyStarted { conversation_id },
            SupervisorError::StartFailed { reason, .. } => Self::StartFailed {
                conversation_id,
                reason,
            },
            SupervisorError::ChildNotFound { .. }
            | SupervisorError::SupervisorUnavailable { .. } => {
                Self::Unavailable { conversation_id }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_details() {
        let e = ConversationError::QueueFull {
            queue_size: 3,
            max_queue_size: 3,
        };
        assert_eq!(e.code(), "conversation_queue_full");
        assert!(e.retryable());
        assert_eq!(
            e.details(),
            serde_json::json!({"queue_size": 3, "max_queue_size": 3})
        );
        let e = ConversationError::ExternalTypeNotAllowed {
            r#type: "conversation.tool.completed".into(),
        };
        assert_eq!(e.code(), "external_type_not_allowed");
        assert!(!e.retryable());
        assert_eq!(
            serde_json::to_value(&e).unwrap()["code"],
            "external_type_not_allowed"
        );
        let e = ConversationError::Stopped {
            conversation_id: "c".into(),
        };
        assert_eq!(serde_json::to_value(&e).unwrap()["code"], e.code());
    }
}
