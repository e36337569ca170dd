//! Secret detection and redaction (SPEC §5.9). One Aho-Corasick pass over the text finds the
//! literal anchors of every detector (`sk-`, `ghp_`, `AKIA`, `eyJ`, `-----BEGIN`, `://`,
//! `bearer`, `token`, …); only then is the matching detector's anchored regex run on a small
//! window at that position. Exact values (env values given to commands, API keys) are a second
//! automaton. [`Redactor::scan`] reports findings with JSON paths like `a.b[2]`;
//! [`Redactor::redact`] replaces sensitive-key subtrees and matched spans.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::Regex;
use serde::Serialize;
use serde_json::Value;

/// Replacement text.
pub const REDACTED: &str = "[REDACTED]";
/// Maximum findings per scan.
pub const MAX_FINDINGS: usize = 25;
/// Strings in redacted records are cut to this many bytes.
pub const MAX_REDACTED_STRING: usize = 4096;
/// Suffix of a cut string.
pub const TRUNCATED_SUFFIX: &str = "…[truncated]";
/// Exact values shorter than this are ignored.
pub const MIN_EXACT_VALUE: usize = 8;

/// Detector kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A key naming a secret, with a non-empty value.
    SensitiveKey,
    /// `Bearer <token>`.
    BearerToken,
    /// `api_key=…`, `token: …`, `password=…`.
    KeyedSecret,
    /// `sk-ant-…`.
    AnthropicKey,
    /// `sk-…`, `sk-proj-…`.
    OpenaiKey,
    /// `ghp_…` and friends.
    GithubToken,
    /// `github_pat_…`.
    GithubPat,
    /// `glpat-…`.
    GitlabPat,
    /// `AKIA…`.
    AwsAccessKey,
    /// 40-char secret after `aws_secret_access_key=`.
    AwsSecretKey,
    /// `xox?-…`.
    SlackToken,
    /// `AIza…`.
    GoogleApiKey,
    /// `sk_live_…`, `rk_test_…`.
    StripeKey,
    /// Three base64url segments starting `eyJ`.
    Jwt,
    /// `-----BEGIN … PRIVATE KEY-----` block.
    PrivateKeyBlock,
    /// The password of `scheme://user:password@`.
    UrlCredentials,
    /// A value of the exact-value set.
    ExactValue,
}

impl FindingKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SensitiveKey => "sensitive_key",
            Self::BearerToken => "bearer_token",
            Self::KeyedSecret => "keyed_secret",
            Self::AnthropicKey => "anthropic_key",
            Self::OpenaiKey => "openai_key",
            Self::GithubToken => "github_token",
            Self::GithubPat => "github_pat",
            Self::GitlabPat => "gitlab_pat",
            Self::AwsAccessKey => "aws_access_key",
            Self::AwsSecretKey => "aws_secret_key",
            Self::SlackToken => "slack_token",
            Self::GoogleApiKey => "google_api_key",
            Self::StripeKey => "stripe_key",
            Self::Jwt => "jwt",
            Self::PrivateKeyBlock => "private_key_block",
            Self::UrlCredentials => "url_credentials",
            Self::ExactValue => "exact_value",
        }
    }
}

/// One finding: kind and JSON path (`a.b[2]`, empty for the root). The secret is never kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Detector kind.
    pub kind: FindingKind,
    /// Where.
    pub path: String,
}

/// Anchor families; the automaton's pattern ids map to these through `ANCHOR_FAMILY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Sk,
    Github,
    GithubPat,
    Gitlab,
    Aws,
    Slack,
    Google,
    Stripe,
    Jwt,
    PrivateKey,
    UrlCred,
    Bearer,
    Keyed,
}

