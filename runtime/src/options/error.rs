//! [`OptionsError`]: the one error enum of the options boundary (SPEC §2.3 codes
//! `invalid_runtime_opt`, `invalid_config_file`, `invalid_project_id`).
//!
//! Who is at fault: every variant is bad configuration given by an operator (daemon or api layer)
//! or by the repository (`codeward.toml`); `details.source` names the layer when known. The
//! policy crate's [`InvalidRuntimeOpt`] converts losslessly.

use std::path::PathBuf;

use codeward_policies::InvalidRuntimeOpt;
use serde_json::{Map, Value, json};

/// Result alias of the options module.
pub type Result<T, E = OptionsError> = std::result::Result<T, E>;

/// An option layer, a config file or a project id is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// `invalid_runtime_opt{key, reason}`: an option failed validation (SPEC §3.3).
    #[error("invalid runtime option `{key}`: {reason}")]
    InvalidRuntimeOpt {
        /// Option key.
        key: String,
        /// Reason name of SPEC §3.3 (`invalid_entry` for a bad list entry).
        reason: String,
        /// Extra details (`index`, entry `reason`, `other_key`, `min`, `source`, `line`…), `{}`
        /// when none.
        details: Value,
    },
    /// `invalid_config_file{path, line, message}`: `codeward.toml` cannot be read or is not
    /// TOML.
    #[error("invalid config file `{}`{}: {message}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    InvalidConfigFile {
        /// The file.
        path: PathBuf,
        /// 1-based line of the syntax error, when known.
        line: Option<usize>,
        /// What is wrong (the parser's message, without a copy of the input).
        message: String,
    },
    /// `invalid_project_id{reason}`: the `project_id` option is not a valid id (SPEC §1).
    #[error("invalid project id: {reason}")]
    InvalidProjectId {
        /// `empty`, `too_long` or `invalid_chars`.
        reason: String,
    },
}

impl OptionsError {
    /// Stable snake_case code (SPEC §2.3).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRuntimeOpt { .. } => "invalid_runtime_opt",
            Self::InvalidConfigFile { .. } => "invalid_config_file",
            Self::InvalidProjectId { .. } => "invalid_project_id",
        }
    }

    /// Details object: `{key, reason, details?}` / `{path, line, message}` / `{reason}`.
    pub fn details(&self) -> Value {
        match self {
            Self::InvalidRuntimeOpt {
                key,
                reason,
                details,
            } => {
                let mut out = Map::new();
                out.insert("key".to_owned(), json!(key));
                out.insert("reason".to_owned(), json!(reason));
                if details.as_object().is_some_and(|m| !m.is_empty()) {
                    out.insert("details".to_owned(), details.clone());
                }
                Value::Object(out)
            }
            Self::InvalidConfigFile {
                path,
                line,
                message,
            } => json!({ "path": path, "line": line, "message": message }),
            Self::InvalidProjectId { reason } => json!({ "reason": reason }),
        }
    }

    /// `invalid_runtime_opt{key, reason}` without details.
    pub(crate) fn opt(key: &str, reason: &str) -> Self {
        Self::InvalidRuntimeOpt {
            key: key.to_owned(),
            reason: reason.to_owned(),
            details: json!({}),
        }
    }

    /// `invalid_runtime_opt{key, reason}` with details.
    pub(crate) fn opt_with(key: &str, reason: &str, details: Value) -> Self {
        Self::InvalidRuntimeOpt {
            key: key.to_owned(),
            reason: reason.to_owned(),
            details,
        }
    }

    /// `invalid_runtime_opt{key, invalid_entry}` with `{index, reason}` (plus `extra`).
    pub(crate) fn entry(key: &str, index: usize, reason: &str, extra: Value) -> Self {
        let mut details = Map::new();
        details.insert("index".to_owned(), json!(index));
        details.insert("reason".to_owned(), json!(reason));
        if let Value::Object(m) = extra {
            details.extend(m);
        }
        Self::opt_with(key, "invalid_entry", Value::Object(details))
    }

    /// Adds `extra` fields to the details of an `invalid_runtime_opt` (no-op for the others);
    /// existing fields win.
    pub(crate) fn with_details(mut self, extra: &Map<String, Value>) -> Self {
        if let Self::InvalidRuntimeOpt { details, .. } = &mut self {
            if !details.is_object() {
                *details = json!({});
            }
            if let Value::Object(m) = details {
                for (k, v) in extra {
                    m.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        self
    }
}

impl From<InvalidRuntimeOpt> for OptionsError {
    fn from(e: InvalidRuntimeOpt) -> Self {
        Self::InvalidRuntimeOpt {
            key: e.key,
            reason: e.reason,
            details: e.details,
        }
    }
}
