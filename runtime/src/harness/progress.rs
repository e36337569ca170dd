//! Progress of a harness run, for a front end's progress bar: a [`Meter`] per workload counts
//! operations and errors (relaxed atomics, nothing else on the hot path), and a ticker task
//! reports a [`Progress`] to the caller's [`ProgressFn`] every 100 ms and once at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::config::Workload;

/// How often the ticker reports.
const TICK: Duration = Duration::from_millis(100);

/// One progress report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// The workload running.
    pub workload: Workload,
    /// Its progress, 0..=1 (elapsed / duration, or done / total).
    pub fraction: f64,
    /// Operations finished so far.
    pub done: u64,
    /// Of those, failed.
    pub errors: u64,
    /// Time since the workload started.
    pub elapsed: Duration,
}

/// Called with every progress report (from a tokio task; keep it short).
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// What a workload's progress is measured against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Goal {
    /// Runs for this long.
    Time(Duration),
    /// Does this many operations.
    Count(u64),
}

/// Operation and error counters of one workload.
#[derive(Debug)]
pub(crate) struct Meter {
    workload: Workload,
    goal: Goal,
    started: Instant,
    done: AtomicU64,
    errors: AtomicU64,
}

impl Meter {
    pub fn new(workload: Workload, goal: Goal) -> Arc<Self> {
        Arc::new(Self {
            workload,
            goal,
            started: Instant::now(),
            done: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    /// Counts one finished operation.
    pub fn tick(&self, ok: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> Progress {
        let elapsed = self.started.elapsed();
        let done = self.done.load(Ordering::Relaxed);
        let fraction = match self.goal {
            Goal::Time(d) if d.is_zero() => 1.0,
            Goal::Time(d) => elapsed.as_secs_f64() / d.as_secs_f64(),
            Goal::Count(0) => 1.0,
            Goal::Count(n) => done as f64 / n as f64,
        };
        Progress {
            workload: self.workload,
            fraction: fraction.clamp(0.0, 1.0),
            done,
            errors: self.errors.load(Ordering::Relaxed),
            elapsed,
        }
    }
}

/// Reports a meter every [`TICK`] until dropped, then once more.
pub(crate) struct Ticker {
    task: Option<tokio::task::JoinHandle<()>>,
    meter: Arc<Meter>,
    progress: Option<ProgressFn>,
}

impl Ticker {
    pub fn start(meter: Arc<Meter>, progress: Option<ProgressFn>) -> Self {
        let task = progress.clone().map(|report| {
            let meter = meter.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(TICK);
                loop {
                    every.tick().await;
                    report(&meter.snapshot());
                }
            })
        });
        Self {
            task,
            meter,
            progress,
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(report) = &self.progress {
            let mut last = self.meter.snapshot();
            last.fraction = 1.0;
            report(&last);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_ticker_reports_periodically_and_once_at_the_end() {
        let seen: Arc<Mutex<Vec<Progress>>> = Arc::default();
        let sink = seen.clone();
        let report: ProgressFn = Arc::new(move |p: &Progress| sink.lock().unwrap().push(p.clone()));
        let meter = Meter::new(Workload::Noop, Goal::Time(Duration::from_secs(1)));
        let ticker = Ticker::start(meter.clone(), Some(report));
        meter.tick(true);
        meter.tick(false);
        tokio::time::sleep(Duration::from_millis(450)).await;
        drop(ticker);
        let seen = seen.lock().unwrap();
        assert!(seen.len() >= 5, "{} reports", seen.len());
        let last = seen.last().unwrap();
        assert_eq!((last.done, last.errors, last.fraction), (2, 1, 1.0));
        assert!(seen[seen.len() - 2].fraction < 1.0);
    }

    #[test]
    fn count_goals_report_done_over_total() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let meter = Meter::new(Workload::Projects, Goal::Count(4));
            meter.tick(true);
            assert_eq!(meter.snapshot().fraction, 0.25);
            let empty = Meter::new(Workload::Projects, Goal::Count(0));
            assert_eq!(empty.snapshot().fraction, 1.0);
        });
    }
}
