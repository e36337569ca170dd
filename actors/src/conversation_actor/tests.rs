//! Conversation actor tests, over the in-memory journal, the fake runner and the scripted
//! model: the tool loop, write-ahead failures, inbox overflow, drain interleaving,
//! cancellation, resume, turn limits, model retries and timeouts on paused time, subscription
//! ordering / replay / lag, crash recovery, the restart intensity and stop.

mod fakes;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use self::fakes::{Fixture, Hanging, NOW_MS, Recording, eventually, scripted, short, state_until};
use super::*;
use crate::conversation::{
    ConversationEvent, ModelResponse, ModelToolCall, Projection, ProjectionKey, ScriptedModel,
    Signal, SignalType, Status,
};
use crate::ids::{ConversationId, CorrelationId, ProjectId};

fn scripted_model() -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::new())
}

/// Reads `sub` until it yields the entry with seq `last` (bounded); returns every item.
async fn read_until(
    sub: &mut ConversationSubscription,
    last: u64,
) -> Vec<Result<ConversationEvent, Lagged>> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(item) = sub.recv().await {
            let done = matches!(&item, Ok(ev) if ev.seq >= last);
            got.push(item);
            if done {
                break;
            }
        }
    })
    .await
    .expect("subscription reached the seq");
    got
}

fn seqs(items: &[Result<ConversationEvent, Lagged>]) -> Vec<u64> {
    items
        .iter()
        .filter_map(|i| i.as_ref().ok().map(|e| e.seq))
        .collect()
}

fn assert_contiguous(seqs: &[u64], from: u64, to: u64) {
    assert_eq!(seqs, (from..=to).collect::<Vec<_>>().as_slice());
}

#[tokio::test]
async fn scripted_tool_calls_loop_until_the_model_answers_without_tools() {
    let fx = Fixture::new("loop").await;
    let h = fx.start("conv-loop", scripted_model(), |_| {}).await;
    // `pair` completes only when both calls run at the same time: a sequential executor
    // would hang here.
    let msg = scripted(
        "do two things",
        json!({ "assistant_text": "on it", "tool_calls": [{"name": "pair"}, {"name": "pair"}] }),
    );
    let snap = h.call(msg, Some(Duration::from_secs(20))).await.unwrap();
    assert!(snap.settled, "{snap:?}");
    assert_eq!(snap.status, Status::Idle);
    assert!(snap.pending_tool_calls.is_empty());
    let types = fx.store.types("conv-loop");
    assert_eq!(
        &types[..6],
        &[
            "user.message",
            "run.opened",
            "llm.requested",
            "assistant.message",
            "tool.requested",
            "tool.requested",
        ]
    );
    assert_eq!(types[6], "llm.completed");
    assert_eq!(&types[7..9], &["tool.completed", "tool.completed"]);
    assert_eq!(
        &types[9..],
        &[
            "llm.requested",
            "assistant.message",
            "llm.completed",
            "run.closed",
        ]
    );
    let entries = fx.store.entries("conv-loop");
    assert_eq!(
        entries[10].signal.str_field("content"),
        Some("Tool pair completed. Tool pair completed.")
    );
    assert_eq!(
        entries.last().unwrap().signal.str_field("status"),
        Some("completed")
    );
    assert_eq!(fx.runner.calls().len(), 2);
    let state = h.state().await.unwrap();
    assert_eq!(state.run_history.last().unwrap().steps, 2);
    assert_eq!(state.snapshot.last_seq, entries.len() as u64);
    assert!(!state.restored);
    // telemetry: started, one ingested user message, two completed model steps
    assert_eq!(fx.events("conversation.started").await.len(), 1);
    let ingested = fx.events("conversation.event_ingested").await;
    assert_eq!(ingested.len(), 1);
    assert_eq!(ingested[0].payload["conv_seq"], 1);
    assert_eq!(
        ingested[0].payload["event_type"],
        "conversation.user.message"
    );
    let llm = fx.events("conversation.llm.completed").await;
    assert_eq!(llm.len(), 2);
    assert_eq!(llm[0].payload["tool_call_count"], 2);
    assert_eq!(llm[1].payload["step"], 2);
    assert_eq!(
        fx.store.registered("conv-loop").unwrap().created_at_ms,
        NOW_MS
    );
    fx.shutdown().await;
}

