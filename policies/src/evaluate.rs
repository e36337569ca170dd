//! [`evaluate`]: the ordered checks of SPEC §4 steps 4–9 over one call — schema, env, tool
//! rules, network, sandbox paths, sensitive paths — first deny wins, nothing fails open.
//! [`explain`] renders the same decision as one line for `codeward policy explain`.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::decision::{Decision, MatchedRule, Outcome, RuleLayer, Subject, SubjectKind, short};
use crate::env::{check_env_payload, is_always_denied};
use crate::error::{EndpointDetail, PolicyError};
use crate::extract::{CandKind, Candidate, extract, nests_deeper_than};
use crate::paths::PathPass;
use crate::policy_set::PolicySet;
use crate::request::ToolRequest;
use crate::resolver::{DirMemo, PathResolver};
use crate::secrets::redact_str;

struct Deny {
    error: PolicyError,
    layer: RuleLayer,
    key: String,
    value: String,
    subject: Option<Subject>,
    detail: String,
}

fn subject(c: &Candidate, kind: SubjectKind, normalized: Option<String>) -> Subject {
    Subject {
        location: c.location.clone(),
        kind,
        raw: short(&redact_str(&c.raw), 256),
        normalized,
    }
}

fn tool_subject(name: &str) -> Subject {
    Subject {
        location: "tool".to_owned(),
        kind: SubjectKind::Tool,
        raw: name.to_owned(),
        normalized: None,
    }
}

/// The denial of arguments beyond the scan limits (depth, size, candidates, decodes).
fn limits_deny(tool: &str, error: PolicyError) -> Deny {
    Deny {
        error,
        layer: RuleLayer::Builtin,
        key: "builtin:argument_limits".to_owned(),
        value: "10000 candidates, 4 MiB, depth 64, 4 nested JSON decodes".to_owned(),
        subject: Some(tool_subject(tool)),
        detail: "has arguments beyond the scan limits".to_owned(),
    }
}

fn deny_decision(
    req: &ToolRequest<'_>,
    mut d: Deny,
    checked: usize,
    exceptions: Vec<String>,
) -> Decision {
    let code = d.error.code();
    d.error = d.error.redacted();
    d.detail = redact_str(&d.detail).into_owned();
    if let Some(n) = d.subject.as_mut().and_then(|s| s.normalized.as_mut()) {
        *n = short(&redact_str(n), 256);
    }
    let explain = match &d.subject {
        Some(s) if s.kind != SubjectKind::Tool => {
            format!("deny {code}: {} \"{}\" {}", s.location, s.raw, d.detail)
        }
        _ => format!("deny {code}: tool {} {}", req.tool.name(), d.detail),
    };
    let explain = one_line(&explain);
    Decision {
        decision: Outcome::Deny,
        reason_code: code,
        tool: req.tool.name().to_owned(),
        source: req.source,
        rule: Some(MatchedRule {
            layer: d.layer,
            key: d.key,
            value: d.value,
            origin: None,
        }),
        subject: d.subject,
        exceptions_used: exceptions,
        candidates_checked: checked,
        explain,
        details: d.error.details(),
        error: Some(d.error),
    }
}

/// `allow: tool <name>, <n> candidate(s) checked (<p> path, <u> network, <e> env); exceptions
/// used: <codes|none>` — built without `format!` (hot path).
fn allow_explain(
    name: &str,
    n: usize,
    paths: usize,
    nets: usize,
    envs: usize,
    exc: &[String],
) -> String {
    let mut s = String::with_capacity(96 + name.len());
    s.push_str("allow: tool ");
    s.push_str(name);
    s.push_str(", ");
    push_num(&mut s, n);
    s.push_str(" candidate(s) checked (");
    push_num(&mut s, paths);
    s.push_str(" path, ");
    push_num(&mut s, nets);
    s.push_str(" network, ");
    push_num(&mut s, envs);
    s.push_str(" env); exceptions used: ");
    if exc.is_empty() {
        s.push_str("none");
    } else {
        for (i, e) in exc.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(e);
        }
    }
    s
}

