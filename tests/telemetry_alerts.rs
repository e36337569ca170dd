//! SPEC §5.9, §8: redaction canaries — secrets of every detector kind put into arguments,
//! results, error messages, correlation ids, user messages and command env values — never appear
//! in `diagnostics()`, the incident timeline or delivered alerts; results reach the caller
//! unredacted but flagged unless `redact_tool_results` is on; and alert sinks that hang or panic
//! never slow or fail tool calls (their failures are counted).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use codeward::{
    Alert, AlertRoute, ChannelSink, Engine, EngineConfig, ProjectOptions, Projection,
    ProjectionKey, Severity, Signal, TimelineQuery, ToolCallMeta,
};
use codeward_tests::{
    HangingSink, PanickingSink, TestProject, TestTools, WAIT, call_in, call_with, config_with,
    eventually,
};
use serde_json::{Value, json};

const ANTHROPIC: &str = "sk-ant-api03-Zq9TESTCANARYabcdefghijklmnop";
const GITHUB: &str = "ghp_Q1w2E3r4T5y6U7i8O9p0CANARYzzzzzzzz";
const AWS_ACCESS: &str = "AKIAQWERTYCANARY1234";
const AWS_SECRET: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYCANARYKEY123";
const PASSWORD: &str = "hunter2-canary-pw";
const BEARER: &str = "canaryBearerToken123456";
const ENV_VALUE: &str = "canary-env-value-98765";

/// Every canary (the part that must never leak).
const CANARIES: &[&str] = &[
    ANTHROPIC,
    "TESTCANARYabcdefghijklmnop",
    GITHUB,
    "CANARYzzzzzzzz",
    AWS_ACCESS,
    AWS_SECRET,
    "CYCANARYKEY123",
    PASSWORD,
    BEARER,
    ENV_VALUE,
];

/// A text carrying one secret of each pattern kind.
fn secret_text() -> String {
    format!(
        "anthropic {ANTHROPIC} github {GITHUB} aws {AWS_ACCESS} \
         aws_secret_access_key={AWS_SECRET} password={PASSWORD} \
         Authorization: Bearer {BEARER}"
    )
}

fn assert_clean(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "{what} leaks `{canary}`: {text}");
    }
}

fn routed(sink_names: &[&str]) -> AlertRoute {
    AlertRoute {
        events: vec!["*".into()],
        min_severity: Severity::Warning,
        sinks: sink_names.iter().map(|s| (*s).to_owned()).collect(),
    }
}

