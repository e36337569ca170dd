//! Tests of the options module: defaults, every non-P reason of SPEC §3.2–3.3, unknown keys per
//! source, TOML (arrays of tables, syntax errors with lines, the file on disk), precedence and
//! sources, the untrusted narrowing rules, validation order, the cross-key rule,
//! `config_file_changed`, and a proptest that narrowing never widens.

use std::path::{Path, PathBuf};

use codeward_policies::{EgressPolicy, ExceptionAccess, OutsideRootEntry, OutsideRootTarget};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn root_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    (dir, root)
}

fn ctx(root: &Path) -> ResolveContext {
    ResolveContext {
        root: root.to_owned(),
        trusted: false,
        model_clients: vec!["scripted".into(), "openai".into()],
        alert_sinks: vec!["pager".into()],
    }
}

fn api(v: Value) -> OptionLayers {
    OptionLayers {
        api: ProjectOptions::from_json(&v).unwrap(),
        ..OptionLayers::default()
    }
}

fn resolve_api(v: Value) -> Result<EffectiveOptions> {
    let (_d, root) = root_dir();
    EffectiveOptions::resolve(&api(v), &ctx(&root))
}

/// The error for api options `v`, with `details.source` (always `api` here) removed.
fn api_err(v: Value) -> OptionsError {
    match resolve_api(v).unwrap_err() {
        OptionsError::InvalidRuntimeOpt {
            key,
            reason,
            mut details,
        } => {
            let src = details.as_object_mut().unwrap().remove("source");
            assert_eq!(src, Some(json!("api")), "{key}: {reason}");
            OptionsError::InvalidRuntimeOpt {
                key,
                reason,
                details,
            }
        }
        other => other,
    }
}

fn opt(key: &str, reason: &str, details: Value) -> OptionsError {
    OptionsError::InvalidRuntimeOpt {
        key: key.into(),
        reason: reason.into(),
        details,
    }
}

fn entry(key: &str, index: usize, reason: &str, extra: Value) -> OptionsError {
    let mut d = json!({ "index": index, "reason": reason });
    for (k, v) in extra.as_object().unwrap() {
        d[k] = v.clone();
    }
    opt(key, "invalid_entry", d)
}

fn file_layer(root: &Path, text: &str) -> ProjectFile {
    std::fs::write(root.join(PROJECT_FILE_NAME), text).unwrap();
    load_project_file(root).unwrap().unwrap()
}

fn layers(daemon: Value, file: Option<ProjectFile>, api: Value) -> OptionLayers {
    OptionLayers {
        daemon: ProjectOptions::from_json(&daemon).unwrap(),
        file,
        api: ProjectOptions::from_json(&api).unwrap(),
    }
}

// ---------------------------------------------------------------- defaults and values

#[test]
fn defaults_match_the_spec_table() {
    let (_d, root) = root_dir();
    let eff = EffectiveOptions::resolve(&OptionLayers::default(), &ctx(&root)).unwrap();
    let expected: Value = serde_json::from_str(
        r#"{
        "project_id": null,
        "data_dir": ".codeward",
        "state_dir": "state",
        "tool_timeout_ms": 30000,
        "tool_timeout_alert_threshold": 3,
        "tool_timeout_alert_window_ms": 600000,
        "tool_max_output_bytes": 262144,
        "tool_max_artifact_bytes": 131072,
        "tool_max_args_bytes": 1048576,
        "tool_max_concurrency": 8,
        "tool_max_concurrency_per_conversation": 4,
        "tool_max_queued": 64,
        "tool_queue_timeout_ms": 5000,
        "llm_timeout_ms": 120000,
        "llm_max_retries": 1,
        "model_client": "scripted",
        "llm_model": null,
        "llm_system_prompt": null,
        "llm_temperature": null,
        "llm_max_tokens": null,
        "conversation_max_queue_size": 10000,
        "conversation_max_drain_steps": 128,
        "conversation_max_turn_steps": 32,
        "conversation_timeline_window": 2000,
        "restore_conversations": true,
        "watcher": false,
        "watcher_debounce_ms": 250,
        "watcher_max_wait_ms": 2000,
        "strict_asset_loading": false,
        "allow_tools": null,
        "deny_tools": [],
        "network_egress_policy": "deny",
        "network_allowlist": [],
        "network_allowed_schemes": ["http", "https"],
        "sensitive_path_denylist": [],
        "sensitive_path_allowlist": [".env.example", ".env.sample", ".env.template"],
        "outside_root_allowlist": [],
        "tool_env_allowlist": [],
        "tool_env_inherit": ["LANG", "LC_ALL", "TZ", "TERM"],
        "protocol_allowlist": ["mcp", "a2a"],
        "redact_tool_results": false,
        "require_os_sandbox": false,
        "command_read_paths": ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt", "/proc"],
        "command_shell": "/bin/sh",
        "command_path": "/usr/local/bin:/usr/bin:/bin",
        "command_max_file_bytes": 1073741824,
        "command_max_open_files": 1024,
        "command_max_memory_bytes": null,
        "subagent_templates": [],
        "subagent_templates_allowlist": null,
        "subagent_max_children": 3,
        "subagent_ttl_ms": 300000,
        "telemetry_recent_events": 200,
        "telemetry_recent_errors": 25,
        "policy_recent_decisions": 200,
        "health_error_window_ms": 300000,
        "alert_events": [],
        "alert_routes": [],
        "journal_retention_days": 30,
        "journal_max_bytes": 1073741824,
        "journal_sync": "normal",
        "journal_on_corruption": "quarantine",
        "deny_multiply_linked_files": false,
        "trust_project_file": false
    }"#,
    )
    .unwrap();
    assert_eq!(Value::Object(eff.values()), expected);
    assert_eq!(eff.values().len(), ProjectOptions::KEYS.len());
    let sources = eff.sources();
    assert_eq!(sources.len(), ProjectOptions::KEYS.len());
    assert!(sources.values().all(|s| *s == OptionSource::Default));
    assert_eq!(eff.data_dir_path, root.join(".codeward"));
    assert_eq!(eff.state_dir_path, root.join(".codeward/state"));
    assert_eq!(eff.policy, codeward_policies::PolicyOptions::default());
    assert!(!eff.file_trusted);
    assert_eq!(eff.config_file, None);
}

