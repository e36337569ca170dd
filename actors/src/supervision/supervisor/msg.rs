//! `SupervisorMsg`: what a supervisor accepts, and the child status it reports.

use ractor::RpcReplyPort;
use serde::{Deserialize, Serialize};

use crate::supervision::{ChildSpec, RestartPolicy, SupervisorError};

/// Messages of the supervisor actor.
pub enum SupervisorMsg {
    /// Self-sent after the backoff delay: respawn child `name`. No reply; a failed spawn counts
    /// as another failure (restart again or escalate).
    Restart {
        /// The child.
        name: String,
    },
    /// Starts a new child (dynamic supervision). Replies `Ok(())` once it runs, or
    /// `duplicate_child` / `start_failed`.
    StartChild {
        /// The child's declaration.
        spec: ChildSpec,
        /// Reply port.
        reply: RpcReplyPort<Result<(), SupervisorError>>,
    },
    /// Stops child `name` on purpose: it is not restarted and its handles see `unavailable`.
    /// Replies `Ok(())` once it stopped, or `child_not_found`.
    StopChild {
        /// The child.
        name: String,
        /// Reply port.
        reply: RpcReplyPort<Result<(), SupervisorError>>,
    },
    /// Replies with the status of every child, in start order.
    Children {
        /// Reply port.
        reply: RpcReplyPort<Vec<ChildStatus>>,
    },
}

/// One child as the supervisor sees it (diagnostics `supervision` entries, SPEC §9.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildStatus {
    /// Child name.
    pub actor: String,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// `running` or `restarting`.
    pub status: String,
    /// Restarts since the supervisor started.
    pub restart_count: u64,
    /// Restarts inside the child's own window (the supervisor's when it has none).
    pub restarts_in_window: u32,
    /// The last exit reason, if it ever exited.
    pub last_reason: Option<String>,
}
