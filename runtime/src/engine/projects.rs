//! Project lifecycle (SPEC §3.4, §13.2): `start_project` resolves the root, reads
//! `codeward.toml`, validates the option layers, checks ids and roots, then starts the stages in
//! order (layout, journal, OS sandbox check, actors, first asset load, watcher), tearing down on
//! failure with `start_project_failed{stage}`. `stop_project` runs the ordered shutdown; a
//! project supervisor past its intensity is quarantined (`failed`) and stays listed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use codeward_actors::asset_actor::{AssetHandle, AssetStoreActor};
use codeward_actors::executor::{ExecutorConfig, ExecutorPool};
use codeward_actors::ids::ProjectId;
use codeward_actors::policy_actor::{PolicyActor, PolicyHandle, PolicyInputs};
use codeward_actors::supervision::{
    ChildRegistry, ChildSpec, Intensity, OnExceededAction, RestartPolicy, Supervisor,
    SupervisorConfig, SupervisorEvent, SupervisorObserver,
};
use codeward_actors::telemetry::{
    AlertConfig, AlertRoute, AlertRouter, EventName, Severity, TelemetryActor, TelemetryConfig,
    TelemetryEvent, TelemetryHandle, TelemetryLimits, TelemetryStore, supervision_observer,
};
use codeward_actors::watcher_actor::{WatcherActor, WatcherHandle};
use codeward_assets::{AssetStore, LoadOptions, ReloadTrigger, WatcherConfig};
use codeward_policies::{PolicyContext, PolicySet};
use codeward_tools::fs::RootDir;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Engine, EngineInner};
use crate::catalog::{Catalog, StaticTools};
use crate::config::ProjectContext;
use crate::error::{Error, Result};
use crate::options::{
    AlertSeverity, EffectiveOptions, OptionLayers, ProjectOptions, ResolveContext,
    load_project_file, root_is_trusted,
};
use crate::project::{ProjectRuntime, names};
use crate::types::{ProjectStatus, ProjectSummary, rfc3339_ms};

/// Ingest channel of a project's telemetry actor (SPEC §8.1).
const TELEMETRY_CAPACITY: usize = 4096;
/// How long `stop_project` lets in-flight calls finish before cancelling them.
const STOP_GRACE: Duration = Duration::from_secs(5);

fn supervisor_name(id: &ProjectId) -> String {
    format!("project:{id}")
}

/// The SPEC §1 project id: `<slug>-<8 hex>`.
pub(crate) fn generate_project_id(root: &Path, data_dir: &Path) -> String {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    slug = slug.trim_start_matches(['-', '.', '_']).to_owned();
    slug.truncate(40);
    if slug.is_empty() {
        slug = "project".into();
    }
    let mut h = Sha256::new();
    h.update(root.as_os_str().as_encoded_bytes());
    h.update([0u8]);
    h.update(data_dir.as_os_str().as_encoded_bytes());
    let digest = h.finalize();
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{slug}-{hex}")
}

fn resolve_root(root: &Path) -> Result<(PathBuf, PathBuf)> {
    let given = if root.is_absolute() {
        root.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::InvalidRootPath {
                path: root.display().to_string(),
                reason: format!("cwd_unavailable: {e}"),
            })?
            .join(root)
    };
    let invalid = |reason: &str| Error::InvalidRootPath {
        path: root.display().to_string(),
        reason: reason.to_owned(),
    };
    match std::fs::metadata(&given) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(invalid("not_directory")),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(invalid("permission_denied"));
        }
        Err(_) => return Err(invalid("not_found")),
    }
    let canonical = given.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => invalid("permission_denied"),
        _ => invalid("not_found"),
    })?;
    Ok((canonical, given))
}

fn failed(stage: &str, reason: impl std::fmt::Display) -> Error {
    Error::StartProjectFailed {
        stage: stage.to_owned(),
        reason: reason.to_string(),
    }
}

