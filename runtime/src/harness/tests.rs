//! A whole harness run on a tiny profile: every workload runs, and its report is consistent
//! (no errors, every counter where it must be). Figures are never asserted (they are
//! wall-clock measurements, STYLE 23).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::{ConversationOptions, Engine, EngineConfig, ProjectOptions};

fn tiny() -> HarnessConfig {
    HarnessConfig {
        projects: 2,
        conversations: 2,
        events: 2,
        concurrency: 4,
        duration: Duration::from_millis(200),
        workload: Workload::All,
        churn_projects: 6,
        idle_conversations: 30,
        crash_samples: 3,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_run_measures_every_workload_without_errors() {
    let seen: Arc<Mutex<Vec<Workload>>> = Arc::default();
    let sink = seen.clone();
    let progress: ProgressFn = Arc::new(move |p: &Progress| {
        let mut seen = sink.lock().unwrap();
        if seen.last() != Some(&p.workload) {
            seen.push(p.workload);
        }
    });
    let report = run(&tiny(), Some(progress)).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), Workload::ALL.to_vec());
    assert_eq!(report.errors_by_code(), ErrorCounts::new(), "{report:#?}");

    for w in [Workload::Noop, Workload::FsRead, Workload::Conversations] {
        let t = report.throughput_of(w).unwrap();
        assert!(t.ok > 0, "{w}: {t:?}");
        assert_eq!(t.ok, t.operations, "{w}");
        assert_eq!(t.latency.count, t.operations, "{w}");
        assert!(t.latency.p50_us <= t.latency.p99_us && t.latency.p99_us <= t.latency.max_us);
        assert!(t.throughput_per_s > 0.0);
    }
    let conv = report.throughput_of(Workload::Conversations).unwrap();
    assert_eq!(conv.notes["conversations"], 4);
    assert_eq!(conv.callers, 4);
    // Every message asked for exactly one fs.read, and each one completed.
    assert_eq!(conv.notes["tool_calls_completed"], conv.ok);
    assert!(conv.notes["runs_checked"] > 0);

    let p = report.projects.as_ref().unwrap();
    assert_eq!(
        (p.count, p.start_latency.count, p.stop_latency.count),
        (6, 6, 6)
    );
    assert!(p.total_ms >= p.start_total_ms);
    let idle = report.idle_memory.as_ref().unwrap();
    assert_eq!((idle.started, idle.start_latency.count), (30, 30));
    if cfg!(target_os = "linux") {
        assert!(idle.bytes_per_conversation.is_some());
        assert!(report.peak_rss_bytes.is_some());
    }
    let crash = report.crash_recovery.as_ref().unwrap();
    assert_eq!((crash.restored, crash.back_in_service.count), (3, 3));

    let names: Vec<&str> = report.figures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "noop_throughput",
            "noop_p99",
            "idle_conversation_memory",
            "project_churn",
            "crash_recovery"
        ]
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["config"]["workload"], "all");
    assert!(json["throughput"][0]["latency"]["p99_us"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_selected_workload_runs() {
    let mut config = tiny();
    config.workload = Workload::CrashRecovery;
    config.crash_samples = 1;
    let report = run(&config, None).await.unwrap();
    assert!(report.throughput.is_empty());
    assert!(report.projects.is_none() && report.idle_memory.is_none());
    assert_eq!(report.crash_recovery.unwrap().restored, 1);
}

#[tokio::test]
async fn a_bad_config_is_refused_before_anything_starts() {
    let mut config = tiny();
    config.events = 0;
    let e = run(&config, None).await.unwrap_err();
    assert_eq!(e.code(), "invalid_harness_config");
    assert_eq!(e.details()["field"], "events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_injection_restarts_the_conversation_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(EngineConfig::default()).await.unwrap();
    let p = engine
        .start_project(dir.path(), ProjectOptions::default())
        .await
        .unwrap();
    let c = engine
        .start_conversation(&p, ConversationOptions::default())
        .await
        .unwrap();
    // A non-empty journal to rebuild from.
    let snap = engine
        .conversation_call(&p, &c, crate::Signal::user_message("hello"), None)
        .await
        .unwrap();
    assert!(snap.settled);
    let before = engine.conversation_state(&p, &c).await.unwrap();
    assert!(!before.restored);
    crash_conversation(&engine, &p, &c).unwrap();
    let after = engine.conversation_state(&p, &c).await.unwrap();
    assert!(after.restored, "answered by the rebuilt actor");
    assert_eq!(after.snapshot.last_seq, before.snapshot.last_seq);
    let unknown = crate::ConversationId::parse("conv-nope").unwrap();
    assert_eq!(
        crash_conversation(&engine, &p, &unknown)
            .unwrap_err()
            .code(),
        "conversation_not_found"
    );
    engine.stop_project(&p).await.unwrap();
    assert_eq!(
        crash_conversation(&engine, &p, &c).unwrap_err().code(),
        "project_not_found"
    );
    engine.shutdown().await.unwrap();
}
