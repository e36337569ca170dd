//! Errors at the supervision boundary, and the escalation reason a parent sees.
//!
//! [`HandleError`] is what callers of a [`Handle`](super::Handle) get — never a raw ractor error.
//! [`SupervisorError`] is what the supervisor's own API returns. [`Escalation`] is the error a
//! supervisor fails with when a restart intensity is exceeded; its parent receives it in
//! `SupervisionEvent::ActorFailed` and can recover it with [`Escalation::from_failure`].

use serde::{Deserialize, Serialize};

/// Result of a supervised call.
pub type HandleResult<T> = std::result::Result<T, HandleError>;

/// Why a call through a [`Handle`](super::Handle) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum HandleError {
    /// The component is down: no live ref within the retry wait, or it failed again after the one
    /// retry, or it was given up (temporary/transient child gone, intensity exceeded). Retryable.
    #[error("component `{component}` is unavailable")]
    Unavailable {
        /// The child name.
        component: String,
    },
    /// The component did not reply in time. A timed-out call is never retried.
    #[error("component `{component}` did not reply within {timeout_ms} ms")]
    Timeout {
        /// The child name.
        component: String,
        /// The call timeout.
        timeout_ms: u64,
    },
}

impl HandleError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable { .. } => "unavailable",
            Self::Timeout { .. } => "timeout",
        }
    }
}

/// Errors of the supervisor API (`start_child`, `stop_child`, starting a supervisor).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum SupervisorError {
    /// Caller misuse: a child with this name already exists.
    #[error("child `{name}` already exists")]
    DuplicateChild {
        /// The name.
        name: String,
    },
    /// Caller misuse: no child with this name.
    #[error("child `{name}` not found")]
    ChildNotFound {
        /// The name.
        name: String,
    },
    /// The child's factory failed to spawn it.
    #[error("child `{name}` failed to start: {reason}")]
    StartFailed {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The supervisor itself is gone or did not answer.
    #[error("supervisor `{supervisor}` is unavailable")]
    SupervisorUnavailable {
        /// The supervisor's name.
        supervisor: String,
    },
}

impl SupervisorError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::DuplicateChild { .. } => "duplicate_child",
            Self::ChildNotFound { .. } => "child_not_found",
            Self::StartFailed { .. } => "start_failed",
            Self::SupervisorUnavailable { .. } => "supervisor_unavailable",
        }
    }
}

/// The reason a supervisor fails with when a restart intensity is exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error(
    "restart_intensity_exceeded: supervisor `{supervisor}` child `{child}` restarted {restarts} times within {window_ms} ms"
)]
pub struct Escalation {
    /// The supervisor that gave up.
    pub supervisor: String,
    /// The child whose failure tipped it over.
    pub child: String,
    /// Restarts counted inside the window (the exceeding one included).
    pub restarts: u32,
    /// The window length.
    pub window_ms: u64,
    /// The child's last exit reason.
    pub last_reason: String,
}

impl Escalation {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        "restart_intensity_exceeded"
    }

    /// Recovers the escalation from the error a parent sees in `SupervisionEvent::ActorFailed`.
    pub fn from_failure<'a>(
        err: &'a (dyn std::error::Error + Send + Sync + 'static),
    ) -> Option<&'a Escalation> {
        err.downcast_ref::<Escalation>()
    }
}

/// What a supervisor reports to its observer hook (the runtime turns these into
/// `runtime.actor_restarted` / `runtime.restart_intensity_exceeded` telemetry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SupervisorEvent {
    /// A child was restarted.
    ChildRestarted {
        /// Supervisor name.
        supervisor: String,
        /// Child name.
        actor: String,
        /// Exit reason that caused the restart.
        reason: String,
        /// Total restarts of this child since the supervisor started.
        restart_count: u64,
        /// The supervisor's intensity window.
        window_ms: u64,
    },
    /// An intensity was exceeded.
    IntensityExceeded {
        /// Supervisor name.
        supervisor: String,
        /// Child name.
        actor: String,
        /// Exit reason of the last failure.
        reason: String,
        /// Restarts in the window.
        restart_count: u64,
        /// The exceeded window.
        window_ms: u64,
        /// What was done about it.
        action: OnExceededAction,
    },
    /// A child ended and is not restarted (policy says so, or it was stopped on request).
    ChildRemoved {
        /// Supervisor name.
        supervisor: String,
        /// Child name.
        actor: String,
        /// Exit reason.
        reason: String,
    },
}

/// What a supervisor did when an intensity was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExceededAction {
    /// The supervisor failed with an [`Escalation`].
    Escalated,
    /// Only the child was given up.
    ChildStopped,
}
