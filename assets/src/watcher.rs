//! [`Watcher`]: watches the data dir recursively with `notify` + `notify-debouncer-full` and
//! turns bursts of file events into [`ReloadRequest`]s on a bounded tokio channel.
//!
//! Timing (SPEC §10.4): a request fires `debounce` after the last relevant event or `max_wait`
//! after the first pending one, whichever is earlier, so a constant stream of writes still
//! reloads. `notify-debouncer-full` runs with a short inner timeout (≤ debounce/5) to stitch
//! renames and drop duplicates; the trailing/max-wait logic here uses each event's own
//! timestamp, so the inner timeout adds no latency. Only events under `skills/`,
//! `commands/`, `workflows/` and `skill_graph/` count; access events, hidden files and editor
//! temp files never do. When the data dir itself is deleted the watcher polls for it and
//! re-watches it once it is back, then asks for a rescan. Dropping the watcher stops it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, DebouncedEvent, new_debouncer};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::kind::AssetKind;
use crate::store::AssetsEvent;
use crate::text;

/// Capacity of the raw event channel between the notify thread and the watcher task.
const RAW_CAPACITY: usize = 1024;

/// How to watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherConfig {
    /// The data dir (must exist when the watcher starts).
    pub data_dir: PathBuf,
    /// Trailing debounce (`watcher_debounce_ms`, default 250 ms).
    pub debounce: Duration,
    /// Max wait after the first pending event (`watcher_max_wait_ms`, default 2000 ms);
    /// raised to `debounce` if smaller.
    pub max_wait: Duration,
    /// Capacity of the [`ReloadRequest`] channel (≥1). When full, further changes coalesce
    /// into the next request instead of queueing.
    pub channel_capacity: usize,
    /// Report changed paths relative to this directory (the project root); `None` = absolute.
    pub root: Option<PathBuf>,
}

impl WatcherConfig {
    /// Defaults for a data dir: 250 ms debounce, 2 s max wait, channel of 8.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            debounce: Duration::from_millis(250),
            max_wait: Duration::from_millis(2000),
            channel_capacity: 8,
            root: None,
        }
    }
}

/// One batch of changes: reload now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadRequest {
    /// Changed paths, sorted and de-duplicated (may be empty on a rescan).
    pub changed_paths: Vec<PathBuf>,
    /// Raw events coalesced into this request.
    pub event_count: usize,
    /// True when events may have been lost (overflow, watcher error, data dir re-created):
    /// reload everything.
    pub rescan: bool,
}

/// Why the watcher could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WatcherError {
    /// Called outside a tokio runtime.
    #[error("the watcher needs a tokio runtime")]
    NoRuntime,
    /// notify refused to watch the path.
    #[error("cannot watch `{path}`: {reason}")]
    WatchFailed {
        /// The path.
        path: PathBuf,
        /// The notify error.
        reason: String,
    },
}

impl WatcherError {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoRuntime => "no_runtime",
            Self::WatchFailed { .. } => "watch_failed",
        }
    }
}

/// A running watcher. Dropping it stops the notify thread and the task.
#[derive(Debug)]
pub struct Watcher {
    config: WatcherConfig,
    stop: Option<oneshot::Sender<()>>,
    pending: Arc<AtomicUsize>,
}

type Debouncer = notify_debouncer_full::Debouncer<
    notify::RecommendedWatcher,
    notify_debouncer_full::RecommendedCache,
>;

fn start_debouncer(
    data_dir: &Path,
    inner: Duration,
    raw_tx: mpsc::Sender<DebounceEventResult>,
    overflow: Arc<AtomicBool>,
) -> Result<Debouncer, WatcherError> {
    let handler = move |res: DebounceEventResult| {
        if raw_tx.try_send(res).is_err() {
            overflow.store(true, Ordering::Relaxed);
        }
    };
    let fail = |e: notify::Error| WatcherError::WatchFailed {
        path: data_dir.to_path_buf(),
        reason: e.to_string(),
    };
    let mut debouncer = new_debouncer(inner, Some(inner / 4), handler).map_err(fail)?;
    debouncer
        .watch(data_dir, RecursiveMode::Recursive)
        .map_err(fail)?;
    Ok(debouncer)
}

