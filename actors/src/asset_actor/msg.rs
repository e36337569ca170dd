//! `AssetMsg`: what the asset store actor accepts.

use std::path::PathBuf;

use codeward_assets::{ReloadReport, ReloadTrigger};
use ractor::RpcReplyPort;

/// Messages of the asset store actor.
pub enum AssetMsg {
    /// Reloads from disk (coalesced with a reload already running). Replies with the report of
    /// the reload that covered the request when `reply` is given; emits its events.
    Reload {
        /// What asked.
        trigger: ReloadTrigger,
        /// Changed paths reported by the watcher (empty otherwise).
        changed_paths: Vec<PathBuf>,
        /// Optional reply port.
        reply: Option<RpcReplyPort<ReloadReport>>,
    },
    /// Self-sent when a reload task finished. No reply.
    Done {
        /// Its report.
        report: Box<ReloadReport>,
    },
    /// Failure injection (tests, runbook): the actor panics.
    Crash,
}