#[test]
fn typed_values_and_values_view_agree() {
    let eff = resolve_api(json!({
        "project_id": "my.proj-1",
        "data_dir": "./var//cw/",
        "state_dir": "/var/lib/cw",
        "llm_temperature": 0.5,
        "llm_max_tokens": 1000,
        "model_client": "openai",
        "journal_sync": " FULL ",
        "journal_on_corruption": "fail",
        "command_max_memory_bytes": 1048576,
        "outside_root_allowlist": [{"path": "/opt/sdk", "reason_code": "sdk", "access": "read_write"}],
        "subagent_templates": [{"template_id": "reviewer", "allowed_tools": ["fs.read"], "network_policy": "ALLOW"}],
        "alert_routes": [{"events": ["security.*"], "min_severity": "critical", "sinks": ["pager", "log"]}],
        "alert_events": ["conversation.tool.timeout"],
        "deny_multiply_linked_files": true,
    }))
    .unwrap();
    assert_eq!(
        eff.project_id.as_ref().map(|p| p.as_str()),
        Some("my.proj-1")
    );
    assert_eq!(eff.data_dir, PathBuf::from("var/cw"));
    assert_eq!(eff.state_dir_path, PathBuf::from("/var/lib/cw"));
    assert_eq!(eff.llm_temperature, Some(0.5));
    assert_eq!(eff.llm_max_tokens, Some(1000));
    assert_eq!(eff.journal_sync, JournalSync::Full);
    assert_eq!(eff.journal_on_corruption, JournalOnCorruption::Fail);
    assert_eq!(eff.command_max_memory_bytes, Some(1 << 20));
    assert!(eff.deny_multiply_linked_files);
    assert_eq!(
        eff.policy.outside_root_allowlist,
        vec![OutsideRootEntry {
            target: OutsideRootTarget::Path("/opt/sdk".into()),
            reason_code: "sdk".into(),
            access: ExceptionAccess::ReadWrite,
        }]
    );
    let mut t = SubagentTemplate::new("reviewer");
    t.allowed_tools = vec!["fs.read".into()];
    t.network_policy = EgressPolicy::Allow;
    assert_eq!(eff.subagent_templates, vec![t]);
    assert_eq!(
        eff.alert_routes,
        vec![
            AlertRouteOption::new(["security.*"], ["pager", "log"])
                .min_severity(AlertSeverity::Critical)
        ]
    );
    let v = eff.values();
    assert_eq!(v["project_id"], json!("my.proj-1"));
    assert_eq!(v["data_dir"], json!("var/cw"));
    assert_eq!(v["journal_sync"], json!("full"));
    assert_eq!(
        v["outside_root_allowlist"],
        json!([{"path": "/opt/sdk", "reason_code": "sdk", "access": "read_write"}])
    );
    assert_eq!(
        v["subagent_templates"],
        json!([{
            "template_id": "reviewer", "allowed_tools": ["fs.read"], "network_policy": "allow",
            "env_allowlist": [], "ttl_ms": 300000, "max_children_per_conversation": 3,
            "spawn_timeout_ms": 30000
        }])
    );
    assert_eq!(
        v["alert_routes"],
        json!([{"events": ["security.*"], "min_severity": "critical", "sinks": ["pager", "log"]}])
    );
    // The values view is itself a valid layer that resolves to the same options.
    let mut again = v.clone();
    again.remove("trust_project_file");
    let eff2 = resolve_api(Value::Object(again)).unwrap();
    assert_eq!(eff2.values(), v);
}

// ---------------------------------------------------------------- reasons, non-P keys

#[test]
fn data_dir_reasons() {
    for (v, reason) in [
        (json!(""), "expected_non_empty_string"),
        (json!("  "), "expected_non_empty_string"),
        (json!(7), "expected_non_empty_string"),
        (json!(null), "expected_non_empty_string"),
        (json!("/abs/dir"), "must_be_relative"),
        (json!("a/../b"), "must_not_traverse"),
        (json!(".."), "must_not_traverse"),
        (json!("."), "must_stay_inside_root"),
        (json!("./"), "must_stay_inside_root"),
        (json!("a\0b"), "invalid_path"),
    ] {
        assert_eq!(
            api_err(json!({ "data_dir": v })),
            opt("data_dir", reason, json!({})),
            "{v}"
        );
    }
}

#[test]
fn data_dir_symlinks_must_stay_inside_the_root() {
    let (_d, root) = root_dir();
    let (_o, outside) = root_dir();
    std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
    std::os::unix::fs::symlink(&root, root.join("self")).unwrap();
    std::fs::create_dir(root.join("real")).unwrap();
    std::os::unix::fs::symlink(root.join("real"), root.join("in")).unwrap();
    std::os::unix::fs::symlink(root.join("missing"), root.join("dangling")).unwrap();
    let check = |d: &str| EffectiveOptions::resolve(&api(json!({ "data_dir": d })), &ctx(&root));
    for bad in ["out", "out/cw", "self", "dangling/x"] {
        assert_eq!(
            check(bad).unwrap_err(),
            opt(
                "data_dir",
                "must_stay_inside_root",
                json!({"source": "api"})
            ),
            "{bad}"
        );
    }
    for good in ["in", "in/cw", "self/cw", "real/a/b", "not/yet/there"] {
        assert!(check(good).is_ok(), "{good}");
    }
}

#[test]
fn project_id_reasons() {
    for (v, reason) in [
        (json!("has space"), "invalid_chars"),
        (json!("-lead"), "invalid_chars"),
        (json!("a".repeat(65)), "too_long"),
    ] {
        assert_eq!(
            resolve_api(json!({ "project_id": v })).unwrap_err(),
            OptionsError::InvalidProjectId {
                reason: reason.into()
            }
        );
    }
    assert_eq!(
        api_err(json!({"project_id": 5})),
        opt("project_id", "expected_string_or_null", json!({}))
    );
    for generate in [json!(null), json!(""), json!("   ")] {
        assert_eq!(
            resolve_api(json!({ "project_id": generate }))
                .unwrap()
                .project_id,
            None
        );
    }
    let e = OptionsError::InvalidProjectId {
        reason: "too_long".into(),
    };
    assert_eq!(e.code(), "invalid_project_id");
    assert_eq!(e.details(), json!({"reason": "too_long"}));
}

