//! Two-stage policy options (SPEC §3.2 keys marked **P**, plus `state_dir` and
//! `command_read_paths`): [`RawPolicyOptions`] (serde, `deny_unknown_fields`, every value kept
//! as JSON so type errors get SPEC reasons) → [`PolicyOptions`] (validated, typed) via
//! `TryFrom`, failing with [`InvalidRuntimeOpt`] and the reason names of §3.3.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::env::{is_always_denied, valid_env_name};
use crate::error::InvalidRuntimeOpt;
use crate::net::AllowEntry;
use crate::sensitive::validate_pattern;
use crate::tools::valid_tool_pattern;

/// Default `sensitive_path_allowlist`.
pub const DEFAULT_SENSITIVE_ALLOWLIST: &[&str] = &[".env.example", ".env.sample", ".env.template"];
/// Default `tool_env_inherit`.
pub const DEFAULT_ENV_INHERIT: &[&str] = &["LANG", "LC_ALL", "TZ", "TERM"];
/// Default `command_read_paths` (SPEC §6.2; `/nix/store` is added by the runtime if present).
pub const DEFAULT_COMMAND_READ_PATHS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt", "/proc",
];

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

macro_rules! raw_options {
    ($($(#[$doc:meta])* $key:ident),* $(,)?) => {
        /// The policy keys of one option layer as given (JSON values, unvalidated).
        ///
        /// A key that is absent is `None`; a key given as `null` is `Some(Value::Null)`.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawPolicyOptions {
            $(
                $(#[$doc])*
                #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
                pub $key: Option<Value>,
            )*
        }

        impl RawPolicyOptions {
            /// The keys this struct knows, in SPEC table order.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($key)),*];
        }
    };
}

raw_options! {
    /// `state_dir`: absolute, or relative to `data_dir` without `..`.
    state_dir,
    /// `allow_tools`: list of names / `*` patterns, or null (all).
    allow_tools,
    /// `deny_tools`: list of names / `*` patterns.
    deny_tools,
    /// `network_egress_policy`: `allow` | `deny` (case-insensitive).
    network_egress_policy,
    /// `network_allowlist`: §5.6 entries.
    network_allowlist,
    /// `network_allowed_schemes`: lowercase schemes.
    network_allowed_schemes,
    /// `sensitive_path_denylist`: globs added to the built-in list.
    sensitive_path_denylist,
    /// `sensitive_path_allowlist`: globs exempted from the denylist.
    sensitive_path_allowlist,
    /// `outside_root_allowlist`: list of `{path|pattern, reason_code, access}` maps.
    outside_root_allowlist,
    /// `tool_env_allowlist`: env names tools may receive.
    tool_env_allowlist,
    /// `tool_env_inherit`: env names copied from codeward's env into commands.
    tool_env_inherit,
    /// `protocol_allowlist`: `mcp`, `a2a`, `*`.
    protocol_allowlist,
    /// `redact_tool_results`: bool.
    redact_tool_results,
    /// `require_os_sandbox`: bool.
    require_os_sandbox,
    /// `command_read_paths`: absolute paths commands may read.
    command_read_paths,
    /// `subagent_templates_allowlist`: list or null (all).
    subagent_templates_allowlist,
}

impl RawPolicyOptions {
    /// Parses a JSON object, reporting an unknown key as `invalid_runtime_opt{key,
    /// unknown_option}` instead of a serde message.
    pub fn from_json(value: &Value) -> Result<Self, InvalidRuntimeOpt> {
        let Value::Object(map) = value else {
            return Err(InvalidRuntimeOpt::new("options", "expected_map"));
        };
        let mut out = Self::default();
        for (k, v) in map {
            let slot = out
                .slot(k)
                .ok_or_else(|| InvalidRuntimeOpt::new(k, "unknown_option"))?;
            *slot = Some(v.clone());
        }
        Ok(out)
    }

    fn slot(&mut self, key: &str) -> Option<&mut Option<Value>> {
        Some(match key {
            "state_dir" => &mut self.state_dir,
            "allow_tools" => &mut self.allow_tools,
            "deny_tools" => &mut self.deny_tools,
            "network_egress_policy" => &mut self.network_egress_policy,
            "network_allowlist" => &mut self.network_allowlist,
            "network_allowed_schemes" => &mut self.network_allowed_schemes,
            "sensitive_path_denylist" => &mut self.sensitive_path_denylist,
            "sensitive_path_allowlist" => &mut self.sensitive_path_allowlist,
            "outside_root_allowlist" => &mut self.outside_root_allowlist,
            "tool_env_allowlist" => &mut self.tool_env_allowlist,
            "tool_env_inherit" => &mut self.tool_env_inherit,
            "protocol_allowlist" => &mut self.protocol_allowlist,
            "redact_tool_results" => &mut self.redact_tool_results,
            "require_os_sandbox" => &mut self.require_os_sandbox,
            "command_read_paths" => &mut self.command_read_paths,
            "subagent_templates_allowlist" => &mut self.subagent_templates_allowlist,
            _ => return None,
        })
    }
}

/// `network_egress_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EgressPolicy {
    /// Network-capable tools may reach allow-listed hosts.
    Allow,
    /// Network-capable tools are denied (`network_denied`).
    #[default]
    Deny,
}

/// Access an `outside_root_allowlist` entry grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionAccess {
    /// Read locations only (default).
    #[default]
    Read,
    /// Read and write locations.
    ReadWrite,
}

