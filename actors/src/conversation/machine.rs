//! The pure reducer: `step(state, input) -> (state, effects)` (SPEC §11.2–11.6).
//!
//! Every applied signal — the input's and the ones the reducer derives (`run.opened`,
//! `llm.requested`, `run.closed`, `tool.cancelled`, `resume.rejected`, `queue.overflow`,
//! `run.resumed`, `tool.failed{tool_not_exposed}`) — gets the next conversation seq and is
//! returned as [`Effect::Applied`], in seq order; the actor journals those (write-ahead: it commits
//! the step only after the append, see `crate::conversation_actor`) and pushes them to subscribers. Other effects
//! ask the actor to call the model, submit or cancel tool calls, stop sub-agents or schedule a
//! drain pass. No I/O, no clock: instants come from the signals' `at_ms`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::signal::{Signal, SignalType};
use super::state::{
    ActiveRun, ChatMessage, ConversationEvent, ConversationState, FinishedSubagent, ModelToolCall,
    PendingState, PendingSubagent, PendingToolCall, Role, RunMode, RunSummary, Status,
};
use crate::ids::{CorrelationId, RunId, SignalId, ToolCallId};

/// Closed runs kept in `run_history`.
pub const RUN_HISTORY_LIMIT: usize = 25;
/// Finished sub-agents kept in memory.
pub const FINISHED_SUBAGENTS_LIMIT: usize = 100;

/// What the reducer is fed.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An external signal from call/cast (already validated): enters the bounded inbox and is
    /// applied by a later drain pass. A non-external type is applied at once like `Internal`.
    External(Signal),
    /// An internal signal (model output, tool results, sub-agent lifecycle): applied at once,
    /// never dropped; its number is bounded by the operations in flight.
    Internal(Signal),
    /// One drain pass: applies at most `max_drain_steps` queued signals.
    Drain,
    /// The executor started a pending call (queued → running); applies no signal.
    ToolStarted {
        /// The call.
        tool_call_id: ToolCallId,
    },
}

/// What the actor must do after a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    /// Journal and publish this newly applied entry (acknowledges its signal id).
    Applied(ConversationEvent),
    /// The signal id was seen before: acknowledge with `duplicate: true`, apply nothing.
    Duplicate {
        /// The id.
        signal_id: SignalId,
    },
    /// The inbox is full: fail the call/cast with `conversation_queue_full` (a
    /// `queue.overflow` signal was applied and `conversation.queue_overflow` should be emitted).
    QueueFull {
        /// The refused signal.
        signal_id: SignalId,
        /// Queue size at refusal.
        queue_size: usize,
        /// Bound.
        max_queue_size: usize,
    },
    /// Send the drain self-message (so stop, cancel and queries interleave with long drains).
    ScheduleDrain,
    /// Run model step `step` of `run_id` (build the request from the `llm_context`
    /// projection) after `delay_ms`.
    RequestModel {
        /// Run.
        run_id: RunId,
        /// Correlation to stamp on the model's signals.
        correlation_id: CorrelationId,
        /// Step number (1-based).
        step: u32,
        /// Attempt (0 = first try).
        attempt: u32,
        /// Retry backoff: 250 ms·2ⁿ capped at 4000 ms; 0 for first tries.
        delay_ms: u64,
    },
    /// Drop the in-flight model request of `run_id`; no `llm.completed` may follow.
    AbortModel {
        /// Run.
        run_id: RunId,
    },
    /// Submit this call to the tool executor.
    ExecuteTool(PendingToolCall),
    /// Fire the call's cancellation token (abort task, kill its process tree).
    CancelTool {
        /// The call.
        tool_call_id: ToolCallId,
        /// Why.
        reason: String,
    },
    /// Stop a sub-agent.
    StopSubagent {
        /// The child.
        child_id: String,
        /// Why.
        reason: String,
    },
    /// A result for work that is no longer pending (or a stale model output) was discarded
    /// and counted (`conversation.late_results_discarded`).
    LateResultDiscarded {
        /// The discarded signal.
        signal_id: SignalId,
        /// Its type.
        kind: String,
    },
}

