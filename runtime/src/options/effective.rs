//! [`EffectiveOptions`]: the validated, typed options of one project, resolved from the layers
//! by [`EffectiveOptions::resolve`] in the order of SPEC §3.4 step 3 (`data_dir`, `project_id`,
//! then the table order, first failure stops, cross-key rules last), plus the diagnostics views
//! [`EffectiveOptions::values`] and [`EffectiveOptions::sources`].

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use codeward_actors::ids::ProjectId;
use codeward_policies::PolicyOptions;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::entries::{self, AlertRouteOption, JournalOnCorruption, JournalSync, SubagentTemplate};
use super::error::{OptionsError, Result};
use super::keys::ProjectOptions;
use super::layers::{OptionLayers, OptionSource, Picker, policy_options};
use super::policy_keys::policy_value;
use super::toml_file::{FileFingerprint, PROJECT_FILE_NAME};
use super::validate::{
    self, Checked, Fail, MAX_DURATION_MS, non_negative_int, opt_number, opt_positive_int,
    opt_string, positive_int,
};

/// What [`EffectiveOptions::resolve`] needs besides the layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveContext {
    /// The project root, canonical (SPEC §3.4 step 1).
    pub root: PathBuf,
    /// Whether the root is trusted (an ancestor is in `EngineConfig.trusted_roots`). The
    /// operator layers' `trust_project_file = true` also trusts the file.
    pub trusted: bool,
    /// Registered model client names (`model_client` must be one).
    pub model_clients: Vec<String>,
    /// Registered alert sink names (`log` is always known).
    pub alert_sinks: Vec<String>,
}

/// Default `data_dir`.
pub const DEFAULT_DATA_DIR: &str = ".codeward";
/// Default `state_dir` (relative to `data_dir`).
pub const DEFAULT_STATE_DIR: &str = "state";
/// 16 MiB, the least `journal_max_bytes`.
pub const MIN_JOURNAL_MAX_BYTES: u64 = 16 << 20;
/// Most `llm_max_retries` (retries stay bounded).
pub const MAX_LLM_RETRIES: u64 = 100;
/// Most `journal_retention_days` (100 years).
pub const MAX_RETENTION_DAYS: u64 = 36_500;

const GIB: u64 = 1 << 30;

