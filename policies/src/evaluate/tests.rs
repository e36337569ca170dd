//! Unit tests of `evaluate`: one or more per reason code, decision records and explain lines.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};

use crate::*;

pub(crate) fn fs() -> MemFs {
    let mut m = MemFs::new();
    m.file("/srv/app/src/main.rs")
        .file("/srv/app/.env")
        .file("/srv/app/.env.example")
        .file("/etc/passwd")
        .file("/srv/app_evil/x")
        .symlink("/srv/app/link_out", "/etc")
        .symlink("/srv/app/loop1", "loop2")
        .symlink("/srv/app/loop2", "loop1")
        .symlink("/srv/app/dangling", "/outside/new")
        .symlink("/srv/app/rel_in", "src")
        .dir("/srv/app/.codeward/state")
        .dir("/srv/app/.codeward/tmp/call-a")
        .dir("/srv/app/.codeward/tmp/call-b")
        .dir("/data/shared")
        .file("/data/shared/readme.txt")
        .file("/data/shared/id_rsa");
    m
}

pub(crate) fn ctx() -> PolicyContext {
    PolicyContext {
        canonical_root: "/srv/app".into(),
        given_root: "/srv/app".into(),
        state_dir: Some("/srv/app/.codeward/state".into()),
        scratch_base: Some("/srv/app/.codeward/tmp".into()),
    }
}

pub(crate) fn set_with(raw: Value) -> PolicySet {
    let opts = PolicyOptions::try_from(RawPolicyOptions::from_json(&raw).unwrap()).unwrap();
    PolicySet::compile(&opts, ctx()).unwrap()
}

pub(crate) fn fs_read() -> ToolPolicy {
    ToolPolicy::compile(
        "fs.read",
        &json!({"type": "object", "x-codeward-complete": true, "additionalProperties": false,
                "properties": {"path": {"type": "string", "x-codeward": "path"}}, "required": ["path"]}),
        true,
        false,
    )
    .unwrap()
}

pub(crate) fn fs_write() -> ToolPolicy {
    ToolPolicy::compile(
        "fs.write",
        &json!({"type": "object", "x-codeward-complete": true, "additionalProperties": false,
                "properties": {"path": {"type": "string", "x-codeward": "path", "x-codeward-access": "write"},
                               "content": {"type": "string"}}, "required": ["path", "content"]}),
        true,
        false,
    )
    .unwrap()
}

pub(crate) fn command_run() -> ToolPolicy {
    ToolPolicy::compile(
        "command.run",
        &json!({"type": "object", "x-codeward-complete": true, "additionalProperties": false,
                "properties": {
                    "argv": {"type": "array", "items": {"type": "string"}, "x-codeward": "command"},
                    "command": {"type": "string", "x-codeward": "command"},
                    "cwd": {"type": "string", "x-codeward": "path"},
                    "env": {"x-codeward": "env"}}}),
        true,
        true,
    )
    .unwrap()
}

pub(crate) fn http_fetch() -> ToolPolicy {
    ToolPolicy::compile(
        "http.fetch",
        &json!({"type": "object", "x-codeward-complete": true,
                "properties": {"url": {"type": "string", "x-codeward": "url"}, "body": {"type": "string"}}}),
        true,
        true,
    )
    .unwrap()
}

/// An untrusted provider tool: heuristic deep scan.
pub(crate) fn ext(network: bool) -> ToolPolicy {
    ToolPolicy::compile(
        "ext.tool",
        &json!({"type": "object", "x-codeward-complete": true}),
        false,
        network,
    )
    .unwrap()
}

fn run(set: &PolicySet, tool: &ToolPolicy, args: Value) -> Decision {
    evaluate(set, &ToolRequest::new(tool, &args), &fs())
}

fn code(d: &Decision) -> &'static str {
    d.reason_code
}

#[test]
fn allows_in_root_read_with_record() {
    let set = set_with(json!({}));
    let d = run(&set, &fs_read(), json!({"path": "src/main.rs"}));
    assert_eq!(d.decision, Outcome::Allow, "{}", d.explain);
    assert_eq!(d.reason_code, "allowed");
    assert_eq!(d.candidates_checked, 1);
    assert_eq!(d.rule, None);
    assert_eq!(
        d.explain,
        "allow: tool fs.read, 1 candidate(s) checked (1 path, 0 network, 0 env); exceptions used: none"
    );
}