impl ExceptionAccess {
    /// `read` / `read_write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadWrite => "read_write",
        }
    }
}

/// What an `outside_root_allowlist` entry admits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutsideRootTarget {
    /// This path and anything below it (component-wise). Relative paths join the root.
    Path(PathBuf),
    /// A glob with literal separators (`*` never crosses `/`, `**` does).
    Pattern(String),
}

/// One validated `outside_root_allowlist` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutsideRootEntry {
    /// Path or pattern.
    pub target: OutsideRootTarget,
    /// Reason code reported in `exceptions_used` and `security.sandbox_exception_used`.
    pub reason_code: String,
    /// Access granted.
    pub access: ExceptionAccess,
}

/// Validated policy options with SPEC defaults (`Default` gives the built-in layer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyOptions {
    /// `state_dir` as configured (the runtime resolves it into [`crate::PolicyContext`]).
    pub state_dir: Option<String>,
    /// `allow_tools`; `None` allows every tool.
    pub allow_tools: Option<Vec<String>>,
    /// `deny_tools`.
    pub deny_tools: Vec<String>,
    /// `network_egress_policy`.
    pub network_egress_policy: EgressPolicy,
    /// `network_allowlist` entries as written.
    pub network_allowlist: Vec<String>,
    /// `network_allowed_schemes`, trimmed and lowercased.
    pub network_allowed_schemes: Vec<String>,
    /// `sensitive_path_denylist`.
    pub sensitive_path_denylist: Vec<String>,
    /// `sensitive_path_allowlist`.
    pub sensitive_path_allowlist: Vec<String>,
    /// `outside_root_allowlist`.
    pub outside_root_allowlist: Vec<OutsideRootEntry>,
    /// `tool_env_allowlist`.
    pub tool_env_allowlist: Vec<String>,
    /// `tool_env_inherit`.
    pub tool_env_inherit: Vec<String>,
    /// `protocol_allowlist`, trimmed and lowercased.
    pub protocol_allowlist: Vec<String>,
    /// `redact_tool_results`.
    pub redact_tool_results: bool,
    /// `require_os_sandbox`.
    pub require_os_sandbox: bool,
    /// `command_read_paths` (absolute).
    pub command_read_paths: Vec<PathBuf>,
    /// `subagent_templates_allowlist`; `None` allows all templates.
    pub subagent_templates_allowlist: Option<Vec<String>>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for PolicyOptions {
    fn default() -> Self {
        Self {
            state_dir: None,
            allow_tools: None,
            deny_tools: Vec::new(),
            network_egress_policy: EgressPolicy::Deny,
            network_allowlist: Vec::new(),
            network_allowed_schemes: strings(&["http", "https"]),
            sensitive_path_denylist: Vec::new(),
            sensitive_path_allowlist: strings(DEFAULT_SENSITIVE_ALLOWLIST),
            outside_root_allowlist: Vec::new(),
            tool_env_allowlist: Vec::new(),
            tool_env_inherit: strings(DEFAULT_ENV_INHERIT),
            protocol_allowlist: strings(&["mcp", "a2a"]),
            redact_tool_results: false,
            require_os_sandbox: false,
            command_read_paths: DEFAULT_COMMAND_READ_PATHS
                .iter()
                .map(PathBuf::from)
                .collect(),
            subagent_templates_allowlist: None,
        }
    }
}

type Res<T> = Result<T, InvalidRuntimeOpt>;

fn list_of_strings(key: &str, v: &Value) -> Res<Vec<String>> {
    let Value::Array(items) = v else {
        return Err(InvalidRuntimeOpt::new(key, "expected_list_of_strings"));
    };
    items
        .iter()
        .map(|i| i.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| InvalidRuntimeOpt::new(key, "expected_list_of_strings"))
}

fn boolean(key: &str, v: &Value) -> Res<bool> {
    v.as_bool()
        .ok_or_else(|| InvalidRuntimeOpt::new(key, "expected_boolean"))
}

fn check_entries(
    key: &str,
    items: &[String],
    ok: impl Fn(&str) -> Option<&'static str>,
) -> Res<()> {
    for (i, item) in items.iter().enumerate() {
        if let Some(reason) = ok(item) {
            return Err(InvalidRuntimeOpt::entry(key, i, reason));
        }
    }
    Ok(())
}