/// Applies one input. Pure: same state and input, same result.
pub fn step(mut state: ConversationState, input: Input) -> (ConversationState, Vec<Effect>) {
    let fx = step_in_place(&mut state, input);
    (state, fx)
}

/// [`step`] on a borrowed state: the same transition, without moving the state (the actor keeps
/// its state in place and undoes a step whose journal append failed).
pub fn step_in_place(state: &mut ConversationState, input: Input) -> Vec<Effect> {
    let mut fx = Vec::new();
    match input {
        Input::External(sig) if sig.kind.is_external() => enqueue(state, sig, &mut fx),
        Input::External(sig) | Input::Internal(sig) => apply_deduped(state, sig, &mut fx),
        Input::Drain => drain(state, &mut fx),
        Input::ToolStarted { tool_call_id } => {
            if let Some(call) = state.pending_tool_calls.get_mut(&tool_call_id) {
                call.state = PendingState::Running;
            }
        }
    }
    debug_assert_eq!(check_invariants(state), Ok(()));
    fx
}

/// The invariants every reachable state satisfies (checked by the property tests, and by
/// `step` in debug builds).
pub fn check_invariants(s: &ConversationState) -> Result<(), String> {
    // INVARIANT: the inbox never exceeds its bound.
    if s.queue.len() > s.config.max_queue_size {
        return Err(format!(
            "queue {} > {}",
            s.queue.len(),
            s.config.max_queue_size
        ));
    }
    // INVARIANT: a non-empty inbox always has a drain pass scheduled (no signal is stranded).
    if !s.queue.is_empty() && !s.drain_scheduled {
        return Err("queued signals without a scheduled drain".into());
    }
    // INVARIANT: the timeline is a gapless window ending at `last_seq`.
    if s.timeline.len() > s.config.timeline_window.max(1) {
        return Err("timeline window exceeded".into());
    }
    for (i, e) in s.timeline.iter().enumerate() {
        let want = s.last_seq + 1 + i as u64 - s.timeline.len() as u64;
        if e.seq != want {
            return Err(format!("timeline seq {} at {i}, want {want}", e.seq));
        }
    }
    // INVARIANT: running ⇔ there is an active run.
    if (s.status == Status::Running) != s.active_run.is_some() {
        return Err(format!(
            "status {:?} vs active run {:?}",
            s.status, s.active_run
        ));
    }
    // INVARIANT: nothing is pending in a cancelled conversation.
    if s.status == Status::Cancelled
        && (!s.pending_tool_calls.is_empty() || !s.pending_subagents.is_empty())
    {
        return Err("pending work while cancelled".into());
    }
    if let Some(run) = &s.active_run
        && run.step > s.config.max_turn_steps
    {
        return Err("more steps than max_turn_steps".into());
    }
    if s.run_history.len() > RUN_HISTORY_LIMIT {
        return Err("run history too long".into());
    }
    Ok(())
}

pub(super) fn remember(state: &mut ConversationState, id: &SignalId) {
    state.seen_ids.insert(id.clone());
    state.seen_order.push_back(id.clone());
    while state.seen_order.len() > state.config.dedupe_window.max(1) {
        if let Some(old) = state.seen_order.pop_front() {
            state.seen_ids.remove(&old);
        }
    }
}

fn enqueue(state: &mut ConversationState, sig: Signal, fx: &mut Vec<Effect>) {
    if state.seen_ids.contains(&sig.id) {
        fx.push(Effect::Duplicate { signal_id: sig.id });
        return;
    }
    let max = state.config.max_queue_size;
    if state.queue.len() >= max {
        let queue_size = state.queue.len();
        state.overflow_count += 1;
        let overflow = Signal::derived(
            SignalType::QueueOverflow,
            json!({
                "reason": "queue_full",
                "queue_size": queue_size,
                "max_queue_size": max,
                "dropped_signal_id": sig.id,
            }),
            &sig.correlation_id,
            Some(&sig.id),
        );
        record(state, stamp(overflow, sig.at_ms), fx);
        fx.push(Effect::QueueFull {
            signal_id: sig.id,
            queue_size,
            max_queue_size: max,
        });
        return;
    }
    remember(state, &sig.id);
    state.queue.push_back(sig);
    schedule_drain(state, fx);
}

