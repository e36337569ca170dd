//! The **P** keys (and `state_dir`): validation through the policy crate, the typed → JSON
//! form, and the narrowing-only merge of an untrusted `codeward.toml` (SPEC §3.1).
//!
//! Validation is delegated to `codeward_policies` one key at a time (a single-key
//! [`RawPolicyOptions`] through [`PolicyOptions::try_from`]), so the reasons are the policy
//! crate's and the runtime can interleave **P** keys with the others in SPEC table order.
//!
//! Narrowing, per key (`A` = the layer below the file, `F` = the file):
//!
//! | Key | Effective |
//! |---|---|
//! | `allow_tools`, `subagent_templates_allowlist` | null ∩ F = F; A ∩ null = A; else the entries of either list covered by an entry of the other (a literal name covered by a pattern, or equal) |
//! | `protocol_allowlist` | as above, with `*` covering every protocol |
//! | `network_allowlist` | F entries equal to an A entry after parsing (§5.6 normal form) |
//! | `network_allowed_schemes`, `sensitive_path_allowlist`, `tool_env_allowlist`, `tool_env_inherit`, `command_read_paths` | F entries equal to an A entry (validated form) |
//! | `outside_root_allowlist` | F entries whose target equals an A entry's and whose access is no wider; A's reason code is kept |
//! | `deny_tools`, `sensitive_path_denylist` | A ∪ F |
//! | `network_egress_policy` | `deny` if either is `deny` |
//! | `redact_tool_results`, `require_os_sandbox` | A ∨ F (safer = true) |
//!
//! INVARIANT: every narrowed allow-list admits a subset of what `A` admits (every kept entry is
//! covered by an `A` entry), so a repository file can never widen an operator's policy.
//! `command_read_paths` deliberately uses equality, not path prefixes: a sub-path of a read path
//! may be a symlink leading anywhere, and Landlock follows it when the rule is added.

use codeward_policies::{
    EgressPolicy, ExceptionAccess, InvalidRuntimeOpt, OutsideRootEntry, PolicyOptions,
    RawPolicyOptions, net::AllowEntry, tool_pattern_matches,
};
use serde_json::{Value, json};

use super::keys::outside_root_entry_value;

/// Validates `value` as the policy key `key` (alone); the result holds defaults elsewhere.
pub(crate) fn check_policy_key(
    key: &str,
    value: &Value,
) -> Result<PolicyOptions, InvalidRuntimeOpt> {
    let mut map = serde_json::Map::new();
    map.insert(key.to_owned(), value.clone());
    let raw = RawPolicyOptions::from_json(&Value::Object(map))?;
    PolicyOptions::try_from(raw)
}

/// The option (JSON) form of one policy key of `o`.
pub(crate) fn policy_value(key: &str, o: &PolicyOptions) -> Value {
    match key {
        "state_dir" => json!(o.state_dir),
        "allow_tools" => json!(o.allow_tools),
        "deny_tools" => json!(o.deny_tools),
        "network_egress_policy" => json!(egress_str(o.network_egress_policy)),
        "network_allowlist" => json!(o.network_allowlist),
        "network_allowed_schemes" => json!(o.network_allowed_schemes),
        "sensitive_path_denylist" => json!(o.sensitive_path_denylist),
        "sensitive_path_allowlist" => json!(o.sensitive_path_allowlist),
        "outside_root_allowlist" => Value::Array(
            o.outside_root_allowlist
                .iter()
                .map(outside_root_entry_value)
                .collect(),
        ),
        "tool_env_allowlist" => json!(o.tool_env_allowlist),
        "tool_env_inherit" => json!(o.tool_env_inherit),
        "protocol_allowlist" => json!(o.protocol_allowlist),
        "redact_tool_results" => json!(o.redact_tool_results),
        "require_os_sandbox" => json!(o.require_os_sandbox),
        "command_read_paths" => json!(
            o.command_read_paths
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        ),
        "subagent_templates_allowlist" => json!(o.subagent_templates_allowlist),
        _ => Value::Null,
    }
}

/// `allow` / `deny`.
pub(crate) fn egress_str(e: EgressPolicy) -> &'static str {
    match e {
        EgressPolicy::Allow => "allow",
        EgressPolicy::Deny => "deny",
    }
}

fn push_unique<T: PartialEq>(out: &mut Vec<T>, item: T) {
    if !out.contains(&item) {
        out.push(item);
    }
}

/// File entries equal to some entry below (file order, deduplicated).
pub(crate) fn intersect_eq<T: PartialEq + Clone>(below: &[T], file: &[T]) -> Vec<T> {
    let mut out = Vec::new();
    for f in file.iter().filter(|f| below.contains(f)) {
        push_unique(&mut out, f.clone());
    }
    out
}