fn severity(s: AlertSeverity) -> Severity {
    match s {
        AlertSeverity::Warning => Severity::Warning,
        AlertSeverity::Critical => Severity::Critical,
    }
}

fn alert_router(inner: &EngineInner, opts: &EffectiveOptions) -> Result<AlertRouter> {
    let mut config = AlertConfig {
        // A webhook delivery may take 2 × its timeout + its 1 s retry delay (SPEC §8.5); the
        // router's per-delivery timeout must not cut the retry off.
        delivery_timeout_ms: 2 * crate::alerts::DEFAULT_TIMEOUT_MS + 2_000,
        ..AlertConfig::default()
    };
    if let Some(events) = &inner.config.alert_events {
        config.critical_events = events.clone();
    }
    config.warning_events = opts.alert_events.clone();
    config.routes = inner.config.alert_routes.clone();
    config
        .routes
        .extend(opts.alert_routes.iter().map(|r| AlertRoute {
            events: r.events.clone(),
            min_severity: severity(r.min_severity),
            sinks: r.sinks.clone(),
        }));
    AlertRouter::spawn(config, inner.config.alert_sinks.clone()).map_err(|e| failed("actors", e))
}

fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)),
        Err(e) => Err(e),
    }
}

/// Layout stage: the asset dirs, `state/`, and an emptied `tmp/` (per-call scratch).
fn layout(data_dir: &Path, state_dir: &Path) -> std::io::Result<()> {
    codeward_assets::ensure_layout(data_dir)?;
    ensure_private_dir(state_dir)?;
    let tmp = data_dir.join("tmp");
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = match entry.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
        }
    }
    Ok(())
}

impl Engine {
    /// Starts hosting the project at `root` (SPEC §3.4). Returns after the first asset load.
    pub async fn start_project(
        &self,
        root: impl AsRef<Path>,
        options: ProjectOptions,
    ) -> Result<ProjectId> {
        self.check_running()?;
        let inner = &self.inner;
        // 1. Root.
        let (root, given) = resolve_root(root.as_ref())?;
        // 2–3. Option layers.
        let file = load_project_file(&root)?;
        let layers = OptionLayers::new(inner.config.defaults.clone(), file, options);
        let ctx = ResolveContext {
            root: root.clone(),
            trusted: root_is_trusted(&root, &inner.config.trusted_roots),
            model_clients: inner.model_clients.keys().cloned().collect(),
            alert_sinks: inner
                .config
                .alert_sinks
                .iter()
                .map(|s| s.name().to_owned())
                .collect(),
        };
        let opts = Arc::new(EffectiveOptions::resolve(&layers, &ctx)?);
        let id = match &opts.project_id {
            Some(id) => id.clone(),
            None => {
                let raw = match &inner.config.project_id_generator {
                    Some(g) => g(&root, &opts.data_dir_path),
                    None => generate_project_id(&root, &opts.data_dir_path),
                };
                ProjectId::parse(&raw).map_err(|_| Error::InvalidProjectId {
                    reason: "generated_invalid".into(),
                })?
            }
        };
        // 4. Ids and roots.
        let _guard = inner.start_lock.lock().await;
        if inner.projects.contains_key(&id) {
            return Err(Error::ProjectAlreadyStarted {
                project_id: id.to_string(),
            });
        }
        let root_key = (root.clone(), opts.data_dir_path.clone());
        if let Some(other) = inner.roots.get(&root_key) {
            return Err(Error::RootInUse {
                project_id: other.to_string(),
            });
        }
        // 5. Stages.
        let project = self.start_stages(&id, &root, &given, opts).await?;
        inner.roots.insert(root_key, id.clone());
        inner.projects.insert(id.clone(), project.clone());
        project.set_status(ProjectStatus::Running);
        project.emit(TelemetryEvent::new(
            EventName::ProjectStarted,
            json!({
                "root_path": project.root, "data_dir": project.data_dir,
            }),
        ));
        if project.options.restore_conversations {
            crate::engine::conversations::restore_all(&project).await;
        }
        Ok(id)
    }

