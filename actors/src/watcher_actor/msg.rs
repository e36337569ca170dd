//! `WatcherMsg`: what the watcher actor accepts.

use ractor::RpcReplyPort;

use super::handle::WatcherStatus;

/// Messages of the watcher actor.
pub enum WatcherMsg {
    /// Replies with the watcher's status (for diagnostics).
    Status {
        /// Reply port.
        reply: RpcReplyPort<WatcherStatus>,
    },
    /// Self-sent when the watcher's request stream ended: the actor fails and is restarted.
    Died,
    /// Failure injection (tests, runbook): the actor panics.
    Crash,
}
