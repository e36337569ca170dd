//! The `PolicyActor` (SPEC §5.1, §13.1): owns the project's compiled [`PolicySet`](codeward_policies::PolicySet) and
//! publishes it as an immutable `Arc` snapshot through a `tokio::sync::watch` slot that the
//! engine owns. The hot path reads the slot ([`PolicyHandle::current`]) and never waits on the
//! mailbox; only changes (recompiling from new options) go through the actor, so they are
//! validated and serialized in one place.
//!
//! Restart table:
//!
//! | Child | Restart | Strategy | Intensity | Rebuilds from |
//! |---|---|---|---|---|
//! | policy | permanent | — | counts toward parent | the effective options it was last given (recompiled) |
//!
//! A restart recompiles from the options captured in the child spec's shared cell (the latest
//! ones accepted by [`PolicyHandle::recompile`]); until then the last published snapshot keeps
//! serving, so a crash disturbs no call. The decisions ring lives in the telemetry store.
//!
//! Files: `msg.rs`, `actor.rs`, `handle.rs`, `tests.rs`.

mod actor;
mod handle;
mod msg;
#[cfg(test)]
mod tests;

pub use actor::{PolicyActor, PolicyInputs};
pub use handle::PolicyHandle;
pub use msg::PolicyMsg;
