//! The tool-executor pool (SPEC §4 steps 10 and 12, §13.1 "ToolExecutor"): a fixed set of
//! supervised **worker actors**, one per slot of `tool_max_concurrency`, and the
//! [`ExecutorPool`] handle that hands each call a slot and runs it on that slot's worker.
//!
//! Slot accounting is one fair (FIFO) semaphore with `max_concurrency` permits plus a free list
//! of worker indexes: a caller first takes a permit — waiting in the bounded queue
//! (`max_queued`, up to `queue_timeout`) when all are busy, failing at once when the queue is
//! full or `max_queued == 0` — then pops a free worker. There is no check-then-spawn race: the
//! permit *is* the slot.
//!
//! A job runs inside its worker's handler (the worker is exclusive to the job). A job that
//! panics is caught: the caller gets [`ExecError::Panicked`], then the worker fails on purpose
//! and its supervisor restarts it with a clean state (counted in the executor supervisor's
//! intensity window, which escalates to the project supervisor when exceeded). A worker that
//! dies with a job in flight (killed, escalation) drops the job: the caller gets
//! [`ExecError::Interrupted`] and the slot is returned. Callers never see a raw actor error.
//!
//! Deviation (documented in the runtime README): SPEC names a ractor *factory*; a factory adds a
//! dispatcher actor hop per call, and `run_tool` must bypass mailboxes on its way to the worker,
//! so the pool dispatches straight to the worker that holds the slot.
//!
//! Restart table:
//!
//! | Child | Restart | Strategy | Intensity | Rebuilds from |
//! |---|---|---|---|---|
//! | executor *(supervisor)* | permanent | one_for_one | `ExecutorConfig::intensity` (5 in 10 s) → escalate | nothing |
//! | executor.worker.N | permanent | — | counts toward the executor supervisor | nothing: in-flight call failed `interrupted` |
//!
//! Files: `msg.rs` (WorkerMsg), `actor.rs` (the worker), `handle.rs` (pool and slots),
//! `tests.rs`.

mod actor;
mod handle;
mod msg;
#[cfg(test)]
mod tests;

pub use handle::{ExecError, ExecutorConfig, ExecutorPool, Slot};
pub use msg::WorkerMsg;
