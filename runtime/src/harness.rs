//! The load harness (issue item 7; later `codeward bench`, SPEC §14): starts projects on
//! temporary directories, drives them through the public [`Engine`](crate::Engine) API and
//! reports throughput, latency percentiles (p50 / p95 / p99 / max from a log-bucket
//! histogram), errors by code, peak RSS, telemetry drops and the issue's figures.
//!
//! | Workload (`--only`) | What runs | Figure checked |
//! |---|---|---|
//! | `noop` | `concurrency` callers of `run_tool(harness.noop)` for `duration` | ≥ 100,000 calls/s, p99 ≤ 1 ms |
//! | `fs_read` | the same with `fs.read` of a 1 KiB file | — |
//! | `conversations` | `projects × conversations` conversations, `events` scripted user messages per round each, every message with an `fs.read` tool call | — |
//! | `projects` | `churn_projects` projects started, then stopped, `concurrency` at a time | 1,000 in ≤ 2 s |
//! | `idle_memory` | `idle_conversations` idle conversations in one project; RSS delta | ≤ 16 KiB each |
//! | `crash_recovery` | `crash_samples` conversations crashed once ([`crash_conversation`]) | back in service ≤ 5 ms |
//!
//! ```no_run
//! # async fn demo() -> Result<(), codeward::harness::HarnessError> {
//! use codeward::harness::{self, HarnessConfig, Workload};
//!
//! let mut config = HarnessConfig::reference();
//! config.workload = Workload::Noop;
//! let report = harness::run(&config, None).await?;
//! let noop = report.throughput_of(Workload::Noop).unwrap();
//! println!("{:.0} calls/s, p99 {:.0} µs", noop.throughput_per_s, noop.latency.p99_us);
//! # Ok(()) }
//! ```
//!
//! Files: `config.rs` (config, workloads), `run.rs` (the run), `steady.rs` (timed workloads),
//! `lifecycle.rs` (projects, idle memory, crash recovery, failure injection), `histogram.rs`,
//! `report.rs`, `progress.rs`, `process.rs` (RSS, load), `scratch.rs` (temp dirs), `noop.rs`
//! (the no-op provider tool), `error.rs`, `tests.rs`.

mod config;
mod error;
mod histogram;
mod lifecycle;
mod noop;
mod process;
mod progress;
mod report;
mod run;
mod scratch;
mod steady;
#[cfg(test)]
mod tests;

pub use config::{HarnessConfig, Workload};
pub use error::{HarnessError, HarnessResult};
pub use histogram::{Histogram, LatencySummary};
pub use lifecycle::crash_conversation;
pub use noop::{NOOP_TOOL, NoopProvider};
pub use process::MachineInfo;
pub use progress::{Progress, ProgressFn};
pub use report::{
    CrashRecoveryReport, ErrorCounts, FigureCheck, HarnessReport, IdleMemoryReport, ProjectsReport,
    ThroughputReport,
};
pub use run::run;
pub use scratch::{FIXTURE_BYTES, FIXTURE_FILE};