/// Validated options of one project with SPEC defaults (SPEC §3.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveOptions {
    /// `project_id`; `None` = generate (SPEC §1).
    pub project_id: Option<ProjectId>,
    /// `data_dir`, relative to the root, normalized (no `.` components).
    pub data_dir: PathBuf,
    /// `<root>/<data_dir>`.
    pub data_dir_path: PathBuf,
    /// The journal home: `state_dir` if absolute, else `<data_dir_path>/<state_dir>`.
    pub state_dir_path: PathBuf,
    /// `tool_timeout_ms`.
    pub tool_timeout_ms: u64,
    /// `tool_timeout_alert_threshold`.
    pub tool_timeout_alert_threshold: u32,
    /// `tool_timeout_alert_window_ms`.
    pub tool_timeout_alert_window_ms: u64,
    /// `tool_max_output_bytes`.
    pub tool_max_output_bytes: usize,
    /// `tool_max_artifact_bytes`.
    pub tool_max_artifact_bytes: usize,
    /// `tool_max_args_bytes`.
    pub tool_max_args_bytes: usize,
    /// `tool_max_concurrency`.
    pub tool_max_concurrency: usize,
    /// `tool_max_concurrency_per_conversation` (0 rejects calls with a conversation id).
    pub tool_max_concurrency_per_conversation: usize,
    /// `tool_max_queued` (0 = fail at once when every slot is busy).
    pub tool_max_queued: usize,
    /// `tool_queue_timeout_ms`.
    pub tool_queue_timeout_ms: u64,
    /// `llm_timeout_ms`.
    pub llm_timeout_ms: u64,
    /// `llm_max_retries`.
    pub llm_max_retries: u32,
    /// `model_client`.
    pub model_client: String,
    /// `llm_model`.
    pub llm_model: Option<String>,
    /// `llm_system_prompt`.
    pub llm_system_prompt: Option<String>,
    /// `llm_temperature`.
    pub llm_temperature: Option<f64>,
    /// `llm_max_tokens`.
    pub llm_max_tokens: Option<u64>,
    /// `conversation_max_queue_size`.
    pub conversation_max_queue_size: usize,
    /// `conversation_max_drain_steps`.
    pub conversation_max_drain_steps: u32,
    /// `conversation_max_turn_steps`.
    pub conversation_max_turn_steps: u32,
    /// `conversation_timeline_window`.
    pub conversation_timeline_window: usize,
    /// `restore_conversations`.
    pub restore_conversations: bool,
    /// `watcher`.
    pub watcher: bool,
    /// `watcher_debounce_ms`.
    pub watcher_debounce_ms: u64,
    /// `watcher_max_wait_ms` (≥ `watcher_debounce_ms`).
    pub watcher_max_wait_ms: u64,
    /// `strict_asset_loading`.
    pub strict_asset_loading: bool,
    /// `command_shell`.
    pub command_shell: String,
    /// `command_path`.
    pub command_path: String,
    /// `command_max_file_bytes` (`RLIMIT_FSIZE`).
    pub command_max_file_bytes: u64,
    /// `command_max_open_files` (`RLIMIT_NOFILE`).
    pub command_max_open_files: u64,
    /// `command_max_memory_bytes` (`RLIMIT_AS`); `None` = unlimited.
    pub command_max_memory_bytes: Option<u64>,
    /// `subagent_templates`.
    pub subagent_templates: Vec<SubagentTemplate>,
    /// `subagent_max_children`.
    pub subagent_max_children: u32,
    /// `subagent_ttl_ms`.
    pub subagent_ttl_ms: u64,
    /// `telemetry_recent_events` (ring size).
    pub telemetry_recent_events: usize,
    /// `telemetry_recent_errors` (ring size).
    pub telemetry_recent_errors: usize,
    /// `policy_recent_decisions` (ring size).
    pub policy_recent_decisions: usize,
    /// `health_error_window_ms`.
    pub health_error_window_ms: u64,
    /// `alert_events`.
    pub alert_events: Vec<String>,
    /// `alert_routes`.
    pub alert_routes: Vec<AlertRouteOption>,
    /// `journal_retention_days`.
    pub journal_retention_days: u32,
    /// `journal_max_bytes`.
    pub journal_max_bytes: u64,
    /// `journal_sync`.
    pub journal_sync: JournalSync,
    /// `journal_on_corruption`.
    pub journal_on_corruption: JournalOnCorruption,
    /// `deny_multiply_linked_files` (fs tools refuse files with several hard links).
    pub deny_multiply_linked_files: bool,
    /// `trust_project_file` (operator layers only).
    pub trust_project_file: bool,
    /// Whether the `codeward.toml` layer was trusted (merged normally).
    pub file_trusted: bool,
    /// The **P** keys and `state_dir`, validated by the policy crate.
    pub policy: PolicyOptions,
    /// The project file read at start, if any.
    pub config_file: Option<PathBuf>,
    #[serde(skip)]
    root: PathBuf,
    #[serde(skip)]
    fingerprint: Option<FileFingerprint>,
    #[serde(skip)]
    sources: BTreeMap<String, OptionSource>,
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn u32_of(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

const USIZE_MAX: u64 = if (usize::MAX as u128) < (u64::MAX as u128) {
    usize::MAX as u64
} else {
    u64::MAX
};

fn pos_usize(v: &Value) -> Checked<usize> {
    positive_int(v, 1, USIZE_MAX).map(usize_of)
}

fn non_neg_usize(v: &Value) -> Checked<usize> {
    non_negative_int(v, USIZE_MAX).map(usize_of)
}

fn pos_u32(v: &Value) -> Checked<u32> {
    positive_int(v, 1, u64::from(u32::MAX)).map(u32_of)
}

fn duration(min: u64) -> impl Fn(&Value) -> Checked<u64> {
    move |v| positive_int(v, min, MAX_DURATION_MS)
}

fn ring(v: &Value) -> Checked<usize> {
    positive_int(v, 1, 10_000).map(usize_of)
}

fn owned_opt_string(v: &Value) -> Checked<Option<String>> {
    opt_string(v).map(|s| s.map(str::to_owned))
}

/// A string without NUL bytes (`invalid_path`); `non_empty` also refuses blank values.
fn command_string(non_empty: bool) -> impl Fn(&Value) -> Checked<String> {
    move |v| {
        let s = if non_empty {
            validate::non_empty_string(v)?
        } else {
            validate::string(v)?
        };
        if s.contains('\0') {
            return Err(Fail::new("invalid_path"));
        }
        Ok(s.to_owned())
    }
}

/// `data_dir`: non-empty, relative, no `..`, strictly inside the root also after resolving
/// the symlinks of its existing part. Returns the normalized relative path.
fn data_dir(v: &Value, root: &Path) -> Checked<PathBuf> {
    let s = validate::non_empty_string(v)?;
    if s.contains('\0') {
        return Err(Fail::new("invalid_path"));
    }
    let p = Path::new(s);
    if p.is_absolute() {
        return Err(Fail::new("must_be_relative"));
    }
    let mut rel = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => rel.push(x),
            Component::CurDir => {}
            Component::ParentDir => return Err(Fail::new("must_not_traverse")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(Fail::new("must_be_relative"));
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(Fail::new("must_stay_inside_root"));
    }
    // The deepest existing prefix decides: canonicalizing it resolves every symlink on the way.
    let full = root.join(&rel);
    let mut probe = full.clone();
    while probe != root && probe.starts_with(root) {
        if probe.symlink_metadata().is_ok() {
            let inside = std::fs::canonicalize(&probe)
                .is_ok_and(|c| c.starts_with(root) && (probe != full || c != root));
            if !inside {
                return Err(Fail::new("must_stay_inside_root"));
            }
            break;
        }
        if !probe.pop() {
            break;
        }
    }
    Ok(rel)
}

fn state_dir_path(data_dir_path: &Path, state_dir: Option<&str>) -> PathBuf {
    let s = state_dir.unwrap_or(DEFAULT_STATE_DIR);
    let p = Path::new(s);
    if p.is_absolute() {
        return p.to_owned();
    }
    let mut out = data_dir_path.to_owned();
    for c in p.components() {
        if let Component::Normal(x) = c {
            out.push(x);
        }
    }
    out
}

fn project_id(v: &Value) -> Result<Option<ProjectId>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => {
            ProjectId::parse(s)
                .map(Some)
                .map_err(|e| OptionsError::InvalidProjectId {
                    reason: e.reason.as_str().to_owned(),
                })
        }
        _ => Err(OptionsError::opt("project_id", "expected_string_or_null")),
    }
}