fn tool_patterns(key: &str, items: &[String]) -> Res<()> {
    check_entries(key, items, |s| {
        (!valid_tool_pattern(s)).then_some("invalid_tool_pattern")
    })
}

fn env_names(key: &str, items: &[String]) -> Res<()> {
    check_entries(key, items, |s| {
        if !valid_env_name(s) {
            Some("invalid_env_name")
        } else if is_always_denied(s) {
            Some("env_var_always_denied")
        } else {
            None
        }
    })
}

fn valid_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_lowercase())
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+.-".contains(&c))
}

fn outside_entry(index: usize, v: &Value) -> Res<OutsideRootEntry> {
    const KEY: &str = "outside_root_allowlist";
    let err = |reason: &str| InvalidRuntimeOpt::entry(KEY, index, reason);
    let Value::Object(map) = v else {
        return Err(err("expected_map_entry"));
    };
    if let Some(k) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "path" | "pattern" | "reason_code" | "access"))
    {
        let mut e = err("unknown_option");
        if let Value::Object(d) = &mut e.details {
            d.insert("field".to_owned(), json!(k));
        }
        return Err(e);
    }
    let target = match (map.get("path"), map.get("pattern")) {
        (None, None) => return Err(err("missing_path_or_pattern")),
        (Some(_), Some(_)) => return Err(err("both_path_and_pattern")),
        (Some(p), None) => {
            let s = p
                .as_str()
                .ok_or_else(|| err("expected_path_or_pattern_string"))?;
            if s.trim().is_empty() {
                return Err(err("empty_path_or_pattern"));
            }
            if s.contains('\0') {
                return Err(err("invalid_path"));
            }
            OutsideRootTarget::Path(PathBuf::from(s))
        }
        (None, Some(p)) => {
            let s = p
                .as_str()
                .ok_or_else(|| err("expected_path_or_pattern_string"))?;
            if s.trim().is_empty() {
                return Err(err("empty_path_or_pattern"));
            }
            if globset::GlobBuilder::new(s)
                .literal_separator(true)
                .build()
                .is_err()
            {
                return Err(err("invalid_glob"));
            }
            OutsideRootTarget::Pattern(s.to_owned())
        }
    };
    let reason_code = match map.get("reason_code") {
        None => return Err(err("missing_reason_code")),
        Some(Value::String(s)) if s.trim().is_empty() => return Err(err("empty_reason_code")),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => return Err(err("expected_reason_code_string")),
    };
    let access = match map.get("access") {
        None => ExceptionAccess::Read,
        Some(Value::String(s)) if s == "read" => ExceptionAccess::Read,
        Some(Value::String(s)) if s == "read_write" => ExceptionAccess::ReadWrite,
        Some(_) => return Err(err("invalid_access")),
    };
    Ok(OutsideRootEntry {
        target,
        reason_code,
        access,
    })
}

impl TryFrom<RawPolicyOptions> for PolicyOptions {
    type Error = InvalidRuntimeOpt;

