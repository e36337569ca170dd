//! Typed list entries and enums of the non-policy keys: [`SubagentTemplate`] (SPEC §7.4),
//! [`AlertRouteOption`] (§8.5), [`JournalSync`] and [`JournalOnCorruption`] (§12), with the
//! parsers that turn one JSON entry into a typed value or an `invalid_entry{index, reason}`.
//!
//! Entry details always carry `index` and `reason`; a bad field adds `field`, a bad item of a
//! list field adds `item` (its index), an unknown sink adds `sink`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use codeward_policies::EgressPolicy;

use super::error::Result;
use super::policy_keys::check_policy_key;
use super::validate::{
    self, Checked, Fail, MAX_DURATION_MS, list_of_strings, opt_string, positive_int,
    valid_event_pattern, valid_slug,
};

/// One sub-agent template (SPEC §7.4); every field is enforced by the spawn tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubagentTemplate {
    /// Slug `[a-z0-9][a-z0-9_-]*` (≤64), unique in the list; the tool is
    /// `agent.spawn.<template_id>`.
    pub template_id: String,
    /// Human description shown in the tool spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// System prompt of the child conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Model of the child conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tool names / `*` patterns the child may use (∩ parent scope); `[]` = none.
    #[serde(default)]
    pub allowed_tools: Vec<String>,
    /// `deny` forces the child's egress to `deny`.
    #[serde(default)]
    pub network_policy: EgressPolicy,
    /// Env names the child may pass (∩ the project's `tool_env_allowlist`).
    #[serde(default)]
    pub env_allowlist: Vec<String>,
    /// Upper bound of the child's TTL (≥1000).
    #[serde(default = "default_template_ttl_ms")]
    pub ttl_ms: u64,
    /// Live children of this template per owner conversation (≥1).
    #[serde(default = "default_max_children")]
    pub max_children_per_conversation: u32,
    /// The child must be running within this time (≥1).
    #[serde(default = "default_spawn_timeout_ms")]
    pub spawn_timeout_ms: u64,
}

fn default_template_ttl_ms() -> u64 {
    300_000
}
fn default_max_children() -> u32 {
    3
}
fn default_spawn_timeout_ms() -> u64 {
    30_000
}

impl SubagentTemplate {
    /// A template with the SPEC defaults: no tools, egress `deny`, no env, TTL 300000 ms, 3
    /// children, spawn timeout 30000 ms.
    pub fn new(template_id: impl Into<String>) -> Self {
        Self {
            template_id: template_id.into(),
            description: None,
            system_prompt: None,
            model: None,
            allowed_tools: Vec::new(),
            network_policy: EgressPolicy::Deny,
            env_allowlist: Vec::new(),
            ttl_ms: default_template_ttl_ms(),
            max_children_per_conversation: default_max_children(),
            spawn_timeout_ms: default_spawn_timeout_ms(),
        }
    }

    /// The option (map) form.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

const TEMPLATE_FIELDS: &[&str] = &[
    "template_id",
    "description",
    "system_prompt",
    "model",
    "allowed_tools",
    "network_policy",
    "env_allowlist",
    "ttl_ms",
    "max_children_per_conversation",
    "spawn_timeout_ms",
];

fn field_fail(f: Fail, field: &str) -> Fail {
    f.with("field", json!(field))
}

fn unknown_field(map: &Map<String, Value>, known: &[&str]) -> Checked<()> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(field_fail(Fail::new("unknown_option"), k)),
        None => Ok(()),
    }
}

/// Validates a string list through the policy crate's rule for `policy_key` (tool patterns or
/// env names) and reports its entry reason as a field failure.
fn policy_list(v: &Value, field: &str, policy_key: &str) -> Checked<Vec<String>> {
    let items = list_of_strings(v).map_err(|f| field_fail(f, field))?;
    if let Err(e) = check_policy_key(policy_key, v) {
        let reason = e
            .details
            .get("reason")
            .and_then(Value::as_str)
            .and_then(|r| ENTRY_REASONS.iter().copied().find(|k| *k == r))
            .unwrap_or("invalid_value");
        let mut f = field_fail(Fail::new(reason), field);
        if let Some(i) = e.details.get("index") {
            f = f.with("item", i.clone());
        }
        return Err(f);
    }
    Ok(items)
}

