//! Supervision wiring (SPEC §13.1–13.2): the conversation's child spec (transient, 3 restarts
//! in 10 s → it stops alone), the ConversationSupervisor (one_for_one, dynamic, 10 in 10 s →
//! escalate) and the [`ConversationDirectory`] that starts conversations under it and finishes
//! the ones it gives up.
//!
//! When a conversation exceeds its own intensity the supervisor removes it without running any
//! of its code. The directory's observer hook then finishes it as `crashed`, from the outside:
//! it journals `conversation.stopped{reason: crashed}` at the next seq (the actor is dead, so
//! nothing else writes), records the stop, emits `conversation.stopped` and ends its
//! subscriptions.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use serde_json::json;

use super::actor::{ConversationActor, ConversationArgs};
use super::error::ConversationError;
use super::handle::ConversationHandle;
use super::msg::StopReason;
use crate::conversation::{ConversationEvent, Signal, SignalType};
use crate::ids::CorrelationId;
use crate::supervision::{
    ChildRegistry, ChildSpec, Handle, Intensity, OnExceeded, OnExceededAction, RestartPolicy,
    Supervisor, SupervisorConfig, SupervisorEvent, SupervisorHandle, SupervisorMsg,
    SupervisorObserver,
};
use crate::telemetry::EventName;

/// How long a start request waits for the supervisor (registering and restoring included).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A conversation's own intensity: 3 restarts in 10 s, then it stops alone.
pub fn conversation_intensity() -> Intensity {
    Intensity::new(3, Duration::from_secs(10))
}

/// The ConversationSupervisor's intensity: 10 restarts (of all conversations) in 10 s, then it
/// escalates to the project supervisor.
pub fn conversation_supervisor_intensity() -> Intensity {
    Intensity::new(10, Duration::from_secs(10))
}

/// The child spec of one conversation: transient (a normal stop is final), child name = the
/// conversation id, 3 restarts in 10 s → stop child. Every (re)start rebuilds from the journal.
///
/// A conversation started with this spec alone is not finished as `crashed` when given up; use
/// [`ConversationDirectory::start`] for that.
pub fn conversation_child_spec(args: ConversationArgs) -> ChildSpec {
    child_spec(Arc::new(args))
}

fn child_spec(args: Arc<ConversationArgs>) -> ChildSpec {
    let name = args.config.conversation_id.to_string();
    ChildSpec::actor(name, RestartPolicy::Transient, move || {
        (ConversationActor, args.clone())
    })
    .with_intensity(conversation_intensity(), OnExceeded::StopChild)
}

/// The live conversations of one ConversationSupervisor, and the hook that finishes the ones it
/// gives up. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ConversationDirectory {
    // Weak: the supervisor's child spec owns the arguments; a dead entry is just stale.
    live: Arc<DashMap<String, Weak<ConversationArgs>>>,
}