#[tokio::test]
async fn a_failed_append_is_journal_unavailable_and_applies_nothing() {
    let fx = Fixture::new("wal").await;
    let h = fx.start("conv-wal", scripted_model(), |_| {}).await;
    let before = h.state().await.unwrap();
    let msg = Signal::user_message("hello");
    fx.store.fail_appends(1);
    let err = h.cast(msg.clone()).await.unwrap_err();
    assert_eq!(err.code(), "journal_unavailable");
    assert!(err.retryable());
    let after = h.state().await.unwrap();
    assert_eq!(after, before, "state unchanged");
    assert!(fx.store.entries("conv-wal").is_empty());
    // The same signal again is not a duplicate: it was never applied.
    let ack = h.cast(msg.clone()).await.unwrap();
    assert!(!ack.duplicate);
    assert_eq!(ack.seq, Some(1));
    state_until(&h, |s| s.snapshot.settled && s.snapshot.last_seq == 6).await;

    // An internal result refused by the journal waits in the backlog and is retried.
    let msg = scripted("gate", json!({"tool_calls": [{"name": "gated"}]}));
    h.cast(msg).await.unwrap();
    state_until(&h, |s| s.snapshot.pending_tool_calls.len() == 1).await;
    let seq_before = h.state().await.unwrap().snapshot.last_seq;
    fx.store.fail_appends(2);
    fx.runner.release(1);
    let done = state_until(&h, |s| s.snapshot.settled).await;
    assert!(done.snapshot.last_seq > seq_before);
    assert_eq!(done.run_history.last().unwrap().status, "completed");
    let types = fx.store.types("conv-wal");
    assert_eq!(types.iter().filter(|t| *t == "tool.completed").count(), 1);
    fx.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_casts_overflows_the_inbox_with_typed_errors() {
    let fx = Fixture::new("burst").await;
    let h = fx
        .start("conv-burst", Arc::new(Hanging), |c| {
            c.max_queue_size = 3;
            c.max_drain_steps = 1;
        })
        .await;
    // All ten casts reach the mailbox before the actor runs: three fit the inbox.
    let casts = (0..10).map(|i| h.cast(Signal::user_message(format!("m{i}"))));
    let results = futures::future::join_all(casts).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let full: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(ok, 3);
    assert_eq!(full.len(), 7);
    for e in &full {
        assert_eq!(e.code(), "conversation_queue_full");
        assert_eq!(e.details(), json!({"queue_size": 3, "max_queue_size": 3}));
    }
    let overflow = fx.events("conversation.queue_overflow").await;
    assert_eq!(overflow.len(), 7);
    assert_eq!(overflow[0].payload["max_queue_size"], 3);
    let types = fx.store.types("conv-burst");
    assert_eq!(types.iter().filter(|t| *t == "queue.overflow").count(), 7);
    assert_eq!(types.iter().filter(|t| *t == "user.message").count(), 3);
    let diag = h.diagnostics().await.unwrap();
    assert_eq!(diag.core.overflow_count, 7);
    fx.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancel_gets_through_a_long_drain() {
    let fx = Fixture::new("drain").await;
    let h = fx
        .start("conv-drain", Arc::new(Hanging), |c| {
            c.max_queue_size = 100;
            c.max_drain_steps = 1;
        })
        .await;
    let mut sub = h.subscribe(None).await.unwrap();
    // 40 messages enter the inbox at once; one drain pass applies one of them.
    let burst = {
        let h = h.clone();
        tokio::spawn(async move {
            let casts = (0..40).map(|i| h.cast(Signal::user_message(format!("m{i}"))));
            futures::future::join_all(casts).await
        })
    };
    let mut users = 0;
    while users < 5 {
        let ev = sub.recv().await.unwrap().unwrap();
        users += usize::from(ev.signal.kind == SignalType::UserMessage);
    }
    // The drain is under way: a cancel and a query get through between two passes.
    let ack = h.cast(Signal::cancel(Some("stop_it"))).await.unwrap();
    let mid = h.state().await.unwrap();
    assert!(mid.snapshot.queue_size > 20, "{}", mid.snapshot.queue_size);
    let acks: Vec<SignalAck> = burst
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let cancel_seq = ack.seq.unwrap();
    let after = acks.iter().filter(|a| a.seq.unwrap() > cancel_seq).count();
    assert!(
        after > 25,
        "only {after} messages were applied after the cancel"
    );
    let s = state_until(&h, |s| s.snapshot.queue_size == 0).await;
    assert_eq!(s.snapshot.status, Status::Cancelled);
    assert_eq!(
        s.run_history.len(),
        1,
        "messages after the cancel open no run"
    );
    assert_eq!(s.run_history[0].status, "cancelled");
    assert_eq!(s.run_history[0].reason.as_deref(), Some("stop_it"));
    assert!(s.snapshot.last_seq > cancel_seq + 25);
    fx.shutdown().await;
}

#[tokio::test]
async fn cancel_fires_tokens_and_late_results_are_discarded_and_counted() {
    let fx = Fixture::new("cancel").await;
    let h = fx.start("conv-cancel", scripted_model(), |_| {}).await;
    let msg = scripted(
        "hold two",
        json!({"tool_calls": [{"name": "hold"}, {"name": "hold", "run_mode": "async"}]}),
    );
    let snap = h.call(msg, Some(Duration::from_millis(200))).await.unwrap();
    assert!(
        !snap.settled,
        "a pending sync call keeps the conversation unsettled"
    );
    let s = state_until(&h, |s| {
        s.snapshot.pending_tool_calls.len() == 2
            && s.snapshot
                .pending_tool_calls
                .iter()
                .all(|c| c.state == crate::conversation::PendingState::Running)
    })
    .await;
    let modes: Vec<_> = s
        .snapshot
        .pending_tool_calls
        .iter()
        .map(|c| c.run_mode)
        .collect();
    assert!(modes.contains(&crate::conversation::RunMode::Async));
    let cancel = Signal::cancel(None);
    let snap = h.call(cancel.clone(), None).await.unwrap();
    assert!(snap.settled);
    assert_eq!(snap.status, Status::Cancelled);
    assert!(snap.pending_tool_calls.is_empty());
    eventually(|| async { (fx.runner.cancelled() == 2).then_some(()) }).await;
    let entries = fx.store.entries("conv-cancel");
    let cancelled: Vec<_> = entries
        .iter()
        .filter(|e| e.signal.kind == SignalType::ToolCancelled)
        .collect();
    assert_eq!(cancelled.len(), 2);
    for c in &cancelled {
        assert_eq!(c.signal.str_field("reason"), Some("conversation_cancelled"));
        assert_eq!(c.signal.correlation_id, cancel.correlation_id);
        assert_eq!(c.signal.causation_id.as_ref(), Some(&cancel.id));
        assert!(c.signal.str_field("call_correlation_id").is_some());
    }
    // Both runners return `cancelled` after their token fired: late, discarded, counted.
    fx.counter_reaches("conversation.late_results_discarded", 2)
        .await;
    let d = eventually(|| async {
        let d = h.diagnostics().await.ok()?;
        (d.tool_tasks == 0).then_some(d)
    })
    .await;
    assert_eq!(d.core.late_results_discarded, 2);
    let n = fx.store.entries("conv-cancel").len();
    assert_eq!(n, entries.len(), "late results are not journaled");
    fx.shutdown().await;
}

#[tokio::test]
async fn resume_after_cancel_opens_a_fresh_run() {
    let fx = Fixture::new("resume").await;
    let h = fx.start("conv-resume", scripted_model(), |_| {}).await;
    h.call(Signal::cancel(None), None).await.unwrap();
    let snap = h
        .call(Signal::user_message("ignored?"), None)
        .await
        .unwrap();
    assert_eq!(snap.status, Status::Cancelled);
    assert!(snap.active_run.is_none());
    let snap = h.call(Signal::resume(), None).await.unwrap();
    assert_eq!(snap.status, Status::Idle);
    let snap = h.call(Signal::user_message("again"), None).await.unwrap();
    assert!(snap.settled);
    let s = h.state().await.unwrap();
    assert_eq!(s.run_history.len(), 1);
    assert_eq!(s.run_history[0].status, "completed");
    let types = fx.store.types("conv-resume");
    assert!(types.contains(&"run.resumed".to_owned()));
    let Projection::LlmContext(ctx) = h.projection(ProjectionKey::LlmContext).await.unwrap() else {
        panic!("wrong projection");
    };
    // history restarts at the resume boundary
    assert_eq!(ctx.messages[0].content, "again");
    fx.shutdown().await;
}

#[tokio::test]
async fn max_turn_steps_closes_the_run_failed() {
    let fx = Fixture::new("turns").await;
    let looping = ModelResponse {
        text: String::new(),
        tool_calls: vec![ModelToolCall {
            id: None,
            name: "echo".into(),
            args: json!({}),
            run_mode: None,
        }],
        finish_reason: "tool_calls".into(),
        usage: None,
    };
    let model = ScriptedModel::from_responses((0..5).map(|_| Ok(looping.clone())));
    let h = fx
        .start("conv-turns", Arc::new(model), |c| c.max_turn_steps = 2)
        .await;
    let snap = h.call(Signal::user_message("loop"), None).await.unwrap();
    assert!(snap.settled);
    let s = h.state().await.unwrap();
    let run = s.run_history.last().unwrap();
    assert_eq!(
        (run.status.as_str(), run.reason.as_deref(), run.steps),
        ("failed", Some("max_turn_steps_exceeded"), 2)
    );
    assert_eq!(fx.runner.calls().len(), 2);
    fx.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_retryable_model_failure_is_retried_after_the_backoff() {
    let fx = Fixture::new("retry").await;
    let flaky = ScriptedModel::from_responses([
        Err(crate::conversation::ModelError {
            code: "rate_limited".into(),
            message: "slow down".into(),
            retryable: true,
        }),
        Ok(ModelResponse {
            text: "second time lucky".into(),
            tool_calls: vec![],
            finish_reason: "stop".into(),
            usage: Some(json!({"total_tokens": 7})),
        }),
    ]);
    let model = Arc::new(Recording::new(flaky));
    let h = fx
        .start("conv-retry", model.clone(), |c| c.llm_max_retries = 1)
        .await;
    let snap = h.call(Signal::user_message("hi"), None).await.unwrap();
    assert!(snap.settled);
    let calls = model.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    let waited = calls[1] - calls[0];
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    let s = h.state().await.unwrap();
    assert_eq!(s.run_history.last().unwrap().status, "completed");
    let failed = fx.events("conversation.llm.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].payload["reason"], "rate_limited");
    assert_eq!(failed[0].payload["retryable"], true);
    assert_eq!(failed[0].payload["attempt"], 0);
    let done = fx.events("conversation.llm.completed").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].payload["usage"]["total_tokens"], 7);
    fx.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_model_that_never_answers_times_out() {
    let fx = Fixture::new("timeout").await;
    let mut config = fx.config("conv-timeout");
    config.llm_max_retries = 0;
    let mut args = fx.args(config, Arc::new(Hanging));
    args.llm_timeout_ms = 1000;
    let h = fx
        .directory
        .start(&fx.sup, &fx.registry, args)
        .await
        .unwrap();
    let snap = h.call(Signal::user_message("hello?"), None).await.unwrap();
    assert!(snap.settled);
    let entries = fx.store.entries("conv-timeout");
    let failed = entries
        .iter()
        .find(|e| e.signal.kind == SignalType::LlmFailed)
        .unwrap();
    assert_eq!(failed.signal.str_field("reason"), Some("timeout"));
    assert_eq!(failed.signal.data["retryable"], true);
    let run = h.state().await.unwrap().run_history.pop().unwrap();
    assert_eq!(
        (run.status.as_str(), run.reason.as_deref()),
        ("failed", Some("timeout"))
    );
    let ev = fx.events("conversation.llm.failed").await;
    assert_eq!(ev[0].payload["reason"], "timeout");
    fx.shutdown().await;
}

#[tokio::test]
async fn subscribers_see_the_same_entries_in_seq_order_including_background_work() {
    let fx = Fixture::new("subs").await;
    let h = fx.start("conv-subs", scripted_model(), |_| {}).await;
    let mut a = h.subscribe(None).await.unwrap();
    let mut b = h.subscribe(None).await.unwrap();
    assert_eq!(h.diagnostics().await.unwrap().subscriber_count, 2);
    let msg = scripted(
        "stream",
        json!({
            "delta_chunks": ["He", "llo"],
            "tool_calls": [{"name": "echo"}, {"name": "gated", "run_mode": "async"}],
        }),
    );
    let snap = h.call(msg, None).await.unwrap();
    assert!(snap.settled, "async calls do not hold the run");
    fx.runner.release(1); // the async result arrives after the run closed
    let d = eventually(|| async {
        let d = h.diagnostics().await.ok()?;
        (d.tool_tasks == 0 && d.core.pending_tool_call_count == 0).then_some(d)
    })
    .await;
    let last = d.core.event_count;
    let got_a = read_until(&mut a, last).await;
    let got_b = read_until(&mut b, last).await;
    assert_contiguous(&seqs(&got_a), 1, last);
    assert_eq!(
        got_a
            .iter()
            .map(|r| r.as_ref().unwrap().clone())
            .collect::<Vec<_>>(),
        got_b
            .iter()
            .map(|r| r.as_ref().unwrap().clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        got_a
            .iter()
            .map(|r| r.as_ref().unwrap().clone())
            .collect::<Vec<_>>(),
        fx.store.entries("conv-subs")
    );
    let types: Vec<String> = got_a
        .iter()
        .map(|r| short(r.as_ref().unwrap().signal.kind.as_str()))
        .collect();
    assert_eq!(&types[3..5], &["assistant.delta", "assistant.delta"]);
    let closed = types.iter().position(|t| t == "run.closed").unwrap();
    let async_done = types.iter().rposition(|t| t == "tool.completed").unwrap();
    assert!(async_done > closed, "{types:?}");
    drop(a);
    drop(b);
    // the channel is freed at the next publish; subscriber_count drops at once
    assert_eq!(h.diagnostics().await.unwrap().subscriber_count, 0);
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_seq_replays_then_continues_live_without_gap_or_duplicate() {
    let fx = Fixture::new("replay").await;
    let h = fx.start("conv-replay", scripted_model(), |_| {}).await;
    for i in 0..10 {
        h.call(Signal::user_message(format!("warm {i}")), None)
            .await
            .unwrap();
    }
    let writer = {
        let h = h.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                h.cast(Signal::user_message(format!("m{i}"))).await.unwrap();
            }
        })
    };
    // Subscribe at several points while the writer appends; each replays from its seq.
    let mut subs = Vec::new();
    for from in [1u64, 7, 30, 58] {
        subs.push((from, h.subscribe(Some(from)).await.unwrap()));
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    let last = state_until(&h, |s| s.snapshot.settled)
        .await
        .snapshot
        .last_seq;
    // (casts that arrive during a run join it, so there are fewer than 6 entries each)
    assert_eq!(last, fx.store.entries("conv-replay").len() as u64);
    assert!(last > 60 + 70);
    for (from, mut sub) in subs {
        let got = read_until(&mut sub, last).await;
        assert!(got.iter().all(Result::is_ok), "no lag expected");
        assert_contiguous(&seqs(&got), from, last);
    }
    fx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_gets_lagged_and_continues() {
    let fx = Fixture::new("lag").await;
    let h = fx.start("conv-lag", scripted_model(), |_| {}).await;
    let mut slow = h.subscribe(None).await.unwrap();
    let mut fast = h.subscribe(None).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while let Some(item) = fast.next().await {
            seqs.push(item.expect("the fast subscriber keeps up").seq);
            if *seqs.last().unwrap() == 1260 {
                break;
            }
        }
        seqs
    });
    for i in 0..210 {
        h.call(Signal::user_message(format!("m{i}")), None)
            .await
            .unwrap();
    }
    let last = h.state().await.unwrap().snapshot.last_seq;
    assert_eq!(last, 1260);
    assert_contiguous(&reader.await.unwrap(), 1, last);
    let got = read_until(&mut slow, last).await;
    let lags: Vec<u64> = got
        .iter()
        .filter_map(|r| r.as_ref().err().map(|l| l.missed))
        .collect();
    assert_eq!(lags.len(), 1, "one lag notice, then it continues");
    let seen = seqs(&got);
    assert_eq!(seen.len() as u64 + lags[0], last);
    assert_contiguous(&seen, lags[0] + 1, last);
    fx.counter_reaches("subscribers.lagged", 1).await;
    fx.shutdown().await;
}

#[tokio::test]
async fn a_crash_restarts_from_the_journal_and_interrupts_pending_calls() {
    let fx = Fixture::new("crash").await;
    let h = fx.start("conv-crash", scripted_model(), |_| {}).await;
    let mut sub = h.subscribe(None).await.unwrap();
    h.cast(scripted("hold", json!({"tool_calls": [{"name": "hold"}]})))
        .await
        .unwrap();
    state_until(&h, |s| s.snapshot.pending_tool_calls.len() == 1).await;
    let seq_before = h.state().await.unwrap().snapshot.last_seq;
    let generation = h.generation();

    let started = std::time::Instant::now();
    h.crash().unwrap();
    // The first attempt reaches the dying actor; the handle retries once on the new one.
    let s = h.state().await.unwrap();
    let back_in_service = started.elapsed();
    eprintln!("crash -> answered by the restarted conversation in {back_in_service:?}");
    assert!(h.generation() > generation);
    assert!(s.restored);
    assert_eq!(s.snapshot.status, Status::Idle);
    assert!(s.snapshot.pending_tool_calls.is_empty());
    assert_eq!(s.snapshot.last_seq, seq_before + 2);
    assert_eq!(s.run_history.last().unwrap().status, "interrupted");
    let entries = fx.store.entries("conv-crash");
    let tail: Vec<_> = entries.iter().rev().take(2).rev().collect();
    assert_eq!(tail[0].signal.kind, SignalType::ToolFailed);
    assert_eq!(tail[0].signal.data["error"]["code"], "interrupted");
    assert_eq!(tail[1].signal.kind, SignalType::RunClosed);
    assert_eq!(tail[1].signal.str_field("status"), Some("interrupted"));
    // The old incarnation's tasks died with it: the executor saw the token fire.
    eventually(|| async { (fx.runner.cancelled() == 1).then_some(()) }).await;
    // The subscription survived the restart and saw the interruption entries.
    let got = read_until(&mut sub, s.snapshot.last_seq).await;
    assert_contiguous(&seqs(&got), 1, s.snapshot.last_seq);
    let restored = fx.events("conversation.restored").await;
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0].payload["interrupted_tool_calls"], 1);
    assert_eq!(restored[0].payload["events_replayed"], seq_before);

    // A caller racing a second crash gets its cast applied after one retry.
    h.crash().unwrap();
    let ack = h
        .cast(Signal::user_message("after the crash"))
        .await
        .unwrap();
    assert_eq!(ack.seq, Some(s.snapshot.last_seq + 1));
    let s = state_until(&h, |s| s.snapshot.settled).await;
    assert_eq!(s.run_history.last().unwrap().status, "completed");
    fx.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn four_crashes_in_ten_seconds_stop_the_conversation_alone() {
    let fx = Fixture::new("storm").await;
    let a = fx.start("conv-storm-a", scripted_model(), |_| {}).await;
    let b = fx.start("conv-storm-b", scripted_model(), |_| {}).await;
    a.call(Signal::user_message("hi"), None).await.unwrap();
    let mut sub = a.subscribe(None).await.unwrap();
    for _ in 0..3 {
        let g = a.generation();
        a.crash().unwrap();
        a.wait_restarted(g).await.unwrap();
    }
    a.crash().unwrap();
    // Given up: the handle fails fast, the conversation is finished as crashed.
    let err = eventually(|| async { a.state().await.err() }).await;
    assert_eq!(err.code(), "conversation_unavailable");
    let stopped = eventually(|| async { fx.store.stopped("conv-storm-a") }).await;
    assert_eq!(stopped.0, "crashed");
    let last = fx.store.entries("conv-storm-a").pop().unwrap();
    assert_eq!(last.signal.kind, SignalType::Stopped);
    assert_eq!(last.signal.str_field("reason"), Some("crashed"));
    let got = tokio::time::timeout(Duration::from_secs(10), sub.by_ref().collect::<Vec<_>>())
        .await
        .expect("the subscription ends");
    assert_eq!(got.last().unwrap().as_ref().unwrap().seq, last.seq);
    let ev = fx.events("conversation.stopped").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].payload["reason"], "crashed");
    assert!(!fx.directory.is_live("conv-storm-a"));
    // The sibling is untouched.
    assert!(fx.directory.is_live("conv-storm-b"));
    let snap = b
        .call(Signal::user_message("still here"), None)
        .await
        .unwrap();
    assert!(snap.settled);
    assert_eq!(b.generation(), 1);
    assert!(fx.sup.is_alive());
    fx.shutdown().await;
}

