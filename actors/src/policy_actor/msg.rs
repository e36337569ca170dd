//! `PolicyMsg`: what the policy actor accepts.

use std::sync::Arc;

use codeward_policies::{InvalidRuntimeOpt, PolicyOptions, PolicySet};
use ractor::RpcReplyPort;

/// Messages of the policy actor.
pub enum PolicyMsg {
    /// Replies with the current snapshot.
    Snapshot {
        /// Reply port.
        reply: RpcReplyPort<Arc<PolicySet>>,
    },
    /// Validates and compiles new options; on success publishes the new snapshot and keeps the
    /// options for restarts. Replies `Ok(())` or the validation error (nothing changes).
    Recompile {
        /// The new policy options.
        options: Box<PolicyOptions>,
        /// Reply port.
        reply: RpcReplyPort<Result<(), InvalidRuntimeOpt>>,
    },
    /// Failure injection (tests, runbook): the actor panics.
    Crash,
}
