//! `SupervisorHandle`: typed async access to a supervisor, and the ways to start one (top level,
//! or as the child of another supervisor).

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorRef, rpc::CallResult};

use super::actor::{Supervisor, SupervisorArgs, SupervisorConfig};
use super::msg::{ChildStatus, SupervisorMsg};
use crate::supervision::{ChildRegistry, ChildSpec, RestartPolicy, SupervisorError};

/// How long supervisor queries wait for a reply.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A cloneable handle to a running supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorHandle {
    name: String,
    actor: ActorRef<SupervisorMsg>,
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
        Ok(SupervisorHandle { name, actor })
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

    /// Starts a new child (dynamic supervision).
    pub async fn start_child(&self, spec: ChildSpec) -> Result<(), SupervisorError> {
        match self
            .actor
            .call(
                |reply| SupervisorMsg::StartChild { spec, reply },
                Some(QUERY_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(r)) => r,
            _ => Err(self.unavailable()),
        }
    }

    /// Stops a child on purpose; it is not restarted.
    pub async fn stop_child(&self, name: &str) -> Result<(), SupervisorError> {
        let name = name.to_owned();
        match self
            .actor
            .call(
                |reply| SupervisorMsg::StopChild { name, reply },
                Some(QUERY_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(r)) => r,
            _ => Err(self.unavailable()),
        }
    }

    /// Status of every child, in start order.
    pub async fn children(&self) -> Result<Vec<ChildStatus>, SupervisorError> {
        match self
            .actor
            .call(
                |reply| SupervisorMsg::Children { reply },
                Some(QUERY_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(r)) => Ok(r),
            _ => Err(self.unavailable()),
        }
    }

    /// Whether the supervisor is still running.
    pub fn is_alive(&self) -> bool {
        matches!(
            self.actor.get_status(),
            ractor::ActorStatus::Running | ractor::ActorStatus::Starting
        )
    }

    /// Stops the supervisor and (through ractor's tree) all its children, and waits for it.
    pub async fn stop(&self, reason: &str) {
        let _ = self
            .actor
            .stop_and_wait(Some(reason.to_owned()), Some(QUERY_TIMEOUT))
            .await;
    }
}
