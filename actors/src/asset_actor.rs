//! The `AssetStoreActor` (SPEC §10.3, §13.1): serializes and coalesces reloads of a project's
//! [`AssetStore`](codeward_assets::AssetStore) and turns their reports into telemetry events. The store itself — and with it
//! the last good [`AssetSnapshot`](codeward_assets::AssetSnapshot) — is engine-owned and
//! published through a `watch` channel, so readers (tool lookups pin a snapshot per call) never
//! wait on this mailbox and a crash of the actor loses nothing.
//!
//! Reloads run off the actor (on the blocking pool); a request arriving while one runs is
//! merged into **one** follow-up reload (paths unioned), and every waiter gets the report of
//! the reload that covered its request.
//!
//! Restart table:
//!
//! | Child | Restart | Strategy | Intensity | Rebuilds from |
//! |---|---|---|---|---|
//! | assets | permanent | — | counts toward parent | the engine-owned store (last good snapshot); one reload from disk after a restart |
//!
//! Files: `msg.rs`, `actor.rs`, `handle.rs`, `tests.rs`.

mod actor;
mod handle;
mod msg;
#[cfg(test)]
mod tests;

pub use actor::{AssetStoreActor, assets_event};
pub use handle::AssetHandle;
pub use msg::AssetMsg;
