//! Recovery (SPEC §12.2): fold journaled entries back into a [`ConversationState`] with effects
//! suppressed, then interrupt the work that cannot be resumed safely.
//!
//! Journaled entries are *facts*: replay never derives signals (the derived ones are in the
//! journal too), it only rebuilds status, the active run, pending work, the timeline window and
//! the LLM history. [`interrupt`] then writes `tool.failed{interrupted}` per pending call,
//! `subagent.failed{interrupted}` per pending sub-agent and `run.closed{interrupted}` for an
//! active run; a running conversation becomes idle (a cancelled one stays cancelled — it needs an
//! explicit resume). State snapshots are not covered yet: replay starts from the first journaled
//! entry (or any seq, when the state is fresh).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::machine::{Effect, FINISHED_SUBAGENTS_LIMIT, RUN_HISTORY_LIMIT, record, remember};
use super::signal::{Signal, SignalType};
use super::state::{
    ActiveRun, ConversationConfig, ConversationEvent, ConversationState, FinishedSubagent,
    PendingState, PendingSubagent, PendingToolCall, RunMode, RunSummary, Status,
};
use crate::ids::{RunId, ToolCallId};

/// A journal that cannot be folded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum RestoreError {
    /// Entries are not consecutive (storage at fault).
    #[error("journal seq gap: expected {expected}, found {found}")]
    SeqGap {
        /// The seq expected next.
        expected: u64,
        /// The seq found.
        found: u64,
    },
}

impl RestoreError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SeqGap { .. } => "journal_seq_gap",
        }
    }
}

/// What a restore did (payload of `conversation.restored`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReport {
    /// Entries folded.
    pub events_replayed: u64,
    /// Pending calls failed as interrupted.
    pub interrupted_tool_calls: u64,
}

/// Rebuilds a conversation from its journaled entries (in seq order) and interrupts in-flight
/// work. Returns the state, the effects of the interruption (`Applied` entries to journal and
/// publish) and a report.
pub fn restore(
    config: ConversationConfig,
    entries: impl IntoIterator<Item = ConversationEvent>,
    at_ms: i64,
) -> Result<(ConversationState, Vec<Effect>, RestoreReport), RestoreError> {
    let mut state = ConversationState::new(config);
    let mut replayed = 0u64;
    for entry in entries {
        replay(&mut state, entry)?;
        replayed += 1;
    }
    let interrupted = state.pending_tool_calls.len() as u64;
    let fx = interrupt(&mut state, at_ms);
    Ok((
        state,
        fx,
        RestoreReport {
            events_replayed: replayed,
            interrupted_tool_calls: interrupted,
        },
    ))
}

/// Folds one journaled entry, effects suppressed.
pub fn replay(state: &mut ConversationState, entry: ConversationEvent) -> Result<(), RestoreError> {
    if state.last_seq == 0 && state.timeline.is_empty() {
        state.last_seq = entry.seq.saturating_sub(1);
    }
    if entry.seq != state.last_seq + 1 {
        return Err(RestoreError::SeqGap {
            expected: state.last_seq + 1,
            found: entry.seq,
        });
    }
    let sig = entry.signal;
    remember(state, &sig.id);
    fold(state, &sig);
    let mut sink = Vec::new();
    record(state, sig, &mut sink);
    Ok(())
}

fn run_id_of(sig: &Signal) -> Option<RunId> {
    sig.str_field("run_id").and_then(|r| RunId::parse(r).ok())
}