/// Entry reasons the policy crate reports for tool patterns and env names.
const ENTRY_REASONS: &[&str] = &[
    "invalid_tool_pattern",
    "invalid_env_name",
    "env_var_always_denied",
];

fn template(v: &Value) -> Checked<SubagentTemplate> {
    let Value::Object(map) = v else {
        return Err(Fail::new("expected_map_entry"));
    };
    unknown_field(map, TEMPLATE_FIELDS)?;
    let template_id = match map.get("template_id") {
        None => return Err(Fail::new("missing_template_id")),
        Some(Value::String(s)) if valid_slug(s) => s.clone(),
        Some(Value::String(_)) => return Err(Fail::new("invalid_template_id")),
        Some(_) => return Err(field_fail(Fail::new("expected_string"), "template_id")),
    };
    let mut t = SubagentTemplate::new(template_id);
    let opt_str = |field: &str| -> Checked<Option<String>> {
        match map.get(field) {
            None => Ok(None),
            Some(v) => opt_string(v)
                .map(|s| s.map(str::to_owned))
                .map_err(|f| field_fail(f, field)),
        }
    };
    t.description = opt_str("description")?;
    t.system_prompt = opt_str("system_prompt")?;
    t.model = opt_str("model")?;
    if let Some(v) = map.get("allowed_tools") {
        t.allowed_tools = policy_list(v, "allowed_tools", "allow_tools")?;
    }
    if let Some(v) = map.get("network_policy") {
        t.network_policy = match validate::one_of(v, &["allow", "deny"]) {
            Ok("allow") => EgressPolicy::Allow,
            Ok(_) => EgressPolicy::Deny,
            Err(_) => {
                return Err(field_fail(
                    Fail::new("expected_allow_or_deny"),
                    "network_policy",
                ));
            }
        };
    }
    if let Some(v) = map.get("env_allowlist") {
        t.env_allowlist = policy_list(v, "env_allowlist", "tool_env_allowlist")?;
    }
    if let Some(v) = map.get("ttl_ms") {
        t.ttl_ms = positive_int(v, 1000, MAX_DURATION_MS).map_err(|f| field_fail(f, "ttl_ms"))?;
    }
    if let Some(v) = map.get("max_children_per_conversation") {
        t.max_children_per_conversation = positive_int(v, 1, u64::from(u32::MAX))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .map_err(|f| field_fail(f, "max_children_per_conversation"))?;
    }
    if let Some(v) = map.get("spawn_timeout_ms") {
        t.spawn_timeout_ms =
            positive_int(v, 1, MAX_DURATION_MS).map_err(|f| field_fail(f, "spawn_timeout_ms"))?;
    }
    Ok(t)
}

/// Parses `subagent_templates` (`expected_list_of_maps`; entries `invalid_entry{index,
/// reason}`, duplicates `duplicate_template_id`). Nothing is dropped silently.
pub(crate) fn subagent_templates(key: &str, v: &Value) -> Result<Vec<SubagentTemplate>> {
    let Value::Array(items) = v else {
        return Err(Fail::new("expected_list_of_maps").at(key));
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let t = template(item).map_err(|f| f.at_entry(key, i))?;
        if !seen.insert(t.template_id.clone()) {
            return Err(Fail::new("duplicate_template_id")
                .with("template_id", json!(t.template_id))
                .at_entry(key, i));
        }
        out.push(t);
    }
    Ok(out)
}

/// Alert severity (SPEC §8.5); `Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    /// Warning.
    Warning,
    /// Critical.
    Critical,
}

impl AlertSeverity {
    /// `warning` / `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// One per-project alert route (SPEC §8.5): alerts whose event matches one of `events` and
/// whose severity is at least `min_severity` go to every sink in `sinks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRouteOption {
    /// Event names or `*` patterns (non-empty).
    pub events: Vec<String>,
    /// Lowest severity routed; default `warning` (everything).
    #[serde(default = "default_severity")]
    pub min_severity: AlertSeverity,
    /// Sink names: `log` or a sink registered in `EngineConfig.alert_sinks` (non-empty).
    pub sinks: Vec<String>,
}