    async fn start_stages(
        &self,
        id: &ProjectId,
        root: &Path,
        given: &Path,
        opts: Arc<EffectiveOptions>,
    ) -> Result<Arc<ProjectRuntime>> {
        let inner = &self.inner;
        let data_dir = opts.data_dir_path.clone();
        let state_dir = opts.state_dir_path.clone();
        // Layout.
        {
            let (d, s) = (data_dir.clone(), state_dir.clone());
            tokio::task::spawn_blocking(move || layout(&d, &s))
                .await
                .map_err(|e| failed("layout", e))?
                .map_err(|e| failed("layout", e))?;
        }
        // OS sandbox.
        let probe = codeward_tools::sandbox::probe();
        let full = probe.scope == codeward_tools::sandbox::Enforcement::Enforced;
        if opts.policy.require_os_sandbox && !full {
            return Err(failed(
                "os_sandbox",
                format!(
                    "require_os_sandbox is set but enforcement is incomplete (landlock abi {})",
                    probe.landlock_abi
                ),
            ));
        }
        // Actors.
        let clock = inner.config.clock.clone();
        let context = PolicyContext {
            canonical_root: root.to_path_buf(),
            given_root: given.to_path_buf(),
            state_dir: Some(state_dir.clone()),
            scratch_base: Some(data_dir.join("tmp")),
        };
        let policy_set = PolicySet::compile(&opts.policy, context.clone()).map_err(|e| {
            Error::InvalidRuntimeOpt {
                key: e.key.clone(),
                reason: e.reason.clone(),
                details: e.details.clone(),
            }
        })?;
        let policy_slot = Arc::new(watch::channel(Arc::new(policy_set)).0);
        let registry = ChildRegistry::new();
        let dropped = Arc::new(AtomicU64::new(0));
        let telemetry = TelemetryHandle::new(
            &registry,
            names::TELEMETRY,
            TELEMETRY_CAPACITY,
            dropped.clone(),
        );
        // Journal (quick_check at open; corruption per `journal_on_corruption`).
        let store_cell: Arc<std::sync::OnceLock<codeward_actors::telemetry::SharedStore>> =
            Arc::new(std::sync::OnceLock::new());
        let journal = open_journal(inner, id, &opts, &state_dir, &telemetry, &store_cell).await?;
        let start_seq = journal.max_event_seq().await.unwrap_or(0);
        let telemetry_store = inner
            .telemetry_stores
            .entry(id.clone())
            .or_insert_with(|| {
                Arc::new(Mutex::new(TelemetryStore::new(
                    id.clone(),
                    TelemetryLimits {
                        recent_events: opts.telemetry_recent_events,
                        recent_errors: opts.telemetry_recent_errors,
                        recent_decisions: opts.policy_recent_decisions,
                        health_error_window_ms: opts.health_error_window_ms,
                        timeout_alert_threshold: opts.tool_timeout_alert_threshold,
                        timeout_alert_window_ms: opts.tool_timeout_alert_window_ms,
                    },
                    start_seq,
                )))
            })
            .clone();
        // A restarted project starts healthy: failing flags of an earlier incarnation (a
        // quarantine, its dead journal writer) do not carry over in the engine-owned store.
        {
            let mut store = telemetry_store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            store.set_failing("project", None);
            store.set_failing("journal", None);
        }
        let _ = store_cell.set(telemetry_store.clone());
        let secrets = inner.secrets.clone();
        let redactor: codeward_actors::telemetry::Redactor =
            Arc::new(move |v: &serde_json::Value| secrets.redactor().redact(v));
        let router = alert_router(inner, &opts)?;
        let clock_fn = clock.clone();
        let mut tconfig = TelemetryConfig::new(redactor)
            .with_router(router.clone())
            .with_clock(Arc::new(move || clock_fn.now_ms()));
        tconfig.dropped = dropped;
        let journal_sink = journal.clone();
        // The journal keeps every event except the routine successes of calls outside any
        // conversation (allowed decisions, starts and completions of `run_tool` calls): at
        // 100k calls/s those would cost a core of SQLite inserts for no timeline (SPEC §9.3
        // reads events per conversation); denials, failures, security, runtime and project
        // events are always journaled.
        tconfig =
            tconfig.with_observe_filter(Arc::new(|event: EventName, in_conversation: bool| {
                in_conversation
                    || !matches!(
                        event,
                        EventName::PolicyAllowed
                            | EventName::ToolStarted
                            | EventName::ToolCompleted
                    )
            }));
        tconfig = tconfig.with_observer(Arc::new(
            move |rec: &codeward_actors::telemetry::RecordedEvent| {
                journal_sink.append_events(vec![rec.clone()]);
            },
        ));
        let asset_store = AssetStore::new(
            &data_dir,
            LoadOptions {
                strict: opts.strict_asset_loading,
                root: Some(root.to_path_buf()),
                now_ms: None,
            },
        );
        let assets = AssetHandle::new(&registry, names::ASSETS, asset_store.clone());
        let policy = PolicyHandle::new(&registry, names::POLICY, &policy_slot);
        let observer = supervision_observer(telemetry.clone());
        let (executor, executor_spec) = ExecutorPool::new(
            &registry,
            ExecutorConfig {
                name: names::EXECUTOR.to_owned(),
                max_concurrency: opts.tool_max_concurrency,
                max_queued: opts.tool_max_queued,
                queue_timeout: Duration::from_millis(opts.tool_queue_timeout_ms),
                intensity: Intensity::default(),
            },
            Some(observer.clone()),
        );
        let context_pc = ProjectContext {
            project_id: id.to_string(),
            root: root.to_path_buf(),
            data_dir: data_dir.clone(),
        };
        let statics = Arc::new(
            StaticTools::build(&inner.config.tool_providers, &context_pc)
                .map_err(|name| failed("actors", format!("duplicate tool name `{name}`")))?,
        );
        let root_dir = Arc::new(RootDir::open(root).map_err(|e| failed("layout", e))?);
        let self_ref: Arc<std::sync::OnceLock<std::sync::Weak<ProjectRuntime>>> =
            Arc::new(std::sync::OnceLock::new());
        let directory = codeward_actors::conversation_actor::ConversationDirectory::new();
        let conversations_spec = {
            let self_ref = self_ref.clone();
            directory.supervisor_spec(
                names::CONVERSATIONS,
                registry.clone(),
                Some(conversation_observer(observer.clone(), self_ref.clone())),
                move || {
                    self_ref
                        .get()
                        .and_then(std::sync::Weak::upgrade)
                        .map(|p| crate::engine::conversations::restart_args(&p))
                        .unwrap_or_default()
                },
            )
        };
        let journal_spec = codeward_actors::journal::journal_child_spec(names::JOURNAL, &journal);
        let children = {
            let policy_inputs = Arc::new(PolicyInputs {
                options: Mutex::new(opts.policy.clone()),
                context,
            });
            let tstore = telemetry_store.clone();
            let (tconfig, telemetry, asset_store) =
                (tconfig.clone(), telemetry.clone(), asset_store.clone());
            let policy_slot = policy_slot.clone();
            move || -> Vec<ChildSpec> {
                vec![
                    journal_spec.clone(),
                    TelemetryActor::child_spec(names::TELEMETRY, tconfig.clone(), tstore.clone()),
                    PolicyActor::child_spec(
                        names::POLICY,
                        policy_inputs.clone(),
                        policy_slot.clone(),
                    ),
                    AssetStoreActor::child_spec(
                        names::ASSETS,
                        asset_store.clone(),
                        telemetry.clone(),
                    ),
                    executor_spec.clone(),
                    conversations_spec.clone(),
                ]
            }
        };
        let sup_name = supervisor_name(id);
        let spec = Supervisor::child_spec(
            SupervisorConfig::new(sup_name.clone())
                .with_intensity(Intensity::new(5, Duration::from_secs(10)))
                .with_observer(observer),
            RestartPolicy::Temporary,
            registry.clone(),
            children,
        );
        let started = inner
            .supervisor
            .start_child(spec)
            .await
            .map_err(|e| failed("actors", e));
        if let Err(e) = started {
            let _ = journal.close().await;
            return Err(e);
        }
        let project_sup = inner.registry.supervisor(&sup_name);
        let catalog = Catalog::build(&statics, asset_store.snapshot());
        let project = Arc::new(ProjectRuntime {
            id: id.clone(),
            root: root.to_path_buf(),
            root_given: given.to_path_buf(),
            data_dir: data_dir.clone(),
            state_dir,
            options: opts.clone(),
            context: context_pc,
            clock,
            started_at_ms: inner.config.clock.now_ms(),
            registry: registry.clone(),
            supervisor: Mutex::new(Some(project_sup.clone())),
            policy,
            assets: assets.clone(),
            watcher: opts
                .watcher
                .then(|| WatcherHandle::new(&registry, names::WATCHER)),
            telemetry: telemetry.clone(),
            telemetry_store,
            executor,
            root_dir,
            statics,
            catalog: RwLock::new(Arc::new(catalog)),
            catalog_build: Mutex::new(()),
            conversations: dashmap::DashMap::new(),
            secrets: inner.secrets.clone(),
            stop: CancellationToken::new(),
            status: AtomicU8::new(0),
            os_network_enforced: probe.net,
            failure: Mutex::new(None),
            alerts: router,
            journal: journal.clone(),
            directory,
            self_ref: self_ref.clone(),
            model_clients: inner.model_clients.clone(),
        });
        let _ = self_ref.set(Arc::downgrade(&project));
        let teardown = |e: Error| {
            let sup = inner.supervisor.clone();
            let name = sup_name.clone();
            let journal = journal.clone();
            async move {
                let _ = sup.stop_child(&name).await;
                let _ = journal.close().await;
                e
            }
        };
        if !full {
            project.emit(TelemetryEvent::new(
                EventName::OsSandboxDegraded,
                json!({
                    "missing": probe.missing_for(&codeward_tools::sandbox::NetRule::DenyAll),
                    "landlock_abi": probe.landlock_abi,
                }),
            ));
        }
        // First asset load (strict errors fail the start).
        let report = match assets.reload(ReloadTrigger::Startup, Vec::new()).await {
            Ok(r) => r,
            Err(e) => return Err(teardown(failed("assets", e)).await),
        };
        if report.rejected {
            let errors: Vec<String> = report
                .errors
                .iter()
                .take(10)
                .map(|e| format!("{}: {}", e.path.display(), e.reason.code()))
                .collect();
            return Err(teardown(failed("assets", errors.join("; "))).await);
        }
        // Watcher.
        if opts.watcher {
            let mut wc = WatcherConfig::new(&data_dir);
            wc.debounce = Duration::from_millis(opts.watcher_debounce_ms);
            wc.max_wait = Duration::from_millis(opts.watcher_max_wait_ms);
            wc.root = Some(root.to_path_buf());
            let clock = inner.config.clock.clone();
            let spec = WatcherActor::child_spec(
                names::WATCHER,
                wc,
                assets.clone(),
                telemetry.clone(),
                Arc::new(move || clock.now_ms()),
            );
            if let Err(e) = project_sup.start_child(spec).await {
                return Err(teardown(failed("watcher", e)).await);
            }
        }
        Ok(project)
    }

