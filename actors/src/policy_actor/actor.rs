//! The policy actor: `handle` dispatches; compiling and publishing live below.

use std::sync::{Arc, Mutex};

use codeward_policies::{InvalidRuntimeOpt, PolicyContext, PolicyOptions, PolicySet};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;

use super::msg::PolicyMsg;
use crate::supervision::{ChildSpec, RestartPolicy};

/// What the policy is compiled from, shared by the actor and its restarts.
#[derive(Debug)]
pub struct PolicyInputs {
    /// The latest accepted options.
    pub options: Mutex<PolicyOptions>,
    /// The project context (roots, state dir, scratch base).
    pub context: PolicyContext,
}

/// The policy actor (`self` = where it publishes and what it compiles from).
#[derive(Debug, Clone)]
pub struct PolicyActor {
    inputs: Arc<PolicyInputs>,
    slot: Arc<watch::Sender<Arc<PolicySet>>>,
}

impl PolicyActor {
    /// The child spec (permanent). `slot` is the engine-owned snapshot slot; it should already
    /// hold the snapshot compiled at project start (so readers never wait for the actor).
    pub fn child_spec(
        name: &str,
        inputs: Arc<PolicyInputs>,
        slot: Arc<watch::Sender<Arc<PolicySet>>>,
    ) -> ChildSpec {
        ChildSpec::actor(name, RestartPolicy::Permanent, move || {
            (
                PolicyActor {
                    inputs: inputs.clone(),
                    slot: slot.clone(),
                },
                (),
            )
        })
    }
}

fn options(inputs: &PolicyInputs) -> PolicyOptions {
    inputs
        .options
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

impl Actor for PolicyActor {
    type Msg = PolicyMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<PolicyMsg>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        // Recompile from the kept options (a restart must not serve anything stale or partial).
        let set = PolicySet::compile(&options(&self.inputs), self.inputs.context.clone())?;
        self.slot.send_replace(Arc::new(set));
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<PolicyMsg>,
        msg: PolicyMsg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PolicyMsg::Snapshot { reply } => {
                let _ = reply.send(self.slot.borrow().clone());
            }
            PolicyMsg::Recompile { options, reply } => {
                let _ = reply.send(recompile(&self.inputs, &self.slot, *options));
            }
            PolicyMsg::Crash => panic!("policy actor crash requested (failure injection)"),
        }
        Ok(())
    }
}

fn recompile(
    inputs: &PolicyInputs,
    slot: &watch::Sender<Arc<PolicySet>>,
    options: PolicyOptions,
) -> Result<(), InvalidRuntimeOpt> {
    let set = PolicySet::compile(&options, inputs.context.clone())?;
    *inputs
        .options
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = options;
    slot.send_replace(Arc::new(set));
    Ok(())
}