impl Watcher {
    /// Starts watching and returns the watcher and the request receiver. Must be called
    /// inside a tokio runtime; fails when the data dir cannot be watched.
    pub fn spawn(
        mut config: WatcherConfig,
    ) -> Result<(Watcher, mpsc::Receiver<ReloadRequest>), WatcherError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| WatcherError::NoRuntime)?;
        config.max_wait = config.max_wait.max(config.debounce);
        config.channel_capacity = config.channel_capacity.max(1);
        let inner =
            (config.debounce / 5).clamp(Duration::from_millis(5), Duration::from_millis(50));
        let (raw_tx, raw_rx) = mpsc::channel(RAW_CAPACITY);
        let overflow = Arc::new(AtomicBool::new(false));
        let debouncer = start_debouncer(&config.data_dir, inner, raw_tx.clone(), overflow.clone())?;
        let (tx, rx) = mpsc::channel(config.channel_capacity);
        let (stop_tx, stop_rx) = oneshot::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let task = Task {
            canonical_data_dir: std::fs::canonicalize(&config.data_dir)
                .unwrap_or_else(|_| config.data_dir.clone()),
            config: config.clone(),
            inner,
            debouncer: Some(debouncer),
            raw_tx,
            raw_rx,
            overflow,
            tx,
            pending: pending.clone(),
        };
        runtime.spawn(task.run(stop_rx));
        Ok((
            Watcher {
                config,
                stop: Some(stop_tx),
                pending,
            },
            rx,
        ))
    }

    /// Starts watching and calls `callback` for every request (on a tokio task).
    pub fn spawn_with_callback(
        config: WatcherConfig,
        callback: impl Fn(ReloadRequest) + Send + 'static,
    ) -> Result<Watcher, WatcherError> {
        let (watcher, mut rx) = Self::spawn(config)?;
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                callback(req);
            }
        });
        Ok(watcher)
    }

    /// The directories watched (the data dir, recursively).
    pub fn watch_dirs(&self) -> Vec<PathBuf> {
        vec![self.config.data_dir.clone()]
    }

    /// The effective configuration.
    pub fn config(&self) -> &WatcherConfig {
        &self.config
    }

    /// The `project.watcher_started` event for this watcher.
    pub fn started_event(&self) -> AssetsEvent {
        AssetsEvent::WatcherStarted {
            watch_dirs: self.watch_dirs(),
            debounce_ms: u64::try_from(self.config.debounce.as_millis()).unwrap_or(u64::MAX),
            max_wait_ms: u64::try_from(self.config.max_wait.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The `project.watcher_stopped` event, to emit when dropping the watcher.
    pub fn stopped_event(&self, reason: impl Into<String>) -> AssetsEvent {
        AssetsEvent::WatcherStopped {
            pending_event_count: self.pending_event_count(),
            reason: reason.into(),
        }
    }

    /// Relevant events seen but not yet sent as a request.
    pub fn pending_event_count(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Task {
    config: WatcherConfig,
    canonical_data_dir: PathBuf,
    inner: Duration,
    debouncer: Option<Debouncer>,
    raw_tx: mpsc::Sender<DebounceEventResult>,
    raw_rx: mpsc::Receiver<DebounceEventResult>,
    overflow: Arc<AtomicBool>,
    tx: mpsc::Sender<ReloadRequest>,
    pending: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Batch {
    paths: BTreeSet<PathBuf>,
    events: usize,
    rescan: bool,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.events == 0 && !self.rescan
    }

    fn touch(&mut self, at: Instant) {
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }

    fn deadline(&self, debounce: Duration, max_wait: Duration) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + debounce).min(first + max_wait))
    }
}

impl Task {
    /// True when `path` is under one of the four asset directories and no component is an
    /// ignored (hidden / editor temp) name.
    fn relevant(&self, path: &Path) -> bool {
        let path = self.normalize(path);
        let Ok(rel) = path.strip_prefix(&self.config.data_dir) else {
            return false;
        };
        let mut comps = rel.components();
        let Some(first) = comps.next() else {
            return false;
        };
        let first = first.as_os_str().to_string_lossy();
        if AssetKind::from_dir_name(&first).is_none() {
            return false;
        }
        rel.components()
            .all(|c| !text::is_ignored_name(&c.as_os_str().to_string_lossy()))
    }

    /// Maps a path notify reports under the canonical data dir back under the configured one.
    fn normalize(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.canonical_data_dir) {
            Ok(rest) if !path.starts_with(&self.config.data_dir) => self.config.data_dir.join(rest),
            _ => path.to_path_buf(),
        }
    }

    fn report_path(&self, path: &Path) -> PathBuf {
        let path = &self.normalize(path);
        match &self.config.root {
            Some(root) => path
                .strip_prefix(root)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| path.to_path_buf()),
            None => path.to_path_buf(),
        }
    }

    fn absorb(&self, batch: &mut Batch, events: Vec<DebouncedEvent>, root_lost: &mut bool) {
        for ev in events {
            if matches!(ev.event.kind, EventKind::Access(_)) {
                continue;
            }
            let at = Instant::from_std(ev.time);
            if ev.event.need_rescan() {
                batch.rescan = true;
                batch.touch(at);
            }
            for p in &ev.event.paths {
                if self.normalize(p) == self.config.data_dir {
                    // The data dir itself changed (deleted, replaced): reload everything.
                    if matches!(ev.event.kind, EventKind::Remove(_)) {
                        *root_lost = true;
                    }
                    batch.rescan = true;
                    batch.events += 1;
                    batch.touch(at);
                }
                if self.relevant(p) {
                    batch.paths.insert(self.report_path(p));
                    batch.events += 1;
                    batch.touch(at);
                }
            }
        }
    }

    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let debounce = self.config.debounce;
        let max_wait = self.config.max_wait;
        let mut batch = Batch::default();
        let mut root_lost = false;
        let poll = debounce.max(Duration::from_millis(50));
        loop {
            self.pending.store(batch.events, Ordering::Relaxed);
            let deadline = batch.deadline(debounce, max_wait);
            tokio::select! {
                _ = &mut stop => break,
                msg = self.raw_rx.recv() => {
                    let Some(msg) = msg else { break };
                    match msg {
                        Ok(events) => self.absorb(&mut batch, events, &mut root_lost),
                        Err(errors) => {
                            tracing::warn!(count = errors.len(), "asset watcher error; requesting a rescan");
                            batch.rescan = true;
                            batch.touch(Instant::now());
                        }
                    }
                    if self.overflow.swap(false, Ordering::Relaxed) {
                        batch.rescan = true;
                        batch.touch(Instant::now());
                    }
                    if !root_lost && !self.config.data_dir.exists() {
                        root_lost = true;
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() && !batch.is_empty() => {
                    let request = ReloadRequest {
                        changed_paths: batch.paths.iter().cloned().collect(),
                        event_count: batch.events,
                        rescan: batch.rescan,
                    };
                    match self.tx.try_send(request) {
                        Ok(()) => batch = Batch::default(),
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            // The consumer is busy: keep coalescing, retry after another debounce.
                            batch.last = Some(Instant::now());
                            batch.first = Some(Instant::now());
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
                _ = tokio::time::sleep(poll), if root_lost => {
                    if self.config.data_dir.is_dir() {
                        // The data dir is back: watch it afresh and reload everything.
                        self.debouncer = None;
                        match start_debouncer(&self.config.data_dir, self.inner, self.raw_tx.clone(), self.overflow.clone()) {
                            Ok(d) => {
                                self.debouncer = Some(d);
                                root_lost = false;
                                batch.rescan = true;
                                batch.touch(Instant::now());
                            }
                            Err(e) => tracing::warn!(error = %e, "asset watcher could not re-watch the data dir"),
                        }
                    }
                }
            }
        }
        if let Some(d) = self.debouncer.take() {
            d.stop_nonblocking();
        }
    }
}
