//! Executor tests: slots bound concurrency, the bounded FIFO queue and its timeout, jobs run in
//! the caller's task, a panicking job restarts its worker (counted toward the intensity, which
//! escalates), a killed or stopped worker interrupts the job on its slot and gives the slot back,
//! and one worker's death leaves the other slots' jobs alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::{ExecError, ExecutorConfig, ExecutorPool};
use crate::supervision::{
    ChildRegistry, Intensity, Supervisor, SupervisorArgs, SupervisorConfig, SupervisorEvent,
    SupervisorObserver,
};

async fn pool(name: &str, slots: usize, queued: usize, timeout_ms: u64) -> ExecutorPool {
    pool_with(name, slots, queued, timeout_ms, Intensity::default(), None).await
}

async fn pool_with(
    name: &str,
    slots: usize,
    queued: usize,
    timeout_ms: u64,
    intensity: Intensity,
    observer: Option<SupervisorObserver>,
) -> ExecutorPool {
    let registry = ChildRegistry::new();
    let mut config = ExecutorConfig::new(name);
    config.max_concurrency = slots;
    config.max_queued = queued;
    config.queue_timeout = Duration::from_millis(timeout_ms);
    config.intensity = intensity;
    let (pool, spec) = ExecutorPool::new(&registry, config, observer);
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
    assert_eq!(
        within(job).await.unwrap().unwrap_err(),
        ExecError::Interrupted
    );
    assert_eq!(pool.in_flight(), 0);
    assert_eq!(pool.run(|| async { 7 }).await.unwrap(), 7);
}

/// Awaits `fut`, failing the test instead of hanging when it never ends.
async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("finished in time")
}

/// Polls until `cond` holds (bounded; no fixed sleeps).
async fn until(what: &str, cond: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test]
async fn jobs_run_in_the_callers_task() {
    let pool = pool("exec-inline", 2, 4, 1000).await;
    let (caller, ran_in) = tokio::spawn({
        let pool = pool.clone();
        async move {
            let caller = tokio::task::id();
            (
                caller,
                pool.run(|| async { tokio::task::id() }).await.unwrap(),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(ran_in, caller);
    // Not `Send` and borrowing the caller's stack: fine, the job never leaves the task.
    let local = std::rc::Rc::new(5);
    let v = pool.run(|| async { *local + 1 }).await.unwrap();
    assert_eq!(v, 6);
}

#[tokio::test]
async fn killed_worker_interrupts_the_inline_job() {
    let pool = pool("exec-kill", 2, 4, 5000).await;
    let started = Arc::new(Notify::new());
    let dropped = Arc::new(AtomicUsize::new(0));
    struct CountDrop(Arc<AtomicUsize>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let slot = pool.acquire().await.unwrap();
    let index = format!("{slot:?}");
    let job = {
        let (started, dropped) = (started.clone(), dropped.clone());
        tokio::spawn(async move {
            slot.run(move || async move {
                let _guard = CountDrop(dropped);
                started.notify_one();
                std::future::pending::<()>().await;
            })
            .await
        })
    };
    started.notified().await;
    assert_eq!(pool.in_flight(), 1);
    // The held slot is the first free index (the free list pops 0 first).
    assert!(index.contains("worker: 0"), "{index}");
    let generation = pool.worker_generation(0).unwrap();
    assert!(pool.crash_worker(0), "busy worker is killed");
    assert_eq!(
        within(job).await.unwrap().unwrap_err(),
        ExecError::Interrupted
    );
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the job was dropped");
    assert_eq!(pool.in_flight(), 0);
    // The permanent worker comes back; its slot serves again.
    until("worker 0 restarted", || {
        pool.worker_generation(0).is_some_and(|g| g > generation)
    })
    .await;
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    assert_eq!(a.run(|| async { 1 }).await.unwrap(), 1);
    assert_eq!(b.run(|| async { 2 }).await.unwrap(), 2);
}

#[tokio::test]
async fn a_dead_worker_leaves_other_slots_alone() {
    let pool = pool("exec-isolated", 2, 4, 5000).await;
    let first = pool.acquire().await.unwrap(); // worker 0
    let second = pool.acquire().await.unwrap(); // worker 1
    let gate = Arc::new(Notify::new());
    let started = Arc::new(Notify::new());
    let survivor = {
        let (gate, started) = (gate.clone(), started.clone());
        tokio::spawn(async move {
            second
                .run(move || async move {
                    started.notify_one();
                    gate.notified().await;
                    "survived"
                })
                .await
        })
    };
    started.notified().await;
    let victim = tokio::spawn(async move { first.run(std::future::pending::<()>).await });
    until("both running", || pool.in_flight() == 2).await;
    assert!(pool.crash_worker(0));
    assert_eq!(
        within(victim).await.unwrap().unwrap_err(),
        ExecError::Interrupted
    );
    gate.notify_one();
    assert_eq!(within(survivor).await.unwrap().unwrap(), "survived");
}

#[tokio::test]
async fn panics_count_toward_the_intensity_and_escalate() {
    let events = Arc::new(Mutex::new(Vec::<SupervisorEvent>::new()));
    let observer: SupervisorObserver = {
        let events = events.clone();
        Arc::new(move |e: &SupervisorEvent| events.lock().unwrap().push(e.clone()))
    };
    let intensity = Intensity::new(2, Duration::from_secs(60));
    let pool = pool_with("exec-escalate", 1, 4, 5000, intensity, Some(observer)).await;
    let restarted = || {
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, SupervisorEvent::ChildRestarted { .. }))
            .count()
    };
    for n in 1..=2 {
        let err = pool.run(|| async { panic!("boom {n}") }).await.unwrap_err();
        assert_eq!(
            err,
            ExecError::Panicked {
                message: format!("boom {n}")
            }
        );
        until("restart observed", || restarted() == n).await;
    }
    // The third panic exceeds 2 restarts in the window: the executor supervisor escalates.
    let _ = pool.run(|| async { panic!("boom 3") }).await.unwrap_err();
    until("escalation observed", || {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, SupervisorEvent::IntensityExceeded { .. }))
    })
    .await;
}

#[tokio::test]
async fn stopped_executor_interrupts_in_flight_and_later_jobs() {
    let registry = ChildRegistry::new();
    let mut config = ExecutorConfig::new("exec-stop");
    config.max_concurrency = 1;
    let (pool, spec) = ExecutorPool::new(&registry, config, None);
    let sup = Supervisor::start(
        SupervisorConfig::new("exec-stop-root"),
        SupervisorArgs {
            children: vec![spec],
            registry,
        },
    )
    .await
    .unwrap();
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
    sup.stop("test_done").await;
    assert_eq!(
        within(job).await.unwrap().unwrap_err(),
        ExecError::Interrupted
    );
    // No worker comes back: the next job waits the retry wait, then is interrupted.
    assert_eq!(
        pool.run(|| async { 1 }).await.unwrap_err(),
        ExecError::Interrupted
    );
    assert_eq!(pool.in_flight(), 0);
}