fn schedule_drain(state: &mut ConversationState, fx: &mut Vec<Effect>) {
    if !state.drain_scheduled {
        state.drain_scheduled = true;
        fx.push(Effect::ScheduleDrain);
    }
}

fn drain(state: &mut ConversationState, fx: &mut Vec<Effect>) {
    state.drain_scheduled = false;
    state.drain_iteration += 1;
    for _ in 0..state.config.max_drain_steps.max(1) {
        let Some(sig) = state.queue.pop_front() else {
            break;
        };
        apply(state, sig, fx);
    }
    if !state.queue.is_empty() {
        schedule_drain(state, fx);
    }
}

fn apply_deduped(state: &mut ConversationState, sig: Signal, fx: &mut Vec<Effect>) {
    if state.seen_ids.contains(&sig.id) {
        fx.push(Effect::Duplicate { signal_id: sig.id });
        return;
    }
    remember(state, &sig.id);
    apply(state, sig, fx);
}

fn stamp(mut sig: Signal, at_ms: i64) -> Signal {
    sig.at_ms = at_ms;
    sig
}

/// Gives `sig` the next seq, keeps it in the window and the LLM history, emits `Applied`.
pub(super) fn record(state: &mut ConversationState, sig: Signal, fx: &mut Vec<Effect>) {
    // INVARIANT: seqs are assigned here only, each exactly last_seq + 1.
    state.last_seq += 1;
    state.last_signal = Some((sig.kind, sig.at_ms));
    update_history(state, &sig);
    let event = ConversationEvent {
        project_id: state.config.project_id.clone(),
        conversation_id: state.config.conversation_id.clone(),
        seq: state.last_seq,
        signal: sig,
    };
    state.timeline.push_back(event.clone());
    while state.timeline.len() > state.config.timeline_window.max(1) {
        state.timeline.pop_front();
    }
    fx.push(Effect::Applied(event));
}

fn derive(
    state: &mut ConversationState,
    cause: &Signal,
    kind: SignalType,
    data: Value,
    fx: &mut Vec<Effect>,
) {
    let sig = Signal::derived(kind, data, &cause.correlation_id, Some(&cause.id));
    record(state, stamp(sig, cause.at_ms), fx);
}

fn apply(state: &mut ConversationState, sig: Signal, fx: &mut Vec<Effect>) {
    match sig.kind {
        SignalType::UserMessage => on_user_message(state, sig, fx),
        SignalType::Cancel => on_cancel(state, sig, fx),
        SignalType::Resume => on_resume(state, sig, fx),
        SignalType::AssistantDelta
        | SignalType::AssistantMessage
        | SignalType::ToolRequested
        | SignalType::LlmCompleted
        | SignalType::LlmFailed => on_model_output(state, sig, fx),
        SignalType::ToolCompleted | SignalType::ToolFailed | SignalType::ToolCancelled => {
            on_tool_result(state, sig, fx)
        }
        SignalType::SubagentRequested
        | SignalType::SubagentStarted
        | SignalType::SubagentCompleted
        | SignalType::SubagentFailed
        | SignalType::SubagentStopped => on_subagent(state, sig, fx),
        SignalType::LlmRequested
        | SignalType::ResumeRejected
        | SignalType::QueueOverflow
        | SignalType::RunOpened
        | SignalType::RunClosed
        | SignalType::RunResumed
        | SignalType::Stopped => record(state, sig, fx),
    }
}

