//! `ConversationMsg`: what the conversation actor accepts, and the owned answers it gives
//! ([`SignalAck`], [`ConversationSnapshot`], [`ConversationStateView`],
//! [`ConversationActorDiagnostics`]).
//!
//! Callers use the variants above [`ConversationMsg::Crash`]; the actor's own tasks feed results
//! back through [`ConversationMsg::Internal`], whose payload cannot be built outside this crate.

use std::time::Duration;

use ractor::RpcReplyPort;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ConversationError;
use super::subscription::ConversationSubscription;
use crate::conversation::{
    ActiveRunInfo, ConversationConfig, ConversationDiagnostics, ConversationState, PendingSubagent,
    PendingToolCall, Projection, ProjectionKey, RunSummary, Signal, Status,
};
use crate::ids::{ConversationId, CorrelationId, ProjectId, RunId, SignalId, ToolCallId};

/// Why a conversation stops (payload `reason` of `conversation.stopped`, SPEC §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `stop_conversation` was called.
    Requested,
    /// The project is stopping.
    ProjectStopped,
    /// It exceeded its restart intensity (written by the supervisor wiring, not by `stop`).
    Crashed,
    /// A sub-agent's TTL expired.
    TtlExpired,
    /// A sub-agent's run completed.
    Completed,
}

impl StopReason {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::ProjectStopped => "project_stopped",
            Self::Crashed => "crashed",
            Self::TtlExpired => "ttl_expired",
            Self::Completed => "completed",
        }
    }

    /// The reason given to the cancellation that precedes the stop (SPEC §2.2:
    /// `conversation_stopped` for a requested stop).
    pub fn cancel_reason(self) -> &'static str {
        match self {
            Self::Requested => "conversation_stopped",
            other => other.as_str(),
        }
    }
}

/// The answer to a cast: the signal is durably applied (or was already).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalAck {
    /// The signal.
    pub signal_id: SignalId,
    /// Its correlation id.
    pub correlation_id: CorrelationId,
    /// Its conversation seq; `None` only for a duplicate whose first copy is still queued or
    /// fell out of the in-memory window.
    pub seq: Option<u64>,
    /// The id was seen before: acknowledged, not applied again.
    pub duplicate: bool,
}

/// The answer to a call (SPEC §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationSnapshot {
    /// Project.
    pub project_id: ProjectId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Status.
    pub status: Status,
    /// The active run.
    pub active_run: Option<ActiveRunInfo>,
    /// Signals waiting in the inbox.
    pub queue_size: usize,
    /// Pending tool calls, in id order.
    pub pending_tool_calls: Vec<PendingToolCall>,
    /// Pending sub-agents.
    pub pending_subagents: Vec<PendingSubagent>,
    /// Last applied seq.
    pub last_seq: u64,
    /// Whether the conversation was settled when answering (`false` = the timeout passed).
    pub settled: bool,
    /// The signal id was seen before.
    pub duplicate: bool,
}

impl ConversationSnapshot {
    pub(crate) fn of(state: &ConversationState, duplicate: bool) -> Self {
        Self {
            project_id: state.config.project_id.clone(),
            conversation_id: state.config.conversation_id.clone(),
            status: state.status,
            active_run: state.active_run.as_ref().map(|r| ActiveRunInfo {
                run_id: r.run_id.clone(),
                opened_at_ms: r.opened_at_ms,
                opened_at: codeward_assets::format_rfc3339_ms(r.opened_at_ms),
                step_count: r.step,
            }),
            queue_size: state.queue.len(),
            pending_tool_calls: state.pending_calls(),
            pending_subagents: state.pending_subagents.values().cloned().collect(),
            last_seq: state.last_seq,
            settled: state.is_settled(),
            duplicate,
        }
    }
}

/// `conversation_state`: the snapshot fields plus history, provenance and effective options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationStateView {
    /// The snapshot fields (`duplicate` is always `false` here).
    #[serde(flatten)]
    pub snapshot: ConversationSnapshot,
    /// Closed runs (≤25, oldest first).
    pub run_history: Vec<RunSummary>,
    /// Creation time (Unix milliseconds).
    pub created_at_ms: i64,
    /// Creation time (RFC 3339 UTC with milliseconds; SPEC §2.2 `created_at`).
    pub created_at: String,
    /// Parent, for sub-agents.
    pub parent_conversation_id: Option<ConversationId>,
    /// Rebuilt from a non-empty journal by this incarnation of the actor.
    pub restored: bool,
    /// Effective conversation configuration.
    pub config: ConversationConfig,
    /// Effective options as given at start (opaque JSON).
    pub options: Value,
}