#[test]
fn outside_root_explain_matches_spec_example() {
    let set = set_with(json!({}));
    let d = run(
        &set,
        &ext(false),
        json!({"paths": ["src/main.rs", "../../etc/passwd"]}),
    );
    assert_eq!(
        d.explain,
        "deny outside_root: /args/paths/1 \"../../etc/passwd\" resolves to /etc/passwd, outside root /srv/app; no outside_root_allowlist entry matches"
    );
    assert_eq!(
        d.rule,
        Some(MatchedRule {
            layer: RuleLayer::Sandbox,
            key: "builtin:outside_root".into(),
            value: "/srv/app".into(),
            origin: None
        })
    );
    assert_eq!(
        d.subject,
        Some(Subject {
            location: "/args/paths/1".into(),
            kind: SubjectKind::Path,
            raw: "../../etc/passwd".into(),
            normalized: Some("/etc/passwd".into())
        })
    );
    assert_eq!(
        d.details,
        json!({"path": "/etc/passwd", "location": "/args/paths/1"})
    );
    assert_eq!(d.candidates_checked, 2);
}

#[test]
fn args_not_object_is_invalid_tool_call() {
    let set = set_with(json!({}));
    let d = run(&set, &ext(false), json!([1]));
    assert_eq!(code(&d), "invalid_tool_call");
    assert_eq!(d.details, json!({"reason": "args_not_object"}));
}

#[test]
fn too_deep_is_argument_too_complex() {
    let set = set_with(json!({}));
    let mut v = json!("x");
    for _ in 0..70 {
        v = json!({ "a": v });
    }
    let d = run(&set, &ext(false), v);
    assert_eq!(code(&d), "invalid_tool_call");
    assert_eq!(d.details, json!({"reason": "argument_too_complex"}));
}

#[test]
fn five_nested_json_decodes_are_too_complex() {
    let set = set_with(json!({}));
    let mut s = json!({"path": "src/main.rs"}).to_string();
    for _ in 0..5 {
        s = json!({ "inner": s }).to_string();
    }
    let d = run(&set, &ext(false), json!({ "payload": s }));
    assert_eq!(d.details, json!({"reason": "argument_too_complex"}));
}

#[test]
fn too_many_candidates_is_argument_too_complex() {
    let set = set_with(json!({}));
    let paths: Vec<String> = (0..10_001).map(|i| format!("src/{i}")).collect();
    let d = run(&set, &ext(false), json!({ "paths": paths }));
    assert_eq!(d.details, json!({"reason": "argument_too_complex"}));
}

#[test]
fn schema_errors_are_invalid_tool_args() {
    let set = set_with(json!({}));
    let d = run(&set, &fs_read(), json!({"path": 5, "extra": true}));
    assert_eq!(code(&d), "invalid_tool_args");
    let Some(PolicyError::InvalidToolArgs { errors }) = &d.error else {
        panic!("{d:?}")
    };
    assert!(
        errors.iter().any(|e| e.instance_path == "/path"),
        "{errors:?}"
    );
    assert!(errors.len() <= 20);
}

#[test]
fn schema_errors_are_capped_at_twenty() {
    let props: serde_json::Map<String, Value> = (0..30)
        .map(|i| (format!("p{i}"), json!({"type": "string"})))
        .collect();
    let tool = ToolPolicy::compile(
        "t",
        &json!({"type": "object", "properties": props}),
        true,
        false,
    )
    .unwrap();
    let args: serde_json::Map<String, Value> =
        (0..30).map(|i| (format!("p{i}"), json!(1))).collect();
    let set = set_with(json!({}));
    let d = run(&set, &tool, Value::Object(args));
    let Some(PolicyError::InvalidToolArgs { errors }) = &d.error else {
        panic!("{d:?}")
    };
    assert_eq!(errors.len(), 20);
}

