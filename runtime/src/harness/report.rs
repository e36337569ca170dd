//! [`HarnessReport`]: everything one harness run measured — per-workload throughput and latency
//! percentiles, errors by code, peak RSS, telemetry drops, the lifecycle figures (project churn,
//! idle conversation memory, crash recovery) — and the checks of the figures against
//! those measurements ([`FigureCheck`]). Serializable, so `--json` prints it as is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::{HarnessConfig, Workload};
use super::histogram::LatencySummary;
use super::process::MachineInfo;

/// Error counts by error code (`outside_root`, `max_concurrency_reached`, `not_settled`, …).
pub type ErrorCounts = BTreeMap<String, u64>;

/// A timed workload: `callers` concurrent callers for the configured duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputReport {
    /// `noop`, `fs_read` or `conversations`.
    pub workload: Workload,
    /// What one operation is (`run_tool call`, `user message`).
    pub operation: String,
    /// Concurrent callers.
    pub callers: usize,
    /// Projects the callers were spread over (round robin).
    pub projects: usize,
    /// Operations attempted.
    pub operations: u64,
    /// Operations that succeeded.
    pub ok: u64,
    /// Failed operations by error code.
    pub errors: ErrorCounts,
    /// Wall time from the first call to the last answer.
    pub elapsed_ms: f64,
    /// Successful operations per second.
    pub throughput_per_s: f64,
    /// Latency of every operation (successful or not).
    pub latency: LatencySummary,
    /// Peak RSS during the workload (`None` off Linux, or when the peak could not be reset).
    pub peak_rss_bytes: Option<u64>,
    /// Telemetry events dropped during the workload (SPEC §8.1: the 4096-event queue was full).
    pub telemetry_dropped: u64,
    /// Workload-specific facts (e.g. tool calls completed by the conversations).
    pub notes: BTreeMap<String, u64>,
}

/// The `projects` workload: many projects started, then stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectsReport {
    /// Projects started (and stopped).
    pub count: usize,
    /// Starts (and stops) in flight at once.
    pub parallelism: usize,
    /// Wall time to start them all.
    pub start_total_ms: f64,
    /// Wall time to stop them all.
    pub stop_total_ms: f64,
    /// Start plus stop.
    pub total_ms: f64,
    /// Latency of one `start_project`.
    pub start_latency: LatencySummary,
    /// Latency of one `stop_project`.
    pub stop_latency: LatencySummary,
    /// Failed starts and stops by code.
    pub errors: ErrorCounts,
    /// Peak RSS with all of them running.
    pub peak_rss_bytes: Option<u64>,
    /// Telemetry events dropped while they ran.
    pub telemetry_dropped: u64,
}

/// The `idle_memory` workload: conversations started in one project and left idle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleMemoryReport {
    /// Conversations started.
    pub conversations: usize,
    /// Conversations that started without error.
    pub started: u64,
    /// RSS before the first start (after returning freed heap to the OS).
    pub rss_before_bytes: Option<u64>,
    /// RSS with all of them idle (after the same).
    pub rss_after_bytes: Option<u64>,
    /// `(after − before) / started`: process memory per idle conversation, journal page cache
    /// and allocator overhead included.
    pub bytes_per_conversation: Option<f64>,
    /// Wall time to start them all.
    pub start_total_ms: f64,
    /// Latency of one `start_conversation`.
    pub start_latency: LatencySummary,
    /// Wall time of the `stop_project` that stopped them all.
    pub stop_total_ms: f64,
    /// Failed starts by code.
    pub errors: ErrorCounts,
}

/// The `crash_recovery` workload: conversation actors crashed through failure injection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrashRecoveryReport {
    /// Conversations crashed (once each).
    pub samples: usize,
    /// How a sample is taken.
    pub method: String,
    /// Crash → first answer of the rebuilt conversation (`conversation_state`).
    pub back_in_service: LatencySummary,
    /// Samples whose answering actor was a new incarnation rebuilt from the journal.
    pub restored: u64,
    /// Failed samples by code (`not_restored`, `no_restart`, or the engine's code).
    pub errors: ErrorCounts,
}

