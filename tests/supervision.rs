//! SPEC §13 through the facade and `Engine::inject_failure`: a panicking provider tool is a
//! `tool_failed{panic}` and the pool keeps serving; executor workers crash and come back; a
//! crashed conversation is rebuilt and answers with no raw error, and past its own intensity it
//! stops alone (`crashed`) while its siblings carry on; crashed policy and asset actors are
//! restarted while calls keep working on the last snapshot; a project whose children crash past
//! its intensity is quarantined — `project_failed` for calls, listed as `failed`, a critical
//! alert — without touching other projects, and `stop_project` removes it.

use std::sync::Arc;
use std::time::Duration;

use codeward::{
    AlertRoute, ChannelSink, ConversationId, Engine, FailureTarget, ProjectOptions, Severity,
    Signal, TimelineQuery,
};
use codeward_tests::{TestProject, TestTools, WAIT, config_with, empty_root, eventually, scripted};
use serde_json::{Value, json};

const SETTLE: Option<Duration> = Some(Duration::from_secs(20));

/// The supervision row of `actor` in the diagnostics.
async fn child(p: &TestProject, actor: &str) -> Value {
    p.diagnostics().await["supervision"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["actor"] == actor)
        .cloned()
        .unwrap_or_else(|| panic!("no supervision row for {actor}"))
}

