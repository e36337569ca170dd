//! The owned, serializable types of the facade API (SPEC §2): tool calls and their outcomes,
//! project summaries, conversation options, decision records, timelines and health. None of
//! them exposes actor refs, pids or internal state.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use codeward_actors::conversation::RunMode;
pub use codeward_actors::ids::{ConversationId, ProjectId};

use crate::error::Error;

/// Who issued a tool call (SPEC §2.2 `ToolCallMeta.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallSource {
    /// The Rust API.
    #[default]
    Api,
    /// The HTTP adapter.
    Http,
    /// The MCP server.
    Mcp,
    /// The model loop of a conversation.
    Model,
    /// A workflow step.
    Workflow,
    /// A sub-agent.
    Subagent,
    /// The CLI.
    Cli,
}

impl CallSource {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Http => "http",
            Self::Mcp => "mcp",
            Self::Model => "model",
            Self::Workflow => "workflow",
            Self::Subagent => "subagent",
            Self::Cli => "cli",
        }
    }

    pub(crate) fn policy(self) -> codeward_policies::CallSource {
        use codeward_policies::CallSource as P;
        match self {
            Self::Api => P::Api,
            Self::Http => P::Http,
            Self::Mcp => P::Mcp,
            Self::Model => P::Model,
            Self::Workflow => P::Workflow,
            Self::Subagent => P::Subagent,
            Self::Cli => P::Cli,
        }
    }
}

/// Call metadata (SPEC §2.2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolCallMeta {
    /// The conversation the call belongs to (enables the per-conversation quota).
    pub conversation_id: Option<ConversationId>,
    /// Correlation id; blank or absent = generate.
    pub correlation_id: Option<String>,
    /// Tool call id; blank or absent = generate.
    pub tool_call_id: Option<String>,
    /// A shorter timeout than `tool_timeout_ms` (it can only shorten).
    pub timeout_ms: Option<u64>,
    /// Sync or async (`None` = the tool's default).
    pub run_mode: Option<RunMode>,
    /// Who is calling.
    pub source: CallSource,
}

/// One tool invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Tool name.
    pub name: String,
    /// Arguments: an object; `null` means `{}`.
    #[serde(default)]
    pub args: Value,
    /// Metadata.
    #[serde(default)]
    pub meta: ToolCallMeta,
}

impl ToolCall {
    /// A call from the Rust API.
    pub fn new(name: impl Into<String>, args: Value) -> Self {
        Self {
            name: name.into(),
            args,
            meta: ToolCallMeta::default(),
        }
    }

    /// With this metadata.
    pub fn with_meta(mut self, meta: ToolCallMeta) -> Self {
        self.meta = meta;
        self
    }

    /// In this conversation.
    pub fn in_conversation(mut self, id: ConversationId) -> Self {
        self.meta.conversation_id = Some(id);
        self
    }

    /// From this source.
    pub fn from_source(mut self, source: CallSource) -> Self {
        self.meta.source = source;
        self
    }
}

/// A successful call (SPEC §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSuccess {
    /// Project.
    pub project_id: ProjectId,
    /// Tool name.
    pub tool: String,
    /// Tool kind (`builtin`, `asset_command`, …).
    pub kind: String,
    /// Conversation, if any.
    pub conversation_id: Option<ConversationId>,
    /// Correlation id (given or generated).
    pub correlation_id: String,
    /// Tool call id (given or generated).
    pub tool_call_id: String,
    /// The policy decision's id.
    pub decision_id: String,
    /// Wall time of the whole call.
    pub duration_ms: u64,
    /// The result (redacted only with `redact_tool_results`).
    pub result: Value,
    /// `["sensitive_artifact_detected"]` when the secret scan found something.
    pub risk_flags: Vec<String>,
    /// Findings of the secret scan.
    pub sensitivity_findings_count: u32,
    /// Sorted unique kinds of the findings.
    pub sensitivity_finding_kinds: Vec<String>,
}

/// A failed call (SPEC §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("tool call `{tool}` failed: {error}")]
pub struct ToolFailure {
    /// Project (as asked for).
    pub project_id: String,
    /// Tool name (as asked for).
    pub tool: String,
    /// Conversation, if any.
    pub conversation_id: Option<ConversationId>,
    /// Correlation id.
    pub correlation_id: String,
    /// Tool call id.
    pub tool_call_id: String,
    /// The decision id, when the policy ran.
    pub decision_id: Option<String>,
    /// Wall time until the failure.
    pub duration_ms: u64,
    /// What went wrong.
    pub error: Error,
}

impl ToolFailure {
    /// The error's code.
    pub fn code(&self) -> &'static str {
        self.error.code()
    }
}

/// Lifecycle status of a project (SPEC §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStatus {
    /// Starting up.
    Starting,
    /// Serving.
    Running,
    /// Serving, with recent errors.
    Degraded,
    /// Quarantined after exceeding its restart intensity.
    Failed,
    /// Shutting down.
    Stopping,
}