/// Literal anchors: the token prefixes as the detectors spell them, the keyword anchors in
/// lower, Title and UPPER case. The automaton matches them ASCII case-insensitively (so
/// `PassWord=` or `APIKey:` are found too); each detector's regex then decides, and the token
/// detectors stay case-sensitive there.
const ANCHORS: &[(&str, Family)] = &[
    ("sk-", Family::Sk),
    ("ghp_", Family::Github),
    ("gho_", Family::Github),
    ("ghu_", Family::Github),
    ("ghs_", Family::Github),
    ("ghr_", Family::Github),
    ("github_pat_", Family::GithubPat),
    ("glpat-", Family::Gitlab),
    ("AKIA", Family::Aws),
    ("ASIA", Family::Aws),
    ("ABIA", Family::Aws),
    ("ACCA", Family::Aws),
    ("xox", Family::Slack),
    ("AIza", Family::Google),
    ("sk_live_", Family::Stripe),
    ("sk_test_", Family::Stripe),
    ("rk_live_", Family::Stripe),
    ("rk_test_", Family::Stripe),
    ("eyJ", Family::Jwt),
    ("-----BEGIN", Family::PrivateKey),
    ("://", Family::UrlCred),
    ("bearer", Family::Bearer),
    ("Bearer", Family::Bearer),
    ("BEARER", Family::Bearer),
    ("api_key", Family::Keyed),
    ("Api_Key", Family::Keyed),
    ("API_KEY", Family::Keyed),
    ("api-key", Family::Keyed),
    ("Api-Key", Family::Keyed),
    ("API-KEY", Family::Keyed),
    ("apikey", Family::Keyed),
    ("apiKey", Family::Keyed),
    ("ApiKey", Family::Keyed),
    ("APIKEY", Family::Keyed),
    ("token", Family::Keyed),
    ("Token", Family::Keyed),
    ("TOKEN", Family::Keyed),
    ("secret", Family::Keyed),
    ("Secret", Family::Keyed),
    ("SECRET", Family::Keyed),
    ("password", Family::Keyed),
    ("Password", Family::Keyed),
    ("PASSWORD", Family::Keyed),
    ("passwd", Family::Keyed),
    ("Passwd", Family::Keyed),
    ("PASSWD", Family::Keyed),
    ("authorization", Family::Keyed),
    ("Authorization", Family::Keyed),
    ("AUTHORIZATION", Family::Keyed),
];

struct Detectors {
    anchors: AhoCorasick,
    anthropic: Regex,
    openai: Regex,
    github: Regex,
    github_pat: Regex,
    gitlab: Regex,
    aws: Regex,
    aws_secret: Regex,
    slack: Regex,
    google: Regex,
    stripe: Regex,
    jwt: Regex,
    pk_begin: Regex,
    url_cred: Regex,
    bearer: Regex,
    keyed: Regex,
}

fn build_detectors() -> Option<Detectors> {
    let r = |p: &str| Regex::new(p).ok();
    Some(Detectors {
        anchors: AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::DFA))
            .build(ANCHORS.iter().map(|(a, _)| a))
            .ok()?,
        anthropic: r(r"^sk-ant-[A-Za-z0-9_-]{20,}")?,
        openai: r(r"^sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}")?,
        github: r(r"^gh[pousr]_[A-Za-z0-9]{20,}")?,
        github_pat: r(r"^github_pat_[A-Za-z0-9_]{20,}")?,
        gitlab: r(r"^glpat-[A-Za-z0-9_-]{20,}")?,
        aws: r(r"^(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}")?,
        aws_secret: r(
            r#"^(?i:secret_access_key)(?:\\*["'])?\s*[:=][^\n]{0,64}?([A-Za-z0-9/+]{40})"#,
        )?,
        slack: r(r"^xox[abprse]-[A-Za-z0-9-]{10,}")?,
        google: r(r"^AIza[0-9A-Za-z_-]{35}")?,
        stripe: r(r"^(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}")?,
        jwt: r(r"^eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+")?,
        // `… PRIVATE KEY BLOCK-----` is the armoured PGP form.
        pk_begin: r(r"^-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")?,
        // The password runs to the *last* `@` of the authority (WHATWG), so `p@ss@word` is
        // redacted whole; the user name may itself hold `@`.
        url_cred: r(r#"^://[^/?#\s:"'<>]*:([^/?#\s"'<>]+)@"#)?,
        bearer: r(r"^(?i:bearer)\s+([A-Za-z0-9._~+/=-]{8,})")?,
        // Quotes may be backslash-escaped (JSON inside a string: `{\"password\": \"x\"}`), and
        // an auth scheme word before the credential (`Authorization: Basic dXNl…`) is skipped
        // so the credential itself is what gets redacted (`Bearer` has its own detector).
        keyed: r(
            r#"^(?i:api[_-]?key|apikey|token|secret|password|passwd|authorization)(?i:[_-]?key)?(?:\\*["'])?[ \t]*[:=][ \t]*(?:\\*["'])?(?:(?i:basic|digest|negotiate|ntlm|token)[ \t]+)?([^\s,;"']+)"#,
        )?,
    })
}

