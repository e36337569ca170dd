//! Reducer tests: scenarios driven by the scripted model and a fake executor, and property tests
//! over arbitrary interleavings of inputs (seq gapless, queue bound and overflow, cancel leaves
//! nothing pending, late results change nothing, invariants always hold).

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::ids::{ConversationId, ProjectId, ToolCallId};

fn config() -> ConversationConfig {
    ConversationConfig::new(
        ProjectId::parse("proj").unwrap(),
        ConversationId::parse("conv-test").unwrap(),
    )
}

/// Feeds inputs and runs the effects the way the actor will: drains, model steps through the
/// scripted model, tool calls through `tool` (None = leave pending).
struct Harness {
    state: ConversationState,
    applied: Vec<ConversationEvent>,
    effects: Vec<Effect>,
    model: ScriptedModel,
}

impl Harness {
    fn new(config: ConversationConfig) -> Self {
        Self {
            state: ConversationState::new(config),
            applied: Vec::new(),
            effects: Vec::new(),
            model: ScriptedModel::new(),
        }
    }

    fn feed(&mut self, input: Input) -> Vec<Effect> {
        let (state, fx) = step(self.state.clone(), input);
        check_invariants(&state).unwrap();
        self.state = state;
        for e in &fx {
            if let Effect::Applied(ev) = e {
                self.applied.push(ev.clone());
            }
        }
        self.effects.extend(fx.iter().cloned());
        fx
    }

    /// Runs until no effect asks for more work. Tool calls complete at once unless `hold`.
    fn run(&mut self, input: Input, hold_tools: bool) {
        let mut inputs = std::collections::VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let fx = self.feed(input);
            let mut next = Vec::new();
            for e in fx {
                match e {
                    Effect::ScheduleDrain => next.push(Input::Drain),
                    Effect::RequestModel { .. } => {
                        let req = ModelRequest::for_state(&self.state, vec![], 1000).unwrap();
                        let (deltas, result) = self.model.answer(&req);
                        next.extend(
                            response_signals(&req, &deltas, result)
                                .into_iter()
                                .map(Input::Internal),
                        );
                    }
                    Effect::ExecuteTool(call) if !hold_tools => {
                        next.push(Input::Internal(tool_ok(&call)))
                    }
                    _ => {}
                }
            }
            inputs.extend(next);
        }
    }

    fn types(&self) -> Vec<&'static str> {
        self.applied
            .iter()
            .map(|e| e.signal.kind.as_str().trim_start_matches("conversation."))
            .collect()
    }
}

fn tool_ok(call: &PendingToolCall) -> Signal {
    Signal::derived(
        SignalType::ToolCompleted,
        json!({ "tool_call_id": call.tool_call_id, "name": call.name, "result": {"ok": true}, "duration_ms": 1, "risk_flags": [] }),
        &call.correlation_id,
        None,
    )
}

fn tool_result_for(id: &ToolCallId) -> Signal {
    Signal::derived(
        SignalType::ToolCompleted,
        json!({ "tool_call_id": id, "name": "x", "result": {} }),
        &crate::ids::CorrelationId::generate(),
        None,
    )
}

fn scripted(content: &str, script: serde_json::Value) -> Signal {
    let mut s = Signal::user_message(content);
    s.data.insert("script".into(), script);
    s
}

#[test]
fn user_message_is_acknowledged_and_the_run_closes() {
    let mut h = Harness::new(config());
    h.run(Input::External(Signal::user_message("hi there")), false);
    assert_eq!(
        h.types(),
        vec![
            "user.message",
            "run.opened",
            "llm.requested",
            "assistant.message",
            "llm.completed",
            "run.closed"
        ]
    );
    assert_eq!(
        h.applied.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<u64>>()
    );
    assert_eq!(
        h.applied[3].signal.str_field("content"),
        Some("Acknowledged: hi there")
    );
    assert_eq!(h.applied[5].signal.str_field("status"), Some("completed"));
    assert_eq!(h.state.status, Status::Idle);
    assert!(h.state.is_settled());
    // every derived signal carries the run's correlation id
    let corr = &h.applied[0].signal.correlation_id;
    assert!(h.applied.iter().all(|e| &e.signal.correlation_id == corr));
}

