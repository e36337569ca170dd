//! Conversation state: configuration, status, the active run, pending work, the bounded inbox,
//! the in-memory timeline window and the LLM history. Pure data; `machine.rs` changes it.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::signal::{Signal, SignalType};
use crate::ids::{ConversationId, CorrelationId, ProjectId, RunId, SignalId, ToolCallId};

/// Per-conversation limits and model settings (validated by the runtime's option layer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationConfig {
    /// Owning project.
    pub project_id: ProjectId,
    /// This conversation.
    pub conversation_id: ConversationId,
    /// Parent, for sub-agents.
    pub parent_conversation_id: Option<ConversationId>,
    /// Model name passed to the client.
    pub model: Option<String>,
    /// System prompt, always kept at the head of the LLM context.
    pub system_prompt: Option<String>,
    /// `conversation_max_queue_size` (10 000): external signals waiting in the inbox.
    pub max_queue_size: usize,
    /// `conversation_max_drain_steps` (128): signals applied per drain pass.
    pub max_drain_steps: usize,
    /// `conversation_max_turn_steps` (32): model steps per run.
    pub max_turn_steps: u32,
    /// `conversation_timeline_window` (2000): signals kept in memory.
    pub timeline_window: usize,
    /// Signal ids remembered for de-duplication (10 000).
    pub dedupe_window: usize,
    /// `llm_max_retries` (1): retries of a retryable model failure per step.
    pub llm_max_retries: u32,
    /// LLM history budget in bytes (1 MiB), trimmed from the oldest end.
    pub max_context_bytes: usize,
    /// Tools offered to the model; a call naming another one fails `tool_not_exposed`
    /// unexecuted. `None` = not checked here.
    pub offered_tools: Option<BTreeSet<String>>,
}

impl ConversationConfig {
    /// The SPEC defaults for this conversation.
    pub fn new(project_id: ProjectId, conversation_id: ConversationId) -> Self {
        Self {
            project_id,
            conversation_id,
            parent_conversation_id: None,
            model: None,
            system_prompt: None,
            max_queue_size: 10_000,
            max_drain_steps: 128,
            max_turn_steps: 32,
            timeline_window: 2000,
            dedupe_window: 10_000,
            llm_max_retries: 1,
            max_context_bytes: 1024 * 1024,
            offered_tools: None,
        }
    }
}

/// Conversation status (SPEC §11.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No active run.
    Idle,
    /// A run is active.
    Running,
    /// Cancelled; only `resume` leaves it.
    Cancelled,
}

/// How a tool call's result reaches the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// The run waits for the result.
    #[default]
    Sync,
    /// The run continues with a placeholder; the result arrives later.
    Async,
}

/// Where a pending call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingState {
    /// Submitted, not started.
    Queued,
    /// The executor started it.
    Running,
}

/// A tool call requested and not yet terminal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingToolCall {
    /// Id.
    pub tool_call_id: ToolCallId,
    /// Tool name.
    pub name: String,
    /// Arguments.
    pub args: Value,
    /// The run's correlation id.
    pub correlation_id: CorrelationId,
    /// The run that requested it.
    pub run_id: Option<RunId>,
    /// Sync or async.
    pub run_mode: RunMode,
    /// When it was requested.
    pub requested_at_ms: i64,
    /// Queued or running.
    pub state: PendingState,
}

/// A sub-agent requested or running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSubagent {
    /// The child conversation id.
    pub child_id: String,
    /// Template.
    pub template_id: Option<String>,
    /// The run that requested it.
    pub run_id: Option<RunId>,
    /// `requested` or `started`.
    pub state: String,
}

/// A finished sub-agent (bounded list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedSubagent {
    /// The child conversation id.
    pub child_id: String,
    /// Template.
    pub template_id: Option<String>,
    /// `completed`, `failed` or `stopped`.
    pub outcome: String,
    /// Failure or stop reason.
    pub reason: Option<String>,
}

/// The active run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRun {
    /// Run id (= correlation id of its first user message).
    pub run_id: RunId,
    /// The correlation carried by derived signals.
    pub correlation_id: CorrelationId,
    /// Opening time.
    pub opened_at_ms: i64,
    /// Model steps taken so far.
    pub step: u32,
    /// Attempt of the current step (0 = first try).
    pub attempt: u32,
    /// A model request for `step` is in flight (or scheduled for retry).
    pub llm_in_flight: bool,
    /// Something happened that the next step must see (tool results, new user messages,
    /// sub-agent results); otherwise the run closes when the model finishes.
    pub needs_step: bool,
}

/// Summary of a closed run (≤25 kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Run id.
    pub run_id: RunId,
    /// `completed`, `failed`, `cancelled` or `interrupted`.
    pub status: String,
    /// Reason for non-completed runs.
    pub reason: Option<String>,
    /// Steps taken.
    pub steps: u32,
    /// Opened at.
    pub opened_at_ms: i64,
    /// Closed at.
    pub closed_at_ms: i64,
}

