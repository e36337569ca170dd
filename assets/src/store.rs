//! [`AssetStore`]: owns the serving `Arc<AssetSnapshot>` in a `tokio::sync::watch` channel.
//! `reload` builds a new snapshot off to the side and publishes it in one swap; a strict
//! rejection keeps the last good snapshot and generation. Reloads are serialized by a mutex.
//! Also the [`AssetsEvent`] payloads the runtime emits for loads and watcher reloads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{AssetError, AssetsError};
use crate::load::{LoadOptions, load_with_previous};
use crate::snapshot::{AssetCounts, AssetSnapshot, AssetsDiagnostics, KindVersions, LastReload};
use crate::text;

/// Most errors carried by a `project.assets_reload_failed` event.
const EVENT_MAX_ERRORS: usize = 10;
/// Most changed paths carried by watcher events.
const EVENT_MAX_PATHS: usize = 100;
/// Most changed paths kept in diagnostics.
const DIAG_MAX_PATHS: usize = 50;

/// What asked for a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadTrigger {
    /// Project start.
    Startup,
    /// `reload_assets` from an API caller.
    Api,
    /// The file watcher.
    Watcher,
}

/// Whether a load was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The new snapshot serves.
    Applied,
    /// Strict mode found errors; the previous snapshot keeps serving.
    Rejected,
}

/// The result of one reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// The generation serving after the reload (the kept one when rejected).
    pub generation: u64,
    /// The generation serving before.
    pub previous_generation: u64,
    /// What asked for it.
    pub trigger: ReloadTrigger,
    /// Applied or rejected.
    pub outcome: ReloadOutcome,
    /// True when rejected (strict mode with errors).
    pub rejected: bool,
    /// True when applied and some kind's content differs from the previous snapshot.
    pub changed: bool,
    /// Paths the watcher reported (sorted), empty for other triggers.
    pub changed_paths: Vec<PathBuf>,
    /// Number of errors.
    pub error_count: usize,
    /// Every error, with paths.
    pub errors: Vec<AssetError>,
    /// Per-kind versions serving after the reload.
    pub versions: KindVersions,
    /// Counts serving after the reload.
    pub counts: AssetCounts,
    /// How long the load took.
    pub duration_ms: u64,
}

impl ReloadReport {
    /// `Err(asset_load_failed{errors})` when rejected.
    pub fn into_result(self) -> Result<ReloadReport, AssetsError> {
        if self.rejected {
            Err(AssetsError::AssetLoadFailed {
                errors: self.errors,
            })
        } else {
            Ok(self)
        }
    }

    /// The telemetry events this reload should produce (SPEC §8.2): `project.assets_loaded`
    /// (first load) / `project.assets_reloaded` / `project.assets_reload_failed`, plus
    /// `project.watcher_reload_completed` / `…_failed` for watcher reloads.
    pub fn events(&self) -> Vec<AssetsEvent> {
        let mut out = Vec::new();
        match self.outcome {
            ReloadOutcome::Applied => {
                let payload = LoadedPayload {
                    generation: self.generation,
                    versions: self.versions,
                    counts: self.counts,
                    error_count: self.error_count,
                    trigger: self.trigger,
                };
                out.push(if self.previous_generation == 0 {
                    AssetsEvent::AssetsLoaded(payload)
                } else {
                    AssetsEvent::AssetsReloaded(payload)
                });
            }
            ReloadOutcome::Rejected => out.push(AssetsEvent::AssetsReloadFailed {
                generation_kept: self.generation,
                error_count: self.error_count,
                errors: self.errors.iter().take(EVENT_MAX_ERRORS).cloned().collect(),
                trigger: self.trigger,
            }),
        }
        if self.trigger == ReloadTrigger::Watcher {
            let changed_paths: Vec<PathBuf> = self
                .changed_paths
                .iter()
                .take(EVENT_MAX_PATHS)
                .cloned()
                .collect();
            let changed_count = self.changed_paths.len();
            out.push(match self.outcome {
                ReloadOutcome::Applied => AssetsEvent::WatcherReloadCompleted {
                    changed_paths,
                    changed_count,
                    generation: self.generation,
                },
                ReloadOutcome::Rejected => AssetsEvent::WatcherReloadFailed {
                    changed_paths,
                    changed_count,
                    generation: self.generation,
                    error_count: self.error_count,
                    error: AssetsError::AssetLoadFailed { errors: Vec::new() }
                        .code()
                        .to_owned(),
                },
            });
        }
        out
    }
}

