//! SPEC §5.6–5.7: `http.fetch` under egress `deny` (refused and hidden from `list_tools`), under
//! `allow` with an allowlist (loopback, private, link-local, metadata and every IP notation are
//! blocked ranges; hosts outside the allowlist are refused; schemes are checked), and env
//! passthrough for `command.run` (names outside `tool_env_allowlist`, always-denied names,
//! malformed payloads, and allowed values that really reach the command).
//!
//! No test here opens a network connection: every URL is refused before connecting, and
//! allow decisions are checked with `explain_tool_call`.

use codeward::ProjectOptions;
use codeward_tests::{TestProject, call};
use serde_json::json;

fn tool_names(tools: &[codeward::ToolSpec]) -> Vec<&str> {
    tools.iter().map(|t| t.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_deny_refuses_http_fetch_and_hides_it() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let tools = p.engine.list_tools(&p.id).await.unwrap();
    assert!(
        !tool_names(&tools).contains(&"http.fetch"),
        "{:?}",
        tool_names(&tools)
    );
    // Commands stay listed: the OS blocks their TCP connects (Landlock ABI ≥ 4 here).
    let sandbox = p.diagnostics().await["os_sandbox"].clone();
    if sandbox["net"] == true {
        assert!(tool_names(&tools).contains(&"command.run"));
    }
    for url in ["https://example.com/", "http://127.0.0.1:1/"] {
        let f = p.fails("http.fetch", json!({"url": url})).await;
        assert_eq!(f.code(), "network_denied", "{url}");
        p.wait_event_of("security.network_denied", &f.correlation_id)
            .await;
        p.wait_event_of("policy.denied", &f.correlation_id).await;
        let d = p.wait_decision(&f.tool_call_id).await;
        assert_eq!(d["rule"]["layer"], "network", "{d}");
    }
    // A command that tries to connect anyway is stopped by the OS, not just by the policy.
    if sandbox["net"] == true {
        // A listener that would accept the connection if the OS let it through.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");
        let ok = p
            .ok("command.run", json!({"argv": ["bash", "-c", script]}))
            .await;
        assert!(
            !ok.result["stdout"].as_str().unwrap().contains("connected"),
            "{}",
            ok.result
        );
        assert!(
            ok.result["stderr"].as_str().unwrap().contains("denied"),
            "{}",
            ok.result
        );
    }
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_allow_still_blocks_loopback_private_metadata_in_every_notation() {
    let p = TestProject::start(
        ProjectOptions::default()
            .network_egress_policy("allow")
            .network_allowlist(["*"]),
    )
    .await;
    let tools = p.engine.list_tools(&p.id).await.unwrap();
    assert!(tool_names(&tools).contains(&"http.fetch"));
    let diag = p.diagnostics().await;
    assert!(
        diag["policy"]["warnings"].to_string().contains('*'),
        "a `*` allowlist is flagged: {}",
        diag["policy"]["warnings"]
    );
    for url in [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/admin",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://017700000001/",
        "http://[::1]/",
        "http://[::]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://user:pw@127.0.0.1/",
        "http://example.com@169.254.169.254/",
        "http://%31%32%37.0.0.1/",
        "http://224.0.0.1/",
    ] {
        let f = p.fails("http.fetch", json!({"url": url})).await;
        assert_eq!(
            f.code(),
            "network_endpoint_denied",
            "{url}: {}",
            f.error.to_json()
        );
        assert_eq!(
            f.error.details()["detail"],
            "blocked_range",
            "{url}: {}",
            f.error.to_json()
        );
        p.wait_event_of("security.network_denied", &f.correlation_id)
            .await;
    }
    // Ambiguous authorities and bad schemes.
    for (url, code, detail) in [
        (
            "http://exa\\mple.com/",
            "network_endpoint_denied",
            Some("ambiguous_authority"),
        ),
        (
            "http://exa mple.com/",
            "network_endpoint_denied",
            Some("ambiguous_authority"),
        ),
        ("ftp://example.com/f", "network_protocol_denied", None),
        ("file:///etc/passwd", "network_protocol_denied", None),
        ("gopher://example.com/", "network_protocol_denied", None),
    ] {
        let f = p.fails("http.fetch", json!({"url": url})).await;
        assert!(
            f.code() == code || (url.starts_with("file:") && f.code() == "outside_root"),
            "{url}: {}",
            f.error.to_json()
        );
        if let Some(detail) = detail {
            assert_eq!(f.error.details()["detail"], detail, "{url}");
        }
    }
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allowlist_matches_at_label_boundaries_only() {
    let p = TestProject::start(
        ProjectOptions::default()
            .network_egress_policy("allow")
            .network_allowlist(["example.com", "=exact.test"]),
    )
    .await;
    let explain = |url: &'static str| {
        let p = &p;
        async move {
            p.engine
                .explain_tool_call(&p.id, call("http.fetch", json!({"url": url})))
                .await
                .unwrap()
        }
    };
    for url in [
        "https://example.com/",
        "https://api.example.com/v1",
        "https://EXAMPLE.com./",
        "https://exact.test/",
    ] {
        let d = explain(url).await;
        assert_eq!(d.decision, "allow", "{url}: {}", d.explain);
    }
    for url in [
        "https://evilexample.com/",
        "https://example.com.evil.test/",
        "https://sub.exact.test/",
        "https://example.org/",
    ] {
        let d = explain(url).await;
        assert_eq!(d.decision, "deny", "{url}");
        assert_eq!(d.reason_code, "network_endpoint_denied", "{url}");
        let f = p.fails("http.fetch", json!({"url": url})).await;
        assert_eq!(f.error.details()["detail"], "not_in_allowlist", "{url}");
    }
    // The allowlist never admits a blocked range.
    let f = p
        .fails("http.fetch", json!({"url": "http://127.0.0.1/"}))
        .await;
    assert_eq!(f.error.details()["detail"], "blocked_range");
    // explain runs steps 1-9 only: nothing was recorded for the explained calls.
    let events = p.recent_events().await;
    let allowed = events
        .iter()
        .filter(|e| e["event"] == "policy.allowed")
        .count();
    assert_eq!(allowed, 0, "explain must not record decisions: {events:?}");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_vars_outside_the_allowlist_and_always_denied_names_are_refused() {
    let p = TestProject::start(ProjectOptions::default().tool_env_allowlist(["MY_FLAG"])).await;
    // Not allow-listed.
    let f = p
        .fails(
            "command.run",
            json!({"argv": ["true"], "env": {"OTHER": "1", "AAA": "2"}}),
        )
        .await;
    assert_eq!(f.code(), "env_vars_not_allowed");
    assert_eq!(f.error.details()["keys"], json!(["AAA", "OTHER"]), "sorted");
    let ev = p
        .wait_event_of("security.env_denied", &f.correlation_id)
        .await;
    assert_eq!(ev["tool"], "command.run");
    p.wait_event_of("policy.denied", &f.correlation_id).await;
    // Always denied, whatever the allowlist says, case-insensitively.
    for name in [
        "LD_PRELOAD",
        "ld_preload",
        "LD_LIBRARY_PATH",
        "PATH",
        "HOME",
        "BASH_ENV",
        "PYTHONPATH",
        "NODE_OPTIONS",
        "GIT_SSH_COMMAND",
        "HTTPS_PROXY",
        "DYLD_INSERT_LIBRARIES",
    ] {
        let f = p
            .fails(
                "command.run",
                json!({"argv": ["true"], "env": {name: "/tmp/evil.so", "MY_FLAG": "1"}}),
            )
            .await;
        assert_eq!(f.code(), "env_vars_not_allowed", "{name}");
        assert_eq!(f.error.details()["keys"], json!([name]), "{name}");
        p.wait_event_of("security.env_denied", &f.correlation_id)
            .await;
    }
    // The decision names the env layer.
    let d = p.wait_decision(&f.tool_call_id).await;
    assert_eq!(d["rule"]["layer"], "env", "{d}");
    // An allowed value is applied to the command.
    let ok = p
        .ok(
            "command.run",
            json!({"argv": ["sh", "-c", "printf %s \"$MY_FLAG\""], "env": {"MY_FLAG": "on-and-up"}}),
        )
        .await;
    assert_eq!(ok.result["stdout"], "on-and-up");
    // The command's env is cleared: codeward's own env does not leak in.
    let ok = p.ok("command.run", json!({"argv": ["env"]})).await;
    let env = ok.result["stdout"].as_str().unwrap();
    assert!(!env.contains("CARGO"), "{env}");
    assert!(env.contains("CODEWARD_PROJECT_ID="), "{env}");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_env_payloads_are_invalid_env_payload() {
    let p = TestProject::start(ProjectOptions::default().tool_env_allowlist(["MY_FLAG"])).await;
    // Provider tools without a complete schema: any `env`/`environment`/`env_vars` key.
    for (args, reason) in [
        (json!({"env": "MY_FLAG=1"}), "expected_object"),
        (
            json!({"nested": {"environment": {"MY_FLAG": 1}}}),
            "non_string_value",
        ),
        (json!({"env_vars": {"BAD-NAME": "x"}}), "invalid_name"),
        (json!({"env": {" MY_FLAG": "x"}}), "invalid_name"),
    ] {
        let f = p.fails("test.echo", args.clone()).await;
        assert_eq!(
            f.code(),
            "invalid_env_payload",
            "{args}: {}",
            f.error.to_json()
        );
        assert_eq!(f.error.details()["reason"], reason, "{args}");
        p.wait_event_of("security.env_denied", &f.correlation_id)
            .await;
    }
    let f = p
        .fails("test.echo", json!({"deep": {"env": {"LD_PRELOAD": "x"}}}))
        .await;
    assert_eq!(f.code(), "env_vars_not_allowed");
    p.ok("test.echo", json!({"env": {"MY_FLAG": "1"}})).await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_capable_provider_tool_is_hidden_under_egress_deny() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let tools = p.engine.list_tools(&p.id).await.unwrap();
    assert!(
        !tool_names(&tools).contains(&"test.net"),
        "{:?}",
        tool_names(&tools)
    );
    // With a URL argument the call is refused.
    let f = p
        .fails("test.net", json!({"endpoint": "https://example.com/"}))
        .await;
    assert_eq!(f.code(), "network_denied");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_capable_provider_tool_is_refused_under_egress_deny() {
    let p = TestProject::start(ProjectOptions::default()).await;
    // In-process code is not under Landlock: the OS exemption of command tools must not apply.
    let f = p.fails("test.net", json!({"target_name": "example"})).await;
    assert_eq!(f.code(), "network_denied");
    p.engine.shutdown().await.unwrap();
}
