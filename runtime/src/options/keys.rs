//! [`ProjectOptions`]: one option layer as given (JSON values, unvalidated), its key table in
//! SPEC §3.2 order, typed builder setters and the JSON entry point.
//!
//! Values stay JSON until [`super::EffectiveOptions::resolve`] so that a type error is reported
//! with the SPEC reason (`expected_positive_integer`, …) rather than a serde message. A key that
//! is absent is `None`; a key given as `null` is `Some(Value::Null)`.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use codeward_policies::{OutsideRootEntry, OutsideRootTarget, RawPolicyOptions};

use super::entries::{AlertRouteOption, SubagentTemplate};
use super::error::{OptionsError, Result};

macro_rules! project_options {
    ($($(#[$doc:meta])* $key:ident),* $(,)?) => {
        /// One layer of project options (SPEC §3.1–3.2): built-in defaults < daemon `[defaults]`
        /// < `codeward.toml` < `start_project` options.
        ///
        /// Every field is `None` when the layer leaves the key unset and `Some(value)` (possibly
        /// `Value::Null`) when it sets it. Build it with the typed setters
        /// (`ProjectOptions::default().tool_timeout_ms(5000).allow_tools(["fs.*"])`), from JSON
        /// ([`ProjectOptions::from_json`]) or from TOML ([`ProjectOptions::from_toml_str`]).
        #[derive(Debug, Clone, Default, PartialEq, Serialize)]
        pub struct ProjectOptions {
            $(
                $(#[$doc])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $key: Option<Value>,
            )*
        }

        impl ProjectOptions {
            /// Every key, in SPEC §3.2 table order (then `deny_multiply_linked_files` and the
            /// api-only `trust_project_file`).
            pub const KEYS: &'static [&'static str] = &[$(stringify!($key)),*];

            /// The value this layer gives `key` (`None` when unset or unknown).
            pub fn get(&self, key: &str) -> Option<&Value> {
                match key {
                    $(stringify!($key) => self.$key.as_ref(),)*
                    _ => None,
                }
            }

            fn slot_mut(&mut self, key: &str) -> Option<&mut Option<Value>> {
                match key {
                    $(stringify!($key) => Some(&mut self.$key),)*
                    _ => None,
                }
            }
        }
    };
}

project_options! {
    /// `project_id`: string; default generated (SPEC §1).
    project_id,
    /// `data_dir`: relative string inside the root; default `.codeward`.
    data_dir,
    /// `state_dir`: absolute, or relative to `data_dir`; default `<data_dir>/state`.
    state_dir,
    /// `tool_timeout_ms`: 1..=86400000; default 30000.
    tool_timeout_ms,
    /// `tool_timeout_alert_threshold`: ≥1; default 3.
    tool_timeout_alert_threshold,
    /// `tool_timeout_alert_window_ms`: ≥1; default 600000.
    tool_timeout_alert_window_ms,
    /// `tool_max_output_bytes`: ≥1; default 262144.
    tool_max_output_bytes,
    /// `tool_max_artifact_bytes`: ≥1; default 131072.
    tool_max_artifact_bytes,
    /// `tool_max_args_bytes`: ≥1; default 1048576.
    tool_max_args_bytes,
    /// `tool_max_concurrency`: ≥1; default 8.
    tool_max_concurrency,
    /// `tool_max_concurrency_per_conversation`: ≥0; default 4.
    tool_max_concurrency_per_conversation,
    /// `tool_max_queued`: ≥0; default 64.
    tool_max_queued,
    /// `tool_queue_timeout_ms`: ≥1; default 5000.
    tool_queue_timeout_ms,
    /// `llm_timeout_ms`: ≥1; default 120000.
    llm_timeout_ms,
    /// `llm_max_retries`: 0..=100; default 1.
    llm_max_retries,
    /// `model_client`: a registered model client name; default `scripted`.
    model_client,
    /// `llm_model`: string or null; default null.
    llm_model,
    /// `llm_system_prompt`: string or null; default null.
    llm_system_prompt,
    /// `llm_temperature`: 0..=2 or null; default null.
    llm_temperature,
    /// `llm_max_tokens`: ≥1 or null; default null.
    llm_max_tokens,
    /// `conversation_max_queue_size`: ≥1; default 10000.
    conversation_max_queue_size,
    /// `conversation_max_drain_steps`: ≥1; default 128.
    conversation_max_drain_steps,
    /// `conversation_max_turn_steps`: ≥1; default 32.
    conversation_max_turn_steps,
    /// `conversation_timeline_window`: ≥100; default 2000.
    conversation_timeline_window,
    /// `restore_conversations`: bool; default true.
    restore_conversations,
    /// `watcher`: bool; default false.
    watcher,
    /// `watcher_debounce_ms`: ≥1; default 250.
    watcher_debounce_ms,
    /// `watcher_max_wait_ms`: ≥ `watcher_debounce_ms`; default 2000.
    watcher_max_wait_ms,
    /// `strict_asset_loading`: bool; default false.
    strict_asset_loading,
    /// `allow_tools` (**P**): list of names / `*` patterns, or null (all); default null.
    allow_tools,
    /// `deny_tools` (**P**): list of names / `*` patterns; default `[]`.
    deny_tools,
    /// `network_egress_policy` (**P**): `allow` | `deny`; default `deny`.
    network_egress_policy,
    /// `network_allowlist` (**P**): SPEC §5.6 entries; default `[]`.
    network_allowlist,
    /// `network_allowed_schemes` (**P**): schemes; default `["http","https"]`.
    network_allowed_schemes,
    /// `sensitive_path_denylist` (**P**): globs added to the built-in list; default `[]`.
    sensitive_path_denylist,
    /// `sensitive_path_allowlist` (**P**): globs exempted; default the `.env.*` samples.
    sensitive_path_allowlist,
    /// `outside_root_allowlist` (**P**): list of `{path|pattern, reason_code, access}`.
    outside_root_allowlist,
    /// `tool_env_allowlist` (**P**): env names tools may receive; default `[]`.
    tool_env_allowlist,
    /// `tool_env_inherit` (**P**): env names copied into commands; default
    /// `["LANG","LC_ALL","TZ","TERM"]`.
    tool_env_inherit,
    /// `protocol_allowlist` (**P**): `mcp`, `a2a`, `*`; default `["mcp","a2a"]`.
    protocol_allowlist,
    /// `redact_tool_results` (**P**): bool; default false.
    redact_tool_results,
    /// `require_os_sandbox` (**P**): bool; default false.
    require_os_sandbox,
    /// `command_read_paths` (**P**): absolute paths; default the SPEC §6.2 list.
    command_read_paths,
    /// `command_shell`: shell of the `command` form; default `/bin/sh`.
    command_shell,
    /// `command_path`: `PATH` of commands; default `/usr/local/bin:/usr/bin:/bin`.
    command_path,
    /// `command_max_file_bytes`: ≥1; default 1 GiB.
    command_max_file_bytes,
    /// `command_max_open_files`: ≥1; default 1024.
    command_max_open_files,
    /// `command_max_memory_bytes`: ≥1 or null; default null.
    command_max_memory_bytes,
    /// `subagent_templates`: list of template maps (SPEC §7.4); default `[]`.
    subagent_templates,
    /// `subagent_templates_allowlist` (**P**): list or null (all); default null.
    subagent_templates_allowlist,
    /// `subagent_max_children`: ≥1; default 3.
    subagent_max_children,
    /// `subagent_ttl_ms`: ≥1000; default 300000.
    subagent_ttl_ms,
    /// `telemetry_recent_events`: 1..=10000; default 200.
    telemetry_recent_events,
    /// `telemetry_recent_errors`: 1..=10000; default 25.
    telemetry_recent_errors,
    /// `policy_recent_decisions`: 1..=10000; default 200.
    policy_recent_decisions,
    /// `health_error_window_ms`: ≥1000; default 300000.
    health_error_window_ms,
    /// `alert_events`: event names or `*` patterns; default `[]`.
    alert_events,
    /// `alert_routes`: list of `{events, min_severity, sinks}`; default `[]`.
    alert_routes,
    /// `journal_retention_days`: ≥1; default 30.
    journal_retention_days,
    /// `journal_max_bytes`: ≥16 MiB; default 1 GiB.
    journal_max_bytes,
    /// `journal_sync`: `normal` | `full`; default `normal`.
    journal_sync,
    /// `journal_on_corruption`: `quarantine` | `fail`; default `quarantine`.
    journal_on_corruption,
    /// `deny_multiply_linked_files` (narrowing like **P**): bool; default false. Not in the
    /// SPEC table: the fs tools refuse files with more than one hard link when set.
    deny_multiply_linked_files,
    /// `trust_project_file` (operator layers only): bool; default false. Makes the `codeward.toml`
    /// layer trusted (its **P** keys then merge normally).
    trust_project_file,
}

/// Keys whose value from an untrusted `codeward.toml` merges narrowing-only: the **P** keys of
/// SPEC §3.2 plus `deny_multiply_linked_files`.
pub(crate) fn is_narrowing_key(key: &str) -> bool {
    key == "deny_multiply_linked_files"
        || (key != "state_dir" && RawPolicyOptions::KEYS.contains(&key))
}

fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Value {
    Value::Array(items.into_iter().map(|s| Value::String(s.into())).collect())
}

/// The option (map) form of an `outside_root_allowlist` entry.
pub(crate) fn outside_root_entry_value(e: &OutsideRootEntry) -> Value {
    let mut m = Map::new();
    match &e.target {
        OutsideRootTarget::Path(p) => {
            m.insert("path".to_owned(), json!(p.to_string_lossy()));
        }
        OutsideRootTarget::Pattern(p) => {
            m.insert("pattern".to_owned(), json!(p));
        }
    }
    m.insert("reason_code".to_owned(), json!(e.reason_code));
    m.insert("access".to_owned(), json!(e.access.as_str()));
    Value::Object(m)
}

macro_rules! setters {
    ($kind:ident: $($key:ident),* $(,)?) => {
        $( setters!(@one $kind $key); )*
    };
    (@one u64 $key:ident) => {
        #[doc = concat!("Sets `", stringify!($key), "`.")]
        pub fn $key(mut self, value: u64) -> Self {
            self.$key = Some(json!(value));
            self
        }
    };
    (@one opt_u64 $key:ident) => {
        #[doc = concat!("Sets `", stringify!($key), "` (`None` = explicit null).")]
        pub fn $key(mut self, value: impl Into<Option<u64>>) -> Self {
            self.$key = Some(json!(value.into()));
            self
        }
    };
    (@one bool $key:ident) => {
        #[doc = concat!("Sets `", stringify!($key), "`.")]
        pub fn $key(mut self, value: bool) -> Self {
            self.$key = Some(json!(value));
            self
        }
    };
    (@one string $key:ident) => {
        #[doc = concat!("Sets `", stringify!($key), "`.")]
        pub fn $key(mut self, value: impl Into<String>) -> Self {
            self.$key = Some(Value::String(value.into()));
            self
        }
    };
    (@one strings $key:ident) => {
        #[doc = concat!("Sets `", stringify!($key), "` to a list of strings.")]
        pub fn $key<S: Into<String>>(mut self, items: impl IntoIterator<Item = S>) -> Self {
            self.$key = Some(strings(items));
            self
        }
    };
}

impl ProjectOptions {
    setters!(u64: tool_timeout_ms, tool_timeout_alert_threshold, tool_timeout_alert_window_ms,
        tool_max_output_bytes, tool_max_artifact_bytes, tool_max_args_bytes, tool_max_concurrency,
        tool_max_concurrency_per_conversation, tool_max_queued, tool_queue_timeout_ms,
        llm_timeout_ms, llm_max_retries, conversation_max_queue_size, conversation_max_drain_steps,
        conversation_max_turn_steps, conversation_timeline_window, watcher_debounce_ms,
        watcher_max_wait_ms, command_max_file_bytes, command_max_open_files,
        subagent_max_children, subagent_ttl_ms, telemetry_recent_events, telemetry_recent_errors,
        policy_recent_decisions, health_error_window_ms, journal_retention_days,
        journal_max_bytes);
    setters!(opt_u64: llm_max_tokens, command_max_memory_bytes);
    setters!(bool: restore_conversations, watcher, strict_asset_loading, redact_tool_results,
        require_os_sandbox, deny_multiply_linked_files, trust_project_file);
    setters!(string: project_id, data_dir, state_dir, model_client, llm_model, llm_system_prompt,
        network_egress_policy, command_shell, command_path, journal_sync, journal_on_corruption);
    setters!(strings: allow_tools, deny_tools, network_allowlist, network_allowed_schemes,
        sensitive_path_denylist, sensitive_path_allowlist, tool_env_allowlist, tool_env_inherit,
        protocol_allowlist, command_read_paths, subagent_templates_allowlist, alert_events);

    /// Sets `llm_temperature` (`None` = explicit null).
    pub fn llm_temperature(mut self, value: impl Into<Option<f64>>) -> Self {
        self.llm_temperature = Some(value.into().map_or(Value::Null, |t| json!(t)));
        self
    }

    /// Sets `allow_tools` to null: every tool allowed (subject to `deny_tools`).
    pub fn allow_all_tools(mut self) -> Self {
        self.allow_tools = Some(Value::Null);
        self
    }

    /// Sets `subagent_templates_allowlist` to null: every template may be spawned.
    pub fn allow_all_subagent_templates(mut self) -> Self {
        self.subagent_templates_allowlist = Some(Value::Null);
        self
    }

    /// Sets `outside_root_allowlist` from typed entries (stored in the option map form).
    pub fn outside_root_allowlist(
        mut self,
        entries: impl IntoIterator<Item = OutsideRootEntry>,
    ) -> Self {
        self.outside_root_allowlist = Some(Value::Array(
            entries
                .into_iter()
                .map(|e| outside_root_entry_value(&e))
                .collect(),
        ));
        self
    }

    /// Sets `subagent_templates` from typed templates.
    pub fn subagent_templates(
        mut self,
        templates: impl IntoIterator<Item = SubagentTemplate>,
    ) -> Self {
        self.subagent_templates = Some(Value::Array(
            templates.into_iter().map(|t| t.to_value()).collect(),
        ));
        self
    }

    /// Sets `alert_routes` from typed routes.
    pub fn alert_routes(mut self, routes: impl IntoIterator<Item = AlertRouteOption>) -> Self {
        self.alert_routes = Some(Value::Array(
            routes.into_iter().map(|r| r.to_value()).collect(),
        ));
        self
    }

    /// Sets any key to a raw JSON value (e.g. `Value::Null` to override a lower layer with
    /// null). Unknown keys fail with `invalid_runtime_opt{key, unknown_option}`.
    pub fn set(mut self, key: &str, value: Value) -> Result<Self> {
        let slot = self
            .slot_mut(key)
            .ok_or_else(|| OptionsError::opt(key, "unknown_option"))?;
        *slot = Some(value);
        Ok(self)
    }

    /// Unsets `key` in this layer (a no-op for unknown keys).
    pub fn unset(mut self, key: &str) -> Self {
        if let Some(slot) = self.slot_mut(key) {
            *slot = None;
        }
        self
    }

    /// The keys this layer sets, in table order.
    pub fn set_keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        Self::KEYS.iter().copied().filter(|k| self.get(k).is_some())
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.set_keys().next().is_none()
    }

    /// Parses a JSON object of options. An unknown key fails with `invalid_runtime_opt{key,
    /// unknown_option}`; a non-object with `invalid_runtime_opt{key: "options", expected_map}`.
    pub fn from_json(value: &Value) -> Result<Self> {
        let Value::Object(map) = value else {
            return Err(OptionsError::opt("options", "expected_map"));
        };
        let mut out = Self::default();
        for (k, v) in map {
            let slot = out
                .slot_mut(k)
                .ok_or_else(|| OptionsError::opt(k, "unknown_option"))?;
            *slot = Some(v.clone());
        }
        Ok(out)
    }

    /// This layer as a JSON object of the keys it sets.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.set_keys()
                .filter_map(|k| self.get(k).map(|v| (k.to_owned(), v.clone())))
                .collect(),
        )
    }
}

impl<'de> Deserialize<'de> for ProjectOptions {
    /// Deserializes through [`ProjectOptions::from_json`], so unknown keys are refused with the
    /// same reason.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_json(&v).map_err(serde::de::Error::custom)
    }
}
