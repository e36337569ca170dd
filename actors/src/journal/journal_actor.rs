//! The `JournalActor`: owns the lifecycle of the journal's writer thread under the project
//! supervisor. Its state is a guard of the running writer; the data lives in the SQLite file, and
//! handles reach the writer through a slot the actor republishes on every start, so a
//! [`JournalHandle`](super::JournalHandle) keeps working across restarts.
//!
//! Restart table (see `crate::supervision` for the format):
//!
//! | Child | Restart | Strategy | Intensity | Rebuilds from |
//! |---|---|---|---|---|
//! | journal | permanent | — | counts toward parent | the SQLite file (a fresh writer connection) |
//!
//! - `pre_start` adopts the writer `JournalHandle::open` started, or (after a restart) waits for
//!   the previous writer to finish draining and opens a new writer connection; opening failures
//!   fail the start, so the supervisor retries with backoff and finally escalates.
//! - The writer thread ending unexpectedly (a panic) fails the actor, which restarts it.
//! - `post_stop` flushes pending telemetry events and closes the writer (checkpoint). A killed
//!   actor skips `post_stop`: dropping its state unpublishes the writer, which then drains the
//!   commands it already holds — each is answered, none is lost — and ends. A stopping
//!   supervisor *kills* its children (ractor), so the runtime's ordered shutdown calls
//!   [`JournalHandle::close`](super::JournalHandle::close) itself (flush, checkpoint, close).
//! - With `compact_every` set it compacts once on its first start in this process and then on
//!   that period, reporting through the observer.

mod actor;
mod msg;
#[cfg(test)]
mod tests;

pub use actor::{JournalActor, JournalActorState, journal_child_spec};
pub use msg::JournalMsg;
