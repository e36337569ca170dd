//! Conversations, pure core: the signal envelope, the reducer `step(state, input) -> (state,
//! effects)`, projections and the model-client contract with its scripted implementation.
//!
//! The actor that drives it (journal, tools, model, subscriptions) is
//! [`crate::conversation_actor`]. Files: `signal.rs` (envelope and types),
//! `state.rs` (data), `machine.rs` (the reducer and its invariants), `projection.rs`,
//! `model.rs`, `restore.rs` (journal replay), `tests.rs` (scenario and property tests).

mod machine;
mod model;
mod projection;
mod restore;
mod signal;
mod state;
#[cfg(test)]
mod tests;

pub use machine::{
    Effect, FINISHED_SUBAGENTS_LIMIT, Input, RUN_HISTORY_LIMIT, check_invariants, step,
    step_in_place,
};
pub use model::{
    DeltaSink, ModelClient, ModelError, ModelRequest, ModelResponse, ModelTool, ScriptedModel,
    response_signals,
};
pub use projection::{
    ActiveRunInfo, ConversationDiagnostics, LlmContext, Projection, ProjectionKey,
    ProjectionNotFound, SubagentStatus, Timeline,
};
pub use restore::{RestoreError, RestoreReport, interrupt, replay, restore};
pub use signal::{InvalidSignalReason, MAX_CONTENT_BYTES, Signal, SignalError, SignalType};
pub use state::{
    ActiveRun, ChatMessage, ConversationConfig, ConversationEvent, ConversationState,
    FinishedSubagent, ModelToolCall, PendingState, PendingSubagent, PendingToolCall, Role, RunMode,
    RunSummary, Status,
};