/// (options, key, reason, details without `source`) for every non-P rule.
fn non_p_cases() -> Vec<(Value, &'static str, &'static str, Value)> {
    let max = MAX_DURATION_MS;
    vec![
        (
            json!({"tool_timeout_ms": 0}),
            "tool_timeout_ms",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"tool_timeout_ms": "5"}),
            "tool_timeout_ms",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"tool_timeout_ms": 1.5}),
            "tool_timeout_ms",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"tool_timeout_ms": 86_400_001}),
            "tool_timeout_ms",
            "out_of_range",
            json!({"min": 1, "max": 86_400_000}),
        ),
        (
            json!({"tool_timeout_alert_threshold": 0}),
            "tool_timeout_alert_threshold",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"tool_timeout_alert_window_ms": max + 1}),
            "tool_timeout_alert_window_ms",
            "out_of_range",
            json!({"min": 1, "max": max}),
        ),
        (
            json!({"tool_max_output_bytes": -1}),
            "tool_max_output_bytes",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"tool_max_artifact_bytes": 0}),
            "tool_max_artifact_bytes",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"tool_max_args_bytes": null}),
            "tool_max_args_bytes",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"tool_max_concurrency": 0}),
            "tool_max_concurrency",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"tool_max_concurrency_per_conversation": -1}),
            "tool_max_concurrency_per_conversation",
            "expected_non_negative_integer",
            json!({}),
        ),
        (
            json!({"tool_max_queued": "x"}),
            "tool_max_queued",
            "expected_non_negative_integer",
            json!({}),
        ),
        (
            json!({"tool_queue_timeout_ms": 0}),
            "tool_queue_timeout_ms",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"llm_timeout_ms": 0}),
            "llm_timeout_ms",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"llm_max_retries": -1}),
            "llm_max_retries",
            "expected_non_negative_integer",
            json!({}),
        ),
        (
            json!({"llm_max_retries": 101}),
            "llm_max_retries",
            "out_of_range",
            json!({"min": 0, "max": 100}),
        ),
        (
            json!({"model_client": "gpt"}),
            "model_client",
            "unknown_model_client",
            json!({"name": "gpt"}),
        ),
        (
            json!({"model_client": ""}),
            "model_client",
            "expected_non_empty_string",
            json!({}),
        ),
        (
            json!({"model_client": 3}),
            "model_client",
            "expected_non_empty_string",
            json!({}),
        ),
        (
            json!({"llm_model": 3}),
            "llm_model",
            "expected_string_or_null",
            json!({}),
        ),
        (
            json!({"llm_system_prompt": ["x"]}),
            "llm_system_prompt",
            "expected_string_or_null",
            json!({}),
        ),
        (
            json!({"llm_temperature": "hot"}),
            "llm_temperature",
            "expected_number_or_null",
            json!({}),
        ),
        (
            json!({"llm_temperature": 2.5}),
            "llm_temperature",
            "out_of_range",
            json!({"min": 0.0, "max": 2.0}),
        ),
        (
            json!({"llm_temperature": -0.1}),
            "llm_temperature",
            "out_of_range",
            json!({"min": 0.0, "max": 2.0}),
        ),
        (
            json!({"llm_max_tokens": 0}),
            "llm_max_tokens",
            "expected_positive_integer_or_null",
            json!({}),
        ),
        (
            json!({"conversation_max_queue_size": 0}),
            "conversation_max_queue_size",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"conversation_max_drain_steps": 0}),
            "conversation_max_drain_steps",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"conversation_max_turn_steps": 0}),
            "conversation_max_turn_steps",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"conversation_timeline_window": 99}),
            "conversation_timeline_window",
            "out_of_range",
            json!({"min": 100}),
        ),
        (
            json!({"restore_conversations": "yes"}),
            "restore_conversations",
            "expected_boolean",
            json!({}),
        ),
        (
            json!({"watcher": 1}),
            "watcher",
            "expected_boolean",
            json!({}),
        ),
        (
            json!({"watcher_debounce_ms": 0}),
            "watcher_debounce_ms",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"watcher_max_wait_ms": 0}),
            "watcher_max_wait_ms",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"strict_asset_loading": null}),
            "strict_asset_loading",
            "expected_boolean",
            json!({}),
        ),
        (
            json!({"command_shell": ""}),
            "command_shell",
            "expected_non_empty_string",
            json!({}),
        ),
        (
            json!({"command_shell": "/bin/\0sh"}),
            "command_shell",
            "invalid_path",
            json!({}),
        ),
        (
            json!({"command_path": 5}),
            "command_path",
            "expected_string",
            json!({}),
        ),
        (
            json!({"command_max_file_bytes": 0}),
            "command_max_file_bytes",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"command_max_open_files": 0}),
            "command_max_open_files",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"command_max_memory_bytes": 0}),
            "command_max_memory_bytes",
            "expected_positive_integer_or_null",
            json!({}),
        ),
        (
            json!({"subagent_templates": {}}),
            "subagent_templates",
            "expected_list_of_maps",
            json!({}),
        ),
        (
            json!({"subagent_max_children": 0}),
            "subagent_max_children",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"subagent_ttl_ms": 999}),
            "subagent_ttl_ms",
            "out_of_range",
            json!({"min": 1000, "max": max}),
        ),
        (
            json!({"telemetry_recent_events": 0}),
            "telemetry_recent_events",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"telemetry_recent_events": 10_001}),
            "telemetry_recent_events",
            "out_of_range",
            json!({"min": 1, "max": 10_000}),
        ),
        (
            json!({"telemetry_recent_errors": 10_001}),
            "telemetry_recent_errors",
            "out_of_range",
            json!({"min": 1, "max": 10_000}),
        ),
        (
            json!({"policy_recent_decisions": 0}),
            "policy_recent_decisions",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"health_error_window_ms": 999}),
            "health_error_window_ms",
            "out_of_range",
            json!({"min": 1000, "max": max}),
        ),
        (
            json!({"alert_events": "x"}),
            "alert_events",
            "expected_list_of_strings",
            json!({}),
        ),
        (
            json!({"alert_events": null}),
            "alert_events",
            "expected_list_of_strings",
            json!({}),
        ),
        (
            json!({"alert_routes": "x"}),
            "alert_routes",
            "expected_list_of_maps",
            json!({}),
        ),
        (
            json!({"journal_retention_days": 0}),
            "journal_retention_days",
            "expected_positive_integer",
            json!({}),
        ),
        (
            json!({"journal_retention_days": 36_501}),
            "journal_retention_days",
            "out_of_range",
            json!({"min": 1, "max": 36_500}),
        ),
        (
            json!({"journal_max_bytes": 1000}),
            "journal_max_bytes",
            "out_of_range",
            json!({"min": 16 << 20}),
        ),
        (
            json!({"journal_sync": "fast"}),
            "journal_sync",
            "expected_one_of",
            json!({"allowed": ["normal", "full"]}),
        ),
        (
            json!({"journal_on_corruption": "ignore"}),
            "journal_on_corruption",
            "expected_one_of",
            json!({"allowed": ["quarantine", "fail"]}),
        ),
        (
            json!({"deny_multiply_linked_files": "x"}),
            "deny_multiply_linked_files",
            "expected_boolean",
            json!({}),
        ),
        (
            json!({"trust_project_file": "yes"}),
            "trust_project_file",
            "expected_boolean",
            json!({}),
        ),
    ]
}

#[test]
fn every_non_p_reason() {
    for (input, key, reason, details) in non_p_cases() {
        assert_eq!(api_err(input.clone()), opt(key, reason, details), "{input}");
    }
}

#[test]
fn boundary_values_are_accepted() {
    let eff = resolve_api(json!({
        "tool_timeout_ms": 86_400_000,
        "tool_max_concurrency_per_conversation": 0,
        "tool_max_queued": 0,
        "llm_max_retries": 0,
        "llm_temperature": 2,
        "conversation_timeline_window": 100,
        "telemetry_recent_events": 10_000,
        "subagent_ttl_ms": 1000,
        "health_error_window_ms": 1000,
        "journal_max_bytes": 16 << 20,
        "watcher_debounce_ms": 500,
        "watcher_max_wait_ms": 500,
        "llm_model": null,
        "command_path": "",
    }))
    .unwrap();
    assert_eq!(eff.tool_max_queued, 0);
    assert_eq!(eff.llm_temperature, Some(2.0));
    assert_eq!(eff.watcher_max_wait_ms, 500);
}

#[test]
fn subagent_template_entry_reasons() {
    let t = |v: Value| api_err(json!({ "subagent_templates": v }));
    let k = "subagent_templates";
    assert_eq!(t(json!([1])), entry(k, 0, "expected_map_entry", json!({})));
    assert_eq!(
        t(json!([{}])),
        entry(k, 0, "missing_template_id", json!({}))
    );
    assert_eq!(
        t(json!([{"template_id": "Bad"}])),
        entry(k, 0, "invalid_template_id", json!({}))
    );
    assert_eq!(
        t(json!([{"template_id": 3}])),
        entry(k, 0, "expected_string", json!({"field": "template_id"}))
    );
    assert_eq!(
        t(json!([{"template_id": "a"}, {"template_id": "a"}])),
        entry(k, 1, "duplicate_template_id", json!({"template_id": "a"}))
    );
    assert_eq!(
        t(json!([{"template_id": "a", "colour": "red"}])),
        entry(k, 0, "unknown_option", json!({"field": "colour"}))
    );
    assert_eq!(
        t(json!([{"template_id": "a", "description": 5}])),
        entry(
            k,
            0,
            "expected_string_or_null",
            json!({"field": "description"})
        )
    );
    assert_eq!(
        t(json!([{"template_id": "a", "allowed_tools": "fs.read"}])),
        entry(
            k,
            0,
            "expected_list_of_strings",
            json!({"field": "allowed_tools"})
        )
    );
    assert_eq!(
        t(
            json!([{"template_id": "a"}, {"template_id": "b", "allowed_tools": ["fs.read", "bad tool!"]}])
        ),
        entry(
            k,
            1,
            "invalid_tool_pattern",
            json!({"field": "allowed_tools", "item": 1})
        )
    );
    assert_eq!(
        t(json!([{"template_id": "a", "env_allowlist": ["LD_PRELOAD"]}])),
        entry(
            k,
            0,
            "env_var_always_denied",
            json!({"field": "env_allowlist", "item": 0})
        )
    );
    assert_eq!(
        t(json!([{"template_id": "a", "env_allowlist": ["1X"]}])),
        entry(
            k,
            0,
            "invalid_env_name",
            json!({"field": "env_allowlist", "item": 0})
        )
    );
    assert_eq!(
        t(json!([{"template_id": "a", "network_policy": "maybe"}])),
        entry(
            k,
            0,
            "expected_allow_or_deny",
            json!({"field": "network_policy"})
        )
    );
    assert_eq!(
        t(json!([{"template_id": "a", "ttl_ms": 999}])),
        entry(
            k,
            0,
            "out_of_range",
            json!({"field": "ttl_ms", "min": 1000, "max": MAX_DURATION_MS})
        )
    );
    assert_eq!(
        t(json!([{"template_id": "a", "max_children_per_conversation": 0}])),
        entry(
            k,
            0,
            "expected_positive_integer",
            json!({"field": "max_children_per_conversation"})
        )
    );
    assert_eq!(
        t(json!([{"template_id": "a", "spawn_timeout_ms": "1s"}])),
        entry(
            k,
            0,
            "expected_positive_integer",
            json!({"field": "spawn_timeout_ms"})
        )
    );
}

