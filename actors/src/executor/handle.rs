//! `ExecutorPool`: the cloneable handle to a project's executor — slots (permit + worker), the
//! bounded FIFO wait queue, and running a job on the slot's worker.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;

use super::actor::Worker;
use super::msg::{Job, WorkerMsg};
use crate::supervision::{
    ChildRegistry, ChildSpec, Handle, Intensity, RestartPolicy, Supervisor, SupervisorConfig,
    SupervisorObserver,
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
    /// The job panicked; its worker is restarted.
    #[error("tool panicked: {message}")]
    Panicked {
        /// The panic payload, when it was a string.
        message: String,
    },
    /// The worker died (or restarted) with the job in flight, or could not be reached.
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
    workers: Vec<Handle<WorkerMsg>>,
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
        let mut sup = SupervisorConfig::new(config.name.clone()).with_intensity(config.intensity);
        if let Some(observer) = observer {
            sup = sup.with_observer(observer);
        }
        let spec =
            Supervisor::child_spec(sup, RestartPolicy::Permanent, registry.clone(), move || {
                names
                    .iter()
                    .map(|n| ChildSpec::actor(n.clone(), RestartPolicy::Permanent, || (Worker, ())))
                    .collect()
            });
        let pool = Self {
            inner: Arc::new(PoolInner {
                permits: Arc::new(Semaphore::new(config.max_concurrency)),
                free: Mutex::new((0..config.max_concurrency).rev().collect()),
                waiting: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                workers,
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
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.acquire().await?.run(job).await
    }
}

impl Slot {
    /// How long the caller waited in the queue for this slot.
    pub fn queued_ms(&self) -> u64 {
        self.queued_ms
    }

    /// Runs `job` on this slot's worker and waits for its result. The slot is released when the
    /// job has finished (or its worker died), not before: cleanup inside the job (killing a
    /// process tree) still holds the slot.
    pub async fn run<T, F, Fut>(self, job: F) -> Result<T, ExecError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.guard.pool.clone();
        let worker = pool.workers.get(self.guard.index).cloned();
        let Some(worker) = worker else {
            return Err(ExecError::Interrupted);
        };
        let (tx, rx) = oneshot::channel::<Result<T, ExecError>>();
        pool.in_flight.fetch_add(1, Ordering::Relaxed);
        let in_flight = InFlight(pool.clone());
        let guard = self.guard;
        let job: Job = Box::new(move || {
            Box::pin(async move {
                let _slot = guard;
                let _in_flight = in_flight;
                match AssertUnwindSafe(job()).catch_unwind().await {
                    Ok(value) => {
                        let _ = tx.send(Ok(value));
                        Ok(())
                    }
                    Err(payload) => {
                        let message = panic_message(payload.as_ref());
                        let _ = tx.send(Err(ExecError::Panicked {
                            message: message.clone(),
                        }));
                        Err(message)
                    }
                }
            })
        });
        // An undeliverable job is dropped here, which releases the slot and closes `rx`.
        if worker.send(WorkerMsg::Run(job)).await.is_err() {
            return Err(ExecError::Interrupted);
        }
        rx.await.unwrap_or(Err(ExecError::Interrupted))
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
    /// Failure injection (tests, runbook): crashes worker `index` — when it is idle by a
    /// panic in its handler, when it is busy by killing it mid-job (the job is dropped and its
    /// caller gets `interrupted`).
    pub fn crash_worker(&self, index: usize) -> bool {
        let Some(worker) = self.inner.workers.get(index) else {
            return false;
        };
        if self.in_flight() > 0 {
            worker.kill()
        } else {
            worker.try_cast(WorkerMsg::Crash).is_ok()
        }
    }
}
