//! SPEC conformance, black-box through the public `codeward::Engine` API: the exact field names
//! and nesting of what a user or client sees — diagnostics (§9.1), assets and conversation
//! diagnostics (§9.2), the incident timeline (§9.3), engine health and project summaries
//! (§2.2, §9.4), ring entries (§8.3), conversation state (§2.2) — plus the option validation
//! reasons of §3.2–3.3 and the correlation rule of §1 (a user message's correlation id reaches
//! every event of its run). Error codes of unknown projects, conversations and tools live in
//! `errors.rs`.

use std::collections::BTreeSet;

use codeward::{
    ConversationId, Engine, EngineConfig, Error, ProjectOptions, ProjectionKey, TimelineQuery,
};
use codeward_tests::{TestProject, array, empty_root, scripted};
use serde_json::{Value, json};

/// The keys of a JSON object (panics naming `what` when it is not one).
fn keys(v: &Value, what: &str) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// Asserts that object `v` has every key of `expected` (extra keys are allowed: SPEC lists
/// what must be there).
#[track_caller]
fn has_keys(v: &Value, what: &str, expected: &[&str]) {
    let have = keys(v, what);
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|k| !have.contains(*k))
        .collect();
    assert!(missing.is_empty(), "{what} lacks {missing:?}; has {have:?}");
}

/// An RFC 3339 UTC instant with milliseconds (`2024-01-02T03:04:05.678Z`, SPEC §1).
#[track_caller]
fn is_rfc3339_ms(v: &Value, what: &str) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"));
    let b = s.as_bytes();
    let shape = b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && s.chars()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 23) || c.is_ascii_digit());
    assert!(shape, "{what} is not RFC 3339 with milliseconds: {s}");
}