#[test]
fn alert_event_and_route_reasons() {
    assert_eq!(
        api_err(json!({"alert_events": ["security.*", "Bad Event"]})),
        entry("alert_events", 1, "invalid_event_pattern", json!({}))
    );
    let r = |v: Value| api_err(json!({ "alert_routes": v }));
    let k = "alert_routes";
    let ok = json!({"events": ["*"], "sinks": ["log"]});
    assert_eq!(
        r(json!([ok, 5])),
        entry(k, 1, "expected_map_entry", json!({}))
    );
    assert_eq!(
        r(json!([{"events": ["*"], "sinks": ["nope"]}])),
        entry(k, 0, "unknown_sink", json!({"sink": "nope"}))
    );
    assert_eq!(
        r(json!([{"sinks": ["log"]}])),
        entry(k, 0, "missing_events", json!({}))
    );
    assert_eq!(
        r(json!([{"events": [], "sinks": ["log"]}])),
        entry(k, 0, "empty_events", json!({}))
    );
    assert_eq!(
        r(json!([{"events": ["A"], "sinks": ["log"]}])),
        entry(
            k,
            0,
            "invalid_event_pattern",
            json!({"field": "events", "item": 0})
        )
    );
    assert_eq!(
        r(json!([{"events": ["*"]}])),
        entry(k, 0, "missing_sinks", json!({}))
    );
    assert_eq!(
        r(json!([{"events": ["*"], "sinks": []}])),
        entry(k, 0, "empty_sinks", json!({}))
    );
    assert_eq!(
        r(json!([{"events": ["*"], "sinks": "log"}])),
        entry(k, 0, "expected_list_of_strings", json!({"field": "sinks"}))
    );
    assert_eq!(
        r(json!([{"events": ["*"], "sinks": ["log"], "min_severity": "fatal"}])),
        entry(
            k,
            0,
            "invalid_severity",
            json!({"field": "min_severity", "allowed": ["critical", "warning"]})
        )
    );
    assert_eq!(
        r(json!([{"events": ["*"], "sinks": ["log"], "to": "x"}])),
        entry(k, 0, "unknown_option", json!({"field": "to"}))
    );
    let eff =
        resolve_api(json!({"alert_routes": [{"events": ["x.*"], "sinks": ["pager"]}]})).unwrap();
    assert_eq!(eff.alert_routes[0].min_severity, AlertSeverity::Warning);
}

// ---------------------------------------------------------------- P keys flow through

#[test]
fn p_key_reasons_flow_through_from_the_policy_crate() {
    assert_eq!(
        api_err(json!({"allow_tools": ["fs.read", "bad tool!"]})),
        entry("allow_tools", 1, "invalid_tool_pattern", json!({}))
    );
    assert_eq!(
        api_err(json!({"network_egress_policy": "maybe"})),
        opt("network_egress_policy", "expected_allow_or_deny", json!({}))
    );
    assert_eq!(
        api_err(json!({"outside_root_allowlist": [{"path": "/x"}]})),
        entry(
            "outside_root_allowlist",
            0,
            "missing_reason_code",
            json!({})
        )
    );
    assert_eq!(
        api_err(json!({"command_read_paths": ["relative"]})),
        entry("command_read_paths", 0, "must_be_absolute", json!({}))
    );
    assert_eq!(
        api_err(json!({"state_dir": "../x"})),
        opt("state_dir", "must_not_traverse", json!({}))
    );
    let eff = resolve_api(json!({
        "network_egress_policy": "ALLOW",
        "network_allowlist": ["example.com"],
        "protocol_allowlist": [" MCP "],
        "state_dir": "journal",
    }))
    .unwrap();
    assert_eq!(eff.policy.network_egress_policy, EgressPolicy::Allow);
    assert_eq!(eff.policy.network_allowlist, vec!["example.com".to_owned()]);
    assert_eq!(eff.policy.protocol_allowlist, vec!["mcp".to_owned()]);
    assert_eq!(eff.values()["network_egress_policy"], json!("allow"));
    assert!(eff.state_dir_path.ends_with(".codeward/journal"));
    assert_eq!(eff.source("network_allowlist"), Some(OptionSource::Api));
}

// ---------------------------------------------------------------- unknown keys

#[test]
fn unknown_keys_in_each_source() {
    assert_eq!(
        ProjectOptions::from_json(&json!({"tool_timeout": 5})).unwrap_err(),
        opt("tool_timeout", "unknown_option", json!({}))
    );
    assert_eq!(
        ProjectOptions::from_json(&json!([1])).unwrap_err(),
        opt("options", "expected_map", json!({}))
    );
    assert_eq!(
        serde_json::from_value::<ProjectOptions>(json!({"nope": 1}))
            .unwrap_err()
            .to_string(),
        "invalid runtime option `nope`: unknown_option"
    );
    assert_eq!(
        ProjectOptions::default().set("nope", json!(1)).unwrap_err(),
        opt("nope", "unknown_option", json!({}))
    );
    assert_eq!(
        ProjectOptions::from_toml_str("watcher = true\n\nnope = 1\n").unwrap_err(),
        opt("nope", "unknown_option", json!({"line": 3}))
    );
    let (_d, root) = root_dir();
    std::fs::write(root.join(PROJECT_FILE_NAME), "[defaults]\nwatcher = true\n").unwrap();
    assert_eq!(
        load_project_file(&root).unwrap_err(),
        opt(
            "defaults",
            "unknown_option",
            json!({"line": 1, "source": "file", "path": root.join(PROJECT_FILE_NAME)})
        )
    );
}

// ---------------------------------------------------------------- builder and serde