fn push_num(s: &mut String, mut n: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    s.push_str(std::str::from_utf8(buf.get(i..).unwrap_or_default()).unwrap_or("?"));
}

/// Escapes control characters so `explain` stays one line.
fn one_line(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn network_deny(c: &Candidate, e: PolicyError, set: &PolicySet) -> Deny {
    let kind = if c.kind == CandKind::Host {
        SubjectKind::Host
    } else {
        SubjectKind::Url
    };
    let (layer, key, value, normalized, detail) = match &e {
        PolicyError::NetworkProtocolDenied { scheme, .. } => (
            RuleLayer::Network,
            "network_allowed_schemes".to_owned(),
            set.opts.network_allowed_schemes.join(","),
            None,
            format!("uses scheme {scheme}, not in network_allowed_schemes"),
        ),
        PolicyError::NetworkEndpointDenied { host, detail } => {
            let (layer, key, value, text) = match detail {
                EndpointDetail::BlockedRange => (
                    RuleLayer::Builtin,
                    "builtin:blocked_ranges",
                    host.clone(),
                    format!(
                        "host {host} is in a blocked range and no IP/CIDR allowlist entry covers it"
                    ),
                ),
                EndpointDetail::NotInAllowlist => (
                    RuleLayer::Network,
                    "network_allowlist",
                    set.opts.network_allowlist.join(","),
                    format!("host {host} matches no network_allowlist entry"),
                ),
                EndpointDetail::InvalidHost => (
                    RuleLayer::Builtin,
                    "builtin:invalid_host",
                    host.clone(),
                    "has an empty or invalid host".to_owned(),
                ),
                EndpointDetail::AmbiguousAuthority => (
                    RuleLayer::Builtin,
                    "builtin:ambiguous_authority",
                    host.clone(),
                    "has `\\`, whitespace or control characters in its authority".to_owned(),
                ),
            };
            (layer, key.to_owned(), value, Some(host.clone()), text)
        }
        _ => (
            RuleLayer::Network,
            "network".to_owned(),
            String::new(),
            None,
            e.to_string(),
        ),
    };
    Deny {
        error: e.with_location(&c.location),
        layer,
        key,
        value,
        subject: Some(subject(c, kind, normalized)),
        detail,
    }
}

/// Nesting beyond which arguments are refused before schema validation: serde_json's own
/// parse limit, so only values built in Rust can reach it.
const MAX_ARG_NESTING: usize = 128;

/// Evaluates one call against the policy: SPEC §4 steps 4–9, strictest wins, default deny.
///
/// Path candidates are resolved through `resolver` (blocking I/O with [`crate::RealFs`]: run
/// it on a blocking pool).
pub fn evaluate(set: &PolicySet, req: &ToolRequest<'_>, resolver: &dyn PathResolver) -> Decision {
    let tool = req.tool;
    // Step 1 (args shape) is the runtime's; re-checked here so nothing fails open.
    if !req.args.is_object() {
        let d = Deny {
            error: PolicyError::InvalidToolCall {
                reason: "args_not_object".to_owned(),
            },
            layer: RuleLayer::Builtin,
            key: "builtin:args_not_object".to_owned(),
            value: String::new(),
            subject: Some(tool_subject(tool.name())),
            detail: "has arguments that are not an object".to_owned(),
        };
        return deny_decision(req, d, 0, Vec::new());
    }
    // Bounded before anything recurses into the arguments (parsed JSON never gets here).
    if nests_deeper_than(req.args, MAX_ARG_NESTING) {
        let error = PolicyError::InvalidToolCall {
            reason: "argument_too_complex".to_owned(),
        };
        return deny_decision(req, limits_deny(tool.name(), error), 0, Vec::new());
    }
    // Step 4: schema.
    if let Err(errors) = tool.validate(req.args) {
        let first = errors
            .first()
            .map(|e| format!("{}: {}", e.instance_path, e.message))
            .unwrap_or_default();
        let d = Deny {
            detail: format!("has {} schema error(s); first at {first}", errors.len()),
            error: PolicyError::InvalidToolArgs { errors },
            layer: RuleLayer::Builtin,
            key: "builtin:input_schema".to_owned(),
            value: String::new(),
            subject: Some(tool_subject(tool.name())),
        };
        return deny_decision(req, d, 0, Vec::new());
    }
    let cands = match extract(tool, req.args) {
        Ok(c) => c,
        Err(error) => return deny_decision(req, limits_deny(tool.name(), error), 0, Vec::new()),
    };
    let n = cands.len();
    let memo = DirMemo::new(resolver);
    match check_all(set, req, &memo, &cands) {
        Ok(exceptions) => {
            let (mut paths, mut nets, mut envs) = (0, 0, 0);
            for c in &cands {
                match c.kind {
                    CandKind::Path(_) => paths += 1,
                    CandKind::Url | CandKind::Host => nets += 1,
                    CandKind::Env => envs += 1,
                }
            }
            let explain = allow_explain(tool.name(), n, paths, nets, envs, &exceptions);
            Decision {
                decision: Outcome::Allow,
                reason_code: "allowed",
                tool: tool.name().to_owned(),
                source: req.source,
                rule: None,
                subject: None,
                explain,
                exceptions_used: exceptions,
                candidates_checked: n,
                error: None,
                details: json!({}),
            }
        }
        Err(b) => {
            let (d, exceptions) = *b;
            deny_decision(req, d, n, exceptions)
        }
    }
}

fn check_all(
    set: &PolicySet,
    req: &ToolRequest<'_>,
    resolver: &dyn PathResolver,
    cands: &[Candidate],
) -> Result<Vec<String>, Box<(Deny, Vec<String>)>> {
    let fail = |d: Deny| Box::new((d, Vec::new()));
    // Step 5: env.
    for c in cands.iter().filter(|c| c.kind == CandKind::Env) {
        let v = c.env.as_ref().unwrap_or(&Value::Null);
        if let Err(error) = check_env_payload(v, &c.location, &set.opts.tool_env_allowlist) {
            let (key, detail) = match &error {
                PolicyError::EnvVarsNotAllowed { keys } => {
                    let always: Vec<&str> = keys
                        .iter()
                        .map(String::as_str)
                        .filter(|k| is_always_denied(k))
                        .collect();
                    let key = if always.is_empty() {
                        "tool_env_allowlist"
                    } else {
                        "builtin:always_denied_env"
                    };
                    (
                        key,
                        format!(
                            "sets {} (always denied or not in tool_env_allowlist)",
                            keys.join(", ")
                        ),
                    )
                }
                other => ("builtin:env_payload", other.to_string()),
            };
            let raw = match v {
                Value::Object(m) => m.keys().cloned().collect::<Vec<_>>().join(","),
                other => short(&other.to_string(), 64),
            };
            let subj = Subject {
                location: c.location.clone(),
                kind: SubjectKind::Env,
                raw: short(&raw, 256),
                normalized: None,
            };
            return Err(fail(Deny {
                value: set.opts.tool_env_allowlist.join(","),
                key: key.to_owned(),
                error,
                layer: RuleLayer::Env,
                subject: Some(subj),
                detail,
            }));
        }
    }
    // Step 6: tool rules.
    if let Err(t) = set.tool_rules(req) {
        let detail = match &t.error {
            PolicyError::ToolNotExposed { .. } => {
                "was not offered to the model in this step".to_owned()
            }
            _ => format!("is denied by {} \"{}\"", t.key, t.value),
        };
        let layer = if t.key.starts_with("builtin:") {
            RuleLayer::Builtin
        } else {
            RuleLayer::ToolRules
        };
        let layer = if t.key == "builtin:not_in_allow_tools" {
            RuleLayer::ToolRules
        } else {
            layer
        };
        return Err(fail(Deny {
            error: t.error,
            layer,
            key: t.key,
            value: t.value,
            subject: Some(tool_subject(req.tool.name())),
            detail,
        }));
    }
    // Step 7: network.
    if req.tool.is_network_capable() {
        let mut nets = cands
            .iter()
            .filter(|c| matches!(c.kind, CandKind::Url | CandKind::Host))
            .peekable();
        if !set.egress_allowed() {
            if !req.os_network_enforced || nets.peek().is_some() {
                let subj = nets.peek().map(|c| {
                    subject(
                        c,
                        if c.kind == CandKind::Host {
                            SubjectKind::Host
                        } else {
                            SubjectKind::Url
                        },
                        None,
                    )
                });
                return Err(fail(Deny {
                    error: PolicyError::NetworkDenied,
                    layer: RuleLayer::Network,
                    key: "network_egress_policy".to_owned(),
                    value: "deny".to_owned(),
                    detail: "is network-capable and network_egress_policy is deny".to_owned(),
                    subject: subj,
                }));
            }
        } else {
            for c in nets {
                let r = if c.kind == CandKind::Host {
                    set.check_host_str(&c.raw)
                } else {
                    set.check_url(&c.raw)
                };
                if let Err(e) = r {
                    return Err(fail(network_deny(c, e, set)));
                }
            }
        }
    }
    // Step 8: sandbox paths. A command's `cwd` is checked first: command tokens join it.
    let command = req.tool.is_command() || req.scratch_dir.is_some();
    let mut cwd: Option<PathBuf> = None;
    let mut exceptions: Vec<String> = Vec::new();
    let mut passes: Vec<(&Candidate, PathPass)> = Vec::new();
    let paths = cands.iter().filter_map(|c| match c.kind {
        CandKind::Path(a) => Some((c, a)),
        _ => None,
    });
    let cwd_first = paths
        .clone()
        .filter(|(c, _)| command && c.location == "/args/cwd");
    let rest = paths.filter(|(c, _)| !(command && c.location == "/args/cwd"));
    for (c, access) in cwd_first.chain(rest) {
        let base = if c.command { cwd.as_deref() } else { None };
        match set.sandbox_check(&c.raw, access, base, req.scratch_dir, command, resolver) {
            Ok(pass) => {
                for e in &pass.exceptions {
                    if !exceptions.contains(e) {
                        exceptions.push(e.clone());
                    }
                }
                if command && c.location == "/args/cwd" && cwd.is_none() {
                    cwd = Some(pass.forms.resolved_raw.clone());
                }
                passes.push((c, pass));
            }
            Err(pd) => {
                let layer = match pd.rule_layer {
                    "builtin" => RuleLayer::Builtin,
                    _ => RuleLayer::Sandbox,
                };
                let d = Deny {
                    error: pd.error.with_location(&c.location),
                    layer,
                    key: pd.rule_key,
                    value: pd.rule_value,
                    subject: Some(subject(c, SubjectKind::Path, pd.normalized)),
                    detail: pd.explain,
                };
                return Err(Box::new((d, exceptions)));
            }
        }
    }
    // Step 9: sensitive paths, on every form (also for exceptions).
    for (c, pass) in &passes {
        if let Some((path, pattern, key)) = set.sensitive_forms_keyed(&pass.forms) {
            let d = Deny {
                detail: format!("resolves to {path}, which matches sensitive pattern {pattern}"),
                error: PolicyError::SensitivePathDenied {
                    path: path.clone(),
                    pattern: pattern.clone(),
                },
                layer: RuleLayer::Sensitive,
                key,
                value: pattern,
                subject: Some(subject(
                    c,
                    SubjectKind::Path,
                    Some(pass.forms.resolved_raw.display().to_string()),
                )),
            };
            return Err(Box::new((d, exceptions)));
        }
    }
    Ok(exceptions)
}

/// One-line explanation of [`evaluate`]'s decision (what `codeward policy explain` prints).
pub fn explain(set: &PolicySet, req: &ToolRequest<'_>, resolver: &dyn PathResolver) -> String {
    evaluate(set, req, resolver).explain
}

#[cfg(test)]
mod tests;