    /// Stops a project (SPEC §13.2 ordered shutdown).
    pub async fn stop_project(&self, p: &ProjectId) -> Result<()> {
        if !self.inner.projects.contains_key(p) {
            return Err(Error::ProjectNotFound {
                project_id: p.to_string(),
            });
        }
        stop(&self.inner, p, "requested").await;
        Ok(())
    }

    /// Every hosted project, sorted by id; quarantined ones are listed as `failed`.
    pub async fn list_projects(&self) -> Result<Vec<ProjectSummary>> {
        self.check_running()?;
        let mut out: Vec<ProjectSummary> = Vec::new();
        let projects: Vec<Arc<ProjectRuntime>> = self
            .inner
            .projects
            .iter()
            .map(|e| e.value().clone())
            .collect();
        for project in projects {
            let mut status = project.status();
            if status == ProjectStatus::Running {
                let health = project
                    .telemetry_store
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .health(tokio::time::Instant::now());
                if health.status != codeward_actors::telemetry::HealthStatus::Ok {
                    status = ProjectStatus::Degraded;
                }
            }
            out.push(ProjectSummary {
                project_id: project.id.clone(),
                root_path: project.root.clone(),
                data_dir: project.data_dir.clone(),
                status,
                conversation_count: project.conversations.len(),
                asset_generation: project.assets.snapshot().generation(),
                started_at: rfc3339_ms(project.started_at_ms),
            });
        }
        out.sort_by(|a, b| a.project_id.as_str().cmp(b.project_id.as_str()));
        Ok(out)
    }
}