fn default_severity() -> AlertSeverity {
    AlertSeverity::Warning
}

impl AlertRouteOption {
    /// A route of `events` to `sinks` for every severity.
    pub fn new<S: Into<String>, T: Into<String>>(
        events: impl IntoIterator<Item = S>,
        sinks: impl IntoIterator<Item = T>,
    ) -> Self {
        Self {
            events: events.into_iter().map(Into::into).collect(),
            min_severity: AlertSeverity::Warning,
            sinks: sinks.into_iter().map(Into::into).collect(),
        }
    }

    /// Sets `min_severity`.
    pub fn min_severity(mut self, s: AlertSeverity) -> Self {
        self.min_severity = s;
        self
    }

    /// The option (map) form.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Checks an `alert_events`-style list of names / patterns, reporting the bad item.
pub(crate) fn event_patterns(v: &Value) -> Checked<Vec<String>> {
    let items = list_of_strings(v)?;
    if let Some(i) = items.iter().position(|s| !valid_event_pattern(s)) {
        return Err(Fail::new("invalid_event_pattern").with("item", json!(i)));
    }
    Ok(items)
}

fn route(v: &Value, sinks: &[String]) -> Checked<AlertRouteOption> {
    let Value::Object(map) = v else {
        return Err(Fail::new("expected_map_entry"));
    };
    unknown_field(map, &["events", "min_severity", "sinks"])?;
    let events = match map.get("events") {
        None => return Err(Fail::new("missing_events")),
        Some(v) => event_patterns(v).map_err(|f| field_fail(f, "events"))?,
    };
    if events.is_empty() {
        return Err(Fail::new("empty_events"));
    }
    let min_severity = match map.get("min_severity") {
        None => AlertSeverity::Warning,
        Some(v) => match validate::one_of(v, &["critical", "warning"]) {
            Ok("critical") => AlertSeverity::Critical,
            Ok(_) => AlertSeverity::Warning,
            Err(f) => {
                return Err(field_fail(
                    Fail {
                        reason: "invalid_severity",
                        ..f
                    },
                    "min_severity",
                ));
            }
        },
    };
    let route_sinks = match map.get("sinks") {
        None => return Err(Fail::new("missing_sinks")),
        Some(v) => list_of_strings(v).map_err(|f| field_fail(f, "sinks"))?,
    };
    if route_sinks.is_empty() {
        return Err(Fail::new("empty_sinks"));
    }
    if let Some(s) = route_sinks
        .iter()
        .find(|s| s.as_str() != "log" && !sinks.contains(s))
    {
        return Err(Fail::new("unknown_sink").with("sink", json!(s)));
    }
    Ok(AlertRouteOption {
        events,
        min_severity,
        sinks: route_sinks,
    })
}

/// Parses `alert_routes` (`expected_list_of_maps`; entries `invalid_entry{index, reason}`,
/// sinks neither `log` nor in `sinks` → `unknown_sink`).
pub(crate) fn alert_routes(
    key: &str,
    v: &Value,
    sinks: &[String],
) -> Result<Vec<AlertRouteOption>> {
    let Value::Array(items) = v else {
        return Err(Fail::new("expected_list_of_maps").at(key));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| route(item, sinks).map_err(|f| f.at_entry(key, i)))
        .collect()
}

/// `journal_sync` (SPEC §12.1): SQLite `synchronous` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalSync {
    /// `synchronous=NORMAL`.
    #[default]
    Normal,
    /// `synchronous=FULL`.
    Full,
}

impl JournalSync {
    /// `normal` / `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Full => "full",
        }
    }
}

/// `journal_on_corruption` (SPEC §12.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalOnCorruption {
    /// Rename the file aside, start a fresh journal, raise a critical alert.
    #[default]
    Quarantine,
    /// Do not start the project.
    Fail,
}

impl JournalOnCorruption {
    /// `quarantine` / `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quarantine => "quarantine",
            Self::Fail => "fail",
        }
    }
}