/// Payload of `project.assets_loaded` / `project.assets_reloaded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadedPayload {
    /// The new generation.
    pub generation: u64,
    /// Per-kind versions.
    pub versions: KindVersions,
    /// Counts.
    pub counts: AssetCounts,
    /// Errors recorded (lenient mode).
    pub error_count: usize,
    /// What asked for it.
    pub trigger: ReloadTrigger,
}

/// Asset and watcher events, serialized as `{"event": "<name>", …payload}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum AssetsEvent {
    /// The first load of a project applied.
    #[serde(rename = "project.assets_loaded")]
    AssetsLoaded(LoadedPayload),
    /// A later load applied.
    #[serde(rename = "project.assets_reloaded")]
    AssetsReloaded(LoadedPayload),
    /// A strict reload was rejected.
    #[serde(rename = "project.assets_reload_failed")]
    AssetsReloadFailed {
        /// The generation still serving.
        generation_kept: u64,
        /// Number of errors.
        error_count: usize,
        /// The first ≤10 errors.
        errors: Vec<AssetError>,
        /// What asked for it.
        trigger: ReloadTrigger,
    },
    /// The watcher started.
    #[serde(rename = "project.watcher_started")]
    WatcherStarted {
        /// Directories watched.
        watch_dirs: Vec<PathBuf>,
        /// Trailing debounce.
        debounce_ms: u64,
        /// Max wait.
        max_wait_ms: u64,
    },
    /// The watcher stopped.
    #[serde(rename = "project.watcher_stopped")]
    WatcherStopped {
        /// Events seen but not yet turned into a reload.
        pending_event_count: usize,
        /// Why.
        reason: String,
    },
    /// A watcher-triggered reload applied.
    #[serde(rename = "project.watcher_reload_completed")]
    WatcherReloadCompleted {
        /// Changed paths (sorted, ≤100).
        changed_paths: Vec<PathBuf>,
        /// How many paths changed.
        changed_count: usize,
        /// The generation serving.
        generation: u64,
    },
    /// A watcher-triggered reload was rejected.
    #[serde(rename = "project.watcher_reload_failed")]
    WatcherReloadFailed {
        /// Changed paths (sorted, ≤100).
        changed_paths: Vec<PathBuf>,
        /// How many paths changed.
        changed_count: usize,
        /// The generation still serving.
        generation: u64,
        /// Number of errors.
        error_count: usize,
        /// The error code (`asset_load_failed`).
        error: String,
    },
}

impl AssetsEvent {
    /// The event name, e.g. `project.assets_reloaded`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AssetsLoaded(_) => "project.assets_loaded",
            Self::AssetsReloaded(_) => "project.assets_reloaded",
            Self::AssetsReloadFailed { .. } => "project.assets_reload_failed",
            Self::WatcherStarted { .. } => "project.watcher_started",
            Self::WatcherStopped { .. } => "project.watcher_stopped",
            Self::WatcherReloadCompleted { .. } => "project.watcher_reload_completed",
            Self::WatcherReloadFailed { .. } => "project.watcher_reload_failed",
        }
    }
}

#[derive(Debug, Default)]
struct StoreState {
    last_reload: Option<LastReload>,
    rejected_errors: Option<Vec<AssetError>>,
}

#[derive(Debug)]
struct Inner {
    data_dir: PathBuf,
    opts: LoadOptions,
    tx: watch::Sender<Arc<AssetSnapshot>>,
    // INVARIANT: held for the whole of a reload, so reloads never interleave.
    state: Mutex<StoreState>,
}

/// Owns the serving snapshot of one project's assets. Cloning shares the same store.
#[derive(Debug, Clone)]
pub struct AssetStore {
    inner: Arc<Inner>,
}

impl AssetStore {
    /// A store serving an empty generation-0 snapshot; call [`Self::reload`] to load.
    pub fn new(data_dir: impl Into<PathBuf>, opts: LoadOptions) -> Self {
        let (tx, _rx) = watch::channel(Arc::new(AssetSnapshot::empty()));
        Self {
            inner: Arc::new(Inner {
                data_dir: data_dir.into(),
                opts,
                tx,
                state: Mutex::new(StoreState::default()),
            }),
        }
    }

