//! `http.fetch`: one HTTP(S) request per hop, each hop resolve → check → pin (SPEC §5.6): the URL
//! passes `PolicySet::check_url`, the host is resolved once, every answer passes
//! `PolicySet::check_ip` (one blocked address denies), and the connection goes only to those
//! checked addresses (the name stays in `Host` and SNI), so DNS rebinding has nothing to rebind.
//! Redirects are followed by hand (≤5), each hop checked again; `Authorization`/`Cookie` are
//! dropped when a redirect changes origin. The body is read in chunks up to the byte budget.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::fs::Encoding;
use crate::policy::PolicyError;
use crate::{FailReason, Result, ToolContext, ToolError};

/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 5;

/// HTTP method of `http.fetch`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET.
    #[default]
    Get,
    /// HEAD.
    Head,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl Method {
    fn as_reqwest(self) -> reqwest::Method {
        match self {
            Self::Get => reqwest::Method::GET,
            Self::Head => reqwest::Method::HEAD,
            Self::Post => reqwest::Method::POST,
            Self::Put => reqwest::Method::PUT,
            Self::Patch => reqwest::Method::PATCH,
            Self::Delete => reqwest::Method::DELETE,
        }
    }
}

fn default_true() -> bool {
    true
}

/// Input of `http.fetch`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-codeward-complete" = true))]
pub struct FetchArgs {
    /// Absolute `http` or `https` URL.
    #[schemars(extend("x-codeward" = "url"))]
    pub url: String,
    /// Method.
    #[serde(default)]
    pub method: Method,
    /// Request headers (`Host` and `Proxy-*` are refused).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body (UTF-8).
    #[serde(default)]
    #[schemars(length(max = 10_485_760))]
    pub body: Option<String>,
    /// Most response body bytes to return (also bounded by the output limit).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_bytes: Option<u64>,
    /// Timeout for the whole exchange, redirects included.
    #[serde(default)]
    #[schemars(range(min = 1, max = 600_000))]
    pub timeout_ms: Option<u64>,
    /// Follow redirects (each hop checked again).
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
}

/// Result of `http.fetch`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct FetchResult {
    /// HTTP status of the final response.
    pub status: u16,
    /// Response headers (lowercase names; repeated ones joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// Response body, `utf8` when it is valid UTF-8, else `base64`.
    pub body: String,
    /// Encoding of `body`.
    pub encoding: Encoding,
    /// The body was cut at `max_bytes` or the output budget.
    pub truncated: bool,
    /// URL of the final response.
    pub final_url: String,
    /// The checked address the final connection went to.
    pub resolved_ip: Option<String>,
}

fn fail(reason: FailReason, msg: impl Into<String>) -> ToolError {
    ToolError::failed(reason, msg)
}

fn check_headers(headers: &BTreeMap<String, String>) -> Result<reqwest::header::HeaderMap> {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        let lower = k.to_ascii_lowercase();
        if lower == "host" || lower.starts_with("proxy-") {
            return Err(ToolError::failed_with(
                FailReason::InvalidArgument,
                format!("header `{k}` may not be set"),
                json!({ "header": k }),
            ));
        }
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            fail(
                FailReason::InvalidArgument,
                format!("bad header name `{k}`"),
            )
        })?;
        let value = reqwest::header::HeaderValue::from_str(v).map_err(|_| {
            fail(
                FailReason::InvalidArgument,
                format!("bad value for header `{k}`"),
            )
        })?;
        map.append(name, value);
    }
    Ok(map)
}

