//! The lifecycle workloads, each on an engine of its own: `projects` (many projects started,
//! then stopped, `concurrency` at a time), `idle_memory` (conversations started in one project
//! and left idle; the RSS delta per conversation) and `crash_recovery` (conversation actors
//! crashed by failure injection; time until the rebuilt one answers), plus
//! [`crash_conversation`], the failure injection itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use codeward_actors::ids::{ConversationId, ProjectId};
use tokio::time::Instant;

use super::config::{HarnessConfig, Workload};
use super::error::{HarnessError, HarnessResult};
use super::histogram::Histogram;
use super::process;
use super::progress::{Goal, Meter, ProgressFn, Ticker};
use super::report::{CrashRecoveryReport, ErrorCounts, IdleMemoryReport, ProjectsReport};
use super::scratch::ScratchDir;
use crate::config::EngineConfig;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::options::ProjectOptions;
use crate::types::ConversationOptions;
use codeward_actors::conversation::Signal;

/// **Failure injection**: makes the actor of live conversation `c` panic. Its supervisor
/// rebuilds it from the journal (in-flight tool calls and the active run are closed as
/// `interrupted`); callers racing the restart are retried once (SPEC §13.2). Three crashes
/// within 10 s stop the conversation for good (`conversation.stopped{reason: crashed}`).
///
/// Errors: `project_not_found` / `project_failed`, `conversation_not_found` (not live).
pub fn crash_conversation(engine: &Engine, p: &ProjectId, c: &ConversationId) -> Result<()> {
    let project = engine.project(p)?;
    let entry = project
        .conversations
        .get(c)
        .map(|e| e.value().clone())
        .ok_or_else(|| Error::ConversationNotFound {
            conversation_id: c.to_string(),
        })?;
    entry
        .handle
        .crash()
        .map_err(crate::engine::conversations::conversation_error)
}

/// Generation of the live actor of conversation `c` (bumped on every restart), if live.
fn generation(engine: &Engine, p: &ProjectId, c: &ConversationId) -> Option<u64> {
    let project = engine.project(p).ok()?;
    let entry = project.conversations.get(c)?;
    Some(entry.handle.generation())
}

/// Waits for an actor of `c` newer than `after` (≤ 1 s, the registry's retry wait).
async fn wait_restarted(engine: &Engine, p: &ProjectId, c: &ConversationId, after: u64) -> bool {
    let Ok(project) = engine.project(p) else {
        return false;
    };
    let Some(handle) = project.conversations.get(c).map(|e| e.handle.clone()) else {
        return false;
    };
    handle.wait_restarted(after).await.is_ok()
}

async fn start_engine() -> HarnessResult<Engine> {
    Engine::start(EngineConfig::default())
        .await
        .map_err(HarnessError::setup("engine_start"))
}

fn count(errors: &Mutex<BTreeMap<&'static str, u64>>, code: &'static str) {
    *errors
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(code)
        .or_default() += 1;
}

fn counts(errors: &Mutex<BTreeMap<&'static str, u64>>) -> ErrorCounts {
    errors
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect()
}

/// Runs `op(i)` for `i` in `0..n`, `parallelism` at a time; returns the merged latencies.
async fn fan_out<F, Fut>(n: usize, parallelism: usize, op: F) -> HarnessResult<Histogram>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let op = Arc::new(op);
    let mut tasks = Vec::new();
    for _ in 0..parallelism.min(n).max(1) {
        let (next, op) = (next.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break h;
                }
                let t = Instant::now();
                op(i).await;
                h.record(t.elapsed());
            }
        }));
    }
    let mut total = Histogram::new();
    for t in tasks {
        let h = t.await.map_err(|e| HarnessError::Measurement {
            what: "fan_out",
            message: format!("a worker task died: {e}"),
        })?;
        total.merge(&h);
    }
    Ok(total)
}