#[test]
fn builder_setters_store_option_values() {
    let o = ProjectOptions::default()
        .tool_timeout_ms(5000)
        .allow_tools(["fs.*"])
        .network_egress_policy("allow")
        .watcher(true)
        .llm_temperature(0.25)
        .llm_max_tokens(None)
        .command_max_memory_bytes(4096)
        .allow_all_subagent_templates()
        .outside_root_allowlist([OutsideRootEntry {
            target: OutsideRootTarget::Pattern("/tmp/*.log".into()),
            reason_code: "logs".into(),
            access: ExceptionAccess::Read,
        }])
        .subagent_templates([SubagentTemplate::new("helper")])
        .alert_routes([AlertRouteOption::new(["*"], ["log"])])
        .trust_project_file(true);
    assert_eq!(
        o.to_json(),
        json!({
            "tool_timeout_ms": 5000,
            "allow_tools": ["fs.*"],
            "network_egress_policy": "allow",
            "watcher": true,
            "llm_temperature": 0.25,
            "llm_max_tokens": null,
            "command_max_memory_bytes": 4096,
            "subagent_templates_allowlist": null,
            "outside_root_allowlist": [{"pattern": "/tmp/*.log", "reason_code": "logs", "access": "read"}],
            "subagent_templates": [{
                "template_id": "helper", "allowed_tools": [], "network_policy": "deny",
                "env_allowlist": [], "ttl_ms": 300000, "max_children_per_conversation": 3,
                "spawn_timeout_ms": 30000
            }],
            "alert_routes": [{"events": ["*"], "min_severity": "warning", "sinks": ["log"]}],
            "trust_project_file": true,
        })
    );
    // Serialize / Deserialize round trip, and the typed entries resolve.
    let back: ProjectOptions = serde_json::from_value(serde_json::to_value(&o).unwrap()).unwrap();
    assert_eq!(back, o);
    let (_d, root) = root_dir();
    let eff = EffectiveOptions::resolve(
        &OptionLayers {
            api: o.clone(),
            ..OptionLayers::default()
        },
        &ctx(&root),
    )
    .unwrap();
    assert_eq!(
        eff.subagent_templates,
        vec![SubagentTemplate::new("helper")]
    );
    assert!(eff.trust_project_file);
    assert_eq!(o.set_keys().count(), 12);
    assert!(ProjectOptions::default().is_empty());
    assert!(o.clone().unset("watcher").get("watcher").is_none());
}

#[test]
fn error_codes_and_details() {
    let e = opt("k", "invalid_entry", json!({"index": 1, "reason": "x"}));
    assert_eq!(e.code(), "invalid_runtime_opt");
    assert_eq!(
        e.details(),
        json!({"key": "k", "reason": "invalid_entry", "details": {"index": 1, "reason": "x"}})
    );
    assert_eq!(
        opt("k", "r", json!({})).details(),
        json!({"key": "k", "reason": "r"})
    );
    let f = OptionsError::InvalidConfigFile {
        path: "/r/codeward.toml".into(),
        line: Some(3),
        message: "bad".into(),
    };
    assert_eq!(f.code(), "invalid_config_file");
    assert_eq!(
        f.details(),
        json!({"path": "/r/codeward.toml", "line": 3, "message": "bad"})
    );
    assert_eq!(
        f.to_string(),
        "invalid config file `/r/codeward.toml` line 3: bad"
    );
}

// ---------------------------------------------------------------- TOML

#[test]
fn toml_flat_keys_and_arrays_of_tables() {
    let text = r#"
tool_timeout_ms = 5000
allow_tools = ["fs.*", "asset.list"]
network_egress_policy = "allow"
llm_temperature = 1.5

[[outside_root_allowlist]]
path = "/opt/sdk"
reason_code = "sdk"

[[outside_root_allowlist]]
pattern = "/tmp/build-*"
reason_code = "build"
access = "read_write"

[[subagent_templates]]
template_id = "reviewer"
allowed_tools = ["fs.read"]
ttl_ms = 60000

[[alert_routes]]
events = ["security.*"]
min_severity = "critical"
sinks = ["pager"]
"#;
    let o = ProjectOptions::from_toml_str(text).unwrap();
    assert_eq!(o.tool_timeout_ms, Some(json!(5000)));
    let eff = resolve_api(o.to_json()).unwrap();
    assert_eq!(eff.tool_timeout_ms, 5000);
    assert_eq!(eff.llm_temperature, Some(1.5));
    assert_eq!(eff.policy.outside_root_allowlist.len(), 2);
    assert_eq!(
        eff.policy.outside_root_allowlist[1].access,
        ExceptionAccess::ReadWrite
    );
    assert_eq!(eff.subagent_templates[0].ttl_ms, 60_000);
    assert_eq!(eff.alert_routes[0].sinks, vec!["pager".to_owned()]);
}