async fn drain_alerts(rx: &mut tokio::sync::mpsc::Receiver<Alert>) -> Vec<Alert> {
    let mut out = Vec::new();
    while let Ok(a) = rx.try_recv() {
        out.push(a);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_diagnostics_timelines_or_alerts() {
    let (sink, mut alerts) = ChannelSink::new("chan", 256);
    let config = config_with(&TestTools::default())
        .with_alert_sink(Arc::new(sink))
        .with_alert_route(routed(&["chan"]));
    // Project alert_events: every security and tool event is also a (warning) alert.
    let p = TestProject::start_with(
        config,
        ProjectOptions::default()
            .tool_env_allowlist(["MY_FLAG"])
            .alert_events(["security.*", "conversation.tool.*", "policy.*"]),
    )
    .await;
    let c = p.conversation().await;
    let text = secret_text();
    // Arguments (a complete schema and a heuristic one), results, error messages.
    let ok = p
        .run_call(call_in(
            "test.result",
            json!({"value": {"text": text, "api_key": ANTHROPIC}}),
            &c,
        ))
        .await
        .unwrap();
    assert_eq!(
        ok.result["text"],
        text.as_str(),
        "results reach the caller unredacted"
    );
    p.run_call(call_in("test.echo", json!({"note": text}), &c))
        .await
        .unwrap();
    let f = p
        .run_call(call_in("test.fail", json!({"message": text}), &c))
        .await
        .unwrap_err();
    assert_eq!(f.code(), "tool_failed");
    // Ids: a correlation id and a tool call id that are secrets.
    p.run_call(call_with(
        "test.echo",
        json!({}),
        ToolCallMeta {
            correlation_id: Some(GITHUB.into()),
            tool_call_id: Some(AWS_ACCESS.into()),
            conversation_id: Some(c.clone()),
            ..ToolCallMeta::default()
        },
    ))
    .await
    .unwrap();
    // Denials whose subject is a secret (sandbox violation: a critical alert).
    let f = p
        .run_call(call_in(
            "fs.read",
            json!({"path": format!("../../{ANTHROPIC}")}),
            &c,
        ))
        .await
        .unwrap_err();
    assert_eq!(f.code(), "outside_root");
    let f = p
        .run_call(call_in(
            "test.echo",
            json!({"file": format!("/etc/{GITHUB}")}),
            &c,
        ))
        .await
        .unwrap_err();
    assert_eq!(f.code(), "outside_root");
    // A command env value: applied, and redacted everywhere from then on.
    let ok = p
        .run_call(call_in(
            "command.run",
            json!({"argv": ["sh", "-c", "printf %s \"$MY_FLAG\""], "env": {"MY_FLAG": ENV_VALUE}}),
            &c,
        ))
        .await
        .unwrap();
    assert_eq!(ok.result["stdout"], ENV_VALUE);
    assert_eq!(ok.risk_flags, ["sensitive_artifact_detected"]);
    p.run_call(call_in("test.echo", json!({"again": ENV_VALUE}), &c))
        .await
        .unwrap();
    // A user message with secrets (the journal keeps it; its outputs are redacted).
    p.engine
        .conversation_call(
            &p.id,
            &c,
            Signal::user_message(&text),
            Some(Duration::from_secs(20)),
        )
        .await
        .unwrap();
    // Wait until everything is recorded: the last call's completion is in the ring.
    p.wait_event_count("conversation.tool.completed", 5).await;
    p.wait_event_count("security.sandbox_violation", 2).await;
    let diag = serde_json::to_string(&p.diagnostics().await).unwrap();
    assert_clean("diagnostics", &diag);
    assert!(diag.contains("[REDACTED]"), "redaction markers are visible");
    let timeline = p
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
        .unwrap();
    assert!(timeline.entries.len() > 20, "{}", timeline.entries.len());
    assert!(timeline.entries.iter().any(|e| e.source == "telemetry"));
    assert_clean(
        "incident timeline",
        &serde_json::to_string(&timeline).unwrap(),
    );
    let conv_diag = p.engine.conversation_diagnostics(&p.id, &c).await.unwrap();
    assert_clean(
        "conversation diagnostics",
        &serde_json::to_string(&conv_diag).unwrap(),
    );
    // Alerts: the sandbox violation (critical, engine default) and warnings from the
    // project's alert_events.
    let mut all: Vec<Alert> = Vec::new();
    tokio::time::timeout(WAIT, async {
        while !(all
            .iter()
            .any(|a| a.event == "security.sandbox_violation" && a.severity == Severity::Critical)
            && all.iter().any(|a| a.severity == Severity::Warning))
        {
            all.push(alerts.recv().await.expect("alerts open"));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("critical and warning alerts: {all:?}"));
    all.extend(drain_alerts(&mut alerts).await);
    assert_clean("alerts", &serde_json::to_string(&all).unwrap());
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_flagged_and_redacted_only_with_redact_tool_results() {
    for redact in [false, true] {
        let p = TestProject::start(ProjectOptions::default().redact_tool_results(redact)).await;
        let c = p.conversation().await;
        let value =
            json!({"text": secret_text(), "nested": {"password": PASSWORD}, "plain": "fine"});
        let ok = p
            .run_call(call_in("test.result", json!({"value": value}), &c))
            .await
            .unwrap();
        assert_eq!(
            ok.risk_flags,
            ["sensitive_artifact_detected"],
            "redact={redact}"
        );
        assert!(ok.sensitivity_findings_count >= 6, "{ok:?}");
        let mut kinds = ok.sensitivity_finding_kinds.clone();
        kinds.sort();
        assert_eq!(kinds, ok.sensitivity_finding_kinds, "sorted");
        for kind in [
            "anthropic_key",
            "github_token",
            "aws_access_key",
            "sensitive_key",
            "bearer_token",
        ] {
            assert!(
                kinds.iter().any(|k| k == kind),
                "{kind} missing from {kinds:?}"
            );
        }
        let ev = p
            .wait_event_of("security.sensitive_artifact_detected", &ok.correlation_id)
            .await;
        assert_eq!(ev["tool"], "test.result");
        let result = ok.result.to_string();
        assert_eq!(ok.result["plain"], "fine");
        // A model-originated call: the result as the conversation journals it.
        let msg = codeward_tests::scripted(
            "fetch",
            json!({"tool_calls": [{"name": "test.result", "args": {"value": value}}]}),
        );
        p.engine
            .conversation_call(&p.id, &c, msg, Some(Duration::from_secs(20)))
            .await
            .unwrap();
        let journaled = match p
            .engine
            .conversation_projection(&p.id, &c, ProjectionKey::Timeline)
            .await
            .unwrap()
        {
            Projection::Timeline(t) => t
                .entries
                .iter()
                .filter(|e| e.signal.kind.as_str() == "conversation.tool.completed")
                .map(|e| Value::Object(e.signal.data.clone()).to_string())
                .collect::<String>(),
            other => panic!("{other:?}"),
        };
        if redact {
            assert_clean("redacted result", &result);
            assert_clean("journaled redacted result", &journaled);
            assert_eq!(ok.result["nested"]["password"], "[REDACTED]");
            assert!(result.contains("Bearer [REDACTED]"), "{result}");
        } else {
            assert!(
                result.contains(ANTHROPIC) && result.contains(PASSWORD),
                "{result}"
            );
            assert!(journaled.contains(ANTHROPIC), "{journaled}");
        }
        // Telemetry never carries results, either way.
        assert_clean(
            "diagnostics",
            &serde_json::to_string(&p.diagnostics().await).unwrap(),
        );
        p.engine.shutdown().await.unwrap();
    }
}

/// 100 concurrent calls — half of them sandbox violations, each a critical alert candidate —
/// complete while every sink misbehaves.
async fn hundred_calls(p: &TestProject) {
    let calls = (0..100).map(|i| {
        let (engine, id) = (p.engine.clone(), p.id.clone());
        let call = if i % 2 == 0 {
            codeward_tests::call("fs.read", json!({"path": format!("../../x{i}")}))
        } else {
            codeward_tests::call("test.echo", json!({"i": i}))
        };
        async move { engine.run_tool(&id, call).await }
    });
    let results = futures::future::join_all(calls).await;
    for (i, r) in results.iter().enumerate() {
        match (i % 2, r) {
            (0, Err(f)) => assert_eq!(f.code(), "outside_root"),
            (1, Ok(_)) => {}
            (_, other) => panic!("call {i}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_and_panicking_sinks_never_slow_or_fail_tool_calls() {
    let hanging = HangingSink::new("hangs");
    let panicking = PanickingSink::new("panics");
    let (good, mut delivered) = ChannelSink::new("good", 256);
    let (hang_started, panic_attempts) = (hanging.started.clone(), panicking.attempts.clone());
    let config = config_with(&TestTools::default())
        .with_alert_sink(Arc::new(hanging))
        .with_alert_sink(Arc::new(panicking))
        .with_alert_sink(Arc::new(good))
        .with_alert_route(routed(&["hangs", "panics", "good"]));
    let p = TestProject::start_with(
        config,
        ProjectOptions::default()
            .alert_events(["security.*", "policy.denied"])
            .tool_max_queued(200),
    )
    .await;
    hundred_calls(&p).await;
    // The well-behaved sink on the same route still gets its alerts.
    let a = tokio::time::timeout(WAIT, delivered.recv())
        .await
        .expect("the good sink is served")
        .expect("open");
    assert_eq!(a.project_id, p.id);
    eventually("both bad sinks were tried", || async {
        (hang_started.load(Ordering::SeqCst) >= 1 && panic_attempts.load(Ordering::SeqCst) >= 1)
            .then_some(())
    })
    .await;
    // The panics are counted as failures; repeats within the dedupe window are suppressed.
    eventually(
        "a panicking delivery counted, a good one sent, repeats suppressed",
        || async {
            let d = p.diagnostics().await;
            let counters = d["telemetry"]["counters"].clone();
            let at_least = |k: &str| counters[k].as_u64() >= Some(1);
            (at_least("alerts.failed") && at_least("alerts.sent") && at_least("alerts.suppressed"))
                .then_some(())
        },
    )
    .await;
    // A second round of calls is not held up by the sink that never returns.
    hundred_calls(&p).await;
    // The hanging delivery times out (the 5 s delivery timeout) and its sink moves on to the
    // next alert; the timeout is counted as a failure.
    let failed_before = p.counter("alerts.failed").await;
    eventually("the hanging sink's first delivery timed out", || async {
        (hang_started.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    eventually("the timeout is counted", || async {
        (p.counter("alerts.failed").await > failed_before).then_some(())
    })
    .await;
    let last = p.diagnostics().await["alerts"]["last_alert_at"].clone();
    assert!(last.is_string(), "{last}");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_panics_in_deliver_itself_is_counted_and_kept() {
    let eager = PanickingSink::eager("eager");
    let attempts = eager.attempts.clone();
    let config = config_with(&TestTools::default())
        .with_alert_sink(Arc::new(eager))
        .with_alert_route(routed(&["eager"]));
    let p = TestProject::start_with(
        config,
        ProjectOptions::default().alert_events(["security.*", "policy.denied"]),
    )
    .await;
    // Two different alert events (not deduplicated against each other).
    p.fails("fs.read", json!({"path": "../../x"})).await;
    p.write(".env", "X=1");
    p.fails("fs.read", json!({"path": ".env"})).await;
    eventually("both alerts reach the sink", || async {
        (attempts.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    // The attempt is counted on entry, the failure right after the panic is caught.
    eventually("both failures are counted", || async {
        let d = p.diagnostics().await;
        (d["telemetry"]["counters"]["alerts.failed"].as_u64() >= Some(2)).then_some(())
    })
    .await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_config_refuses_duplicate_sinks_and_routes_to_unknown_sinks() {
    let (a, _ra) = ChannelSink::new("same", 4);
    let (b, _rb) = ChannelSink::new("same", 4);
    let e = Engine::start(
        EngineConfig::default()
            .with_alert_sink(Arc::new(a))
            .with_alert_sink(Arc::new(b)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "invalid_engine_config");
    let e = Engine::start(EngineConfig::default().with_alert_route(routed(&["nowhere"])))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_engine_config");
    assert!(e.to_string().contains("nowhere"), "{e}");
    engine_start_ok().await;
}

async fn engine_start_ok() {
    Engine::start(EngineConfig::default())
        .await
        .unwrap()
        .shutdown()
        .await
        .unwrap();
}

fn twice_the_test_tools() -> EngineConfig {
    config_with(&TestTools::default()).with_tool_provider(Arc::new(TestTools::default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_provider_tool_name_never_serves_a_project() {
    // Whatever the stage, two providers of `test.echo` never get a project started.
    match Engine::start(twice_the_test_tools()).await {
        Err(e) => assert_eq!(e.code(), "invalid_engine_config"),
        Ok(engine) => {
            let e = engine
                .start_project(
                    codeward_tests::empty_root().path(),
                    ProjectOptions::default(),
                )
                .await
                .unwrap_err();
            assert_eq!(e.code(), "start_project_failed", "{}", e.to_json());
            assert_eq!(e.details()["stage"], "actors");
            assert!(e.to_string().contains("test.echo"), "{e}");
            assert!(engine.list_projects().await.unwrap().is_empty());
            engine.shutdown().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_provider_tool_name_fails_engine_start() {
    let e = Engine::start(twice_the_test_tools()).await.unwrap_err();
    assert_eq!(e.code(), "invalid_engine_config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_correlation_id_does_not_leak_through_an_alert() {
    let (sink, mut alerts) = ChannelSink::new("chan", 16);
    let config = config_with(&TestTools::default())
        .with_alert_sink(Arc::new(sink))
        .with_alert_route(routed(&["chan"]));
    let p =
        TestProject::start_with(config, ProjectOptions::default().alert_events(["policy.*"])).await;
    // The first (so never deduplicated) alert of its kind carries the canary correlation.
    p.run_call(call_with(
        "test.echo",
        json!({}),
        ToolCallMeta {
            correlation_id: Some(GITHUB.into()),
            ..ToolCallMeta::default()
        },
    ))
    .await
    .unwrap();
    let alert = tokio::time::timeout(WAIT, alerts.recv())
        .await
        .expect("policy.allowed alert")
        .expect("open");
    assert_eq!(alert.event, "policy.allowed");
    assert_clean("alert", &serde_json::to_string(&alert).unwrap());
    p.engine.shutdown().await.unwrap();
}
