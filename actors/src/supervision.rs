//! Supervision: a reusable one_for_one supervisor on ractor, child declarations, intensity
//! windows, escalation, and handles that survive restarts.
//!
//! ractor has no built-in restart strategies; this module is ours. A [`Supervisor`] starts the
//! children declared by [`ChildSpec`]s in order, publishes each child's current ref in a
//! [`ChildRegistry`], and when a child ends applies its [`RestartPolicy`]: the restart is counted
//! in the supervisor's [`Intensity`] window (and the child's own, if declared), then scheduled
//! after a [`Backoff`] delay with `send_after` (never a sleep in the handler). Past an intensity
//! the supervisor either gives the child up ([`OnExceeded::StopChild`]) or **escalates**: it fails
//! with an [`Escalation`] error, ractor terminates its children, and its own supervisor sees
//! `ActorFailed` carrying that error ([`Escalation::from_failure`]) and applies its own policy.
//! Callers hold a [`Handle`] that resolves the current ref per call and retries once after a
//! restart; otherwise they get [`HandleError::Unavailable`], never a raw ractor error.
//! All windows and delays use tokio's monotonic clock (tests run on paused time).
//!
//! # Restart table format
//!
//! Every supervisor's module doc declares its children in this table (STYLE rule 10), one row
//! per [`ChildSpec`], in start order. Columns map 1:1 onto the spec and [`SupervisorConfig`]:
//!
//! | Column | Meaning | Where it lives |
//! |---|---|---|
//! | Child | registry name (unique per registry; not a ractor name) | `ChildSpec::name` |
//! | Restart | `permanent` (always) · `transient` (after failure only) · `temporary` (never) | `ChildSpec::restart` |
//! | Strategy | of the child's own children, if it supervises: `one_for_one` (only strategy) | — |
//! | Intensity | `N in T s → action`; `counts toward parent` when the child has none of its own; action `escalate` or `stop child` | `ChildSpec::intensity`, `SupervisorConfig::intensity` |
//! | Rebuilds from | what the factory captures to rebuild state on each restart | the factory closure |
//!
//! Example (the project subtree of SPEC §13.1, as the runtime will declare it):
//!
//! | Child | Restart | Strategy | Intensity | Rebuilds from |
//! |---|---|---|---|---|
//! | ProjectSupervisor *(itself)* | transient | one_for_one | 5 in 10 s → escalate | effective options |
//! | telemetry | permanent | — | counts toward parent | `TelemetryStore` |
//! | conversations | permanent | one_for_one, dynamic | 10 in 10 s → escalate | journal conversation ids |
//! | conv-… | transient | — | 3 in 10 s → stop child | journal replay |
//!
//! Backoff between restarts of one child inside a window: 0, 100, 200, 400 … ms, capped at 2 s
//! ([`Backoff::default`]).
//!
//! Files: `window.rs` (pure intensity/backoff), `spec.rs` (child declarations), `registry.rs`
//! (current refs and [`Handle`]), `error.rs`, `supervisor/` (the actor: msg, actor, handle,
//! tests).

mod error;
mod registry;
mod spec;
mod supervisor;
mod window;

pub use error::{
    Escalation, HandleError, HandleResult, OnExceededAction, SupervisorError, SupervisorEvent,
};
pub use registry::{ChildRegistry, DEFAULT_RETRY_WAIT, Handle};
pub use spec::{
    ChildExit, ChildFactory, ChildIntensity, ChildSpec, OnExceeded, RestartPolicy, SpawnFuture,
};
pub use supervisor::{
    ChildStatus, Supervisor, SupervisorArgs, SupervisorConfig, SupervisorHandle, SupervisorMsg,
    SupervisorObserver,
};
pub use window::{Backoff, Intensity, RestartWindow};