/// Runs `http.fetch`.
pub async fn fetch(ctx: &ToolContext, args: FetchArgs) -> Result<FetchResult> {
    let timeout = Duration::from_millis(args.timeout_ms.unwrap_or(30_000));
    let cancel = ctx.cancel.clone();
    tokio::select! {
        r = tokio::time::timeout(timeout, fetch_hops(ctx, args)) => {
            r.map_err(|_| ToolError::Timeout { timeout_ms: timeout.as_millis() as u64 })?
        }
        () = cancel.cancelled() => Err(ToolError::Cancelled { reason: "cancel_requested".into() }),
    }
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

async fn fetch_hops(ctx: &ToolContext, args: FetchArgs) -> Result<FetchResult> {
    if !ctx.policy.egress_allowed() {
        return Err(PolicyError::NetworkDenied.into());
    }
    let mut headers = check_headers(&args.headers)?;
    let mut url = url::Url::parse(&args.url)
        .map_err(|e| fail(FailReason::InvalidArgument, format!("bad url: {e}")))?;
    let origin = url.origin();
    let mut method = args.method.as_reqwest();
    let mut body = args.body.clone();
    for hop in 0..=MAX_REDIRECTS {
        let (client, pinned) = pinned_client(ctx, &url).await?;
        let mut req = client
            .request(method.clone(), url.clone())
            .headers(headers.clone());
        if let Some(b) = &body {
            req = req.body(b.clone());
        }
        let resp = req.send().await.map_err(|e| {
            fail(
                FailReason::RequestFailed,
                format!("request to `{url}` failed: {e}"),
            )
        })?;
        let status = resp.status().as_u16();
        if args.follow_redirects && is_redirect(status) {
            let Some(loc) = resp.headers().get(reqwest::header::LOCATION) else {
                return read_response(ctx, &args, resp, url, pinned).await;
            };
            if hop == MAX_REDIRECTS {
                return Err(ToolError::failed_with(
                    FailReason::TooManyRedirects,
                    format!("more than {MAX_REDIRECTS} redirects"),
                    json!({ "max": MAX_REDIRECTS, "last_url": url.as_str() }),
                ));
            }
            let loc = loc
                .to_str()
                .map_err(|_| fail(FailReason::RequestFailed, "bad Location header"))?;
            let next = url.join(loc).map_err(|e| {
                fail(
                    FailReason::RequestFailed,
                    format!("bad redirect `{loc}`: {e}"),
                )
            })?;
            if status == 303 || (matches!(status, 301 | 302) && method == reqwest::Method::POST) {
                if method != reqwest::Method::HEAD {
                    method = reqwest::Method::GET;
                }
                body = None;
                headers.remove(reqwest::header::CONTENT_TYPE);
                headers.remove(reqwest::header::CONTENT_LENGTH);
            }
            if next.origin() != origin {
                headers.remove(reqwest::header::AUTHORIZATION);
                headers.remove(reqwest::header::COOKIE);
            }
            url = next;
            continue;
        }
        return read_response(ctx, &args, resp, url, pinned).await;
    }
    Err(fail(FailReason::TooManyRedirects, "too many redirects"))
}

/// Resolve → check → pin for one hop.
async fn pinned_client(
    ctx: &ToolContext,
    url: &url::Url,
) -> Result<(reqwest::Client, Vec<SocketAddr>)> {
    let checked = ctx.policy.check_url(url.as_str())?;
    let host = url
        .host_str()
        .ok_or_else(|| fail(FailReason::InvalidArgument, format!("`{url}` has no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| fail(FailReason::InvalidArgument, format!("`{url}` has no port")))?;
    let addrs: Vec<SocketAddr> = match checked.ip {
        Some(ip) => vec![SocketAddr::new(ip, checked.port.unwrap_or(port))],
        None => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| {
                fail(
                    FailReason::RequestFailed,
                    format!("cannot resolve `{host}`: {e}"),
                )
            })?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(fail(
            FailReason::RequestFailed,
            format!("`{host}` resolved to no address"),
        ));
    }
    for a in &addrs {
        // One blocked answer denies the whole hop (SPEC §5.6).
        ctx.policy.check_ip(a.ip())?;
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs(&host, &addrs)
        .connect_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| fail(FailReason::RequestFailed, format!("http client: {e}")))?;
    Ok((client, addrs))
}

async fn read_response(
    ctx: &ToolContext,
    args: &FetchArgs,
    mut resp: reqwest::Response,
    url: url::Url,
    pinned: Vec<SocketAddr>,
) -> Result<FetchResult> {
    let status = resp.status().as_u16();
    let resolved_ip = resp
        .remote_addr()
        .or_else(|| pinned.first().copied())
        .map(|a| a.ip().to_string());
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut header_bytes = 0usize;
    for (k, v) in resp.headers() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        header_bytes += k.as_str().len() + v.len() + 8;
        headers
            .entry(k.as_str().to_owned())
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let budget = ctx
        .limits
        .output_budget()
        .saturating_sub(header_bytes + url.as_str().len());
    // Worst case: base64 (4/3) or escaped UTF-8 — keep raw bytes at 3/4 of the room left.
    let cap = (budget / 4 * 3) as u64;
    let limit = args.max_bytes.unwrap_or(u64::MAX).min(cap) as usize;
    let mut buf: Vec<u8> = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        fail(
            FailReason::RequestFailed,
            format!("reading the body failed: {e}"),
        )
    })? {
        let room = limit - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    let (body, encoding) = match std::str::from_utf8(&buf) {
        Ok(s) => (s.to_owned(), Encoding::Utf8),
        Err(e) if truncated && e.error_len().is_none() => (
            String::from_utf8_lossy(&buf[..e.valid_up_to()]).into_owned(),
            Encoding::Utf8,
        ),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&buf),
            Encoding::Base64,
        ),
    };
    Ok(FetchResult {
        status,
        headers,
        body,
        encoding,
        truncated,
        final_url: url.to_string(),
        resolved_ip,
    })
}
