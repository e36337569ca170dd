//! Validation reasons of SPEC §3.3 for every policy key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};

use super::*;

fn err(v: Value) -> InvalidRuntimeOpt {
    RawPolicyOptions::from_json(&v)
        .and_then(PolicyOptions::try_from)
        .unwrap_err()
}

fn entry(key: &str, index: usize, reason: &str) -> InvalidRuntimeOpt {
    InvalidRuntimeOpt::entry(key, index, reason)
}

#[test]
fn defaults() {
    let o = PolicyOptions::try_from(RawPolicyOptions::from_json(&json!({})).unwrap()).unwrap();
    assert_eq!(o, PolicyOptions::default());
    assert_eq!(o.network_egress_policy, EgressPolicy::Deny);
    assert_eq!(o.protocol_allowlist, vec!["mcp", "a2a"]);
}

#[test]
fn unknown_option_and_serde_deny_unknown() {
    assert_eq!(
        err(json!({"alow_tools": []})),
        InvalidRuntimeOpt::new("alow_tools", "unknown_option")
    );
    assert!(serde_json::from_value::<RawPolicyOptions>(json!({"nope": 1})).is_err());
    let raw: RawPolicyOptions = serde_json::from_value(json!({"allow_tools": null})).unwrap();
    assert_eq!(raw.allow_tools, Some(Value::Null));
}

#[test]
fn type_reasons() {
    assert_eq!(
        err(json!({"deny_tools": null})),
        InvalidRuntimeOpt::new("deny_tools", "expected_list_of_strings")
    );
    assert_eq!(
        err(json!({"deny_tools": [1]})),
        InvalidRuntimeOpt::new("deny_tools", "expected_list_of_strings")
    );
    assert_eq!(
        err(json!({"network_egress_policy": "maybe"})),
        InvalidRuntimeOpt::new("network_egress_policy", "expected_allow_or_deny")
    );
    assert_eq!(
        err(json!({"redact_tool_results": "yes"})),
        InvalidRuntimeOpt::new("redact_tool_results", "expected_boolean")
    );
    assert_eq!(
        err(json!({"outside_root_allowlist": {}})),
        InvalidRuntimeOpt::new(
            "outside_root_allowlist",
            "expected_list_of_reason_coded_maps"
        )
    );
    assert_eq!(
        err(json!({"state_dir": ""})),
        InvalidRuntimeOpt::new("state_dir", "expected_non_empty_string")
    );
    assert_eq!(
        err(json!({"state_dir": "../x"})),
        InvalidRuntimeOpt::new("state_dir", "must_not_traverse")
    );
}

#[test]
fn entry_reasons() {
    assert_eq!(
        err(json!({"allow_tools": ["ok", "bad name"]})),
        entry("allow_tools", 1, "invalid_tool_pattern")
    );
    assert_eq!(
        err(json!({"network_allowlist": ["example.com", "exa mple.com"]})),
        entry("network_allowlist", 1, "invalid_host")
    );
    assert_eq!(
        err(json!({"network_allowlist": ["10.0.0.0/33"]})),
        entry("network_allowlist", 0, "invalid_host")
    );
    assert_eq!(
        err(json!({"network_allowed_schemes": ["https", "1http"]})),
        entry("network_allowed_schemes", 1, "invalid_scheme")
    );
    assert_eq!(
        err(json!({"sensitive_path_denylist": ["a[b"]})),
        entry("sensitive_path_denylist", 0, "invalid_glob")
    );
    assert_eq!(
        err(json!({"sensitive_path_allowlist": ["{a"]})),
        entry("sensitive_path_allowlist", 0, "invalid_glob")
    );
    assert_eq!(
        err(json!({"tool_env_allowlist": ["FOO", "1X"]})),
        entry("tool_env_allowlist", 1, "invalid_env_name")
    );
    assert_eq!(
        err(json!({"tool_env_allowlist": ["ld_preload"]})),
        entry("tool_env_allowlist", 0, "env_var_always_denied")
    );
    assert_eq!(
        err(json!({"tool_env_inherit": ["PATH"]})),
        entry("tool_env_inherit", 0, "env_var_always_denied")
    );
    assert_eq!(
        err(json!({"protocol_allowlist": ["mcp", "http"]})),
        entry("protocol_allowlist", 1, "unknown_protocol")
    );
    assert_eq!(
        err(json!({"command_read_paths": ["/usr", "usr"]})),
        entry("command_read_paths", 1, "must_be_absolute")
    );
}

#[test]
fn outside_root_entry_reasons() {
    let k = "outside_root_allowlist";
    for (e, reason) in [
        (json!("x"), "expected_map_entry"),
        (json!({"reason_code": "r"}), "missing_path_or_pattern"),
        (
            json!({"path": "/a", "pattern": "/b", "reason_code": "r"}),
            "both_path_and_pattern",
        ),
        (
            json!({"path": " ", "reason_code": "r"}),
            "empty_path_or_pattern",
        ),
        (
            json!({"path": 1, "reason_code": "r"}),
            "expected_path_or_pattern_string",
        ),
        (json!({"path": "/a"}), "missing_reason_code"),
        (
            json!({"path": "/a", "reason_code": ""}),
            "empty_reason_code",
        ),
        (
            json!({"path": "/a", "reason_code": 3}),
            "expected_reason_code_string",
        ),
        (
            json!({"path": "/a", "reason_code": "r", "access": "write"}),
            "invalid_access",
        ),
        (
            json!({"pattern": "/a/[", "reason_code": "r"}),
            "invalid_glob",
        ),
    ] {
        assert_eq!(err(json!({ k: [e] })), entry(k, 0, reason), "{reason}");
    }
    let ok = PolicyOptions::try_from(
        RawPolicyOptions::from_json(&json!({ k: [{"path": "/a", "reason_code": " docs "}] }))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        ok.outside_root_allowlist,
        vec![OutsideRootEntry {
            target: OutsideRootTarget::Path("/a".into()),
            reason_code: "docs".into(),
            access: ExceptionAccess::Read
        }]
    );
}

#[test]
fn normalizes_case_and_whitespace() {
    let o = PolicyOptions::try_from(RawPolicyOptions::from_json(&json!({"network_egress_policy": " Allow ", "network_allowed_schemes": [" HTTPS "], "protocol_allowlist": [" MCP"]})).unwrap()).unwrap();
    assert_eq!(o.network_egress_policy, EgressPolicy::Allow);
    assert_eq!(o.network_allowed_schemes, vec!["https"]);
    assert_eq!(o.protocol_allowlist, vec!["mcp"]);
}

#[test]
fn error_code_and_details() {
    let e = entry("network_allowlist", 2, "invalid_host");
    assert_eq!(e.code(), "invalid_runtime_opt");
    assert_eq!(
        e.details(),
        json!({"key": "network_allowlist", "reason": "invalid_entry", "details": {"index": 2, "reason": "invalid_host"}})
    );
    assert_eq!(e.details["reason"], json!("invalid_host"));
    assert_eq!(
        e.to_string(),
        "invalid runtime option `network_allowlist`: invalid_entry"
    );
}