#[test]
fn toml_syntax_error_has_a_line() {
    let e = ProjectOptions::from_toml_str("watcher = true\ntool_timeout_ms = \n").unwrap_err();
    let OptionsError::InvalidConfigFile {
        path,
        line,
        message,
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(path, PathBuf::from("<toml>"));
    assert_eq!(line, Some(2));
    assert!(!message.is_empty());
    // Duplicate keys are syntax errors too, at the second occurrence.
    let e = ProjectOptions::from_toml_str("watcher = true\n\nwatcher = false\n").unwrap_err();
    assert!(
        matches!(e, OptionsError::InvalidConfigFile { line: Some(3), .. }),
        "{e:?}"
    );
}

#[test]
fn toml_types_keep_their_reasons() {
    // Datetimes and nested tables are not strings / numbers.
    let o = ProjectOptions::from_toml_str("llm_model = 1979-05-27\ntool_timeout_ms = { a = 1 }\n")
        .unwrap();
    assert_eq!(
        api_err(json!({"llm_model": o.llm_model.clone().unwrap()})),
        opt("llm_model", "expected_string_or_null", json!({}))
    );
    assert_eq!(
        api_err(json!({"tool_timeout_ms": o.tool_timeout_ms.clone().unwrap()})),
        opt("tool_timeout_ms", "expected_positive_integer", json!({}))
    );
    let o = ProjectOptions::from_toml_str("llm_temperature = nan\n").unwrap();
    assert_eq!(
        api_err(o.to_json()),
        opt("llm_temperature", "expected_number_or_null", json!({}))
    );
}

#[test]
fn project_file_on_disk() {
    let (_d, root) = root_dir();
    assert_eq!(load_project_file(&root).unwrap(), None);
    let f = file_layer(&root, "# comment\nwatcher = true\n\ntool_timeout_ms = 0\n");
    assert_eq!(f.path, root.join(PROJECT_FILE_NAME));
    assert_eq!(f.line_of("watcher"), Some(2));
    assert_eq!(f.line_of("tool_timeout_ms"), Some(4));
    assert!(f.fingerprint().is_some());
    // A bad value in the file names the file and line.
    let e =
        EffectiveOptions::resolve(&layers(json!({}), Some(f), json!({})), &ctx(&root)).unwrap_err();
    assert_eq!(
        e,
        opt(
            "tool_timeout_ms",
            "expected_positive_integer",
            json!({"source": "file", "path": root.join(PROJECT_FILE_NAME), "line": 4})
        )
    );
    // Syntax error with the real path.
    std::fs::write(root.join(PROJECT_FILE_NAME), "a = [\n").unwrap();
    assert!(matches!(
        load_project_file(&root).unwrap_err(),
        OptionsError::InvalidConfigFile { path, line: Some(_), .. } if path == root.join(PROJECT_FILE_NAME)
    ));
}

#[test]
fn project_file_refusals() {
    let (_d, root) = root_dir();
    let path = root.join(PROJECT_FILE_NAME);
    let refused = |root: &Path| match load_project_file(root).unwrap_err() {
        OptionsError::InvalidConfigFile { message, line, .. } => (message, line),
        other => panic!("{other:?}"),
    };
    // Not UTF-8 (line of the bad byte).
    std::fs::write(&path, b"watcher = true\n\xff = 1\n").unwrap();
    assert_eq!(refused(&root), ("not valid UTF-8".to_owned(), Some(2)));
    // Too large.
    std::fs::write(&path, vec![b'#'; (MAX_CONFIG_FILE_BYTES + 1) as usize]).unwrap();
    assert_eq!(refused(&root).0, "larger than 1 MiB");
    // A directory.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    assert_eq!(refused(&root).0, "not a regular file");
    std::fs::remove_dir(&path).unwrap();
    // A FIFO must not block.
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(refused(&root).0, "not a regular file");
    std::fs::remove_file(&path).unwrap();
    // A symlink out of the root.
    let (_o, outside) = root_dir();
    std::fs::write(outside.join("secret.toml"), "watcher = true\n").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.toml"), &path).unwrap();
    assert_eq!(refused(&root).0, "symlink leads outside the project root");
    std::fs::remove_file(&path).unwrap();
    // A symlink inside the root is fine.
    std::fs::write(root.join("shared.toml"), "watcher = true\n").unwrap();
    std::os::unix::fs::symlink(root.join("shared.toml"), &path).unwrap();
    let f = load_project_file(&root).unwrap().unwrap();
    assert_eq!(f.options.watcher, Some(json!(true)));
}

// ---------------------------------------------------------------- precedence and sources

#[test]
fn later_layers_override_and_sources_are_reported() {
    let (_d, root) = root_dir();
    let file = file_layer(
        &root,
        "tool_timeout_ms = 2000\nllm_max_retries = 2\nwatcher = true\nstrict_asset_loading = true\n",
    );
    let l = layers(
        json!({"tool_timeout_ms": 1000, "llm_max_retries": 3, "tool_max_queued": 9}),
        Some(file),
        json!({"llm_max_retries": 4, "watcher": false}),
    );
    let eff = EffectiveOptions::resolve(&l, &ctx(&root)).unwrap();
    assert_eq!(eff.tool_timeout_ms, 2000);
    assert_eq!(eff.llm_max_retries, 4);
    assert!(!eff.watcher);
    assert!(eff.strict_asset_loading);
    assert_eq!(eff.tool_max_queued, 9);
    let s = eff.sources();
    assert_eq!(s["tool_timeout_ms"], OptionSource::File);
    assert_eq!(s["llm_max_retries"], OptionSource::Api);
    assert_eq!(s["watcher"], OptionSource::Api);
    assert_eq!(s["strict_asset_loading"], OptionSource::File);
    assert_eq!(s["tool_max_queued"], OptionSource::Daemon);
    assert_eq!(s["journal_sync"], OptionSource::Default);
    assert_eq!(eff.config_file, Some(root.join(PROJECT_FILE_NAME)));
    assert_eq!(
        serde_json::to_value(s).unwrap()["tool_timeout_ms"],
        json!("file")
    );
    assert_eq!(
        serde_json::to_value(OptionSource::Default).unwrap(),
        json!("default")
    );
}

#[test]
fn an_overridden_bad_value_is_not_an_error() {
    let (_d, root) = root_dir();
    let l = layers(
        json!({"tool_timeout_ms": "x"}),
        None,
        json!({"tool_timeout_ms": 10}),
    );
    assert_eq!(
        EffectiveOptions::resolve(&l, &ctx(&root))
            .unwrap()
            .tool_timeout_ms,
        10
    );
    let l = layers(json!({"tool_timeout_ms": "x"}), None, json!({}));
    assert_eq!(
        EffectiveOptions::resolve(&l, &ctx(&root)).unwrap_err(),
        opt(
            "tool_timeout_ms",
            "expected_positive_integer",
            json!({"source": "daemon"})
        )
    );
}

// ---------------------------------------------------------------- untrusted narrowing

fn untrusted(daemon: Value, file_text: &str, api: Value) -> Result<EffectiveOptions> {
    let (_d, root) = root_dir();
    let file = file_layer(&root, file_text);
    EffectiveOptions::resolve(&layers(daemon, Some(file), api), &ctx(&root))
}

fn trusted(daemon: Value, file_text: &str) -> EffectiveOptions {
    let (_d, root) = root_dir();
    let file = file_layer(&root, file_text);
    let mut c = ctx(&root);
    c.trusted = true;
    EffectiveOptions::resolve(&layers(daemon, Some(file), json!({})), &c).unwrap()
}

#[test]
fn untrusted_file_cannot_widen_the_network() {
    let daemon = json!({"network_egress_policy": "allow", "network_allowlist": ["api.example.com", "=docs.example.com"]});
    let eff = untrusted(
        daemon.clone(),
        "network_allowlist = [\"evil.test\", \"API.example.com\", \"docs.example.com\"]\n",
        json!({}),
    )
    .unwrap();
    // `API.example.com` normalizes to an operator entry; `docs.example.com` (with subdomains)
    // is wider than the exact operator entry and is dropped.
    assert_eq!(
        eff.policy.network_allowlist,
        vec!["API.example.com".to_owned()]
    );
    assert_eq!(eff.source("network_allowlist"), Some(OptionSource::File));
    // Default allowlist is empty: nothing survives.
    let eff = untrusted(json!({}), "network_allowlist = [\"*\"]\n", json!({})).unwrap();
    assert_eq!(eff.policy.network_allowlist, Vec::<String>::new());
    assert_eq!(eff.source("network_allowlist"), Some(OptionSource::Default));
    // Egress cannot flip to allow; it can flip to deny.
    let eff = untrusted(json!({}), "network_egress_policy = \"allow\"\n", json!({})).unwrap();
    assert_eq!(eff.policy.network_egress_policy, EgressPolicy::Deny);
    assert_eq!(
        eff.source("network_egress_policy"),
        Some(OptionSource::Default)
    );
    let eff = untrusted(daemon, "network_egress_policy = \"DENY\"\n", json!({})).unwrap();
    assert_eq!(eff.policy.network_egress_policy, EgressPolicy::Deny);
    assert_eq!(
        eff.source("network_egress_policy"),
        Some(OptionSource::File)
    );
    // Schemes and protocols only shrink.
    let eff = untrusted(
        json!({}),
        "network_allowed_schemes = [\"https\", \"ftp\"]\nprotocol_allowlist = [\"*\"]\n",
        json!({}),
    )
    .unwrap();
    assert_eq!(eff.policy.network_allowed_schemes, vec!["https".to_owned()]);
    assert_eq!(
        eff.policy.protocol_allowlist,
        vec!["mcp".to_owned(), "a2a".to_owned()]
    );
}

#[test]
fn untrusted_file_cannot_turn_safety_booleans_off() {
    let daemon = json!({"redact_tool_results": true, "require_os_sandbox": true, "deny_multiply_linked_files": true});
    let eff = untrusted(
        daemon,
        "redact_tool_results = false\nrequire_os_sandbox = false\ndeny_multiply_linked_files = false\n",
        json!({}),
    )
    .unwrap();
    assert!(eff.policy.redact_tool_results);
    assert!(eff.policy.require_os_sandbox);
    assert!(eff.deny_multiply_linked_files);
    assert_eq!(
        eff.source("redact_tool_results"),
        Some(OptionSource::Daemon)
    );
    assert_eq!(
        eff.source("deny_multiply_linked_files"),
        Some(OptionSource::Daemon)
    );
    // ... but can turn them on.
    let eff = untrusted(
        json!({}),
        "redact_tool_results = true\ndeny_multiply_linked_files = true\n",
        json!({}),
    )
    .unwrap();
    assert!(eff.policy.redact_tool_results);
    assert!(eff.deny_multiply_linked_files);
    assert_eq!(eff.source("redact_tool_results"), Some(OptionSource::File));
    assert_eq!(
        eff.source("deny_multiply_linked_files"),
        Some(OptionSource::File)
    );
}

#[test]
fn untrusted_file_can_add_denials_and_narrow_tools() {
    let eff = untrusted(
        json!({"deny_tools": ["command.run"], "sensitive_path_denylist": ["*.pem"]}),
        "deny_tools = [\"http.fetch\", \"command.run\"]\nsensitive_path_denylist = [\"secrets/**\"]\nallow_tools = [\"fs.*\"]\n",
        json!({}),
    )
    .unwrap();
    assert_eq!(
        eff.policy.deny_tools,
        vec!["command.run".to_owned(), "http.fetch".to_owned()]
    );
    assert_eq!(
        eff.policy.sensitive_path_denylist,
        vec!["*.pem".to_owned(), "secrets/**".to_owned()]
    );
    // null (all) below ∩ list = list.
    assert_eq!(eff.policy.allow_tools, Some(vec!["fs.*".to_owned()]));
    assert_eq!(eff.source("allow_tools"), Some(OptionSource::File));
    // A pattern below keeps only what it covers.
    let eff = untrusted(
        json!({"allow_tools": ["fs.*", "asset.list"]}),
        "allow_tools = [\"fs.read\", \"command.run\", \"*\"]\n",
        json!({}),
    )
    .unwrap();
    assert_eq!(
        eff.policy.allow_tools,
        Some(vec![
            "fs.read".to_owned(),
            "fs.*".to_owned(),
            "asset.list".to_owned()
        ])
    );
    // A `*` in the file cannot widen a list below.
    let eff = untrusted(
        json!({"allow_tools": ["fs.read"]}),
        "allow_tools = [\"*\"]\n",
        json!({}),
    )
    .unwrap();
    assert_eq!(eff.policy.allow_tools, Some(vec!["fs.read".to_owned()]));
    // Env, inherit, sensitive exceptions, read paths and template allowlist only shrink.
    let eff = untrusted(
        json!({"tool_env_allowlist": ["CI", "RUST_LOG"], "subagent_templates_allowlist": ["rev*"]}),
        r#"
tool_env_allowlist = ["RUST_LOG", "MY_VAR"]
tool_env_inherit = ["LANG", "SSH_AUTH_SOCK"]
sensitive_path_allowlist = [".env.example", ".env"]
command_read_paths = ["/usr", "/home"]
subagent_templates_allowlist = ["reviewer", "deployer"]
"#,
        json!({}),
    )
    .unwrap();
    assert_eq!(eff.policy.tool_env_allowlist, vec!["RUST_LOG".to_owned()]);
    assert_eq!(eff.policy.tool_env_inherit, vec!["LANG".to_owned()]);
    assert_eq!(
        eff.policy.sensitive_path_allowlist,
        vec![".env.example".to_owned()]
    );
    assert_eq!(eff.policy.command_read_paths, vec![PathBuf::from("/usr")]);
    assert_eq!(
        eff.policy.subagent_templates_allowlist,
        Some(vec!["reviewer".to_owned()])
    );
}

#[test]
fn untrusted_outside_root_entries_need_an_operator_match() {
    let daemon = json!({"outside_root_allowlist": [
        {"path": "/opt/sdk", "reason_code": "sdk", "access": "read_write"},
        {"pattern": "/tmp/*.log", "reason_code": "logs"},
    ]});
    let eff = untrusted(
        daemon,
        r#"
[[outside_root_allowlist]]
path = "/opt/sdk"
reason_code = "mine"
access = "read"

[[outside_root_allowlist]]
pattern = "/tmp/*.log"
reason_code = "logs"
access = "read_write"

[[outside_root_allowlist]]
path = "/home"
reason_code = "grab"
"#,
        json!({}),
    )
    .unwrap();
    assert_eq!(
        eff.policy.outside_root_allowlist,
        vec![OutsideRootEntry {
            target: OutsideRootTarget::Path("/opt/sdk".into()),
            reason_code: "sdk".into(),
            access: ExceptionAccess::Read,
        }]
    );
}

#[test]
fn untrusted_file_non_p_keys_override_and_state_dir_stays_inside() {
    let eff = untrusted(
        json!({"tool_timeout_ms": 1000}),
        "tool_timeout_ms = 9000\nstate_dir = \"j\"\n",
        json!({}),
    )
    .unwrap();
    assert_eq!(eff.tool_timeout_ms, 9000);
    assert!(eff.state_dir_path.ends_with(".codeward/j"));
    let (_d, root) = root_dir();
    let file = file_layer(&root, "\nstate_dir = \"/var/lib/other-project/state\"\n");
    assert_eq!(
        EffectiveOptions::resolve(
            &layers(json!({}), Some(file.clone()), json!({})),
            &ctx(&root)
        )
        .unwrap_err(),
        opt(
            "state_dir",
            "must_be_relative",
            json!({"untrusted": true, "source": "file", "path": file.path, "line": 2})
        )
    );
    let mut c = ctx(&root);
    c.trusted = true;
    assert!(EffectiveOptions::resolve(&layers(json!({}), Some(file), json!({})), &c).is_ok());
}

#[test]
fn untrusted_file_values_are_still_validated() {
    let (_d, root) = root_dir();
    let file = file_layer(&root, "allow_tools = [\"ok\", \"not ok\"]\n");
    assert_eq!(
        EffectiveOptions::resolve(
            &layers(json!({}), Some(file.clone()), json!({})),
            &ctx(&root)
        )
        .unwrap_err(),
        opt(
            "allow_tools",
            "invalid_entry",
            json!({"index": 1, "reason": "invalid_tool_pattern", "source": "file", "path": file.path, "line": 1})
        )
    );
}

#[test]
fn trusted_file_can_widen() {
    let text = "network_egress_policy = \"allow\"\nnetwork_allowlist = [\"evil.test\"]\nredact_tool_results = false\nallow_tools = [\"*\"]\n";
    let daemon = json!({"redact_tool_results": true, "allow_tools": ["fs.read"]});
    let eff = trusted(daemon.clone(), text);
    assert_eq!(eff.policy.network_egress_policy, EgressPolicy::Allow);
    assert_eq!(eff.policy.network_allowlist, vec!["evil.test".to_owned()]);
    assert!(!eff.policy.redact_tool_results);
    assert_eq!(eff.policy.allow_tools, Some(vec!["*".to_owned()]));
    assert!(eff.file_trusted);
    assert_eq!(eff.source("network_allowlist"), Some(OptionSource::File));
    // trust_project_file from an operator layer trusts the file too.
    let (_d, root) = root_dir();
    let file = file_layer(&root, text);
    let eff = EffectiveOptions::resolve(
        &layers(daemon, Some(file), json!({"trust_project_file": true})),
        &ctx(&root),
    )
    .unwrap();
    assert_eq!(eff.policy.network_egress_policy, EgressPolicy::Allow);
    assert!(eff.file_trusted && eff.trust_project_file);
    assert_eq!(eff.source("trust_project_file"), Some(OptionSource::Api));
}

#[test]
fn trusted_roots_are_ancestors_by_component() {
    let roots = vec![PathBuf::from("/srv/trusted")];
    assert!(root_is_trusted(Path::new("/srv/trusted"), &roots));
    assert!(root_is_trusted(Path::new("/srv/trusted/app"), &roots));
    assert!(!root_is_trusted(Path::new("/srv/trusted-not"), &roots));
    assert!(!root_is_trusted(Path::new("/srv"), &roots));
    assert!(!root_is_trusted(Path::new("/srv/trusted/app"), &[]));
}

#[test]
fn the_file_cannot_trust_itself() {
    let (_d, root) = root_dir();
    let file = file_layer(&root, "watcher = true\ntrust_project_file = true\n");
    let l = layers(json!({}), Some(file.clone()), json!({}));
    let expected = opt(
        "trust_project_file",
        "unknown_option",
        json!({"source": "file", "path": file.path, "line": 2, "allowed_in": ["daemon", "api"]}),
    );
    assert_eq!(l.trust_project_file().unwrap_err(), expected);
    assert_eq!(
        EffectiveOptions::resolve(&l, &ctx(&root)).unwrap_err(),
        expected
    );
}

#[test]
fn api_overrides_an_untrusted_file() {
    let eff = untrusted(
        json!({}),
        "network_egress_policy = \"deny\"\nallow_tools = [\"fs.read\"]\n",
        json!({"network_egress_policy": "allow", "allow_tools": ["command.run"]}),
    )
    .unwrap();
    assert_eq!(eff.policy.network_egress_policy, EgressPolicy::Allow);
    assert_eq!(eff.policy.allow_tools, Some(vec!["command.run".to_owned()]));
    assert_eq!(eff.source("allow_tools"), Some(OptionSource::Api));
}

// ---------------------------------------------------------------- order and cross-key

#[test]
fn validation_order_first_failure_wins() {
    let both = |v: Value| api_err(v);
    // data_dir before everything, project_id next.
    assert_eq!(
        both(
            json!({"journal_sync": "x", "tool_timeout_ms": 0, "project_id": "bad id", "data_dir": "/abs"})
        ),
        opt("data_dir", "must_be_relative", json!({}))
    );
    assert_eq!(
        resolve_api(json!({"journal_sync": "x", "tool_timeout_ms": 0, "project_id": "bad id"}))
            .unwrap_err(),
        OptionsError::InvalidProjectId {
            reason: "invalid_chars".into()
        }
    );
    // Then table order, P keys in their place.
    assert_eq!(
        both(json!({"journal_sync": "x", "tool_timeout_ms": 0})),
        opt("tool_timeout_ms", "expected_positive_integer", json!({}))
    );
    assert_eq!(
        both(json!({"command_shell": "", "allow_tools": "x", "strict_asset_loading": 1})),
        opt("strict_asset_loading", "expected_boolean", json!({}))
    );
    assert_eq!(
        both(json!({"command_shell": "", "allow_tools": "x"})),
        opt("allow_tools", "expected_list_of_strings", json!({}))
    );
    assert_eq!(
        both(
            json!({"subagent_max_children": 0, "subagent_templates_allowlist": 3, "subagent_templates": [{}]})
        ),
        entry("subagent_templates", 0, "missing_template_id", json!({}))
    );
    assert_eq!(
        both(json!({"subagent_max_children": 0, "subagent_templates_allowlist": 3})),
        opt(
            "subagent_templates_allowlist",
            "expected_list_of_strings",
            json!({})
        )
    );
    // Cross-key rules come last.
    assert_eq!(
        both(json!({"watcher_debounce_ms": 500, "watcher_max_wait_ms": 100, "journal_sync": "x"})),
        opt(
            "journal_sync",
            "expected_one_of",
            json!({"allowed": ["normal", "full"]})
        )
    );
}

#[test]
fn watcher_max_wait_must_be_at_least_the_debounce() {
    assert_eq!(
        api_err(json!({"watcher_debounce_ms": 500, "watcher_max_wait_ms": 499})),
        opt(
            "watcher_max_wait_ms",
            "must_be_at_least",
            json!({"other_key": "watcher_debounce_ms", "min": 500})
        )
    );
    // Against the default max wait (2000): tagged with the max wait's source.
    assert_eq!(
        resolve_api(json!({"watcher_debounce_ms": 3000})).unwrap_err(),
        opt(
            "watcher_max_wait_ms",
            "must_be_at_least",
            json!({"other_key": "watcher_debounce_ms", "min": 3000, "source": "default"})
        )
    );
}

// ---------------------------------------------------------------- config_file_changed

#[test]
fn config_file_changed_tracks_the_file() {
    let (_d, root) = root_dir();
    let path = root.join(PROJECT_FILE_NAME);
    let resolve = |file: Option<ProjectFile>| {
        EffectiveOptions::resolve(&layers(json!({}), file, json!({})), &ctx(&root)).unwrap()
    };
    // No file at start; one appears later.
    let eff = resolve(None);
    assert!(!eff.config_file_changed());
    std::fs::write(&path, "watcher = true\n").unwrap();
    assert!(eff.config_file_changed());
    // Read at start: unchanged, touched (same content), edited, removed.
    let eff = resolve(load_project_file(&root).unwrap());
    assert!(!eff.config_file_changed());
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    drop(f);
    assert!(!eff.config_file_changed(), "same content is not a change");
    std::fs::write(&path, "watcher = false\n").unwrap();
    assert!(eff.config_file_changed());
    std::fs::remove_file(&path).unwrap();
    assert!(eff.config_file_changed());
}

// ---------------------------------------------------------------- narrowing never widens

const HOSTS: &[&str] = &[
    "example.com",
    "EXAMPLE.com",
    "=example.com",
    "*.example.com",
    "api.example.com",
    "example.com:443",
    "10.0.0.0/8",
    "10.0.0.1",
    "*",
    "evil.test",
];

const PATTERNS: &[&str] = &[
    "*",
    "fs.*",
    "fs.read",
    "fs.r*",
    "*.run",
    "command.run",
    "f*d",
    "asset.*",
    "a*",
];
const NAMES: &[&str] = &[
    "fs.read",
    "fs.write",
    "command.run",
    "asset.list",
    "fd",
    "fs.rd",
    "agent.spawn.x",
    "a",
];

fn subset(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(pool, 0..=pool.len())
        .prop_shuffle()
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

fn admits(list: &[String], name: &str) -> bool {
    list.iter()
        .any(|p| codeward_policies::tool_pattern_matches(p, name))
}

fn resolve_untrusted(daemon: Value, file: Value) -> EffectiveOptions {
    let (_d, root) = root_dir();
    let f = ProjectFile::new(
        root.join(PROJECT_FILE_NAME),
        ProjectOptions::from_json(&file).unwrap(),
    );
    EffectiveOptions::resolve(&layers(daemon, Some(f), json!({})), &ctx(&root)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn narrowing_never_widens_hosts(a in subset(HOSTS), f in subset(HOSTS)) {
        let eff = resolve_untrusted(
            json!({"network_allowlist": a, "network_egress_policy": "allow"}),
            json!({"network_allowlist": f, "network_egress_policy": "allow"}),
        );
        let parsed = |l: &[String]| l.iter().filter_map(|s| codeward_policies::net::AllowEntry::parse(s)).collect::<Vec<_>>();
        let below = parsed(&a);
        for e in parsed(&eff.policy.network_allowlist) {
            prop_assert!(below.contains(&e), "{e:?} not in {a:?}");
        }
        for h in &eff.policy.network_allowlist {
            prop_assert!(f.contains(h));
        }
    }

    #[test]
    fn narrowing_never_widens_tools(a in subset(PATTERNS), f in subset(PATTERNS), a_null: bool) {
        let below = if a_null { Value::Null } else { json!(a) };
        let eff = resolve_untrusted(json!({"allow_tools": below}), json!({"allow_tools": f}));
        let eff_list = eff.policy.allow_tools.clone().unwrap();
        for n in NAMES {
            if admits(&eff_list, n) {
                prop_assert!(a_null || admits(&a, n), "{n} widened past {a:?}");
                prop_assert!(admits(&f, n), "{n} widened past file {f:?}");
            }
        }
        if a_null {
            prop_assert_eq!(eff_list, f);
        }
    }

    #[test]
    fn narrowing_never_widens_env(a in subset(&["CI", "RUST_LOG", "MY_VAR", "LANG"]), f in subset(&["CI", "RUST_LOG", "MY_VAR", "LANG", "OTHER_VAR"])) {
        let eff = resolve_untrusted(json!({"tool_env_allowlist": a}), json!({"tool_env_allowlist": f}));
        for e in &eff.policy.tool_env_allowlist {
            prop_assert!(a.contains(e) && f.contains(e));
        }
    }
}
