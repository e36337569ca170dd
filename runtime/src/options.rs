//! Project options (SPEC §3): the option layers, the project file, validation into
//! [`EffectiveOptions`] and the diagnostics views. Pure: no tokio, no actors; the only I/O is
//! reading `<root>/codeward.toml` and resolving `data_dir` symlinks.
//!
//! Flow: the engine builds an [`OptionLayers`] from `EngineConfig.defaults` (daemon), the result
//! of [`load_project_file`] (file) and the `start_project` [`ProjectOptions`] (api), then calls
//! [`EffectiveOptions::resolve`] with a [`ResolveContext`] (canonical root, whether it is
//! trusted, the registered model clients and alert sinks). The **P** keys are validated by
//! `codeward_policies` and end up in [`EffectiveOptions::policy`].
//!
//! ```
//! use codeward::options::{EffectiveOptions, OptionLayers, OptionSource, ProjectOptions, ResolveContext};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let root = dir.path().canonicalize().unwrap();
//! let layers = OptionLayers {
//!     daemon: ProjectOptions::default().tool_timeout_ms(10_000),
//!     file: None,
//!     api: ProjectOptions::default().allow_tools(["fs.*"]).watcher(true),
//! };
//! let ctx = ResolveContext {
//!     root,
//!     trusted: false,
//!     model_clients: vec!["scripted".into()],
//!     alert_sinks: vec![],
//! };
//! let eff = EffectiveOptions::resolve(&layers, &ctx).unwrap();
//! assert_eq!(eff.tool_timeout_ms, 10_000);
//! assert_eq!(eff.policy.allow_tools, Some(vec!["fs.*".to_owned()]));
//! assert_eq!(eff.source("watcher"), Some(OptionSource::Api));
//! assert_eq!(eff.source("tool_max_concurrency"), Some(OptionSource::Default));
//! ```
//!
//! ## Key table
//!
//! Validated in this order (`data_dir` and `project_id` first), the first failure wins;
//! cross-key rules last. **P** = narrowing-only from an untrusted `codeward.toml`.
//!
//! | Key | Type | Default | Rule (reason) |
//! |---|---|---|---|
//! | `data_dir` | string | `.codeward` | `expected_non_empty_string`, `must_be_relative`, `must_not_traverse`, `must_stay_inside_root` (strictly inside, symlinks resolved), `invalid_path` (NUL) |
//! | `project_id` | string or null | generated | `invalid_project_id{empty, too_long, invalid_chars}`; blank/null = generate; non-string `expected_string_or_null` |
//! | `state_dir` | string | `state` (under `data_dir`) | policy crate rules; from an untrusted file also relative (`must_be_relative`, details `untrusted`) |
//! | `tool_timeout_ms` | int | 30000 | 1..=86400000 (`expected_positive_integer`, `out_of_range`) |
//! | `tool_timeout_alert_threshold` / `_window_ms` | int | 3 / 600000 | ≥1 |
//! | `tool_max_output_bytes` / `_artifact_bytes` / `_args_bytes` | int | 262144 / 131072 / 1048576 | ≥1 |
//! | `tool_max_concurrency` / `_per_conversation` | int | 8 / 4 | ≥1 / ≥0 (`expected_non_negative_integer`) |
//! | `tool_max_queued` / `tool_queue_timeout_ms` | int | 64 / 5000 | ≥0 / ≥1 |
//! | `llm_timeout_ms` / `llm_max_retries` / `model_client` | int / int / string | 120000 / 1 / `scripted` | ≥1 / 0..=100 / registered (`unknown_model_client`) |
//! | `llm_model`, `llm_system_prompt` / `llm_temperature` / `llm_max_tokens` | string / number / int, or null | null | `expected_string_or_null` / 0..=2 `expected_number_or_null` / `expected_positive_integer_or_null` |
//! | `conversation_max_queue_size` / `_drain_steps` / `_turn_steps` | int | 10000 / 128 / 32 | ≥1 |
//! | `conversation_timeline_window` / `restore_conversations` | int / bool | 2000 / true | ≥100 / `expected_boolean` |
//! | `watcher` / `watcher_debounce_ms` / `watcher_max_wait_ms` / `strict_asset_loading` | bool / int / int / bool | false / 250 / 2000 / false | max wait ≥ debounce (`must_be_at_least`, details `other_key`, `min`) |
//! | `allow_tools` **P** … `command_read_paths` **P** | | SPEC §3.2 | policy crate (`invalid_tool_pattern`, `expected_allow_or_deny`, `invalid_host`, `invalid_scheme`, `invalid_glob`, entry reasons of §3.3, `invalid_env_name`, `env_var_always_denied`, `unknown_protocol`, `must_be_absolute`) |
//! | `command_shell` / `command_path` | string | `/bin/sh` / `/usr/local/bin:/usr/bin:/bin` | `expected_non_empty_string` / `expected_string`; NUL `invalid_path` |
//! | `command_max_file_bytes` / `_open_files` / `_memory_bytes` | int / int / int or null | 1 GiB / 1024 / null | ≥1 / ≥1 / `expected_positive_integer_or_null` |
//! | `subagent_templates` / `subagent_templates_allowlist` **P** | list of maps / list or null | `[]` / null | `expected_list_of_maps`; entries `invalid_entry{index, reason, field?}` / policy crate |
//! | `subagent_max_children` / `subagent_ttl_ms` | int | 3 / 300000 | ≥1 / ≥1000 |
//! | `telemetry_recent_events` / `_errors` / `policy_recent_decisions` / `health_error_window_ms` | int | 200 / 25 / 200 / 300000 | 1..=10000 / ≥1000 |
//! | `alert_events` / `alert_routes` | list / list of maps | `[]` | entries `invalid_event_pattern` / `invalid_entry{index, reason}` incl. `unknown_sink` |
//! | `journal_retention_days` / `journal_max_bytes` / `journal_sync` / `journal_on_corruption` | int / int / enum / enum | 30 / 1 GiB / `normal` / `quarantine` | 1..=36500 / ≥16 MiB / `expected_one_of{allowed}` |
//! | `deny_multiply_linked_files` (narrowing) | bool | false | `expected_boolean`; not in the SPEC table (fs tools) |
//! | `trust_project_file` | bool | false | operator layers only; in the file `unknown_option` |
//!
//! Every other `*_ms` key is capped at [`MAX_DURATION_MS`] (365 days, `out_of_range`) so that
//! deadline arithmetic cannot overflow. Template entry reasons: `expected_map_entry`,
//! `unknown_option` (`field`), `missing_template_id`, `invalid_template_id`,
//! `duplicate_template_id`, and per field `expected_string`, `expected_string_or_null`,
//! `expected_list_of_strings`, `invalid_tool_pattern`, `invalid_env_name`,
//! `env_var_always_denied` (`item`), `expected_allow_or_deny`, `expected_positive_integer`,
//! `out_of_range`. Route entry reasons: `expected_map_entry`, `unknown_option`,
//! `missing_events`, `empty_events`, `invalid_event_pattern`, `invalid_severity`,
//! `missing_sinks`, `empty_sinks`, `expected_list_of_strings`, `unknown_sink` (`sink`).

mod effective;
mod entries;
mod error;
mod keys;
mod layers;
mod policy_keys;
mod toml_file;
mod validate;

pub use effective::{
    DEFAULT_DATA_DIR, DEFAULT_STATE_DIR, EffectiveOptions, MAX_LLM_RETRIES, MAX_RETENTION_DAYS,
    MIN_JOURNAL_MAX_BYTES, ResolveContext,
};
pub use entries::{
    AlertRouteOption, AlertSeverity, JournalOnCorruption, JournalSync, SubagentTemplate,
};
pub use error::{OptionsError, Result};
pub use keys::ProjectOptions;
pub use layers::{OptionLayers, OptionSource, root_is_trusted};
pub use toml_file::{
    FileFingerprint, MAX_CONFIG_FILE_BYTES, PROJECT_FILE_NAME, ProjectFile, load_project_file,
};
pub use validate::MAX_DURATION_MS;

#[cfg(test)]
mod tests;
