//! The timed workloads on a fleet of `projects` projects: `noop` and `fs_read` (`concurrency`
//! callers of `run_tool`, round robin over the projects) and `conversations` (`conversations`
//! per project, each receiving `events` scripted user messages per round, every message
//! asking for an `fs.read` tool call, so the whole path runs: durable append, model step,
//! policy, executor, tool result, second model step, settle).
//!
//! Each caller keeps its own histogram and error map and hands them back when the deadline
//! passes; nothing is shared on the hot path but two relaxed counters for progress.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use codeward_actors::ids::{ConversationId, ProjectId};
use serde_json::json;
use tokio::time::Instant;

use super::config::{HarnessConfig, Workload};
use super::error::{HarnessError, HarnessResult};
use super::histogram::Histogram;
use super::noop::{NOOP_TOOL, NoopProvider};
use super::process;
use super::progress::{Goal, Meter, ProgressFn, Ticker};
use super::report::{ErrorCounts, ThroughputReport};
use super::scratch::{FIXTURE_FILE, ScratchDir};
use crate::config::EngineConfig;
use crate::engine::Engine;
use crate::options::ProjectOptions;
use crate::types::{ConversationOptions, ToolCall};
use codeward_actors::conversation::Signal;

/// Default `tool_max_concurrency` of a project (SPEC §3.2).
const DEFAULT_TOOL_CONCURRENCY: usize = 8;
/// Settle timeout of one scripted user message.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The engine and projects the timed workloads run on.
pub(crate) struct Fleet {
    pub engine: Engine,
    pub projects: Vec<ProjectId>,
    _scratch: ScratchDir,
}

impl Fleet {
    /// Starts an engine with the no-op provider and `config.projects` projects. Each project's
    /// `tool_max_concurrency` is raised to its share of the callers when that exceeds the
    /// default 8, so the workloads measure the path, not the configured cap.
    pub async fn start(config: &HarnessConfig) -> HarnessResult<Self> {
        let engine =
            Engine::start(EngineConfig::default().with_tool_provider(Arc::new(NoopProvider)))
                .await
                .map_err(HarnessError::setup("engine_start"))?;
        let scratch = ScratchDir::new("steady")?;
        let per_project = config.concurrency.div_ceil(config.projects);
        let cap = per_project.max(DEFAULT_TOOL_CONCURRENCY) as u64;
        let mut projects = Vec::with_capacity(config.projects);
        for i in 0..config.projects {
            let root = scratch.project_root(i)?;
            let p = engine
                .start_project(&root, ProjectOptions::default().tool_max_concurrency(cap))
                .await
                .map_err(HarnessError::setup("start_project"))?;
            projects.push(p);
        }
        Ok(Self {
            engine,
            projects,
            _scratch: scratch,
        })
    }

    pub async fn shutdown(self) {
        let _ = self.engine.shutdown().await;
    }

    /// Telemetry events dropped so far: `health` sums the live projects' drop counters
    /// (monotonic while they run).
    async fn dropped(&self) -> u64 {
        self.engine.health().await.telemetry_dropped_total
    }
}

/// What one caller measured.
#[derive(Default)]
struct CallerResult {
    histogram: Histogram,
    ok: u64,
    errors: BTreeMap<&'static str, u64>,
    notes: BTreeMap<&'static str, u64>,
}

impl CallerResult {
    fn merge(&mut self, other: CallerResult) {
        self.histogram.merge(&other.histogram);
        self.ok += other.ok;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.notes {
            *self.notes.entry(k).or_default() += v;
        }
    }
}

