//! The supervisor actor: `handle` and `handle_supervisor_evt` dispatch; the functions below do
//! the one_for_one work (start, restart after backoff, intensity checks, escalation).

use std::collections::HashMap;
use std::sync::Arc;

use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};
use tokio::time::Instant;

use super::msg::{ChildStatus, SupervisorMsg};
use crate::supervision::{
    Backoff, ChildExit, ChildRegistry, ChildSpec, Escalation, Intensity, OnExceeded,
    OnExceededAction, RestartWindow, SupervisorError, SupervisorEvent,
};

/// Hook called (synchronously, inside the supervisor) for every [`SupervisorEvent`]; keep it
/// cheap and non-blocking (e.g. a telemetry `try_send`).
pub type SupervisorObserver = Arc<dyn Fn(&SupervisorEvent) + Send + Sync>;

/// Configuration of one supervisor (`self` of the actor).
#[derive(Clone)]
pub struct SupervisorConfig {
    /// Name used in events, escalations and errors.
    pub name: String,
    /// Restarts of all children together tolerated in a window; past it the supervisor escalates.
    pub intensity: Intensity,
    /// Delay between restarts of one child inside a window.
    pub backoff: Backoff,
    /// Optional event hook.
    pub observer: Option<SupervisorObserver>,
}

impl std::fmt::Debug for SupervisorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorConfig")
            .field("name", &self.name)
            .field("intensity", &self.intensity)
            .field("backoff", &self.backoff)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl SupervisorConfig {
    /// Defaults: 5 restarts in 10 s, backoff 0/100/200… ms capped at 2 s, no observer.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            intensity: Intensity::default(),
            backoff: Backoff::default(),
            observer: None,
        }
    }

    /// Sets the intensity.
    pub fn with_intensity(mut self, intensity: Intensity) -> Self {
        self.intensity = intensity;
        self
    }

    /// Sets the backoff.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the observer hook.
    pub fn with_observer(mut self, observer: SupervisorObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    fn observe(&self, event: SupervisorEvent) {
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }
}

/// The one_for_one supervisor actor.
#[derive(Debug, Clone)]
pub struct Supervisor {
    config: SupervisorConfig,
}

impl Supervisor {
    /// A supervisor with this configuration.
    pub fn new(config: SupervisorConfig) -> Self {
        Self { config }
    }
}

/// Start input of a supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorArgs {
    /// Children, started in this order.
    pub children: Vec<ChildSpec>,
    /// Where current refs are published.
    pub registry: ChildRegistry,
}

struct ChildEntry {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    window: Option<RestartWindow>,
    restart_count: u64,
    last_reason: Option<String>,
    stop_requested: Option<RpcReplyPort<Result<(), SupervisorError>>>,
}

/// Mutable state of a supervisor.
pub struct SupervisorState {
    order: Vec<String>,
    children: HashMap<String, ChildEntry>,
    // INVARIANT: `by_id[id] = name` iff `children[name].cell` is the live cell with that id.
    by_id: HashMap<ActorId, String>,
    window: RestartWindow,
    registry: ChildRegistry,
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut state = SupervisorState {
            order: Vec::new(),
            children: HashMap::new(),
            by_id: HashMap::new(),
            window: RestartWindow::new(self.config.intensity),
            registry: args.registry,
        };
        for spec in args.children {
            start_child(&myself, &mut state, spec).await?;
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        // Children are terminated with us; a parent may restart us and republish.
        for name in &state.order {
            state.registry.mark_down(name);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Restart { name } => {
                restart_child(&self.config, &myself, state, &name).await
            }
            SupervisorMsg::StartChild { spec, reply } => {
                let _ = reply.send(start_child(&myself, state, spec).await);
                Ok(())
            }
            SupervisorMsg::StopChild { name, reply } => {
                stop_child(&self.config, state, &name, reply);
                Ok(())
            }
            SupervisorMsg::Children { reply } => {
                let _ = reply.send(child_statuses(state));
                Ok(())
            }
        }
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorTerminated(cell, _, reason) => on_child_exit(
                &self.config,
                &myself,
                state,
                cell.get_id(),
                ChildExit::Normal { reason },
            ),
            SupervisionEvent::ActorFailed(cell, err) => on_child_exit(
                &self.config,
                &myself,
                state,
                cell.get_id(),
                ChildExit::Failed {
                    reason: err.to_string(),
                },
            ),
            _ => Ok(()),
        }
    }
}