/// `conversation_diagnostics` (SPEC §9.2): the fields of the `diagnostics` projection
/// (`subscriber_count` and `restored` included) plus the actor's own work counts. Derefs to
/// the projection fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationActorDiagnostics {
    /// The SPEC §9.2 fields (shared with the `diagnostics` projection).
    #[serde(flatten)]
    pub core: ConversationDiagnostics,
    /// Tool calls whose task is still running (including cancelled ones not yet returned).
    pub tool_tasks: usize,
    /// A model request is in flight or waiting for its retry delay.
    pub model_in_flight: bool,
}

impl std::ops::Deref for ConversationActorDiagnostics {
    type Target = ConversationDiagnostics;
    fn deref(&self) -> &ConversationDiagnostics {
        &self.core
    }
}

/// Messages of the conversation actor.
pub enum ConversationMsg {
    /// Appends an external signal and waits until the conversation is settled or `timeout`
    /// passes (then `settled: false`).
    Call {
        /// The (validated) external signal.
        signal: Signal,
        /// How long to wait for settling.
        timeout: Duration,
        /// Reply port.
        reply: RpcReplyPort<Result<ConversationSnapshot, ConversationError>>,
    },
    /// Appends an external signal; replies once it is durably applied.
    Cast {
        /// The (validated) external signal.
        signal: Signal,
        /// Reply port.
        reply: RpcReplyPort<Result<SignalAck, ConversationError>>,
    },
    /// Replies with the state view.
    State {
        /// Reply port.
        reply: RpcReplyPort<ConversationStateView>,
    },
    /// Replies with one projection of the live state.
    Projection {
        /// Which.
        key: ProjectionKey,
        /// Reply port.
        reply: RpcReplyPort<Projection>,
    },
    /// Replies with the diagnostics.
    Diagnostics {
        /// Reply port.
        reply: RpcReplyPort<ConversationActorDiagnostics>,
    },
    /// Replies with a subscription: journal replay from `from_seq` (when given), then live.
    Subscribe {
        /// First seq wanted (`None` = live only).
        from_seq: Option<u64>,
        /// Reply port.
        reply: RpcReplyPort<ConversationSubscription>,
    },
    /// Cancels, journals `conversation.stopped`, ends subscriptions and stops the actor normally
    /// (a transient child is not restarted).
    Stop {
        /// Why.
        reason: StopReason,
        /// Reply port.
        reply: RpcReplyPort<Result<(), ConversationError>>,
    },
    /// **Failure injection** (tests, runbook): panics inside the handler, so the supervisor
    /// restarts the actor, which rebuilds from the journal.
    Crash,
    /// Sent by the actor to itself and by its own tasks.
    Internal(InternalMsg),
}

/// A message the actor sends itself (opaque outside this crate).
pub struct InternalMsg(pub(crate) Internal);

/// What the actor's own tasks and timers report.
pub(crate) enum Internal {
    /// One drain pass.
    Drain,
    /// Signals produced by background work (model output, tool results), applied in order as
    /// one journal batch.
    Signals {
        signals: Vec<Signal>,
        report: Option<ModelReport>,
    },
    /// The executor started a call.
    ToolStarted { tool_call_id: ToolCallId },
    /// A call's settle timeout passed.
    SettleTimeout { waiter: u64 },
    /// Retry the internal batches whose append failed.
    RetryBacklog,
}

/// How a model request went (for the `conversation.llm.*` telemetry, emitted once applied).
#[derive(Debug, Clone)]
pub(crate) struct ModelReport {
    pub(crate) run_id: RunId,
    pub(crate) step: u32,
    pub(crate) attempt: u32,
    pub(crate) duration_ms: u64,
}

impl ConversationMsg {
    pub(crate) fn internal(msg: Internal) -> Self {
        Self::Internal(InternalMsg(msg))
    }
}