/// One hosted project (SPEC §2.2 `list_projects`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectSummary {
    /// Id.
    pub project_id: ProjectId,
    /// Canonical root.
    pub root_path: PathBuf,
    /// Data dir (absolute).
    pub data_dir: PathBuf,
    /// Status.
    pub status: ProjectStatus,
    /// Live conversations.
    pub conversation_count: usize,
    /// Serving asset generation.
    pub asset_generation: u64,
    /// RFC 3339 start time.
    pub started_at: String,
}

/// Options of a new conversation (SPEC §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConversationOptions {
    /// Id (blank/absent = generate `conv-<ulid>`).
    pub conversation_id: Option<String>,
    /// Registered model client name (default: the project's `model_client`).
    pub model_client: Option<String>,
    /// Model name.
    pub model: Option<String>,
    /// System prompt.
    pub system_prompt: Option<String>,
    /// Temperature.
    pub temperature: Option<f64>,
    /// Token cap.
    pub max_tokens: Option<u64>,
    /// Narrows the tools offered and callable in this conversation (never widens).
    pub allow_tools: Option<Vec<String>>,
    /// Model steps per run.
    pub max_turn_steps: Option<u32>,
    /// Free-form metadata kept with the conversation.
    pub metadata: Option<Value>,
    /// Restore a journaled conversation with this id (default true).
    pub restore: bool,
}

impl Default for ConversationOptions {
    fn default() -> Self {
        Self {
            conversation_id: None,
            model_client: None,
            model: None,
            system_prompt: None,
            temperature: None,
            max_tokens: None,
            allow_tools: None,
            max_turn_steps: None,
            metadata: None,
            restore: true,
        }
    }
}

impl ConversationOptions {
    /// With this id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.conversation_id = Some(id.into());
        self
    }
}

/// A policy decision record (SPEC §5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDecision {
    /// `dec-<ulid>`.
    pub decision_id: String,
    /// RFC 3339 time.
    pub at: String,
    /// Project.
    pub project_id: String,
    /// Conversation.
    pub conversation_id: Option<String>,
    /// Correlation id.
    pub correlation_id: String,
    /// Tool call id.
    pub tool_call_id: String,
    /// Tool.
    pub tool: String,
    /// Source.
    pub source: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// `allowed` or an error code.
    pub reason_code: String,
    /// The rule that decided (`{layer, key, value, origin}`), if any.
    pub rule: Option<Value>,
    /// The argument that decided (`{location, kind, raw (redacted), normalized}`), if any.
    pub subject: Option<Value>,
    /// Outside-root exception reason codes used.
    pub exceptions_used: Vec<String>,
    /// Candidates inspected.
    pub candidates_checked: usize,
    /// One-line explanation.
    pub explain: String,
}

/// Query of `incident_timeline` (SPEC §9.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimelineQuery {
    /// Entries to keep (0 → 100, capped at 500).
    pub limit: usize,
    /// Exact correlation id filter (blank = none).
    pub correlation_id: Option<String>,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// `conversation`, `journal` or `telemetry`.
    pub source: String,
    /// Conversation seq (signals) or telemetry seq (events).
    pub seq: u64,
    /// RFC 3339 time.
    pub at: String,
    /// Signal type or event name.
    pub event: String,
    /// Conversation.
    pub conversation_id: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Tool, for tool events.
    pub tool: Option<String>,
    /// Redacted payload.
    pub payload: Value,
    #[serde(skip)]
    pub(crate) at_ms: i64,
}

/// The incident timeline of a conversation (SPEC §9.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentTimeline {
    /// Project.
    pub project_id: String,
    /// Conversation.
    pub conversation_id: String,
    /// The filter applied.
    pub correlation_id: Option<String>,
    /// The limit applied.
    pub limit: usize,
    /// Entries after the filter, before the limit.
    pub total_entries: usize,
    /// Whether entries were cut by the limit.
    pub truncated: bool,
    /// The last `limit` entries, ascending.
    pub entries: Vec<TimelineEntry>,
}

/// Health of the engine (SPEC §9.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineHealth {
    /// `ok`, `degraded` or `failing`.
    pub status: String,
    /// Crate version.
    pub version: String,
    /// RFC 3339 start.
    pub started_at: String,
    /// Uptime.
    pub uptime_ms: u64,
    /// Project counts by health.
    pub projects: ProjectCounts,
    /// OS sandbox availability.
    pub os_sandbox: Value,
    /// Whether every journal accepts writes.
    pub journals_ok: bool,
    /// Telemetry events dropped across projects.
    pub telemetry_dropped_total: u64,
}

/// Project counts by health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectCounts {
    /// All hosted projects.
    pub total: usize,
    /// Healthy.
    pub ok: usize,
    /// Degraded.
    pub degraded: usize,
    /// Failing.
    pub failing: usize,
}

/// Formats wall-clock milliseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(at_ms: i64) -> String {
    let secs = at_ms.div_euclid(1000);
    let ms = at_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