/// Spawns a declared child and publishes it.
async fn start_child(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    spec: ChildSpec,
) -> Result<(), SupervisorError> {
    let name = spec.name.clone();
    if state.children.contains_key(&name) {
        return Err(SupervisorError::DuplicateChild { name });
    }
    let cell =
        (spec.factory)(myself.get_cell())
            .await
            .map_err(|e| SupervisorError::StartFailed {
                name: name.clone(),
                reason: e.to_string(),
            })?;
    state.by_id.insert(cell.get_id(), name.clone());
    state.registry.publish(&name, cell.clone());
    state.order.push(name.clone());
    state.children.insert(
        name,
        ChildEntry {
            window: spec.intensity.map(|i| RestartWindow::new(i.intensity)),
            spec,
            cell: Some(cell),
            restart_count: 0,
            last_reason: None,
            stop_requested: None,
        },
    );
    Ok(())
}

/// A supervised child ended: restart it, give it up, or escalate.
fn on_child_exit(
    config: &SupervisorConfig,
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    id: ActorId,
    exit: ChildExit,
) -> Result<(), ActorProcessingErr> {
    let Some(name) = state.by_id.remove(&id) else {
        return Ok(()); // not (or no longer) one of ours
    };
    let Some(entry) = state.children.get_mut(&name) else {
        return Ok(());
    };
    entry.cell = None;
    entry.last_reason = Some(exit.reason().to_owned());
    if let Some(reply) = entry.stop_requested.take() {
        remove_child(config, state, &name, exit.reason());
        let _ = reply.send(Ok(()));
        return Ok(());
    }
    if !entry.spec.restart.restarts_after(&exit) {
        remove_child(config, state, &name, exit.reason());
        return Ok(());
    }
    state.registry.mark_down(&name);
    plan_restart(config, myself, state, &name, exit.reason())
}

/// Counts a restart against the windows and schedules it after the backoff (or escalates).
fn plan_restart(
    config: &SupervisorConfig,
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    name: &str,
    reason: &str,
) -> Result<(), ActorProcessingErr> {
    let now = Instant::now();
    let supervisor_count = state.window.record(now);
    let Some(entry) = state.children.get_mut(name) else {
        return Ok(());
    };
    let mut nth = supervisor_count;
    if let (Some(window), Some(own)) = (entry.window.as_mut(), entry.spec.intensity) {
        nth = window.record(now);
        if window.exceeded() {
            let window_ms = own.intensity.window_ms;
            return match own.on_exceeded {
                OnExceeded::StopChild => {
                    config.observe(SupervisorEvent::IntensityExceeded {
                        supervisor: config.name.clone(),
                        actor: name.to_owned(),
                        reason: reason.to_owned(),
                        restart_count: u64::from(nth),
                        window_ms,
                        action: OnExceededAction::ChildStopped,
                    });
                    remove_child(config, state, name, reason);
                    Ok(())
                }
                OnExceeded::Escalate => Err(escalate(config, state, name, nth, window_ms, reason)),
            };
        }
    }
    if state.window.exceeded() {
        let window_ms = config.intensity.window_ms;
        return Err(escalate(
            config,
            state,
            name,
            supervisor_count,
            window_ms,
            reason,
        ));
    }
    let delay = config.backoff.delay(nth);
    let name = name.to_owned();
    if delay.is_zero() {
        // Sending to ourselves only fails while we are stopping; then no restart is wanted.
        let _ = myself.send_message(SupervisorMsg::Restart { name });
    } else {
        let _timer = myself.send_after(delay, move || SupervisorMsg::Restart { name });
    }
    Ok(())
}

