//! Errors of the policy boundary: [`PolicyError`] (one variant per SPEC §4 code of steps 1–9),
//! [`InvalidRuntimeOpt`] (option validation, SPEC §3.3) and [`SchemaError`] (tool spec compile).
//!
//! Every error has a stable snake_case `code()` and a `details()` JSON object; messages are
//! lowercase without a final period, user input in backticks.

use serde::Serialize;
use serde_json::{Value, json};

/// Result alias of this crate.
pub type Result<T, E = PolicyError> = std::result::Result<T, E>;

/// Reason of an `invalid_path` denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidPathReason {
    /// The candidate contains a NUL byte.
    NulByte,
    /// More than 4096 bytes, or a component longer than 255 bytes.
    TooLong,
    /// More than 40 symlink hops while resolving.
    SymlinkLoop,
    /// The resolver failed with an error other than "not found" (e.g. permission denied); the
    /// candidate cannot be judged, so it is denied (an error inside a rule denies).
    Unresolvable,
}

impl InvalidPathReason {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NulByte => "nul_byte",
            Self::TooLong => "too_long",
            Self::SymlinkLoop => "symlink_loop",
            Self::Unresolvable => "unresolvable",
        }
    }
}

/// Detail of a `network_endpoint_denied` denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointDetail {
    /// No `network_allowlist` entry matches the host (or its port).
    NotInAllowlist,
    /// The address (or name) lies in a blocked range.
    BlockedRange,
    /// The host is empty or cannot be parsed.
    InvalidHost,
    /// The authority holds `\`, whitespace or control characters.
    AmbiguousAuthority,
}

impl EndpointDetail {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotInAllowlist => "not_in_allowlist",
            Self::BlockedRange => "blocked_range",
            Self::InvalidHost => "invalid_host",
            Self::AmbiguousAuthority => "ambiguous_authority",
        }
    }
}

/// One JSON Schema violation of `invalid_tool_args`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaViolation {
    /// JSON pointer into the arguments.
    pub instance_path: String,
    /// JSON pointer into the schema.
    pub schema_path: String,
    /// Human-readable message (redacted, ≤256 chars).
    pub message: String,
}

/// A policy denial: one variant per SPEC code of §4 steps 1–9 (plus `protocol_denied`, §5.8).
///
/// Who is at fault: every variant is caller input refused by policy; none is an internal
/// failure (internal failures of a rule deny with the closest code, never allow).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// `invalid_tool_call`: malformed call (`args_not_object`, `argument_too_complex`, …).
    #[error("invalid tool call: {reason}")]
    InvalidToolCall {
        /// Reason name (SPEC §2.3).
        reason: String,
    },
    /// `unknown_tool`: the name is not in the catalog.
    #[error("unknown tool `{name}`")]
    UnknownTool {
        /// Tool name.
        name: String,
    },
    /// `invalid_tool_args`: the arguments fail the tool's JSON Schema (≤20 errors).
    #[error("invalid tool arguments: {} error(s)", errors.len())]
    InvalidToolArgs {
        /// The violations, in validator order.
        errors: Vec<SchemaViolation>,
    },
    /// `invalid_env_payload`: the env location is not an object of string → string.
    #[error("invalid env payload at `{location}`: {reason}")]
    InvalidEnvPayload {
        /// `expected_object`, `non_string_value` or `invalid_name`.
        reason: String,
        /// JSON pointer of the env payload.
        location: String,
    },
    /// `env_vars_not_allowed`: names always denied or not in `tool_env_allowlist`.
    #[error("env vars not allowed: `{}`", keys.join("`, `"))]
    EnvVarsNotAllowed {
        /// Denied names, sorted.
        keys: Vec<String>,
    },
    /// `denied`: a tool rule denies the call.
    #[error("tool denied by rule `{rule}`")]
    Denied {
        /// Rule key, e.g. `deny_tools[1]` or `builtin:not_in_allow_tools`.
        rule: String,
    },
    /// `tool_not_exposed`: a model-originated call names a tool not offered in that step.
    #[error("tool `{name}` was not offered to the model")]
    ToolNotExposed {
        /// Tool name.
        name: String,
    },
    /// `protocol_denied`: the front-end protocol is not in `protocol_allowlist`.
    #[error("protocol `{protocol}` is not allowed")]
    ProtocolDenied {
        /// Protocol name as asked.
        protocol: String,
    },
    /// `network_denied`: egress policy is `deny` and the tool is network-capable.
    #[error("network egress is denied")]
    NetworkDenied,
    /// `network_protocol_denied`: the URL scheme is not in `network_allowed_schemes`.
    #[error("network scheme `{scheme}` is not allowed")]
    NetworkProtocolDenied {
        /// Lowercased scheme.
        scheme: String,
        /// JSON pointer of the candidate (empty outside `evaluate`).
        location: String,
    },
    /// `network_endpoint_denied`: host blocked, invalid, ambiguous or not allow-listed.
    #[error("network endpoint `{host}` denied: {}", detail.as_str())]
    NetworkEndpointDenied {
        /// Normalized host (or the raw text when it could not be parsed).
        host: String,
        /// Why.
        detail: EndpointDetail,
    },
    /// `outside_root`: the path resolves outside every allowed area.
    #[error("path `{path}` is outside the project root")]
    OutsideRoot {
        /// The resolved path that escaped.
        path: String,
        /// JSON pointer of the candidate (empty outside `evaluate`).
        location: String,
    },
    /// `invalid_path`: NUL byte, too long, symlink loop or unresolvable.
    #[error("invalid path: {}", reason.as_str())]
    InvalidPath {
        /// Why.
        reason: InvalidPathReason,
    },
    /// `sensitive_path_denied`: a sensitive pattern (or the state dir) matches.
    #[error("sensitive path `{path}` denied by pattern `{pattern}`")]
    SensitivePathDenied {
        /// The path as matched (relative to the root inside it, absolute outside).
        path: String,
        /// The pattern, or `state_dir` / `scratch_dir` for the built-in state rule.
        pattern: String,
    },
}

