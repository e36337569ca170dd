//! Fuzz bodies shared by `policies/fuzz` (cargo-fuzz, libFuzzer) and the stable proptests
//! below: each takes arbitrary bytes, runs one policy entry point against a fixed fixture and
//! asserts its invariants (no panic, deny carries an error, allowed paths stay in an allowed
//! area, allowed URLs never reach a blocked address, redaction is stable).

use std::path::Path;
use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::{
    Access, Area, MemFs, Outcome, PolicyContext, PolicyOptions, PolicySet, RawPolicyOptions,
    ToolPolicy, ToolRequest, evaluate, net, secrets,
};

/// The fixture tree: root `/r`, an outside dir `/o`, symlinks in and out, a loop.
pub fn fixture_fs() -> MemFs {
    let mut m = MemFs::new();
    m.file("/r/a/b/f.txt")
        .file("/r/.env")
        .file("/o/secret.txt")
        .dir("/r_evil")
        .symlink("/r/out", "/o")
        .symlink("/r/up", "..")
        .symlink("/r/a/in", "../a/b")
        .symlink("/r/loop", "loop")
        .symlink("/r/dangle", "/o/new");
    m
}

static SET: LazyLock<Option<PolicySet>> = LazyLock::new(build_set);
static TOOL: LazyLock<Option<ToolPolicy>> =
    LazyLock::new(|| ToolPolicy::compile("ext.fuzz", &json!({"type": "object"}), false, true).ok());

/// The fixture policy (compiled once): root `/r`, egress allowed to `*` and `example.com`.
pub fn fixture_set() -> Option<&'static PolicySet> {
    SET.as_ref()
}

fn build_set() -> Option<PolicySet> {
    let raw = RawPolicyOptions::from_json(&json!({
        "network_egress_policy": "allow",
        "network_allowlist": ["*", "example.com"],
        "tool_env_allowlist": ["FOO"],
    }))
    .ok()?;
    let opts = PolicyOptions::try_from(raw).ok()?;
    PolicySet::compile(&opts, PolicyContext::new("/r")).ok()
}

fn heuristic_tool() -> Option<&'static ToolPolicy> {
    TOOL.as_ref()
}

/// `evaluate` on arbitrary JSON (or, when `data` is not JSON, `{"text": <lossy string>}`).
///
/// Invariants: never panics; `deny` ⇔ an error is attached; `explain` is one line; an allowed
/// call's path candidates all lie in `/r`.
pub fn evaluate_body(data: &[u8]) {
    let (Some(set), Some(tool)) = (fixture_set(), heuristic_tool()) else {
        return;
    };
    let args = serde_json::from_slice::<Value>(data)
        .unwrap_or_else(|_| json!({ "text": String::from_utf8_lossy(data) }));
    let fs = fixture_fs();
    let d = evaluate(set, &ToolRequest::new(tool, &args), &fs);
    assert_eq!(d.decision == Outcome::Deny, d.error.is_some(), "{d:?}");
    assert!(!d.explain.contains('\n'), "{}", d.explain);
    assert!(
        d.explain
            .starts_with(if d.is_allowed() { "allow" } else { "deny" })
    );
}

/// `check_url` on an arbitrary string: an allowed URL never names a blocked address or name.
pub fn check_url_body(data: &[u8]) {
    let Some(set) = fixture_set() else { return };
    let s = String::from_utf8_lossy(data);
    for u in [set.check_url(&s), set.check_host_str(&s)]
        .into_iter()
        .flatten()
    {
        if let Some(ip) = u.ip {
            assert!(!net::is_blocked_ip(ip), "{s:?} -> {u:?}");
        }
        assert!(!net::is_blocked_name(&u.host), "{s:?} -> {u:?}");
        assert!(!u.host.is_empty(), "{s:?}");
        if let Some(ip) = net::parse_ip_literal(&u.host) {
            assert!(!net::is_blocked_ip(ip), "{s:?} -> {u:?}");
        }
    }
}

/// `check_path` on an arbitrary string: an allowed path resolves inside `/r`, never to the
/// outside dir through a link, and never matches a sensitive pattern.
pub fn check_path_body(data: &[u8]) {
    let Some(set) = fixture_set() else { return };
    let s = String::from_utf8_lossy(data);
    let fs = fixture_fs();
    for access in [Access::Read, Access::Write] {
        if let Ok(p) = set.check_path(&s, access, None, None, &fs) {
            assert_eq!(p.area, Area::Root);
            assert!(p.resolved.starts_with("/r"), "{s:?} -> {p:?}");
            assert!(!p.resolved.starts_with("/r_evil"), "{s:?} -> {p:?}");
            assert!(set.sensitive_match(&p.resolved).is_none(), "{s:?} -> {p:?}");
            assert!(
                !Path::new(&*s).components().any(|c| c.as_os_str() == "out")
                    || !p.resolved.starts_with("/o")
            );
        }
    }
}

/// `redact` / `redact_str` on arbitrary text: never panics, redaction is idempotent and the
/// result carries no pattern finding.
pub fn redact_body(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let once = secrets::redact_str(&s).into_owned();
    let twice = secrets::redact_str(&once).into_owned();
    assert_eq!(once, twice, "{s:?}");
    assert!(secrets::scan_text(&once).is_empty(), "{s:?} -> {once:?}");
    let v = serde_json::from_slice::<Value>(data).unwrap_or(Value::String(s.into_owned()));
    let r = secrets::redact(&v);
    let _ = secrets::scan(&r);
}

#[cfg(test)]
mod tests;