/// `projects`: `churn_projects` projects started (`concurrency` at a time), then stopped.
pub(crate) async fn projects(
    config: &HarnessConfig,
    progress: Option<ProgressFn>,
) -> HarnessResult<ProjectsReport> {
    let engine = start_engine().await?;
    let scratch = ScratchDir::new("churn")?;
    let n = config.churn_projects;
    let roots: Vec<PathBuf> = (0..n)
        .map(|i| scratch.project_root(i))
        .collect::<HarnessResult<_>>()?;
    let roots = Arc::new(roots);
    let ids: Arc<Mutex<Vec<ProjectId>>> = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let errors: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    let peak_reset = process::reset_peak_rss();
    let meter = Meter::new(Workload::Projects, Goal::Count(2 * n as u64));
    let ticker = Ticker::start(meter.clone(), progress);

    let start = Instant::now();
    let start_latency = {
        let (engine, roots, ids, errors, meter) = (
            engine.clone(),
            roots.clone(),
            ids.clone(),
            errors.clone(),
            meter.clone(),
        );
        fan_out(n, config.concurrency, move |i| {
            let (engine, roots, ids, errors, meter) = (
                engine.clone(),
                roots.clone(),
                ids.clone(),
                errors.clone(),
                meter.clone(),
            );
            async move {
                match engine
                    .start_project(&roots[i], ProjectOptions::default())
                    .await
                {
                    Ok(id) => {
                        ids.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(id);
                        meter.tick(true);
                    }
                    Err(e) => {
                        count(&errors, e.code());
                        meter.tick(false);
                    }
                }
            }
        })
        .await?
    };
    let start_total = start.elapsed();
    let dropped = engine.health().await.telemetry_dropped_total;
    let peak = peak_reset.then(process::peak_rss_bytes).flatten();

    let started: Arc<Vec<ProjectId>> = Arc::new(std::mem::take(
        &mut *ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    ));
    let stop = Instant::now();
    let stop_latency = {
        let (engine, started, errors, meter) = (
            engine.clone(),
            started.clone(),
            errors.clone(),
            meter.clone(),
        );
        fan_out(started.len(), config.concurrency, move |i| {
            let (engine, started, errors, meter) = (
                engine.clone(),
                started.clone(),
                errors.clone(),
                meter.clone(),
            );
            async move {
                match engine.stop_project(&started[i]).await {
                    Ok(()) => meter.tick(true),
                    Err(e) => {
                        count(&errors, e.code());
                        meter.tick(false);
                    }
                }
            }
        })
        .await?
    };
    let stop_total = stop.elapsed();
    drop(ticker);
    let _ = engine.shutdown().await;
    drop(scratch);
    Ok(ProjectsReport {
        count: n,
        parallelism: config.concurrency.min(n),
        start_total_ms: start_total.as_secs_f64() * 1000.0,
        stop_total_ms: stop_total.as_secs_f64() * 1000.0,
        total_ms: (start_total + stop_total).as_secs_f64() * 1000.0,
        start_latency: start_latency.summary(),
        stop_latency: stop_latency.summary(),
        errors: counts(&errors),
        peak_rss_bytes: peak,
        telemetry_dropped: dropped,
    })
}