/// Crashes `target` and waits until `runtime.actor_restarted` was counted once more.
async fn crash_and_wait(p: &TestProject, target: FailureTarget) {
    let before = p.event_count("runtime.actor_restarted").await;
    eventually(&format!("{target:?} accepts the crash"), || async {
        p.engine.inject_failure(&p.id, target.clone()).await.ok()
    })
    .await;
    p.wait_event_count("runtime.actor_restarted", before + 1)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_tool_fails_its_call_and_the_pool_keeps_serving() {
    let p = TestProject::start(ProjectOptions::default().tool_max_concurrency(2)).await;
    // More panics than any restart intensity allows: a buggy tool is not an outage. Each
    // panic restarts its worker; the next panic waits for that (see the ignored test below).
    for n in 1..=8 {
        let f = p.fails("test.panic", json!({})).await;
        assert_eq!(f.code(), "tool_failed");
        assert_eq!(
            f.error.details()["reason"],
            "panic",
            "{}",
            f.error.to_json()
        );
        assert!(f.decision_id.is_some(), "it passed the policy");
        p.wait_event_count("runtime.actor_restarted", n).await;
    }
    let calls = (0..10).map(|i| p.run("test.echo", json!({"i": i})));
    for r in futures::future::join_all(calls).await {
        assert!(r.is_ok(), "{:?}", r.err().map(|e| e.error.to_json()));
    }
    let summary = &p.engine.list_projects().await.unwrap()[0];
    assert_ne!(json!(summary.status), "failed");
    p.wait_event_count("conversation.tool.failed", 8).await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_right_after_a_panic_are_never_interrupted() {
    // Within the executor's intensity (5 restarts in 10 s): past it the executor escalates by
    // design, which `a_panicking_tool_past_the_intensity_escalates` style tests cover.
    let p = TestProject::start(ProjectOptions::default().tool_max_concurrency(1)).await;
    for _ in 0..4 {
        let f = p.fails("test.panic", json!({})).await;
        assert_eq!(
            f.error.details()["reason"],
            "panic",
            "{}",
            f.error.to_json()
        );
        let ok = p.run("test.echo", json!({})).await;
        assert!(ok.is_ok(), "{:?}", ok.err().map(|e| e.error.to_json()));
    }
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_worker_crash_interrupts_its_call_and_the_worker_comes_back() {
    let tools = TestTools::default();
    let p = TestProject::start_with(
        config_with(&tools),
        ProjectOptions::default().tool_max_concurrency(1),
    )
    .await;
    // Idle worker: panics, restarts, serves.
    crash_and_wait(&p, FailureTarget::ExecutorWorker { index: 0 }).await;
    p.ok("test.echo", json!({})).await;
    // Busy worker: killed mid-call; the caller gets `interrupted` (retryable).
    let (engine, id) = (p.engine.clone(), p.id.clone());
    let pending = tokio::spawn(async move {
        engine
            .run_tool(&id, codeward_tests::call("test.gate", json!({"n": 1})))
            .await
    });
    eventually("the call runs", || async {
        (tools.in_flight() == 1).then_some(())
    })
    .await;
    p.engine
        .inject_failure(&p.id, FailureTarget::ExecutorWorker { index: 0 })
        .await
        .unwrap();
    let f = tokio::time::timeout(WAIT, pending)
        .await
        .expect("the interrupted call answers")
        .unwrap()
        .unwrap_err();
    assert_eq!(f.code(), "interrupted", "{}", f.error.to_json());
    assert!(f.error.retryable());
    tools.open();
    eventually("the pool serves again", || async {
        p.run("test.echo", json!({})).await.ok()
    })
    .await;
    assert_eq!(
        p.engine
            .inject_failure(&p.id, FailureTarget::ExecutorWorker { index: 7 })
            .await
            .unwrap_err()
            .code(),
        "project_unavailable",
        "no such worker"
    );
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_conversation_is_rebuilt_and_answers_without_a_raw_error() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let c = p.conversation().await;
    let before = p
        .engine
        .conversation_call(&p.id, &c, Signal::user_message("one"), SETTLE)
        .await
        .unwrap();
    p.engine
        .inject_failure(
            &p.id,
            FailureTarget::Conversation {
                conversation_id: c.clone(),
            },
        )
        .await
        .unwrap();
    // Straight after the crash: the handle waits for the restart and retries once.
    let snap = p
        .engine
        .conversation_call(&p.id, &c, Signal::user_message("two"), SETTLE)
        .await
        .expect("no raw error across a restart");
    assert!(snap.settled);
    assert!(snap.last_seq > before.last_seq);
    let state = p.engine.conversation_state(&p.id, &c).await.unwrap();
    assert!(state.restored);
    let runs: Vec<&str> = state
        .run_history
        .iter()
        .map(|r| r.status.as_str())
        .collect();
    assert_eq!(
        runs,
        ["completed", "completed"],
        "nothing lost, nothing doubled"
    );
    p.wait_event("runtime.actor_restarted", |_| true).await;
    p.engine.shutdown().await.unwrap();
}

async fn crash_conversation(p: &TestProject, c: &ConversationId) {
    eventually("the conversation accepts a crash", || async {
        p.engine
            .inject_failure(
                &p.id,
                FailureTarget::Conversation {
                    conversation_id: c.clone(),
                },
            )
            .await
            .ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_crashing_past_its_intensity_stops_alone() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let (c, sibling) = (p.conversation().await, p.conversation().await);
    p.engine
        .conversation_call(&p.id, &c, Signal::user_message("hi"), SETTLE)
        .await
        .unwrap();
    // Three restarts are allowed in 10 s; the fourth crash gives up.
    for n in 1..=3 {
        crash_conversation(&p, &c).await;
        p.wait_event_count("runtime.actor_restarted", n).await;
        p.engine
            .conversation_state(&p.id, &c)
            .await
            .expect("restarted and answering");
    }
    crash_conversation(&p, &c).await;
    p.wait_event("conversation.stopped", |e| {
        e["conversation_id"] == c.as_str()
    })
    .await;
    p.wait_event_count("runtime.restart_intensity_exceeded", 1)
        .await;
    // Journaled as stopped by `crashed`.
    let t = eventually("the stop is journaled", || async {
        let t = p
            .engine
            .incident_timeline(&p.id, &c, TimelineQuery::default())
            .await
            .ok()?;
        t.entries
            .iter()
            .any(|e| e.event == "conversation.stopped" && e.payload["reason"] == "crashed")
            .then_some(t)
    })
    .await;
    assert!(!t.entries.is_empty());
    // It is gone like a stopped conversation; the sibling and the project carry on.
    let e = eventually("the crashed conversation is not live", || async {
        p.engine
            .conversation_cast(&p.id, &c, Signal::user_message("x"))
            .await
            .err()
    })
    .await;
    assert_eq!(e.code(), "conversation_not_found", "{}", e.to_json());
    let snap = p
        .engine
        .conversation_call(&p.id, &sibling, Signal::user_message("still here"), SETTLE)
        .await
        .unwrap();
    assert!(snap.settled);
    assert_eq!(
        p.engine.list_projects().await.unwrap()[0].conversation_count,
        1
    );
    p.ok("fs.list", json!({})).await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_policy_actor_is_restarted_while_calls_keep_working() {
    let p = TestProject::start(ProjectOptions::default()).await;
    p.write("a.txt", "a");
    crash_and_wait(&p, FailureTarget::Policy).await;
    // Evaluation reads the snapshot, never the mailbox: allowed and denied calls both work.
    p.ok("fs.read", json!({"path": "a.txt"})).await;
    assert_eq!(
        p.fails("fs.read", json!({"path": "../../etc/passwd"}))
            .await
            .code(),
        "outside_root"
    );
    let row = eventually("the restart shows in diagnostics", || async {
        let row = child(&p, "policy").await;
        (row["restart_count"] == 1).then_some(row)
    })
    .await;
    assert_eq!(row["status"], "running", "{row}");
    p.engine
        .explain_tool_call(
            &p.id,
            codeward_tests::call("fs.read", json!({"path": "a.txt"})),
        )
        .await
        .unwrap();
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_asset_store_keeps_serving_its_snapshot_and_reloads() {
    let p = TestProject::start(ProjectOptions::default()).await;
    p.write(
        ".codeward/skills/alpha.md",
        "---\ndescription: first\n---\nbody",
    );
    p.engine.reload_assets(&p.id).await.unwrap();
    crash_and_wait(&p, FailureTarget::Assets).await;
    let listed = p
        .engine
        .list_assets(&p.id, codeward::AssetKind::Skill)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    p.write(
        ".codeward/skills/beta.md",
        "---\ndescription: second\n---\nbody",
    );
    let report = eventually("a reload after the restart", || async {
        p.engine.reload_assets(&p.id).await.ok()
    })
    .await;
    assert_eq!(
        p.engine
            .list_assets(&p.id, codeward::AssetKind::Skill)
            .await
            .unwrap()
            .len(),
        2,
        "{report:?}"
    );
    p.engine.shutdown().await.unwrap();
}

/// Crashes the policy actor of `p` — waiting for each restart — until the project supervisor
/// gives up and the project is listed as `failed`; returns the number of crashes it took.
async fn crash_until_failed(engine: &Engine, p: &TestProject) -> usize {
    let restarts = || async {
        match engine.diagnostics(&p.id).await {
            Ok(d) => Some(
                serde_json::to_value(d).unwrap()["telemetry"]["event_counts"]
                    ["runtime.actor_restarted"]
                    .as_u64()
                    .unwrap_or(0),
            ),
            Err(e) if e.code() == "project_failed" => None,
            Err(e) => panic!("{}", e.to_json()),
        }
    };
    let mut crashes = 0;
    loop {
        // The quarantine may land after the restart that was awaited for the last crash.
        let Some(before) = restarts().await else {
            return crashes;
        };
        crashes += 1;
        assert!(crashes <= 10, "the project never gave up");
        eventually("a crash is delivered", || async {
            match engine.inject_failure(&p.id, FailureTarget::Policy).await {
                Ok(()) => Some(()),
                Err(e) if e.code() == "project_failed" => Some(()),
                Err(_) => None,
            }
        })
        .await;
        let failed = eventually("a restart or the quarantine", || async {
            let listed = engine.list_projects().await.unwrap();
            let mine = listed.iter().find(|s| s.project_id == p.id)?;
            if json!(mine.status) == "failed" {
                return Some(true);
            }
            restarts()
                .await
                .is_some_and(|n| n > before)
                .then_some(false)
        })
        .await;
        if failed {
            return crashes;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_crashing_past_the_project_intensity_quarantine_only_that_project() {
    let tools = TestTools::default();
    let (sink, mut alerts) = ChannelSink::new("chan", 64);
    let config = config_with(&tools)
        .with_alert_sink(Arc::new(sink))
        .with_alert_route(AlertRoute {
            events: vec!["runtime.*".into()],
            min_severity: Severity::Critical,
            sinks: vec!["chan".into()],
        });
    let engine = Engine::start(config).await.unwrap();
    let p = TestProject::start_in(&engine, empty_root(), ProjectOptions::default()).await;
    let other = TestProject::start_in(&engine, empty_root(), ProjectOptions::default()).await;
    // A conversation with a call in flight when the project goes down.
    let c = p.conversation().await;
    let msg = scripted(
        "slow",
        json!({"tool_calls": [{"name": "test.gate", "args": {"n": 1}}]}),
    );
    engine.conversation_cast(&p.id, &c, msg).await.unwrap();
    eventually("the call runs", || async {
        (tools.in_flight() == 1).then_some(())
    })
    .await;
    // Crash the policy actor until the project supervisor gives up (5 restarts in 10 s).
    let failed = crash_until_failed(&engine, &p).await;
    assert_eq!(
        failed, 6,
        "five restarts are allowed, the sixth crash escalates"
    );
    // Calls get `project_failed`; the project is listed as failed; the in-flight call's tree
    // was cancelled.
    let f = p.fails("fs.list", json!({})).await;
    assert_eq!(f.code(), "project_failed", "{}", f.error.to_json());
    assert_eq!(
        engine.diagnostics(&p.id).await.unwrap_err().code(),
        "project_failed"
    );
    eventually("the in-flight call was cancelled or aborted", || async {
        (tools.in_flight() == 0).then_some(())
    })
    .await;
    let health = engine.health().await;
    assert_eq!(health.projects.failing, 1, "{health:?}");
    assert_eq!(health.projects.total, 2);
    // A critical alert.
    let alert = tokio::time::timeout(WAIT, async {
        loop {
            let a = alerts.recv().await.expect("alerts open");
            if a.event == "runtime.restart_intensity_exceeded" && a.project_id == p.id {
                return a;
            }
        }
    })
    .await
    .expect("restart intensity alert");
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(
        alert.payload["action"], "project_failed",
        "{}",
        alert.payload
    );
    // The other project is untouched.
    other.ok("fs.list", json!({})).await;
    let oc = other.conversation().await;
    assert!(
        engine
            .conversation_call(&other.id, &oc, Signal::user_message("fine"), SETTLE)
            .await
            .unwrap()
            .settled
    );
    // stop_project removes it; a fresh start restores its conversation with the call
    // interrupted (it was never stopped cleanly).
    engine.stop_project(&p.id).await.unwrap();
    let listed: Vec<_> = engine
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.project_id)
        .collect();
    assert_eq!(listed, vec![other.id.clone()]);
    let id = engine
        .start_project(&p.root, ProjectOptions::default())
        .await
        .unwrap();
    assert_eq!(id, p.id);
    let state = eventually("the conversation is restored at start", || async {
        engine
            .conversation_state(&id, &c)
            .await
            .ok()
            .filter(|s| s.restored)
    })
    .await;
    assert!(state.snapshot.pending_tool_calls.is_empty());
    assert_eq!(state.run_history.last().unwrap().status, "interrupted");
    p.ok("fs.list", json!({})).await;
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_project_is_healthy_again() {
    let engine = Engine::start(config_with(&TestTools::default()))
        .await
        .unwrap();
    let p = TestProject::start_in(&engine, empty_root(), ProjectOptions::default()).await;
    crash_until_failed(&engine, &p).await;
    engine.stop_project(&p.id).await.unwrap();
    engine
        .start_project(&p.root, ProjectOptions::default())
        .await
        .unwrap();
    let d = p.diagnostics().await;
    assert_ne!(d["health"]["status"], "failing", "{}", d["health"]);
    assert_eq!(engine.health().await.projects.failing, 0);
    engine.shutdown().await.unwrap();
}