#[test]
fn remote_refs_are_not_fetched() {
    let r = ToolPolicy::compile(
        "t",
        &json!({"$ref": "https://example.com/schema.json"}),
        true,
        false,
    );
    assert!(r.is_err());
}

#[test]
fn env_payload_reasons() {
    let set = set_with(json!({"tool_env_allowlist": ["FOO"]}));
    for (env, reason) in [
        (json!("x"), "expected_object"),
        (json!({"FOO": 1}), "non_string_value"),
        (json!({"1FOO": "x"}), "invalid_name"),
        (json!({" FOO": "x"}), "invalid_name"),
    ] {
        let d = run(&set, &ext(false), json!({ "env": env }));
        assert_eq!(code(&d), "invalid_env_payload", "{env}");
        assert_eq!(
            d.details,
            json!({"reason": reason, "location": "/args/env"})
        );
    }
}

#[test]
fn env_vars_not_allowed_sorted_and_always_denied_first() {
    let set = set_with(json!({"tool_env_allowlist": ["FOO"]}));
    let d = run(
        &set,
        &command_run(),
        json!({"argv": ["true"], "env": {"ZED": "1", "LD_PRELOAD": "x", "FOO": "ok", "http_proxy": "p"}}),
    );
    assert_eq!(code(&d), "env_vars_not_allowed");
    assert_eq!(
        d.details,
        json!({"keys": ["LD_PRELOAD", "ZED", "http_proxy"]})
    );
    assert_eq!(
        d.rule.as_ref().map(|r| r.key.as_str()),
        Some("builtin:always_denied_env")
    );
    let ok = run(
        &set,
        &command_run(),
        json!({"argv": ["true"], "env": {"FOO": "ok"}}),
    );
    assert_eq!(
        ok.decision,
        Outcome::Deny,
        "egress deny hides network-capable command tools"
    );
    assert_eq!(code(&ok), "network_denied");
}

#[test]
fn deny_tools_wins_and_names_the_rule() {
    let set = set_with(json!({"allow_tools": ["fs.*"], "deny_tools": ["x", "fs.re*"]}));
    let d = run(&set, &fs_read(), json!({"path": "src/main.rs"}));
    assert_eq!(code(&d), "denied");
    assert_eq!(d.details, json!({"rule": "deny_tools[1]"}));
    assert_eq!(
        d.explain,
        "deny denied: tool fs.read is denied by deny_tools[1] \"fs.re*\""
    );
}

#[test]
fn allow_tools_list_and_empty_list() {
    let set = set_with(json!({"allow_tools": ["http.*"]}));
    let d = run(&set, &fs_read(), json!({"path": "src/main.rs"}));
    assert_eq!(d.details, json!({"rule": "builtin:not_in_allow_tools"}));
    let set = set_with(json!({"allow_tools": []}));
    assert_eq!(code(&run(&set, &fs_read(), json!({"path": "a"}))), "denied");
    let set = set_with(json!({"allow_tools": null}));
    assert_eq!(
        code(&run(&set, &fs_read(), json!({"path": "a"}))),
        "allowed"
    );
}

#[test]
fn conversation_allow_tools_narrows() {
    let set = set_with(json!({}));
    let tool = fs_read();
    let args = json!({"path": "a"});
    let conv = vec!["http.fetch".to_owned()];
    let mut req = ToolRequest::new(&tool, &args);
    req.conversation_allow_tools = Some(&conv);
    let d = evaluate(&set, &req, &fs());
    assert_eq!(
        d.details,
        json!({"rule": "builtin:not_in_conversation_allow_tools"})
    );
}

#[test]
fn subagent_templates_allowlist_gates_spawn() {
    let set = set_with(json!({"subagent_templates_allowlist": ["reviewer"]}));
    let tool =
        ToolPolicy::compile("agent.spawn.coder", &json!({"type": "object"}), true, false).unwrap();
    let d = run(&set, &tool, json!({}));
    assert_eq!(
        d.details,
        json!({"rule": "builtin:not_in_subagent_templates_allowlist"})
    );
}

