//! `WorkerMsg`: what an executor worker accepts.

/// Messages of an executor worker. Jobs are not messages: they run in the caller's task while it
/// holds the worker's slot (see the module doc of `executor`).
#[derive(Debug)]
pub enum WorkerMsg {
    /// The worker panics on purpose, so its supervisor restarts it: sent after a job on its
    /// slot panicked (the restart counts toward the executor supervisor's intensity), and by
    /// failure injection (tests, runbook).
    Crash,
}
