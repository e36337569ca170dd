//! The watcher actor: starts the notify debouncer, forwards its requests to the asset store
//! actor, and reports its status.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use codeward_assets::{ReloadTrigger, Watcher, WatcherConfig};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::JoinHandle;

use super::handle::WatcherStatus;
use super::msg::WatcherMsg;
use crate::asset_actor::{AssetHandle, assets_event};
use crate::supervision::{ChildSpec, RestartPolicy};
use crate::telemetry::TelemetryHandle;

/// The watcher actor (`self` = configuration and where requests go).
#[derive(Clone)]
pub struct WatcherActor {
    config: WatcherConfig,
    assets: AssetHandle,
    telemetry: TelemetryHandle,
    starts: Arc<AtomicU64>,
    last_request_at_ms: Arc<AtomicI64>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl std::fmt::Debug for WatcherActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatcherActor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WatcherActor {
    /// The child spec (transient: a normal stop removes it, a failure restarts it).
    pub fn child_spec(
        name: &str,
        config: WatcherConfig,
        assets: AssetHandle,
        telemetry: TelemetryHandle,
        clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) -> ChildSpec {
        let actor = WatcherActor {
            config,
            assets,
            telemetry,
            starts: Arc::new(AtomicU64::new(0)),
            last_request_at_ms: Arc::new(AtomicI64::new(0)),
            clock,
        };
        ChildSpec::actor(name, RestartPolicy::Transient, move || (actor.clone(), ()))
    }
}

/// The running watcher and its forwarding task.
pub struct WatcherState {
    watcher: Watcher,
    forward: JoinHandle<()>,
}

impl Actor for WatcherActor {
    type Msg = WatcherMsg;
    type State = WatcherState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<WatcherMsg>,
        _args: (),
    ) -> Result<WatcherState, ActorProcessingErr> {
        let (watcher, mut requests) = Watcher::spawn(self.config.clone())?;
        let assets = self.assets.clone();
        let last = self.last_request_at_ms.clone();
        let clock = self.clock.clone();
        let forward = tokio::spawn(async move {
            while let Some(req) = requests.recv().await {
                last.store(clock(), Ordering::Relaxed);
                assets
                    .request_reload(ReloadTrigger::Watcher, req.changed_paths)
                    .await;
            }
            let _ = myself.send_message(WatcherMsg::Died);
        });
        if let Some(ev) = assets_event(&watcher.started_event()) {
            self.telemetry.record(ev);
        }
        if self.starts.fetch_add(1, Ordering::Relaxed) > 0 {
            // Restarted: events may have been lost while down.
            self.assets
                .request_reload(ReloadTrigger::Watcher, Vec::new())
                .await;
        }
        Ok(WatcherState { watcher, forward })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<WatcherMsg>,
        state: &mut WatcherState,
    ) -> Result<(), ActorProcessingErr> {
        state.forward.abort();
        if let Some(ev) = assets_event(&state.watcher.stopped_event("stopped")) {
            self.telemetry.record(ev);
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<WatcherMsg>,
        msg: WatcherMsg,
        state: &mut WatcherState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WatcherMsg::Status { reply } => {
                let _ = reply.send(status(self, state));
                Ok(())
            }
            WatcherMsg::Died => Err("watcher request stream ended".into()),
            WatcherMsg::Crash => panic!("watcher actor crash requested (failure injection)"),
        }
    }
}

fn status(actor: &WatcherActor, state: &WatcherState) -> WatcherStatus {
    let last = actor.last_request_at_ms.load(Ordering::Relaxed);
    WatcherStatus {
        debounce_ms: u64::try_from(actor.config.debounce.as_millis()).unwrap_or(u64::MAX),
        max_wait_ms: u64::try_from(actor.config.max_wait.as_millis()).unwrap_or(u64::MAX),
        pending_paths: state.watcher.pending_event_count(),
        last_request_at_ms: (last > 0).then_some(last),
        watch_dirs: state.watcher.watch_dirs(),
    }
}
