//! Journal configuration (the validated form: the runtime's option layer checks
//! `journal_retention_days ≥ 1`, `journal_max_bytes ≥ 16 MiB` and the enums, SPEC §3.2) and the
//! observer hook through which the journal reports what the runtime turns into `journal.*`
//! telemetry and health.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::report::{BackupReport, CompactionReport, IntegrityReport};
use crate::ids::ProjectId;
use crate::telemetry::WallClock;

/// `journal_sync`: SQLite's `synchronous` pragma for the writer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalSync {
    /// `synchronous=NORMAL`: in WAL mode a commit survives a process crash; the last commits may
    /// roll back on power loss or an OS crash.
    #[default]
    Normal,
    /// `synchronous=FULL`: the WAL is fsynced at every commit; commits survive power loss.
    Full,
}

impl JournalSync {
    /// The pragma value.
    pub fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// `journal_on_corruption`: what opening does with a file that fails `quick_check` or is not a
/// database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCorruption {
    /// Rename it (and its `-wal` / `-shm`) to `<stem>.corrupt-<unix_ms>.<ext>` and start a fresh
    /// journal; the [`OpenReport`](super::OpenReport) says so.
    #[default]
    Quarantine,
    /// Fail with `journal_corrupt`; the project does not start.
    Fail,
}

/// What the journal reports to its observer. The runtime maps each notice to one telemetry
/// event (and health), so every `journal.*` event has exactly one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum JournalNotice {
    /// A write failed (`journal.write_failed{reason}`; health `failing` until
    /// [`JournalNotice::WriteRecovered`]). `dropped_events` telemetry events were lost with it.
    WriteFailed {
        /// Short reason (`disk_full`, `io_error`, `writer_down`, …).
        reason: String,
        /// Telemetry events dropped by this failure.
        dropped_events: u64,
    },
    /// The first write that committed after a failure.
    WriteRecovered,
    /// A compaction ran (`journal.compacted`).
    Compacted(CompactionReport),
    /// A backup completed (`journal.backup_completed`).
    BackupCompleted(BackupReport),
    /// An integrity check failed at run time (`journal.integrity_failed`; corruption found at
    /// open is in the [`OpenReport`](super::OpenReport) instead).
    IntegrityFailed(IntegrityReport),
}

/// Receives [`JournalNotice`]s, from the writer thread or a tokio task: keep it cheap and
/// non-blocking (a telemetry `record` is).
pub type JournalObserver = Arc<dyn Fn(&JournalNotice) + Send + Sync>;

/// Configuration of one project's journal.
#[derive(Clone)]
pub struct JournalConfig {
    /// The database file (`<state_dir>/journal.sqlite`); its directory is created `0700` if
    /// missing.
    pub path: PathBuf,
    /// The owning project: stored in `meta`, checked at open, and the `project_id` of every
    /// entry read back.
    pub project_id: ProjectId,
    /// `synchronous` of the writer connection.
    pub sync: JournalSync,
    /// What to do with a corrupt file at open.
    pub on_corruption: OnCorruption,
    /// `journal_retention_days` (30): events older than this, and conversations stopped longer
    /// ago, are compacted away. 0 disables the age rule.
    pub retention_days: u32,
    /// `journal_max_bytes` (1 GiB): above it compaction removes the oldest events, then the
    /// oldest stopped conversations. 0 disables the size rule.
    pub max_bytes: u64,
    /// Wall clock in milliseconds since the Unix epoch.
    pub clock: WallClock,
    /// Optional notice hook.
    pub observer: Option<JournalObserver>,
    /// How often the [`JournalActor`](super::JournalActor) compacts (6 h); it also compacts once
    /// when it first starts in this process. `None`: only explicit [`compact`] calls.
    ///
    /// [`compact`]: super::JournalHandle::compact
    pub compact_every: Option<Duration>,
}

impl std::fmt::Debug for JournalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalConfig")
            .field("path", &self.path)
            .field("project_id", &self.project_id)
            .field("sync", &self.sync)
            .field("on_corruption", &self.on_corruption)
            .field("retention_days", &self.retention_days)
            .field("max_bytes", &self.max_bytes)
            .field("observer", &self.observer.is_some())
            .field("compact_every", &self.compact_every)
            .finish_non_exhaustive()
    }
}

/// Default `journal_retention_days`.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// Default `journal_max_bytes` (1 GiB).
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;
/// Default compaction period (6 h).
pub const DEFAULT_COMPACT_EVERY: Duration = Duration::from_secs(6 * 3600);

impl JournalConfig {
    /// The SPEC defaults (`normal`, `quarantine`, 30 days, 1 GiB, compaction every 6 h), the
    /// system wall clock and no observer.
    pub fn new(path: impl Into<PathBuf>, project_id: ProjectId) -> Self {
        Self {
            path: path.into(),
            project_id,
            sync: JournalSync::Normal,
            on_corruption: OnCorruption::Quarantine,
            retention_days: DEFAULT_RETENTION_DAYS,
            max_bytes: DEFAULT_MAX_BYTES,
            clock: Arc::new(system_now_ms),
            observer: None,
            compact_every: Some(DEFAULT_COMPACT_EVERY),
        }
    }

    /// With this `synchronous` mode.
    pub fn with_sync(mut self, sync: JournalSync) -> Self {
        self.sync = sync;
        self
    }

    /// With this corruption policy.
    pub fn with_on_corruption(mut self, on_corruption: OnCorruption) -> Self {
        self.on_corruption = on_corruption;
        self
    }

    /// With these retention limits.
    pub fn with_retention(mut self, retention_days: u32, max_bytes: u64) -> Self {
        self.retention_days = retention_days;
        self.max_bytes = max_bytes;
        self
    }

    /// With this wall clock.
    pub fn with_clock(mut self, clock: WallClock) -> Self {
        self.clock = clock;
        self
    }

    /// With a notice hook.
    pub fn with_observer(mut self, observer: JournalObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// With this compaction period (`None`: the actor never compacts by itself).
    pub fn with_compact_every(mut self, every: Option<Duration>) -> Self {
        self.compact_every = every;
        self
    }

    pub(crate) fn now_ms(&self) -> i64 {
        (self.clock)()
    }
}

fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