#[tokio::test]
async fn stop_cancels_journals_and_ends_subscriptions() {
    let fx = Fixture::new("stop").await;
    let h = fx.start("conv-stop", scripted_model(), |_| {}).await;
    let mut sub = h.subscribe(None).await.unwrap();
    h.cast(scripted("hold", json!({"tool_calls": [{"name": "hold"}]})))
        .await
        .unwrap();
    state_until(&h, |s| s.snapshot.pending_tool_calls.len() == 1).await;
    h.stop(StopReason::Requested).await.unwrap();
    let items = tokio::time::timeout(Duration::from_secs(10), sub.by_ref().collect::<Vec<_>>())
        .await
        .expect("the subscription ends");
    let types: Vec<String> = items
        .iter()
        .map(|r| short(r.as_ref().unwrap().signal.kind.as_str()))
        .collect();
    assert_eq!(
        &types[types.len() - 4..],
        &["cancel", "run.closed", "tool.cancelled", "stopped"]
    );
    let entries = fx.store.entries("conv-stop");
    assert_eq!(entries.len(), items.len());
    assert_eq!(
        entries[entries.len() - 4].signal.str_field("reason"),
        Some("conversation_stopped")
    );
    assert_eq!(
        entries.last().unwrap().signal.str_field("reason"),
        Some("requested")
    );
    assert_eq!(fx.store.stopped("conv-stop").unwrap().0, "requested");
    eventually(|| async { (fx.runner.cancelled() == 1).then_some(()) }).await;
    let ev = fx.events("conversation.stopped").await;
    assert_eq!(ev[0].payload["reason"], "requested");
    // Transient and stopped normally: not restarted, the handle fails fast.
    let err = eventually(|| async { h.state().await.err() }).await;
    assert_eq!(err.code(), "conversation_unavailable");
    eventually(|| async { (!fx.directory.is_live("conv-stop")).then_some(()) }).await;
    // A subscription taken after the stop cannot be had.
    assert!(h.subscribe(None).await.is_err());
    fx.shutdown().await;
}

