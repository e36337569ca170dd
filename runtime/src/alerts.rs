//! The built-in alert sinks that talk to the outside world (SPEC §8.5): [`WebhookSink`] POSTs
//! the alert JSON to an HTTP(S) endpoint, [`ExecSink`] runs a command with the alert JSON on
//! stdin. Both implement `codeward_actors::telemetry::AlertSink` and are handed to the alert
//! router through `EngineConfig.alert_sinks`; the in-process `log` and `channel` sinks live next
//! to the router in `codeward-actors`.
//!
//! What they receive is already redacted (§5.9: the telemetry actor redacts before routing), and
//! they run inside the router's per-sink task, so a slow endpoint or command only ever delays its
//! own queue. Neither blocks a tokio worker thread. Bad configuration is refused at construction
//! with a [`SinkConfigError`]; delivery failures are `AlertError`s, which the router counts, logs
//! and swallows.
//!
//! [`SinkConfig`] is the raw, serde form of one `[[alerts.sinks]]` entry of the daemon config
//! (`kind = "webhook" | "exec"`); [`SinkConfig::build`] validates it into a sink.
//!
//! Note on timeouts: a webhook delivery may take up to `2 × timeout_ms + 1 s` (one retry), so the
//! router's `AlertConfig.delivery_timeout_ms` must be at least that for the retry to happen; see
//! [`WebhookSink::max_delivery_ms`].
//!
//! Files: `alerts/webhook.rs`, `alerts/exec.rs`, `alerts/tests.rs`.

mod exec;
mod webhook;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use codeward_actors::telemetry::AlertSink;
use serde::{Deserialize, Serialize};

pub use exec::{EXEC_LANG, EXEC_PATH, ExecSink, MAX_STDERR_BYTES};
pub use webhook::{MAX_RESPONSE_BYTES, RETRY_DELAY_MS, WebhookSink};

/// Default per-attempt timeout of both sinks, ms (SPEC §8.5).
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// Largest accepted `timeout_ms` (10 minutes).
pub const MAX_TIMEOUT_MS: u64 = 600_000;
/// Longest sink name, bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// A sink's configuration was refused (the caller or the config file is at fault), except
/// [`HttpClient`](Self::HttpClient), an internal failure to set up the HTTP client.
///
/// Messages never echo a webhook URL or a header value: webhook URLs often carry a secret in
/// their path or query (Slack, Teams) and headers carry tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SinkConfigError {
    /// The name is empty, too long or has characters outside `[A-Za-z0-9_.-]`.
    #[error("invalid alert sink name `{name}`: {reason}")]
    InvalidName {
        /// The name as given (cut to 64 bytes).
        name: String,
        /// `empty`, `too_long`, `invalid_chars`.
        reason: String,
    },
    /// The webhook URL is unusable.
    #[error("invalid webhook url for sink `{sink}`: {reason}")]
    InvalidUrl {
        /// Sink name.
        sink: String,
        /// `parse: …`, `unsupported_scheme`, `no_host`.
        reason: String,
    },
    /// A webhook header cannot be sent.
    #[error("invalid webhook header `{header}` for sink `{sink}`: {reason}")]
    InvalidHeader {
        /// Sink name.
        sink: String,
        /// The header name (cut to 64 bytes).
        header: String,
        /// `bad_name`, `bad_value`, `reserved`, `too_many`.
        reason: String,
    },
    /// The exec command line is unusable.
    #[error("invalid exec argv for sink `{sink}`: {reason}")]
    InvalidArgv {
        /// Sink name.
        sink: String,
        /// `empty`, `empty_program`, `relative_program`, `nul_byte`, `too_many_args`,
        /// `arg_too_long`.
        reason: String,
    },
    /// `timeout_ms` is 0 or above [`MAX_TIMEOUT_MS`].
    #[error("invalid timeout for sink `{sink}`: {timeout_ms} ms (allowed 1..={MAX_TIMEOUT_MS})")]
    InvalidTimeout {
        /// Sink name.
        sink: String,
        /// The value given.
        timeout_ms: u64,
    },
    /// The HTTP client could not be built (TLS backend; internal failure).
    #[error("cannot build the http client for sink `{sink}`: {message}")]
    HttpClient {
        /// Sink name.
        sink: String,
        /// What went wrong.
        message: String,
    },
}

