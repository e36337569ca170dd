//! The asset store actor: `handle` dispatches; the reload bookkeeping lives below.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use codeward_assets::{AssetStore, AssetsEvent, ReloadReport, ReloadTrigger};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::msg::AssetMsg;
use crate::supervision::{ChildSpec, RestartPolicy};
use crate::telemetry::{EventName, TelemetryEvent, TelemetryHandle};

/// The asset store actor (`self` = the engine-owned store and where events go).
#[derive(Clone)]
pub struct AssetStoreActor {
    store: AssetStore,
    telemetry: TelemetryHandle,
    starts: Arc<AtomicU64>,
}

impl std::fmt::Debug for AssetStoreActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssetStoreActor")
            .field("data_dir", &self.store.data_dir())
            .finish_non_exhaustive()
    }
}

impl AssetStoreActor {
    /// The child spec (permanent). Every start after the first triggers one reload from disk.
    pub fn child_spec(name: &str, store: AssetStore, telemetry: TelemetryHandle) -> ChildSpec {
        let starts = Arc::new(AtomicU64::new(0));
        ChildSpec::actor(name, RestartPolicy::Permanent, move || {
            (
                AssetStoreActor {
                    store: store.clone(),
                    telemetry: telemetry.clone(),
                    starts: starts.clone(),
                },
                (),
            )
        })
    }
}

/// A pending (not yet started) reload: the union of the requests it covers.
struct Pending {
    trigger: ReloadTrigger,
    changed_paths: Vec<PathBuf>,
    waiters: Vec<RpcReplyPort<ReloadReport>>,
}

/// Mutable state: the waiters of the running reload and the merged follow-up.
#[derive(Default)]
pub struct AssetState {
    running: Option<Vec<RpcReplyPort<ReloadReport>>>,
    pending: Option<Pending>,
}

impl Actor for AssetStoreActor {
    type Msg = AssetMsg;
    type State = AssetState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<AssetMsg>,
        _args: (),
    ) -> Result<AssetState, ActorProcessingErr> {
        if self.starts.fetch_add(1, Ordering::Relaxed) > 0 {
            // Restarted: changes may have been missed while down.
            let _ = myself.send_message(AssetMsg::Reload {
                trigger: ReloadTrigger::Api,
                changed_paths: Vec::new(),
                reply: None,
            });
        }
        Ok(AssetState::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<AssetMsg>,
        msg: AssetMsg,
        state: &mut AssetState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AssetMsg::Reload {
                trigger,
                changed_paths,
                reply,
            } => request(self, &myself, state, trigger, changed_paths, reply),
            AssetMsg::Done { report } => finished(self, &myself, state, *report),
            AssetMsg::Crash => panic!("asset store actor crash requested (failure injection)"),
        }
        Ok(())
    }
}

fn request(
    actor: &AssetStoreActor,
    myself: &ActorRef<AssetMsg>,
    state: &mut AssetState,
    trigger: ReloadTrigger,
    changed_paths: Vec<PathBuf>,
    reply: Option<RpcReplyPort<ReloadReport>>,
) {
    if state.running.is_none() {
        state.running = Some(reply.into_iter().collect());
        start(actor, myself, trigger, changed_paths);
        return;
    }
    let pending = state.pending.get_or_insert_with(|| Pending {
        trigger,
        changed_paths: Vec::new(),
        waiters: Vec::new(),
    });
    if pending.trigger != trigger {
        // Mixed callers: an API caller is waiting, so it is an API reload (paths kept).
        pending.trigger = ReloadTrigger::Api;
    }
    pending.changed_paths.extend(changed_paths);
    pending.waiters.extend(reply);
}

fn start(
    actor: &AssetStoreActor,
    myself: &ActorRef<AssetMsg>,
    trigger: ReloadTrigger,
    changed_paths: Vec<PathBuf>,
) {
    let store = actor.store.clone();
    let myself = myself.clone();
    tokio::spawn(async move {
        let report = store.reload_async(trigger, changed_paths).await;
        // If we died meanwhile the report is lost; the restarted actor reloads anyway.
        let _ = myself.send_message(AssetMsg::Done {
            report: Box::new(report),
        });
    });
}

fn finished(
    actor: &AssetStoreActor,
    myself: &ActorRef<AssetMsg>,
    state: &mut AssetState,
    report: ReloadReport,
) {
    for event in report.events() {
        if let Some(ev) = assets_event(&event) {
            actor.telemetry.record(ev);
        }
    }
    for waiter in state.running.take().unwrap_or_default() {
        let _ = waiter.send(report.clone());
    }
    if let Some(next) = state.pending.take() {
        state.running = Some(next.waiters);
        start(actor, myself, next.trigger, next.changed_paths);
    }
}

/// An assets/watcher event as a telemetry event (its payload without the `event` tag).
pub fn assets_event(event: &AssetsEvent) -> Option<TelemetryEvent> {
    let name: EventName = event.name().parse().ok()?;
    let mut payload = serde_json::to_value(event).ok()?;
    if let Some(obj) = payload.as_object_mut() {
        obj.remove("event");
    }
    Some(TelemetryEvent::new(name, payload))
}