/// The ordered shutdown of one project. `reason`: `requested` or `shutdown`.
pub(crate) async fn stop(inner: &Arc<EngineInner>, id: &ProjectId, reason: &str) {
    let Some((_, project)) = inner.projects.remove(id) else {
        return;
    };
    let was_failed = project.status() == ProjectStatus::Failed;
    project.set_status(ProjectStatus::Stopping);
    inner.roots.retain(|_, v| v.as_str() != project.id.as_str());
    let sup = project
        .supervisor
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if !was_failed {
        if let (Some(sup), true) = (&sup, project.watcher.is_some()) {
            let _ = sup.stop_child(names::WATCHER).await;
        }
        crate::engine::conversations::stop_all(
            &project,
            codeward_actors::conversation_actor::StopReason::ProjectStopped,
        )
        .await;
        // In-flight calls get a grace period, then their trees are killed.
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while project.executor.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    project.stop.cancel();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while project.executor.in_flight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    project.emit(TelemetryEvent::new(
        EventName::ProjectStopped,
        json!({ "reason": if was_failed { "failed" } else { reason } }),
    ));
    let _ = tokio::time::timeout(Duration::from_secs(2), project.telemetry.flush()).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), project.journal.close()).await;
    project
        .telemetry_store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .reset_timeouts();
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        inner.supervisor.stop_child(&supervisor_name(id)),
    )
    .await;
}