#[test]
fn tool_calls_loop_until_the_model_answers_without_tools() {
    let mut h = Harness::new(config());
    let script = json!({ "assistant_text": "reading", "tool_calls": [{"name": "fs.read", "args": {"path": "a"}}, {"name": "fs.list"}] });
    h.run(Input::External(scripted("do it", script)), false);
    assert_eq!(
        h.types(),
        vec![
            "user.message",
            "run.opened",
            "llm.requested",
            "assistant.message",
            "tool.requested",
            "tool.requested",
            "llm.completed",
            "tool.completed",
            "tool.completed",
            "llm.requested",
            "assistant.message",
            "llm.completed",
            "run.closed",
        ]
    );
    assert_eq!(
        h.applied[10].signal.str_field("content"),
        Some("Tool fs.read completed. Tool fs.list completed.")
    );
    assert_eq!(h.state.run_history[0].steps, 2);
    assert_eq!(h.state.run_history[0].status, "completed");
    // the llm context pairs the calls with the assistant message and holds the tool results
    let ctx = h.state.llm_context();
    let roles: Vec<Role> = ctx.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        vec![
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::Tool,
            Role::Assistant
        ]
    );
    assert_eq!(ctx.messages[1].tool_calls.len(), 2);
}

#[test]
fn scripted_ids_are_deterministic() {
    let run = |_: ()| {
        let mut h = Harness::new(config());
        let mut s = scripted("x", json!({ "tool_calls": [{"name": "t"}] }));
        s.id = crate::ids::SignalId::parse("sig-1").unwrap();
        s.correlation_id = crate::ids::CorrelationId::parse("corr-1").unwrap();
        h.run(Input::External(s), true);
        h.state.pending_calls()[0].tool_call_id.clone()
    };
    assert_eq!(run(()), run(()));
}

#[test]
fn max_turn_steps_closes_the_run_failed() {
    let mut cfg = config();
    cfg.max_turn_steps = 1;
    let mut h = Harness::new(cfg);
    h.run(
        Input::External(scripted("x", json!({ "tool_calls": [{"name": "t"}] }))),
        false,
    );
    let last = h.applied.last().unwrap();
    assert_eq!(last.signal.kind, SignalType::RunClosed);
    assert_eq!(last.signal.str_field("status"), Some("failed"));
    assert_eq!(
        last.signal.str_field("reason"),
        Some("max_turn_steps_exceeded")
    );
    assert_eq!(h.state.status, Status::Idle);
}