/// Entries of either list covered by an entry of the other (`covers(outer, inner)`); file
/// entries first. Each result entry is covered by an entry of `below` and one of `file`.
pub(crate) fn intersect_covered(
    below: &[String],
    file: &[String],
    covers: impl Fn(&str, &str) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for f in file {
        if below.iter().any(|a| covers(a, f)) {
            push_unique(&mut out, f.clone());
        }
    }
    for a in below {
        if file.iter().any(|f| covers(f, a)) {
            push_unique(&mut out, a.clone());
        }
    }
    out
}

/// `pattern` admits every name `inner` admits. Sound because a pattern's literal characters
/// never match `inner`'s `*`, so each `*` of `inner` lies in a span absorbed by a `*` of
/// `outer`, and widening that span keeps the match.
pub(crate) fn tool_pattern_covers(outer: &str, inner: &str) -> bool {
    tool_pattern_matches(outer, inner)
}

fn protocol_covers(outer: &str, inner: &str) -> bool {
    outer == inner || outer == "*"
}

fn union(below: &[String], file: &[String]) -> Vec<String> {
    let mut out = below.to_vec();
    for f in file {
        push_unique(&mut out, f.clone());
    }
    out
}

fn narrow_nullable(below: &Option<Vec<String>>, file: &Option<Vec<String>>) -> Option<Vec<String>> {
    match (below, file) {
        (None, f) => f.clone(),
        (a, None) => a.clone(),
        (Some(a), Some(f)) => Some(intersect_covered(a, f, tool_pattern_covers)),
    }
}

fn access_rank(a: ExceptionAccess) -> u8 {
    match a {
        ExceptionAccess::Read => 0,
        ExceptionAccess::ReadWrite => 1,
    }
}

fn narrow_outside(below: &[OutsideRootEntry], file: &[OutsideRootEntry]) -> Vec<OutsideRootEntry> {
    let mut out = Vec::new();
    for f in file {
        if let Some(a) = below
            .iter()
            .find(|a| a.target == f.target && access_rank(f.access) <= access_rank(a.access))
        {
            push_unique(
                &mut out,
                OutsideRootEntry {
                    target: f.target.clone(),
                    reason_code: a.reason_code.clone(),
                    access: f.access,
                },
            );
        }
    }
    out
}

fn narrow_hosts(below: &[String], file: &[String]) -> Vec<String> {
    let parsed: Vec<AllowEntry> = below.iter().filter_map(|a| AllowEntry::parse(a)).collect();
    let mut out = Vec::new();
    for f in file {
        if AllowEntry::parse(f).is_some_and(|e| parsed.contains(&e)) {
            push_unique(&mut out, f.clone());
        }
    }
    out
}

/// `below` with policy key `key` narrowed by `file` (both validated).
pub(crate) fn narrow(key: &str, below: &PolicyOptions, file: &PolicyOptions) -> PolicyOptions {
    let mut o = below.clone();
    match key {
        "allow_tools" => o.allow_tools = narrow_nullable(&below.allow_tools, &file.allow_tools),
        "subagent_templates_allowlist" => {
            o.subagent_templates_allowlist = narrow_nullable(
                &below.subagent_templates_allowlist,
                &file.subagent_templates_allowlist,
            );
        }
        "deny_tools" => o.deny_tools = union(&below.deny_tools, &file.deny_tools),
        "sensitive_path_denylist" => {
            o.sensitive_path_denylist = union(
                &below.sensitive_path_denylist,
                &file.sensitive_path_denylist,
            );
        }
        "network_egress_policy" if file.network_egress_policy == EgressPolicy::Deny => {
            o.network_egress_policy = EgressPolicy::Deny;
        }
        "network_allowlist" => {
            o.network_allowlist = narrow_hosts(&below.network_allowlist, &file.network_allowlist);
        }
        "network_allowed_schemes" => {
            o.network_allowed_schemes = intersect_eq(
                &below.network_allowed_schemes,
                &file.network_allowed_schemes,
            );
        }
        "sensitive_path_allowlist" => {
            o.sensitive_path_allowlist = intersect_eq(
                &below.sensitive_path_allowlist,
                &file.sensitive_path_allowlist,
            );
        }
        "outside_root_allowlist" => {
            o.outside_root_allowlist =
                narrow_outside(&below.outside_root_allowlist, &file.outside_root_allowlist);
        }
        "tool_env_allowlist" => {
            o.tool_env_allowlist =
                intersect_eq(&below.tool_env_allowlist, &file.tool_env_allowlist);
        }
        "tool_env_inherit" => {
            o.tool_env_inherit = intersect_eq(&below.tool_env_inherit, &file.tool_env_inherit);
        }
        "protocol_allowlist" => {
            o.protocol_allowlist = intersect_covered(
                &below.protocol_allowlist,
                &file.protocol_allowlist,
                protocol_covers,
            );
        }
        "redact_tool_results" => o.redact_tool_results |= file.redact_tool_results,
        "require_os_sandbox" => o.require_os_sandbox |= file.require_os_sandbox,
        "command_read_paths" => {
            o.command_read_paths =
                intersect_eq(&below.command_read_paths, &file.command_read_paths);
        }
        // `state_dir` is not a narrowing key; unknown keys change nothing.
        _ => {}
    }
    o
}
