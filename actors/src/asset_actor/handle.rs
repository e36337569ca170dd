//! `AssetHandle`: the snapshot read on the hot path, and typed reload calls.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use codeward_assets::{AssetSnapshot, AssetStore, ReloadReport, ReloadTrigger};

use super::msg::AssetMsg;
use crate::supervision::{ChildRegistry, Handle, HandleResult};

/// How long a reload call waits (a 1,000-file project loads in well under a second).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Cloneable access to a project's assets.
#[derive(Debug, Clone)]
pub struct AssetHandle {
    store: AssetStore,
    actor: Handle<AssetMsg>,
}

impl AssetHandle {
    /// A handle over the engine-owned `store`, reaching the actor registered as `name`.
    pub fn new(registry: &ChildRegistry, name: &str, store: AssetStore) -> Self {
        Self {
            store,
            actor: registry.handle(name),
        }
    }

    /// The store (diagnostics, subscriptions).
    pub fn store(&self) -> &AssetStore {
        &self.store
    }

    /// The serving snapshot: no actor round trip.
    pub fn snapshot(&self) -> Arc<AssetSnapshot> {
        self.store.snapshot()
    }

    /// Reloads through the actor (serialized, coalesced) and returns the covering report.
    pub async fn reload(
        &self,
        trigger: ReloadTrigger,
        changed_paths: Vec<PathBuf>,
    ) -> HandleResult<ReloadReport> {
        self.actor
            .call(
                |reply| AssetMsg::Reload {
                    trigger,
                    changed_paths: changed_paths.clone(),
                    reply: Some(reply),
                },
                Some(RELOAD_TIMEOUT),
            )
            .await
    }

    /// Requests a reload without waiting for its result (the watcher's path); waits only for
    /// a restarting actor (≤ the retry wait).
    pub async fn request_reload(
        &self,
        trigger: ReloadTrigger,
        changed_paths: Vec<PathBuf>,
    ) -> bool {
        self.actor
            .send(AssetMsg::Reload {
                trigger,
                changed_paths,
                reply: None,
            })
            .await
            .is_ok()
    }

    /// Failure injection: crashes the actor.
    pub fn crash(&self) -> HandleResult<()> {
        self.actor.try_cast(AssetMsg::Crash)
    }

    /// The actor's generation (bumped on every restart).
    pub fn actor_generation(&self) -> u64 {
        self.actor.generation()
    }
}