#[tokio::test]
async fn callers_get_typed_errors_and_duplicates_are_acknowledged() {
    let fx = Fixture::new("misc").await;
    let h = fx.start("conv-misc", scripted_model(), |_| {}).await;
    let internal = Signal::new(SignalType::ToolCompleted, json!({}));
    let err = h.cast(internal).await.unwrap_err();
    assert_eq!(err.code(), "external_type_not_allowed");
    let msg = Signal::user_message("once");
    let first = h.cast(msg.clone()).await.unwrap();
    let again = h.call(msg.clone(), None).await.unwrap();
    assert!(again.duplicate && again.settled);
    let dup = h.cast(msg.clone()).await.unwrap();
    assert_eq!(
        (dup.duplicate, dup.seq, &dup.correlation_id),
        (true, first.seq, &msg.correlation_id)
    );
    assert_eq!(
        fx.store
            .types("conv-misc")
            .iter()
            .filter(|t| *t == "user.message")
            .count(),
        1
    );
    // a second conversation with the same id is refused
    let again = fx
        .directory
        .start(
            &fx.sup,
            &fx.registry,
            fx.args(fx.config("conv-misc"), scripted_model()),
        )
        .await
        .unwrap_err();
    assert_eq!(again.code(), "conversation_already_started");
    // a panicking runner becomes tool_failed{panic}, the conversation carries on
    let snap = h
        .call(
            scripted("boom", json!({"tool_calls": [{"name": "boom"}]})),
            None,
        )
        .await
        .unwrap();
    assert!(snap.settled);
    let failed = fx
        .store
        .entries("conv-misc")
        .into_iter()
        .find(|e| e.signal.kind == SignalType::ToolFailed)
        .unwrap();
    assert_eq!(failed.signal.data["error"]["details"]["reason"], "panic");
    fx.shutdown().await;
}

