//! One hosted project at run time: its effective options, the snapshots the hot path reads
//! (policy, assets, catalog), the handles of its supervised actors, its executor, its live
//! conversations, and its status. The engine keeps these in a `DashMap` keyed by project id, so
//! a tool call reaches its project without an actor hop (SPEC §4, DESIGN "A tool call travels
//! one way").

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use codeward_actors::asset_actor::AssetHandle;
use codeward_actors::executor::ExecutorPool;
use codeward_actors::ids::{ConversationId, ProjectId};
use codeward_actors::policy_actor::PolicyHandle;
use codeward_actors::supervision::{ChildRegistry, SupervisorHandle};
use codeward_actors::telemetry::{SharedStore, TelemetryEvent, TelemetryHandle};
use codeward_actors::watcher_actor::WatcherHandle;
use codeward_policies::secrets::Redactor;
use codeward_tools::fs::RootDir;
use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, StaticTools};
use crate::config::{Clock, ProjectContext};
use crate::conversations::ConversationEntry;
use crate::options::EffectiveOptions;
use crate::types::ProjectStatus;

/// The engine-wide exact-value redaction set (SPEC §5.9 `exact_value`), shared by projects.
#[derive(Default)]
pub(crate) struct SecretValues {
    values: Mutex<Vec<String>>,
    redactor: RwLock<Arc<Redactor>>,
}

/// Most exact values remembered (oldest forgotten first); each needs ≥8 chars to count.
const MAX_SECRET_VALUES: usize = 4096;

impl SecretValues {
    /// A set seeded with `values`.
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let s = Self::default();
        s.add(values);
        s
    }

    /// The current redactor.
    pub fn redactor(&self) -> Arc<Redactor> {
        self.redactor
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Adds values (≥8 chars) and rebuilds the redactor when something new arrived.
    pub fn add(&self, values: impl IntoIterator<Item = String>) {
        let mut guard = self
            .values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut changed = false;
        for v in values {
            if v.len() >= 8 && !guard.contains(&v) {
                guard.push(v);
                changed = true;
            }
        }
        if !changed {
            return;
        }
        let excess = guard.len().saturating_sub(MAX_SECRET_VALUES);
        guard.drain(..excess);
        let redactor = Arc::new(Redactor::new(guard.iter().cloned()));
        *self
            .redactor
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = redactor;
    }
}

/// Names of the children of a project supervisor (registry names, unique per project).
pub(crate) mod names {
    pub const JOURNAL: &str = "journal";
    pub const TELEMETRY: &str = "telemetry";
    pub const POLICY: &str = "policy";
    pub const ASSETS: &str = "assets";
    pub const EXECUTOR: &str = "executor";
    pub const CONVERSATIONS: &str = "conversations";
    pub const WATCHER: &str = "watcher";
}

/// The run-time state of one project.
pub(crate) struct ProjectRuntime {
    pub id: ProjectId,
    pub root: PathBuf,
    pub root_given: PathBuf,
    pub data_dir: PathBuf,
    pub state_dir: PathBuf,
    pub options: Arc<EffectiveOptions>,
    pub context: ProjectContext,
    pub clock: Arc<dyn Clock>,
    pub started_at_ms: i64,
    pub registry: ChildRegistry,
    pub supervisor: Mutex<Option<SupervisorHandle>>,
    pub policy: PolicyHandle,
    pub assets: AssetHandle,
    pub watcher: Option<WatcherHandle>,
    pub telemetry: TelemetryHandle,
    pub telemetry_store: SharedStore,
    pub executor: ExecutorPool,
    pub root_dir: Arc<RootDir>,
    pub statics: Arc<StaticTools>,
    pub catalog: RwLock<Arc<Catalog>>,
    pub catalog_build: Mutex<()>,
    pub conversations: DashMap<ConversationId, Arc<ConversationEntry>>,
    pub secrets: Arc<SecretValues>,
    pub stop: CancellationToken,
    pub status: AtomicU8,
    pub os_network_enforced: bool,
    pub failure: Mutex<Option<String>>,
    pub alerts: codeward_actors::telemetry::AlertRouter,
    pub journal: codeward_actors::journal::JournalHandle,
    pub directory: codeward_actors::conversation_actor::ConversationDirectory,
    pub self_ref: Arc<std::sync::OnceLock<std::sync::Weak<ProjectRuntime>>>,
    pub model_clients:
        Arc<std::collections::HashMap<String, Arc<dyn codeward_actors::conversation::ModelClient>>>,
}

impl ProjectRuntime {
    /// Emits a telemetry event (never blocks; drops are counted).
    pub fn emit(&self, ev: TelemetryEvent) {
        self.telemetry.record(ev);
    }

    /// The current status.
    pub fn status(&self) -> ProjectStatus {
        match self.status.load(Ordering::Acquire) {
            0 => ProjectStatus::Starting,
            1 => ProjectStatus::Running,
            2 => ProjectStatus::Failed,
            _ => ProjectStatus::Stopping,
        }
    }

    /// Sets the status.
    pub fn set_status(&self, status: ProjectStatus) {
        let v = match status {
            ProjectStatus::Starting => 0,
            ProjectStatus::Running | ProjectStatus::Degraded => 1,
            ProjectStatus::Failed => 2,
            ProjectStatus::Stopping => 3,
        };
        self.status.store(v, Ordering::Release);
    }

    /// The catalog of the serving asset generation (rebuilt once when the generation moved).
    pub fn catalog(&self) -> Arc<Catalog> {
        let snapshot = self.assets.snapshot();
        {
            let current = self
                .catalog
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if current.generation() == snapshot.generation() {
                return current.clone();
            }
        }
        let _building = self
            .catalog_build
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let snapshot = self.assets.snapshot();
        {
            let current = self
                .catalog
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if current.generation() == snapshot.generation() {
                return current.clone();
            }
        }
        let built = Arc::new(Catalog::build(&self.statics, snapshot));
        *self
            .catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = built.clone();
        built
    }

    /// The redactor for telemetry, errors and (with `redact_tool_results`) results.
    pub fn redactor(&self) -> Arc<Redactor> {
        self.secrets.redactor()
    }

    /// Now, from the engine clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
