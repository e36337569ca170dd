//! Decision records (SPEC §5.1): outcome, reason code, matched rule, subject, exceptions,
//! candidates checked and the one-line `explain`. Ids and timestamps are added by the runtime.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::error::PolicyError;
use crate::request::CallSource;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every check passed.
    Allow,
    /// A check denied (the first deny wins).
    Deny,
}

/// The layer of the rule that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleLayer {
    /// `allow_tools`, `deny_tools`, conversation scope, offered tools.
    ToolRules,
    /// Env passthrough.
    Env,
    /// Egress policy, allowlist, schemes.
    Network,
    /// Sandbox paths.
    Sandbox,
    /// Sensitive paths.
    Sensitive,
    /// Built-in rules (blocked ranges, state dir, schema, limits).
    Builtin,
}

/// The rule that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedRule {
    /// Layer.
    pub layer: RuleLayer,
    /// Key, e.g. `deny_tools[1]`, `builtin:blocked_ranges`, `network_allowlist`.
    pub key: String,
    /// The rule's value (pattern, entry, range).
    pub value: String,
    /// Option layer the rule came from; filled in by the runtime.
    pub origin: Option<String>,
}

/// What a subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// The tool itself.
    Tool,
    /// An env payload.
    Env,
    /// A URL.
    Url,
    /// A host.
    Host,
    /// A path.
    Path,
}

/// The value the decision is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    /// JSON pointer (`/args/…`) or `tool`.
    pub location: String,
    /// Kind.
    pub kind: SubjectKind,
    /// Raw value, redacted, ≤256 chars.
    pub raw: String,
    /// Normalized form (resolved path, host), when computed.
    pub normalized: Option<String>,
}

/// The outcome of [`crate::evaluate`] for one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Allow or deny.
    pub decision: Outcome,
    /// `allowed` or the error code.
    pub reason_code: &'static str,
    /// Tool name.
    pub tool: String,
    /// Who issued the call.
    pub source: CallSource,
    /// The rule that denied (`None` on allow).
    pub rule: Option<MatchedRule>,
    /// The value that denied (`None` on allow or tool-level denials without arguments).
    pub subject: Option<Subject>,
    /// Reason codes of `outside_root_allowlist` entries used, in order.
    pub exceptions_used: Vec<String>,
    /// Candidates (paths, URLs, hosts, env payloads) found in the arguments.
    pub candidates_checked: usize,
    /// One line, e.g. `deny outside_root: /args/paths/1 "../../etc/passwd" resolves to …`.
    pub explain: String,
    /// The error the call fails with (`None` on allow).
    #[serde(skip)]
    pub error: Option<PolicyError>,
    /// `error.details()`, `{}` on allow.
    pub details: Value,
}

impl Decision {
    /// Whether the call may proceed.
    pub fn is_allowed(&self) -> bool {
        self.decision == Outcome::Allow
    }

    /// `Ok(())` on allow, the error on deny.
    pub fn into_result(self) -> Result<(), PolicyError> {
        match (self.decision, self.error) {
            (Outcome::Allow, _) => Ok(()),
            (Outcome::Deny, Some(e)) => Err(e),
            (Outcome::Deny, None) => Err(PolicyError::Denied {
                rule: "builtin:default_deny".to_owned(),
            }),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain)
    }
}

/// Cuts `s` to at most `max` chars, appending `…` when cut.
pub(crate) fn short(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or(s)),
    }
}