#[tokio::test]
async fn a_journaled_conversation_is_restored_on_start() {
    let fx = Fixture::new("restore").await;
    // A conversation that was running in an earlier process: user message, run opened, a
    // model step that requested a tool — then the process died.
    let project = ProjectId::parse("proj").unwrap();
    let id = ConversationId::parse("conv-restore").unwrap();
    let corr = CorrelationId::generate();
    let mut config = fx.config("conv-restore");
    config.system_prompt = Some("be brief".into());
    let mut prior = crate::conversation::ConversationState::new(config.clone());
    let mut entries = Vec::new();
    for input in [
        crate::conversation::Input::External(
            Signal::user_message("earlier").with_correlation_id(corr.clone()),
        ),
        crate::conversation::Input::Drain,
    ] {
        for e in crate::conversation::step_in_place(&mut prior, input) {
            if let crate::conversation::Effect::Applied(ev) = e {
                entries.push(ev);
            }
        }
    }
    assert_eq!(entries.len(), 3);
    assert!(
        entries
            .iter()
            .all(|e| e.project_id == project && e.conversation_id == id)
    );
    fx.store.seed(entries);
    let mut args = fx.args(config, scripted_model());
    args.restore = true;
    let h = fx
        .directory
        .start(&fx.sup, &fx.registry, args)
        .await
        .unwrap();
    let s = h.state().await.unwrap();
    assert!(s.restored);
    assert_eq!(s.snapshot.status, Status::Idle);
    assert_eq!(s.run_history[0].status, "interrupted");
    assert_eq!(
        s.snapshot.last_seq, 4,
        "3 replayed + run.closed{{interrupted}}"
    );
    let snap = h.call(Signal::user_message("now"), None).await.unwrap();
    assert!(snap.settled);
    assert_eq!(h.diagnostics().await.unwrap().core.run_history_count, 2);
    assert_eq!(fx.events("conversation.restored").await.len(), 1);
    assert!(fx.events("conversation.started").await.is_empty());
    // A journal that cannot be loaded fails the start with a typed error.
    fx.store.fail_loads(1);
    let mut args = fx.args(fx.config("conv-restore-2"), scripted_model());
    args.restore = true;
    let err = fx
        .directory
        .start(&fx.sup, &fx.registry, args)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conversation_start_failed");
    fx.shutdown().await;
}

