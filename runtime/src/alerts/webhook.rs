//! [`WebhookSink`]: POSTs each alert as JSON to an operator-configured `http`/`https` URL with
//! `reqwest` (rustls). One attempt is the request plus a bounded read of the response body
//! (≤ [`MAX_RESPONSE_BYTES`], ignored), all under `timeout_ms`; a failed attempt (connect error,
//! timeout, non-2xx status) is retried once after [`RETRY_DELAY_MS`], then the delivery fails.
//! Redirects are never followed (a 3xx is a failure) and no proxy is used: the alert goes to the
//! configured host or nowhere.
//!
//! The URL is operator configuration, not agent input, so it is not put through the egress policy
//! (§5.6). Webhook URLs often embed a secret, so `Debug` and error messages show only
//! `scheme://host:port`; header values are marked sensitive. Receivers can de-duplicate a retried
//! delivery by the body's `alert_id`.

use std::time::Duration;

use codeward_actors::telemetry::{Alert, AlertError, AlertSink};
use futures::future::BoxFuture;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::{SinkConfigError, cut, validate_name, validate_timeout};

/// Delay before the one retry, ms (SPEC §8.5).
pub const RETRY_DELAY_MS: u64 = 1000;
/// Most response body bytes read per attempt; the rest is not read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Most extra headers.
const MAX_HEADERS: usize = 64;
/// Headers the sink sets itself or that would break framing.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
];

/// POSTs alerts as JSON to a webhook (SPEC §8.5 `webhook{url, headers, timeout_ms = 5000}`).
#[derive(Clone)]
pub struct WebhookSink {
    name: String,
    url: reqwest::Url,
    headers: HeaderMap,
    timeout: Duration,
    retry_delay: Duration,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("name", &self.name)
            .field("url", &origin(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A sink named `name` posting to `url` with the extra `headers`; `timeout_ms` bounds each
    /// attempt (`None` = 5000). Refuses a bad name, a URL that is not absolute `http`/`https` with
    /// a host, reserved (`host`, `content-type`, `content-length`, framing) or malformed headers,
    /// more than 64 headers, and a timeout outside 1..=600 000 ms.
    pub fn new(
        name: impl Into<String>,
        url: &str,
        headers: impl IntoIterator<Item = (String, String)>,
        timeout_ms: Option<u64>,
    ) -> Result<Self, SinkConfigError> {
        let name = name.into();
        validate_name(&name)?;
        let timeout = Duration::from_millis(validate_timeout(&name, timeout_ms)?);
        let url = parse_url(&name, url)?;
        let headers = parse_headers(&name, headers)?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("codeward/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .build()
            .map_err(|e| SinkConfigError::HttpClient {
                sink: name.clone(),
                message: error_chain(&e.without_url()),
            })?;
        Ok(Self {
            name,
            url,
            headers,
            timeout,
            retry_delay: Duration::from_millis(RETRY_DELAY_MS),
            client,
        })
    }

    /// The longest one delivery can take: two attempts and the retry delay. The router's
    /// delivery timeout should be at least this for the retry to happen.
    pub fn max_delivery_ms(&self) -> u64 {
        let attempt = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        attempt
            .saturating_mul(2)
            .saturating_add(u64::try_from(self.retry_delay.as_millis()).unwrap_or(u64::MAX))
    }

    /// Test hook: a shorter retry delay.
    #[cfg(test)]
    pub(crate) fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// Test hook: the configured headers.
    #[cfg(test)]
    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    async fn deliver_inner(&self, alert: &Alert) -> Result<(), AlertError> {
        let body = serde_json::to_vec(alert).map_err(|e| self.failed(format!("encoding: {e}")))?;
        let first = match self.attempt(&body).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        tokio::time::sleep(self.retry_delay).await;
        match self.attempt(&body).await {
            Ok(()) => Ok(()),
            Err(second) => Err(self.failed(format!(
                "POST to {} failed twice: attempt 1: {first}; attempt 2: {second}",
                origin(&self.url)
            ))),
        }
    }

    /// One request under the timeout; `Err` is a message for the final error.
    async fn attempt(&self, body: &[u8]) -> Result<(), String> {
        let exchange = async {
            let mut resp = self
                .client
                .post(self.url.clone())
                .headers(self.headers.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec())
                .send()
                .await
                .map_err(|e| error_chain(&e.without_url()))?;
            let status = resp.status();
            // Drain at most MAX_RESPONSE_BYTES so a kept-alive connection can be reused; the
            // content is ignored, and a longer body is simply not read.
            let mut read = 0usize;
            while read < MAX_RESPONSE_BYTES {
                match resp.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    Ok(None) => break,
                    // The status is what counts; a broken body after a 2xx is still delivered.
                    Err(_) => break,
                }
            }
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("http status {}", status.as_u16()))
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_elapsed) => Err(format!("timed out after {} ms", self.timeout.as_millis())),
        }
    }

    fn failed(&self, message: String) -> AlertError {
        AlertError::DeliveryFailed {
            sink: self.name.clone(),
            message,
        }
    }
}

impl AlertSink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), AlertError>> {
        Box::pin(self.deliver_inner(alert))
    }
}

fn parse_url(sink: &str, raw: &str) -> Result<reqwest::Url, SinkConfigError> {
    let bad = |reason: String| SinkConfigError::InvalidUrl {
        sink: sink.to_owned(),
        reason,
    };
    let url = reqwest::Url::parse(raw).map_err(|e| bad(format!("parse: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("unsupported_scheme".into()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no_host".into()));
    }
    Ok(url)
}

fn parse_headers(
    sink: &str,
    headers: impl IntoIterator<Item = (String, String)>,
) -> Result<HeaderMap, SinkConfigError> {
    let mut map = HeaderMap::new();
    for (i, (k, v)) in headers.into_iter().enumerate() {
        let bad = |reason: &str| SinkConfigError::InvalidHeader {
            sink: sink.to_owned(),
            header: cut(&k, 64),
            reason: reason.into(),
        };
        if i >= MAX_HEADERS {
            return Err(bad("too_many"));
        }
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad("bad_name"))?;
        if RESERVED_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("proxy-") {
            return Err(bad("reserved"));
        }
        let mut value = HeaderValue::from_str(&v).map_err(|_| bad("bad_value"))?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok(map)
}

/// `scheme://host[:port]`, without credentials, path or query.
fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

/// The origin of a raw URL for `Debug`, or a placeholder when it does not parse.
pub(super) fn redacted_url(raw: &str) -> String {
    reqwest::Url::parse(raw)
        .map(|u| origin(&u))
        .unwrap_or_else(|_| "<unparsable>".into())
}

/// `error: source: source…`, for messages that keep the cause (e.g. `connection refused`).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.ends_with(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn origin_hides_path_query_and_credentials() {
        let u =
            reqwest::Url::parse("https://user:pw@hooks.example.com:8443/T0/B1/secret?x=1").unwrap();
        assert_eq!(origin(&u), "https://hooks.example.com:8443");
        assert_eq!(redacted_url("::"), "<unparsable>");
    }

    #[test]
    fn header_values_are_sensitive() {
        let s = WebhookSink::new(
            "hook",
            "http://127.0.0.1:9/x",
            [("authorization".to_owned(), "Bearer abcdefghijkl".to_owned())],
            None,
        )
        .unwrap();
        assert!(s.headers().values().all(HeaderValue::is_sensitive));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("abcdefghijkl"), "{dbg}");
        assert!(!dbg.contains("/x"), "{dbg}");
    }
}