/// One figure of the issue, checked against what this run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureCheck {
    /// Short name (`noop_throughput`, `noop_p99`, …).
    pub name: String,
    /// The target as the issue states it.
    pub target: String,
    /// What was measured, with its unit and conditions.
    pub measured: String,
    /// Whether the measurement meets the target.
    pub pass: bool,
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarnessReport {
    /// The configuration run.
    pub config: HarnessConfig,
    /// The machine and its load.
    pub machine: MachineInfo,
    /// RFC 3339 start of the run.
    pub started_at: String,
    /// Wall time of the whole run, setup included.
    pub elapsed_ms: f64,
    /// Timed workloads, in run order.
    pub throughput: Vec<ThroughputReport>,
    /// The `projects` workload.
    pub projects: Option<ProjectsReport>,
    /// The `idle_memory` workload.
    pub idle_memory: Option<IdleMemoryReport>,
    /// The `crash_recovery` workload.
    pub crash_recovery: Option<CrashRecoveryReport>,
    /// Peak RSS over the run (`VmHWM`).
    pub peak_rss_bytes: Option<u64>,
    /// Telemetry events dropped over the run.
    pub telemetry_dropped: u64,
    /// The figures against this run.
    pub figures: Vec<FigureCheck>,
}

impl HarnessReport {
    /// The timed workload `w`, if it ran.
    pub fn throughput_of(&self, w: Workload) -> Option<&ThroughputReport> {
        self.throughput.iter().find(|t| t.workload == w)
    }

    /// Every error count of the run, summed by code.
    pub fn errors_by_code(&self) -> ErrorCounts {
        let mut all = ErrorCounts::new();
        let maps = self
            .throughput
            .iter()
            .map(|t| &t.errors)
            .chain(self.projects.as_ref().map(|p| &p.errors))
            .chain(self.idle_memory.as_ref().map(|i| &i.errors))
            .chain(self.crash_recovery.as_ref().map(|c| &c.errors));
        for map in maps {
            for (code, n) in map {
                *all.entry(code.clone()).or_default() += n;
            }
        }
        all
    }

    /// Checks the figures against the measurements present in this report.
    pub fn check_figures(&self) -> Vec<FigureCheck> {
        let mut out = Vec::new();
        if let Some(t) = self.throughput_of(Workload::Noop) {
            out.push(FigureCheck {
                name: "noop_throughput".into(),
                target: "≥ 100,000 calls/s end to end (24 concurrent callers, 2 cores)".into(),
                measured: format!(
                    "{:.0} calls/s ({} callers, {} cores)",
                    t.throughput_per_s, t.callers, self.machine.cpus
                ),
                pass: t.throughput_per_s >= 100_000.0,
            });
            out.push(FigureCheck {
                name: "noop_p99".into(),
                target: "p99 ≤ 1 ms".into(),
                measured: format!("p99 {:.0} µs", t.latency.p99_us),
                pass: t.latency.count > 0 && t.latency.p99_us <= 1000.0,
            });
        }
        if let Some(i) = &self.idle_memory {
            let per = i.bytes_per_conversation;
            out.push(FigureCheck {
                name: "idle_conversation_memory".into(),
                target: "≤ 16 KiB per idle conversation (10,000 in one project)".into(),
                measured: per.map_or_else(
                    || "not measurable (no /proc/self/status)".to_owned(),
                    |b| format!("{:.1} KiB each ({} conversations)", b / 1024.0, i.started),
                ),
                pass: per.is_some_and(|b| b <= 16.0 * 1024.0),
            });
        }
        if let Some(p) = &self.projects {
            out.push(FigureCheck {
                name: "project_churn".into(),
                target: "1,000 projects started and stopped ≤ 2 s total".into(),
                measured: format!(
                    "{:.0} ms for {} projects ({:.0} ms start + {:.0} ms stop, {} in parallel)",
                    p.total_ms, p.count, p.start_total_ms, p.stop_total_ms, p.parallelism
                ),
                pass: p.errors.is_empty() && p.total_ms <= 2000.0 * p.count as f64 / 1000.0,
            });
        }
        if let Some(c) = &self.crash_recovery {
            out.push(FigureCheck {
                name: "crash_recovery".into(),
                target: "crashed conversation actor back in service ≤ 5 ms".into(),
                measured: format!(
                    "p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({} samples)",
                    c.back_in_service.p50_us,
                    c.back_in_service.p99_us,
                    c.back_in_service.max_us,
                    c.back_in_service.count
                ),
                pass: c.errors.is_empty()
                    && c.back_in_service.count > 0
                    && c.back_in_service.max_us <= 5000.0,
            });
        }
        out
    }
}