/// `idle_memory`: `idle_conversations` conversations started in one project and left idle.
pub(crate) async fn idle_memory(
    config: &HarnessConfig,
    progress: Option<ProgressFn>,
) -> HarnessResult<IdleMemoryReport> {
    let engine = start_engine().await?;
    let scratch = ScratchDir::new("idle")?;
    let root = scratch.project_root(0)?;
    let p = engine
        .start_project(&root, ProjectOptions::default())
        .await
        .map_err(HarnessError::setup("start_project"))?;
    let n = config.idle_conversations;
    process::trim_heap();
    let rss_before = process::rss_bytes();
    let errors: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    let meter = Meter::new(Workload::IdleMemory, Goal::Count(n as u64));
    let ticker = Ticker::start(meter.clone(), progress);
    let start = Instant::now();
    let latency = {
        let (engine, p, errors, meter) = (engine.clone(), p.clone(), errors.clone(), meter.clone());
        fan_out(n, config.concurrency, move |_| {
            let (engine, p, errors, meter) =
                (engine.clone(), p.clone(), errors.clone(), meter.clone());
            async move {
                match engine
                    .start_conversation(&p, ConversationOptions::default())
                    .await
                {
                    Ok(_) => meter.tick(true),
                    Err(e) => {
                        count(&errors, e.code());
                        meter.tick(false);
                    }
                }
            }
        })
        .await?
    };
    let start_total = start.elapsed();
    drop(ticker);
    let started = n as u64 - counts(&errors).values().sum::<u64>();
    process::trim_heap();
    let rss_after = process::rss_bytes();
    let per = match (rss_before, rss_after) {
        (Some(b), Some(a)) if started > 0 => Some(a.saturating_sub(b) as f64 / started as f64),
        _ => None,
    };
    let stop = Instant::now();
    let _ = engine.stop_project(&p).await;
    let stop_total = stop.elapsed();
    let _ = engine.shutdown().await;
    drop(scratch);
    Ok(IdleMemoryReport {
        conversations: n,
        started,
        rss_before_bytes: rss_before,
        rss_after_bytes: rss_after,
        bytes_per_conversation: per,
        start_total_ms: start_total.as_secs_f64() * 1000.0,
        start_latency: latency.summary(),
        stop_total_ms: stop_total.as_secs_f64() * 1000.0,
        errors: counts(&errors),
    })
}

/// `crash_recovery`: `crash_samples` conversations, each given one exchange, then crashed once;
/// the latency is crash → first answer (`conversation_state`) of the rebuilt actor.
pub(crate) async fn crash_recovery(
    config: &HarnessConfig,
    progress: Option<ProgressFn>,
) -> HarnessResult<CrashRecoveryReport> {
    let engine = start_engine().await?;
    let scratch = ScratchDir::new("crash")?;
    let root = scratch.project_root(0)?;
    let p = engine
        .start_project(&root, ProjectOptions::default())
        .await
        .map_err(HarnessError::setup("start_project"))?;
    let errors: Mutex<BTreeMap<&'static str, u64>> = Mutex::default();
    let mut histogram = Histogram::new();
    let mut restored = 0;
    let meter = Meter::new(
        Workload::CrashRecovery,
        Goal::Count(config.crash_samples as u64),
    );
    let ticker = Ticker::start(meter.clone(), progress);
    for _ in 0..config.crash_samples {
        let c = engine
            .start_conversation(&p, ConversationOptions::default())
            .await
            .map_err(HarnessError::setup("start_conversation"))?;
        let exchange = engine
            .conversation_call(&p, &c, Signal::user_message("hello before the crash"), None)
            .await
            .map_err(HarnessError::setup("conversation_call"))?;
        if !exchange.settled {
            count(&errors, "not_settled");
        }
        let before = generation(&engine, &p, &c).unwrap_or(0);
        let t = Instant::now();
        let outcome = match crash_conversation(&engine, &p, &c) {
            Ok(()) => engine.conversation_state(&p, &c).await,
            Err(e) => Err(e),
        };
        let back = t.elapsed();
        let ok = match outcome {
            Ok(state) => {
                histogram.record(back);
                let newer = generation(&engine, &p, &c).is_some_and(|g| g > before)
                    || wait_restarted(&engine, &p, &c, before).await;
                if !newer {
                    count(&errors, "no_restart");
                    false
                } else if !state.restored {
                    count(&errors, "not_restored");
                    false
                } else {
                    restored += 1;
                    true
                }
            }
            Err(e) => {
                count(&errors, e.code());
                false
            }
        };
        meter.tick(ok);
        let _ = engine.stop_conversation(&p, &c).await;
    }
    drop(ticker);
    let _ = engine.shutdown().await;
    drop(scratch);
    Ok(CrashRecoveryReport {
        samples: config.crash_samples,
        method: "fresh conversation with one exchange; crash_conversation (the actor panics); \
                 time until conversation_state is answered by the rebuilt actor"
            .into(),
        back_in_service: histogram.summary(),
        restored,
        errors: counts(&errors),
    })
}