/// An applied signal with its conversation seq (what the journal stores and subscribers get).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationEvent {
    /// Project.
    pub project_id: ProjectId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Conversation seq: 1, 2, 3 … without gaps.
    pub seq: u64,
    /// The signal.
    pub signal: Signal,
}

/// Role of an LLM context message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System prompt.
    System,
    /// User.
    User,
    /// Assistant.
    Assistant,
    /// Tool result.
    Tool,
}

/// A tool call as the model requested it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelToolCall {
    /// Id (generated when the model gives none).
    pub id: Option<ToolCallId>,
    /// Tool name.
    pub name: String,
    /// Arguments.
    #[serde(default)]
    pub args: Value,
    /// Requested run mode (sync when absent).
    #[serde(default)]
    pub run_mode: Option<RunMode>,
}

/// One message of the LLM context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Role.
    pub role: Role,
    /// Text (tool results: their JSON).
    pub content: String,
    /// For tool messages: the call answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<ToolCallId>,
    /// For assistant messages: the calls requested.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ModelToolCall>,
    /// For tool messages: the tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// For user messages: the `script` object of the signal data (used by the scripted model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Value>,
    /// (run, step) of the assistant message, to attach tool calls to it.
    #[serde(skip)]
    pub(crate) step_key: Option<(RunId, u32)>,
}

impl ChatMessage {
    /// A message with just role and content.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_call_id: None,
            tool_calls: Vec::new(),
            name: None,
            script: None,
            step_key: None,
        }
    }

    pub(crate) fn weight(&self) -> usize {
        self.content.len()
            + self
                .tool_calls
                .iter()
                .map(|c| c.name.len() + c.args.to_string().len())
                .sum::<usize>()
            + 16
    }
}

/// The whole folded state of one conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationState {
    /// Configuration.
    pub config: ConversationConfig,
    /// Status.
    pub status: Status,
    /// Last applied conversation seq (0 = none).
    pub last_seq: u64,
    /// The active run.
    pub active_run: Option<ActiveRun>,
    /// Pending tool calls by id.
    pub pending_tool_calls: BTreeMap<ToolCallId, PendingToolCall>,
    /// Pending sub-agents by child id.
    pub pending_subagents: BTreeMap<String, PendingSubagent>,
    /// Finished sub-agents (≤100, newest last).
    pub finished_subagents: VecDeque<FinishedSubagent>,
    /// Closed runs (≤25, newest last).
    pub run_history: VecDeque<RunSummary>,
    /// External signals waiting for a drain pass.
    pub queue: VecDeque<Signal>,
    /// A drain pass is scheduled (self-message sent, not yet handled).
    pub drain_scheduled: bool,
    /// Drain passes so far.
    pub drain_iteration: u64,
    /// Applied signals kept in memory (the last `timeline_window`).
    pub timeline: VecDeque<ConversationEvent>,
    /// LLM history since the last resume boundary, trimmed to `max_context_bytes`.
    pub history: VecDeque<ChatMessage>,
    pub(crate) history_bytes: usize,
    pub(crate) seen_ids: HashSet<SignalId>,
    pub(crate) seen_order: VecDeque<SignalId>,
    /// `conversation.queue.overflow` signals written.
    pub overflow_count: u64,
    /// Late or stale results discarded (`conversation.late_results_discarded`).
    pub late_results_discarded: u64,
    /// Type and time of the last applied signal.
    pub last_signal: Option<(SignalType, i64)>,
    /// How many tools the runtime offers the model right now (the actor refreshes it before
    /// each batch of inputs); `tool_count` of `conversation.llm.requested` when
    /// `config.offered_tools` is `None`.
    pub offered_tool_count: usize,
}

impl ConversationState {
    /// A fresh, idle conversation.
    pub fn new(config: ConversationConfig) -> Self {
        Self {
            config,
            status: Status::Idle,
            last_seq: 0,
            active_run: None,
            pending_tool_calls: BTreeMap::new(),
            pending_subagents: BTreeMap::new(),
            finished_subagents: VecDeque::new(),
            run_history: VecDeque::new(),
            queue: VecDeque::new(),
            drain_scheduled: false,
            drain_iteration: 0,
            timeline: VecDeque::new(),
            history: VecDeque::new(),
            history_bytes: 0,
            seen_ids: HashSet::new(),
            seen_order: VecDeque::new(),
            overflow_count: 0,
            late_results_discarded: 0,
            last_signal: None,
            offered_tool_count: 0,
        }
    }

    /// Settled: idle or cancelled, empty queue, no pending sync tool call or sub-agent
    /// (async calls do not count) — what `conversation_call` waits for.
    pub fn is_settled(&self) -> bool {
        self.status != Status::Running
            && self.queue.is_empty()
            && self.pending_subagents.is_empty()
            && self
                .pending_tool_calls
                .values()
                .all(|c| c.run_mode == RunMode::Async)
    }
}