fn error_counts(map: &BTreeMap<&'static str, u64>) -> ErrorCounts {
    map.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn call_of(workload: Workload) -> ToolCall {
    match workload {
        Workload::FsRead => ToolCall::new("fs.read", json!({ "path": FIXTURE_FILE })),
        _ => ToolCall::new(NOOP_TOOL, json!({})),
    }
}

/// `noop` or `fs_read`: `concurrency` callers of `run_tool` for `duration`.
pub(crate) async fn tool_calls(
    fleet: &Fleet,
    config: &HarnessConfig,
    workload: Workload,
    progress: Option<ProgressFn>,
) -> HarnessResult<ThroughputReport> {
    // One call first: a workload whose every call fails measures nothing.
    let probe = fleet
        .engine
        .run_tool(&fleet.projects[0], call_of(workload))
        .await;
    if let Err(e) = probe {
        return Err(HarnessError::Measurement {
            what: "tool_calls",
            message: format!("the first `{}` call failed: {e}", call_of(workload).name),
        });
    }
    let dropped_before = fleet.dropped().await;
    let peak_reset = process::reset_peak_rss();
    let meter = Meter::new(workload, Goal::Time(config.duration));
    let ticker = Ticker::start(meter.clone(), progress);
    let start = Instant::now();
    let deadline = start + config.duration;
    let mut tasks = Vec::with_capacity(config.concurrency);
    for i in 0..config.concurrency {
        let engine = fleet.engine.clone();
        let project = fleet.projects[i % fleet.projects.len()].clone();
        let meter = meter.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = CallerResult::default();
            let call = call_of(workload);
            loop {
                let t = Instant::now();
                let outcome = engine.run_tool(&project, call.clone()).await;
                let end = Instant::now();
                r.histogram.record(end - t);
                let ok = match outcome {
                    Ok(_) => true,
                    Err(e) => {
                        *r.errors.entry(e.code()).or_default() += 1;
                        false
                    }
                };
                r.ok += u64::from(ok);
                meter.tick(ok);
                if end >= deadline {
                    break r;
                }
            }
        }));
    }
    let total = join_callers(tasks, "tool_calls").await?;
    let elapsed = start.elapsed();
    drop(ticker);
    Ok(ThroughputReport {
        workload,
        operation: "run_tool call".into(),
        callers: config.concurrency,
        projects: fleet.projects.len(),
        operations: total.histogram.count(),
        ok: total.ok,
        errors: error_counts(&total.errors),
        elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        throughput_per_s: total.ok as f64 / elapsed.as_secs_f64(),
        latency: total.histogram.summary(),
        peak_rss_bytes: peak_reset.then(process::peak_rss_bytes).flatten(),
        telemetry_dropped: fleet.dropped().await.saturating_sub(dropped_before),
        notes: BTreeMap::new(),
    })
}

async fn join_callers(
    tasks: Vec<tokio::task::JoinHandle<CallerResult>>,
    what: &'static str,
) -> HarnessResult<CallerResult> {
    let mut total = CallerResult::default();
    for t in tasks {
        let r = t.await.map_err(|e| HarnessError::Measurement {
            what,
            message: format!("a caller task died: {e}"),
        })?;
        total.merge(r);
    }
    Ok(total)
}

/// A scripted user message that asks for one `fs.read` of the fixture file.
fn scripted_message(round: u64, event: usize) -> Signal {
    let mut msg = Signal::user_message(format!("round {round} event {event}: read the fixture"));
    msg.data.insert(
        "script".into(),
        json!({
            "assistant_text": "Reading the fixture.",
            "tool_calls": [{ "name": "fs.read", "args": { "path": FIXTURE_FILE } }],
        }),
    );
    msg
}

/// Sums of the telemetry counters `name` and `total_events` over the fleet's projects.
async fn counters(fleet: &Fleet, name: &str) -> (u64, u64) {
    let (mut sum, mut total) = (0, 0);
    for p in &fleet.projects {
        if let Ok(d) = fleet.engine.diagnostics(p).await {
            sum += d.telemetry["counters"][name].as_u64().unwrap_or(0);
            total += d.telemetry["total_events"].as_u64().unwrap_or(0);
        }
    }
    (sum, total)
}

/// Telemetry counter `name` summed over the fleet once the telemetry actors have caught up
/// (they count asynchronously): read until `total_events` stops moving, ≤ 2 s.
async fn settled_counter(fleet: &Fleet, name: &str) -> u64 {
    let give_up = Instant::now() + Duration::from_secs(2);
    let mut last = counters(fleet, name).await;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = counters(fleet, name).await;
        if now.1 == last.1 || Instant::now() >= give_up {
            return now.0;
        }
        last = now;
    }
}

