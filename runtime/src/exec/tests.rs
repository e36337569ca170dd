//! Tests of the call path's telemetry and spans: the lazy call record renders exactly the JSON
//! the eager path stored (after redaction), keeps its promise of no `reason` / `error`, and a
//! secret a caller put in the arguments, the correlation or tool-call id, or a tool put in an
//! error message never reaches a snapshot, a ring, the decisions ring, an alert, a journal row
//! or a span; `codeward.tool_call` carries ids, codes and a duration with its two children; and
//! artifacts are checked in encounter order.

use std::sync::{Arc, Mutex};

use codeward_actors::ids::{ConversationId, ProjectId};
use codeward_actors::telemetry::{
    AlertRoute, ChannelSink, EventName, LazyPayload, Redactor, Severity, Stored, TelemetryEvent,
    TelemetryLimits, TelemetryStore,
};
use codeward_policies::{Decision, MatchedRule, Outcome, RuleLayer, Subject, SubjectKind};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::check_artifacts;
use super::record::{CallIdentity, CallRecord, Completion, Envelope, StartedPayload};
use crate::error::Error;
use crate::types::{CallSource, RunMode};
use crate::{
    Engine, EngineConfig, ProjectContext, ProjectOptions, ProviderCall, ProviderError, ToolCall,
    ToolCallMeta, ToolProvider, ToolSpec,
};

/// Matches the `anthropic_key` detector.
const SECRET: &str = "sk-ant-CANARY0123456789abcdefghij";

fn redactor() -> Redactor {
    let r = codeward_policies::secrets::Redactor::new(Vec::<String>::new());
    Arc::new(move |v: &Value| r.redact(v))
}

fn identity(generated: bool) -> Arc<CallIdentity> {
    let (correlation_id, tool_call_id) = if generated {
        (
            "corr-0123456789abcdef0123".to_owned(),
            "call-0123456789abcdef0123".to_owned(),
        )
    } else {
        (format!("c-{SECRET}"), format!("t-{SECRET}"))
    };
    let conversation_id = Some(ConversationId::parse("conv-1").unwrap());
    let envelope = Envelope::new(
        &codeward_policies::secrets::Redactor::default(),
        "bench.echo",
        conversation_id.as_ref(),
        &correlation_id,
        generated,
    );
    Arc::new(CallIdentity {
        project_id: ProjectId::parse("proj-1").unwrap(),
        tool: "bench.echo".into(),
        conversation_id,
        envelope,
        correlation_id,
        correlation_generated: generated,
        tool_call_id,
        tool_call_generated: generated,
        source: CallSource::Api,
    })
}

fn decision(outcome: Outcome) -> Decision {
    let deny = outcome == Outcome::Deny;
    Decision {
        decision: outcome,
        reason_code: if deny { "outside_root" } else { "allowed" },
        tool: "bench.echo".into(),
        source: codeward_policies::CallSource::Api,
        rule: deny.then(|| MatchedRule {
            layer: RuleLayer::Sandbox,
            key: "builtin:root".into(),
            value: format!("token={SECRET}"),
            origin: Some("defaults".into()),
        }),
        subject: deny.then(|| Subject {
            location: "/args/path".into(),
            kind: SubjectKind::Path,
            raw: format!("../{SECRET}"),
            normalized: None,
        }),
        exceptions_used: Vec::new(),
        candidates_checked: 2,
        explain: format!("deny outside_root: /args/path \"../{SECRET}\""),
        error: None,
        details: json!({}),
    }
}

fn record(ids: Arc<CallIdentity>, outcome: Outcome) -> Arc<CallRecord> {
    let rec = CallRecord {
        ids,
        kind: "provider",
        run_mode: RunMode::Sync,
        decision_id: "dec-01hzzzzzzzzzzzzzzzzzzzzzzz".into(),
        at_ms: 1_700_000_000_123,
        decision: decision(outcome),
        completion: std::sync::OnceLock::new(),
    };
    let _ = rec.completion.set(Completion {
        duration_ms: 3,
        output_bytes: 11,
        risk_flags: vec!["sensitive_artifact_detected".into()],
        findings_count: 1,
        finding_kinds: vec!["anthropic_key".into()],
    });
    Arc::new(rec)
}