/// The conversation supervisor's observer: telemetry (`inner`), and a conversation given up
/// past its own intensity (SPEC §13.2: it stops alone) leaves the project's live set, so calls
/// see it as stopped (`conversation_not_found`) and `start_conversation` can restore it.
fn conversation_observer(
    inner: SupervisorObserver,
    project: Arc<std::sync::OnceLock<std::sync::Weak<ProjectRuntime>>>,
) -> SupervisorObserver {
    Arc::new(move |ev: &SupervisorEvent| {
        if let SupervisorEvent::IntensityExceeded {
            actor,
            action: OnExceededAction::ChildStopped,
            ..
        } = ev
            && let Some(p) = project.get().and_then(std::sync::Weak::upgrade)
            && let Ok(id) = codeward_actors::ids::ConversationId::parse(actor)
        {
            p.conversations.remove(&id);
        }
        inner(ev);
    })
}

/// Engine supervisor events: a project supervisor that ended on its own failed past its
/// intensity — quarantine it (SPEC §13.2).
pub(crate) fn on_engine_event(inner: &Arc<EngineInner>, ev: &SupervisorEvent) {
    let SupervisorEvent::ChildRemoved { actor, reason, .. } = ev else {
        return;
    };
    let Some(id) = actor.strip_prefix("project:") else {
        return;
    };
    let Ok(id) = ProjectId::parse(id) else {
        return;
    };
    let Some(project) = inner.projects.get(&id).map(|e| e.value().clone()) else {
        return;
    };
    if matches!(
        project.status(),
        ProjectStatus::Stopping | ProjectStatus::Failed
    ) {
        return;
    }
    project.set_status(ProjectStatus::Failed);
    *project
        .failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason.clone());
    // Kill whatever the subtree left running.
    project.stop.cancel();
    // The project's telemetry actor is gone: record straight into the engine-owned store.
    let mut store = project
        .telemetry_store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    store.set_failing("project", Some(reason));
    let now_ms = project.now_ms();
    let redactor = project.redactor();
    let redact: codeward_actors::telemetry::Redactor =
        Arc::new(move |v: &serde_json::Value| redactor.redact(v));
    let recorded = store.record(
        TelemetryEvent::new(
            EventName::RestartIntensityExceeded,
            json!({ "actor": actor, "reason": reason, "action": "project_failed" }),
        ),
        &redact,
        tokio::time::Instant::now(),
        now_ms,
    );
    drop(store);
    for rec in &recorded {
        project.alerts.consider(rec);
    }
}