#[test]
fn model_calls_must_name_an_offered_tool() {
    let set = set_with(json!({}));
    let tool = fs_read();
    let args = json!({"path": "a"});
    let mut req = ToolRequest::new(&tool, &args);
    req.source = CallSource::Model;
    assert_eq!(evaluate(&set, &req, &fs()).reason_code, "tool_not_exposed");
    let offered = vec!["fs.read".to_owned()];
    req.offered_tools = Some(&offered);
    assert_eq!(evaluate(&set, &req, &fs()).reason_code, "allowed");
}

#[test]
fn protocol_allowlist() {
    let set = set_with(json!({"protocol_allowlist": [" MCP "]}));
    assert_eq!(set.protocol_allowed("mcp"), Ok(()));
    assert_eq!(set.protocol_allowed(" Mcp"), Ok(()));
    let e = set.protocol_allowed("a2a").unwrap_err();
    assert_eq!(e.code(), "protocol_denied");
    assert_eq!(
        set_with(json!({"protocol_allowlist": ["*"]})).protocol_allowed("a2a"),
        Ok(())
    );
    assert!(
        set_with(json!({"protocol_allowlist": []}))
            .protocol_allowed("mcp")
            .is_err()
    );
}

#[test]
fn egress_deny_is_network_denied() {
    let set = set_with(json!({}));
    let d = run(&set, &http_fetch(), json!({"url": "https://example.com"}));
    assert_eq!(code(&d), "network_denied");
    assert_eq!(
        d.rule.as_ref().map(|r| r.key.as_str()),
        Some("network_egress_policy")
    );
}

#[test]
fn os_enforced_commands_pass_egress_deny_without_urls() {
    let set = set_with(json!({}));
    let tool = command_run();
    let args = json!({"argv": ["ls", "src"]});
    let mut req = ToolRequest::new(&tool, &args);
    req.os_network_enforced = true;
    assert_eq!(evaluate(&set, &req, &fs()).reason_code, "allowed");
    let args = json!({"argv": ["curl", "https://example.com"]});
    let mut req = ToolRequest::new(&tool, &args);
    req.os_network_enforced = true;
    assert_eq!(evaluate(&set, &req, &fs()).reason_code, "network_denied");
}

#[test]
fn network_protocol_denied() {
    let set = set_with(json!({"network_egress_policy": "ALLOW", "network_allowlist": ["*"]}));
    let d = run(&set, &http_fetch(), json!({"url": "ftp://example.com/x"}));
    assert_eq!(code(&d), "network_protocol_denied");
    assert_eq!(d.details, json!({"scheme": "ftp", "location": "/args/url"}));
}

#[test]
fn non_http_schemes_in_url_locations_are_protocol_denied() {
    let set = set_with(json!({"network_egress_policy": "allow", "network_allowlist": ["*"]}));
    for url in [
        "file:///etc/passwd",
        "gopher://x/",
        "mailto:a@example.com",
        "data:text/plain,hi",
        "ftp://example.com/",
    ] {
        let d = run(&set, &http_fetch(), json!({ "url": url }));
        assert_eq!(code(&d), "network_protocol_denied", "{url}: {}", d.explain);
    }
    assert_eq!(
        run(&set, &ext(true), json!({"host": "example.com:8080"})).reason_code,
        "allowed"
    );
}