/// The eager payloads the call path emitted before it went lazy.
fn eager(event: EventName, rec: &CallRecord, args: &Value) -> Value {
    let ids = &rec.ids;
    let c = rec.completion.get().unwrap();
    match event {
        EventName::PolicyAllowed | EventName::PolicyDenied => {
            serde_json::to_value(rec.policy_decision()).unwrap()
        }
        EventName::ToolStarted => json!({
            "kind": rec.kind, "args": args, "run_mode": rec.run_mode,
            "source": ids.source.as_str(), "tool_call_id": ids.tool_call_id,
        }),
        _ => json!({
            "project_id": ids.project_id, "tool": ids.tool,
            "conversation_id": ids.conversation_id, "correlation_id": ids.correlation_id,
            "tool_call_id": ids.tool_call_id, "decision_id": rec.decision_id,
            "kind": rec.kind, "duration_ms": c.duration_ms, "risk_flags": c.risk_flags,
            "sensitivity_findings_count": c.findings_count,
            "sensitivity_finding_kinds": c.finding_kinds, "output_bytes": c.output_bytes,
            "source": ids.source.as_str(),
        }),
    }
}

fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                out.push(k.clone());
                keys(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
        _ => {}
    }
}

#[test]
fn artifacts_are_checked_in_encounter_order() {
    let v = json!({"a": {"artifacts": ["x", "y".repeat(50)]}, "b": [{"artifacts": ["z"]}]});
    match check_artifacts(&v, 10) {
        Some(Error::ArtifactTooLarge { index, .. }) => assert_eq!(index, 1),
        other => panic!("{other:?}"),
    }
    assert!(check_artifacts(&v, 1000).is_none());
}

#[test]
fn lazy_payloads_render_like_the_redacted_eager_ones() {
    let redact = redactor();
    let args = json!({ "note": format!("key {SECRET}"), "api_token": "hunter2-hunter2" });
    for generated in [true, false] {
        for outcome in [Outcome::Allow, Outcome::Deny] {
            let rec = record(identity(generated), outcome);
            let started = StartedPayload {
                record: rec.clone(),
                args: Arc::new(args.clone()),
            };
            let decision_event = match outcome {
                Outcome::Allow => EventName::PolicyAllowed,
                Outcome::Deny => EventName::PolicyDenied,
            };
            let cases: [(EventName, &dyn LazyPayload); 3] = [
                (decision_event, &*rec),
                (EventName::ToolStarted, &started),
                (EventName::ToolCompleted, &*rec),
            ];
            for (event, source) in cases {
                let lazy = source.render(event, &redact);
                let eager = redact(&eager(event, &rec, &args));
                if generated {
                    // Generated ids skip the redactor; with nothing to redact in them the two
                    // forms are the same JSON.
                    assert_eq!(lazy, eager, "{event} generated={generated}");
                } else {
                    assert_eq!(lazy, eager, "{event} generated={generated}");
                    assert!(lazy.to_string().contains("[REDACTED]"), "{event}");
                }
                assert!(!lazy.to_string().contains(SECRET), "{event}: {lazy}");
                assert!(!source.has_ring_fields(event));
                assert!(lazy.get("reason").is_none() && lazy.get("error").is_none());
                let mut ks = Vec::new();
                keys(&lazy, &mut ks);
                for k in ks.iter().filter(|k| *k != "api_token") {
                    assert!(
                        !codeward_policies::secrets::is_sensitive_key(k),
                        "fixed key `{k}` would be redacted by the eager path"
                    );
                }
            }
        }
    }
}