impl SinkConfigError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidName { .. } => "invalid_sink_name",
            Self::InvalidUrl { .. } => "invalid_webhook_url",
            Self::InvalidHeader { .. } => "invalid_webhook_header",
            Self::InvalidArgv { .. } => "invalid_exec_argv",
            Self::InvalidTimeout { .. } => "invalid_sink_timeout",
            Self::HttpClient { .. } => "http_client_unavailable",
        }
    }
}

/// Raw form of one external sink, as written in `[[alerts.sinks]]` (`kind` selects the
/// variant). Unknown fields are refused.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// `kind = "webhook"`: see [`WebhookSink::new`].
    Webhook {
        /// Sink name, referenced by routes.
        name: String,
        /// `http` or `https` URL.
        url: String,
        /// Extra request headers (default none).
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Per-attempt timeout, ms (default 5000).
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// `kind = "exec"`: see [`ExecSink::new`].
    Exec {
        /// Sink name, referenced by routes.
        name: String,
        /// Program and arguments (no shell).
        argv: Vec<String>,
        /// Timeout, ms (default 5000).
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
}

impl std::fmt::Debug for SinkConfig {
    /// Shows neither the URL's path and query nor header values nor arguments (secrets).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Webhook {
                name,
                url,
                headers,
                timeout_ms,
            } => f
                .debug_struct("Webhook")
                .field("name", name)
                .field("url", &webhook::redacted_url(url))
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .field("timeout_ms", timeout_ms)
                .finish(),
            Self::Exec {
                name,
                argv,
                timeout_ms,
            } => f
                .debug_struct("Exec")
                .field("name", name)
                .field("program", &argv.first())
                .field("args", &argv.len().saturating_sub(1))
                .field("timeout_ms", timeout_ms)
                .finish(),
        }
    }
}

impl SinkConfig {
    /// The configured name.
    pub fn name(&self) -> &str {
        match self {
            Self::Webhook { name, .. } | Self::Exec { name, .. } => name,
        }
    }

    /// Validates and builds the sink.
    pub fn build(&self) -> Result<Arc<dyn AlertSink>, SinkConfigError> {
        Ok(match self {
            Self::Webhook {
                name,
                url,
                headers,
                timeout_ms,
            } => Arc::new(WebhookSink::new(
                name.clone(),
                url,
                headers.clone(),
                *timeout_ms,
            )?),
            Self::Exec {
                name,
                argv,
                timeout_ms,
            } => Arc::new(ExecSink::new(name.clone(), argv.clone(), *timeout_ms)?),
        })
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary (for echoing user input in errors).
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Checks a sink name: 1..=64 bytes of `[A-Za-z0-9_.-]`.
fn validate_name(name: &str) -> Result<(), SinkConfigError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_NAME_BYTES {
        "too_long"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        "invalid_chars"
    } else {
        return Ok(());
    };
    Err(SinkConfigError::InvalidName {
        name: cut(name, MAX_NAME_BYTES),
        reason: reason.into(),
    })
}

/// `None` → [`DEFAULT_TIMEOUT_MS`]; 0 or above [`MAX_TIMEOUT_MS`] is refused.
fn validate_timeout(sink: &str, timeout_ms: Option<u64>) -> Result<u64, SinkConfigError> {
    match timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS) {
        t @ 1..=MAX_TIMEOUT_MS => Ok(t),
        t => Err(SinkConfigError::InvalidTimeout {
            sink: sink.to_owned(),
            timeout_ms: t,
        }),
    }
}
