//! `WatcherHandle`: status queries and failure injection.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::msg::WatcherMsg;
use crate::supervision::{ChildRegistry, Handle, HandleResult};

/// The watcher's status, for `diagnostics.watcher`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherStatus {
    /// Trailing debounce.
    pub debounce_ms: u64,
    /// Max wait.
    pub max_wait_ms: u64,
    /// Events seen but not yet turned into a reload request.
    pub pending_paths: usize,
    /// When the watcher last asked for a reload.
    pub last_request_at_ms: Option<i64>,
    /// Directories watched.
    pub watch_dirs: Vec<PathBuf>,
}

/// Cloneable access to a project's watcher actor.
#[derive(Debug, Clone)]
pub struct WatcherHandle {
    actor: Handle<WatcherMsg>,
}

impl WatcherHandle {
    /// A handle to the watcher registered as `name`.
    pub fn new(registry: &ChildRegistry, name: &str) -> Self {
        Self {
            actor: registry.handle(name),
        }
    }

    /// The watcher's status.
    pub async fn status(&self) -> HandleResult<WatcherStatus> {
        self.actor
            .call(
                |reply| WatcherMsg::Status { reply },
                Some(Duration::from_secs(5)),
            )
            .await
    }

    /// Failure injection: crashes the actor.
    pub fn crash(&self) -> HandleResult<()> {
        self.actor.try_cast(WatcherMsg::Crash)
    }
}
