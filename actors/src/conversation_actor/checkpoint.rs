//! Write-ahead without cloning the state: a [`Checkpoint`] taken before a step lets the actor
//! undo the step exactly when the journal append fails.
//!
//! Cloning a [`ConversationState`] per step is too slow (a 2000-entry timeline, a 10 000-id
//! dedupe window and a 1 MiB LLM history are tens of thousands of allocations). Instead the
//! checkpoint copies only the light parts (status, counters, the active run, pending work, run
//! history) and, for the heavy parts, disables the reducer's *trimming* for the duration of the
//! step — `timeline_window`, `dedupe_window` and `max_context_bytes` are raised to `usize::MAX`
//! — so the step only ever *appends* to them. Then:
//!
//! - **commit** restores the bounds and trims (timeline from the front to its window, dedupe ids
//!   FIFO, LLM history from the oldest end to its byte budget — the same result as trimming after
//!   every push, since each trim keeps the longest suffix that fits);
//! - **rollback** truncates what the step appended (timeline entries, dedupe ids, history
//!   messages and the tool calls attached to the last assistant message), restores the light
//!   parts, and forgets the ids of the external signals the failed step applied, so a caller's
//!   retry with the same id is not mistaken for a duplicate.
//!
//! One reducer path does more than append: a `resume` clears the LLM history. When the step may
//! apply a resume, [`Checkpoint::begin`] also clones the history (rare).
//!
//! The inbox is not restored: a failed drain pass has already taken its signals out of the
//! queue, and they stay out — they fail `journal_unavailable` (SPEC §12.2: not applied). The
//! drain flags stay as the step left them (consistent with that queue).

use std::collections::{BTreeMap, HashSet, VecDeque};

use crate::conversation::{
    ActiveRun, ChatMessage, ConversationState, FinishedSubagent, PendingSubagent, PendingToolCall,
    RunSummary, SignalType, Status,
};
use crate::ids::{SignalId, ToolCallId};

/// The undo information of one (possibly multi-input) step.
pub(crate) struct Checkpoint {
    status: Status,
    last_seq: u64,
    active_run: Option<ActiveRun>,
    pending_tool_calls: BTreeMap<ToolCallId, PendingToolCall>,
    pending_subagents: BTreeMap<String, PendingSubagent>,
    // Only changes when a sub-agent was pending at the start (a terminal sub-agent signal).
    finished_subagents: Option<VecDeque<FinishedSubagent>>,
    // Only changes when a run was active at the start (close_run).
    run_history: Option<VecDeque<RunSummary>>,
    timeline_len: usize,
    history_len: usize,
    history_back_calls: usize,
    history_bytes: usize,
    history: Option<VecDeque<ChatMessage>>,
    seen_len: usize,
    overflow_count: u64,
    late_results_discarded: u64,
    last_signal: Option<(SignalType, i64)>,
    timeline_window: usize,
    dedupe_window: usize,
    max_context_bytes: usize,
}

impl Checkpoint {
    /// Records the undo information and disables trimming. `may_resume`: the step may apply a
    /// `conversation.resume` (which clears the history).
    pub(crate) fn begin(state: &mut ConversationState, may_resume: bool) -> Self {
        let cp = Self {
            status: state.status,
            last_seq: state.last_seq,
            active_run: state.active_run.clone(),
            pending_tool_calls: state.pending_tool_calls.clone(),
            pending_subagents: state.pending_subagents.clone(),
            finished_subagents: (!state.pending_subagents.is_empty())
                .then(|| state.finished_subagents.clone()),
            run_history: state
                .active_run
                .is_some()
                .then(|| state.run_history.clone()),
            timeline_len: state.timeline.len(),
            history_len: state.history.len(),
            history_back_calls: state.history.back().map_or(0, |m| m.tool_calls.len()),
            history_bytes: state.history_bytes,
            history: may_resume.then(|| state.history.clone()),
            seen_len: state.seen_order.len(),
            overflow_count: state.overflow_count,
            late_results_discarded: state.late_results_discarded,
            last_signal: state.last_signal,
            timeline_window: state.config.timeline_window,
            dedupe_window: state.config.dedupe_window,
            max_context_bytes: state.config.max_context_bytes,
        };
        state.config.timeline_window = usize::MAX;
        state.config.dedupe_window = usize::MAX;
        state.config.max_context_bytes = usize::MAX;
        cp
    }

