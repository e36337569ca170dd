//! [`run`]: carries out the selected workloads in order (lifecycle ones on engines of their
//! own, the timed ones on one fleet of projects started once) and assembles the
//! [`HarnessReport`].

use tokio::time::Instant;

use super::config::{HarnessConfig, Workload};
use super::error::HarnessResult;
use super::lifecycle;
use super::process::{self, MachineInfo};
use super::progress::ProgressFn;
use super::report::HarnessReport;
use super::steady::{self, Fleet};
use crate::config::{Clock, SystemClock};
use crate::types::rfc3339_ms;

/// Runs the harness. Needs a multi-threaded tokio runtime (the callers are tasks; with one
/// thread they would take turns). `progress`, when given, is called every 100 ms with the
/// running workload's [`Progress`](super::Progress), and once as each workload ends.
///
/// Calls that fail under load are counted by code in the report; an `Err` means the run
/// itself could not be set up or measured.
pub async fn run(
    config: &HarnessConfig,
    progress: Option<ProgressFn>,
) -> HarnessResult<HarnessReport> {
    config.validate()?;
    let started = Instant::now();
    let mut report = HarnessReport {
        config: config.clone(),
        machine: MachineInfo::now(),
        started_at: rfc3339_ms(SystemClock.now_ms()),
        elapsed_ms: 0.0,
        throughput: Vec::new(),
        projects: None,
        idle_memory: None,
        crash_recovery: None,
        peak_rss_bytes: None,
        telemetry_dropped: 0,
        figures: Vec::new(),
    };
    let mut fleet: Option<Fleet> = None;
    let outcome = run_workloads(config, progress, &mut report, &mut fleet).await;
    if let Some(fleet) = fleet {
        fleet.shutdown().await;
    }
    outcome?;
    report.peak_rss_bytes = [
        process::peak_rss_bytes(),
        report.projects.as_ref().and_then(|p| p.peak_rss_bytes),
    ]
    .into_iter()
    .chain(report.throughput.iter().map(|t| t.peak_rss_bytes))
    .flatten()
    .max();
    report.telemetry_dropped = report
        .throughput
        .iter()
        .map(|t| t.telemetry_dropped)
        .chain(report.projects.as_ref().map(|p| p.telemetry_dropped))
        .sum();
    report.figures = report.check_figures();
    report.machine.load_average_end = process::load_average();
    report.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(report)
}

async fn run_workloads(
    config: &HarnessConfig,
    progress: Option<ProgressFn>,
    report: &mut HarnessReport,
    fleet: &mut Option<Fleet>,
) -> HarnessResult<()> {
    for workload in config.workload.expand() {
        match workload {
            Workload::IdleMemory => {
                report.idle_memory = Some(lifecycle::idle_memory(config, progress.clone()).await?);
            }
            Workload::CrashRecovery => {
                report.crash_recovery =
                    Some(lifecycle::crash_recovery(config, progress.clone()).await?);
            }
            Workload::Projects => {
                report.projects = Some(lifecycle::projects(config, progress.clone()).await?);
            }
            Workload::Noop | Workload::FsRead | Workload::Conversations => {
                if fleet.is_none() {
                    *fleet = Some(Fleet::start(config).await?);
                }
                let Some(f) = fleet.as_ref() else {
                    continue;
                };
                let t = if workload == Workload::Conversations {
                    steady::conversations(f, config, progress.clone()).await?
                } else {
                    steady::tool_calls(f, config, workload, progress.clone()).await?
                };
                report.throughput.push(t);
            }
            Workload::All => {}
        }
    }
    Ok(())
}
