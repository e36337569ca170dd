//! SPEC §4 steps 10–12, §6.3, §8.4: the project's executor cap under 50 concurrent slow calls
//! (never more in flight than `tool_max_concurrency`; the excess refused at once with
//! `tool_max_queued = 0`, or queued and served FIFO), the queue timeout, the per-conversation
//! quota (0 rejects), `tool_timeout_ms` and `meta.timeout_ms` (which only shortens), the
//! `conversation.tool.timeout` counts, the repeated-timeout alert, and command trees that fork
//! and sleep being killed and counted.
//!
//! Slow calls are `test.gate` calls that wait on the test's gate, so nothing depends on timing:
//! the test opens the gate once it has observed the state it wants.

use std::sync::Arc;

use codeward::{
    AlertRoute, ChannelSink, ProjectOptions, Severity, TimelineQuery, ToolCallMeta, ToolFailure,
    ToolSuccess,
};
use codeward_tests::{
    TestProject, TestTools, call, call_in, call_with, config_with, eventually, unique,
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

type Pending = Vec<JoinHandle<Result<ToolSuccess, ToolFailure>>>;

fn spawn_gated(
    p: &TestProject,
    range: std::ops::Range<u64>,
    conv: Option<&codeward::ConversationId>,
) -> Pending {
    range
        .map(|n| {
            let (engine, id) = (p.engine.clone(), p.id.clone());
            let c = match conv {
                Some(c) => call_in("test.gate", json!({"n": n}), c),
                None => call("test.gate", json!({"n": n})),
            };
            tokio::spawn(async move { engine.run_tool(&id, c).await })
        })
        .collect()
}

async fn join(pending: Pending) -> Vec<Result<ToolSuccess, ToolFailure>> {
    let mut out = Vec::new();
    for h in pending {
        out.push(h.await.expect("call task"));
    }
    out
}

fn finished(pending: &Pending) -> usize {
    pending.iter().filter(|h| h.is_finished()).count()
}

async fn tools_block(p: &TestProject) -> Value {
    p.diagnostics().await["tools"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_holds_under_fifty_calls_and_the_excess_is_refused_at_once() {
    let tools = TestTools::default();
    let p = TestProject::start_with(
        config_with(&tools),
        ProjectOptions::default()
            .tool_max_concurrency(4)
            .tool_max_queued(0),
    )
    .await;
    let pending = spawn_gated(&p, 0..50, None);
    // 46 are refused at once while 4 hold their slots on the closed gate.
    eventually("46 refusals and 4 calls in flight", || async {
        let t = tools_block(&p).await;
        (finished(&pending) == 46 && tools.in_flight() == 4 && t["in_flight"] == 4).then_some(())
    })
    .await;
    assert_eq!(tools_block(&p).await["max_concurrency"], 4);
    tools.open();
    let results = join(pending).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 4);
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.code(), "max_concurrency_reached", "{}", r.error.to_json());
        assert_eq!(r.error.details()["limit"], 4);
        assert!(r.error.retryable());
    }
    assert_eq!(tools.max_in_flight(), 4, "never more than the cap");
    // A refused call never started: 4 starts, 4 completions.
    assert_eq!(tools.started().len(), 4);
    p.wait_event_count("conversation.tool.completed", 4).await;
    assert_eq!(p.event_count("conversation.tool.started").await, 4);
    eventually("slots released", || async {
        (tools_block(&p).await["in_flight"] == 0).then_some(())
    })
    .await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_calls_wait_within_the_cap_and_all_complete() {
    let tools = TestTools::default();
    let p = TestProject::start_with(
        config_with(&tools),
        ProjectOptions::default()
            .tool_max_concurrency(4)
            .tool_max_queued(64)
            .tool_queue_timeout_ms(120_000),
    )
    .await;
    let pending = spawn_gated(&p, 0..50, None);
    eventually("4 in flight and 46 queued", || async {
        let t = tools_block(&p).await;
        (t["in_flight"] == 4 && t["queued"] == 46 && tools.in_flight() == 4).then_some(())
    })
    .await;
    assert_eq!(finished(&pending), 0);
    tools.open();
    let results = join(pending).await;
    assert!(
        results.iter().all(Result::is_ok),
        "every queued call is served"
    );
    assert_eq!(tools.max_in_flight(), 4, "never more than the cap");
    let mut started = tools.started();
    started.sort_unstable();
    assert_eq!(started, (0..50).collect::<Vec<_>>(), "each call ran once");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_callers_are_served_first_in_first_out() {
    let tools = TestTools::default();
    let p = TestProject::start_with(
        config_with(&tools),
        ProjectOptions::default()
            .tool_max_concurrency(1)
            .tool_max_queued(16)
            .tool_queue_timeout_ms(120_000),
    )
    .await;
    let mut pending = spawn_gated(&p, 0..1, None);
    eventually("the first call holds the slot", || async {
        (tools.in_flight() == 1).then_some(())
    })
    .await;
    // Enqueue one at a time, so the queue order is known.
    for n in 1..=8u64 {
        pending.extend(spawn_gated(&p, n..n + 1, None));
        eventually(&format!("{n} queued"), || async {
            (tools_block(&p).await["queued"] == n).then_some(())
        })
        .await;
    }
    tools.open();
    assert!(join(pending).await.iter().all(Result::is_ok));
    assert_eq!(tools.started(), (0..=8).collect::<Vec<_>>(), "FIFO");
    assert_eq!(tools.max_in_flight(), 1);
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_queued_past_the_queue_timeout_is_refused() {
    let tools = TestTools::default();
    let p = TestProject::start_with(
        config_with(&tools),
        ProjectOptions::default()
            .tool_max_concurrency(1)
            .tool_max_queued(4)
            .tool_queue_timeout_ms(200),
    )
    .await;
    let holder = spawn_gated(&p, 0..1, None);
    eventually("the slot is held", || async {
        (tools.in_flight() == 1).then_some(())
    })
    .await;
    let f = p.fails("test.gate", json!({"n": 1})).await;
    assert_eq!(f.code(), "max_concurrency_reached");
    let queued_ms = f.error.details()["queued_ms"].as_u64().unwrap();
    assert!(
        queued_ms >= 200,
        "waited the queue timeout first: {queued_ms}"
    );
    tools.open();
    assert!(join(holder).await[0].is_ok());
    assert_eq!(tools.started(), vec![0], "the refused call never ran");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_conversation_quota_refuses_the_excess_and_spares_other_callers() {
    let tools = TestTools::default();
    let p = TestProject::start_with(
        config_with(&tools),
        ProjectOptions::default()
            .tool_max_concurrency(8)
            .tool_max_concurrency_per_conversation(2),
    )
    .await;
    let (c1, c2) = (p.conversation().await, p.conversation().await);
    let mut pending = spawn_gated(&p, 0..3, Some(&c1));
    eventually("two in flight, one refused", || async {
        (tools.in_flight() == 2 && finished(&pending) == 1).then_some(())
    })
    .await;
    let per = tools_block(&p).await["per_conversation_in_flight"].clone();
    assert_eq!(per[c1.as_str()], 2, "{per}");
    // Another conversation and a call without one are not affected.
    pending.extend(spawn_gated(&p, 10..12, Some(&c2)));
    pending.extend(spawn_gated(&p, 20..21, None));
    eventually("five in flight", || async {
        (tools.in_flight() == 5).then_some(())
    })
    .await;
    tools.open();
    let results = join(pending).await;
    let refused: Vec<&ToolFailure> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].code(), "conversation_max_concurrency_reached");
    assert_eq!(refused[0].error.details(), json!({"limit": 2}));
    assert_eq!(refused[0].conversation_id.as_ref(), Some(&c1));
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_per_conversation_quota_rejects_every_conversation_call() {
    let tools = TestTools::default();
    tools.open();
    let p = TestProject::start_with(
        config_with(&tools),
        ProjectOptions::default().tool_max_concurrency_per_conversation(0),
    )
    .await;
    let c = p.conversation().await;
    let f = p
        .run_call(call_in("test.gate", json!({"n": 1}), &c))
        .await
        .unwrap_err();
    assert_eq!(f.code(), "conversation_max_concurrency_reached");
    assert_eq!(f.error.details(), json!({"limit": 0}));
    assert!(tools.started().is_empty());
    p.ok("test.gate", json!({"n": 2})).await;
    assert_eq!(tools.started(), vec![2]);
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_come_from_the_option_or_a_shorter_meta_timeout() {
    let tools = TestTools::default();
    let p = TestProject::start_with(
        config_with(&tools),
        ProjectOptions::default().tool_timeout_ms(300),
    )
    .await;
    let f = p.fails("test.sleep", json!({"ms": 120_000})).await;
    assert_eq!(f.code(), "timeout");
    assert_eq!(f.error.details(), json!({"timeout_ms": 300}));
    assert!(f.error.retryable());
    eventually("the tool saw its token fire", || async {
        (tools.cancelled() >= 1).then_some(())
    })
    .await;
    let meta = |ms| ToolCallMeta {
        timeout_ms: Some(ms),
        ..ToolCallMeta::default()
    };
    // Shorter: applies.
    let f = p
        .run_call(call_with("test.sleep", json!({"ms": 120_000}), meta(50)))
        .await
        .unwrap_err();
    assert_eq!(f.error.details(), json!({"timeout_ms": 50}));
    // Longer: cannot lengthen the option.
    let f = p
        .run_call(call_with(
            "test.sleep",
            json!({"ms": 120_000}),
            meta(3_600_000),
        ))
        .await
        .unwrap_err();
    assert_eq!(f.error.details(), json!({"timeout_ms": 300}));
    // A fast call under a timeout is fine.
    p.ok("test.sleep", json!({"ms": 1})).await;
    assert_eq!(p.wait_counter("tool.timeouts", 3).await, 3);
    p.wait_event_count("conversation.tool.timeout", 3).await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_timeouts_are_counted_and_alert_once() {
    let tools = TestTools::default();
    let (sink, mut alerts) = ChannelSink::new("chan", 64);
    let config = config_with(&tools)
        .with_alert_sink(Arc::new(sink))
        .with_alert_route(AlertRoute {
            events: vec!["*".into()],
            min_severity: Severity::Warning,
            sinks: vec!["chan".into()],
        });
    let p = TestProject::start_with(config, ProjectOptions::default().tool_timeout_ms(100)).await;
    let c = p.conversation().await;
    let mut correlations = Vec::new();
    for _ in 0..4 {
        let f = p
            .run_call(call_in("test.sleep", json!({"ms": 120_000}), &c))
            .await
            .unwrap_err();
        assert_eq!(f.code(), "timeout");
        correlations.push(f.correlation_id);
    }
    let alert = tokio::time::timeout(codeward_tests::WAIT, async {
        loop {
            let a = alerts.recv().await.expect("alert channel open");
            if a.event == "security.repeated_timeout_failures" {
                return a;
            }
        }
    })
    .await
    .expect("repeated-timeout alert delivered");
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(alert.project_id, p.id);
    assert_eq!(alert.payload["timeout_count"], 3, "{}", alert.payload);
    assert_eq!(alert.payload["threshold"], 3, "{}", alert.payload);
    assert_eq!(alert.payload["window_ms"], 600_000, "{}", alert.payload);
    // Emitted once: the fourth timeout is still above the threshold.
    p.wait_event_count("conversation.tool.timeout", 4).await;
    assert_eq!(p.event_count("security.repeated_timeout_failures").await, 1);
    // Each timeout event carries the count in the window (the timeline has the payloads).
    let timeline = eventually("four timeout entries in the timeline", || async {
        let t = p
            .engine
            .incident_timeline(&p.id, &c, TimelineQuery::default())
            .await
            .unwrap();
        let counts: Vec<u64> = t
            .entries
            .iter()
            .filter(|e| e.event == "conversation.tool.timeout")
            .filter_map(|e| e.payload["timeout_count"].as_u64())
            .collect();
        (counts.len() == 4).then_some(counts)
    })
    .await;
    assert_eq!(timeline, vec![1, 2, 3, 4]);
    p.engine.shutdown().await.unwrap();
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(marker) {
                out.push(format!("{}: {text}", name.to_string_lossy()));
            }
        }
    }
    out
}

fn marker_seconds() -> String {
    // A unique `sleep` argument (GNU sleep takes fractions) to find the tree in /proc.
    let digits: String = unique("m")
        .chars()
        .filter(char::is_ascii_digit)
        .take(9)
        .collect();
    format!("1000.{digits}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forking_command_is_killed_on_timeout_and_its_tree_counted() {
    let p = TestProject::start(ProjectOptions::default().tool_timeout_ms(1_000)).await;
    let m = marker_seconds();
    let script = format!("sleep {m} & sleep {m} & (sleep {m} &) ; setsid sleep {m} & wait");
    let f = p.fails("command.run", json!({"command": script})).await;
    assert_eq!(f.code(), "timeout", "{}", f.error.to_json());
    // Answered after cleanup: nothing of the tree is left.
    assert_eq!(processes_with(&m), Vec::<String>::new());
    let n = p.wait_counter("tool.child_processes_terminated", 4).await;
    assert!(n >= 4, "{n}");
    let ev = p
        .wait_event_of(
            "conversation.tool.child_processes_terminated",
            &f.correlation_id,
        )
        .await;
    assert_eq!(ev["reason"], "timeout", "{ev}");
    p.wait_event_of("conversation.tool.timeout", &f.correlation_id)
        .await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_leftovers_of_a_finished_command_are_killed() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let m = marker_seconds();
    let ok = p
        .ok(
            "command.run",
            json!({"command": format!("sleep {m} & (setsid sleep {m} &) ; echo done")}),
        )
        .await;
    assert_eq!(ok.result["stdout"], "done\n");
    assert!(
        ok.result["terminated_process_count"].as_u64().unwrap() >= 2,
        "{}",
        ok.result
    );
    assert_eq!(processes_with(&m), Vec::<String>::new());
    let ev = p
        .wait_event_of(
            "conversation.tool.child_processes_terminated",
            &ok.correlation_id,
        )
        .await;
    assert_eq!(ev["reason"], "completed", "{ev}");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_timeout_argument_only_shortens() {
    let p = TestProject::start(ProjectOptions::default().tool_timeout_ms(30_000)).await;
    let f = p
        .fails(
            "command.run",
            json!({"argv": ["sleep", "60"], "timeout_ms": 200}),
        )
        .await;
    assert_eq!(f.code(), "timeout");
    assert_eq!(f.error.details(), json!({"timeout_ms": 200}));
    p.engine.shutdown().await.unwrap();
}