#[test]
fn retryable_model_failure_retries_with_backoff_then_fails() {
    let mut cfg = config();
    cfg.llm_max_retries = 2;
    let mut h = Harness::new(cfg);
    h.run(
        Input::External(scripted(
            "x",
            json!({ "fail": {"code": "rate_limited", "retryable": true} }),
        )),
        false,
    );
    let retries: Vec<(u32, u64)> = h
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::RequestModel {
                attempt, delay_ms, ..
            } => Some((*attempt, *delay_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(retries, vec![(0, 0), (1, 250), (2, 500)]);
    let last = h.applied.last().unwrap();
    assert_eq!(
        (
            last.signal.str_field("status"),
            last.signal.str_field("reason")
        ),
        (Some("failed"), Some("rate_limited"))
    );
}

#[test]
fn cancel_cancels_every_pending_call_and_ignores_late_results() {
    let mut h = Harness::new(config());
    h.run(
        Input::External(scripted(
            "x",
            json!({ "tool_calls": [{"name": "a"}, {"name": "b"}] }),
        )),
        true,
    );
    assert_eq!(h.state.pending_tool_calls.len(), 2);
    let pending = h.state.pending_calls();
    let cancel = Signal::cancel(None);
    let fx = h.feed(Input::Internal(cancel.clone()));
    let cancelled: Vec<&Signal> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Applied(ev) if ev.signal.kind == SignalType::ToolCancelled => Some(&ev.signal),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled.len(), 2);
    for (sig, call) in cancelled.iter().zip(&pending) {
        assert_eq!(sig.correlation_id, cancel.correlation_id);
        assert_eq!(sig.causation_id.as_ref(), Some(&cancel.id));
        assert_eq!(
            sig.str_field("call_correlation_id"),
            Some(call.correlation_id.as_str())
        );
        assert_eq!(sig.str_field("reason"), Some("conversation_cancelled"));
    }
    assert_eq!(
        fx.iter()
            .filter(|e| matches!(e, Effect::CancelTool { .. }))
            .count(),
        2
    );
    assert!(h.state.pending_tool_calls.is_empty());
    assert_eq!(h.state.status, Status::Cancelled);
    assert_eq!(h.state.run_history.back().unwrap().status, "cancelled");

    let before = h.state.clone();
    let fx = h.feed(Input::Internal(tool_ok(&pending[0])));
    assert!(
        matches!(fx.as_slice(), [Effect::LateResultDiscarded { .. }]),
        "{fx:?}"
    );
    assert_eq!(
        h.state.late_results_discarded,
        before.late_results_discarded + 1
    );
    assert_eq!(h.state.last_seq, before.last_seq);
}

#[test]
fn cancel_aborts_an_in_flight_model_request_and_drops_its_output() {
    let mut h = Harness::new(config());
    h.feed(Input::External(Signal::user_message("x")));
    h.feed(Input::Drain);
    let req = ModelRequest::for_state(&h.state, vec![], 1000).unwrap();
    let fx = h.feed(Input::Internal(Signal::cancel(Some("user_abort"))));
    assert!(fx.iter().any(|e| matches!(e, Effect::AbortModel { .. })));
    let (d, r) = h.model.answer(&req);
    for s in response_signals(&req, &d, r) {
        let fx = h.feed(Input::Internal(s));
        assert!(matches!(
            fx.as_slice(),
            [Effect::LateResultDiscarded { .. }]
        ));
    }
    assert!(!h.types().contains(&"llm.completed"));
}

#[test]
fn resume_rules() {
    let mut h = Harness::new(config());
    let fx = h.feed(Input::Internal(Signal::resume()));
    let Some(Effect::Applied(ev)) = fx.last() else {
        panic!()
    };
    assert_eq!(
        (ev.signal.kind, ev.signal.str_field("reason")),
        (SignalType::ResumeRejected, Some("not_cancelled"))
    );

    h.run(
        Input::External(scripted("x", json!({ "tool_calls": [{"name": "a"}] }))),
        true,
    );
    let fx = h.feed(Input::Internal(Signal::resume()));
    let Some(Effect::Applied(ev)) = fx.last() else {
        panic!()
    };
    assert_eq!(
        ev.signal.str_field("reason"),
        Some("active_run_in_progress")
    );

    h.feed(Input::Internal(Signal::cancel(None)));
    // a user message while cancelled is recorded, opens no run
    let fx = h.feed(Input::Internal(Signal::user_message("still there?")));
    assert_eq!(fx.len(), 1);
    assert_eq!(h.state.status, Status::Cancelled);
    let fx = h.feed(Input::Internal(Signal::resume()));
    let Some(Effect::Applied(ev)) = fx.last() else {
        panic!()
    };
    assert_eq!(ev.signal.kind, SignalType::RunResumed);
    assert_eq!(h.state.status, Status::Idle);
    assert!(h.state.history.is_empty(), "resume is a history boundary");
    h.run(Input::External(Signal::user_message("again")), false);
    assert_eq!(h.state.run_history.back().unwrap().status, "completed");
}

#[test]
fn queue_overflow_is_reported_and_drains_are_bounded() {
    let mut cfg = config();
    cfg.max_queue_size = 2;
    cfg.max_drain_steps = 1;
    let mut h = Harness::new(cfg);
    let fx = h.feed(Input::External(Signal::user_message("1")));
    assert_eq!(fx, vec![Effect::ScheduleDrain]);
    assert!(
        h.feed(Input::External(Signal::user_message("2")))
            .is_empty()
    );
    let third = Signal::user_message("3");
    let fx = h.feed(Input::External(third.clone()));
    assert!(
        matches!(&fx[0], Effect::Applied(ev) if ev.signal.kind == SignalType::QueueOverflow
        && ev.signal.str_field("dropped_signal_id") == Some(third.id.as_str()))
    );
    assert_eq!(
        fx[1],
        Effect::QueueFull {
            signal_id: third.id.clone(),
            queue_size: 2,
            max_queue_size: 2
        }
    );
    assert_eq!(h.state.overflow_count, 1);
    // one signal per pass, then the pass reschedules itself
    let fx = h.feed(Input::Drain);
    assert_eq!(fx.last(), Some(&Effect::ScheduleDrain));
    assert_eq!(h.state.queue.len(), 1);
}

#[test]
fn duplicates_are_acknowledged_not_applied() {
    let mut h = Harness::new(config());
    let s = Signal::user_message("x");
    h.feed(Input::External(s.clone()));
    assert_eq!(
        h.feed(Input::External(s.clone())),
        vec![Effect::Duplicate {
            signal_id: s.id.clone()
        }]
    );
    h.feed(Input::Drain);
    assert_eq!(
        h.feed(Input::Internal(s.clone())),
        vec![Effect::Duplicate { signal_id: s.id }]
    );
}

#[test]
fn async_calls_do_not_hold_the_run_and_late_async_results_are_recorded() {
    let mut h = Harness::new(config());
    h.run(
        Input::External(scripted(
            "x",
            json!({ "tool_calls": [{"name": "slow", "run_mode": "async"}] }),
        )),
        true,
    );
    // the run went on with the placeholder and closed; the call is still pending
    assert_eq!(h.state.status, Status::Idle);
    assert_eq!(h.state.run_history.back().unwrap().status, "completed");
    assert!(h.state.is_settled());
    let calls = h.state.pending_calls();
    assert_eq!(calls[0].run_mode, RunMode::Async);
    let text = h
        .applied
        .iter()
        .rev()
        .find(|e| e.signal.kind == SignalType::AssistantMessage)
        .unwrap();
    assert_eq!(text.signal.str_field("content"), Some("Tool slow started."));
    let fx = h.feed(Input::Internal(tool_ok(&calls[0])));
    assert_eq!(fx.len(), 1, "recorded, plans no step: {fx:?}");
    assert!(h.state.pending_tool_calls.is_empty());
}

#[test]
fn tools_not_offered_fail_unexecuted() {
    let mut cfg = config();
    cfg.offered_tools = Some(BTreeSet::from(["fs.read".to_owned()]));
    let mut h = Harness::new(cfg);
    h.run(
        Input::External(scripted(
            "x",
            json!({ "tool_calls": [{"name": "command.run"}] }),
        )),
        false,
    );
    assert!(
        !h.effects
            .iter()
            .any(|e| matches!(e, Effect::ExecuteTool(_)))
    );
    let failed = h
        .applied
        .iter()
        .find(|e| e.signal.kind == SignalType::ToolFailed)
        .unwrap();
    assert_eq!(failed.signal.data["error"]["code"], "tool_not_exposed");
    let answer = h
        .applied
        .iter()
        .rev()
        .find(|e| e.signal.kind == SignalType::AssistantMessage)
        .unwrap();
    assert_eq!(
        answer.signal.str_field("content"),
        Some("Tool command.run failed: tool_not_exposed.")
    );
}

#[test]
fn projections() {
    let mut cfg = config();
    cfg.timeline_window = 4;
    cfg.system_prompt = Some("be brief".into());
    let mut h = Harness::new(cfg);
    h.run(Input::External(Signal::user_message("hello")), false);
    let Projection::Timeline(t) = h.state.project(ProjectionKey::Timeline) else {
        panic!()
    };
    assert_eq!(
        (t.first_seq, t.last_seq, t.truncated, t.entries.len()),
        (3, 6, true, 4)
    );
    let ctx = h.state.llm_context();
    assert_eq!(ctx.messages[0].role, Role::System);
    assert_eq!(ctx.messages[0].content, "be brief");
    let d = h.state.diagnostics();
    assert_eq!(
        (d.event_count, d.timeline_in_memory, d.run_history_count),
        (6, 4, 1)
    );
    assert_eq!(
        d.last_signal_type.as_deref(),
        Some("conversation.run.closed")
    );
    assert_eq!(
        "LLM_Context".parse::<ProjectionKey>(),
        Ok(ProjectionKey::LlmContext)
    );
    assert_eq!(
        "nope".parse::<ProjectionKey>().unwrap_err().code(),
        "projection_not_found"
    );
    let subs = h.state.subagent_status();
    assert_eq!(subs.count, 0);
}

#[test]
fn subagents_hold_the_run_until_terminal() {
    let mut h = Harness::new(config());
    h.run(
        Input::External(scripted(
            "x",
            json!({ "tool_calls": [{"name": "agent.spawn.helper"}] }),
        )),
        true,
    );
    let corr = h.state.active_run.as_ref().unwrap().correlation_id.clone();
    let req = Signal::derived(
        SignalType::SubagentRequested,
        json!({"child_id": "sub-1", "template_id": "helper"}),
        &corr,
        None,
    );
    h.feed(Input::Internal(req));
    let call = h.state.pending_calls()[0].clone();
    h.run(Input::Internal(tool_ok(&call)), true);
    assert_eq!(
        h.state.status,
        Status::Running,
        "the sub-agent keeps the run open"
    );
    assert_eq!(h.state.subagent_status().active_count, 1);
    let done = Signal::derived(
        SignalType::SubagentCompleted,
        json!({"child_id": "sub-1", "result": "ok"}),
        &corr,
        None,
    );
    h.run(Input::Internal(done), true);
    assert_eq!(h.state.status, Status::Idle);
    assert_eq!(h.state.subagent_status().completed[0].outcome, "completed");
}

// ------------------------------------------------------------------------------------------
// Property tests

#[derive(Debug, Clone)]
enum Op {
    User(u8),
    UserScripted { tools: u8, async_mask: u8 },
    CancelNow,
    CancelQueued,
    Resume,
    Drain,
    AnswerModel,
    FailModel(bool),
    StaleModel,
    ToolResult(usize),
    LateToolResult,
    ToolStarted(usize),
    Duplicate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u8>().prop_map(Op::User),
        3 => (0u8..3, any::<u8>()).prop_map(|(tools, async_mask)| Op::UserScripted { tools, async_mask }),
        1 => Just(Op::CancelNow),
        1 => Just(Op::CancelQueued),
        1 => Just(Op::Resume),
        4 => Just(Op::Drain),
        4 => Just(Op::AnswerModel),
        1 => any::<bool>().prop_map(Op::FailModel),
        1 => Just(Op::StaleModel),
        4 => any::<usize>().prop_map(Op::ToolResult),
        1 => Just(Op::LateToolResult),
        1 => any::<usize>().prop_map(Op::ToolStarted),
        1 => Just(Op::Duplicate),
    ]
}