static DETECTORS: LazyLock<Option<Detectors>> = LazyLock::new(build_detectors);

/// A span to replace, `[start, end)`.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    kind: FindingKind,
}

fn window(s: &str, start: usize, len: usize) -> &str {
    let mut end = (start + len).min(s.len());
    while end > start && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(start..end).unwrap_or("")
}

fn boundary_before(b: &[u8], pos: usize) -> bool {
    pos == 0 || !b.get(pos - 1).is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Runs every detector on `s`, calling `f` for each span (unordered, may overlap).
fn detect(s: &str, f: &mut dyn FnMut(Span)) {
    let Some(d) = DETECTORS.as_ref() else {
        // The detectors are constants; if they ever failed to build, redact everything rather
        // than fail open.
        if !s.is_empty() {
            f(Span {
                start: 0,
                end: s.len(),
                kind: FindingKind::KeyedSecret,
            });
        }
        return;
    };
    let b = s.as_bytes();
    for m in d.anchors.find_iter(s) {
        let p = m.start();
        let Some((_, fam)) = ANCHORS.get(m.pattern().as_usize()) else {
            continue;
        };
        let whole = |re: &Regex, kind, len: usize| {
            re.find(window(s, p, len)).map(|x| Span {
                start: p,
                end: p + x.end(),
                kind,
            })
        };
        let group = |re: &Regex, kind, len: usize| {
            re.captures(window(s, p, len))
                .and_then(|c| c.get(1))
                .filter(|g| g.as_str() != REDACTED)
                .map(|g| Span {
                    start: p + g.start(),
                    end: p + g.end(),
                    kind,
                })
        };
        let span = match fam {
            Family::Sk if boundary_before(b, p) => {
                whole(&d.anthropic, FindingKind::AnthropicKey, 512)
                    .or_else(|| whole(&d.openai, FindingKind::OpenaiKey, 512))
            }
            Family::Github if boundary_before(b, p) => {
                whole(&d.github, FindingKind::GithubToken, 512)
            }
            Family::GithubPat if boundary_before(b, p) => {
                whole(&d.github_pat, FindingKind::GithubPat, 512)
            }
            Family::Gitlab if boundary_before(b, p) => {
                whole(&d.gitlab, FindingKind::GitlabPat, 512)
            }
            Family::Aws if boundary_before(b, p) => whole(&d.aws, FindingKind::AwsAccessKey, 20),
            Family::Slack if boundary_before(b, p) => whole(&d.slack, FindingKind::SlackToken, 512),
            Family::Google if boundary_before(b, p) => {
                whole(&d.google, FindingKind::GoogleApiKey, 39)
            }
            Family::Stripe if boundary_before(b, p) => {
                whole(&d.stripe, FindingKind::StripeKey, 512)
            }
            Family::Jwt if boundary_before(b, p) => whole(&d.jwt, FindingKind::Jwt, 16 * 1024),
            Family::PrivateKey => d.pk_begin.find(window(s, p, 256)).map(|_| {
                let limit = window(s, p, 64 * 1024);
                let end =
                    memchr::memmem::find(limit.as_bytes(), b"-----END").map_or(limit.len(), |e| {
                        let after = e + 8;
                        let tail = limit.get(after..).unwrap_or("");
                        memchr::memmem::find(tail.as_bytes(), b"-----")
                            .map_or(limit.len(), |x| after + x + 5)
                    });
                Span {
                    start: p,
                    end: p + end,
                    kind: FindingKind::PrivateKeyBlock,
                }
            }),
            Family::UrlCred => group(&d.url_cred, FindingKind::UrlCredentials, 1024),
            Family::Bearer if boundary_before(b, p) => {
                group(&d.bearer, FindingKind::BearerToken, 2048)
            }
            Family::Keyed => {
                // `secret` may start `secret_access_key` (AWS secret key detector).
                let aws = if m.len() == 6
                    && s.get(p..p + 6)
                        .is_some_and(|k| k.eq_ignore_ascii_case("secret"))
                {
                    group(&d.aws_secret, FindingKind::AwsSecretKey, 160)
                } else {
                    None
                };
                aws.or_else(|| {
                    group(&d.keyed, FindingKind::KeyedSecret, 1024).filter(|sp| {
                        let v = s.get(sp.start..sp.end).unwrap_or("");
                        !v.eq_ignore_ascii_case("bearer")
                    })
                })
            }
            _ => None,
        };
        if let Some(sp) = span {
            f(sp);
        }
    }
}

/// Whether a key names a secret (lowercased, non-alphanumerics → `_`).
pub fn is_sensitive_key(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "token",
        "secret",
        "password",
        "passwd",
        "passphrase",
        "api_key",
        "apikey",
        "authorization",
        "credential",
        "private_key",
        "access_key",
        "cookie",
    ];
    let norm: String = key
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    WORDS.iter().any(|w| norm.contains(w))
}

