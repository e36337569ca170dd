//! `SupervisorHandle`: typed async access to a supervisor, and the ways to start one (top level,
//! or as the child of another supervisor).

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorRef};

use super::actor::{Supervisor, SupervisorArgs, SupervisorConfig};
use super::msg::{ChildStatus, SupervisorMsg};
use crate::supervision::{ChildRegistry, ChildSpec, Handle, RestartPolicy, SupervisorError};

/// How long supervisor queries wait for a reply.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A cloneable handle to a running supervisor: either its ref (top level) or its slot in the
/// parent's registry (a nested supervisor, reached across its restarts).
#[derive(Debug, Clone)]
pub struct SupervisorHandle {
    name: String,
    target: Target,
}

#[derive(Debug, Clone)]
enum Target {
    Direct(ActorRef<SupervisorMsg>),
    Registry(Handle<SupervisorMsg>),
}

impl ChildRegistry {
    /// A handle to the nested supervisor registered as `name` in this registry.
    pub fn supervisor(&self, name: &str) -> SupervisorHandle {
        SupervisorHandle {
            name: name.to_owned(),
            target: Target::Registry(self.handle(name)),
        }
    }
}

impl Supervisor {
    /// Starts an unsupervised (top-level) supervisor and its children, in order.
    pub async fn start(
        config: SupervisorConfig,
        args: SupervisorArgs,
    ) -> Result<SupervisorHandle, SupervisorError> {
        let name = config.name.clone();
        let (actor, _join) = Actor::spawn(None, Supervisor::new(config), args)
            .await
            .map_err(|e| SupervisorError::StartFailed {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        Ok(SupervisorHandle {
            name,
            target: Target::Direct(actor),
        })
    }

    /// A supervisor as the child of another one. `children` builds the child specs afresh on
    /// every (re)start; they publish into `registry`. When it escalates, the parent sees its
    /// failure and applies `restart`.
    pub fn child_spec<F>(
        config: SupervisorConfig,
        restart: RestartPolicy,
        registry: ChildRegistry,
        children: F,
    ) -> ChildSpec
    where
        F: Fn() -> Vec<ChildSpec> + Send + Sync + 'static,
    {
        let children = Arc::new(children);
        ChildSpec::new(config.name.clone(), restart, move |parent: ActorCell| {
            let args = SupervisorArgs {
                children: children(),
                registry: registry.clone(),
            };
            let supervisor = Supervisor::new(config.clone());
            async move {
                let (actor, _join) = Actor::spawn_linked(None, supervisor, args, parent).await?;
                Ok(actor.get_cell())
            }
        })
    }
}

impl SupervisorHandle {
    /// The supervisor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn unavailable(&self) -> SupervisorError {
        SupervisorError::SupervisorUnavailable {
            supervisor: self.name.clone(),
        }
    }

    /// Sends a request (once; a spec cannot be rebuilt for a retry).
    async fn request<R: Send + 'static>(
        &self,
        msg: SupervisorMsg,
        rx: tokio::sync::oneshot::Receiver<R>,
    ) -> Result<R, SupervisorError> {
        let sent = match &self.target {
            Target::Direct(actor) => actor.send_message(msg).is_ok(),
            Target::Registry(handle) => handle.send(msg).await.is_ok(),
        };
        if !sent {
            return Err(self.unavailable());
        }
        match tokio::time::timeout(QUERY_TIMEOUT, rx).await {
            Ok(Ok(r)) => Ok(r),
            _ => Err(self.unavailable()),
        }
    }

    /// Starts a new child (dynamic supervision).
    pub async fn start_child(&self, spec: ChildSpec) -> Result<(), SupervisorError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let msg = SupervisorMsg::StartChild {
            spec,
            reply: tx.into(),
        };
        self.request(msg, rx).await?
    }

    /// Stops a child on purpose; it is not restarted.
    pub async fn stop_child(&self, name: &str) -> Result<(), SupervisorError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let msg = SupervisorMsg::StopChild {
            name: name.to_owned(),
            reply: tx.into(),
        };
        self.request(msg, rx).await?
    }

    /// Status of every child, in start order.
    pub async fn children(&self) -> Result<Vec<ChildStatus>, SupervisorError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let msg = SupervisorMsg::Children { reply: tx.into() };
        self.request(msg, rx).await
    }

    /// Whether the supervisor is still running.
    pub fn is_alive(&self) -> bool {
        match &self.target {
            Target::Direct(actor) => matches!(
                actor.get_status(),
                ractor::ActorStatus::Running | ractor::ActorStatus::Starting
            ),
            Target::Registry(handle) => handle.current_cell().is_some(),
        }
    }

    /// Stops the supervisor and (through ractor's tree) all its children, and waits for it.
    pub async fn stop(&self, reason: &str) {
        match &self.target {
            Target::Direct(actor) => {
                let _ = actor
                    .stop_and_wait(Some(reason.to_owned()), Some(QUERY_TIMEOUT))
                    .await;
            }
            Target::Registry(handle) => {
                if let Some(cell) = handle.current_cell() {
                    let _ = cell
                        .stop_and_wait(Some(reason.to_owned()), Some(QUERY_TIMEOUT))
                        .await;
                }
            }
        }
    }
}
