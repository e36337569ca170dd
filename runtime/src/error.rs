//! `codeward::Error`: the one error type of the facade (SPEC §2.3). Every variant has a stable
//! snake_case [`code`](Error::code), a [`retryable`](Error::retryable) flag, machine-readable
//! [`details`](Error::details) and the HTTP status the adapters use; it serializes as
//! `{"code", "message", "details"}`.
//!
//! Variants say who is at fault: caller misuse (`invalid_*`, `unknown_tool`, `*_not_found`),
//! bad configuration (`invalid_runtime_opt`, `invalid_config_file`), a policy decision
//! (`Policy`, delegating to `codeward_policies::PolicyError`), a misbehaving tool
//! (`tool_failed`, `timeout`, `output_too_large`), or the runtime itself (`project_unavailable`,
//! `interrupted`, `journal_unavailable`).

use codeward_policies::PolicyError;
use serde::ser::SerializeStruct;
use serde_json::{Value, json};

use crate::options::OptionsError;

/// Result of a facade call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the facade returns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A call arrived after `shutdown` began.
    #[error("the engine is shutting down")]
    EngineShuttingDown,
    /// `Engine::start` refused its configuration.
    #[error("invalid engine config: {reason}")]
    InvalidEngineConfig {
        /// Why.
        reason: String,
    },
    /// No live project with this id.
    #[error("project `{project_id}` not found")]
    ProjectNotFound {
        /// The id asked for.
        project_id: String,
    },
    /// A malformed project id.
    #[error("invalid project id: {reason}")]
    InvalidProjectId {
        /// `empty`, `too_long`, `invalid_chars`, `generated_invalid`.
        reason: String,
    },
    /// A malformed conversation id.
    #[error("invalid conversation id: {reason}")]
    InvalidConversationId {
        /// `empty`, `too_long`, `invalid_chars`.
        reason: String,
    },
    /// A project with this id is already running.
    #[error("project `{project_id}` is already started")]
    ProjectAlreadyStarted {
        /// The id.
        project_id: String,
    },
    /// The same canonical root and data dir are already hosted.
    #[error("root is already hosted by project `{project_id}`")]
    RootInUse {
        /// The project hosting it.
        project_id: String,
    },
    /// The project root cannot be used.
    #[error("invalid root path `{path}`: {reason}")]
    InvalidRootPath {
        /// The path as given.
        path: String,
        /// `not_found`, `not_directory`, `permission_denied`.
        reason: String,
    },
    /// An option value failed validation.
    #[error("invalid runtime option `{key}`: {reason}")]
    InvalidRuntimeOpt {
        /// The key.
        key: String,
        /// The SPEC §3.3 reason.
        reason: String,
        /// Extra details.
        details: Value,
    },
    /// `codeward.toml` could not be parsed.
    #[error("invalid config file `{path}`: {message}")]
    InvalidConfigFile {
        /// The file.
        path: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// `start_project` failed in one of its stages (everything started was torn down).
    #[error("starting the project failed at stage `{stage}`: {reason}")]
    StartProjectFailed {
        /// `layout`, `journal`, `os_sandbox`, `actors`, `assets`, `watcher`.
        stage: String,
        /// Why.
        reason: String,
    },
    /// A component is restarting and did not come back within the retry (retryable).
    #[error("project component `{component}` is unavailable")]
    ProjectUnavailable {
        /// The component.
        component: String,
    },
    /// The project exceeded its restart intensity and is quarantined.
    #[error("project `{project_id}` failed: {reason}")]
    ProjectFailed {
        /// The project.
        project_id: String,
        /// Why.
        reason: String,
    },
    /// No live or journaled conversation with this id.
    #[error("conversation `{conversation_id}` not found")]
    ConversationNotFound {
        /// The id.
        conversation_id: String,
    },
    /// The conversation is already live (or journaled and `restore = false`).
    #[error("conversation `{conversation_id}` is already started")]
    ConversationAlreadyStarted {
        /// The id.
        conversation_id: String,
    },
    /// A malformed signal.
    #[error("invalid signal: {reason}")]
    InvalidSignal {
        /// SPEC §2.3 reason.
        reason: String,
    },
    /// An internal signal type sent by a caller.
    #[error("signal type `{kind}` cannot be sent by callers")]
    ExternalTypeNotAllowed {
        /// The type.
        kind: String,
    },
    /// A reserved `conversation.cmd.*` type.
    #[error("signal type `{kind}` is reserved")]
    ReservedType {
        /// The type.
        kind: String,
    },
    /// The conversation's inbox is full (retryable).
    #[error("conversation queue is full ({queue_size}/{max_queue_size})")]
    ConversationQueueFull {
        /// Queue size at refusal.
        queue_size: usize,
        /// The bound.
        max_queue_size: usize,
    },
    /// A durable append failed; nothing was applied (retryable).
    #[error("journal unavailable: {reason}")]
    JournalUnavailable {
        /// Why.
        reason: String,
    },
    /// Unknown projection key.
    #[error("projection `{key}` not found")]
    ProjectionNotFound {
        /// The key.
        key: String,
    },
    /// Unknown asset kind.
    #[error("invalid asset kind `{kind}`")]
    InvalidAssetKind {
        /// The kind.
        kind: String,
    },
    /// No asset with this key.
    #[error("{kind} `{key}` not found")]
    AssetNotFound {
        /// The kind.
        kind: String,
        /// The key.
        key: String,
    },
    /// A blank or oversized search query.
    #[error("invalid query: {reason}")]
    InvalidQuery {
        /// Why.
        reason: String,
    },
    /// A strict reload was rejected; the previous snapshot keeps serving.
    #[error("asset load failed with {} error(s)", errors.as_array().map_or(0, Vec::len))]
    AssetLoadFailed {
        /// `[AssetError]`.
        errors: Value,
    },
    /// A malformed tool call (§4 steps 1–2).
    #[error("invalid tool call: {reason}")]
    InvalidToolCall {
        /// `invalid_name`, `args_not_object`, `args_too_large`, `argument_too_complex`,
        /// `invalid_correlation_id`, `missing_conversation_id`.
        reason: String,
    },
    /// No tool with this name in the catalog.
    #[error("unknown tool `{name}`")]
    UnknownTool {
        /// The name.
        name: String,
    },
    /// A policy decision or argument error of §4 steps 4–9 (code = the policy code).
    #[error(transparent)]
    Policy {
        /// The policy error.
        #[from]
        error: PolicyError,
    },
    /// The project's executor slots are busy and the queue is full or timed out (retryable).
    #[error("all {limit} tool slots are busy")]
    MaxConcurrencyReached {
        /// `tool_max_concurrency`.
        limit: usize,
        /// Time spent queued.
        queued_ms: u64,
    },
    /// The conversation's own quota is used up (retryable).
    #[error("the conversation already runs {limit} tool calls")]
    ConversationMaxConcurrencyReached {
        /// `tool_max_concurrency_per_conversation`.
        limit: usize,
    },
    /// The tool ran past its deadline (retryable).
    #[error("tool call timed out after {timeout_ms} ms")]
    Timeout {
        /// The deadline applied.
        timeout_ms: u64,
    },
    /// The call was cancelled.
    #[error("tool call cancelled: {reason}")]
    Cancelled {
        /// Why.
        reason: String,
    },
    /// The executor restarted with the call in flight (retryable).
    #[error("tool call interrupted by an executor restart")]
    Interrupted,
    /// Full OS enforcement was required but is not available.
    #[error("os sandbox unavailable: {missing}")]
    OsSandboxUnavailable {
        /// What is missing.
        missing: String,
    },
    /// The serialized result exceeds `tool_max_output_bytes`.
    #[error("tool output of {size} bytes exceeds {max}")]
    OutputTooLarge {
        /// Serialized size.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// An artifact exceeds `tool_max_artifact_bytes`.
    #[error("artifact {index} of {size} bytes exceeds {max}")]
    ArtifactTooLarge {
        /// Index in encounter order.
        index: usize,
        /// Its serialized size.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// The tool itself failed.
    #[error("tool failed ({reason}): {message}")]
    ToolFailed {
        /// Snake_case reason (`not_found`, `spawn_failed`, `panic`, …).
        reason: String,
        /// Message.
        message: String,
        /// Extra details.
        details: Value,
    },
}

impl Error {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EngineShuttingDown => "engine_shutting_down",
            Self::InvalidEngineConfig { .. } => "invalid_engine_config",
            Self::ProjectNotFound { .. } => "project_not_found",
            Self::InvalidProjectId { .. } => "invalid_project_id",
            Self::InvalidConversationId { .. } => "invalid_conversation_id",
            Self::ProjectAlreadyStarted { .. } => "project_already_started",
            Self::RootInUse { .. } => "root_in_use",
            Self::InvalidRootPath { .. } => "invalid_root_path",
            Self::InvalidRuntimeOpt { .. } => "invalid_runtime_opt",
            Self::InvalidConfigFile { .. } => "invalid_config_file",
            Self::StartProjectFailed { .. } => "start_project_failed",
            Self::ProjectUnavailable { .. } => "project_unavailable",
            Self::ProjectFailed { .. } => "project_failed",
            Self::ConversationNotFound { .. } => "conversation_not_found",
            Self::ConversationAlreadyStarted { .. } => "conversation_already_started",
            Self::InvalidSignal { .. } => "invalid_signal",
            Self::ExternalTypeNotAllowed { .. } => "external_type_not_allowed",
            Self::ReservedType { .. } => "reserved_type",
            Self::ConversationQueueFull { .. } => "conversation_queue_full",
            Self::JournalUnavailable { .. } => "journal_unavailable",
            Self::ProjectionNotFound { .. } => "projection_not_found",
            Self::InvalidAssetKind { .. } => "invalid_asset_kind",
            Self::AssetNotFound { .. } => "asset_not_found",
            Self::InvalidQuery { .. } => "invalid_query",
            Self::AssetLoadFailed { .. } => "asset_load_failed",
            Self::InvalidToolCall { .. } => "invalid_tool_call",
            Self::UnknownTool { .. } => "unknown_tool",
            Self::Policy { error } => error.code(),
            Self::MaxConcurrencyReached { .. } => "max_concurrency_reached",
            Self::ConversationMaxConcurrencyReached { .. } => {
                "conversation_max_concurrency_reached"
            }
            Self::Timeout { .. } => "timeout",
            Self::Cancelled { .. } => "cancelled",
            Self::Interrupted => "interrupted",
            Self::OsSandboxUnavailable { .. } => "os_sandbox_unavailable",
            Self::OutputTooLarge { .. } => "output_too_large",
            Self::ArtifactTooLarge { .. } => "artifact_too_large",
            Self::ToolFailed { .. } => "tool_failed",
        }
    }

    /// Whether the same call may succeed later (SPEC §2.3 "Retry").
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::ProjectUnavailable { .. }
                | Self::ConversationQueueFull { .. }
                | Self::JournalUnavailable { .. }
                | Self::MaxConcurrencyReached { .. }
                | Self::ConversationMaxConcurrencyReached { .. }
                | Self::Timeout { .. }
                | Self::Interrupted
        )
    }

    /// The HTTP status the adapters answer with (SPEC §2.3, last column).
    pub fn http_status(&self) -> u16 {
        match self {
            Self::EngineShuttingDown
            | Self::ProjectUnavailable { .. }
            | Self::ProjectFailed { .. }
            | Self::JournalUnavailable { .. }
            | Self::Interrupted
            | Self::OsSandboxUnavailable { .. } => 503,
            Self::InvalidEngineConfig { .. } | Self::StartProjectFailed { .. } => 500,
            Self::ProjectNotFound { .. }
            | Self::ConversationNotFound { .. }
            | Self::ProjectionNotFound { .. }
            | Self::AssetNotFound { .. }
            | Self::UnknownTool { .. } => 404,
            Self::ProjectAlreadyStarted { .. }
            | Self::RootInUse { .. }
            | Self::ConversationAlreadyStarted { .. }
            | Self::Cancelled { .. } => 409,
            Self::ConversationQueueFull { .. }
            | Self::MaxConcurrencyReached { .. }
            | Self::ConversationMaxConcurrencyReached { .. } => 429,
            Self::AssetLoadFailed { .. } | Self::ToolFailed { .. } => 422,
            Self::Timeout { .. } => 504,
            Self::OutputTooLarge { .. } | Self::ArtifactTooLarge { .. } => 413,
            Self::Policy { error } => match error {
                PolicyError::InvalidToolCall { .. }
                | PolicyError::InvalidToolArgs { .. }
                | PolicyError::InvalidEnvPayload { .. }
                | PolicyError::InvalidPath { .. } => 400,
                PolicyError::UnknownTool { .. } => 404,
                _ => 403,
            },
            _ => 400,
        }
    }

    /// Machine-readable details (an object).
    pub fn details(&self) -> Value {
        match self {
            Self::EngineShuttingDown | Self::Interrupted => json!({}),
            Self::InvalidEngineConfig { reason }
            | Self::InvalidProjectId { reason }
            | Self::InvalidConversationId { reason }
            | Self::InvalidSignal { reason }
            | Self::JournalUnavailable { reason }
            | Self::InvalidQuery { reason }
            | Self::InvalidToolCall { reason }
            | Self::Cancelled { reason } => json!({ "reason": reason }),
            Self::ProjectNotFound { project_id }
            | Self::ProjectAlreadyStarted { project_id }
            | Self::RootInUse { project_id } => json!({ "project_id": project_id }),
            Self::InvalidRootPath { path, reason } => json!({ "path": path, "reason": reason }),
            Self::InvalidRuntimeOpt {
                key,
                reason,
                details,
            } => {
                // Extra details are flattened; one that collides with `key` / `reason` (the
                // entry's own reason of an `invalid_entry`, SPEC §3.3) is kept as `entry_<k>`.
                let mut d = json!({ "key": key, "reason": reason });
                if let (Some(obj), Some(extra)) = (d.as_object_mut(), details.as_object()) {
                    for (k, v) in extra {
                        match obj.get(k) {
                            None => {
                                obj.insert(k.clone(), v.clone());
                            }
                            Some(top) if top != v => {
                                obj.insert(format!("entry_{k}"), v.clone());
                            }
                            Some(_) => {}
                        }
                    }
                }
                d
            }
            Self::InvalidConfigFile {
                path,
                line,
                message,
            } => json!({ "path": path, "line": line, "message": message }),
            Self::StartProjectFailed { stage, reason } => {
                json!({ "stage": stage, "reason": reason })
            }
            Self::ProjectUnavailable { component } => json!({ "component": component }),
            Self::ProjectFailed { project_id, reason } => {
                json!({ "project_id": project_id, "reason": reason })
            }
            Self::ConversationNotFound { conversation_id }
            | Self::ConversationAlreadyStarted { conversation_id } => {
                json!({ "conversation_id": conversation_id })
            }
            Self::ExternalTypeNotAllowed { kind } | Self::ReservedType { kind } => {
                json!({ "type": kind })
            }
            Self::ConversationQueueFull {
                queue_size,
                max_queue_size,
            } => json!({ "queue_size": queue_size, "max_queue_size": max_queue_size }),
            Self::ProjectionNotFound { key } => json!({ "key": key }),
            Self::InvalidAssetKind { kind } => json!({ "kind": kind }),
            Self::AssetNotFound { kind, key } => json!({ "kind": kind, "key": key }),
            Self::AssetLoadFailed { errors } => json!({ "errors": errors }),
            Self::UnknownTool { name } => json!({ "name": name }),
            Self::Policy { error } => error.details(),
            Self::MaxConcurrencyReached { limit, queued_ms } => {
                json!({ "limit": limit, "queued_ms": queued_ms })
            }
            Self::ConversationMaxConcurrencyReached { limit } => json!({ "limit": limit }),
            Self::Timeout { timeout_ms } => json!({ "timeout_ms": timeout_ms }),
            Self::OsSandboxUnavailable { missing } => json!({ "missing": missing }),
            Self::OutputTooLarge { size, max } => json!({ "size": size, "max": max }),
            Self::ArtifactTooLarge { index, size, max } => {
                json!({ "index": index, "size": size, "max": max })
            }
            Self::ToolFailed {
                reason,
                message,
                details,
            } => json!({ "reason": reason, "message": message, "details": details }),
        }
    }

    /// A `tool_failed` error.
    pub fn tool_failed(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::ToolFailed {
            reason: reason.into(),
            message: message.into(),
            details: Value::Null,
        }
    }

    /// The error as its JSON shape `{code, message, details}`.
    pub fn to_json(&self) -> Value {
        json!({ "code": self.code(), "message": self.to_string(), "details": self.details() })
    }
}

impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Error", 3)?;
        st.serialize_field("code", self.code())?;
        st.serialize_field("message", &self.to_string())?;
        st.serialize_field("details", &self.details())?;
        st.end()
    }
}

impl<'de> serde::Deserialize<'de> for Error {
    /// Errors read back from JSON (clients of the HTTP API, stored failures) keep their code
    /// and details inside a `tool_failed`-shaped envelope when the code is not a tool error.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            code: String,
            #[serde(default)]
            message: String,
            #[serde(default)]
            details: Value,
        }
        let w = Wire::deserialize(d)?;
        Ok(Self::ToolFailed {
            reason: w.code,
            message: w.message,
            details: w.details,
        })
    }
}

impl From<OptionsError> for Error {
    fn from(e: OptionsError) -> Self {
        match e {
            OptionsError::InvalidRuntimeOpt {
                key,
                reason,
                details,
            } => Self::InvalidRuntimeOpt {
                key,
                reason,
                details,
            },
            OptionsError::InvalidConfigFile {
                path,
                line,
                message,
            } => Self::InvalidConfigFile {
                path: path.display().to_string(),
                line,
                message,
            },
            OptionsError::InvalidProjectId { reason } => Self::InvalidProjectId { reason },
            #[allow(unreachable_patterns)]
            other => Self::InvalidRuntimeOpt {
                key: String::new(),
                reason: other.code().to_owned(),
                details: other.details(),
            },
        }
    }
}