fn non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Detects and redacts secrets; holds the exact-value set.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    exact: Option<AhoCorasick>,
}

static DEFAULT: LazyLock<Redactor> = LazyLock::new(Redactor::default);

impl Redactor {
    /// A redactor that also matches `exact_values` (values shorter than 8 chars are ignored).
    pub fn new(exact_values: impl IntoIterator<Item = String>) -> Self {
        let vals: Vec<String> = exact_values
            .into_iter()
            .filter(|v| v.len() >= MIN_EXACT_VALUE)
            .collect();
        let exact = if vals.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&vals)
                .ok()
        };
        Self { exact }
    }

    fn spans(&self, s: &str) -> Vec<Span> {
        let mut out = Vec::new();
        detect(s, &mut |sp| out.push(sp));
        if let Some(ac) = &self.exact {
            for m in ac.find_iter(s) {
                out.push(Span {
                    start: m.start(),
                    end: m.end(),
                    kind: FindingKind::ExactValue,
                });
            }
        }
        out
    }

    /// Kinds found in `s`, sorted and unique.
    pub fn scan_text(&self, s: &str) -> Vec<FindingKind> {
        let mut kinds: Vec<FindingKind> = self.spans(s).iter().map(|sp| sp.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }

    /// Replaces every detected span with `[REDACTED]` (no truncation).
    pub fn redact_str<'s>(&self, s: &'s str) -> Cow<'s, str> {
        let mut spans = self.spans(s);
        if spans.is_empty() {
            return Cow::Borrowed(s);
        }
        spans.sort_unstable_by_key(|sp| (sp.start, std::cmp::Reverse(sp.end)));
        let mut out = String::with_capacity(s.len());
        let mut pos = 0usize;
        for sp in spans {
            if sp.end <= pos {
                continue;
            }
            let start = sp.start.max(pos);
            out.push_str(s.get(pos..start).unwrap_or(""));
            out.push_str(REDACTED);
            pos = sp.end;
        }
        out.push_str(s.get(pos..).unwrap_or(""));
        Cow::Owned(out)
    }

    /// Findings in a JSON value: ≤25, de-duplicated by (kind, path), in visit order.
    ///
    /// Keys are scanned like values (a token used as a key is found at the key's path), and a
    /// string holding JSON (≤4 nested decodes) is scanned inside, its findings at the string's
    /// path. Below depth 128 nothing more is visited (see [`Redactor::redact`]).
    pub fn scan(&self, v: &Value) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut path = String::new();
        self.scan_into(v, &mut path, &mut out, 0, 0);
        out
    }

    fn add(out: &mut Vec<Finding>, kind: FindingKind, path: &str) {
        if out.len() < MAX_FINDINGS && !out.iter().any(|f| f.kind == kind && f.path == path) {
            out.push(Finding {
                kind,
                path: path.to_owned(),
            });
        }
    }

    fn scan_into(
        &self,
        v: &Value,
        path: &mut String,
        out: &mut Vec<Finding>,
        depth: usize,
        decodes: usize,
    ) {
        if out.len() >= MAX_FINDINGS || depth > MAX_REDACT_DEPTH {
            return;
        }
        match v {
            Value::String(s) => {
                // Decoded JSON is scanned instead of its text (same strings, keys seen as keys).
                if let Some(decoded) = decode_json_string(s, decodes) {
                    self.scan_into(&decoded, path, out, depth + 1, decodes + 1);
                } else {
                    for k in self.scan_text(s) {
                        Self::add(out, k, path);
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    let _ = write!(path, "[{i}]");
                    self.scan_into(item, path, out, depth + 1, decodes);
                    path.truncate(len);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    for kind in self.scan_text(k) {
                        Self::add(out, kind, path);
                    }
                    if is_sensitive_key(k) && non_empty(item) {
                        Self::add(out, FindingKind::SensitiveKey, path);
                    } else {
                        self.scan_into(item, path, out, depth + 1, decodes);
                    }
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }

    /// A redacted copy: sensitive-key subtrees → `"[REDACTED]"`, matched spans → `[REDACTED]`,
    /// strings cut to 4 KiB plus `…[truncated]`.
    ///
    /// A string holding JSON (≤4 nested decodes) is redacted inside — so a sensitive key in
    /// JSON-in-string (`"{\"cookie\": \"…\"}"`) is caught — and re-encoded when that changed
    /// anything. Subtrees deeper than 128 levels (only values built in Rust get there; parsed
    /// JSON stops at 128) become `"[REDACTED]"`: bounded recursion, failing closed.
    pub fn redact(&self, v: &Value) -> Value {
        self.redact_at(v, 0, 0)
    }

    fn redact_at(&self, v: &Value, depth: usize, decodes: usize) -> Value {
        if depth > MAX_REDACT_DEPTH {
            return Value::String(REDACTED.to_owned());
        }
        match v {
            Value::String(s) => {
                if let Some(decoded) = decode_json_string(s, decodes) {
                    let red = self.redact_at(&decoded, depth + 1, decodes + 1);
                    if red != decoded {
                        return Value::String(truncate(&red.to_string()));
                    }
                }
                Value::String(truncate(&self.redact_str(s)))
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.redact_at(i, depth + 1, decodes))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, item)| {
                        let val = if is_sensitive_key(k) && non_empty(item) {
                            Value::String(REDACTED.to_owned())
                        } else {
                            self.redact_at(item, depth + 1, decodes)
                        };
                        (self.redact_str(k).into_owned(), val)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Deepest level [`Redactor::redact`] and [`Redactor::scan`] descend to.
pub const MAX_REDACT_DEPTH: usize = 128;
/// Most nested JSON-in-string decodes while redacting or scanning.
const MAX_SECRET_DECODES: usize = 4;

/// The JSON value inside `s` when it looks like JSON (trimmed, starts with `{`, `[` or `"`)
/// and parses, within the decode budget.
fn decode_json_string(s: &str, decodes: usize) -> Option<Value> {
    if decodes >= MAX_SECRET_DECODES
        || !matches!(s.trim_start().as_bytes().first(), Some(b'{' | b'[' | b'"'))
    {
        return None;
    }
    serde_json::from_str::<Value>(s)
        .ok()
        .filter(|v| !v.is_string() || v.as_str() != Some(s))
}

/// Cuts `s` to [`MAX_REDACTED_STRING`] bytes (char boundary) plus `…[truncated]`.
pub fn truncate(s: &str) -> String {
    if s.len() <= MAX_REDACTED_STRING {
        return s.to_owned();
    }
    let mut end = MAX_REDACTED_STRING;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED_SUFFIX}", s.get(..end).unwrap_or(""))
}

/// [`Redactor::scan`] without exact values.
pub fn scan(v: &Value) -> Vec<Finding> {
    DEFAULT.scan(v)
}

/// [`Redactor::redact`] without exact values.
pub fn redact(v: &Value) -> Value {
    DEFAULT.redact(v)
}

/// [`Redactor::redact_str`] without exact values.
pub fn redact_str(s: &str) -> Cow<'_, str> {
    DEFAULT.redact_str(s)
}

/// [`Redactor::scan_text`] without exact values.
pub fn scan_text(s: &str) -> Vec<FindingKind> {
    DEFAULT.scan_text(s)
}

#[cfg(test)]
mod tests;