    fn restore_bounds(&self, state: &mut ConversationState) {
        state.config.timeline_window = self.timeline_window;
        state.config.dedupe_window = self.dedupe_window;
        state.config.max_context_bytes = self.max_context_bytes;
    }

    /// Keeps the step: restores the bounds and trims to them.
    pub(crate) fn commit(self, state: &mut ConversationState) {
        self.restore_bounds(state);
        let window = state.config.timeline_window.max(1);
        while state.timeline.len() > window {
            state.timeline.pop_front();
        }
        let dedupe = state.config.dedupe_window.max(1);
        while state.seen_order.len() > dedupe {
            if let Some(old) = state.seen_order.pop_front() {
                state.seen_ids.remove(&old);
            }
        }
        while state.history_bytes > state.config.max_context_bytes && state.history.len() > 1 {
            if let Some(old) = state.history.pop_front() {
                state.history_bytes = state.history_bytes.saturating_sub(old.weight());
            }
        }
    }

    /// Undoes the step. `forget`: ids of external signals the step applied (taken from the inbox
    /// in earlier steps), removed from the dedupe window.
    pub(crate) fn rollback(self, state: &mut ConversationState, forget: &[SignalId]) {
        self.restore_bounds(state);
        state.status = self.status;
        state.last_seq = self.last_seq;
        state.active_run = self.active_run;
        state.pending_tool_calls = self.pending_tool_calls;
        state.pending_subagents = self.pending_subagents;
        if let Some(finished) = self.finished_subagents {
            state.finished_subagents = finished;
        }
        if let Some(history) = self.run_history {
            state.run_history = history;
        }
        state.timeline.truncate(self.timeline_len);
        match self.history {
            Some(history) => state.history = history,
            None => {
                state.history.truncate(self.history_len);
                if let Some(back) = state.history.back_mut() {
                    back.tool_calls.truncate(self.history_back_calls);
                }
            }
        }
        state.history_bytes = self.history_bytes;
        while state.seen_order.len() > self.seen_len {
            if let Some(id) = state.seen_order.pop_back() {
                state.seen_ids.remove(&id);
            }
        }
        let removed: HashSet<&SignalId> = forget
            .iter()
            .filter(|id| state.seen_ids.remove(*id))
            .collect();
        if !removed.is_empty() {
            state.seen_order.retain(|id| !removed.contains(id));
        }
        state.overflow_count = self.overflow_count;
        state.late_results_discarded = self.late_results_discarded;
        state.last_signal = self.last_signal;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::conversation::{
        ConversationConfig, Effect, Input, ModelRequest, ScriptedModel, Signal, check_invariants,
        response_signals, step_in_place,
    };
    use crate::ids::{ConversationId, ProjectId};

    fn config() -> ConversationConfig {
        let mut c = ConversationConfig::new(
            ProjectId::parse("proj").unwrap(),
            ConversationId::parse("conv-cp").unwrap(),
        );
        c.timeline_window = 8;
        c.dedupe_window = 6;
        c.max_context_bytes = 300;
        c.max_drain_steps = 2;
        c
    }

    /// Everything a rollback must restore (the queue and drain flags excepted).
    fn observable(s: &ConversationState) -> String {
        format!(
            "{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}|{:?}|{}|{}|{:?}",
            s.status,
            s.last_seq,
            s.active_run,
            s.pending_tool_calls,
            s.pending_subagents,
            s.finished_subagents,
            s.run_history,
            s.timeline,
            s.history,
            s.history_bytes,
            s.seen_order,
            {
                let mut v: Vec<_> = s.seen_ids.iter().map(|i| i.to_string()).collect();
                v.sort();
                v
            },
            s.overflow_count,
            s.late_results_discarded,
            s.last_signal,
        )
    }

    fn scripted(tools: usize) -> Signal {
        let calls: Vec<_> = (0..tools)
            .map(|i| json!({"name": format!("t{i}")}))
            .collect();
        let mut s = Signal::user_message("x".repeat(40));
        s.data.insert(
            "script".into(),
            json!({"tool_calls": calls, "assistant_text": "ok"}),
        );
        s
    }

    /// Inputs for op `n` against `state` (model answers target the live request).
    fn input_for(n: u8, state: &ConversationState, model: &ScriptedModel) -> Vec<Input> {
        match n % 7 {
            0 => vec![Input::External(scripted(usize::from(n % 3)))],
            1 => vec![Input::Drain],
            2 => match ModelRequest::for_state(state, vec![], 1) {
                Some(req) if state.active_run.as_ref().is_some_and(|r| r.llm_in_flight) => {
                    let (d, r) = model.answer(&req);
                    response_signals(&req, &d, r)
                        .into_iter()
                        .map(Input::Internal)
                        .collect()
                }
                _ => vec![Input::Drain],
            },
            3 => state
                .pending_calls()
                .first()
                .map(|c| {
                    Input::Internal(Signal::derived(
                        SignalType::ToolCompleted,
                        json!({"tool_call_id": c.tool_call_id, "name": c.name, "result": {}}),
                        &c.correlation_id,
                        None,
                    ))
                })
                .into_iter()
                .collect(),
            4 => vec![Input::Internal(Signal::cancel(None))],
            5 => vec![Input::External(Signal::resume())],
            _ => vec![Input::External(Signal::user_message("y".repeat(90)))],
        }
    }

    fn may_resume(state: &ConversationState, input: &Input) -> bool {
        match input {
            Input::Drain => state.queue.iter().any(|s| s.kind == SignalType::Resume),
            Input::Internal(s) | Input::External(s) => s.kind == SignalType::Resume,
            Input::ToolStarted { .. } => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Committing gives exactly what the plain reducer gives; rolling back gives exactly the
        /// state before the step (queue and drain flags aside), and the windows stay bounded.
        #[test]
        fn commit_matches_the_reducer_and_rollback_restores(ops in proptest::collection::vec(any::<u8>(), 1..60), fail_mask in any::<u64>()) {
            let model = ScriptedModel::new();
            let mut state = ConversationState::new(config());
            for (i, n) in ops.iter().enumerate() {
                for input in input_for(*n, &state, &model) {
                    let mut expected = state.clone();
                    let fail = fail_mask >> (i % 64) & 1 == 1;
                    let mut plain = state.clone();
                    let fx_plain = step_in_place(&mut plain, input.clone());
                    let resume = may_resume(&state, &input);
                    let cp = Checkpoint::begin(&mut state, resume);
                    let fx = step_in_place(&mut state, input);
                    prop_assert_eq!(fx.len(), fx_plain.len());
                    let applied: Vec<SignalId> = fx.iter().filter_map(|e| match e {
                        Effect::Applied(ev) if ev.signal.kind.is_external() => Some(ev.signal.id.clone()),
                        _ => None,
                    }).collect();
                    if fail && !applied.is_empty() {
                        cp.rollback(&mut state, &applied);
                        expected.seen_ids.retain(|id| !applied.contains(id));
                        expected.seen_order.retain(|id| !applied.contains(id));
                        prop_assert_eq!(observable(&state), observable(&expected));
                        for id in &applied {
                            prop_assert!(!state.seen_ids.contains(id));
                        }
                    } else {
                        cp.commit(&mut state);
                        // Same observable result as the plain reducer, except that the plain
                        // reducer trims the history only on pushes.
                        prop_assert_eq!(state.timeline.len(), plain.timeline.len());
                        prop_assert_eq!(state.last_seq, plain.last_seq);
                        prop_assert_eq!(&state.seen_order, &plain.seen_order);
                        prop_assert_eq!(&state.pending_tool_calls, &plain.pending_tool_calls);
                        prop_assert_eq!(state.status, plain.status);
                        prop_assert!(state.history_bytes <= state.config.max_context_bytes || state.history.len() <= 1);
                    }
                    prop_assert!(state.timeline.len() <= 8);
                    prop_assert!(state.seen_order.len() <= 6);
                    prop_assert_eq!(state.seen_order.len(), state.seen_ids.len());
                    prop_assert_eq!(check_invariants(&state), Ok(()));
                }
            }
        }
    }
}
