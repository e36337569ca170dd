//! Where arguments are looked for (SPEC §5.2): declared `x-codeward` locations, and for tools
//! without trusted `x-codeward-complete` the heuristic deep scan — key words, inherited kinds,
//! JSON-in-string decoding (≤4 nested), opaque text markers, URLs and path-like tokens,
//! command argv / shell words. Produces the ordered candidate list `evaluate` checks.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::error::PolicyError;
use crate::net::scheme_of;
use crate::paths::Access;
use crate::request::{ArgKind, DeclNode, ToolPolicy};

/// Maximum candidates per call.
pub const MAX_CANDIDATES: usize = 10_000;
/// Maximum bytes of keys and strings scanned per call (decoded JSON included).
pub const MAX_SCANNED_BYTES: usize = 4 * 1024 * 1024;
/// Maximum nesting depth (decoded JSON included).
pub const MAX_DEPTH: usize = 64;
/// Maximum nested JSON-in-string decodes.
pub const MAX_DECODES: usize = 4;

/// What a candidate is checked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CandKind {
    Path(Access),
    Url,
    Host,
    Env,
}

/// One value to check.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub location: String,
    pub kind: CandKind,
    pub raw: String,
    pub env: Option<Value>,
    /// A token of a command location (relative paths join the checked `cwd`).
    pub command: bool,
}

/// The kind a location gives to what is below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    Path(Access),
    /// Network key or declared url/host: scheme-less strings are hosts.
    Net,
    Command,
    Env,
}

impl Loc {
    fn from_decl(kind: ArgKind, access: Access) -> Self {
        match kind {
            ArgKind::Path => Self::Path(access),
            ArgKind::Url | ArgKind::Host => Self::Net,
            ArgKind::Command => Self::Command,
            ArgKind::Env => Self::Env,
        }
    }
}

const PATH_WORDS: &[&str] = &[
    "path",
    "paths",
    "file",
    "files",
    "filename",
    "filepath",
    "dir",
    "dirs",
    "directory",
    "folder",
    "src",
    "source",
    "dest",
    "dst",
    "destination",
    "target",
    "cwd",
    "workdir",
    "root",
];
const NET_WORDS: &[&str] = &[
    "url",
    "urls",
    "uri",
    "uris",
    "href",
    "host",
    "hosts",
    "hostname",
    "domain",
    "domains",
    "endpoint",
    "endpoints",
    "origin",
];

/// Splits a key into lowercase words (on `_ - .`, spaces and camelCase boundaries).
pub fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if matches!(c, '_' | '-' | '.' | ' ') || c.is_whitespace() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// The location kind of one word list: the last located word decides.
fn classify_words(words: &[String]) -> Option<Loc> {
    words.iter().rev().find_map(|w| {
        if NET_WORDS.contains(&w.as_str()) {
            Some(Loc::Net)
        } else if PATH_WORDS.contains(&w.as_str()) {
            Some(Loc::Path(Access::Write))
        } else {
            None
        }
    })
}

/// Splits on `_ - .` and whitespace only (no camelCase), lowercased: `FiLePaTh` → `filepath`.
fn separator_words(key: &str) -> Vec<String> {
    key.split(|c: char| matches!(c, '_' | '-' | '.') || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Like [`key_words`], but an uppercase run followed by a lowercase letter starts a new word
/// before its last capital (`URLPath` → `url`, `path`; `PDFFile` → `pdf`, `file`).
fn acronym_words(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if matches!(c, '_' | '-' | '.') || c.is_whitespace() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
            });
        if boundary && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// The location kind a key gives, from its words (the last located word decides:
/// `source_url` is a URL, `url_path` a path). Env keys: `env`, `environment`, `env_vars`.
///
/// The camelCase split of SPEC §5.2 decides when it finds a located word; otherwise two more
/// splits are tried so odd casings cannot hide a location (an attacker-written asset schema
/// picks its keys): acronym runs (`URLPath`) and separators only (`FiLePaTh`, `FILEPATH`).
/// Whole words only, so `security`, `profile`, `ghost`, `curl_opts` still match nothing.
fn classify_key(key: &str) -> Option<Loc> {
    let lower = key.to_ascii_lowercase();
    if matches!(lower.as_str(), "env" | "environment" | "env_vars") {
        return Some(Loc::Env);
    }
    classify_words(&key_words(key))
        .or_else(|| classify_words(&acronym_words(key)))
        .or_else(|| classify_words(&separator_words(key)))
}

static MARKER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"([A-Za-z0-9_.\-]+)["']?[ \t]*(?:=>|=|:)[ \t]*(?:"([^"]*)"|'([^']*)'|([^\s,;}>)"']+))"#,
    )
    .ok()
});