impl PolicyError {
    /// Stable snake_case code (SPEC §2.3).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidToolCall { .. } => "invalid_tool_call",
            Self::UnknownTool { .. } => "unknown_tool",
            Self::InvalidToolArgs { .. } => "invalid_tool_args",
            Self::InvalidEnvPayload { .. } => "invalid_env_payload",
            Self::EnvVarsNotAllowed { .. } => "env_vars_not_allowed",
            Self::Denied { .. } => "denied",
            Self::ToolNotExposed { .. } => "tool_not_exposed",
            Self::ProtocolDenied { .. } => "protocol_denied",
            Self::NetworkDenied => "network_denied",
            Self::NetworkProtocolDenied { .. } => "network_protocol_denied",
            Self::NetworkEndpointDenied { .. } => "network_endpoint_denied",
            Self::OutsideRoot { .. } => "outside_root",
            Self::InvalidPath { .. } => "invalid_path",
            Self::SensitivePathDenied { .. } => "sensitive_path_denied",
        }
    }

    /// Details object (SPEC §2.3 "Details" column).
    pub fn details(&self) -> Value {
        match self {
            Self::InvalidToolCall { reason } => json!({ "reason": reason }),
            Self::UnknownTool { name } | Self::ToolNotExposed { name } => json!({ "name": name }),
            Self::InvalidToolArgs { errors } => json!({ "errors": errors }),
            Self::InvalidEnvPayload { reason, location } => {
                json!({ "reason": reason, "location": location })
            }
            Self::EnvVarsNotAllowed { keys } => json!({ "keys": keys }),
            Self::Denied { rule } => json!({ "rule": rule }),
            Self::ProtocolDenied { protocol } => json!({ "protocol": protocol }),
            Self::NetworkDenied => json!({}),
            Self::NetworkProtocolDenied { scheme, location } => {
                json!({ "scheme": scheme, "location": location })
            }
            Self::NetworkEndpointDenied { host, detail } => {
                json!({ "host": host, "detail": detail.as_str() })
            }
            Self::OutsideRoot { path, location } => json!({ "path": path, "location": location }),
            Self::InvalidPath { reason } => json!({ "reason": reason.as_str() }),
            Self::SensitivePathDenied { path, pattern } => {
                json!({ "path": path, "pattern": pattern })
            }
        }
    }

    /// Sets the JSON pointer on variants that carry a location.
    /// The same error with secrets in its user-derived text (paths, hosts) redacted (SPEC
    /// §5.9: error messages and decision records never carry a secret).
    pub(crate) fn redacted(mut self) -> Self {
        let red = |s: &mut String| {
            if let std::borrow::Cow::Owned(r) = crate::secrets::redact_str(s) {
                *s = r;
            }
        };
        match &mut self {
            Self::OutsideRoot { path, .. } | Self::SensitivePathDenied { path, .. } => red(path),
            Self::NetworkEndpointDenied { host, .. } => red(host),
            Self::EnvVarsNotAllowed { keys } => keys.iter_mut().for_each(red),
            _ => {}
        }
        self
    }

    pub(crate) fn with_location(mut self, loc: &str) -> Self {
        match &mut self {
            Self::NetworkProtocolDenied { location, .. } | Self::OutsideRoot { location, .. } => {
                *location = loc.to_owned();
            }
            _ => {}
        }
        self
    }
}

/// `invalid_runtime_opt{key, reason}` (SPEC §3.3): an option failed validation.
///
/// Bad list entries use `reason = "invalid_entry"` with `details = {index, reason}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid runtime option `{key}`: {reason}")]
pub struct InvalidRuntimeOpt {
    /// Option key.
    pub key: String,
    /// Reason name of SPEC §3.3.
    pub reason: String,
    /// Extra details (`index`, entry `reason`, `other_key`…), `{}` when none.
    pub details: Value,
}

impl InvalidRuntimeOpt {
    /// Stable code, always `invalid_runtime_opt`.
    pub fn code(&self) -> &'static str {
        "invalid_runtime_opt"
    }

    /// `{key, reason}`, plus `details` (e.g. `{index, reason}` of a bad entry) when not empty.
    pub fn details(&self) -> Value {
        let mut out = json!({ "key": self.key, "reason": self.reason });
        if self.details.as_object().is_some_and(|m| !m.is_empty())
            && let Some(map) = out.as_object_mut()
        {
            map.insert("details".to_owned(), self.details.clone());
        }
        out
    }

    pub(crate) fn new(key: &str, reason: &str) -> Self {
        Self {
            key: key.to_owned(),
            reason: reason.to_owned(),
            details: json!({}),
        }
    }

    pub(crate) fn entry(key: &str, index: usize, reason: &str) -> Self {
        Self {
            key: key.to_owned(),
            reason: "invalid_entry".to_owned(),
            details: json!({ "index": index, "reason": reason }),
        }
    }
}

/// A tool's input schema could not be compiled (bad tool spec: the tool author is at fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input schema for tool `{tool}`: {message}")]
pub struct SchemaError {
    /// Tool name.
    pub tool: String,
    /// Compiler message.
    pub message: String,
}

impl SchemaError {
    /// Stable code, always `invalid_tool_schema`.
    pub fn code(&self) -> &'static str {
        "invalid_tool_schema"
    }
}
