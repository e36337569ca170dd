//! Executor tests: slots bound concurrency, the bounded FIFO queue and its timeout, a panicking
//! job restarts its worker, a crashed worker interrupts its job and gives the slot back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::{ExecError, ExecutorConfig, ExecutorPool};
use crate::supervision::{ChildRegistry, Supervisor, SupervisorArgs, SupervisorConfig};

async fn pool(name: &str, slots: usize, queued: usize, timeout_ms: u64) -> ExecutorPool {
    let registry = ChildRegistry::new();
    let mut config = ExecutorConfig::new(name);
    config.max_concurrency = slots;
    config.max_queued = queued;
    config.queue_timeout = Duration::from_millis(timeout_ms);
    let (pool, spec) = ExecutorPool::new(&registry, config, None);
    let sup = Supervisor::start(
        SupervisorConfig::new(format!("{name}-root")),
        SupervisorArgs {
            children: vec![spec],
            registry,
        },
    )
    .await
    .unwrap();
    // Keep the tree alive for the test's duration.
    std::mem::forget(sup);
    pool
}

#[tokio::test]
async fn runs_jobs_and_returns_values() {
    let pool = pool("exec-values", 2, 4, 1000).await;
    let v = pool.run(|| async { 40 + 2 }).await.unwrap();
    assert_eq!(v, 42);
    assert_eq!(pool.in_flight(), 0);
}

#[tokio::test]
async fn concurrency_is_bounded_and_queue_is_fifo_bounded() {
    let pool = pool("exec-bound", 2, 1, 60_000).await;
    let gate = Arc::new(Notify::new());
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (gate, running, peak, pool) =
            (gate.clone(), running.clone(), peak.clone(), pool.clone());
        tasks.push(tokio::spawn(async move {
            pool.run(move || async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                gate.notified().await;
                running.fetch_sub(1, Ordering::SeqCst);
            })
            .await
        }));
    }
    // Wait until both slots are taken.
    while pool.in_flight() < 2 {
        tokio::task::yield_now().await;
    }
    // One caller may queue…
    let queued = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.run(|| async { "queued" }).await })
    };
    while pool.queued() < 1 {
        tokio::task::yield_now().await;
    }
    // …the next one is refused at once.
    let refused = pool.run(|| async { "refused" }).await.unwrap_err();
    assert_eq!(
        refused,
        ExecError::Busy {
            limit: 2,
            queued_ms: 0
        }
    );
    assert_eq!(refused.code(), "max_concurrency_reached");
    gate.notify_waiters();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(queued.await.unwrap().unwrap(), "queued");
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn zero_queue_fails_at_once() {
    let pool = pool("exec-zero", 1, 0, 60_000).await;
    let slot = pool.acquire().await.unwrap();
    let err = pool.acquire().await.unwrap_err();
    assert!(matches!(err, ExecError::Busy { limit: 1, .. }));
    drop(slot);
    assert!(
        pool.acquire().await.is_ok(),
        "dropping an unused slot frees it"
    );
}

#[tokio::test(start_paused = true)]
async fn queued_caller_times_out() {
    let pool = pool("exec-timeout", 1, 4, 500).await;
    let _held = pool.acquire().await.unwrap();
    let err = pool.acquire().await.unwrap_err();
    match err {
        ExecError::Busy { limit, queued_ms } => {
            assert_eq!(limit, 1);
            assert!(queued_ms >= 500, "{queued_ms}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.queued(), 0);
}

#[tokio::test]
async fn panicking_job_restarts_worker_and_pool_keeps_serving() {
    let pool = pool("exec-panic", 1, 4, 5000).await;
    let err = pool
        .run(|| async {
            panic!("tool exploded");
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ExecError::Panicked {
            message: "tool exploded".into()
        }
    );
    // The only worker restarts; the next job runs on the fresh one.
    for i in 0..3 {
        assert_eq!(pool.run(move || async move { i }).await.unwrap(), i);
    }
}

#[tokio::test]
async fn crashed_worker_interrupts_its_job_and_returns_the_slot() {
    let pool = pool("exec-crash", 1, 4, 5000).await;
    let started = Arc::new(Notify::new());
    let job = {
        let (pool, started) = (pool.clone(), started.clone());
        tokio::spawn(async move {
            pool.run(move || async move {
                started.notify_one();
                std::future::pending::<()>().await;
            })
            .await
        })
    };
    started.notified().await;
    assert!(pool.crash_worker(0));
    assert_eq!(job.await.unwrap().unwrap_err(), ExecError::Interrupted);
    assert_eq!(pool.in_flight(), 0);
    assert_eq!(pool.run(|| async { 7 }).await.unwrap(), 7);
}