#[test]
fn journal_rows_and_rings_of_lazy_events_are_redacted() {
    let redact = redactor();
    let mut store = TelemetryStore::new(
        ProjectId::parse("proj-1").unwrap(),
        TelemetryLimits::default(),
        0,
    );
    let rec = record(identity(false), Outcome::Allow);
    let started: Arc<dyn LazyPayload> = Arc::new(StartedPayload {
        record: rec.clone(),
        args: Arc::new(json!({ "note": SECRET })),
    });
    let ids = rec.ids.clone();
    let events = [
        ids.event(EventName::PolicyAllowed, &ids.tool, rec.clone()),
        ids.event(EventName::ToolStarted, &ids.tool, started),
        ids.event(EventName::ToolCompleted, &ids.tool, rec.clone()),
    ];
    let now = tokio::time::Instant::now();
    let mut stored: Vec<Stored> = Vec::new();
    for ev in events {
        store.record_kept(ev, &redact, now, 0, &|_, _| true, &mut stored);
    }
    assert_eq!(stored.len(), 3);
    for s in &stored {
        let rec = s.record.as_ref().unwrap();
        assert!(
            rec.payload.is_unrendered(),
            "nothing rendered while recording"
        );
        // What the journal writes (`EventRow::payload_json`).
        let row = rec.payload.to_string();
        assert!(!row.contains(SECRET), "{row}");
    }
    let snap = serde_json::to_string(&store.snapshot(now)).unwrap();
    assert!(snap.contains("[REDACTED]"), "{snap}");
    assert!(!snap.contains(SECRET), "{snap}");
    // The eager path still works next to it.
    let mut out = Vec::new();
    store.record_into(
        TelemetryEvent::new(
            EventName::ToolFailed,
            json!({ "error": SECRET, "reason": "x" }),
        ),
        &redact,
        now,
        0,
        &mut out,
    );
    assert!(!out[0].payload.to_string().contains(SECRET));
}

/// A provider tool: `{"fail": true}` fails with the note in its message, otherwise echoes the
/// arguments.
struct Echo;

impl ToolProvider for Echo {
    fn tools(&self, _: &ProjectContext) -> Vec<ToolSpec> {
        let mut spec = codeward_tools::builtin_specs().remove(0);
        spec.name = "bench.echo".into();
        spec.description = "echoes".into();
        spec.input_schema = json!({"type": "object", "x-codeward-complete": true});
        spec.safety.network_capable = false;
        vec![spec]
    }

    fn call(
        &self,
        _: ProviderCall,
        args: Value,
    ) -> BoxFuture<'static, Result<Value, ProviderError>> {
        Box::pin(async move {
            if args["fail"] == true {
                return Err(ProviderError {
                    reason: "boom".into(),
                    message: format!("could not use {}", args["note"]),
                });
            }
            Ok(json!({ "echo": args }))
        })
    }
}

fn secret_call(fail: bool) -> ToolCall {
    ToolCall {
        name: "bench.echo".into(),
        args: json!({ "note": format!("note {SECRET}"), "fail": fail }),
        meta: ToolCallMeta {
            correlation_id: Some(format!("corr-{SECRET}")),
            tool_call_id: Some(format!("call-{SECRET}")),
            ..ToolCallMeta::default()
        },
    }
}

#[tokio::test]
async fn a_secret_never_reaches_snapshot_rings_decisions_or_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, mut alerts) = ChannelSink::new("chan", 256);
    let engine = Engine::start(
        EngineConfig::default()
            .with_tool_provider(Arc::new(Echo))
            .with_alert_sink(Arc::new(sink))
            .with_alert_route(AlertRoute {
                events: vec!["*".into()],
                min_severity: Severity::Warning,
                sinks: vec!["chan".into()],
            }),
    )
    .await
    .unwrap();
    let opts = ProjectOptions::default()
        .set("alert_events", json!(["*"]))
        .unwrap();
    let p = engine.start_project(dir.path(), opts).await.unwrap();
    let ok = engine.run_tool(&p, secret_call(false)).await.unwrap();
    // The caller gets its own values back (results are not redacted by default).
    assert!(ok.correlation_id.contains(SECRET));
    let failed = engine.run_tool(&p, secret_call(true)).await.unwrap_err();
    assert_eq!(failed.code(), "tool_failed");
    // Telemetry is recorded asynchronously: poll the diagnostics until the failure is in.
    let text = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let d = engine.diagnostics(&p).await.unwrap();
            let text = serde_json::to_string(&d).unwrap();
            if text.contains("conversation.tool.failed") {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("telemetry recorded");
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("corr-[REDACTED]"), "{text}");
    let wanted = [
        "policy.allowed",
        "conversation.tool.started",
        "conversation.tool.completed",
        "conversation.tool.failed",
    ];
    let mut names: Vec<String> = Vec::new();
    while !wanted.iter().all(|w| names.iter().any(|n| n == w)) {
        let alert = tokio::time::timeout(std::time::Duration::from_secs(10), alerts.recv())
            .await
            .unwrap_or_else(|_| panic!("alerts for {wanted:?} arrive, got {names:?}"))
            .unwrap();
        let text = serde_json::to_string(&alert).unwrap();
        assert!(!text.contains(SECRET), "{text}");
        names.push(alert.event.clone());
    }
    engine.shutdown().await.unwrap();
}

