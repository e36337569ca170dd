//! The harness's one error type: a run that could not be set up or measured (as opposed to
//! calls that failed under load, which are counted by code in the report).

use serde_json::{Value, json};

/// Why a harness run could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The configuration is out of its bounds (caller misuse).
    #[error("invalid harness config: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Scratch directories or fixture files could not be written.
    #[error("harness scratch space: {message}")]
    Scratch {
        /// What failed.
        message: String,
    },
    /// The engine refused a setup step (start, project or conversation start) — the
    /// engine's error is kept.
    #[error("harness setup step `{step}` failed: {source}")]
    Setup {
        /// The step (`engine_start`, `start_project`, `start_conversation`, …).
        step: &'static str,
        /// The engine's error.
        #[source]
        source: crate::Error,
    },
    /// A measurement could not be taken (a spawned task died, an expected restart did not
    /// happen).
    #[error("harness measurement `{what}` failed: {message}")]
    Measurement {
        /// The measurement.
        what: &'static str,
        /// Why.
        message: String,
    },
}

impl HarnessError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidConfig { .. } => "invalid_harness_config",
            Self::Scratch { .. } => "harness_scratch_failed",
            Self::Setup { .. } => "harness_setup_failed",
            Self::Measurement { .. } => "harness_measurement_failed",
        }
    }

    /// Structured details.
    pub fn details(&self) -> Value {
        match self {
            Self::InvalidConfig { field, reason } => json!({ "field": field, "reason": reason }),
            Self::Scratch { message } => json!({ "message": message }),
            Self::Setup { step, source } => {
                json!({ "step": step, "code": source.code(), "details": source.details() })
            }
            Self::Measurement { what, message } => json!({ "what": what, "message": message }),
        }
    }

    pub(crate) fn setup(step: &'static str) -> impl FnOnce(crate::Error) -> Self {
        move |source| Self::Setup { step, source }
    }

    pub(crate) fn scratch(e: impl std::fmt::Display) -> Self {
        Self::Scratch {
            message: e.to_string(),
        }
    }
}

/// `Result` with a [`HarnessError`].
pub type HarnessResult<T> = std::result::Result<T, HarnessError>;
