//! `ExecutorPool`: the cloneable handle to a project's executor — slots (permit + worker), the
//! bounded FIFO wait queue, and running a job on a slot under its worker's liveness token.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::actor::{SlotCell, Worker};
use super::msg::WorkerMsg;
use crate::supervision::{
    ChildRegistry, ChildSpec, DEFAULT_RETRY_WAIT, Handle, Intensity, RestartPolicy, Supervisor,
    SupervisorConfig, SupervisorObserver,
};

/// Sizing of one executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorConfig {
    /// Supervisor (and registry prefix) name, unique within the project's registry.
    pub name: String,
    /// `tool_max_concurrency`: worker actors and slots (≥1).
    pub max_concurrency: usize,
    /// `tool_max_queued`: callers allowed to wait for a slot (0 = fail at once).
    pub max_queued: usize,
    /// `tool_queue_timeout_ms`: how long a queued caller waits.
    pub queue_timeout: Duration,
    /// Restarts of workers tolerated before the executor supervisor escalates.
    pub intensity: Intensity,
}

impl ExecutorConfig {
    /// SPEC defaults: 8 slots, 64 queued, 5 s queue timeout, 5 restarts in 10 s.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            max_concurrency: 8,
            max_queued: 64,
            queue_timeout: Duration::from_millis(5000),
            intensity: Intensity::default(),
        }
    }
}

/// Why the executor could not run a job. The runtime maps these onto `codeward::Error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum ExecError {
    /// No slot: the queue was full (or disabled), or the wait passed `queue_timeout`.
    #[error("all {limit} executor slots are busy (waited {queued_ms} ms)")]
    Busy {
        /// `tool_max_concurrency`.
        limit: usize,
        /// How long the caller waited in the queue.
        queued_ms: u64,
    },
    /// The job panicked; the worker of its slot is restarted.
    #[error("tool panicked: {message}")]
    Panicked {
        /// The panic payload, when it was a string.
        message: String,
    },
    /// The slot's worker died (killed, stopped, escalation) with the job in flight, or no worker
    /// was live on the slot within the retry wait.
    #[error("executor worker was interrupted")]
    Interrupted,
}

impl ExecError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Busy { .. } => "max_concurrency_reached",
            Self::Panicked { .. } => "panic",
            Self::Interrupted => "interrupted",
        }
    }
}

struct PoolInner {
    config: ExecutorConfig,
    permits: Arc<Semaphore>,
    // INVARIANT: `free.len()` equals the number of available permits plus the slots whose
    // permit is being released (an index is pushed back before its permit is dropped), so a
    // caller holding a permit always finds a free index.
    free: Mutex<Vec<usize>>,
    waiting: AtomicUsize,
    in_flight: AtomicUsize,
    // One per slot, same index: the worker's handle and the liveness it publishes.
    workers: Vec<Handle<WorkerMsg>>,
    cells: Vec<Arc<SlotCell>>,
}

impl PoolInner {
    fn free(&self) -> std::sync::MutexGuard<'_, Vec<usize>> {
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The handle to a project's executor. Cheap to clone.
#[derive(Clone)]
pub struct ExecutorPool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for ExecutorPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorPool")
            .field("config", &self.inner.config)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// A held executor slot: a permit and the worker that goes with it. Dropping it unused gives
/// the slot back.
pub struct Slot {
    guard: SlotGuard,
    queued_ms: u64,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("worker", &self.guard.index)
            .field("queued_ms", &self.queued_ms)
            .finish()
    }
}

struct SlotGuard {
    index: usize,
    pool: Arc<PoolInner>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        // Index first, permit second (see the free-list invariant).
        self.pool.free().push(self.index);
        drop(self.permit.take());
    }
}

