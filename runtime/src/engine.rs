//! [`Engine`]: the cloneable handle that is the only public entry point (SPEC §2). It owns the
//! engine supervisor (one dynamic, one_for_one child per project), the project registry (a
//! `DashMap`, so calls reach their project without an actor hop), the engine-owned telemetry
//! stores (counters, rings and seq survive actor restarts and project stop/start), and the
//! exact-value redaction set.
//!
//! Files: `engine/projects.rs` (start/stop/list), `engine/tools.rs` (catalog and the execution
//! path), `engine/assets.rs`, `engine/diagnostics.rs` (diagnostics, timeline, health),
//! `engine/failure.rs` (failure injection for tests and runbook drills).
//!
//! Supervision (restart table, SPEC §13.1):
//!
//! | Child | Restart | Strategy | Intensity | Rebuilds from |
//! |---|---|---|---|---|
//! | engine *(supervisor)* | — | one_for_one, dynamic | — | the engine's project registry |
//! | project:ID | temporary (past its intensity it is quarantined, never restarted) | one_for_one | 5 in 10 s → escalate → quarantine | effective options held by the engine |
//! | telemetry | permanent | — | counts toward project | engine-owned `TelemetryStore` |
//! | policy | permanent | — | counts toward project | recompiled from effective options |
//! | assets | permanent | — | counts toward project | engine-owned asset store; one reload |
//! | executor | permanent | one_for_one (workers) | 5 in 10 s → escalate | nothing: in-flight calls `interrupted` |
//! | watcher | transient | — | counts toward project | nothing; one reload on restart |

pub(crate) mod assets;
pub(crate) mod conversations;
pub(crate) mod diagnostics;
pub(crate) mod failure;
mod projects;
pub(crate) mod tools;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use codeward_actors::conversation::ModelClient;
use codeward_actors::ids::ProjectId;
use codeward_actors::supervision::{
    ChildRegistry, Supervisor, SupervisorArgs, SupervisorConfig, SupervisorEvent, SupervisorHandle,
};
use codeward_actors::telemetry::SharedStore;
use dashmap::DashMap;

use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::project::{ProjectRuntime, SecretValues};

pub(crate) struct EngineInner {
    pub config: EngineConfig,
    pub model_clients: Arc<HashMap<String, Arc<dyn ModelClient>>>,
    pub projects: DashMap<ProjectId, Arc<ProjectRuntime>>,
    /// (canonical root, data dir) → project id, for `root_in_use`.
    pub roots: DashMap<(PathBuf, PathBuf), ProjectId>,
    pub telemetry_stores: DashMap<ProjectId, SharedStore>,
    pub secrets: Arc<SecretValues>,
    pub registry: ChildRegistry,
    pub supervisor: SupervisorHandle,
    pub shutting_down: AtomicBool,
    pub started_at_ms: i64,
    pub started: tokio::time::Instant,
    /// Serializes the id / root checks of `start_project` with the insertion.
    pub start_lock: tokio::sync::Mutex<()>,
}

/// The codeward engine: hosts projects and runs every tool call through one policy-gated path.
/// Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("projects", &self.inner.projects.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Validates the configuration, probes the OS sandbox once, makes the process a child
    /// subreaper (Linux) and starts the engine supervisor.
    pub async fn start(config: EngineConfig) -> Result<Engine> {
        config.validate()?;
        let _ = codeward_tools::sandbox::probe();
        let _ = codeward_tools::sandbox::make_subreaper();
        let mut model_clients = HashMap::new();
        for client in config.all_model_clients() {
            model_clients.insert(client.name().to_owned(), client);
        }
        let secret_values: Vec<String> = config
            .redact_env_values
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .collect();
        let registry = ChildRegistry::new();
        let weak: Arc<OnceLock<Weak<EngineInner>>> = Arc::new(OnceLock::new());
        let observer_target = weak.clone();
        let supervisor = Supervisor::start(
            SupervisorConfig::new("engine").with_observer(Arc::new(move |ev: &SupervisorEvent| {
                if let Some(inner) = observer_target.get().and_then(Weak::upgrade) {
                    projects::on_engine_event(&inner, ev);
                }
            })),
            SupervisorArgs {
                children: Vec::new(),
                registry: registry.clone(),
            },
        )
        .await
        .map_err(|e| Error::InvalidEngineConfig {
            reason: format!("engine supervisor failed to start: {e}"),
        })?;
        let started_at_ms = config.clock.now_ms();
        let inner = Arc::new(EngineInner {
            config,
            model_clients: Arc::new(model_clients),
            projects: DashMap::new(),
            roots: DashMap::new(),
            telemetry_stores: DashMap::new(),
            secrets: Arc::new(SecretValues::new(secret_values)),
            registry,
            supervisor,
            shutting_down: AtomicBool::new(false),
            started_at_ms,
            started: tokio::time::Instant::now(),
            start_lock: tokio::sync::Mutex::new(()),
        });
        let _ = weak.set(Arc::downgrade(&inner));
        Ok(Engine { inner })
    }

    /// Stops every project in parallel, then the engine supervisor. Idempotent.
    pub async fn shutdown(&self) -> Result<()> {
        if self.inner.shutting_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let ids: Vec<ProjectId> = self
            .inner
            .projects
            .iter()
            .map(|e| e.key().clone())
            .collect();
        let stops = ids
            .iter()
            .map(|id| projects::stop(&self.inner, id, "shutdown"));
        futures::future::join_all(stops).await;
        self.inner.supervisor.stop("shutdown").await;
        Ok(())
    }

    pub(crate) fn check_running(&self) -> Result<()> {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            Err(Error::EngineShuttingDown)
        } else {
            Ok(())
        }
    }

    /// The live project `p`, or `project_not_found` / `project_failed`.
    pub(crate) fn project(&self, p: &ProjectId) -> Result<Arc<ProjectRuntime>> {
        self.check_running()?;
        let project = self
            .inner
            .projects
            .get(p)
            .map(|e| e.value().clone())
            .ok_or_else(|| Error::ProjectNotFound {
                project_id: p.to_string(),
            })?;
        if project.status() == crate::types::ProjectStatus::Failed {
            let reason = project
                .failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
                .unwrap_or_else(|| "restart_intensity_exceeded".into());
            return Err(Error::ProjectFailed {
                project_id: p.to_string(),
                reason,
            });
        }
        Ok(project)
    }
}