#[test]
fn specs_follow_the_restart_table() {
    let dir = ConversationDirectory::new();
    let cfg = dir.supervisor_config("convs", None);
    assert_eq!(cfg.intensity, conversation_supervisor_intensity());
    assert_eq!(
        (cfg.intensity.max_restarts, cfg.intensity.window_ms),
        (10, 10_000)
    );
    assert!(cfg.observer.is_some());
    let i = conversation_intensity();
    assert_eq!((i.max_restarts, i.window_ms), (3, 10_000));
}

#[tokio::test]
async fn a_nested_conversation_supervisor_starts_initial_and_dynamic_conversations() {
    let fx = Fixture::new("nested").await;
    let directory = ConversationDirectory::new();
    let registry = fx.registry.clone();
    let (store, runner, telemetry) = (fx.store.clone(), fx.runner.clone(), fx.telemetry.clone());
    let initial = move || {
        let config = crate::conversation::ConversationConfig::new(
            ProjectId::parse("proj").unwrap(),
            ConversationId::parse("conv-initial").unwrap(),
        );
        let mut args = ConversationArgs::new(
            config,
            store.clone(),
            Arc::new(runner.clone()),
            Arc::new(ScriptedModel::new()),
            telemetry.clone(),
        );
        args.restore = true; // the runtime restores what the journal holds
        vec![args]
    };
    let project = crate::supervision::Supervisor::start(
        crate::supervision::SupervisorConfig::new("nested-project"),
        crate::supervision::SupervisorArgs {
            children: vec![directory.supervisor_spec(
                "conversations",
                registry.clone(),
                None,
                initial,
            )],
            registry: registry.clone(),
        },
    )
    .await
    .unwrap();
    assert!(directory.is_live("conv-initial"));
    let first = ConversationHandle::new(&registry, &ConversationId::parse("conv-initial").unwrap());
    assert!(
        first
            .call(Signal::user_message("hi"), None)
            .await
            .unwrap()
            .settled
    );
    let sup = registry.handle::<crate::supervision::SupervisorMsg>("conversations");
    let dynamic = directory
        .start_in(
            &sup,
            &registry,
            fx.args(fx.config("conv-dynamic"), scripted_model()),
        )
        .await
        .unwrap();
    assert!(
        dynamic
            .call(Signal::user_message("hey"), None)
            .await
            .unwrap()
            .settled
    );
    assert_eq!(directory.live_ids(), vec!["conv-dynamic", "conv-initial"]);
    let err = directory
        .start_in(
            &sup,
            &registry,
            fx.args(fx.config("conv-dynamic"), scripted_model()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conversation_already_started");
    project.stop("test_done").await;
    fx.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn internal_results_the_journal_keeps_refusing_end_in_a_rebuild() {
    let fx = Fixture::new("backlog").await;
    let h = fx.start("conv-backlog", scripted_model(), |_| {}).await;
    h.cast(scripted("gate", json!({"tool_calls": [{"name": "gated"}]})))
        .await
        .unwrap();
    state_until(&h, |s| s.snapshot.pending_tool_calls.len() == 1).await;
    let g = h.generation();
    // The tool result is refused by the first try and all 8 retries: the actor fails and is
    // rebuilt from the journal, where the call is still pending — so it is interrupted.
    fx.store.fail_appends(9);
    fx.runner.release(1);
    let s = state_until(&h, |s| s.restored).await;
    assert!(h.generation() > g);
    assert_eq!(s.snapshot.status, Status::Idle);
    assert_eq!(s.run_history.last().unwrap().status, "interrupted");
    let types = fx.store.types("conv-backlog");
    assert!(!types.contains(&"tool.completed".to_owned()));
    assert_eq!(types.last().unwrap(), "run.closed");
    fx.shutdown().await;
}

#[tokio::test]
async fn a_subscription_backfills_a_gap_and_reports_an_unreadable_journal_as_lagged() {
    let store = Arc::new(fakes::MemStore::default());
    let id = ConversationId::parse("conv-gap").unwrap();
    let project = ProjectId::parse("proj").unwrap();
    let entry = |seq: u64, kind: SignalType| ConversationEvent {
        project_id: project.clone(),
        conversation_id: id.clone(),
        seq,
        signal: Signal::new(kind, json!({})),
    };
    let entries: Vec<_> = (1..=6).map(|s| entry(s, SignalType::UserMessage)).collect();
    store.seed(entries.clone());
    let hub = subscription::Hub::default();
    // Subscribed at seq 2; entries 3 and 4 were journaled but never published.
    let mut sub =
        ConversationSubscription::new(store.clone(), id.clone(), None, hub.subscribe(), 2, None);
    hub.publish(&entries[4..6]);
    let stopped = entry(7, SignalType::Stopped);
    hub.publish([&stopped]);
    let got: Vec<u64> = sub.by_ref().map(|r| r.unwrap().seq).collect().await;
    assert_eq!(
        got,
        vec![3, 4, 5, 6, 7],
        "back-filled, then ended after the stop"
    );
    // A replay the journal refuses is reported as missed entries, then the stream goes live.
    store.fail_loads(1);
    let mut sub =
        ConversationSubscription::new(store, id.clone(), None, hub.subscribe(), 6, Some(1));
    assert_eq!(sub.recv().await.unwrap(), Err(Lagged { missed: 6 }));
    hub.publish([&entry(7, SignalType::UserMessage)]);
    assert_eq!(sub.recv().await.unwrap().unwrap().seq, 7);
    hub.close();
    assert!(sub.recv().await.is_none());
}
