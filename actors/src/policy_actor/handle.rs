//! `PolicyHandle`: the snapshot read on the hot path, and typed calls to the actor.

use std::sync::Arc;
use std::time::Duration;

use codeward_policies::{InvalidRuntimeOpt, PolicyOptions, PolicySet};
use tokio::sync::watch;

use super::msg::PolicyMsg;
use crate::supervision::{ChildRegistry, Handle, HandleResult};

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Cloneable access to a project's policy.
#[derive(Debug, Clone)]
pub struct PolicyHandle {
    snapshot: watch::Receiver<Arc<PolicySet>>,
    actor: Handle<PolicyMsg>,
}

impl PolicyHandle {
    /// A handle reading `slot` and reaching the actor registered as `name`.
    pub fn new(registry: &ChildRegistry, name: &str, slot: &watch::Sender<Arc<PolicySet>>) -> Self {
        Self {
            snapshot: slot.subscribe(),
            actor: registry.handle(name),
        }
    }

    /// The current snapshot: no actor round trip (SPEC §4: steps 1–9 run on snapshots).
    pub fn current(&self) -> Arc<PolicySet> {
        self.snapshot.borrow().clone()
    }

    /// Asks the actor for its snapshot (a liveness probe; the hot path uses `current`).
    pub async fn snapshot(&self) -> HandleResult<Arc<PolicySet>> {
        self.actor
            .call(|reply| PolicyMsg::Snapshot { reply }, Some(CALL_TIMEOUT))
            .await
    }

    /// Recompiles from new options; the old snapshot keeps serving on error.
    pub async fn recompile(
        &self,
        options: PolicyOptions,
    ) -> HandleResult<Result<(), InvalidRuntimeOpt>> {
        self.actor
            .call(
                |reply| PolicyMsg::Recompile {
                    options: Box::new(options.clone()),
                    reply,
                },
                Some(CALL_TIMEOUT),
            )
            .await
    }

    /// Failure injection: crashes the actor.
    pub fn crash(&self) -> HandleResult<()> {
        self.actor.try_cast(PolicyMsg::Crash)
    }

    /// The actor's generation (bumped on every restart).
    pub fn generation(&self) -> u64 {
        self.actor.generation()
    }
}