fn small_config() -> ConversationConfig {
    let mut c = config();
    c.max_queue_size = 3;
    c.max_drain_steps = 2;
    c.max_turn_steps = 4;
    c.timeline_window = 16;
    c.dedupe_window = 64;
    c.llm_max_retries = 1;
    c
}

/// Turns an op into inputs, looking at the state (so model answers target the live request).
fn inputs_for(
    op: &Op,
    state: &ConversationState,
    model: &ScriptedModel,
    last: &mut Option<Signal>,
) -> Vec<Input> {
    let in_flight = state.active_run.as_ref().is_some_and(|r| r.llm_in_flight);
    match op {
        Op::User(n) => {
            let s = Signal::user_message(format!("m{n}"));
            *last = Some(s.clone());
            vec![Input::External(s)]
        }
        Op::UserScripted { tools, async_mask } => {
            let calls: Vec<_> = (0..*tools)
                .map(|i| json!({ "name": format!("t{i}"), "run_mode": if async_mask >> i & 1 == 1 { "async" } else { "sync" } }))
                .collect();
            let s = scripted("s", json!({ "tool_calls": calls }));
            *last = Some(s.clone());
            vec![Input::External(s)]
        }
        Op::CancelNow => vec![Input::Internal(Signal::cancel(None))],
        Op::CancelQueued => vec![Input::External(Signal::cancel(None))],
        Op::Resume => vec![Input::External(Signal::resume())],
        Op::Drain => vec![Input::Drain],
        Op::AnswerModel | Op::FailModel(_) if in_flight => {
            let req = ModelRequest::for_state(state, vec![], 1000).unwrap();
            let (d, r) = match op {
                Op::FailModel(retryable) => (
                    vec![],
                    Err(ModelError {
                        code: "boom".into(),
                        message: "m".into(),
                        retryable: *retryable,
                    }),
                ),
                _ => model.answer(&req),
            };
            response_signals(&req, &d, r)
                .into_iter()
                .map(Input::Internal)
                .collect()
        }
        Op::AnswerModel | Op::FailModel(_) | Op::StaleModel => {
            let mut req =
                ModelRequest::for_state(state, vec![], 1000).unwrap_or_else(|| ModelRequest {
                    project_id: state.config.project_id.clone(),
                    conversation_id: state.config.conversation_id.clone(),
                    correlation_id: crate::ids::CorrelationId::generate(),
                    run_id: crate::ids::RunId::parse("run-gone").unwrap(),
                    step: 1,
                    model: None,
                    system_prompt: None,
                    temperature: None,
                    max_tokens: None,
                    messages: vec![],
                    tools: vec![],
                    timeout_ms: 1,
                });
            req.step += 100; // never the live step
            let (d, r) = model.answer(&req);
            response_signals(&req, &d, r)
                .into_iter()
                .map(Input::Internal)
                .collect()
        }
        Op::ToolResult(i) => {
            let calls = state.pending_calls();
            match calls.get(i % calls.len().max(1)) {
                Some(c) => vec![Input::Internal(tool_ok(c))],
                None => vec![],
            }
        }
        Op::LateToolResult => vec![Input::Internal(tool_result_for(&ToolCallId::generate()))],
        Op::ToolStarted(i) => {
            let calls = state.pending_calls();
            calls
                .get(i % calls.len().max(1))
                .map(|c| Input::ToolStarted {
                    tool_call_id: c.tool_call_id.clone(),
                })
                .into_iter()
                .collect()
        }
        Op::Duplicate => last.clone().map(Input::External).into_iter().collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_keeps_the_invariants(ops in proptest::collection::vec(op(), 1..80)) {
        let model = ScriptedModel::new();
        let mut state = ConversationState::new(small_config());
        let mut last = None;
        let mut next_seq = 1u64;
        for op in &ops {
            for input in inputs_for(op, &state, &model, &mut last) {
                let before = state.clone();
                let is_external = matches!(&input, Input::External(s) if s.kind.is_external());
                let is_late = matches!(op, Op::LateToolResult | Op::StaleModel);
                let (after, fx) = step(state, input);

                // INVARIANT checks hold after every input
                prop_assert_eq!(check_invariants(&after), Ok(()));
                // seq numbers are gapless and increasing across all effects
                for e in &fx {
                    if let Effect::Applied(ev) = e {
                        prop_assert_eq!(ev.seq, next_seq);
                        next_seq += 1;
                    }
                }
                prop_assert_eq!(after.last_seq, next_seq - 1);
                // the queue never exceeds its bound; a full queue reports overflow
                prop_assert!(after.queue.len() <= after.config.max_queue_size);
                if is_external && fx.iter().any(|e| matches!(e, Effect::QueueFull { .. })) {
                    prop_assert_eq!(before.queue.len(), before.config.max_queue_size);
                    prop_assert!(fx.iter().any(|e| matches!(e, Effect::Applied(ev) if ev.signal.kind == SignalType::QueueOverflow)));
                    prop_assert_eq!(after.overflow_count, before.overflow_count + 1);
                }
                // after an applied cancel none of the calls pending before remains, each got a
                // cancellation; an immediate cancel leaves nothing pending at all
                let cancel_applied = fx.iter().any(|e| matches!(e, Effect::Applied(ev) if ev.signal.kind == SignalType::Cancel));
                if cancel_applied {
                    for id in before.pending_tool_calls.keys() {
                        prop_assert!(!after.pending_tool_calls.contains_key(id));
                        let cancelled = fx.iter().any(|e| matches!(e, Effect::CancelTool { tool_call_id, .. } if tool_call_id == id));
                        prop_assert!(cancelled, "no CancelTool for {}", id);
                    }
                }
                if matches!(op, Op::CancelNow) {
                    prop_assert!(after.pending_tool_calls.is_empty());
                    prop_assert!(after.pending_subagents.is_empty());
                    prop_assert_eq!(after.status, Status::Cancelled);
                    prop_assert!(after.active_run.is_none());
                }
                // late results change nothing but the counter
                if is_late {
                    let all_late = fx.iter().all(|e| matches!(e, Effect::LateResultDiscarded { .. }));
                    prop_assert!(all_late, "{:?}", fx);
                    let mut normalized = after.clone();
                    normalized.late_results_discarded = before.late_results_discarded;
                    normalized.seen_ids = before.seen_ids.clone();
                    normalized.seen_order = before.seen_order.clone();
                    prop_assert_eq!(&normalized, &before);
                }
                state = after;
            }
        }
    }

    #[test]
    fn every_external_signal_is_applied_rejected_or_deduplicated(n in 1usize..12, drains in 0usize..8) {
        let mut state = ConversationState::new(small_config());
        let (mut applied, mut rejected) = (0usize, 0usize);
        for i in 0..n {
            let (s, fx) = step(state, Input::External(Signal::user_message(format!("{i}"))));
            rejected += fx.iter().filter(|e| matches!(e, Effect::QueueFull { .. })).count();
            state = s;
            if i % 3 == 0 {
                for _ in 0..drains {
                    let (s, fx) = step(state, Input::Drain);
                    applied += fx.iter().filter(|e| matches!(e, Effect::Applied(ev) if ev.signal.kind == SignalType::UserMessage)).count();
                    state = s;
                }
            }
        }
        while state.drain_scheduled {
            let (s, fx) = step(state, Input::Drain);
            applied += fx.iter().filter(|e| matches!(e, Effect::Applied(ev) if ev.signal.kind == SignalType::UserMessage)).count();
            state = s;
        }
        prop_assert_eq!(applied + rejected, n);
        prop_assert!(state.queue.is_empty());
    }
}

// ------------------------------------------------------------------------------------------
// Recovery

type Key = (
    Status,
    u64,
    Option<(crate::ids::RunId, u32, bool)>,
    Vec<(ToolCallId, Option<crate::ids::RunId>, RunMode)>,
    Vec<PendingSubagent>,
    Vec<u64>,
    Vec<ChatMessage>,
    Vec<(String, Option<String>, u32)>,
    u64,
    Vec<FinishedSubagent>,
);

fn key(s: &ConversationState) -> Key {
    (
        s.status,
        s.last_seq,
        s.active_run
            .as_ref()
            .map(|r| (r.run_id.clone(), r.step, r.llm_in_flight)),
        s.pending_tool_calls
            .values()
            .map(|c| (c.tool_call_id.clone(), c.run_id.clone(), c.run_mode))
            .collect(),
        s.pending_subagents.values().cloned().collect(),
        s.timeline.iter().map(|e| e.seq).collect(),
        s.history.iter().cloned().collect(),
        s.run_history
            .iter()
            .map(|r| (r.status.clone(), r.reason.clone(), r.steps))
            .collect(),
        s.overflow_count,
        s.finished_subagents.iter().cloned().collect(),
    )
}

#[test]
fn restore_interrupts_in_flight_work() {
    let mut h = Harness::new(config());
    h.run(
        Input::External(scripted(
            "x",
            json!({ "tool_calls": [{"name": "a"}, {"name": "b", "run_mode": "async"}] }),
        )),
        true,
    );
    assert_eq!(h.state.pending_tool_calls.len(), 2);
    let (state, fx, report) = restore(config(), h.applied.clone(), 42).unwrap();
    assert_eq!(
        report,
        RestoreReport {
            events_replayed: h.applied.len() as u64,
            interrupted_tool_calls: 2
        }
    );
    let kinds: Vec<(SignalType, Option<String>)> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Applied(ev) => Some((
                ev.signal.kind,
                ev.signal.str_field("status").map(str::to_owned),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (SignalType::ToolFailed, None),
            (SignalType::ToolFailed, None),
            (SignalType::RunClosed, Some("interrupted".into()))
        ]
    );
    assert_eq!(state.status, Status::Idle);
    assert!(state.pending_tool_calls.is_empty());
    assert_eq!(state.last_seq, h.state.last_seq + 3);
    check_invariants(&state).unwrap();
    // the restored conversation is usable
    let mut h2 = Harness {
        state,
        applied: vec![],
        effects: vec![],
        model: ScriptedModel::new(),
    };
    h2.run(Input::External(Signal::user_message("again")), false);
    assert_eq!(h2.state.run_history.back().unwrap().status, "completed");
}

#[test]
fn restore_refuses_a_seq_gap() {
    let mut h = Harness::new(config());
    h.run(Input::External(Signal::user_message("x")), false);
    let mut entries = h.applied.clone();
    entries.remove(2);
    let err = restore(config(), entries, 0).unwrap_err();
    assert_eq!(
        (err.code(), err),
        (
            "journal_seq_gap",
            RestoreError::SeqGap {
                expected: 3,
                found: 4
            }
        )
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn replaying_the_journal_rebuilds_the_live_state(ops in proptest::collection::vec(op(), 1..60)) {
        let model = ScriptedModel::new();
        let mut state = ConversationState::new(small_config());
        let mut journal = Vec::new();
        let mut last = None;
        for op in &ops {
            for input in inputs_for(op, &state, &model, &mut last) {
                let (s, fx) = step(state, input);
                journal.extend(fx.into_iter().filter_map(|e| match e { Effect::Applied(ev) => Some(ev), _ => None }));
                state = s;
            }
        }
        let mut replayed = ConversationState::new(small_config());
        for ev in journal.clone() {
            replay(&mut replayed, ev).unwrap();
        }
        prop_assert_eq!(key(&replayed), key(&state));
        let (restored, _, _) = restore(small_config(), journal, 7).unwrap();
        prop_assert_eq!(check_invariants(&restored), Ok(()));
        prop_assert!(restored.pending_tool_calls.is_empty() && restored.active_run.is_none());
    }
}
