//! SPEC §11–12: a scripted conversation whose tool calls loop to completion; async run mode
//! (the step goes on, the real result arrives later and reaches subscribers); cancellation with
//! a pending slow tool (its token fires, `tool.cancelled`, the late result is discarded and
//! counted) and resume; inbox overflow; subscriptions (two subscribers see identical seqs,
//! background results included; `from_seq` replays without gap or duplicate; stop ends them);
//! restore from the journal after a project restart and after a crash (pending calls
//! `interrupted`).

use std::time::Duration;

use codeward::{
    ConversationId, ConversationOptions, ConversationSubscription, ProjectOptions, Projection,
    ProjectionKey, Signal, TimelineQuery,
};
use codeward_tests::{TestProject, TestTools, WAIT, config_with, eventually, scripted, unique};
use serde_json::{Value, json};

const SETTLE: Option<Duration> = Some(Duration::from_secs(20));

/// The `status` field of any serializable answer (`json!(snapshot)`).
fn status(v: Value) -> String {
    v["status"].as_str().unwrap_or_default().to_owned()
}

/// `(seq, type, data)` of the live timeline window.
async fn timeline(p: &TestProject, c: &ConversationId) -> Vec<(u64, String, Value)> {
    match p
        .engine
        .conversation_projection(&p.id, c, ProjectionKey::Timeline)
        .await
        .unwrap()
    {
        Projection::Timeline(t) => t
            .entries
            .into_iter()
            .map(|e| {
                (
                    e.seq,
                    e.signal.kind.as_str().to_owned(),
                    Value::Object(e.signal.data),
                )
            })
            .collect(),
        other => panic!("not a timeline: {other:?}"),
    }
}

fn types(entries: &[(u64, String, Value)]) -> Vec<&str> {
    entries.iter().map(|(_, t, _)| t.as_str()).collect()
}

/// A conversation whose model asked for one `test.gate` call that is now running (held by the
/// gate); returns the tools, the project, the conversation and the call's correlation id.
async fn a_pending_gate_call() -> (TestTools, TestProject, ConversationId, String) {
    let tools = TestTools::default();
    let p = TestProject::start_with(config_with(&tools), ProjectOptions::default()).await;
    let c = p.conversation().await;
    let msg = scripted(
        "slow",
        json!({"tool_calls": [{"name": "test.gate", "args": {"n": 1}}]}),
    );
    let corr = msg.correlation_id.to_string();
    p.engine.conversation_cast(&p.id, &c, msg).await.unwrap();
    eventually("the slow call runs", || async {
        (tools.in_flight() == 1).then_some(())
    })
    .await;
    (tools, p, c, corr)
}