impl EffectiveOptions {
    /// Resolves and validates `layers` (SPEC §3.1, §3.4 step 3). The first failure is
    /// returned: `invalid_runtime_opt{key, reason}` (details name the layer as `source`, and
    /// the file's `path` / `line`), or `invalid_project_id{reason}`.
    pub fn resolve(layers: &OptionLayers, ctx: &ResolveContext) -> Result<Self> {
        let trust_project_file = layers.trust_project_file()?;
        let trusted = ctx.trusted || trust_project_file;
        let root = ctx.root.as_path();
        let mut p = Picker::new(layers, trusted);

        let data_dir = p.plain("data_dir", PathBuf::from(DEFAULT_DATA_DIR), |v| {
            data_dir(v, root)
        })?;
        let project_id = p.plain_with("project_id", None, project_id)?;
        p.policy("state_dir")?;
        let tool_timeout_ms = p.plain("tool_timeout_ms", 30_000, |v| {
            positive_int(v, 1, 86_400_000)
        })?;
        let tool_timeout_alert_threshold = p.plain("tool_timeout_alert_threshold", 3, pos_u32)?;
        let tool_timeout_alert_window_ms =
            p.plain("tool_timeout_alert_window_ms", 600_000, duration(1))?;
        let tool_max_output_bytes = p.plain("tool_max_output_bytes", 262_144, pos_usize)?;
        let tool_max_artifact_bytes = p.plain("tool_max_artifact_bytes", 131_072, pos_usize)?;
        let tool_max_args_bytes = p.plain("tool_max_args_bytes", 1_048_576, pos_usize)?;
        let tool_max_concurrency = p.plain("tool_max_concurrency", 8, pos_usize)?;
        let tool_max_concurrency_per_conversation =
            p.plain("tool_max_concurrency_per_conversation", 4, non_neg_usize)?;
        let tool_max_queued = p.plain("tool_max_queued", 64, non_neg_usize)?;
        let tool_queue_timeout_ms = p.plain("tool_queue_timeout_ms", 5_000, duration(1))?;
        let llm_timeout_ms = p.plain("llm_timeout_ms", 120_000, duration(1))?;
        let llm_max_retries = p.plain("llm_max_retries", 1, |v| {
            non_negative_int(v, MAX_LLM_RETRIES).map(u32_of)
        })?;
        let model_client = p.plain_with("model_client", "scripted".to_owned(), |v| {
            validate::non_empty_string(v)
                .map(str::to_owned)
                .map_err(|f| f.at("model_client"))
        })?;
        if !ctx.model_clients.contains(&model_client) {
            return Err(p.tag_key(
                OptionsError::opt_with(
                    "model_client",
                    "unknown_model_client",
                    json!({ "name": model_client }),
                ),
                "model_client",
            ));
        }
        let llm_model = p.plain("llm_model", None, owned_opt_string)?;
        let llm_system_prompt = p.plain("llm_system_prompt", None, owned_opt_string)?;
        let llm_temperature = p.plain("llm_temperature", None, |v| opt_number(v, 0.0, 2.0))?;
        let llm_max_tokens = p.plain("llm_max_tokens", None, opt_positive_int)?;
        let conversation_max_queue_size =
            p.plain("conversation_max_queue_size", 10_000, pos_usize)?;
        let conversation_max_drain_steps = p.plain("conversation_max_drain_steps", 128, pos_u32)?;
        let conversation_max_turn_steps = p.plain("conversation_max_turn_steps", 32, pos_u32)?;
        let conversation_timeline_window = p.plain("conversation_timeline_window", 2_000, |v| {
            positive_int(v, 100, USIZE_MAX).map(usize_of)
        })?;
        let restore_conversations = p.plain("restore_conversations", true, validate::boolean)?;
        let watcher = p.plain("watcher", false, validate::boolean)?;
        let watcher_debounce_ms = p.plain("watcher_debounce_ms", 250, duration(1))?;
        let watcher_max_wait_ms = p.plain("watcher_max_wait_ms", 2_000, duration(1))?;
        let strict_asset_loading = p.plain("strict_asset_loading", false, validate::boolean)?;
        for key in [
            "allow_tools",
            "deny_tools",
            "network_egress_policy",
            "network_allowlist",
            "network_allowed_schemes",
            "sensitive_path_denylist",
            "sensitive_path_allowlist",
            "outside_root_allowlist",
            "tool_env_allowlist",
            "tool_env_inherit",
            "protocol_allowlist",
            "redact_tool_results",
            "require_os_sandbox",
            "command_read_paths",
        ] {
            p.policy(key)?;
        }
        let command_shell = p.plain("command_shell", "/bin/sh".to_owned(), command_string(true))?;
        let command_path = p.plain(
            "command_path",
            "/usr/local/bin:/usr/bin:/bin".to_owned(),
            command_string(false),
        )?;
        let command_max_file_bytes = p.plain("command_max_file_bytes", GIB, |v| {
            positive_int(v, 1, u64::MAX)
        })?;
        let command_max_open_files = p.plain("command_max_open_files", 1024, |v| {
            positive_int(v, 1, u64::MAX)
        })?;
        let command_max_memory_bytes =
            p.plain("command_max_memory_bytes", None, opt_positive_int)?;
        let subagent_templates = p.plain_with("subagent_templates", Vec::new(), |v| {
            entries::subagent_templates("subagent_templates", v)
        })?;
        p.policy("subagent_templates_allowlist")?;
        let subagent_max_children = p.plain("subagent_max_children", 3, pos_u32)?;
        let subagent_ttl_ms = p.plain("subagent_ttl_ms", 300_000, duration(1000))?;
        let telemetry_recent_events = p.plain("telemetry_recent_events", 200, ring)?;
        let telemetry_recent_errors = p.plain("telemetry_recent_errors", 25, ring)?;
        let policy_recent_decisions = p.plain("policy_recent_decisions", 200, ring)?;
        let health_error_window_ms = p.plain("health_error_window_ms", 300_000, duration(1000))?;
        let alert_events = p.plain_with("alert_events", Vec::new(), |v| {
            entries::event_patterns(v).map_err(|f| match f.details.get("item").cloned() {
                Some(i) => {
                    let mut f = f;
                    f.details.remove("item");
                    f.at_entry("alert_events", usize_of(i.as_u64().unwrap_or(0)))
                }
                None => f.at("alert_events"),
            })
        })?;
        let alert_routes = p.plain_with("alert_routes", Vec::new(), |v| {
            entries::alert_routes("alert_routes", v, &ctx.alert_sinks)
        })?;
        let journal_retention_days = p.plain("journal_retention_days", 30, |v| {
            positive_int(v, 1, MAX_RETENTION_DAYS).map(u32_of)
        })?;
        let journal_max_bytes = p.plain("journal_max_bytes", GIB, |v| {
            positive_int(v, MIN_JOURNAL_MAX_BYTES, u64::MAX)
        })?;
        let journal_sync = p.plain("journal_sync", JournalSync::Normal, |v| {
            validate::one_of(v, &["normal", "full"]).map(|s| match s {
                "full" => JournalSync::Full,
                _ => JournalSync::Normal,
            })
        })?;
        let journal_on_corruption = p.plain(
            "journal_on_corruption",
            JournalOnCorruption::Quarantine,
            |v| {
                validate::one_of(v, &["quarantine", "fail"]).map(|s| match s {
                    "fail" => JournalOnCorruption::Fail,
                    _ => JournalOnCorruption::Quarantine,
                })
            },
        )?;
        let deny_multiply_linked_files = p.safer_bool("deny_multiply_linked_files", false)?;
        p.raw("trust_project_file");

        // Cross-key rules.
        if watcher_max_wait_ms < watcher_debounce_ms {
            return Err(p.tag_key(
                OptionsError::opt_with(
                    "watcher_max_wait_ms",
                    "must_be_at_least",
                    json!({ "other_key": "watcher_debounce_ms", "min": watcher_debounce_ms }),
                ),
                "watcher_max_wait_ms",
            ));
        }

        let (sources, policy_raw) = p.into_parts();
        let policy = policy_options(policy_raw)?;
        let data_dir_path = root.join(&data_dir);
        let state_dir_path = state_dir_path(&data_dir_path, policy.state_dir.as_deref());
        let config_file = layers.file.as_ref().map(|f| f.path.clone());
        let fingerprint = layers.file.as_ref().and_then(|f| f.fingerprint().cloned());
        Ok(Self {
            project_id,
            data_dir,
            data_dir_path,
            state_dir_path,
            tool_timeout_ms,
            tool_timeout_alert_threshold,
            tool_timeout_alert_window_ms,
            tool_max_output_bytes,
            tool_max_artifact_bytes,
            tool_max_args_bytes,
            tool_max_concurrency,
            tool_max_concurrency_per_conversation,
            tool_max_queued,
            tool_queue_timeout_ms,
            llm_timeout_ms,
            llm_max_retries,
            model_client,
            llm_model,
            llm_system_prompt,
            llm_temperature,
            llm_max_tokens,
            conversation_max_queue_size,
            conversation_max_drain_steps,
            conversation_max_turn_steps,
            conversation_timeline_window,
            restore_conversations,
            watcher,
            watcher_debounce_ms,
            watcher_max_wait_ms,
            strict_asset_loading,
            command_shell,
            command_path,
            command_max_file_bytes,
            command_max_open_files,
            command_max_memory_bytes,
            subagent_templates,
            subagent_max_children,
            subagent_ttl_ms,
            telemetry_recent_events,
            telemetry_recent_errors,
            policy_recent_decisions,
            health_error_window_ms,
            alert_events,
            alert_routes,
            journal_retention_days,
            journal_max_bytes,
            journal_sync,
            journal_on_corruption,
            deny_multiply_linked_files,
            trust_project_file,
            file_trusted: trusted,
            policy,
            config_file,
            root: ctx.root.clone(),
            fingerprint,
            sources,
        })
    }

