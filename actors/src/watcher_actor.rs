//! The `WatcherActor` (SPEC §10.4, §13.1): runs the debounced file watcher of
//! `codeward-assets` on a project's data dir and turns its reload requests into reloads of the
//! asset store actor (trigger `watcher`, with the changed paths). It emits
//! `project.watcher_started` / `project.watcher_stopped`; the reload outcome events come from
//! the asset store actor.
//!
//! A watcher that dies later (its request channel closes) fails the actor; the supervisor
//! restarts it and the new incarnation requests one full reload, since events may have been
//! lost meanwhile.
//!
//! Restart table:
//!
//! | Child | Restart | Strategy | Intensity | Rebuilds from |
//! |---|---|---|---|---|
//! | watcher | transient | — | counts toward parent | nothing; one reload on every restart |
//!
//! Files: `msg.rs`, `actor.rs`, `handle.rs`.

mod actor;
mod handle;
mod msg;

pub use actor::WatcherActor;
pub use handle::{WatcherHandle, WatcherStatus};
pub use msg::WatcherMsg;