/// Respawns a child whose restart was scheduled.
async fn restart_child(
    config: &SupervisorConfig,
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    name: &str,
) -> Result<(), ActorProcessingErr> {
    let Some(entry) = state.children.get_mut(name) else {
        return Ok(()); // removed (stopped on request) while the restart was pending
    };
    if entry.cell.is_some() {
        return Ok(());
    }
    match (entry.spec.factory)(myself.get_cell()).await {
        Ok(cell) => {
            entry.cell = Some(cell.clone());
            entry.restart_count += 1;
            let restart_count = entry.restart_count;
            let reason = entry.last_reason.clone().unwrap_or_default();
            state.by_id.insert(cell.get_id(), name.to_owned());
            state.registry.publish(name, cell);
            config.observe(SupervisorEvent::ChildRestarted {
                supervisor: config.name.clone(),
                actor: name.to_owned(),
                reason,
                restart_count,
                window_ms: config.intensity.window_ms,
            });
            Ok(())
        }
        Err(e) => {
            let reason = format!("start_failed: {e}");
            entry.last_reason = Some(reason.clone());
            plan_restart(config, myself, state, name, &reason)
        }
    }
}

/// Stops a child on request (no restart).
fn stop_child(
    config: &SupervisorConfig,
    state: &mut SupervisorState,
    name: &str,
    reply: RpcReplyPort<Result<(), SupervisorError>>,
) {
    let Some(entry) = state.children.get_mut(name) else {
        let _ = reply.send(Err(SupervisorError::ChildNotFound {
            name: name.to_owned(),
        }));
        return;
    };
    match entry.cell.clone() {
        Some(cell) => {
            // The reply is sent when its termination event arrives (`on_child_exit`).
            entry.stop_requested = Some(reply);
            cell.stop(Some("stopped_by_supervisor".to_owned()));
        }
        None => {
            remove_child(config, state, name, "stopped_by_supervisor");
            let _ = reply.send(Ok(()));
        }
    }
}

/// Forgets a child for good and closes its registry slot.
fn remove_child(config: &SupervisorConfig, state: &mut SupervisorState, name: &str, reason: &str) {
    if let Some(entry) = state.children.remove(name)
        && let Some(cell) = entry.cell
    {
        state.by_id.remove(&cell.get_id());
        cell.stop(Some("removed_by_supervisor".to_owned()));
    }
    state.order.retain(|n| n != name);
    state.registry.close(name);
    config.observe(SupervisorEvent::ChildRemoved {
        supervisor: config.name.clone(),
        actor: name.to_owned(),
        reason: reason.to_owned(),
    });
}

/// Builds the escalation error; the children are terminated by ractor when we fail with it.
fn escalate(
    config: &SupervisorConfig,
    state: &mut SupervisorState,
    child: &str,
    restarts: u32,
    window_ms: u64,
    reason: &str,
) -> ActorProcessingErr {
    config.observe(SupervisorEvent::IntensityExceeded {
        supervisor: config.name.clone(),
        actor: child.to_owned(),
        reason: reason.to_owned(),
        restart_count: u64::from(restarts),
        window_ms,
        action: OnExceededAction::Escalated,
    });
    for name in &state.order {
        state.registry.mark_down(name);
    }
    Box::new(Escalation {
        supervisor: config.name.clone(),
        child: child.to_owned(),
        restarts,
        window_ms,
        last_reason: reason.to_owned(),
    })
}

fn child_statuses(state: &SupervisorState) -> Vec<ChildStatus> {
    let now = Instant::now();
    state
        .order
        .iter()
        .filter_map(|name| state.children.get(name).map(|e| (name, e)))
        .map(|(name, entry)| {
            let restarts_in_window = match &entry.window {
                Some(w) => {
                    let mut w = w.clone();
                    w.prune(now);
                    w.count()
                }
                None => {
                    let mut w = state.window.clone();
                    w.prune(now);
                    w.count()
                }
            };
            ChildStatus {
                actor: name.clone(),
                restart: entry.spec.restart,
                status: if entry.cell.is_some() {
                    "running"
                } else {
                    "restarting"
                }
                .to_owned(),
                restart_count: entry.restart_count,
                restarts_in_window,
                last_reason: entry.last_reason.clone(),
            }
        })
        .collect()
}