/// The state change a journaled signal stands for.
fn fold(state: &mut ConversationState, sig: &Signal) {
    match sig.kind {
        SignalType::RunOpened => {
            let run_id = run_id_of(sig).unwrap_or_else(|| RunId::from(sig.correlation_id.clone()));
            state.status = Status::Running;
            state.active_run = Some(ActiveRun {
                run_id,
                correlation_id: sig.correlation_id.clone(),
                opened_at_ms: sig.at_ms,
                step: 0,
                attempt: 0,
                llm_in_flight: false,
                needs_step: true,
            });
        }
        SignalType::LlmRequested => {
            if let Some(run) = state.active_run.as_mut() {
                run.step = sig
                    .u64_field("step")
                    .and_then(|s| u32::try_from(s).ok())
                    .unwrap_or(run.step + 1);
                run.attempt = 0;
                run.llm_in_flight = true;
                run.needs_step = false;
            }
        }
        SignalType::LlmCompleted => {
            if let Some(run) = state.active_run.as_mut() {
                run.llm_in_flight = false;
            }
        }
        SignalType::LlmFailed => {
            if let Some(run) = state.active_run.as_mut() {
                run.attempt += 1;
            }
        }
        SignalType::ToolRequested => {
            let run_id = state.active_run.as_mut().map(|r| {
                r.needs_step = true;
                r.run_id.clone()
            });
            let id = sig.tool_call_id().unwrap_or_else(ToolCallId::generate);
            let run_mode = if sig.str_field("run_mode") == Some("async") {
                RunMode::Async
            } else {
                RunMode::Sync
            };
            state.pending_tool_calls.insert(
                id.clone(),
                PendingToolCall {
                    tool_call_id: id,
                    name: sig.str_field("name").unwrap_or_default().to_owned(),
                    args: sig.data.get("args").cloned().unwrap_or_else(|| json!({})),
                    correlation_id: sig.correlation_id.clone(),
                    run_id,
                    run_mode,
                    requested_at_ms: sig.at_ms,
                    state: PendingState::Queued,
                },
            );
        }
        SignalType::ToolCompleted | SignalType::ToolFailed | SignalType::ToolCancelled => {
            if let Some(id) = sig.tool_call_id() {
                state.pending_tool_calls.remove(&id);
            }
        }
        SignalType::RunClosed => {
            if let Some(run) = state.active_run.take() {
                state.run_history.push_back(RunSummary {
                    run_id: run.run_id,
                    status: sig.str_field("status").unwrap_or("completed").to_owned(),
                    reason: sig.str_field("reason").map(str::to_owned),
                    steps: run.step,
                    opened_at_ms: run.opened_at_ms,
                    closed_at_ms: sig.at_ms,
                });
                while state.run_history.len() > RUN_HISTORY_LIMIT {
                    state.run_history.pop_front();
                }
            }
            if state.status == Status::Running {
                state.status = Status::Idle;
            }
        }
        SignalType::Cancel => state.status = Status::Cancelled,
        SignalType::RunResumed => {
            state.status = Status::Idle;
            state.history.clear();
            state.history_bytes = 0;
        }
        SignalType::QueueOverflow => state.overflow_count += 1,
        SignalType::SubagentRequested => {
            let child_id = sig.str_field("child_id").unwrap_or_default().to_owned();
            state.pending_subagents.insert(
                child_id.clone(),
                PendingSubagent {
                    child_id,
                    template_id: sig.str_field("template_id").map(str::to_owned),
                    run_id: state.active_run.as_ref().map(|r| r.run_id.clone()),
                    state: "requested".into(),
                },
            );
        }
        SignalType::SubagentStarted => {
            if let Some(p) = state
                .pending_subagents
                .get_mut(sig.str_field("child_id").unwrap_or_default())
            {
                p.state = "started".into();
            }
        }
        SignalType::SubagentCompleted
        | SignalType::SubagentFailed
        | SignalType::SubagentStopped => {
            let child_id = sig.str_field("child_id").unwrap_or_default().to_owned();
            if let Some(p) = state.pending_subagents.remove(&child_id) {
                state.finished_subagents.push_back(FinishedSubagent {
                    child_id,
                    template_id: p.template_id,
                    outcome: sig
                        .kind
                        .as_str()
                        .rsplit('.')
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                    reason: sig.str_field("reason").map(str::to_owned),
                });
                while state.finished_subagents.len() > FINISHED_SUBAGENTS_LIMIT {
                    state.finished_subagents.pop_front();
                }
            }
        }
        SignalType::UserMessage
        | SignalType::Resume
        | SignalType::AssistantDelta
        | SignalType::AssistantMessage
        | SignalType::ResumeRejected
        | SignalType::Stopped => {}
    }
}

/// Fails what was in flight at the crash: pending calls, pending sub-agents, the active run.
pub fn interrupt(state: &mut ConversationState, at_ms: i64) -> Vec<Effect> {
    let mut fx = Vec::new();
    let calls = std::mem::take(&mut state.pending_tool_calls);
    for call in calls.into_values() {
        let sig = Signal::derived(
            SignalType::ToolFailed,
            json!({
                "tool_call_id": call.tool_call_id, "name": call.name,
                "error": { "code": "interrupted", "message": "in-flight work cannot be resumed after a restart" },
            }),
            &call.correlation_id,
            None,
        );
        record_at(state, sig, at_ms, &mut fx);
    }
    let subagents = std::mem::take(&mut state.pending_subagents);
    for sub in subagents.into_values() {
        let corr = state
            .active_run
            .as_ref()
            .map(|r| r.correlation_id.clone())
            .unwrap_or_else(crate::ids::CorrelationId::generate);
        let sig = Signal::derived(
            SignalType::SubagentFailed,
            json!({ "child_id": sub.child_id, "template_id": sub.template_id, "reason": "interrupted" }),
            &corr,
            None,
        );
        record_at(state, sig, at_ms, &mut fx);
    }
    if let Some(run) = state.active_run.take() {
        let sig = Signal::derived(
            SignalType::RunClosed,
            json!({ "run_id": run.run_id, "status": "interrupted", "reason": Value::Null }),
            &run.correlation_id,
            None,
        );
        record_at(state, sig, at_ms, &mut fx);
        state.run_history.push_back(RunSummary {
            run_id: run.run_id,
            status: "interrupted".into(),
            reason: None,
            steps: run.step,
            opened_at_ms: run.opened_at_ms,
            closed_at_ms: at_ms,
        });
        while state.run_history.len() > RUN_HISTORY_LIMIT {
            state.run_history.pop_front();
        }
    }
    if state.status == Status::Running {
        state.status = Status::Idle;
    }
    fx
}

fn record_at(state: &mut ConversationState, mut sig: Signal, at_ms: i64, fx: &mut Vec<Effect>) {
    sig.at_ms = at_ms;
    remember(state, &sig.id);
    record(state, sig, fx);
}