struct InFlight(Arc<PoolInner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ExecutorPool {
    /// The pool handle and the child spec of its supervisor (one permanent worker per slot,
    /// publishing into `registry`). Start the spec under the project supervisor; calls made
    /// before the workers run wait for them (≤ the handle retry wait).
    pub fn new(
        registry: &ChildRegistry,
        mut config: ExecutorConfig,
        observer: Option<SupervisorObserver>,
    ) -> (Self, ChildSpec) {
        config.max_concurrency = config.max_concurrency.max(1);
        let names: Vec<String> = (0..config.max_concurrency)
            .map(|i| format!("{}.worker.{i}", config.name))
            .collect();
        let workers = names
            .iter()
            .map(|n| registry.handle::<WorkerMsg>(n))
            .collect();
        let cells: Vec<Arc<SlotCell>> = names.iter().map(|_| Arc::new(SlotCell::new())).collect();
        let mut sup = SupervisorConfig::new(config.name.clone()).with_intensity(config.intensity);
        if let Some(observer) = observer {
            sup = sup.with_observer(observer);
        }
        let spec_cells = cells.clone();
        let spec =
            Supervisor::child_spec(sup, RestartPolicy::Permanent, registry.clone(), move || {
                names
                    .iter()
                    .zip(&spec_cells)
                    .map(|(n, cell)| {
                        let cell = cell.clone();
                        ChildSpec::actor(n.clone(), RestartPolicy::Permanent, move || {
                            (Worker, cell.clone())
                        })
                    })
                    .collect()
            });
        let pool = Self {
            inner: Arc::new(PoolInner {
                permits: Arc::new(Semaphore::new(config.max_concurrency)),
                free: Mutex::new((0..config.max_concurrency).rev().collect()),
                waiting: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                workers,
                cells,
                config,
            }),
        };
        (pool, spec)
    }

    /// The configuration.
    pub fn config(&self) -> &ExecutorConfig {
        &self.inner.config
    }

    /// Jobs running now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// Callers waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// Takes a slot: at once when one is free; else waits in the bounded FIFO queue up to
    /// `queue_timeout`; fails with [`ExecError::Busy`] when the queue is full or the wait ends.
    pub async fn acquire(&self) -> Result<Slot, ExecError> {
        let inner = &self.inner;
        if let Ok(permit) = inner.permits.clone().try_acquire_owned() {
            return Ok(self.slot(permit, 0));
        }
        let busy = |queued_ms| ExecError::Busy {
            limit: inner.config.max_concurrency,
            queued_ms,
        };
        let max = inner.config.max_queued;
        let joined = inner
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w < max).then_some(w + 1)
            });
        if joined.is_err() {
            return Err(busy(0));
        }
        let started = Instant::now();
        let waited = tokio::time::timeout(
            inner.config.queue_timeout,
            inner.permits.clone().acquire_owned(),
        )
        .await;
        inner.waiting.fetch_sub(1, Ordering::AcqRel);
        let queued_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match waited {
            Ok(Ok(permit)) => Ok(self.slot(permit, queued_ms)),
            // Closed semaphore (never closed) or timeout.
            _ => Err(busy(queued_ms)),
        }
    }

    /// Takes a free slot without queueing, or fails with [`ExecError::Busy`] at once (workflow
    /// steps: waiting behind their own workflow could deadlock).
    pub fn try_acquire(&self) -> Result<Slot, ExecError> {
        match self.inner.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok(self.slot(permit, 0)),
            Err(_) => Err(ExecError::Busy {
                limit: self.inner.config.max_concurrency,
                queued_ms: 0,
            }),
        }
    }

    fn slot(&self, permit: OwnedSemaphorePermit, queued_ms: u64) -> Slot {
        let index = self.inner.free().pop();
        // INVARIANT (free list): a held permit guarantees a free index.
        let index = index.unwrap_or(0);
        Slot {
            guard: SlotGuard {
                index,
                pool: self.inner.clone(),
                permit: Some(permit),
            },
            queued_ms,
        }
    }

    /// [`acquire`](Self::acquire) then [`Slot::run`].
    pub async fn run<T, F, Fut>(&self, job: F) -> Result<T, ExecError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.acquire().await?.run(job).await
    }
}

impl Slot {
    /// How long the caller waited in the queue for this slot.
    pub fn queued_ms(&self) -> u64 {
        self.queued_ms
    }

    /// Runs `job` while holding this slot and returns its result. The job runs in the calling
    /// task (no mailbox hop) under the liveness token of the slot's worker: if that worker dies
    /// meanwhile (killed, stopped, escalation) the job is dropped and the caller gets
    /// [`ExecError::Interrupted`]. When no worker is live on the slot (restarting) the call
    /// waits for one up to the handle retry wait (1 s), then is interrupted. A panicking job
    /// is caught ([`ExecError::Panicked`]) and the worker is crashed on purpose, so its
    /// supervisor restarts it and counts the restart toward its intensity. The slot is released
    /// when the job has finished or was dropped, not before: cleanup inside the job (killing a
    /// process tree) still holds the slot.
    pub async fn run<T, F, Fut>(self, job: F) -> Result<T, ExecError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        // The mailbox hop used to be a yield point; keep callers that loop on instant tools
        // yielding (every coop budget's worth of calls) so the telemetry pump and other tasks
        // on the worker thread keep running.
        tokio::task::consume_budget().await;
        let pool = self.guard.pool.clone();
        let index = self.guard.index;
        let Some(cell) = pool.cells.get(index) else {
            return Err(ExecError::Interrupted);
        };
        let Some(live) = cell.live_within(DEFAULT_RETRY_WAIT).await else {
            return Err(ExecError::Interrupted);
        };
        pool.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(pool.clone());
        let outcome = {
            let job = AssertUnwindSafe(async move { job().await }).catch_unwind();
            tokio::select! {
                biased;
                r = job => Some(r),
                () = live.cancelled() => None,
            }
        };
        match outcome {
            Some(Ok(value)) => Ok(value),
            Some(Err(payload)) => {
                // Retire this worker incarnation before the slot is released (so the next job
                // waits for the restarted worker instead of being interrupted by this crash),
                // then crash it so the restart is supervised and counted.
                live.cancel();
                if let Some(worker) = pool.workers.get(index) {
                    let _ = worker.try_cast(WorkerMsg::Crash);
                }
                Err(ExecError::Panicked {
                    message: panic_message(payload.as_ref()),
                })
            }
            None => Err(ExecError::Interrupted),
        }
    }
}

/// The text of a panic payload (`&str` or `String`), else a placeholder.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

impl ExecutorPool {
    /// Failure injection (tests, runbook): crashes worker `index` — when its slot is free by a
    /// failing handler, when a job holds its slot by killing it (the job is dropped and its
    /// caller gets `interrupted`). Returns whether a live worker was there.
    pub fn crash_worker(&self, index: usize) -> bool {
        let Some(worker) = self.inner.workers.get(index) else {
            return false;
        };
        let busy = !self.inner.free().contains(&index);
        if busy {
            worker.kill()
        } else {
            worker.try_cast(WorkerMsg::Crash).is_ok()
        }
    }

    /// Generation of worker `index`'s current incarnation (0 = never started): tests and the
    /// runbook watch it to see a restart.
    pub fn worker_generation(&self, index: usize) -> Option<u64> {
        self.inner.workers.get(index).map(Handle::generation)
    }
}