/// Opens the project journal, wiring its notices into telemetry and health.
async fn open_journal(
    inner: &EngineInner,
    id: &ProjectId,
    opts: &EffectiveOptions,
    state_dir: &Path,
    telemetry: &TelemetryHandle,
    store: &Arc<std::sync::OnceLock<codeward_actors::telemetry::SharedStore>>,
) -> Result<codeward_actors::journal::JournalHandle> {
    use crate::options::{JournalOnCorruption, JournalSync as OptSync};
    use codeward_actors::journal::{
        JournalConfig, JournalHandle, JournalNotice, JournalSync, OnCorruption,
    };
    let clock = inner.config.clock.clone();
    let (t, cell) = (telemetry.clone(), store.clone());
    let observer = Arc::new(move |notice: &JournalNotice| {
        let failing = |reason: Option<&str>| {
            if let Some(store) = cell.get() {
                store
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .set_failing("journal", reason);
            }
        };
        let (name, payload) = match notice {
            JournalNotice::WriteFailed {
                reason,
                dropped_events,
            } => {
                failing(Some(reason));
                (
                    EventName::JournalWriteFailed,
                    json!({ "reason": reason, "dropped_events": dropped_events }),
                )
            }
            JournalNotice::WriteRecovered => {
                failing(None);
                return;
            }
            JournalNotice::Compacted(r) => (
                EventName::JournalCompacted,
                serde_json::to_value(r).unwrap_or_default(),
            ),
            JournalNotice::BackupCompleted(r) => (
                EventName::JournalBackupCompleted,
                serde_json::to_value(r).unwrap_or_default(),
            ),
            JournalNotice::IntegrityFailed(r) => (
                EventName::JournalIntegrityFailed,
                serde_json::to_value(r).unwrap_or_default(),
            ),
        };
        t.record(TelemetryEvent::new(name, payload));
    });
    let config = JournalConfig::new(state_dir.join("journal.sqlite"), id.clone())
        .with_sync(match opts.journal_sync {
            OptSync::Full => JournalSync::Full,
            _ => JournalSync::Normal,
        })
        .with_on_corruption(match opts.journal_on_corruption {
            JournalOnCorruption::Fail => OnCorruption::Fail,
            _ => OnCorruption::Quarantine,
        })
        .with_retention(opts.journal_retention_days, opts.journal_max_bytes)
        .with_clock(Arc::new(move || clock.now_ms()))
        .with_observer(observer);
    let (journal, report) = JournalHandle::open(config)
        .await
        .map_err(|e| failed("journal", e))?;
    if let Some(moved) = &report.quarantined {
        telemetry.record(TelemetryEvent::new(
            EventName::JournalIntegrityFailed,
            json!({ "check": "quick", "action": "quarantine", "moved_to": moved }),
        ));
    }
    Ok(journal)
}
