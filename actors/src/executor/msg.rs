//! `WorkerMsg`: what an executor worker accepts.

use futures::future::BoxFuture;

/// A job as the worker sees it: it resolves to `Err(panic message)` when the user's job
/// panicked (its caller was already answered), which makes the worker fail and restart.
pub type Job = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), String>> + Send>;

/// Messages of an executor worker.
pub enum WorkerMsg {
    /// Runs one job to completion inside the handler (the worker holds the caller's slot).
    /// No reply port: the job answers its caller through its own channel. A job that panicked
    /// fails the worker after answering (the supervisor restarts it).
    Run(Job),
    /// Failure injection (tests, runbook): the worker panics.
    Crash,
}
