//! `JournalMsg`: what the journal actor accepts. Callers never send these; they use
//! [`JournalHandle`](crate::journal::JournalHandle).

use crate::journal::WriterExit;

/// Messages of the journal actor.
#[derive(Debug)]
pub enum JournalMsg {
    /// From the exit watcher: writer `generation` ended. Fails the actor (the supervisor
    /// restarts it with a fresh writer) unless it was closed on purpose or is not the current
    /// writer. No reply.
    WriterExited {
        /// The writer that ended.
        generation: u64,
        /// How.
        exit: WriterExit,
    },
    /// From the compaction timer: compacts in a background task; the report goes to the
    /// journal's observer. No reply.
    Compact,
}
