//! SPEC §2.3: every project-scoped call on an unknown project is `project_not_found`, every
//! conversation-scoped call on an unknown conversation `conversation_not_found`; malformed ids,
//! tool calls, arguments, roots, options and `codeward.toml` files get their typed error with
//! the documented details — and every error serializes as `{code, message, details}`.

use std::time::Duration;

use codeward::{
    AssetKind, ConversationId, ConversationOptions, Engine, EngineConfig, Error, FailureTarget,
    ProjectId, ProjectOptions, ProjectionKey, Signal, TimelineQuery, ToolCallMeta,
};
use codeward_tests::{TestProject, call, call_with, empty_root, unique, write_file};
use serde_json::{Value, json};

/// The wire shape of SPEC §2.3: exactly `code`, `message`, `details` (an object).
fn assert_shape(e: &Error) -> Value {
    let v = serde_json::to_value(e).expect("error serializes");
    let obj = v.as_object().expect("error is an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "details", "message"], "{v}");
    assert_eq!(v["code"], e.code(), "{v}");
    assert!(v["details"].is_object(), "details not an object: {v}");
    assert!(!v["message"].as_str().unwrap_or_default().is_empty(), "{v}");
    assert_eq!(v, e.to_json());
    v
}

/// Asserts the code and the shape; returns the details.
fn code<T: std::fmt::Debug>(r: Result<T, Error>, expected: &str) -> Value {
    match r {
        Ok(v) => panic!("expected {expected}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.code(), expected, "{}", e.to_json());
            assert_shape(&e)["details"].clone()
        }
    }
}

fn ghost_project() -> ProjectId {
    ProjectId::parse("no-such-project-0001").expect("valid id")
}

fn ghost_conversation() -> ConversationId {
    ConversationId::parse("conv-never-started").expect("valid id")
}

/// Every project-scoped method of SPEC §2.1 on `p`, each expected to fail with `expected`.
async fn every_project_call(engine: &Engine, p: &ProjectId, expected: &str) {
    let c = ghost_conversation();
    let dest = empty_root();
    let t = Some(Duration::from_secs(1));
    code(engine.stop_project(p).await, expected);
    code(
        engine
            .start_conversation(p, ConversationOptions::default())
            .await,
        expected,
    );
    code(engine.stop_conversation(p, &c).await, expected);
    code(
        engine
            .conversation_call(p, &c, Signal::user_message("hi"), t)
            .await,
        expected,
    );
    code(
        engine
            .conversation_cast(p, &c, Signal::user_message("hi"))
            .await,
        expected,
    );
    code(engine.conversation_state(p, &c).await, expected);
    code(
        engine
            .conversation_projection(p, &c, ProjectionKey::Timeline)
            .await,
        expected,
    );
    code(engine.subscribe_conversation(p, &c, None).await, expected);
    code(engine.list_tools(p).await, expected);
    let failure = engine
        .run_tool(p, call("fs.read", json!({"path": "x"})))
        .await
        .expect_err("run_tool on an unknown project");
    assert_eq!(failure.code(), expected);
    assert_eq!(failure.project_id, p.as_str());
    assert_shape(&failure.error);
    code(
        engine
            .explain_tool_call(p, call("fs.read", json!({"path": "x"})))
            .await,
        expected,
    );
    code(engine.reload_assets(p).await, expected);
    code(engine.list_assets(p, AssetKind::Skill).await, expected);
    code(engine.get_asset(p, AssetKind::Skill, "x").await, expected);
    code(
        engine.search_assets(p, AssetKind::Skill, "x").await,
        expected,
    );
    code(engine.assets_diagnostics(p).await, expected);
    code(engine.conversation_diagnostics(p, &c).await, expected);
    code(
        engine
            .incident_timeline(p, &c, TimelineQuery::default())
            .await,
        expected,
    );
    code(engine.diagnostics(p).await, expected);
    code(engine.protocol_allowed(p, "mcp").await, expected);
    code(
        engine
            .backup_journal(p, &dest.path().join("b.sqlite"))
            .await,
        expected,
    );
    code(engine.check_journal(p, false).await, expected);
    code(engine.compact_journal(p).await, expected);
    code(
        engine.inject_failure(p, FailureTarget::Policy).await,
        expected,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_project_call_on_an_unknown_project_is_project_not_found() {
    let engine = Engine::start(EngineConfig::default()).await.unwrap();
    let p = ghost_project();
    every_project_call(&engine, &p, "project_not_found").await;
    let d = code(engine.list_tools(&p).await, "project_not_found");
    assert_eq!(d, json!({"project_id": p.as_str()}));
    // Listing is not project-scoped: it answers, and the ghost is not in it.
    assert!(engine.list_projects().await.unwrap().is_empty());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_project_is_not_found_by_every_call() {
    let p = TestProject::start(ProjectOptions::default()).await;
    p.engine.stop_project(&p.id).await.unwrap();
    every_project_call(&p.engine, &p.id, "project_not_found").await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_after_shutdown_are_engine_shutting_down() {
    let p = TestProject::start(ProjectOptions::default()).await;
    p.engine.shutdown().await.unwrap();
    p.engine.shutdown().await.expect("shutdown is idempotent");
    code(p.engine.list_tools(&p.id).await, "engine_shutting_down");
    code(
        p.engine
            .start_project(empty_root().path(), ProjectOptions::default())
            .await,
        "engine_shutting_down",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_conversation_call_on_an_unknown_conversation_is_conversation_not_found() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let (e, id) = (&p.engine, &p.id);
    let c = ghost_conversation();
    let t = Some(Duration::from_secs(1));
    let expect = |d: Value| assert_eq!(d, json!({"conversation_id": c.as_str()}));
    expect(code(
        e.stop_conversation(id, &c).await,
        "conversation_not_found",
    ));
    expect(code(
        e.conversation_call(id, &c, Signal::user_message("hi"), t)
            .await,
        "conversation_not_found",
    ));
    expect(code(
        e.conversation_cast(id, &c, Signal::user_message("hi"))
            .await,
        "conversation_not_found",
    ));
    expect(code(
        e.conversation_state(id, &c).await,
        "conversation_not_found",
    ));
    for key in [
        ProjectionKey::Timeline,
        ProjectionKey::LlmContext,
        ProjectionKey::Diagnostics,
        ProjectionKey::PendingToolCalls,
        ProjectionKey::SubagentStatus,
    ] {
        expect(code(
            e.conversation_projection(id, &c, key).await,
            "conversation_not_found",
        ));
    }
    expect(code(
        e.subscribe_conversation(id, &c, Some(1)).await,
        "conversation_not_found",
    ));
    expect(code(
        e.conversation_diagnostics(id, &c).await,
        "conversation_not_found",
    ));
    expect(code(
        e.incident_timeline(id, &c, TimelineQuery::default()).await,
        "conversation_not_found",
    ));
    expect(code(
        e.inject_failure(
            id,
            FailureTarget::Conversation {
                conversation_id: c.clone(),
            },
        )
        .await,
        "conversation_not_found",
    ));
    // A tool call naming an unknown conversation is refused before it runs.
    let f = p
        .run_call(call("fs.list", json!({})).in_conversation(c.clone()))
        .await
        .expect_err("unknown conversation");
    assert_eq!(f.code(), "conversation_not_found");
    assert_shape(&f.error);
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_ids_are_refused_with_their_reason() {
    for (raw, reason) in [
        ("", "empty"),
        ("bad/id", "invalid_chars"),
        ("-leading", "invalid_chars"),
        ("white space", "invalid_chars"),
    ] {
        let e = ProjectId::parse(raw).expect_err(raw);
        assert_eq!(e.code(), "invalid_project_id", "{raw}");
        assert_eq!(e.reason.as_str(), reason, "{raw}");
    }
    assert_eq!(
        ProjectId::parse(&"p".repeat(65))
            .unwrap_err()
            .reason
            .as_str(),
        "too_long"
    );
    assert!(ProjectId::parse(&"p".repeat(64)).is_ok());
    assert_eq!(
        ConversationId::parse(&"c".repeat(129))
            .unwrap_err()
            .reason
            .as_str(),
        "too_long"
    );
    assert!(ConversationId::parse("conv:a.b_c-1").is_ok());

    let p = TestProject::start(ProjectOptions::default()).await;
    for (raw, reason) in [
        ("has space", "invalid_chars"),
        ("sl/ash", "invalid_chars"),
        (".dot-first", "invalid_chars"),
    ] {
        let d = code(
            p.engine
                .start_conversation(&p.id, ConversationOptions::default().with_id(raw))
                .await,
            "invalid_conversation_id",
        );
        assert_eq!(d, json!({"reason": reason}), "{raw}");
    }
    let d = code(
        p.engine
            .start_conversation(
                &p.id,
                ConversationOptions::default().with_id("c".repeat(129)),
            )
            .await,
        "invalid_conversation_id",
    );
    assert_eq!(d, json!({"reason": "too_long"}));
    // A blank id means "generate".
    let c = p
        .engine
        .start_conversation(&p.id, ConversationOptions::default().with_id("  "))
        .await
        .unwrap();
    assert!(c.as_str().starts_with("conv-"), "{c}");
    // A project id option is validated the same way.
    let d = code(
        p.engine
            .start_project(
                empty_root().path(),
                ProjectOptions::default().project_id("bad/id"),
            )
            .await,
        "invalid_project_id",
    );
    assert_eq!(d, json!({"reason": "invalid_chars"}));
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_tool_calls_are_invalid_tool_call_with_a_reason() {
    let p = TestProject::start(ProjectOptions::default().tool_max_args_bytes(2048)).await;
    let mut deep = json!("leaf");
    for _ in 0..70 {
        deep = json!({ "a": deep });
    }
    let cases = [
        (call("Fs.read", json!({})), "invalid_name"),
        (call("fs..read", json!({})), "invalid_name"),
        (call("", json!({})), "invalid_name"),
        (call(&"a".repeat(129), json!({})), "invalid_name"),
        (call("fs.read", json!(["path"])), "args_not_object"),
        (call("fs.read", json!("path")), "args_not_object"),
        (call("fs.read", json!(42)), "args_not_object"),
        (
            call("fs.read", json!({"path": "x".repeat(4096)})),
            "args_too_large",
        ),
        (call("test.echo", deep), "argument_too_complex"),
        (
            call_with(
                "fs.read",
                json!({"path": "a"}),
                ToolCallMeta {
                    correlation_id: Some("has space".into()),
                    ..ToolCallMeta::default()
                },
            ),
            "invalid_correlation_id",
        ),
        (
            call_with(
                "fs.read",
                json!({"path": "a"}),
                ToolCallMeta {
                    correlation_id: Some("c".repeat(129)),
                    ..ToolCallMeta::default()
                },
            ),
            "invalid_correlation_id",
        ),
        (
            call_with(
                "fs.read",
                json!({"path": "a"}),
                ToolCallMeta {
                    correlation_id: Some("tab\there".into()),
                    ..ToolCallMeta::default()
                },
            ),
            "invalid_correlation_id",
        ),
    ];
    for (c, reason) in cases {
        let label = format!("{} {}", c.name, c.args);
        let f = p.run_call(c).await.expect_err(&label);
        assert_eq!(f.code(), "invalid_tool_call", "{label}");
        assert_eq!(
            assert_shape(&f.error)["details"],
            json!({"reason": reason}),
            "{label}"
        );
        assert!(f.decision_id.is_none(), "no decision for {label}");
    }
    // `null` args mean `{}`.
    p.ok("fs.list", Value::Null).await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_tool_is_a_clean_error() {
    let p = TestProject::start(ProjectOptions::default()).await;
    for name in [
        "nope.tool",
        "fs.read.more",
        "command.run.missing",
        "workflow.run.x",
    ] {
        let f = p.fails(name, json!({})).await;
        assert_eq!(f.code(), "unknown_tool", "{name}");
        assert_eq!(assert_shape(&f.error)["details"], json!({"name": name}));
    }
    let e = p
        .engine
        .explain_tool_call(&p.id, call("nope.tool", json!({})))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "unknown_tool");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_errors_carry_instance_paths() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let f = p
        .fails("fs.read", json!({"path": 5, "offset": -1, "bogus": true}))
        .await;
    assert_eq!(f.code(), "invalid_tool_args");
    let errors = assert_shape(&f.error)["details"]["errors"].clone();
    let errors = errors.as_array().expect("errors list");
    assert!(!errors.is_empty() && errors.len() <= 20, "{errors:?}");
    for e in errors {
        for key in ["instance_path", "schema_path", "message"] {
            assert!(e[key].is_string(), "{key} missing in {e}");
        }
    }
    let paths: Vec<&str> = errors
        .iter()
        .filter_map(|e| e["instance_path"].as_str())
        .collect();
    assert!(paths.contains(&"/path"), "{paths:?}");
    assert!(paths.contains(&"/offset"), "{paths:?}");
    // A missing required property is reported at the object itself.
    let f = p.fails("fs.read", json!({})).await;
    assert_eq!(f.code(), "invalid_tool_args");
    let errors = f.error.details()["errors"].clone();
    assert!(
        errors
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["instance_path"] == "" && e["message"].as_str().unwrap().contains("path")),
        "{errors}"
    );
    // Many bad items: at most 20 errors.
    let f = p
        .fails(
            "command.run",
            json!({"argv": (0..100).map(|i| json!(i)).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(f.code(), "invalid_tool_args");
    let n = f.error.details()["errors"].as_array().unwrap().len();
    assert!((1..=20).contains(&n), "{n} errors");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_project_refuses_missing_roots_files_and_bad_options() {
    let engine = Engine::start(EngineConfig::default()).await.unwrap();
    let dir = empty_root();
    let missing = dir.path().join("missing");
    let d = code(
        engine
            .start_project(&missing, ProjectOptions::default())
            .await,
        "invalid_root_path",
    );
    assert_eq!(d["reason"], "not_found");
    write_file(dir.path(), "file.txt", "x");
    let d = code(
        engine
            .start_project(dir.path().join("file.txt"), ProjectOptions::default())
            .await,
        "invalid_root_path",
    );
    assert_eq!(d["reason"], "not_directory");

    let cases: Vec<(ProjectOptions, &str, &str)> = vec![
        (
            ProjectOptions::default().tool_timeout_ms(0),
            "tool_timeout_ms",
            "expected_positive_integer",
        ),
        (
            ProjectOptions::default().tool_timeout_ms(86_400_001),
            "tool_timeout_ms",
            "out_of_range",
        ),
        (
            ProjectOptions::default()
                .set("tool_max_concurrency", json!("eight"))
                .unwrap(),
            "tool_max_concurrency",
            "expected_positive_integer",
        ),
        (
            ProjectOptions::default()
                .set("tool_max_concurrency_per_conversation", json!(-1))
                .unwrap(),
            "tool_max_concurrency_per_conversation",
            "expected_non_negative_integer",
        ),
        (
            ProjectOptions::default().data_dir("../outside"),
            "data_dir",
            "must_not_traverse",
        ),
        (
            ProjectOptions::default().data_dir("/abs"),
            "data_dir",
            "must_be_relative",
        ),
        (
            ProjectOptions::default().data_dir(""),
            "data_dir",
            "expected_non_empty_string",
        ),
        (
            ProjectOptions::default().network_egress_policy("sometimes"),
            "network_egress_policy",
            "expected_allow_or_deny",
        ),
        (
            ProjectOptions::default()
                .set("restore_conversations", json!("yes"))
                .unwrap(),
            "restore_conversations",
            "expected_boolean",
        ),
        (
            ProjectOptions::default()
                .watcher_debounce_ms(500)
                .watcher_max_wait_ms(100),
            "watcher_max_wait_ms",
            "must_be_at_least",
        ),
        (
            ProjectOptions::default().tool_env_allowlist(["LANG", "LD_PRELOAD"]),
            "tool_env_allowlist",
            "invalid_entry",
        ),
        (
            ProjectOptions::default().model_client("nope"),
            "model_client",
            "unknown_model_client",
        ),
    ];
    for (opts, key, reason) in cases {
        let label = format!("{opts:?}");
        let root = empty_root();
        let d = code(
            engine.start_project(root.path(), opts).await,
            "invalid_runtime_opt",
        );
        assert_eq!(d["key"], key, "{label}: {d}");
        assert_eq!(d["reason"], reason, "{label}: {d}");
        if reason == "invalid_entry" {
            // SPEC §3.3 `invalid_entry{index, reason}`: the entry's own reason survives.
            assert_eq!(d["index"], 1, "{d}");
            assert_eq!(d["entry_reason"], "env_var_always_denied", "{d}");
        }
    }
    // Unknown keys are refused by every entry point with the same reason.
    let e = ProjectOptions::from_json(&json!({"tool_timeout": 5})).unwrap_err();
    assert_eq!(e.code(), "invalid_runtime_opt");
    let e = Error::from(e);
    assert_eq!(e.details()["reason"], "unknown_option");
    assert_eq!(e.details()["key"], "tool_timeout");
    assert_shape(&e);
    let e = ProjectOptions::default().set("nope", json!(1)).unwrap_err();
    assert_eq!(Error::from(e).details()["reason"], "unknown_option");
    // Nothing was left running by the refused starts.
    assert!(engine.list_projects().await.unwrap().is_empty());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_id_or_root_twice_is_refused() {
    let engine = Engine::start(EngineConfig::default()).await.unwrap();
    let (a, b) = (empty_root(), empty_root());
    let id = unique("proj");
    let first = engine
        .start_project(a.path(), ProjectOptions::default().project_id(id.as_str()))
        .await
        .unwrap();
    let d = code(
        engine
            .start_project(b.path(), ProjectOptions::default().project_id(id.as_str()))
            .await,
        "project_already_started",
    );
    assert_eq!(d, json!({"project_id": id}));
    // Same root, generated id: the generated id is deterministic — the same root gives the
    // same id — so it is `project_already_started` too…
    let generated = engine
        .start_project(b.path(), ProjectOptions::default())
        .await
        .unwrap();
    code(
        engine
            .start_project(b.path(), ProjectOptions::default())
            .await,
        "project_already_started",
    );
    // …and under another explicit id the root itself is in use (the canonical root counts:
    // a path with `.` segments is the same root).
    let d = code(
        engine
            .start_project(
                a.path().join("."),
                ProjectOptions::default().project_id(unique("other").as_str()),
            )
            .await,
        "root_in_use",
    );
    assert_eq!(d, json!({"project_id": first.as_str()}));
    // A different data dir on the same root is a different project.
    let third = engine
        .start_project(
            a.path(),
            ProjectOptions::default()
                .project_id(unique("third").as_str())
                .data_dir(".codeward-2"),
        )
        .await
        .unwrap();
    let listed: Vec<String> = engine
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.project_id.to_string())
        .collect();
    let mut expected = vec![first.to_string(), generated.to_string(), third.to_string()];
    expected.sort();
    assert_eq!(listed, expected, "sorted by id");
    // After a stop, the id and the root are free again.
    engine.stop_project(&first).await.unwrap();
    engine
        .start_project(a.path(), ProjectOptions::default().project_id(id.as_str()))
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_codeward_toml_is_invalid_config_file() {
    let engine = Engine::start(EngineConfig::default()).await.unwrap();
    let root = empty_root();
    write_file(
        root.path(),
        "codeward.toml",
        "tool_timeout_ms = 1000\nthis is not toml\n",
    );
    let d = code(
        engine
            .start_project(root.path(), ProjectOptions::default())
            .await,
        "invalid_config_file",
    );
    assert!(
        d["path"].as_str().unwrap().ends_with("codeward.toml"),
        "{d}"
    );
    assert_eq!(d["line"], 2, "{d}");
    assert!(d["message"].is_string(), "{d}");
    // Valid TOML with an unknown key is an option error, naming the key.
    write_file(root.path(), "codeward.toml", "tool_timeout = 1000\n");
    let d = code(
        engine
            .start_project(root.path(), ProjectOptions::default())
            .await,
        "invalid_runtime_opt",
    );
    assert_eq!(
        (d["key"].as_str(), d["reason"].as_str()),
        (Some("tool_timeout"), Some("unknown_option"))
    );
    // A bad value in the file is reported like one from the API.
    write_file(root.path(), "codeward.toml", "tool_timeout_ms = \"soon\"\n");
    let d = code(
        engine
            .start_project(root.path(), ProjectOptions::default())
            .await,
        "invalid_runtime_opt",
    );
    assert_eq!(d["key"], "tool_timeout_ms");
    // A good file starts.
    write_file(root.path(), "codeward.toml", "tool_timeout_ms = 1234\n");
    let id = engine
        .start_project(root.path(), ProjectOptions::default())
        .await
        .unwrap();
    let diag = serde_json::to_value(engine.diagnostics(&id).await.unwrap()).unwrap();
    assert_eq!(diag["options"]["tool_timeout_ms"], 1234);
    assert_eq!(diag["option_sources"]["tool_timeout_ms"], "file");
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signals_and_projection_keys_and_asset_queries_are_typed() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let c = p.conversation().await;
    let (e, id) = (&p.engine, &p.id);
    // Internal types cannot be sent by callers.
    let mut internal = Signal::user_message("x");
    internal.kind = "conversation.assistant.message".parse().unwrap();
    let d = code(
        e.conversation_cast(id, &c, internal).await,
        "external_type_not_allowed",
    );
    assert_eq!(d, json!({"type": "conversation.assistant.message"}));
    // Empty content.
    let d = code(
        e.conversation_cast(id, &c, Signal::user_message("")).await,
        "invalid_signal",
    );
    assert!(d["reason"].is_string(), "{d}");
    // Projection keys parse case-insensitively; anything else is projection_not_found.
    assert!("TimeLine".parse::<ProjectionKey>().is_ok());
    let bad = "nope"
        .parse::<ProjectionKey>()
        .map_err(Error::from)
        .map(|_| ());
    let d = code(bad, "projection_not_found");
    assert_eq!(d, json!({"key": "nope"}));
    // Asset kinds and queries.
    let bad = "widgets"
        .parse::<AssetKind>()
        .map_err(Error::from)
        .map(|_| ());
    assert_eq!(code(bad, "invalid_asset_kind"), json!({"kind": "widgets"}));
    let d = code(
        e.get_asset(id, AssetKind::Skill, "missing").await,
        "asset_not_found",
    );
    assert_eq!(d, json!({"kind": "skill", "key": "missing"}));
    code(
        e.search_assets(id, AssetKind::Skill, "   ").await,
        "invalid_query",
    );
    // A live conversation id twice.
    let d = code(
        e.start_conversation(id, ConversationOptions::default().with_id(c.as_str()))
            .await,
        "conversation_already_started",
    );
    assert_eq!(d, json!({"conversation_id": c.as_str()}));
    p.engine.shutdown().await.unwrap();
}

/// Regression: a caller tool-call id names the call's scratch dir, so `..`, absolute paths and
/// nested paths must be refused before anything runs (they once adopted and then deleted an
/// existing directory, the data dir included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_call_ids_that_are_not_one_plain_path_component_are_refused() {
    let t = TestProject::start(ProjectOptions::default()).await;
    for bad in ["..", ".", "../state", "/tmp", "a/b", ".hidden"] {
        let meta = ToolCallMeta {
            tool_call_id: Some(bad.into()),
            ..ToolCallMeta::default()
        };
        let f = t
            .run_call(call_with("command.run", json!({"argv": ["true"]}), meta))
            .await
            .unwrap_err();
        assert_eq!(f.error.code(), "invalid_tool_call", "{bad}");
        assert_eq!(
            f.error.details()["reason"],
            "invalid_correlation_id",
            "{bad}"
        );
    }
    assert!(t.path(".codeward/state").is_dir(), "the data dir is intact");
}
