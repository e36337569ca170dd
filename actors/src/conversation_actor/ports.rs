//! The two ports the conversation actor talks through: [`ConversationStore`] (the durable
//! journal) and [`ToolRunner`] (the runtime's policy-gated tool execution path). The actor never
//! names the journal's or the executor's concrete types; the runtime implements these over the
//! SQLite journal and the `ToolExecutor`, tests implement them in memory.
//!
//! Both ports are narrow on purpose: appends, loads and two bookkeeping writes for the store;
//! "what may the model call" and "run this call" for the runner.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::conversation::{ConversationEvent, ModelTool, RunMode};
use crate::ids::{ConversationId, CorrelationId, ProjectId, ToolCallId};

/// Why a store operation failed. `code` is stable snake_case (`journal_unavailable`,
/// `duplicate_signal`, …); the actor reports every append failure as `journal_unavailable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("journal store failed ({code}): {message}")]
pub struct StoreError {
    /// Stable snake_case code.
    pub code: String,
    /// Human-readable detail.
    pub message: String,
}

impl StoreError {
    /// A `journal_unavailable` error with this message.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            code: "journal_unavailable".into(),
            message: message.into(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }
}

/// What [`ConversationStore::register`] records about a conversation (the journal's
/// `conversations` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationMeta {
    /// Owning project.
    pub project_id: ProjectId,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its parent, for sub-agents.
    pub parent_conversation_id: Option<ConversationId>,
    /// Creation time (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// The effective options as JSON (opaque here).
    pub options: Value,
}

/// The durable journal of one project, as the conversation actor sees it.
///
/// Implementations must be cheap to share (`Arc`) and must not block the runtime: every method
/// returns a future; the actor awaits appends inside its handler (write-ahead), so an append
/// should resolve promptly (the SQLite journal group-commits within 2 ms).
pub trait ConversationStore: Send + Sync + 'static {
    /// Durably appends applied entries, all of one conversation, in seq order (one transaction).
    /// `Ok` only after commit; on `Err` nothing of the batch may be visible to [`load`].
    ///
    /// [`load`]: ConversationStore::load
    fn append(&self, entries: Vec<ConversationEvent>)
    -> BoxFuture<'static, Result<(), StoreError>>;

    /// Journaled entries of `id` with `seq > after_seq`, ascending; at most `limit` of them
    /// (`None` = all).
    fn load(
        &self,
        id: &ConversationId,
        after_seq: u64,
        limit: Option<usize>,
    ) -> BoxFuture<'static, Result<Vec<ConversationEvent>, StoreError>>;

    /// Records the conversation (upsert: called on every start and restart).
    fn register(&self, meta: ConversationMeta) -> BoxFuture<'static, Result<(), StoreError>>;

    /// Records that the conversation stopped, why (`requested`, `project_stopped`, `crashed`, …)
    /// and when.
    fn mark_stopped(
        &self,
        id: &ConversationId,
        reason: &str,
        at_ms: i64,
    ) -> BoxFuture<'static, Result<(), StoreError>>;
}

/// One tool call handed to the [`ToolRunner`].
pub struct ToolRunRequest {
    /// The calling conversation.
    pub conversation_id: ConversationId,
    /// The call's id (from `tool.requested`).
    pub tool_call_id: ToolCallId,
    /// The run's correlation id.
    pub correlation_id: CorrelationId,
    /// Tool name.
    pub name: String,
    /// Arguments (an object).
    pub args: Value,
    /// Sync or async (the reducer already handled the async placeholder; just run it).
    pub run_mode: RunMode,
    /// Fired when the call is cancelled (conversation cancel or stop) or the actor goes away:
    /// the runner must abort the call and kill its process tree.
    pub cancel: CancellationToken,
    /// Call once when the executor actually starts the call (queued → running).
    pub on_started: Box<dyn FnOnce() + Send>,
}

impl std::fmt::Debug for ToolRunRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRunRequest")
            .field("conversation_id", &self.conversation_id)
            .field("tool_call_id", &self.tool_call_id)
            .field("correlation_id", &self.correlation_id)
            .field("name", &self.name)
            .field("run_mode", &self.run_mode)
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// How a tool call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ToolOutcome {
    /// It succeeded.
    Completed {
        /// The (redacted, capped) result.
        result: Value,
        /// Execution time.
        duration_ms: u64,
        /// Risk flags raised by the execution path.
        risk_flags: Vec<String>,
    },
    /// It failed: policy denial, validation, timeout, cancellation, tool error … (`code` is the
    /// `codeward::Error` code).
    Failed {
        /// Stable snake_case code.
        code: String,
        /// Human-readable (redacted) message.
        message: String,
        /// Error details.
        details: Value,
        /// Time until it failed.
        duration_ms: u64,
    },
}

/// The runtime's tool execution path, scoped to one conversation.
pub trait ToolRunner: Send + Sync + 'static {
    /// The tools offered to the model for this conversation (already scoped by the runtime);
    /// asked once per model step.
    fn offered_tools(&self) -> Vec<ModelTool>;

    /// How many tools [`offered_tools`](Self::offered_tools) would return; asked before each
    /// batch of inputs (for `tool_count` of `conversation.llm.requested`), so implementations
    /// should count without building the list.
    fn offered_tool_count(&self) -> usize {
        self.offered_tools().len()
    }

    /// Runs one call through the execution path. Must honour `req.cancel` and call
    /// `req.on_started` when the executor starts it. Never panics: every failure is a
    /// [`ToolOutcome::Failed`] (the actor still turns a panic into `tool_failed{panic}`).
    fn run(&self, req: ToolRunRequest) -> BoxFuture<'static, ToolOutcome>;
}