/// Receives until an entry of type `kind` satisfying `pred` arrives; returns everything seen.
async fn recv_until(
    sub: &mut ConversationSubscription,
    kind: &str,
    pred: impl Fn(&Value) -> bool,
) -> Vec<(u64, String, Value)> {
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = sub
                .recv()
                .await
                .unwrap_or_else(|| panic!("stream ended before {kind}: {seen:?}"))
                .expect("no lag");
            let data = Value::Object(ev.signal.data.clone());
            let t = ev.signal.kind.as_str().to_owned();
            let done = t == kind && pred(&data);
            seen.push((ev.seq, t, data));
            if done {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {kind}"));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_conversation_loops_through_its_tool_calls_to_completion() {
    let p = TestProject::start(ProjectOptions::default()).await;
    p.write("hello.txt", "hello world");
    let c = p.conversation().await;
    let msg = scripted(
        "read and list",
        json!({"assistant_text": "Looking.", "tool_calls": [
            {"name": "fs.read", "args": {"path": "hello.txt"}},
            {"name": "fs.list", "args": {}},
        ]}),
    );
    let correlation = msg.correlation_id.to_string();
    let snap = p
        .engine
        .conversation_call(&p.id, &c, msg, SETTLE)
        .await
        .unwrap();
    assert!(snap.settled, "{snap:?}");
    assert_eq!(status(json!(snap)), "idle");
    assert!(snap.pending_tool_calls.is_empty());
    let entries = timeline(&p, &c).await;
    // Seqs are 1, 2, 3 … without gaps.
    let seqs: Vec<u64> = entries.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(seqs, (1..=snap.last_seq).collect::<Vec<_>>());
    let t = types(&entries);
    for expected in [
        "conversation.user.message",
        "conversation.run.opened",
        "conversation.llm.requested",
        "conversation.assistant.message",
        "conversation.tool.requested",
        "conversation.tool.completed",
        "conversation.llm.completed",
        "conversation.run.closed",
    ] {
        assert!(t.contains(&expected), "{expected} missing from {t:?}");
    }
    assert_eq!(
        t.iter()
            .filter(|x| **x == "conversation.tool.completed")
            .count(),
        2,
        "{t:?}"
    );
    // The second step answered from the tool results.
    let last_text = entries
        .iter()
        .rev()
        .find(|(_, t, _)| t == "conversation.assistant.message")
        .map(|(_, _, d)| d["content"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(
        last_text.contains("Tool fs.read completed.")
            && last_text.contains("Tool fs.list completed."),
        "{last_text}"
    );
    let closed = entries
        .iter()
        .rev()
        .find(|(_, t, _)| t == "conversation.run.closed")
        .unwrap();
    assert_eq!(closed.2["status"], "completed", "{closed:?}");
    // The model-originated calls took the one path: decisions with source model.
    let model = eventually("two decisions of the run", || async {
        let mine: Vec<Value> = p
            .decisions()
            .await
            .into_iter()
            .filter(|d| d["correlation_id"] == correlation.as_str())
            .collect();
        (mine.len() == 2).then_some(mine)
    })
    .await;
    assert!(
        model
            .iter()
            .all(|d| d["source"] == "model" && d["decision"] == "allow"),
        "{model:?}"
    );
    let state = p.engine.conversation_state(&p.id, &c).await.unwrap();
    assert_eq!(state.run_history.len(), 1);
    assert_eq!(state.run_history[0].status, "completed");
    assert_eq!(state.run_history[0].steps, 2);
    // The tool results are in the model's context as tool messages.
    let ctx = serde_json::to_value(
        p.engine
            .conversation_projection(&p.id, &c, ProjectionKey::LlmContext)
            .await
            .unwrap(),
    )
    .unwrap();
    let ctx_text = ctx.to_string();
    assert!(ctx_text.contains("hello world"), "{ctx_text}");
    assert!(ctx_text.contains("\"tool\""), "{ctx_text}");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_model_tool_call_fails_the_call_not_the_conversation() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let c = p
        .conversation_with(ConversationOptions {
            allow_tools: Some(vec!["fs.*".into()]),
            ..ConversationOptions::default()
        })
        .await;
    let msg = scripted(
        "escape",
        json!({"tool_calls": [
            {"name": "fs.read", "args": {"path": "../../etc/passwd"}},
            {"name": "command.run", "args": {"argv": ["true"]}},
        ]}),
    );
    let snap = p
        .engine
        .conversation_call(&p.id, &c, msg, SETTLE)
        .await
        .unwrap();
    assert!(snap.settled);
    let entries = timeline(&p, &c).await;
    let failed: Vec<&Value> = entries
        .iter()
        .filter(|(_, t, _)| t == "conversation.tool.failed")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(failed.len(), 2, "{entries:?}");
    let text = serde_json::to_string(&failed).unwrap();
    assert!(text.contains("outside_root"), "{text}");
    assert!(
        text.contains("tool_not_exposed") || text.contains("denied"),
        "{text}"
    );
    // The conversation is still usable.
    let snap = p
        .engine
        .conversation_call(&p.id, &c, Signal::user_message("still there?"), SETTLE)
        .await
        .unwrap();
    assert!(snap.settled);
    let state = p.engine.conversation_state(&p.id, &c).await.unwrap();
    assert_eq!(state.run_history.len(), 2);
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_run_mode_goes_on_and_delivers_the_real_result_later() {
    let tools = TestTools::default();
    let p = TestProject::start_with(config_with(&tools), ProjectOptions::default()).await;
    let c = p.conversation().await;
    let mut a = p
        .engine
        .subscribe_conversation(&p.id, &c, None)
        .await
        .unwrap();
    let mut b = p
        .engine
        .subscribe_conversation(&p.id, &c, None)
        .await
        .unwrap();
    let msg = scripted(
        "background",
        json!({"tool_calls": [{"name": "test.gate", "args": {"n": 7}, "run_mode": "async"}]}),
    );
    let snap = p
        .engine
        .conversation_call(&p.id, &c, msg, SETTLE)
        .await
        .unwrap();
    // Settled although the async call is still running.
    assert!(snap.settled, "{snap:?}");
    eventually("the async call runs", || async {
        (tools.in_flight() == 1).then_some(())
    })
    .await;
    // The step went on with the placeholder: the run closed, the call is still pending.
    assert_eq!(snap.pending_tool_calls.len(), 1, "{snap:?}");
    let entries = timeline(&p, &c).await;
    let t = types(&entries);
    assert!(!t.contains(&"conversation.tool.completed"), "{t:?}");
    assert_eq!(
        entries.last().unwrap().1,
        "conversation.run.closed",
        "{t:?}"
    );
    let said = entries
        .iter()
        .rev()
        .find(|(_, t, _)| t == "conversation.assistant.message")
        .map(|(_, _, d)| d["content"].as_str().unwrap().to_owned())
        .unwrap();
    assert_eq!(said, "Tool test.gate started.");
    // Open the gate: the real result is applied in the background and pushed to subscribers.
    tools.open();
    let real = |d: &Value| d["result"]["n"] == 7;
    let seen_a = recv_until(&mut a, "conversation.tool.completed", real).await;
    let last = seen_a.last().unwrap().0;
    let seen_b = recv_until(&mut b, "conversation.tool.completed", real).await;
    let seqs_a: Vec<u64> = seen_a.iter().map(|e| e.0).collect();
    let seqs_b: Vec<u64> = seen_b.iter().map(|e| e.0).collect();
    assert_eq!(seqs_a, seqs_b, "both subscribers see the same entries");
    assert_eq!(
        seqs_a,
        (1..=last).collect::<Vec<_>>(),
        "in order, once, no gap"
    );
    let types_a: Vec<&str> = seen_a.iter().map(|e| e.1.as_str()).collect();
    let types_b: Vec<&str> = seen_b.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(types_a, types_b);
    // The real result is journaled too: a replay from seq 1 sees it at the same seq.
    let mut replay = p
        .engine
        .subscribe_conversation(&p.id, &c, Some(1))
        .await
        .unwrap();
    let replayed = recv_until(&mut replay, "conversation.tool.completed", real).await;
    assert_eq!(
        replayed.iter().map(|e| e.0).collect::<Vec<_>>(),
        seqs_a,
        "replay without gap or duplicate"
    );
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_seq_replays_history_then_switches_to_live_without_gap_or_duplicate() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let c = p.conversation().await;
    for i in 0..3 {
        p.engine
            .conversation_call(&p.id, &c, Signal::user_message(format!("m{i}")), SETTLE)
            .await
            .unwrap();
    }
    let before = p
        .engine
        .conversation_state(&p.id, &c)
        .await
        .unwrap()
        .snapshot
        .last_seq;
    assert!(before > 6, "{before}");
    let from = before / 2;
    let mut sub = p
        .engine
        .subscribe_conversation(&p.id, &c, Some(from))
        .await
        .unwrap();
    // Live traffic while the replay is being read.
    let msg = Signal::user_message("live one");
    p.engine.conversation_cast(&p.id, &c, msg).await.unwrap();
    let seen = recv_until(&mut sub, "conversation.run.closed", |d| {
        d["status"] == "completed"
    })
    .await;
    // The first run.closed may be a replayed one: read on until the live run closed.
    let mut seen = seen;
    while !seen
        .iter()
        .any(|(_, t, d)| t == "conversation.user.message" && d["content"] == "live one")
        || seen.last().unwrap().1 != "conversation.run.closed"
    {
        seen.extend(recv_until(&mut sub, "conversation.run.closed", |_| true).await);
    }
    let seqs: Vec<u64> = seen.iter().map(|e| e.0).collect();
    let last = *seqs.last().unwrap();
    assert!(last > before);
    assert_eq!(seqs, (from..=last).collect::<Vec<_>>());
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_fires_the_pending_tools_token_and_discards_its_late_result() {
    let (tools, p, c, _) = a_pending_gate_call().await;
    let pending = p.engine.conversation_state(&p.id, &c).await.unwrap();
    assert_eq!(pending.snapshot.pending_tool_calls.len(), 1);
    assert!(!pending.snapshot.settled);
    let snap = p
        .engine
        .conversation_call(&p.id, &c, Signal::cancel(None), SETTLE)
        .await
        .unwrap();
    assert!(snap.settled, "{snap:?}");
    assert_eq!(status(json!(snap)), "cancelled");
    assert!(snap.pending_tool_calls.is_empty());
    // The tool saw its token fire (the task was aborted, not left running).
    eventually("the token fired", || async {
        (tools.cancelled() == 1).then_some(())
    })
    .await;
    eventually("the task is gone", || async {
        (tools.in_flight() == 0).then_some(())
    })
    .await;
    let entries = timeline(&p, &c).await;
    let cancelled = entries
        .iter()
        .find(|(_, t, _)| t == "conversation.tool.cancelled")
        .map(|(_, _, d)| d.clone())
        .unwrap_or_else(|| panic!("no tool.cancelled in {:?}", types(&entries)));
    assert_eq!(cancelled["reason"], "conversation_cancelled", "{cancelled}");
    assert!(cancelled["call_correlation_id"].is_string(), "{cancelled}");
    let closed = entries
        .iter()
        .rev()
        .find(|(_, t, _)| t == "conversation.run.closed")
        .unwrap();
    assert_eq!(closed.2["status"], "cancelled");
    // The tool's own (late) answer is not applied: counted instead.
    p.wait_counter("conversation.late_results_discarded", 1)
        .await;
    let after = timeline(&p, &c).await;
    assert!(
        !after
            .iter()
            .any(|(_, t, _)| t == "conversation.tool.completed" || t == "conversation.tool.failed"),
        "{:?}",
        types(&after)
    );
    // Telemetry has the cancellation (its correlation: see the ignored test below).
    p.wait_event("conversation.tool.cancelled", |e| {
        e["conversation_id"] == c.as_str()
    })
    .await;
    assert_eq!(p.counter("tool.cancelled").await, 1);
    // Resume: back to idle, and the next message opens a new run.
    let snap = p
        .engine
        .conversation_call(&p.id, &c, Signal::resume(), SETTLE)
        .await
        .unwrap();
    assert_eq!(status(json!(snap)), "idle");
    assert!(types(&timeline(&p, &c).await).contains(&"conversation.run.resumed"));
    tools.open();
    let snap = p
        .engine
        .conversation_call(&p.id, &c, Signal::user_message("again"), SETTLE)
        .await
        .unwrap();
    assert!(snap.settled);
    let state = p.engine.conversation_state(&p.id, &c).await.unwrap();
    let runs: Vec<&str> = state
        .run_history
        .iter()
        .map(|r| r.status.as_str())
        .collect();
    assert_eq!(runs, ["cancelled", "completed"]);
    // Resume when not cancelled is rejected, recorded, harmless.
    p.engine
        .conversation_call(&p.id, &c, Signal::resume(), SETTLE)
        .await
        .unwrap();
    let rejected = timeline(&p, &c)
        .await
        .into_iter()
        .find(|(_, t, _)| t == "conversation.resume.rejected")
        .expect("resume.rejected");
    assert_eq!(rejected.2["reason"], "not_cancelled", "{:?}", rejected.2);
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_inbox_refuses_with_conversation_queue_full() {
    let p = TestProject::start(ProjectOptions::default().conversation_max_queue_size(1)).await;
    let c = p.conversation().await;
    let casts = (0..200).map(|i| {
        let (e, id, c) = (p.engine.clone(), p.id.clone(), c.clone());
        async move {
            e.conversation_cast(&id, &c, Signal::user_message(format!("m{i}")))
                .await
        }
    });
    let results = futures::future::join_all(casts).await;
    let refused: Vec<&codeward::Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        !refused.is_empty(),
        "200 simultaneous casts into a 1-signal inbox"
    );
    for e in &refused {
        assert_eq!(e.code(), "conversation_queue_full", "{}", e.to_json());
        assert_eq!(e.details()["max_queue_size"], 1);
        assert!(e.retryable());
    }
    let accepted = results.len() - refused.len();
    assert!(accepted >= 1);
    let diag = p.engine.conversation_diagnostics(&p.id, &c).await.unwrap();
    let diag = serde_json::to_value(diag).unwrap();
    assert_eq!(diag["overflow_count"], refused.len(), "{diag}");
    p.wait_event_count("conversation.queue_overflow", refused.len() as u64)
        .await;
    let overflows = eventually("overflow signals journaled", || async {
        let n = p
            .engine
            .incident_timeline(
                &p.id,
                &c,
                TimelineQuery {
                    limit: 500,
                    correlation_id: None,
                },
            )
            .await
            .unwrap()
            .entries
            .iter()
            .filter(|e| e.event == "conversation.queue.overflow")
            .count();
        (n == refused.len()).then_some(n)
    })
    .await;
    assert_eq!(overflows, refused.len());
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_subscriptions_and_the_journal_still_answers() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let c = p.conversation().await;
    let mut sub = p
        .engine
        .subscribe_conversation(&p.id, &c, None)
        .await
        .unwrap();
    p.engine
        .conversation_call(&p.id, &c, Signal::user_message("hi"), SETTLE)
        .await
        .unwrap();
    p.engine.stop_conversation(&p.id, &c).await.unwrap();
    let seen = recv_until(&mut sub, "conversation.stopped", |_| true).await;
    assert_eq!(seen.last().unwrap().2["reason"], "requested");
    let end = tokio::time::timeout(WAIT, sub.recv())
        .await
        .expect("stream ends");
    assert!(end.is_none(), "nothing after conversation.stopped: {end:?}");
    // Stopped conversations are read from the journal.
    let state = p.engine.conversation_state(&p.id, &c).await.unwrap();
    assert_eq!(state.run_history.len(), 1);
    let t = p
        .engine
        .incident_timeline(&p.id, &c, TimelineQuery::default())
        .await
        .unwrap();
    assert!(t.entries.iter().any(|e| e.event == "conversation.stopped"));
    assert!(
        t.entries.iter().all(|e| e.source != "conversation"),
        "{:?}",
        t.entries
    );
    let proj = p
        .engine
        .conversation_projection(&p.id, &c, ProjectionKey::Timeline)
        .await
        .unwrap();
    assert!(matches!(proj, Projection::Timeline(_)));
    // Live calls are refused; a restore=false start is refused; a default start restores.
    assert_eq!(
        p.engine
            .conversation_cast(&p.id, &c, Signal::user_message("x"))
            .await
            .unwrap_err()
            .code(),
        "conversation_not_found"
    );
    let e = p
        .engine
        .start_conversation(
            &p.id,
            ConversationOptions {
                conversation_id: Some(c.to_string()),
                restore: false,
                ..ConversationOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "conversation_already_started");
    let again = p
        .engine
        .start_conversation(&p.id, ConversationOptions::default().with_id(c.as_str()))
        .await
        .unwrap();
    assert_eq!(again, c);
    let state = p.engine.conversation_state(&p.id, &c).await.unwrap();
    assert!(state.restored);
    assert_eq!(state.run_history.len(), 1);
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_survives_a_project_restart() {
    let engine = codeward::Engine::start(config_with(&TestTools::default()))
        .await
        .unwrap();
    let dir = codeward_tests::empty_root();
    let p = TestProject::start_in(&engine, dir, ProjectOptions::default()).await;
    let c = ConversationId::parse(&unique("conv")).unwrap();
    p.engine
        .start_conversation(&p.id, ConversationOptions::default().with_id(c.as_str()))
        .await
        .unwrap();
    let first = p
        .engine
        .conversation_call(&p.id, &c, Signal::user_message("before"), SETTLE)
        .await
        .unwrap();
    engine.stop_project(&p.id).await.unwrap();
    let id = engine
        .start_project(&p.root, ProjectOptions::default())
        .await
        .unwrap();
    assert_eq!(id, p.id, "the generated id is deterministic");
    // Journal-only until started again; then restored with its history.
    let state = engine.conversation_state(&id, &c).await.unwrap();
    assert!(
        state.snapshot.last_seq > first.last_seq,
        "stop entry journaled"
    );
    engine
        .start_conversation(&id, ConversationOptions::default().with_id(c.as_str()))
        .await
        .unwrap();
    let state = engine.conversation_state(&id, &c).await.unwrap();
    assert!(state.restored);
    assert_eq!(state.run_history.len(), 1);
    let snap = engine
        .conversation_call(&id, &c, Signal::user_message("after"), SETTLE)
        .await
        .unwrap();
    assert!(snap.settled);
    // One numbering across the restart.
    let mut replay = engine
        .subscribe_conversation(&id, &c, Some(1))
        .await
        .unwrap();
    let mut seqs = Vec::new();
    while seqs.last() != Some(&snap.last_seq) {
        let ev = tokio::time::timeout(WAIT, replay.recv())
            .await
            .expect("replay")
            .expect("open")
            .expect("no lag");
        seqs.push(ev.seq);
    }
    assert_eq!(seqs, (1..=snap.last_seq).collect::<Vec<_>>());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_with_a_pending_call_restores_it_as_interrupted() {
    let (tools, p, c, _) = a_pending_gate_call().await;
    p.engine
        .inject_failure(
            &p.id,
            codeward::FailureTarget::Conversation {
                conversation_id: c.clone(),
            },
        )
        .await
        .unwrap();
    // Rebuilt from the journal: the pending call is interrupted, the run closed, idle again.
    let state = eventually("restored after the crash", || async {
        let s = p.engine.conversation_state(&p.id, &c).await.ok()?;
        (s.restored && s.snapshot.pending_tool_calls.is_empty()).then_some(s)
    })
    .await;
    assert_eq!(status(json!(state.snapshot)), "idle");
    assert_eq!(state.run_history.last().unwrap().status, "interrupted");
    let entries = timeline(&p, &c).await;
    let failed = entries
        .iter()
        .find(|(_, t, _)| t == "conversation.tool.failed")
        .map(|(_, _, d)| d.to_string())
        .unwrap_or_else(|| panic!("{:?}", types(&entries)));
    assert!(failed.contains("interrupted"), "{failed}");
    let restored = p.wait_event("conversation.restored", |_| true).await;
    assert_eq!(restored["conversation_id"], c.as_str());
    p.wait_event("runtime.actor_restarted", |_| true).await;
    // The orphaned call was cancelled with its actor: its token fired, its slot is free.
    eventually("the orphaned call is cancelled", || async {
        (tools.cancelled() == 1 && tools.in_flight() == 0).then_some(())
    })
    .await;
    tools.open();
    // The conversation answers normally.
    let snap = p
        .engine
        .conversation_call(&p.id, &c, Signal::user_message("ok?"), SETTLE)
        .await
        .unwrap();
    assert!(snap.settled);
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_cancelled_event_carries_the_cancel_signals_correlation() {
    let (_tools, p, c, call_corr) = a_pending_gate_call().await;
    let cancel = Signal::cancel(None);
    let cancel_corr = cancel.correlation_id.to_string();
    p.engine
        .conversation_call(&p.id, &c, cancel, SETTLE)
        .await
        .unwrap();
    let ev = p
        .wait_event("conversation.tool.cancelled", |e| {
            e["conversation_id"] == c.as_str()
        })
        .await;
    assert_eq!(ev["correlation_id"], cancel_corr.as_str(), "{ev}");
    assert_eq!(ev["reason"], "conversation_cancelled", "{ev}");
    // The payload names the call's own correlation (the journal keeps payloads).
    let t = p
        .engine
        .incident_timeline(&p.id, &c, TimelineQuery::default())
        .await
        .unwrap();
    let payload = t
        .entries
        .iter()
        .find(|e| e.source == "telemetry" && e.event == "conversation.tool.cancelled")
        .map(|e| e.payload.clone())
        .expect("event in the timeline");
    assert_eq!(
        payload["call_correlation_id"],
        call_corr.as_str(),
        "{payload}"
    );
    p.engine.shutdown().await.unwrap();
}

/// A model client that records what it is asked and answers with plain text.
#[derive(Default)]
struct RecordingModel {
    requests: std::sync::Mutex<Vec<codeward::ModelRequest>>,
}

impl codeward::ModelClient for RecordingModel {
    fn name(&self) -> &str {
        "recording"
    }

    fn complete<'a>(
        &'a self,
        req: codeward::ModelRequest,
        _deltas: codeward::DeltaSink,
    ) -> futures::future::BoxFuture<'a, Result<codeward::ModelResponse, codeward::ModelError>> {
        self.requests.lock().unwrap().push(req);
        Box::pin(async {
            Ok(codeward::ModelResponse {
                text: "noted".into(),
                tool_calls: Vec::new(),
                finish_reason: "stop".into(),
                usage: None,
            })
        })
    }
}

async fn recorded_conversation(
    allow_tools: Option<Vec<String>>,
) -> (TestProject, std::sync::Arc<RecordingModel>, ConversationId) {
    let model = std::sync::Arc::new(RecordingModel::default());
    let config = config_with(&TestTools::default()).with_model_client(model.clone());
    let p =
        TestProject::start_with(config, ProjectOptions::default().deny_tools(["fs.delete"])).await;
    let c = p
        .conversation_with(ConversationOptions {
            model_client: Some("recording".into()),
            system_prompt: Some("be brief".into()),
            temperature: Some(0.25),
            allow_tools,
            ..ConversationOptions::default()
        })
        .await;
    let snap = p
        .engine
        .conversation_call(&p.id, &c, Signal::user_message("hello"), SETTLE)
        .await
        .unwrap();
    assert!(snap.settled);
    (p, model, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_is_offered_the_exposed_tools_within_the_conversations_scope() {
    let (p, model, _c) = recorded_conversation(Some(vec!["fs.*".into(), "test.echo".into()])).await;
    let req = model.requests.lock().unwrap()[0].clone();
    let mut names: Vec<&str> = req.tools.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    assert!(
        names.contains(&"fs.read") && names.contains(&"test.echo"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"command.run"),
        "outside the scope: {names:?}"
    );
    assert!(
        !names.contains(&"fs.delete"),
        "denied by the project: {names:?}"
    );
    assert!(req.tools.iter().all(|t| t.input_schema.is_object()));
    assert_eq!(req.system_prompt.as_deref(), Some("be brief"));
    assert_eq!(req.temperature, Some(0.25));
    assert_eq!(req.step, 1);
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_requested_counts_the_offered_tools() {
    let (p, model, c) = recorded_conversation(None).await;
    let offered = model.requests.lock().unwrap()[0].tools.len();
    assert!(offered > 0);
    let entries = timeline(&p, &c).await;
    let requested = entries
        .iter()
        .find(|(_, t, _)| t == "conversation.llm.requested")
        .map(|(_, _, d)| d.clone())
        .unwrap();
    assert_eq!(requested["tool_count"], offered, "{requested}");
    p.engine.shutdown().await.unwrap();
}