/// One span as the test subscriber saw it: name, explicit parent, recorded fields (as text).
type SeenSpan = (String, Option<u64>, Vec<(String, String)>);

/// Keeps span names, their parents and every recorded field (as text).
#[derive(Default, Clone)]
struct Spans(Arc<Mutex<Vec<SeenSpan>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl tracing::Subscriber for Spans {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = Vec::new();
        span.record(&mut Fields(&mut fields));
        let mut all = self.0.lock().unwrap();
        // Explicit parents only: the children name theirs.
        let parent = span.parent().map(tracing::span::Id::into_u64);
        all.push((span.metadata().name().to_owned(), parent, fields));
        tracing::span::Id::from_u64(all.len() as u64)
    }
    fn record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut all = self.0.lock().unwrap();
        if let Some(entry) = usize::try_from(id.into_u64())
            .ok()
            .and_then(|i| all.get_mut(i - 1))
        {
            values.record(&mut Fields(&mut entry.2));
        }
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn tool_call_span_has_ids_codes_and_children_but_no_args_or_secrets() {
    let spans = Spans::default();
    let _guard = tracing::subscriber::set_default(spans.clone());
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(EngineConfig::default().with_tool_provider(Arc::new(Echo)))
        .await
        .unwrap();
    let p = engine
        .start_project(dir.path(), ProjectOptions::default())
        .await
        .unwrap();
    let ok = engine
        .run_tool(
            &p,
            ToolCall::new("bench.echo", json!({ "note": "plain-arg" })),
        )
        .await
        .unwrap();
    let failed = engine.run_tool(&p, secret_call(true)).await.unwrap_err();
    engine.shutdown().await.unwrap();
    let all = spans.0.lock().unwrap().clone();
    let calls: Vec<(usize, &Vec<(String, String)>)> = all
        .iter()
        .enumerate()
        .filter(|(_, s)| s.0 == "codeward.tool_call")
        .map(|(i, s)| (i + 1, &s.2))
        .collect();
    assert_eq!(calls.len(), 2, "one span per call");
    let field = |fields: &Vec<(String, String)>, name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (first_id, first) = calls[0];
    assert_eq!(field(first, "tool").as_deref(), Some("bench.echo"));
    assert_eq!(field(first, "kind").as_deref(), Some("provider"));
    assert_eq!(field(first, "decision").as_deref(), Some("allow"));
    assert_eq!(field(first, "outcome").as_deref(), Some("ok"));
    assert_eq!(
        field(first, "correlation_id").as_deref(),
        Some(ok.correlation_id.as_str())
    );
    assert_eq!(
        field(first, "tool_call_id").as_deref(),
        Some(ok.tool_call_id.as_str())
    );
    assert_eq!(field(first, "project_id").as_deref(), Some(p.as_str()));
    assert!(field(first, "duration_ms").is_some());
    for child in ["policy.evaluate", "tool.execute"] {
        assert!(
            all.iter()
                .any(|s| s.0 == child && s.1 == Some(first_id as u64)),
            "{child} is a child of the first call's span"
        );
    }
    let (_, second) = calls[1];
    assert_eq!(field(second, "outcome").as_deref(), Some(failed.code()));
    let text = format!("{all:?}");
    assert!(!text.contains("plain-arg"), "no arguments in spans: {text}");
    assert!(!text.contains(SECRET), "no secrets in spans: {text}");
    assert!(
        text.contains("[REDACTED]"),
        "caller ids are redacted: {text}"
    );
}