#[test]
fn every_policy_error_has_code_and_details() {
    let all = [
        (
            PolicyError::InvalidToolCall {
                reason: "invalid_name".into(),
            },
            "invalid_tool_call",
            json!({"reason": "invalid_name"}),
        ),
        (
            PolicyError::UnknownTool { name: "x".into() },
            "unknown_tool",
            json!({"name": "x"}),
        ),
        (
            PolicyError::InvalidToolArgs { errors: vec![] },
            "invalid_tool_args",
            json!({"errors": []}),
        ),
        (
            PolicyError::InvalidEnvPayload {
                reason: "expected_object".into(),
                location: "/args/env".into(),
            },
            "invalid_env_payload",
            json!({"reason": "expected_object", "location": "/args/env"}),
        ),
        (
            PolicyError::EnvVarsNotAllowed {
                keys: vec!["A".into()],
            },
            "env_vars_not_allowed",
            json!({"keys": ["A"]}),
        ),
        (
            PolicyError::Denied {
                rule: "deny_tools[0]".into(),
            },
            "denied",
            json!({"rule": "deny_tools[0]"}),
        ),
        (
            PolicyError::ToolNotExposed { name: "x".into() },
            "tool_not_exposed",
            json!({"name": "x"}),
        ),
        (
            PolicyError::ProtocolDenied {
                protocol: "a2a".into(),
            },
            "protocol_denied",
            json!({"protocol": "a2a"}),
        ),
        (PolicyError::NetworkDenied, "network_denied", json!({})),
        (
            PolicyError::NetworkProtocolDenied {
                scheme: "ftp".into(),
                location: "/args/url".into(),
            },
            "network_protocol_denied",
            json!({"scheme": "ftp", "location": "/args/url"}),
        ),
        (
            PolicyError::NetworkEndpointDenied {
                host: "h".into(),
                detail: EndpointDetail::InvalidHost,
            },
            "network_endpoint_denied",
            json!({"host": "h", "detail": "invalid_host"}),
        ),
        (
            PolicyError::OutsideRoot {
                path: "/x".into(),
                location: "/args/p".into(),
            },
            "outside_root",
            json!({"path": "/x", "location": "/args/p"}),
        ),
        (
            PolicyError::InvalidPath {
                reason: InvalidPathReason::TooLong,
            },
            "invalid_path",
            json!({"reason": "too_long"}),
        ),
        (
            PolicyError::SensitivePathDenied {
                path: ".env".into(),
                pattern: ".env".into(),
            },
            "sensitive_path_denied",
            json!({"path": ".env", "pattern": ".env"}),
        ),
    ];
    for (e, c, d) in all {
        assert_eq!(e.code(), c);
        assert_eq!(e.details(), d);
        let msg = e.to_string();
        assert!(
            msg.starts_with(|c: char| c.is_lowercase()),
            "lowercase: {msg}"
        );
        assert!(!msg.ends_with('.'));
    }
}

#[test]
fn symlink_hop_limit_is_forty() {
    let set = set_with(json!({}));
    let mut m = fs();
    for i in 0..41 {
        m.symlink(format!("/srv/app/h{i}"), format!("h{}", i + 1));
    }
    m.file("/srv/app/h41");
    let tool = fs_read();
    let ok = json!({"path": "h1"});
    assert_eq!(
        evaluate(&set, &ToolRequest::new(&tool, &ok), &m).reason_code,
        "allowed"
    );
    let too_many = json!({"path": "h0"});
    let d = evaluate(&set, &ToolRequest::new(&tool, &too_many), &m);
    assert_eq!(d.details, json!({"reason": "symlink_loop"}));
}

#[test]
fn network_endpoint_denied_details() {
    let set =
        set_with(json!({"network_egress_policy": "allow", "network_allowlist": ["example.com"]}));
    for (url, detail) in [
        ("http://127.1/", "blocked_range"),
        ("http://169.254.169.254/latest", "blocked_range"),
        ("http://localhost:8080/", "blocked_range"),
        ("http://a.localhost/", "blocked_range"),
        ("http://metadata.google.internal./", "blocked_range"),
        ("https://evilexample.com/", "not_in_allowlist"),
        ("https://example.com.evil.test/", "not_in_allowlist"),
        ("http://evil.com\\@example.com/", "ambiguous_authority"),
        ("http://exa mple.com/", "ambiguous_authority"),
        ("http:///x", "invalid_host"),
    ] {
        let d = run(&set, &http_fetch(), json!({ "url": url }));
        assert_eq!(code(&d), "network_endpoint_denied", "{url}: {}", d.explain);
        assert_eq!(d.details["detail"], json!(detail), "{url}: {}", d.explain);
    }
    let ok = run(
        &set,
        &http_fetch(),
        json!({"url": "https://API.Example.com./v1"}),
    );
    assert_eq!(ok.reason_code, "allowed", "{}", ok.explain);
    let d = run(&set, &http_fetch(), json!({"url": "http://127.1/"}));
    assert_eq!(
        d.rule.as_ref().map(|r| r.key.as_str()),
        Some("builtin:blocked_ranges")
    );
}

