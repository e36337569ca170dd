//! The one_for_one supervisor actor: starts its children in order, restarts the one that ended
//! (per its [`RestartPolicy`](super::RestartPolicy)) after a backoff, counts restarts against the
//! intensity windows, and escalates by failing with an [`Escalation`](super::Escalation).
//!
//! `msg.rs` is the message enum, `actor.rs` the thin dispatcher and the restart logic,
//! `handle.rs` the typed [`SupervisorHandle`].

mod actor;
mod handle;
mod msg;
#[cfg(test)]
mod tests;

pub use actor::{Supervisor, SupervisorArgs, SupervisorConfig, SupervisorObserver};
pub use handle::SupervisorHandle;
pub use msg::{ChildStatus, SupervisorMsg};