impl From<codeward_assets::AssetsError> for Error {
    fn from(e: codeward_assets::AssetsError) -> Self {
        use codeward_assets::AssetsError as A;
        match e {
            A::InvalidAssetKind { kind } => Self::InvalidAssetKind { kind },
            A::AssetNotFound { kind, key } => Self::AssetNotFound {
                kind: kind.to_string(),
                key,
            },
            A::InvalidQuery { reason } => Self::InvalidQuery {
                reason: reason.to_string(),
            },
            A::AssetLoadFailed { errors } => Self::AssetLoadFailed {
                errors: serde_json::to_value(errors).unwrap_or(Value::Null),
            },
            #[allow(unreachable_patterns)]
            other => Self::tool_failed("asset_error", other.to_string()),
        }
    }
}

impl From<codeward_actors::conversation::SignalError> for Error {
    fn from(e: codeward_actors::conversation::SignalError) -> Self {
        use codeward_actors::conversation::SignalError as S;
        match e {
            S::Invalid { reason } => Self::InvalidSignal {
                reason: serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            },
            S::ExternalTypeNotAllowed { r#type } => Self::ExternalTypeNotAllowed { kind: r#type },
            S::ReservedType { r#type } => Self::ReservedType { kind: r#type },
        }
    }
}

impl From<codeward_actors::conversation::ProjectionNotFound> for Error {
    /// A projection key that does not parse (`"nope".parse::<ProjectionKey>()`).
    fn from(e: codeward_actors::conversation::ProjectionNotFound) -> Self {
        Self::ProjectionNotFound { key: e.key }
    }
}