    fn try_from(raw: RawPolicyOptions) -> Res<Self> {
        let mut o = PolicyOptions::default();
        if let Some(v) = &raw.state_dir {
            let s = v
                .as_str()
                .ok_or_else(|| InvalidRuntimeOpt::new("state_dir", "expected_string"))?;
            o.state_dir = Some(s.to_owned());
        }
        if let Some(v) = &raw.allow_tools {
            o.allow_tools = if v.is_null() {
                None
            } else {
                Some(list_of_strings("allow_tools", v)?)
            };
        }
        if let Some(v) = &raw.deny_tools {
            o.deny_tools = list_of_strings("deny_tools", v)?;
        }
        if let Some(v) = &raw.network_egress_policy {
            o.network_egress_policy = match v.as_str().map(|s| s.trim().to_ascii_lowercase()) {
                Some(s) if s == "allow" => EgressPolicy::Allow,
                Some(s) if s == "deny" => EgressPolicy::Deny,
                _ => {
                    return Err(InvalidRuntimeOpt::new(
                        "network_egress_policy",
                        "expected_allow_or_deny",
                    ));
                }
            };
        }
        if let Some(v) = &raw.network_allowlist {
            o.network_allowlist = list_of_strings("network_allowlist", v)?;
        }
        if let Some(v) = &raw.network_allowed_schemes {
            o.network_allowed_schemes = list_of_strings("network_allowed_schemes", v)?
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .collect();
        }
        if let Some(v) = &raw.sensitive_path_denylist {
            o.sensitive_path_denylist = list_of_strings("sensitive_path_denylist", v)?;
        }
        if let Some(v) = &raw.sensitive_path_allowlist {
            o.sensitive_path_allowlist = list_of_strings("sensitive_path_allowlist", v)?;
        }
        if let Some(v) = &raw.outside_root_allowlist {
            let Value::Array(items) = v else {
                return Err(InvalidRuntimeOpt::new(
                    "outside_root_allowlist",
                    "expected_list_of_reason_coded_maps",
                ));
            };
            o.outside_root_allowlist = items
                .iter()
                .enumerate()
                .map(|(i, e)| outside_entry(i, e))
                .collect::<Res<_>>()?;
        }
        if let Some(v) = &raw.tool_env_allowlist {
            o.tool_env_allowlist = list_of_strings("tool_env_allowlist", v)?;
        }
        if let Some(v) = &raw.tool_env_inherit {
            o.tool_env_inherit = list_of_strings("tool_env_inherit", v)?;
        }
        if let Some(v) = &raw.protocol_allowlist {
            o.protocol_allowlist = list_of_strings("protocol_allowlist", v)?
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .collect();
        }
        if let Some(v) = &raw.redact_tool_results {
            o.redact_tool_results = boolean("redact_tool_results", v)?;
        }
        if let Some(v) = &raw.require_os_sandbox {
            o.require_os_sandbox = boolean("require_os_sandbox", v)?;
        }
        if let Some(v) = &raw.command_read_paths {
            o.command_read_paths = list_of_strings("command_read_paths", v)?
                .into_iter()
                .map(PathBuf::from)
                .collect();
        }
        if let Some(v) = &raw.subagent_templates_allowlist {
            o.subagent_templates_allowlist = if v.is_null() {
                None
            } else {
                Some(list_of_strings("subagent_templates_allowlist", v)?)
            };
        }
        o.validate()?;
        Ok(o)
    }
}

impl PolicyOptions {
    /// Validates typed values (run by `TryFrom` and by [`crate::PolicySet::compile`]), in SPEC
    /// table order; the first failure is returned.
    pub fn validate(&self) -> Res<()> {
        if let Some(s) = &self.state_dir {
            if s.is_empty() {
                return Err(InvalidRuntimeOpt::new(
                    "state_dir",
                    "expected_non_empty_string",
                ));
            }
            if !Path::new(s).is_absolute() && s.split('/').any(|c| c == "..") {
                return Err(InvalidRuntimeOpt::new("state_dir", "must_not_traverse"));
            }
        }
        if let Some(a) = &self.allow_tools {
            tool_patterns("allow_tools", a)?;
        }
        tool_patterns("deny_tools", &self.deny_tools)?;
        check_entries("network_allowlist", &self.network_allowlist, |s| {
            AllowEntry::parse(s).is_none().then_some("invalid_host")
        })?;
        check_entries(
            "network_allowed_schemes",
            &self.network_allowed_schemes,
            |s| (!valid_scheme(s)).then_some("invalid_scheme"),
        )?;
        check_entries(
            "sensitive_path_denylist",
            &self.sensitive_path_denylist,
            |s| (!validate_pattern(s)).then_some("invalid_glob"),
        )?;
        check_entries(
            "sensitive_path_allowlist",
            &self.sensitive_path_allowlist,
            |s| (!validate_pattern(s)).then_some("invalid_glob"),
        )?;
        for (i, e) in self.outside_root_allowlist.iter().enumerate() {
            let bad = |r: &str| Err(InvalidRuntimeOpt::entry("outside_root_allowlist", i, r));
            match &e.target {
                OutsideRootTarget::Path(p) if p.as_os_str().is_empty() => {
                    return bad("empty_path_or_pattern");
                }
                OutsideRootTarget::Pattern(p) if p.is_empty() => {
                    return bad("empty_path_or_pattern");
                }
                OutsideRootTarget::Pattern(p)
                    if globset::GlobBuilder::new(p)
                        .literal_separator(true)
                        .build()
                        .is_err() =>
                {
                    return bad("invalid_glob");
                }
                _ => {}
            }
            if e.reason_code.trim().is_empty() {
                return bad("empty_reason_code");
            }
        }
        env_names("tool_env_allowlist", &self.tool_env_allowlist)?;
        env_names("tool_env_inherit", &self.tool_env_inherit)?;
        check_entries("protocol_allowlist", &self.protocol_allowlist, |s| {
            (!matches!(s, "mcp" | "a2a" | "*")).then_some("unknown_protocol")
        })?;
        check_entries("command_read_paths", &self.command_read_paths_str(), |s| {
            (!s.starts_with('/')).then_some("must_be_absolute")
        })?;
        if let Some(a) = &self.subagent_templates_allowlist {
            tool_patterns("subagent_templates_allowlist", a)?;
        }
        Ok(())
    }

    fn command_read_paths_str(&self) -> Vec<String> {
        self.command_read_paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests;