#[test]
fn invalid_path_reasons() {
    let set = set_with(json!({}));
    let long = "a/".repeat(2100);
    let comp = "b".repeat(256);
    for (p, reason) in [
        ("src/\0x", "nul_byte"),
        (long.as_str(), "too_long"),
        (comp.as_str(), "too_long"),
        ("loop1/x", "symlink_loop"),
    ] {
        let d = run(&set, &fs_read(), json!({ "path": p }));
        assert_eq!(code(&d), "invalid_path", "{p}");
        assert_eq!(d.details, json!({ "reason": reason }));
    }
}

#[test]
fn unresolvable_prefix_denies() {
    let set = set_with(json!({}));
    let mut m = fs();
    m.deny("/srv/app/secret_dir");
    let tool = fs_read();
    let args = json!({"path": "secret_dir/x"});
    let d = evaluate(&set, &ToolRequest::new(&tool, &args), &m);
    assert_eq!(d.details, json!({"reason": "unresolvable"}));
}

#[test]
fn symlink_escapes_are_outside_root() {
    let set = set_with(json!({}));
    for p in [
        "link_out/passwd",
        "/srv/app/link_out/../passwd",
        "dangling",
        "/srv/app_evil/x",
        "/srv/app/../app_evil/x",
    ] {
        let d = run(&set, &fs_read(), json!({ "path": p }));
        assert_eq!(code(&d), "outside_root", "{p}: {}", d.explain);
    }
    // kernel order: link_out/.. is / (lexically it would stay in the root)
    let d = run(&set, &fs_read(), json!({"path": "link_out/../etc/passwd"}));
    assert_eq!(code(&d), "outside_root", "{}", d.explain);
    // and back into the root through the link is fine in both orders
    let d = run(
        &set,
        &fs_read(),
        json!({"path": "link_out/../srv/app/src/main.rs"}),
    );
    assert_eq!(code(&d), "allowed", "{}", d.explain);
    let ok = run(&set, &fs_read(), json!({"path": "rel_in/main.rs"}));
    assert_eq!(ok.reason_code, "allowed", "{}", ok.explain);
}

#[test]
fn sensitive_paths_denied_case_insensitive_and_allowlisted() {
    let set = set_with(json!({}));
    for p in [
        ".env",
        ".ENV",
        "sub/.env/x",
        "deploy/prod.pem",
        "home/.ssh/config",
        "x/.aws/credentials",
        ".bash_history",
        "x/.config/gh/hosts.yml",
    ] {
        let d = run(&set, &fs_read(), json!({ "path": p }));
        assert_eq!(code(&d), "sensitive_path_denied", "{p}: {}", d.explain);
    }
    let d = run(&set, &fs_read(), json!({"path": ".env"}));
    assert_eq!(d.details, json!({"path": ".env", "pattern": ".env"}));
    assert_eq!(
        d.rule.as_ref().map(|r| r.key.as_str()),
        Some("builtin:sensitive_paths")
    );
    for p in [
        ".env.example",
        "src/main.rs",
        "environment.md",
        "keys/readme",
    ] {
        let d = run(&set, &fs_read(), json!({ "path": p }));
        assert_eq!(code(&d), "allowed", "{p}: {}", d.explain);
    }
}

#[test]
fn user_denylist_adds_with_index_key() {
    let set = set_with(json!({"sensitive_path_denylist": ["secrets/", "/top.txt"]}));
    let d = run(&set, &fs_read(), json!({"path": "a/secrets/b"}));
    assert_eq!(
        d.rule.as_ref().map(|r| r.key.as_str()),
        Some("sensitive_path_denylist[0]")
    );
    assert_eq!(
        code(&run(&set, &fs_read(), json!({"path": "top.txt"}))),
        "sensitive_path_denied"
    );
    assert_eq!(
        code(&run(&set, &fs_read(), json!({"path": "a/top.txt"}))),
        "allowed"
    );
}