    /// Creates the store and does the startup load; a strict rejection is
    /// `asset_load_failed{errors}` (the runtime maps it to `start_project_failed{assets}`).
    pub fn open(
        data_dir: impl Into<PathBuf>,
        opts: LoadOptions,
    ) -> Result<(Self, ReloadReport), AssetsError> {
        let store = Self::new(data_dir, opts);
        let report = store
            .reload(ReloadTrigger::Startup, Vec::new())
            .into_result()?;
        Ok((store, report))
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The load options.
    pub fn options(&self) -> &LoadOptions {
        &self.inner.opts
    }

    /// The serving snapshot.
    pub fn snapshot(&self) -> Arc<AssetSnapshot> {
        self.inner.tx.borrow().clone()
    }

    /// A receiver that sees every published snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<AssetSnapshot>> {
        self.inner.tx.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, StoreState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Loads from disk and publishes the result (blocking file I/O: call it from
    /// `spawn_blocking` or use [`Self::reload_async`]). Strict errors keep the old snapshot.
    pub fn reload(&self, trigger: ReloadTrigger, mut changed_paths: Vec<PathBuf>) -> ReloadReport {
        let mut state = self.lock();
        let started = Instant::now();
        let current = self.snapshot();
        let next_generation = current.generation() + 1;
        let previous = (current.generation() > 0).then_some(current.as_ref());
        let outcome = load_with_previous(
            &self.inner.data_dir,
            &self.inner.opts,
            next_generation,
            previous,
        );
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        changed_paths.sort();
        changed_paths.dedup();
        let error_count = outcome.errors.len();
        let report = if outcome.rejected {
            state.rejected_errors = Some(outcome.errors.clone());
            ReloadReport {
                generation: current.generation(),
                previous_generation: current.generation(),
                trigger,
                outcome: ReloadOutcome::Rejected,
                rejected: true,
                changed: false,
                changed_paths,
                error_count,
                errors: outcome.errors,
                versions: current.versions(),
                counts: current.counts(),
                duration_ms,
            }
        } else {
            state.rejected_errors = None;
            let snapshot = outcome.snapshot;
            let changed = current.generation() == 0 || snapshot.versions() != current.versions();
            let report = ReloadReport {
                generation: snapshot.generation(),
                previous_generation: current.generation(),
                trigger,
                outcome: ReloadOutcome::Applied,
                rejected: false,
                changed,
                changed_paths,
                error_count,
                errors: outcome.errors,
                versions: snapshot.versions(),
                counts: snapshot.counts(),
                duration_ms,
            };
            self.inner.tx.send_replace(Arc::new(snapshot));
            report
        };
        state.last_reload = Some(LastReload {
            at: text::format_rfc3339_ms(self.inner.opts.now_ms()),
            trigger,
            outcome: report.outcome,
            changed_paths: report
                .changed_paths
                .iter()
                .take(DIAG_MAX_PATHS)
                .cloned()
                .collect(),
            duration_ms,
        });
        report
    }

    /// [`Self::reload`] on tokio's blocking pool.
    pub async fn reload_async(
        &self,
        trigger: ReloadTrigger,
        changed_paths: Vec<PathBuf>,
    ) -> ReloadReport {
        let store = self.clone();
        let fallback = changed_paths.clone();
        match tokio::task::spawn_blocking(move || store.reload(trigger, changed_paths)).await {
            Ok(r) => r,
            // The blocking task panicked or was cancelled: report a rejection, keep serving.
            Err(e) => {
                let current = self.snapshot();
                let error = AssetError::new(
                    None,
                    self.data_dir(),
                    crate::error::AssetErrorReason::IoError,
                    format!("reload task failed: {e}"),
                );
                ReloadReport {
                    generation: current.generation(),
                    previous_generation: current.generation(),
                    trigger,
                    outcome: ReloadOutcome::Rejected,
                    rejected: true,
                    changed: false,
                    changed_paths: fallback,
                    error_count: 1,
                    errors: vec![error],
                    versions: current.versions(),
                    counts: current.counts(),
                    duration_ms: 0,
                }
            }
        }
    }

    /// Diagnostics of the serving snapshot plus the last reload; after a rejected strict
    /// reload, `errors` are that reload's errors.
    pub fn diagnostics(&self) -> AssetsDiagnostics {
        let snapshot = self.snapshot();
        let mut d = snapshot.diagnostics();
        d.strict = self.inner.opts.strict;
        let state = self.lock();
        if let Some(errors) = &state.rejected_errors {
            d.errors = errors.clone();
        }
        d.last_reload = state.last_reload.clone();
        d
    }
}