fn on_user_message(state: &mut ConversationState, sig: Signal, fx: &mut Vec<Effect>) {
    record(state, sig.clone(), fx);
    match state.status {
        Status::Idle => {
            let run_id = RunId::from(sig.correlation_id.clone());
            state.status = Status::Running;
            state.active_run = Some(ActiveRun {
                run_id: run_id.clone(),
                correlation_id: sig.correlation_id.clone(),
                opened_at_ms: sig.at_ms,
                step: 0,
                attempt: 0,
                llm_in_flight: false,
                needs_step: true,
            });
            derive(
                state,
                &sig,
                SignalType::RunOpened,
                json!({ "run_id": run_id }),
                fx,
            );
            continue_run(state, &sig, fx);
        }
        Status::Running => {
            if let Some(run) = state.active_run.as_mut() {
                run.needs_step = true;
            }
            continue_run(state, &sig, fx);
        }
        Status::Cancelled => {} // recorded, no run
    }
}

/// Plans the next step, closes the run, or keeps waiting — whichever the run's state says.
fn continue_run(state: &mut ConversationState, cause: &Signal, fx: &mut Vec<Effect>) {
    let Some(run) = state.active_run.as_ref() else {
        return;
    };
    if run.llm_in_flight {
        return;
    }
    let run_id = run.run_id.clone();
    let waiting = state
        .pending_tool_calls
        .values()
        .any(|c| c.run_mode == RunMode::Sync && c.run_id.as_ref() == Some(&run_id))
        || state
            .pending_subagents
            .values()
            .any(|s| s.run_id.as_ref() == Some(&run_id));
    if waiting {
        return;
    }
    if run.needs_step {
        plan_step(state, cause, fx);
    } else {
        close_run(state, cause, "completed", None, fx);
    }
}

fn plan_step(state: &mut ConversationState, cause: &Signal, fx: &mut Vec<Effect>) {
    let max = state.config.max_turn_steps;
    let message_count = state.history.len() + usize::from(state.config.system_prompt.is_some());
    let tool_count = state
        .config
        .offered_tools
        .as_ref()
        .map_or(state.offered_tool_count, std::collections::BTreeSet::len);
    let model = state.config.model.clone();
    let Some(run) = state.active_run.as_mut() else {
        return;
    };
    if run.step >= max {
        close_run(state, cause, "failed", Some("max_turn_steps_exceeded"), fx);
        return;
    }
    run.step += 1;
    run.attempt = 0;
    run.llm_in_flight = true;
    run.needs_step = false;
    let (run_id, correlation_id, step) = (run.run_id.clone(), run.correlation_id.clone(), run.step);
    let sig = Signal::derived(
        SignalType::LlmRequested,
        json!({
            "run_id": run_id, "step": step, "model": model,
            "message_count": message_count, "tool_count": tool_count,
        }),
        &correlation_id,
        Some(&cause.id),
    );
    record(state, stamp(sig, cause.at_ms), fx);
    fx.push(Effect::RequestModel {
        run_id,
        correlation_id,
        step,
        attempt: 0,
        delay_ms: 0,
    });
}

fn close_run(
    state: &mut ConversationState,
    cause: &Signal,
    status: &str,
    reason: Option<&str>,
    fx: &mut Vec<Effect>,
) {
    let Some(run) = state.active_run.take() else {
        return;
    };
    if state.status == Status::Running {
        state.status = Status::Idle;
    }
    let sig = Signal::derived(
        SignalType::RunClosed,
        json!({ "run_id": run.run_id, "status": status, "reason": reason }),
        &run.correlation_id,
        Some(&cause.id),
    );
    record(state, stamp(sig, cause.at_ms), fx);
    state.run_history.push_back(RunSummary {
        run_id: run.run_id,
        status: status.to_owned(),
        reason: reason.map(str::to_owned),
        steps: run.step,
        opened_at_ms: run.opened_at_ms,
        closed_at_ms: cause.at_ms,
    });
    while state.run_history.len() > RUN_HISTORY_LIMIT {
        state.run_history.pop_front();
    }
}

fn discard(state: &mut ConversationState, sig: &Signal, fx: &mut Vec<Effect>) {
    state.late_results_discarded += 1;
    fx.push(Effect::LateResultDiscarded {
        signal_id: sig.id.clone(),
        kind: sig.kind.as_str().to_owned(),
    });
}