/// `conversations`: every conversation gets `events` scripted messages per round, driven by
/// `min(concurrency, conversations)` callers, for `duration`.
pub(crate) async fn conversations(
    fleet: &Fleet,
    config: &HarnessConfig,
    progress: Option<ProgressFn>,
) -> HarnessResult<ThroughputReport> {
    let mut convs: Vec<(ProjectId, ConversationId)> = Vec::new();
    for p in &fleet.projects {
        for _ in 0..config.conversations {
            let c = fleet
                .engine
                .start_conversation(p, ConversationOptions::default())
                .await
                .map_err(HarnessError::setup("start_conversation"))?;
            convs.push((p.clone(), c));
        }
    }
    let completed_before = settled_counter(fleet, "tool.completed").await;
    let dropped_before = fleet.dropped().await;
    let peak_reset = process::reset_peak_rss();
    let callers = config.concurrency.min(convs.len());
    let meter = Meter::new(Workload::Conversations, Goal::Time(config.duration));
    let ticker = Ticker::start(meter.clone(), progress);
    let start = Instant::now();
    let deadline = start + config.duration;
    let mut tasks = Vec::with_capacity(callers);
    for w in 0..callers {
        let mine: Vec<(ProjectId, ConversationId)> =
            convs.iter().skip(w).step_by(callers).cloned().collect();
        let engine = fleet.engine.clone();
        let meter = meter.clone();
        let events = config.events;
        tasks.push(tokio::spawn(async move {
            let mut r = CallerResult::default();
            let mut round = 0u64;
            'rounds: loop {
                for (p, c) in &mine {
                    for event in 0..events {
                        if Instant::now() >= deadline {
                            break 'rounds;
                        }
                        let t = Instant::now();
                        let outcome = engine
                            .conversation_call(
                                p,
                                c,
                                scripted_message(round, event),
                                Some(MESSAGE_TIMEOUT),
                            )
                            .await;
                        r.histogram.record(t.elapsed());
                        let failure = match outcome {
                            Ok(s) if s.settled => None,
                            Ok(_) => Some("not_settled"),
                            Err(e) => Some(e.code()),
                        };
                        match failure {
                            None => r.ok += 1,
                            Some(code) => *r.errors.entry(code).or_default() += 1,
                        }
                        meter.tick(failure.is_none());
                    }
                }
                round += 1;
                *r.notes.entry("rounds").or_default() += 1;
            }
            r
        }));
    }
    let mut total = join_callers(tasks, "conversations").await?;
    let elapsed = start.elapsed();
    drop(ticker);
    // Every run must have completed (checked on the ≤ 25 newest runs each conversation keeps).
    let mut checked = 0u64;
    for (p, c) in &convs {
        match fleet.engine.conversation_state(p, c).await {
            Ok(state) => {
                for run in &state.run_history {
                    checked += 1;
                    if run.status != "completed" {
                        *total.errors.entry("run_not_completed").or_default() += 1;
                    }
                }
            }
            Err(e) => *total.errors.entry(e.code()).or_default() += 1,
        }
        let _ = fleet.engine.stop_conversation(p, c).await;
    }
    let completed = settled_counter(fleet, "tool.completed")
        .await
        .saturating_sub(completed_before);
    let mut notes: BTreeMap<String, u64> = total
        .notes
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    notes.insert("conversations".into(), convs.len() as u64);
    notes.insert("tool_calls_completed".into(), completed);
    notes.insert("runs_checked".into(), checked);
    Ok(ThroughputReport {
        workload: Workload::Conversations,
        operation: "user message (call → settled, one fs.read tool call)".into(),
        callers,
        projects: fleet.projects.len(),
        operations: total.histogram.count(),
        ok: total.ok,
        errors: error_counts(&total.errors),
        elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        throughput_per_s: total.ok as f64 / elapsed.as_secs_f64(),
        latency: total.histogram.summary(),
        peak_rss_bytes: peak_reset.then(process::peak_rss_bytes).flatten(),
        telemetry_dropped: fleet.dropped().await.saturating_sub(dropped_before),
        notes,
    })
}
