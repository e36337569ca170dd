//! The `ConversationActor` (SPEC §11): wraps the pure reducer of [`crate::conversation`] and
//! performs its effects — journal appends, model steps, tool calls, drains, subscriptions —
//! through two ports ([`ConversationStore`], [`ToolRunner`]) so it never names the journal or
//! the executor.
//!
//! Restart table (see [`crate::supervision`] for the format):
//!
//! | Child | Restart | Strategy | Intensity | Rebuilds from |
//! |---|---|---|---|---|
//! | conversations *(ConversationSupervisor)* | permanent | one_for_one, dynamic | 10 in 10 s → escalate | conversation ids from the journal (`initial`) |
//! | `<conversation id>` | transient | — | 3 in 10 s → stop child (finished as `crashed`) | journal replay (`restore`), interrupting in-flight work |
//!
//! **Write-ahead.** Every input goes through one step: a `Checkpoint` is taken, the reducer
//! runs in place, the step's `Effect::Applied` entries are appended as one batch, and only then
//! is the step committed, acknowledged, published and its effects performed. A failed append
//! rolls the step back exactly (see `checkpoint.rs`: the light parts are copied, the heavy ones —
//! timeline, dedupe window, LLM history — are append-only during the step and truncated back),
//! so no per-step clone of the state is needed. The caller gets `journal_unavailable`; internal
//! results (tool outcomes, model output) wait in a bounded backlog and are retried with backoff
//! (100 ms doubling, ≤ 2 s, 8 tries); past that the actor fails and is rebuilt from the journal.
//!
//! **Ordering.** Entries are journaled, published and acknowledged in seq order. A handler
//! never awaits a tool or the model (spawned tasks report back as messages); it awaits only the
//! journal. Drain passes apply ≤ `max_drain_steps` signals, then re-arm with a self-message, so
//! stop, queries and cancels interleave; an external `conversation.cancel` skips the inbox and
//! applies at once (queued user messages behind it are then recorded without opening a run).
//!
//! **Bounds.** The inbox is the reducer's (`max_queue_size`); parked callers are bounded by it.
//! The ractor mailbox is unbounded but each caller has at most one message in flight (every
//! caller message is request/reply), internal messages are bounded by the work in flight (one
//! per tool call, ≤ 1 + deltas/wake-up per model step, with a 256-delta buffer), and timers
//! are one per parked call and one backlog retry. Subscribers have 1024-entry buffers.
//!
//! **Crashes.** State is never carried over: a restarted actor re-registers, reloads the journal,
//! folds it with effects suppressed and journals the interruption entries (`tool.failed
//! {interrupted}`, `run.closed{interrupted}`); its tasks died with the old state (abort-on-drop,
//! tokens fired). The subscriber hub lives in the shared start arguments, so subscriptions
//! continue across the restart.
//!
//! **Figures** (`cargo bench -p codeward-actors --bench conversation`, release, 2 cores):
//! idle conversation 11.1 kB of heap when started (≈ 7.4 kB of it is ractor's own per-actor
//! cost), 20.0 kB after one exchange (the reducer keeps ≈ 1 kB per timeline entry); crash →
//! answered by the rebuilt conversation ≈ 70 µs (6-entry journal); `call` round trip of a user
//! message with full windows ≈ 180 µs with a 16 KiB LLM history, ≈ 3.8 ms with a full 1 MiB one
//! (the history is cloned into every model request by `ModelRequest::for_state`).
//!
//! Files: `ports.rs` (store and runner ports), `msg.rs` (messages and answers), `actor.rs`
//! (start, dispatch, the write-ahead step), `checkpoint.rs` (undo without cloning), `work.rs`
//! (model and tool tasks), `subscription.rs` (hub and stream), `handle.rs`
//! ([`ConversationHandle`]), `supervisor.rs` (child specs, [`ConversationDirectory`]),
//! `error.rs`, `tests.rs`.

mod actor;
mod checkpoint;
mod error;
mod handle;
mod msg;
mod ports;
mod subscription;
mod supervisor;
#[cfg(test)]
mod tests;
mod work;

pub use actor::{
    ConversationActor, ConversationActorState, ConversationArgs, DEFAULT_CALL_TIMEOUT,
};
pub use error::{ConversationError, ConversationResult};
pub use handle::{ConversationHandle, QUERY_TIMEOUT};
pub use msg::{
    ConversationActorDiagnostics, ConversationMsg, ConversationSnapshot, ConversationStateView,
    InternalMsg, SignalAck, StopReason,
};
pub use ports::{
    ConversationMeta, ConversationStore, StoreError, ToolOutcome, ToolRunRequest, ToolRunner,
};
pub use subscription::{ConversationSubscription, Lagged, SUBSCRIBER_BUFFER};
pub use supervisor::{
    ConversationDirectory, conversation_child_spec, conversation_intensity,
    conversation_supervisor_intensity,
};