/// A project with a file, and a conversation that ran one scripted tool call; returns the
/// run's correlation id.
async fn project_with_run() -> (TestProject, ConversationId, String) {
    let p = TestProject::start(ProjectOptions::default()).await;
    p.write("notes.md", "hello");
    let c = p.conversation().await;
    let msg = scripted(
        "read my notes",
        json!({"tool_calls": [{"name": "fs.read", "args": {"path": "notes.md"}}]}),
    );
    let corr = msg.correlation_id.to_string();
    let snap = p
        .engine
        .conversation_call(&p.id, &c, msg, None)
        .await
        .expect("call");
    assert!(snap.settled);
    (p, c, corr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_diagnostics_have_every_spec_block_and_field() {
    let (p, _c, _) = project_with_run().await;
    let d = p.diagnostics().await;
    has_keys(
        &d,
        "diagnostics",
        &[
            "project_id",
            "root_path",
            "root_path_given",
            "data_dir",
            "state_dir",
            "started_at",
            "uptime_ms",
            "status",
            "config_file_changed",
            "health",
            "options",
            "option_sources",
            "watcher",
            "os_sandbox",
            "assets",
            "policy",
            "tools",
            "alerts",
            "telemetry",
            "journal",
            "supervision",
            "conversations",
        ],
    );
    is_rfc3339_ms(&d["started_at"], "started_at");
    has_keys(
        &d["health"],
        "health",
        &[
            "status",
            "conversation_count",
            "error_count",
            "last_error_at",
            "window_ms",
        ],
    );
    has_keys(
        &d["watcher"],
        "watcher",
        &[
            "enabled",
            "debounce_ms",
            "max_wait_ms",
            "pending_paths",
            "last_reload_at",
        ],
    );
    has_keys(
        &d["policy"],
        "policy",
        &[
            "allow_tools",
            "deny_tools",
            "network_egress_policy",
            "network_allowlist",
            "network_allowed_schemes",
            "sensitive_path_denylist",
            "sensitive_path_allowlist",
            "outside_root_allowlist",
            "tool_env_allowlist",
            "protocol_allowlist",
            "subagent_templates_allowlist",
            "warnings",
            "recent_decisions",
        ],
    );
    has_keys(
        &d["tools"],
        "tools",
        &[
            "catalog_size",
            "in_flight",
            "max_concurrency",
            "per_conversation_in_flight",
        ],
    );
    has_keys(&d["alerts"], "alerts", &["routes", "last_alert_at"]);
    has_keys(
        &d["telemetry"],
        "telemetry",
        &[
            "total_events",
            "event_counts",
            "counters",
            "recent_events",
            "recent_errors",
        ],
    );
    has_keys(
        &d["journal"],
        "journal",
        &[
            "path",
            "size_bytes",
            "wal_bytes",
            "signal_count",
            "event_count",
            "oldest_at",
            "last_backup_at",
            "last_check",
            "last_compaction_at",
        ],
    );
    let sup = array(&d["supervision"]);
    assert!(!sup.is_empty(), "supervision lists the project's children");
    for s in &sup {
        has_keys(
            s,
            "supervision entry",
            &["actor", "status", "restarts_in_window", "last_reason"],
        );
    }
    // Every option key of §3.2 shows its effective value and its source layer.
    for key in [
        "data_dir",
        "state_dir",
        "tool_timeout_ms",
        "tool_max_concurrency",
        "conversation_max_queue_size",
        "network_egress_policy",
        "sensitive_path_denylist",
        "protocol_allowlist",
        "journal_sync",
        "alert_routes",
    ] {
        assert!(d["options"].get(key).is_some(), "options lacks {key}");
        assert_eq!(d["option_sources"][key], "default", "source of {key}");
    }
    // The effective sensitive denylist includes the built-ins (§5.5, §9.1).
    let deny = array(&d["policy"]["sensitive_path_denylist"]);
    assert!(deny.contains(&json!(".env")), "built-ins listed: {deny:?}");
    assert_eq!(
        d["policy"]["network_allowed_schemes"],
        json!(["http", "https"]),
        "sorted"
    );
    // Conversations are conversation diagnostics (§9.2).
    let convs = array(&d["conversations"]);
    assert_eq!(convs.len(), 1);
    has_keys(&convs[0], "conversation", CONVERSATION_DIAGNOSTICS);
    p.engine.shutdown().await.expect("shutdown");
}

/// SPEC §9.2 conversation diagnostics fields.
const CONVERSATION_DIAGNOSTICS: &[&str] = &[
    "project_id",
    "conversation_id",
    "parent_conversation_id",
    "status",
    "active_run",
    "run_history_count",
    "event_count",
    "timeline_in_memory",
    "queue_size",
    "max_queue_size",
    "max_drain_steps",
    "drain_iteration",
    "pending_tool_call_count",
    "pending_subagent_count",
    "last_signal_type",
    "last_event_at",
    "subscriber_count",
    "overflow_count",
    "restored",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_entries_have_the_spec_fields_with_an_rfc3339_at() {
    let (p, _c, _) = project_with_run().await;
    let _ = p.fails("fs.read", json!({"path": "../../outside"})).await;
    let d = p.diagnostics().await;
    let events = array(&d["telemetry"]["recent_events"]);
    assert!(!events.is_empty());
    for e in &events {
        has_keys(
            e,
            "recent_events entry",
            &[
                "seq",
                "event",
                "at",
                "conversation_id",
                "correlation_id",
                "tool",
                "reason",
                "error",
            ],
        );
        is_rfc3339_ms(&e["at"], "recent_events[].at");
    }
    // Newest first.
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    let errors = p
        .wait_event("conversation.tool.failed", |e| {
            e["reason"] == "outside_root"
        })
        .await;
    is_rfc3339_ms(&errors["at"], "the failure's at");
    let d = p.diagnostics().await;
    let recent_errors = array(&d["telemetry"]["recent_errors"]);
    assert!(
        recent_errors
            .iter()
            .any(|e| e["event"] == "conversation.tool.failed" && e["at"].is_string()),
        "recent_errors entries are ring entries too: {recent_errors:?}"
    );
    p.engine.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_diagnostics_have_the_spec_fields() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let a = serde_json::to_value(p.engine.assets_diagnostics(&p.id).await.expect("assets"))
        .expect("serialize");
    has_keys(
        &a,
        "assets diagnostics",
        &[
            "project_id",
            "loaded",
            "strict",
            "generation",
            "versions",
            "counts",
            "errors",
            "last_loaded_at",
            "last_reload",
        ],
    );
    is_rfc3339_ms(&a["last_loaded_at"], "last_loaded_at");
    has_keys(
        &a["versions"],
        "versions",
        &["skill", "command", "workflow", "skill_graph"],
    );
    has_keys(
        &a["counts"],
        "counts",
        &[
            "skill",
            "command",
            "workflow",
            "skill_graph_nodes",
            "skill_graph_edges",
            "dangling_edges",
        ],
    );
    has_keys(
        &a["last_reload"],
        "last_reload",
        &["at", "trigger", "outcome", "changed_paths", "duration_ms"],
    );
    assert_eq!(a["last_reload"]["trigger"], "startup");
    assert_eq!(a["last_reload"]["outcome"], "applied");
    // The project diagnostics embed the same block.
    let d = p.diagnostics().await;
    has_keys(&d["assets"], "diagnostics.assets", &["last_loaded_at"]);
    p.engine.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_diagnostics_and_its_projection_have_the_same_spec_fields() {
    let (p, c, _) = project_with_run().await;
    let sub = p
        .engine
        .subscribe_conversation(&p.id, &c, None)
        .await
        .expect("subscribe");
    let d = serde_json::to_value(
        p.engine
            .conversation_diagnostics(&p.id, &c)
            .await
            .expect("diagnostics"),
    )
    .expect("serialize");
    has_keys(&d, "conversation diagnostics", CONVERSATION_DIAGNOSTICS);
    is_rfc3339_ms(&d["last_event_at"], "last_event_at");
    assert_eq!(d["subscriber_count"], 1);
    assert_eq!(d["restored"], false);
    assert_eq!(d["last_signal_type"], "conversation.run.closed");
    let projection = p
        .engine
        .conversation_projection(&p.id, &c, ProjectionKey::Diagnostics)
        .await
        .expect("projection");
    let codeward::Projection::Diagnostics(pd) = projection else {
        panic!("diagnostics projection expected");
    };
    let pd = serde_json::to_value(pd).expect("serialize");
    has_keys(&pd, "diagnostics projection", CONVERSATION_DIAGNOSTICS);
    assert_eq!(
        pd["subscriber_count"], 1,
        "the projection counts subscribers too"
    );
    drop(sub);
    let after = p
        .engine
        .conversation_diagnostics(&p.id, &c)
        .await
        .expect("diagnostics");
    assert_eq!(after.subscriber_count, 0, "dropping unsubscribes");
    p.engine.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_run_shows_run_id_opened_at_and_step_count() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let c = p.conversation().await;
    // The tool hangs on its gate (TestTools), so the run stays open.
    let cast = p
        .engine
        .conversation_cast(
            &p.id,
            &c,
            scripted(
                "wait",
                json!({"tool_calls": [{"name": "test.gate", "args": {"n": 1}}]}),
            ),
        )
        .await
        .expect("cast");
    let d = codeward_tests::eventually("an active run", || async {
        let d = serde_json::to_value(
            p.engine
                .conversation_diagnostics(&p.id, &c)
                .await
                .expect("diagnostics"),
        )
        .expect("serialize");
        d["active_run"].is_object().then_some(d)
    })
    .await;
    has_keys(
        &d["active_run"],
        "active_run",
        &["run_id", "opened_at", "step_count"],
    );
    is_rfc3339_ms(&d["active_run"]["opened_at"], "active_run.opened_at");
    assert_eq!(d["active_run"]["run_id"], cast.correlation_id.to_string());
    let state = serde_json::to_value(p.engine.conversation_state(&p.id, &c).await.expect("state"))
        .expect("serialize");
    has_keys(&state["active_run"], "state.active_run", &["opened_at"]);
    p.engine.stop_conversation(&p.id, &c).await.expect("stop");
    p.engine.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_state_is_the_snapshot_plus_history_and_provenance() {
    let (p, c, corr) = project_with_run().await;
    let state = serde_json::to_value(p.engine.conversation_state(&p.id, &c).await.expect("state"))
        .expect("serialize");
    has_keys(
        &state,
        "conversation state",
        &[
            // the snapshot fields
            "project_id",
            "conversation_id",
            "status",
            "active_run",
            "queue_size",
            "pending_tool_calls",
            "pending_subagents",
            "last_seq",
            "settled",
            "duplicate",
            // plus
            "run_history",
            "created_at",
            "parent_conversation_id",
            "restored",
        ],
    );
    is_rfc3339_ms(&state["created_at"], "created_at");
    let history = array(&state["run_history"]);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["run_id"], corr.as_str());
    assert_eq!(history[0]["status"], "completed");
    // A stopped conversation is folded from the journal, with the same fields.
    p.engine.stop_conversation(&p.id, &c).await.expect("stop");
    let stopped = serde_json::to_value(
        p.engine
            .conversation_state(&p.id, &c)
            .await
            .expect("stopped state"),
    )
    .expect("serialize");
    assert_eq!(stopped["created_at"], state["created_at"]);
    // … plus the `conversation.stopped` signal.
    assert_eq!(
        stopped["last_seq"].as_u64(),
        state["last_seq"].as_u64().map(|n| n + 1)
    );
    assert_eq!(stopped["run_history"], state["run_history"]);
    p.engine.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_timeline_entries_name_their_conversation_and_follow_the_spec_shape() {
    let (p, c, corr) = project_with_run().await;
    let t = serde_json::to_value(
        p.engine
            .incident_timeline(&p.id, &c, TimelineQuery::default())
            .await
            .expect("timeline"),
    )
    .expect("serialize");
    has_keys(
        &t,
        "timeline",
        &[
            "project_id",
            "conversation_id",
            "correlation_id",
            "limit",
            "total_entries",
            "truncated",
            "entries",
        ],
    );
    assert_eq!(t["limit"], 100, "limit 0 means 100");
    let entries = array(&t["entries"]);
    let mut sources = BTreeSet::new();
    for e in &entries {
        has_keys(
            e,
            "timeline entry",
            &[
                "source",
                "seq",
                "at",
                "event",
                "conversation_id",
                "correlation_id",
                "tool",
                "payload",
            ],
        );
        is_rfc3339_ms(&e["at"], "entry.at");
        assert_eq!(
            e["conversation_id"],
            c.to_string(),
            "every entry names the conversation: {e}"
        );
        assert_ne!(e["event"], "conversation.event_ingested", "dropped (§9.3)");
        sources.insert(e["source"].as_str().unwrap_or_default().to_owned());
    }
    assert!(sources.contains("conversation") && sources.contains("telemetry"));
    // Ascending by `at`.
    let ats: Vec<&str> = entries.iter().filter_map(|e| e["at"].as_str()).collect();
    assert!(ats.windows(2).all(|w| w[0] <= w[1]), "ascending: {ats:?}");
    // Signals: `event` is the type and `payload` the data.
    let user = entries
        .iter()
        .find(|e| e["event"] == "conversation.user.message")
        .expect("the user message");
    assert_eq!(user["payload"]["content"], "read my notes");
    assert_eq!(user["correlation_id"], corr.as_str());
    // Limits: above 500 → 500; a small limit keeps the last entries, still ascending.
    let capped = p
        .engine
        .incident_timeline(
            &p.id,
            &c,
            TimelineQuery {
                limit: 10_000,
                correlation_id: None,
            },
        )
        .await
        .expect("timeline");
    assert_eq!(capped.limit, 500);
    let two = p
        .engine
        .incident_timeline(
            &p.id,
            &c,
            TimelineQuery {
                limit: 2,
                correlation_id: Some("   ".into()),
            },
        )
        .await
        .expect("timeline");
    assert_eq!(two.correlation_id, None, "blank filter = none");
    assert_eq!(two.entries.len(), 2);
    assert!(two.truncated);
    assert_eq!(two.total_entries, entries.len());
    let last_two: Vec<Value> = entries[entries.len() - 2..].to_vec();
    assert_eq!(
        serde_json::to_value(&two.entries).expect("serialize"),
        json!(last_two)
    );
    p.engine.shutdown().await.expect("shutdown");
}

/// SPEC §1: a user message's correlation id flows to every event of its run — the model step
/// events too, so a correlation-filtered timeline shows the whole run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_step_events_carry_the_run_correlation_id() {
    let (p, c, corr) = project_with_run().await;
    let t = p
        .engine
        .incident_timeline(
            &p.id,
            &c,
            TimelineQuery {
                limit: 500,
                correlation_id: Some(format!("  {corr} ")),
            },
        )
        .await
        .expect("timeline");
    assert_eq!(t.correlation_id.as_deref(), Some(corr.as_str()), "trimmed");
    assert!(
        t.entries
            .iter()
            .all(|e| e.correlation_id.as_deref() == Some(&*corr))
    );
    let telemetry: BTreeSet<&str> = t
        .entries
        .iter()
        .filter(|e| e.source == "telemetry")
        .map(|e| e.event.as_str())
        .collect();
    for event in [
        "conversation.llm.completed",
        "policy.allowed",
        "conversation.tool.started",
        "conversation.tool.completed",
    ] {
        assert!(
            telemetry.contains(event),
            "{event} is in the run's timeline: {telemetry:?}"
        );
    }
    let d = p.diagnostics().await;
    let llm: Vec<Value> = array(&d["telemetry"]["recent_events"])
        .into_iter()
        .filter(|e| e["event"] == "conversation.llm.completed")
        .collect();
    assert_eq!(llm.len(), 2, "two model steps");
    assert!(llm.iter().all(|e| e["correlation_id"] == corr.as_str()));
    p.engine.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_health_and_project_summaries_have_the_spec_fields() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let h = serde_json::to_value(p.engine.health().await).expect("serialize");
    has_keys(
        &h,
        "engine health",
        &[
            "status",
            "version",
            "started_at",
            "uptime_ms",
            "projects",
            "os_sandbox",
            "journals_ok",
            "telemetry_dropped_total",
        ],
    );
    assert_eq!(h["status"], "ok");
    is_rfc3339_ms(&h["started_at"], "started_at");
    assert_eq!(
        h["projects"],
        json!({"total": 1, "ok": 1, "degraded": 0, "failing": 0})
    );
    has_keys(
        &h["os_sandbox"],
        "os_sandbox",
        &["landlock_abi", "available"],
    );
    let list =
        serde_json::to_value(p.engine.list_projects().await.expect("list")).expect("serialize");
    let list = array(&list);
    assert_eq!(list.len(), 1);
    has_keys(
        &list[0],
        "project summary",
        &[
            "project_id",
            "root_path",
            "data_dir",
            "status",
            "conversation_count",
            "asset_generation",
            "started_at",
        ],
    );
    assert_eq!(list[0]["status"], "running");
    assert_eq!(list[0]["project_id"], p.id.to_string());
    is_rfc3339_ms(&list[0]["started_at"], "started_at");
    p.engine.shutdown().await.expect("shutdown");
}

/// Each case: options JSON → (`key`, SPEC §3.3 `reason`, entry reason for `invalid_entry`).
fn invalid_option_cases() -> Vec<(Value, &'static str, &'static str, Option<&'static str>)> {
    vec![
        (json!({"nope": 1}), "nope", "unknown_option", None),
        (
            json!({"data_dir": ""}),
            "data_dir",
            "expected_non_empty_string",
            None,
        ),
        (
            json!({"data_dir": "/abs"}),
            "data_dir",
            "must_be_relative",
            None,
        ),
        (
            json!({"data_dir": "../x"}),
            "data_dir",
            "must_not_traverse",
            None,
        ),
        (
            json!({"tool_timeout_ms": 0}),
            "tool_timeout_ms",
            "expected_positive_integer",
            None,
        ),
        (
            json!({"tool_timeout_ms": "x"}),
            "tool_timeout_ms",
            "expected_positive_integer",
            None,
        ),
        (
            json!({"tool_timeout_ms": 86_400_001_u64}),
            "tool_timeout_ms",
            "out_of_range",
            None,
        ),
        (
            json!({"tool_max_concurrency_per_conversation": -1}),
            "tool_max_concurrency_per_conversation",
            "expected_non_negative_integer",
            None,
        ),
        (
            json!({"restore_conversations": "yes"}),
            "restore_conversations",
            "expected_boolean",
            None,
        ),
        (
            json!({"llm_model": 3}),
            "llm_model",
            "expected_string_or_null",
            None,
        ),
        (
            json!({"llm_temperature": 3.0}),
            "llm_temperature",
            "out_of_range",
            None,
        ),
        (
            json!({"llm_temperature": "x"}),
            "llm_temperature",
            "expected_number_or_null",
            None,
        ),
        (
            json!({"llm_max_tokens": 0}),
            "llm_max_tokens",
            "expected_positive_integer_or_null",
            None,
        ),
        (
            json!({"watcher_debounce_ms": 500, "watcher_max_wait_ms": 100}),
            "watcher_max_wait_ms",
            "must_be_at_least",
            None,
        ),
        (
            json!({"allow_tools": "x"}),
            "allow_tools",
            "expected_list_of_strings",
            None,
        ),
        (
            json!({"deny_tools": null}),
            "deny_tools",
            "expected_list_of_strings",
            None,
        ),
        (
            json!({"allow_tools": ["Bad Name!"]}),
            "allow_tools",
            "invalid_entry",
            Some("invalid_tool_pattern"),
        ),
        (
            json!({"network_egress_policy": "maybe"}),
            "network_egress_policy",
            "expected_allow_or_deny",
            None,
        ),
        (
            json!({"network_allowlist": ["ht tp://"]}),
            "network_allowlist",
            "invalid_entry",
            Some("invalid_host"),
        ),
        (
            json!({"network_allowed_schemes": ["1x"]}),
            "network_allowed_schemes",
            "invalid_entry",
            Some("invalid_scheme"),
        ),
        (
            json!({"sensitive_path_denylist": ["[bad"]}),
            "sensitive_path_denylist",
            "invalid_entry",
            Some("invalid_glob"),
        ),
        (
            json!({"outside_root_allowlist": "x"}),
            "outside_root_allowlist",
            "expected_list_of_reason_coded_maps",
            None,
        ),
        (
            json!({"outside_root_allowlist": [1]}),
            "outside_root_allowlist",
            "invalid_entry",
            Some("expected_map_entry"),
        ),
        (
            json!({"outside_root_allowlist": [{"reason_code": "r"}]}),
            "outside_root_allowlist",
            "invalid_entry",
            Some("missing_path_or_pattern"),
        ),
        (
            json!({"outside_root_allowlist": [{"path": "/a", "pattern": "/b", "reason_code": "r"}]}),
            "outside_root_allowlist",
            "invalid_entry",
            Some("both_path_and_pattern"),
        ),
        (
            json!({"outside_root_allowlist": [{"path": "", "reason_code": "r"}]}),
            "outside_root_allowlist",
            "invalid_entry",
            Some("empty_path_or_pattern"),
        ),
        (
            json!({"outside_root_allowlist": [{"path": 1, "reason_code": "r"}]}),
            "outside_root_allowlist",
            "invalid_entry",
            Some("expected_path_or_pattern_string"),
        ),
        (
            json!({"outside_root_allowlist": [{"path": "/a"}]}),
            "outside_root_allowlist",
            "invalid_entry",
            Some("missing_reason_code"),
        ),
        (
            json!({"outside_root_allowlist": [{"path": "/a", "reason_code": ""}]}),
            "outside_root_allowlist",
            "invalid_entry",
            Some("empty_reason_code"),
        ),
        (
            json!({"outside_root_allowlist": [{"path": "/a", "reason_code": 1}]}),
            "outside_root_allowlist",
            "invalid_entry",
            Some("expected_reason_code_string"),
        ),
        (
            json!({"outside_root_allowlist": [{"path": "/a", "reason_code": "r", "access": "x"}]}),
            "outside_root_allowlist",
            "invalid_entry",
            Some("invalid_access"),
        ),
        (
            json!({"outside_root_allowlist": [{"pattern": "[x", "reason_code": "r"}]}),
            "outside_root_allowlist",
            "invalid_entry",
            Some("invalid_glob"),
        ),
        (
            json!({"tool_env_allowlist": ["1A"]}),
            "tool_env_allowlist",
            "invalid_entry",
            Some("invalid_env_name"),
        ),
        (
            json!({"tool_env_allowlist": ["LD_PRELOAD"]}),
            "tool_env_allowlist",
            "invalid_entry",
            Some("env_var_always_denied"),
        ),
        (
            json!({"protocol_allowlist": ["ftp"]}),
            "protocol_allowlist",
            "invalid_entry",
            Some("unknown_protocol"),
        ),
        (
            json!({"command_read_paths": ["rel"]}),
            "command_read_paths",
            "invalid_entry",
            Some("must_be_absolute"),
        ),
        (
            json!({"subagent_templates": "x"}),
            "subagent_templates",
            "expected_list_of_maps",
            None,
        ),
        (
            json!({"conversation_timeline_window": 99}),
            "conversation_timeline_window",
            "out_of_range",
            None,
        ),
        (
            json!({"telemetry_recent_events": 10_001}),
            "telemetry_recent_events",
            "out_of_range",
            None,
        ),
        (
            json!({"model_client": "nosuch"}),
            "model_client",
            "unknown_model_client",
            None,
        ),
        (
            json!({"alert_routes": [{"events": ["*"], "min_severity": "warning", "sinks": ["nosuch"]}]}),
            "alert_routes",
            "invalid_entry",
            Some("unknown_sink"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_options_name_their_key_and_spec_reason() {
    let engine = Engine::start(EngineConfig::default())
        .await
        .expect("engine");
    for (options, key, reason, entry_reason) in invalid_option_cases() {
        let dir = empty_root();
        // Parsing accepts the shape; the value rules run at `start_project` (either may refuse).
        let err = match ProjectOptions::from_json(&options) {
            Err(e) => Error::from(e),
            Ok(o) => engine
                .start_project(dir.path(), o)
                .await
                .expect_err("refused"),
        };
        let Error::InvalidRuntimeOpt {
            key: k,
            reason: r,
            details,
        } = &err
        else {
            panic!(
                "{options}: expected invalid_runtime_opt, got {}",
                err.to_json()
            );
        };
        assert_eq!((k.as_str(), r.as_str()), (key, reason), "{options}");
        let wire = err.to_json();
        assert_eq!(wire["code"], "invalid_runtime_opt");
        assert_eq!(wire["details"]["key"], key);
        assert_eq!(wire["details"]["reason"], reason);
        if let Some(entry) = entry_reason {
            // `invalid_entry{index, reason}` (§3.3).
            assert_eq!(details["index"], 0, "{options}: {details}");
            assert_eq!(details["reason"], entry, "{options}: {details}");
        }
        if reason == "must_be_at_least" {
            assert_eq!(wire["details"]["other_key"], "watcher_debounce_ms");
        }
    }
    // Nothing half-started stays listed.
    assert!(engine.list_projects().await.expect("list").is_empty());
    engine.shutdown().await.expect("shutdown");
}