/// Whether a model signal belongs to the request in flight (same run and step).
fn is_current_model_output(state: &ConversationState, sig: &Signal) -> bool {
    let Some(run) = state.active_run.as_ref() else {
        return false;
    };
    run.llm_in_flight
        && state.status == Status::Running
        && sig.str_field("run_id") == Some(run.run_id.as_str())
        && sig.u64_field("step") == Some(u64::from(run.step))
}

fn on_model_output(state: &mut ConversationState, sig: Signal, fx: &mut Vec<Effect>) {
    if !is_current_model_output(state, &sig) {
        // Stale (cancelled, resumed or superseded request): never applied, never plans a step.
        discard(state, &sig, fx);
        return;
    }
    match sig.kind {
        SignalType::ToolRequested => on_tool_requested(state, sig, fx),
        SignalType::LlmCompleted => {
            record(state, sig.clone(), fx);
            if let Some(run) = state.active_run.as_mut() {
                run.llm_in_flight = false;
            }
            continue_run(state, &sig, fx);
        }
        SignalType::LlmFailed => on_llm_failed(state, sig, fx),
        _ => record(state, sig, fx),
    }
}

fn on_llm_failed(state: &mut ConversationState, sig: Signal, fx: &mut Vec<Effect>) {
    record(state, sig.clone(), fx);
    let retryable = sig
        .data
        .get("retryable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let max_retries = state.config.llm_max_retries;
    let Some(run) = state.active_run.as_mut() else {
        return;
    };
    if retryable && run.attempt < max_retries {
        run.attempt += 1;
        let shift = (run.attempt - 1).min(5);
        fx.push(Effect::RequestModel {
            run_id: run.run_id.clone(),
            correlation_id: run.correlation_id.clone(),
            step: run.step,
            attempt: run.attempt,
            delay_ms: (250u64 << shift).min(4000),
        });
        return;
    }
    run.llm_in_flight = false;
    let reason = sig.str_field("reason").unwrap_or("llm_failed").to_owned();
    close_run(state, &sig, "failed", Some(&reason), fx);
}

fn on_tool_requested(state: &mut ConversationState, sig: Signal, fx: &mut Vec<Effect>) {
    let Some(run) = state.active_run.as_mut() else {
        return;
    };
    run.needs_step = true;
    let run_id = run.run_id.clone();
    let name = sig.str_field("name").unwrap_or_default().to_owned();
    let tool_call_id = sig.tool_call_id().unwrap_or_else(ToolCallId::generate);
    let run_mode = match sig.str_field("run_mode") {
        Some("async") => RunMode::Async,
        _ => RunMode::Sync,
    };
    let call = PendingToolCall {
        tool_call_id: tool_call_id.clone(),
        name: name.clone(),
        args: sig.data.get("args").cloned().unwrap_or_else(|| json!({})),
        correlation_id: sig.correlation_id.clone(),
        run_id: Some(run_id),
        run_mode,
        requested_at_ms: sig.at_ms,
        state: PendingState::Queued,
    };
    record(state, sig.clone(), fx);
    let exposed = state
        .config
        .offered_tools
        .as_ref()
        .is_none_or(|t| t.contains(&name));
    if !exposed {
        derive(
            state,
            &sig,
            SignalType::ToolFailed,
            json!({
                "tool_call_id": tool_call_id, "name": name,
                "error": { "code": "tool_not_exposed", "message": format!("tool `{name}` is not offered to the model") },
            }),
            fx,
        );
        return;
    }
    state.pending_tool_calls.insert(tool_call_id, call.clone());
    fx.push(Effect::ExecuteTool(call));
}

fn on_tool_result(state: &mut ConversationState, sig: Signal, fx: &mut Vec<Effect>) {
    let Some(call) = sig
        .tool_call_id()
        .and_then(|id| state.pending_tool_calls.remove(&id))
    else {
        discard(state, &sig, fx);
        return;
    };
    record(state, sig.clone(), fx);
    let active = state
        .active_run
        .as_mut()
        .filter(|r| Some(&r.run_id) == call.run_id.as_ref());
    if let Some(run) = active {
        run.needs_step = true;
        continue_run(state, &sig, fx);
    }
    // else: a result of a run that is no longer active — recorded, plans nothing.
}

fn on_subagent(state: &mut ConversationState, sig: Signal, fx: &mut Vec<Effect>) {
    let child_id = sig.str_field("child_id").unwrap_or_default().to_owned();
    let template_id = sig.str_field("template_id").map(str::to_owned);
    match sig.kind {
        SignalType::SubagentRequested => {
            if state.status != Status::Running {
                discard(state, &sig, fx);
                return;
            }
            record(state, sig.clone(), fx);
            let run_id = state.active_run.as_ref().map(|r| r.run_id.clone());
            state.pending_subagents.insert(
                child_id.clone(),
                PendingSubagent {
                    child_id,
                    template_id,
                    run_id,
                    state: "requested".into(),
                },
            );
        }
        SignalType::SubagentStarted => {
            let Some(pending) = state.pending_subagents.get_mut(&child_id) else {
                discard(state, &sig, fx);
                return;
            };
            pending.state = "started".into();
            record(state, sig, fx);
        }
        _ => {
            let Some(pending) = state.pending_subagents.remove(&child_id) else {
                discard(state, &sig, fx);
                return;
            };
            record(state, sig.clone(), fx);
            let outcome = sig
                .kind
                .as_str()
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_owned();
            state.finished_subagents.push_back(FinishedSubagent {
                child_id,
                template_id,
                outcome,
                reason: sig.str_field("reason").map(str::to_owned),
            });
            while state.finished_subagents.len() > FINISHED_SUBAGENTS_LIMIT {
                state.finished_subagents.pop_front();
            }
            let active = state
                .active_run
                .as_mut()
                .filter(|r| Some(&r.run_id) == pending.run_id.as_ref());
            if let Some(run) = active {
                run.needs_step = true;
                continue_run(state, &sig, fx);
            }
        }
    }
}

fn on_cancel(state: &mut ConversationState, sig: Signal, fx: &mut Vec<Effect>) {
    record(state, sig.clone(), fx);
    let reason = sig
        .str_field("reason")
        .unwrap_or("conversation_cancelled")
        .to_owned();
    state.status = Status::Cancelled;
    if let Some(run) = state.active_run.as_ref() {
        if run.llm_in_flight {
            fx.push(Effect::AbortModel {
                run_id: run.run_id.clone(),
            });
        }
        let sig_close = sig.clone();
        close_run(state, &sig_close, "cancelled", Some(&reason), fx);
    }
    // INVARIANT (relied on by `check_invariants`): a cancel leaves nothing pending.
    let calls = std::mem::take(&mut state.pending_tool_calls);
    for call in calls.into_values() {
        fx.push(Effect::CancelTool {
            tool_call_id: call.tool_call_id.clone(),
            reason: reason.clone(),
        });
        derive(
            state,
            &sig,
            SignalType::ToolCancelled,
            json!({
                "tool_call_id": call.tool_call_id, "name": call.name, "reason": reason,
                "call_correlation_id": call.correlation_id,
            }),
            fx,
        );
    }
    let subagents = std::mem::take(&mut state.pending_subagents);
    for sub in subagents.into_values() {
        fx.push(Effect::StopSubagent {
            child_id: sub.child_id.clone(),
            reason: "cancelled".into(),
        });
        derive(
            state,
            &sig,
            SignalType::SubagentStopped,
            json!({ "child_id": sub.child_id, "template_id": sub.template_id, "reason": "cancelled" }),
            fx,
        );
    }
}

fn on_resume(state: &mut ConversationState, sig: Signal, fx: &mut Vec<Effect>) {
    record(state, sig.clone(), fx);
    match state.status {
        Status::Cancelled => {
            state.status = Status::Idle;
            derive(
                state,
                &sig,
                SignalType::RunResumed,
                json!({ "resume_policy": "new_run_required", "replay_boundary": "post_resume_user_message" }),
                fx,
            );
            // The LLM history restarts at the resume boundary.
            state.history.clear();
            state.history_bytes = 0;
        }
        Status::Idle | Status::Running => {
            let (reason, status) = if state.status == Status::Idle {
                ("not_cancelled", "idle")
            } else {
                ("active_run_in_progress", "running")
            };
            derive(
                state,
                &sig,
                SignalType::ResumeRejected,
                json!({ "reason": reason, "status": status }),
                fx,
            );
        }
    }
}

pub(super) fn push_history(state: &mut ConversationState, msg: ChatMessage) {
    state.history_bytes += msg.weight();
    state.history.push_back(msg);
    while state.history_bytes > state.config.max_context_bytes && state.history.len() > 1 {
        if let Some(old) = state.history.pop_front() {
            state.history_bytes = state.history_bytes.saturating_sub(old.weight());
        }
    }
}

/// Folds an applied signal into the LLM history (user, assistant, tool messages).
fn update_history(state: &mut ConversationState, sig: &Signal) {
    match sig.kind {
        SignalType::UserMessage => {
            let mut msg =
                ChatMessage::new(Role::User, sig.str_field("content").unwrap_or_default());
            msg.script = sig.data.get("script").cloned();
            push_history(state, msg);
        }
        SignalType::AssistantMessage => {
            let mut msg = ChatMessage::new(
                Role::Assistant,
                sig.str_field("content").unwrap_or_default(),
            );
            msg.step_key = step_key(sig);
            push_history(state, msg);
        }
        SignalType::ToolRequested => {
            let call = ModelToolCall {
                id: sig.tool_call_id(),
                name: sig.str_field("name").unwrap_or_default().to_owned(),
                args: sig.data.get("args").cloned().unwrap_or_else(|| json!({})),
                run_mode: None,
            };
            let key = step_key(sig);
            match state.history.back_mut() {
                Some(last)
                    if last.role == Role::Assistant && key.is_some() && last.step_key == key =>
                {
                    state.history_bytes += call.name.len() + call.args.to_string().len();
                    last.tool_calls.push(call);
                }
                _ => {
                    let mut msg = ChatMessage::new(Role::Assistant, "");
                    msg.step_key = key;
                    msg.tool_calls.push(call);
                    push_history(state, msg);
                }
            }
            // Async calls: the next step sees a placeholder result at once (§11.6).
            if sig.str_field("run_mode") == Some("async") {
                let mut placeholder = ChatMessage::new(
                    Role::Tool,
                    json!({ "status": "started", "tool_call_id": sig.data.get("tool_call_id") })
                        .to_string(),
                );
                placeholder.tool_call_id = sig.tool_call_id();
                placeholder.name = sig.str_field("name").map(str::to_owned);
                push_history(state, placeholder);
            }
        }
        SignalType::ToolCompleted | SignalType::ToolFailed | SignalType::ToolCancelled => {
            let content = match sig.kind {
                SignalType::ToolCompleted => sig
                    .data
                    .get("result")
                    .cloned()
                    .unwrap_or(Value::Null)
                    .to_string(),
                SignalType::ToolFailed => {
                    json!({ "error": sig.data.get("error").cloned().unwrap_or(Value::Null) })
                        .to_string()
                }
                _ => json!({ "error": { "code": "cancelled", "reason": sig.data.get("reason") } })
                    .to_string(),
            };
            let mut msg = ChatMessage::new(Role::Tool, content);
            msg.tool_call_id = sig.tool_call_id();
            msg.name = sig.str_field("name").map(str::to_owned);
            push_history(state, msg);
        }
        _ => {}
    }
}

fn step_key(sig: &Signal) -> Option<(RunId, u32)> {
    let run = RunId::parse(sig.str_field("run_id")?).ok()?;
    let step = u32::try_from(sig.u64_field("step")?).ok()?;
    Some((run, step))
}
