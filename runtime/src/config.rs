//! `EngineConfig` (SPEC §2.2 `Engine::start`): the operator-level configuration — default
//! project options (layer 2), the injectable [`Clock`], model clients, tool providers, alert
//! sinks and routes, trusted roots, env values to redact, and the project id generator.
//! `EngineConfig::validate` (run by `Engine::start`) refuses duplicates and unknown references with
//! `invalid_engine_config{reason}`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use codeward_actors::conversation::{ModelClient, ScriptedModel};
use codeward_actors::telemetry::{AlertRoute, AlertSink};
use futures::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use codeward_tools::ToolSpec;

use crate::error::{Error, Result};
use crate::options::ProjectOptions;

/// Wall-clock source (SPEC §1: instants come from the injectable clock).
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// What a provider sees of the project it serves (SPEC §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectContext {
    /// Project id.
    pub project_id: String,
    /// Canonical root.
    pub root: PathBuf,
    /// Data dir (absolute).
    pub data_dir: PathBuf,
}

/// One call handed to a provider tool (after every policy check of SPEC §4).
#[derive(Debug, Clone)]
pub struct ProviderCall {
    /// The project.
    pub project: ProjectContext,
    /// Tool name.
    pub tool: String,
    /// Conversation, if any.
    pub conversation_id: Option<String>,
    /// Correlation id.
    pub correlation_id: String,
    /// Tool call id.
    pub tool_call_id: String,
    /// Fired on cancel; the provider should stop promptly.
    pub cancel: CancellationToken,
    /// The call's deadline (the runtime enforces it too).
    pub deadline: tokio::time::Instant,
}

/// A provider tool failure: `tool_failed{reason}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct ProviderError {
    /// Snake_case reason.
    pub reason: String,
    /// Message.
    pub message: String,
}

/// Trusted Rust code contributing tools to every project (SPEC §7.1).
pub trait ToolProvider: Send + Sync {
    /// The tools for `project` (names must not collide with built-ins or other providers).
    fn tools(&self, project: &ProjectContext) -> Vec<ToolSpec>;
    /// Runs one of them.
    fn call(
        &self,
        call: ProviderCall,
        args: Value,
    ) -> BoxFuture<'static, Result<Value, ProviderError>>;
}

/// Generates a project id from (canonical root, data dir) when none is given.
pub type ProjectIdGenerator = Arc<dyn Fn(&Path, &Path) -> String + Send + Sync>;

/// The engine's configuration.
#[derive(Clone)]
pub struct EngineConfig {
    /// Layer 2 of the project options (the daemon's `[defaults]`).
    pub defaults: ProjectOptions,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Model clients by name; `scripted` is always registered.
    pub model_clients: Vec<Arc<dyn ModelClient>>,
    /// Tool providers.
    pub tool_providers: Vec<Arc<dyn ToolProvider>>,
    /// Alert sinks (a `log` sink always exists).
    pub alert_sinks: Vec<Arc<dyn AlertSink>>,
    /// Global alert routes.
    pub alert_routes: Vec<AlertRoute>,
    /// Critical escalation events (names or `*` patterns); `None` = the SPEC defaults.
    pub alert_events: Option<Vec<String>>,
    /// Roots whose `codeward.toml` is trusted (an ancestor match trusts the project file).
    pub trusted_roots: Vec<PathBuf>,
    /// Names of daemon env vars whose values are redacted everywhere.
    pub redact_env_values: Vec<String>,
    /// Replaces the SPEC §1 id generator.
    pub project_id_generator: Option<ProjectIdGenerator>,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("defaults", &self.defaults)
            .field(
                "model_clients",
                &self
                    .model_clients
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>(),
            )
            .field("tool_providers", &self.tool_providers.len())
            .field(
                "alert_sinks",
                &self
                    .alert_sinks
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>(),
            )
            .field("alert_routes", &self.alert_routes)
            .field("alert_events", &self.alert_events)
            .field("trusted_roots", &self.trusted_roots)
            .field("redact_env_values", &self.redact_env_values)
            .finish_non_exhaustive()
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            defaults: ProjectOptions::default(),
            clock: Arc::new(SystemClock),
            model_clients: Vec::new(),
            tool_providers: Vec::new(),
            alert_sinks: Vec::new(),
            alert_routes: Vec::new(),
            alert_events: None,
            trusted_roots: Vec::new(),
            redact_env_values: Vec::new(),
            project_id_generator: None,
        }
    }
}

impl EngineConfig {
    /// With these default project options.
    pub fn with_defaults(mut self, defaults: ProjectOptions) -> Self {
        self.defaults = defaults;
        self
    }

    /// With a model client.
    pub fn with_model_client(mut self, client: Arc<dyn ModelClient>) -> Self {
        self.model_clients.push(client);
        self
    }

    /// With a tool provider.
    pub fn with_tool_provider(mut self, provider: Arc<dyn ToolProvider>) -> Self {
        self.tool_providers.push(provider);
        self
    }

    /// With an alert sink.
    pub fn with_alert_sink(mut self, sink: Arc<dyn AlertSink>) -> Self {
        self.alert_sinks.push(sink);
        self
    }

    /// With a global alert route.
    pub fn with_alert_route(mut self, route: AlertRoute) -> Self {
        self.alert_routes.push(route);
        self
    }

    /// With this clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// With a trusted root.
    pub fn with_trusted_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.trusted_roots.push(root.into());
        self
    }

    /// The registered model clients, `scripted` first unless replaced by name.
    pub(crate) fn all_model_clients(&self) -> Vec<Arc<dyn ModelClient>> {
        let mut out: Vec<Arc<dyn ModelClient>> = self.model_clients.clone();
        if !out.iter().any(|m| m.name() == "scripted") {
            out.insert(0, Arc::new(ScriptedModel::new()));
        }
        out
    }

    /// Checks names for duplicates and routes for unknown sinks.
    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Error::InvalidEngineConfig { reason };
        let mut seen = BTreeSet::new();
        for m in &self.model_clients {
            if !seen.insert(m.name().to_owned()) {
                return Err(invalid(format!("duplicate model client `{}`", m.name())));
            }
        }
        let mut sinks = BTreeSet::new();
        for s in &self.alert_sinks {
            if !sinks.insert(s.name().to_owned()) {
                return Err(invalid(format!("duplicate alert sink `{}`", s.name())));
            }
        }
        for route in &self.alert_routes {
            for sink in &route.sinks {
                if sink != "log" && !sinks.contains(sink) {
                    return Err(invalid(format!("alert route names unknown sink `{sink}`")));
                }
            }
        }
        // Provider tool names must not collide with built-ins or each other (SPEC §7.1).
        let probe = ProjectContext {
            project_id: "engine-start-check".into(),
            root: PathBuf::from("/"),
            data_dir: PathBuf::from("/.codeward"),
        };
        let mut tools: BTreeSet<String> = codeward_tools::builtin_specs()
            .into_iter()
            .map(|s| s.name)
            .chain(["asset.get", "asset.list", "asset.search"].map(String::from))
            .collect();
        for provider in &self.tool_providers {
            for spec in provider.tools(&probe) {
                if !tools.insert(spec.name.clone()) {
                    return Err(invalid(format!("duplicate tool name `{}`", spec.name)));
                }
            }
        }
        for name in &self.redact_env_values {
            if !codeward_policies::env::valid_env_name(name) {
                return Err(invalid(format!(
                    "invalid env var name `{name}` in redact_env_values"
                )));
            }
        }
        Ok(())
    }
}