#[test]
fn state_dir_and_other_scratch_unreachable() {
    let set = set_with(json!({}));
    let d = run(
        &set,
        &fs_read(),
        json!({"path": ".codeward/state/journal.db"}),
    );
    assert_eq!(code(&d), "sensitive_path_denied");
    assert_eq!(
        d.rule.as_ref().map(|r| r.key.as_str()),
        Some("builtin:state_dir")
    );
    let tool = command_run();
    let args = json!({"argv": ["cat", "/srv/app/.codeward/tmp/call-b/out"]});
    let mut req = ToolRequest::new(&tool, &args);
    req.scratch_dir = Some(std::path::Path::new("/srv/app/.codeward/tmp/call-a"));
    req.os_network_enforced = true;
    let d = evaluate(&set, &req, &fs());
    assert_eq!(d.details["pattern"], json!("scratch_dir"), "{}", d.explain);
    let args = json!({"argv": ["cat", "/srv/app/.codeward/tmp/call-a/out", "/usr/bin/env"]});
    let mut req = ToolRequest::new(&tool, &args);
    req.scratch_dir = Some(std::path::Path::new("/srv/app/.codeward/tmp/call-a"));
    req.os_network_enforced = true;
    assert_eq!(evaluate(&set, &req, &fs()).reason_code, "allowed");
}

#[test]
fn exceptions_read_and_write_access() {
    let set = set_with(json!({"outside_root_allowlist": [
        {"path": "/data/shared", "reason_code": "shared_docs"},
    ]}));
    let d = run(&set, &fs_read(), json!({"path": "/data/shared/readme.txt"}));
    assert_eq!(d.reason_code, "allowed", "{}", d.explain);
    assert_eq!(d.exceptions_used, vec!["shared_docs".to_owned()]);
    let w = run(
        &set,
        &fs_write(),
        json!({"path": "/data/shared/readme.txt", "content": ""}),
    );
    assert_eq!(w.reason_code, "outside_root", "{}", w.explain);
    assert!(w.explain.contains("read-only"), "{}", w.explain);
    // still goes through §5.5
    let s = run(&set, &fs_read(), json!({"path": "/data/shared/id_rsa"}));
    assert_eq!(s.reason_code, "sensitive_path_denied");
    let set = set_with(json!({"outside_root_allowlist": [
        {"pattern": "/data/*/readme.txt", "reason_code": "docs", "access": "read_write"},
    ]}));
    assert_eq!(
        run(
            &set,
            &fs_write(),
            json!({"path": "/data/shared/readme.txt", "content": ""})
        )
        .reason_code,
        "allowed"
    );
    assert_eq!(
        run(
            &set,
            &fs_read(),
            json!({"path": "/data/shared/x/readme.txt"})
        )
        .reason_code,
        "outside_root"
    );
}

#[test]
fn complete_schema_ignores_content_markers() {
    let set = set_with(json!({}));
    let d = run(
        &set,
        &fs_write(),
        json!({"path": "notes.md", "content": "path=../../x and /etc/passwd http://127.0.0.1"}),
    );
    assert_eq!(d.reason_code, "allowed", "{}", d.explain);
    assert_eq!(d.candidates_checked, 1);
}

#[test]
fn heuristic_scan_finds_markers_in_text() {
    let set = set_with(json!({}));
    for (args, loc) in [
        (
            json!({"note": "please use path=../../etc/passwd now"}),
            "/args/note",
        ),
        (json!({"note": "cat /etc/passwd"}), "/args/note"),
        (
            json!({"options": {"target": {"x": "/etc"}}}),
            "/args/options/target/x",
        ),
        (
            json!({"cfg": "{\"file\": \"../../../etc/passwd\"}"}),
            "/args/cfg/file",
        ),
        (json!({"q": "file: '/etc/shadow'"}), "/args/q"),
    ] {
        let d = run(&set, &ext(false), args.clone());
        assert_eq!(d.reason_code, "outside_root", "{args}: {}", d.explain);
        assert_eq!(d.subject.as_ref().map(|s| s.location.as_str()), Some(loc));
    }
}