impl ConversationDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Configuration of the ConversationSupervisor named `name`: 10 restarts in 10 s, the
    /// default backoff, and an observer that finishes given-up conversations and then calls
    /// `observer` (e.g. `supervision_observer(telemetry)`) for every event.
    pub fn supervisor_config(
        &self,
        name: &str,
        observer: Option<SupervisorObserver>,
    ) -> SupervisorConfig {
        let live = self.live.clone();
        let hook: SupervisorObserver = Arc::new(move |event: &SupervisorEvent| {
            match event {
                SupervisorEvent::IntensityExceeded {
                    actor,
                    action: OnExceededAction::ChildStopped,
                    ..
                } => {
                    if let Some((_, weak)) = live.remove(actor)
                        && let Some(args) = weak.upgrade()
                        && let Ok(rt) = tokio::runtime::Handle::try_current()
                    {
                        rt.spawn(finish_crashed(args));
                    }
                }
                SupervisorEvent::ChildRemoved { actor, .. } => {
                    live.remove(actor);
                }
                _ => {}
            }
            if let Some(observer) = &observer {
                observer(event);
            }
        });
        SupervisorConfig::new(name)
            .with_intensity(conversation_supervisor_intensity())
            .with_observer(hook)
    }

    /// The ConversationSupervisor as a permanent child of the project supervisor. `initial`
    /// gives the conversations to start on every (re)start of the supervisor (the runtime
    /// restores the journal's unstopped conversations); they publish into `registry`.
    pub fn supervisor_spec<F>(
        &self,
        name: &str,
        registry: ChildRegistry,
        observer: Option<SupervisorObserver>,
        initial: F,
    ) -> ChildSpec
    where
        F: Fn() -> Vec<ConversationArgs> + Send + Sync + 'static,
    {
        let directory = self.clone();
        Supervisor::child_spec(
            self.supervisor_config(name, observer),
            RestartPolicy::Permanent,
            registry,
            move || {
                initial()
                    .into_iter()
                    .map(|args| directory.register(Arc::new(args)))
                    .collect()
            },
        )
    }

    fn register(&self, args: Arc<ConversationArgs>) -> ChildSpec {
        self.live.insert(
            args.config.conversation_id.to_string(),
            Arc::downgrade(&args),
        );
        child_spec(args)
    }

    /// Starts a conversation under `supervisor` (whose children publish into `registry`) and
    /// returns its handle. `conversation_already_started` when it is live;
    /// `conversation_start_failed` when registering or restoring failed.
    pub async fn start(
        &self,
        supervisor: &SupervisorHandle,
        registry: &ChildRegistry,
        args: ConversationArgs,
    ) -> Result<ConversationHandle, ConversationError> {
        let id = args.config.conversation_id.clone();
        let args = Arc::new(args);
        let weak = Arc::downgrade(&args);
        supervisor
            .start_child(child_spec(args))
            .await
            .map_err(|e| ConversationError::from_supervisor(e, &id))?;
        self.live.insert(id.to_string(), weak);
        Ok(ConversationHandle::new(registry, &id))
    }

    /// [`ConversationDirectory::start`] for a ConversationSupervisor reached through the
    /// registry (a nested supervisor has no [`SupervisorHandle`]): `supervisor` is
    /// `registry.handle::<SupervisorMsg>(name)`. The start request is retried once if the
    /// supervisor is restarting (a retry that finds the child started reports
    /// `conversation_already_started`).
    pub async fn start_in(
        &self,
        supervisor: &Handle<SupervisorMsg>,
        registry: &ChildRegistry,
        args: ConversationArgs,
    ) -> Result<ConversationHandle, ConversationError> {
        let id = args.config.conversation_id.clone();
        let args = Arc::new(args);
        let weak = Arc::downgrade(&args);
        let spec = child_spec(args);
        let started = supervisor
            .call(
                |reply| SupervisorMsg::StartChild {
                    spec: spec.clone(),
                    reply,
                },
                Some(START_TIMEOUT),
            )
            .await
            .map_err(|e| ConversationError::from_handle(e, &id))?;
        drop(spec);
        started.map_err(|e| ConversationError::from_supervisor(e, &id))?;
        self.live.insert(id.to_string(), weak);
        Ok(ConversationHandle::new(registry, &id))
    }

    /// Whether conversation `id` is live under this directory's supervisor.
    pub fn is_live(&self, id: &str) -> bool {
        self.live.get(id).is_some_and(|w| w.strong_count() > 0)
    }

    /// Ids of the live conversations, sorted.
    pub fn live_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .live
            .iter()
            .filter(|e| e.value().strong_count() > 0)
            .map(|e| e.key().clone())
            .collect();
        ids.sort();
        ids
    }
}

/// Finishes a conversation its supervisor gave up: `conversation.stopped{crashed}` journaled
/// and published, the stop recorded, telemetry emitted, subscriptions ended.
async fn finish_crashed(args: Arc<ConversationArgs>) {
    let shared = &args.shared;
    let reason = StopReason::Crashed.as_str();
    let id = args.config.conversation_id.clone();
    let at_ms = (args.clock)();
    let mut signal = Signal::derived(
        SignalType::Stopped,
        json!({ "reason": reason }),
        &CorrelationId::generate(),
        None,
    );
    signal.at_ms = at_ms;
    let entry = ConversationEvent {
        project_id: args.config.project_id.clone(),
        conversation_id: id.clone(),
        seq: shared.last_seq.load(Ordering::Relaxed) + 1,
        signal,
    };
    match args.store.append(vec![entry.clone()]).await {
        Ok(()) => {
            shared.last_seq.store(entry.seq, Ordering::Relaxed);
            shared.hub.publish([&entry]);
        }
        Err(e) => {
            tracing::warn!(conversation_id = %id, code = e.code(), "could not journal the crash stop")
        }
    }
    if let Err(e) = args.store.mark_stopped(&id, reason, at_ms).await {
        tracing::warn!(conversation_id = %id, code = e.code(), "mark_stopped failed");
    }
    args.emit(EventName::ConversationStopped, json!({ "reason": reason }));
    shared.hub.close();
}