/// Characters at which a POSIX shell ends a word even without blanks around them.
const SHELL_OPERATORS: &[char] = &[';', '&', '|', '<', '>', '(', ')', '`'];

fn escape_ptr(out: &mut String, seg: &str) {
    for c in seg.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

struct Walker {
    heuristic: bool,
    out: Vec<Candidate>,
    scanned: usize,
    ptr: String,
}

fn too_complex() -> PolicyError {
    PolicyError::InvalidToolCall {
        reason: "argument_too_complex".to_owned(),
    }
}

fn looks_like_json(s: &str) -> bool {
    matches!(s.trim_start().as_bytes().first(), Some(b'{' | b'[' | b'"'))
}

impl Walker {
    fn push(&mut self, kind: CandKind, raw: &str, command: bool) -> Result<(), PolicyError> {
        if self.out.len() >= MAX_CANDIDATES {
            return Err(too_complex());
        }
        if self
            .out
            .iter()
            .rev()
            .take(16)
            .any(|c| c.location == self.ptr && c.kind == kind && c.raw == raw)
        {
            return Ok(());
        }
        self.out.push(Candidate {
            location: self.ptr.clone(),
            kind,
            raw: raw.to_owned(),
            env: None,
            command,
        });
        Ok(())
    }

    fn count(&mut self, n: usize) -> Result<(), PolicyError> {
        self.scanned += n;
        if self.scanned > MAX_SCANNED_BYTES {
            Err(too_complex())
        } else {
            Ok(())
        }
    }

    fn walk(
        &mut self,
        v: &Value,
        decl: Option<&DeclNode>,
        loc: Option<Loc>,
        depth: usize,
        decodes: usize,
    ) -> Result<(), PolicyError> {
        if depth > MAX_DEPTH {
            return Err(too_complex());
        }
        if !self.heuristic && decl.is_none() && loc.is_none() {
            return Ok(()); // complete schema: nothing below this point is declared
        }
        if loc == Some(Loc::Env) {
            if self.out.len() >= MAX_CANDIDATES {
                return Err(too_complex());
            }
            self.out.push(Candidate {
                location: self.ptr.clone(),
                kind: CandKind::Env,
                raw: String::new(),
                env: Some(v.clone()),
                command: false,
            });
            return Ok(());
        }
        match v {
            Value::Object(map) => {
                let mut keys: Vec<(&String, &Value)> = map.iter().collect();
                keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (k, sub) in keys {
                    self.count(k.len())?;
                    let child = decl.and_then(|d| d.child(k));
                    let child_loc = match child.and_then(|c| c.mark) {
                        Some((kind, access)) => Some(Loc::from_decl(kind, access)),
                        None if self.heuristic => classify_key(k).or(loc),
                        None => loc,
                    };
                    let len = self.ptr.len();
                    self.ptr.push('/');
                    escape_ptr(&mut self.ptr, k);
                    // Heuristic scan: below a path key a map's keys may be the paths
                    // (`{"files": {"../x": "content"}}`), so they are candidates too.
                    let r = match loc {
                        Some(Loc::Path(a)) if self.heuristic => self.located(k, Some(a)),
                        _ => Ok(()),
                    };
                    let r = r.and_then(|()| self.walk(sub, child, child_loc, depth + 1, decodes));
                    self.ptr.truncate(len);
                    r?;
                }
            }
            Value::Array(items) => {
                let child = decl.and_then(|d| d.items.as_deref());
                let child_loc = match child.and_then(|c| c.mark) {
                    Some((kind, access)) => Some(Loc::from_decl(kind, access)),
                    None => loc,
                };
                for (i, item) in items.iter().enumerate() {
                    let len = self.ptr.len();
                    self.ptr.push('/');
                    self.ptr.push_str(itoa(i).as_str());
                    let r = if child_loc == Some(Loc::Command) {
                        // argv element: one word, no shell splitting
                        match item {
                            Value::String(s) => {
                                self.count(s.len()).and_then(|()| self.command_word(s))
                            }
                            other => self.walk(other, child, child_loc, depth + 1, decodes),
                        }
                    } else {
                        self.walk(item, child, child_loc, depth + 1, decodes)
                    };
                    self.ptr.truncate(len);
                    r?;
                }
            }
            Value::String(s) => {
                self.count(s.len())?;
                self.string(s, decl, loc, depth, decodes)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn string(
        &mut self,
        s: &str,
        decl: Option<&DeclNode>,
        loc: Option<Loc>,
        depth: usize,
        decodes: usize,
    ) -> Result<(), PolicyError> {
        let decodable = loc != Some(Loc::Command) && (loc.is_some() || self.heuristic);
        if decodable && looks_like_json(s) {
            match serde_json::from_str::<Value>(s) {
                Ok(decoded) => {
                    if decodes >= MAX_DECODES {
                        return Err(too_complex());
                    }
                    // The tool may use a path string as it is rather than decode it:
                    // `{"a/../../x":0}` decodes to no string at all but, taken literally,
                    // walks out of the root. Both readings must pass.
                    // (A literal the kernel could not open — NUL, over-long component — is
                    // left to the decoded reading: `["a.txt", "b.txt", …]` is no false deny.)
                    if let Some(Loc::Path(a)) = loc
                        && crate::paths::precheck(s).is_ok()
                    {
                        self.push(CandKind::Path(a), s, false)?;
                    }
                    return self.walk(&decoded, decl, loc, depth + 1, decodes + 1);
                }
                // Nested deeper than serde_json's limit (128): other decoders go further, so
                // this is too complex (SPEC §5.2 depth 64), never a plain string.
                Err(e) if e.to_string().starts_with("recursion limit exceeded") => {
                    return Err(too_complex());
                }
                Err(_) => {}
            }
        }
        match loc {
            Some(Loc::Command) => self.command_string(s),
            Some(Loc::Path(access)) => self.located(s, Some(access)),
            Some(Loc::Net) => self.located(s, None),
            Some(Loc::Env) => Ok(()),
            None if self.heuristic => self.opaque(s),
            None => Ok(()),
        }
    }

    /// A string at a located key: URL, file URL, host or path.
    fn located(&mut self, s: &str, path_access: Option<Access>) -> Result<(), PolicyError> {
        if let Some(kind) = url_like(s) {
            return match (kind, path_access) {
                (UrlLike::File(p), Some(a)) => self.push(CandKind::Path(a), &p, false),
                // In URL locations `file:` is a scheme to refuse (network_protocol_denied) —
                // but that check only runs for network-capable tools, and any tool may open
                // a `file:` URL: its path is a candidate too.
                (UrlLike::File(p), None) => {
                    self.push(CandKind::Url, s.trim(), false)?;
                    let a = if self.heuristic {
                        Access::Write
                    } else {
                        Access::Read
                    };
                    self.push(CandKind::Path(a), &p, false)
                }
                // A URL-looking string in a path location is still opened as a path by the
                // tool (`//etc/passwd` is `/etc/passwd`): check it both ways.
                (UrlLike::Url, Some(a)) => {
                    self.push(CandKind::Url, s.trim(), false)?;
                    self.push(CandKind::Path(a), s, false)
                }
                (UrlLike::Url, None) => self.push(CandKind::Url, s.trim(), false),
            };
        }
        match path_access {
            Some(a) => self.push(CandKind::Path(a), s, false),
            None if s.trim().is_empty() => Ok(()),
            // `mailto:x`, `data:…`: a scheme without `//` (not `host:port`) is a URL.
            None if scheme_of(s.trim()).is_some_and(|sc| {
                s.trim()
                    .get(sc.len() + 1..)
                    .is_some_and(|rest| !rest.bytes().all(|b| b.is_ascii_digit()))
            }) =>
            {
                self.push(CandKind::Url, s.trim(), false)
            }
            None => self.push(CandKind::Host, s, false),
        }
    }

    fn command_string(&mut self, s: &str) -> Result<(), PolicyError> {
        let words = shell_words::split(s)
            .unwrap_or_else(|_| s.split_whitespace().map(str::to_owned).collect());
        for w in &words {
            self.command_word(w)?;
            // The shell also splits at its operators, blank or not: `cat<../x`, `a;cat ../x`,
            // `cd ..&&cat x`, `$(cat<../x)`. Each piece is a word too (quoting is gone by now,
            // so a quoted operator splits as well: stricter, never looser).
            if w.contains(SHELL_OPERATORS) {
                for piece in w.split(SHELL_OPERATORS).filter(|p| !p.is_empty()) {
                    self.command_word(piece)?;
                }
            }
        }
        Ok(())
    }

    /// One argv element / shell word: split at the first `=`, classify each piece.
    ///
    /// Beyond SPEC §5.2's path-like tokens, a bare word (`cat id_rsa`, `cat file_link`) is a
    /// path candidate too: joined to the cwd it cannot leave the root lexically, but it can
    /// name a sensitive file or a symlink out — and the OS layer cannot carve sensitive files
    /// out of the readable root (§6.2 known limits), so this layer must. Options (`-x`) are
    /// not. A word the kernel could not open as a path (NUL, >4096 bytes or a >255-byte
    /// component: a long commit message) is no path candidate: no false `invalid_path`.
    fn command_word(&mut self, w: &str) -> Result<(), PolicyError> {
        let pieces: [Option<&str>; 3] = match w.split_once('=') {
            // the whole word too: `cat a=../x` opens `a=../x`
            Some((a, b)) => [Some(a), Some(b), Some(w)],
            None => [Some(w), None, None],
        };
        for p in pieces
            .into_iter()
            .flatten()
            .filter(|p| crate::paths::precheck(p).is_ok())
        {
            if let Some(kind) = url_like(p) {
                match kind {
                    UrlLike::File(path) => self.push(CandKind::Path(Access::Read), &path, true)?,
                    UrlLike::Url => {
                        self.push(CandKind::Url, p, true)?;
                        // `cat //etc/passwd`: a scheme-relative "URL" is a path to a command.
                        if p.starts_with("//") {
                            self.push(CandKind::Path(Access::Read), p, true)?;
                        }
                    }
                }
            } else if p.contains('/') || p.starts_with('.') || p.starts_with('~') {
                // path-like (SPEC §5.2)
                self.push(CandKind::Path(Access::Read), p, true)?;
            } else if !p.is_empty() && !p.starts_with('-') {
                // bare word (see above)
                self.push(CandKind::Path(Access::Read), p, true)?;
            }
        }
        Ok(())
    }

    /// Opaque text: `scheme://` URLs, `k=v` / `k: v` / `k => v` markers with a located key,
    /// and tokens starting with `/`, `~/` or containing `..`.
    fn opaque(&mut self, s: &str) -> Result<(), PolicyError> {
        if memchr::memmem::find(s.as_bytes(), b"://").is_some() {
            for url in find_urls(s) {
                match url_like(url) {
                    Some(UrlLike::File(p)) => {
                        self.push(CandKind::Path(Access::Write), &p, false)?
                    }
                    _ => self.push(CandKind::Url, url, false)?,
                }
            }
        }
        if memchr::memchr2(b'=', b':', s.as_bytes()).is_some()
            && let Some(re) = MARKER.as_ref()
        {
            for cap in re.captures_iter(s) {
                let Some(key) = cap.get(1) else { continue };
                let Some(val) = cap.get(2).or(cap.get(3)).or(cap.get(4)) else {
                    continue;
                };
                let val = val.as_str();
                if val.starts_with("//") && key.as_str().chars().all(|c| c.is_ascii_alphabetic()) {
                    continue; // the `scheme://` of a URL, handled above
                }
                match classify_key(key.as_str()) {
                    Some(Loc::Path(a)) => self.located(val, Some(a))?,
                    Some(Loc::Net) => self.located(val, None)?,
                    _ => {}
                }
            }
        }
        for tok in s.split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    '"' | '\''
                        | '`'
                        | ','
                        | ';'
                        | '('
                        | ')'
                        | '<'
                        | '>'
                        | '['
                        | ']'
                        | '{'
                        | '}'
                        | '='
                )
        }) {
            if tok.contains("://") {
                continue;
            }
            // `file:/etc/passwd` (no `//`) is a file URL too.
            if tok
                .get(..5)
                .is_some_and(|h| h.eq_ignore_ascii_case("file:"))
                && let Some(UrlLike::File(p)) = url_like(tok)
            {
                self.push(CandKind::Path(Access::Write), &p, false)?;
                continue;
            }
            if tok.starts_with("//") {
                self.push(CandKind::Url, tok, false)?;
                // Also a path (`//etc/passwd` opens `/etc/passwd`); a bare `//` (a code
                // comment marker) is neither.
                if tok.len() > 2 {
                    self.push(CandKind::Path(Access::Write), tok, false)?;
                }
            } else if tok.starts_with('/') || tok.starts_with("~/") || tok.contains("..") {
                self.push(CandKind::Path(Access::Write), tok, false)?;
            }
        }
        Ok(())
    }
}

fn itoa(i: usize) -> String {
    i.to_string()
}

enum UrlLike {
    Url,
    File(String),
}

/// `scheme:` + `//`, or a leading `//` → URL; `file:` URLs → their path.
fn url_like(s: &str) -> Option<UrlLike> {
    let t = s.trim();
    if t.starts_with("//") {
        return Some(UrlLike::Url);
    }
    let scheme = scheme_of(t)?;
    let rest = t.get(scheme.len() + 1..)?;
    if scheme == "file" {
        let after = rest.strip_prefix("//").map_or(Some(rest), |r| {
            // host must be empty or localhost
            let (host, path) = r.find('/').map_or((r, ""), |i| {
                (r.get(..i).unwrap_or(""), r.get(i..).unwrap_or(""))
            });
            (host.is_empty() || host.eq_ignore_ascii_case("localhost")).then_some(path)
        });
        return Some(match after {
            Some(p) => UrlLike::File(
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .into_owned(),
            ),
            // file://otherhost/… : judged as a URL (scheme check denies it)
            None => UrlLike::Url,
        });
    }
    rest.starts_with("//").then_some(UrlLike::Url)
}

/// `scheme://…` runs inside text.
fn find_urls(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    for i in memchr::memmem::find_iter(b, b"://") {
        let mut start = i;
        while start > 0
            && b.get(start - 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || b"+.-".contains(c))
        {
            start -= 1;
        }
        while start < i && !b.get(start).is_some_and(u8::is_ascii_alphabetic) {
            start += 1;
        }
        if start == i {
            continue;
        }
        let mut end = i + 3;
        while end < b.len()
            && !b
                .get(end)
                .is_some_and(|c| c.is_ascii_whitespace() || b"\"'<>`".contains(c))
        {
            end += 1;
        }
        if let Some(u) = s.get(start..end) {
            out.push(u.trim_end_matches(['.', ',', ';', ')', ']', '}']));
        }
    }
    out
}

/// Whether `v` nests objects/arrays deeper than `limit` — checked without recursion, so a
/// value built in Rust (parsed JSON stops at 128 levels) cannot overflow the stack of the
/// schema validator or the walkers.
pub(crate) fn nests_deeper_than(v: &Value, limit: usize) -> bool {
    // Only non-empty containers go on the stack: the usual flat argument object (this runs
    // on every call) allocates nothing.
    fn children<'a>(
        items: impl Iterator<Item = &'a Value>,
        d: usize,
        limit: usize,
        stack: &mut Vec<(&'a Value, usize)>,
    ) -> bool {
        for item in items {
            if d + 1 > limit {
                return true;
            }
            let nested = match item {
                Value::Array(a) => !a.is_empty(),
                Value::Object(m) => !m.is_empty(),
                _ => false,
            };
            if nested {
                stack.push((item, d + 1));
            }
        }
        false
    }
    let mut stack: Vec<(&Value, usize)> = Vec::new();
    let mut next = Some((v, 0));
    while let Some((v, d)) = next.take().or_else(|| stack.pop()) {
        let deeper = match v {
            Value::Array(items) => children(items.iter(), d, limit, &mut stack),
            Value::Object(map) => children(map.values(), d, limit, &mut stack),
            _ => false,
        };
        if deeper {
            return true;
        }
    }
    false
}

/// Extracts the ordered candidates of one call (`/args/…` JSON pointers).
pub(crate) fn extract(tool: &ToolPolicy, args: &Value) -> Result<Vec<Candidate>, PolicyError> {
    if tool.is_complete() && !tool.has_declared_locations() {
        return Ok(Vec::new());
    }
    let mut w = Walker {
        heuristic: !tool.is_complete(),
        out: Vec::new(),
        scanned: 0,
        ptr: String::from("/args"),
    };
    w.walk(args, Some(&tool.decl), None, 0, 0)?;
    Ok(w.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Depth of `v` counted the plain recursive way (root = 0, a scalar inside = 1 more).
    fn depth(v: &Value) -> usize {
        match v {
            Value::Array(a) => a.iter().map(|i| depth(i) + 1).max().unwrap_or(0),
            Value::Object(m) => m.values().map(|i| depth(i) + 1).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn nesting_limit_agrees_with_the_recursive_depth() {
        let mut deep = serde_json::json!("leaf");
        for i in 0..12 {
            deep = if i % 2 == 0 {
                serde_json::json!([1, deep, {}])
            } else {
                serde_json::json!({"k": deep, "e": []})
            };
        }
        let values = [
            serde_json::json!("x"),
            serde_json::json!({}),
            serde_json::json!([]),
            serde_json::json!({"a": 1, "b": "c"}),
            serde_json::json!({"a": {"b": []}}),
            serde_json::json!([[[[]]], 1]),
            deep,
        ];
        for v in &values {
            for limit in 0..15 {
                assert_eq!(
                    nests_deeper_than(v, limit),
                    depth(v) > limit,
                    "{v} at {limit}"
                );
            }
        }
    }

    #[test]
    fn key_words_split_camel_and_separators() {
        assert_eq!(key_words("sourceFilePath"), vec!["source", "file", "path"]);
        assert_eq!(key_words("curl_opts"), vec!["curl", "opts"]);
        assert_eq!(key_words("base-URL.v2"), vec!["base", "url", "v2"]);
    }

    #[test]
    fn whole_words_only() {
        for k in [
            "security",
            "profile",
            "ghost",
            "curl_opts",
            "filesystem_kind",
        ] {
            assert_eq!(classify_key(k), None, "{k}");
        }
        assert_eq!(classify_key("source_url"), Some(Loc::Net));
        assert_eq!(classify_key("url_path"), Some(Loc::Path(Access::Write)));
        assert_eq!(classify_key("ENV"), Some(Loc::Env));
    }

    #[test]
    fn finds_urls_in_text() {
        assert_eq!(
            find_urls("see (https://a.example/x). and ftp://b"),
            vec!["https://a.example/x", "ftp://b"]
        );
    }
}