#[test]
fn heuristic_urls_checked_for_network_tools() {
    let set =
        set_with(json!({"network_egress_policy": "allow", "network_allowlist": ["example.com"]}));
    let d = run(&set, &ext(true), json!({"endpoint": "10.0.0.1:8080"}));
    assert_eq!(d.details["detail"], json!("blocked_range"), "{}", d.explain);
    let d = run(
        &set,
        &ext(true),
        json!({"text": "fetch http://0x7f000001/admin please"}),
    );
    assert_eq!(d.details["detail"], json!("blocked_range"), "{}", d.explain);
    let d = run(&set, &ext(true), json!({"hostName": "api.example.com"}));
    assert_eq!(d.reason_code, "allowed", "{}", d.explain);
}

#[test]
fn command_tokens_join_cwd_and_read_paths() {
    let set = set_with(json!({}));
    let tool = command_run();
    let check = |args: Value| {
        let mut req = ToolRequest::new(&tool, &args);
        req.os_network_enforced = true;
        evaluate(&set, &req, &fs())
    };
    assert_eq!(
        check(json!({"command": "cat src/main.rs | grep x", "cwd": "."})).reason_code,
        "allowed"
    );
    assert_eq!(
        check(json!({"argv": ["/bin/sh", "-c", "ls"], "cwd": "src"})).reason_code,
        "allowed"
    );
    let d = check(json!({"argv": ["cat", "../../etc/shadow"], "cwd": "src"}));
    assert_eq!(d.reason_code, "outside_root", "{}", d.explain);
    let d = check(json!({"command": "cp x --output=../../../tmp/y", "cwd": "src"}));
    assert_eq!(d.reason_code, "outside_root", "{}", d.explain);
    let d = check(json!({"argv": ["cat", "/home/u/x"]}));
    assert_eq!(d.reason_code, "outside_root");
    let d = check(json!({"command": "cat .env"}));
    assert_eq!(d.reason_code, "sensitive_path_denied");
}

#[test]
fn raw_is_redacted_in_records() {
    let set = set_with(json!({}));
    let d = run(
        &set,
        &ext(false),
        json!({"path": "/etc/x?token=ghp_abcdefghijklmnopqrstuvwxyz0123"}),
    );
    let raw = &d.subject.as_ref().unwrap().raw;
    assert!(!raw.contains("ghp_abcdefghij"), "{raw}");
    assert!(!d.explain.contains("ghp_abcdefghij"), "{}", d.explain);
}

#[test]
fn check_path_api() {
    let set = set_with(json!({}));
    let m = fs();
    let ok = set
        .check_path("src/../src/main.rs", Access::Read, None, None, &m)
        .unwrap();
    assert_eq!(
        ok,
        CheckedPath {
            resolved: "/srv/app/src/main.rs".into(),
            area: Area::Root
        }
    );
    assert_eq!(
        set.check_path("../app_evil/x", Access::Read, None, None, &m)
            .unwrap_err()
            .code(),
        "outside_root"
    );
    assert_eq!(
        set.check_path(".env", Access::Read, None, None, &m)
            .unwrap_err()
            .code(),
        "sensitive_path_denied"
    );
    assert_eq!(
        set.sensitive_match(std::path::Path::new("/srv/app/a/.ENV")),
        Some(".env".to_owned())
    );
    assert_eq!(
        set.sensitive_match(std::path::Path::new("/srv/app/.env.example")),
        None
    );
}

#[test]
fn explain_fn_and_display_agree() {
    let set = set_with(json!({}));
    let tool = fs_read();
    let args = json!({"path": "/etc/passwd"});
    let req = ToolRequest::new(&tool, &args);
    let d = evaluate(&set, &req, &fs());
    assert_eq!(explain(&set, &req, &fs()), d.to_string());
}

#[test]
fn recursive_refs_compile_quickly_and_types_are_shareable() {
    let schema = json!({
        "$defs": {"n": {"type": "object", "properties": {
            "a": {"$ref": "#/$defs/n"}, "b": {"$ref": "#/$defs/n"}, "c": {"$ref": "#/$defs/n"},
            "path": {"type": "string", "x-codeward": "path"}}}},
        "$ref": "#/$defs/n"
    });
    let tool = ToolPolicy::compile("rec", &schema, true, false).unwrap();
    assert!(tool.has_declared_locations());
    fn shareable<T: Send + Sync>() {}
    shareable::<PolicySet>();
    shareable::<ToolPolicy>();
    shareable::<crate::secrets::Redactor>();
}