    /// Every key → its effective value as JSON (SPEC §9.1 `options`). `project_id` is null when
    /// it is to be generated; `state_dir` shows the configured value (default `state`).
    pub fn values(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for key in ProjectOptions::KEYS {
            m.insert((*key).to_owned(), self.value(key));
        }
        m
    }

    fn value(&self, key: &str) -> Value {
        match key {
            "project_id" => json!(self.project_id.as_ref().map(ProjectId::as_str)),
            "data_dir" => json!(self.data_dir.to_string_lossy()),
            "state_dir" => json!(
                self.policy
                    .state_dir
                    .as_deref()
                    .unwrap_or(DEFAULT_STATE_DIR)
            ),
            "tool_timeout_ms" => json!(self.tool_timeout_ms),
            "tool_timeout_alert_threshold" => json!(self.tool_timeout_alert_threshold),
            "tool_timeout_alert_window_ms" => json!(self.tool_timeout_alert_window_ms),
            "tool_max_output_bytes" => json!(self.tool_max_output_bytes),
            "tool_max_artifact_bytes" => json!(self.tool_max_artifact_bytes),
            "tool_max_args_bytes" => json!(self.tool_max_args_bytes),
            "tool_max_concurrency" => json!(self.tool_max_concurrency),
            "tool_max_concurrency_per_conversation" => {
                json!(self.tool_max_concurrency_per_conversation)
            }
            "tool_max_queued" => json!(self.tool_max_queued),
            "tool_queue_timeout_ms" => json!(self.tool_queue_timeout_ms),
            "llm_timeout_ms" => json!(self.llm_timeout_ms),
            "llm_max_retries" => json!(self.llm_max_retries),
            "model_client" => json!(self.model_client),
            "llm_model" => json!(self.llm_model),
            "llm_system_prompt" => json!(self.llm_system_prompt),
            "llm_temperature" => json!(self.llm_temperature),
            "llm_max_tokens" => json!(self.llm_max_tokens),
            "conversation_max_queue_size" => json!(self.conversation_max_queue_size),
            "conversation_max_drain_steps" => json!(self.conversation_max_drain_steps),
            "conversation_max_turn_steps" => json!(self.conversation_max_turn_steps),
            "conversation_timeline_window" => json!(self.conversation_timeline_window),
            "restore_conversations" => json!(self.restore_conversations),
            "watcher" => json!(self.watcher),
            "watcher_debounce_ms" => json!(self.watcher_debounce_ms),
            "watcher_max_wait_ms" => json!(self.watcher_max_wait_ms),
            "strict_asset_loading" => json!(self.strict_asset_loading),
            "command_shell" => json!(self.command_shell),
            "command_path" => json!(self.command_path),
            "command_max_file_bytes" => json!(self.command_max_file_bytes),
            "command_max_open_files" => json!(self.command_max_open_files),
            "command_max_memory_bytes" => json!(self.command_max_memory_bytes),
            "subagent_templates" => Value::Array(
                self.subagent_templates
                    .iter()
                    .map(SubagentTemplate::to_value)
                    .collect(),
            ),
            "subagent_max_children" => json!(self.subagent_max_children),
            "subagent_ttl_ms" => json!(self.subagent_ttl_ms),
            "telemetry_recent_events" => json!(self.telemetry_recent_events),
            "telemetry_recent_errors" => json!(self.telemetry_recent_errors),
            "policy_recent_decisions" => json!(self.policy_recent_decisions),
            "health_error_window_ms" => json!(self.health_error_window_ms),
            "alert_events" => json!(self.alert_events),
            "alert_routes" => Value::Array(
                self.alert_routes
                    .iter()
                    .map(AlertRouteOption::to_value)
                    .collect(),
            ),
            "journal_retention_days" => json!(self.journal_retention_days),
            "journal_max_bytes" => json!(self.journal_max_bytes),
            "journal_sync" => json!(self.journal_sync.as_str()),
            "journal_on_corruption" => json!(self.journal_on_corruption.as_str()),
            "deny_multiply_linked_files" => json!(self.deny_multiply_linked_files),
            "trust_project_file" => json!(self.trust_project_file),
            other => policy_value(other, &self.policy),
        }
    }

    /// Every key → the layer its effective value came from (SPEC §9.1 `option_sources`). A key
    /// narrowed by an untrusted file reports `file` only when the file changed its value.
    pub fn sources(&self) -> BTreeMap<String, OptionSource> {
        self.sources.clone()
    }

    /// The layer `key`'s effective value came from (`None` for unknown keys).
    pub fn source(&self, key: &str) -> Option<OptionSource> {
        self.sources.get(key).copied()
    }

    /// Whether `<root>/codeward.toml` differs from what was read at start: edited, removed, or
    /// created when there was none (SPEC §3.1 `config_file_changed`).
    pub fn config_file_changed(&self) -> bool {
        let path = self
            .config_file
            .clone()
            .unwrap_or_else(|| self.root.join(PROJECT_FILE_NAME));
        match &self.fingerprint {
            Some(fp) => fp.changed(&path),
            // No file was read (or the file layer was built in memory): any file there now is
            // not what was read.
            None => path.symlink_metadata().is_ok(),
        }
    }

    /// The root these options were resolved for.
    pub fn root(&self) -> &Path {
        &self.root
    }
}
