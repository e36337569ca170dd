//! Pure text rules shared by every parser (SPEC §10.1): UTF-8 decoding with BOM stripping,
//! CRLF normalisation, hand-split `---` front matter, budgeted YAML via `serde-saphyr`, name
//! slugs, the editor-temp-file ignore list, hashing and timestamps. No I/O.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Largest asset file accepted, in bytes (1 MiB).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Largest front matter accepted, in bytes (64 KiB).
pub const MAX_FRONT_MATTER_BYTES: usize = 64 * 1024;
/// YAML nesting budget.
pub const YAML_MAX_DEPTH: usize = 32;
/// YAML alias budget.
pub const YAML_MAX_ALIASES: usize = 100;

/// Why a text could not be decoded or split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TextError {
    /// Not UTF-8; the byte offset of the first bad sequence.
    InvalidUtf8(usize),
    /// Front matter problem, with 1-based file line when known.
    FrontMatter { message: String, line: Option<u64> },
    /// Front matter over the budget.
    FrontMatterTooLarge(usize),
}

/// Decodes bytes as UTF-8, strips a leading BOM and turns CRLF (and lone CR) into LF.
pub(crate) fn decode(bytes: &[u8]) -> Result<String, TextError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| TextError::InvalidUtf8(e.valid_up_to()))?;
    if !text.contains('\r') {
        return Ok(text.to_owned());
    }
    Ok(text.replace("\r\n", "\n").replace('\r', "\n"))
}

/// A document split into front matter and body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Document {
    /// The front matter mapping (empty when absent or empty).
    pub front_matter: Map<String, Value>,
    /// Whether the file had a front matter block at all.
    pub has_front_matter: bool,
    /// The body after the closing delimiter.
    pub body: String,
    /// 1-based file line where the body starts.
    pub body_line: u64,
}

fn is_delimiter(line: &str) -> bool {
    // INVARIANT: only column-0 `---` (optionally followed by spaces/tabs) delimits.
    line.strip_prefix("---")
        .is_some_and(|rest| rest.trim_end_matches([' ', '\t']).is_empty())
}

/// Splits `---` front matter off a decoded (LF-only) text and parses it as a YAML mapping.
pub(crate) fn split_front_matter(text: &str) -> Result<Document, TextError> {
    let first_line_end = text.find('\n').unwrap_or(text.len());
    let first = text.get(..first_line_end).unwrap_or("");
    if !is_delimiter(first) {
        return Ok(Document {
            front_matter: Map::new(),
            has_front_matter: false,
            body: text.to_owned(),
            body_line: 1,
        });
    }
    let after_open = text.get(first_line_end + 1..).unwrap_or("");
    let mut offset = 0usize;
    let mut line_no = 2u64;
    let mut close: Option<(usize, usize)> = None;
    for line in after_open.split_inclusive('\n') {
        let content = line.strip_suffix('\n').unwrap_or(line);
        if is_delimiter(content) {
            close = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
        line_no += 1;
    }
    let Some((yaml_end, body_start)) = close else {
        return Err(TextError::FrontMatter {
            message: "front matter is not closed by a `---` line".into(),
            line: Some(1),
        });
    };
    let yaml = after_open.get(..yaml_end).unwrap_or("");
    if yaml.len() > MAX_FRONT_MATTER_BYTES {
        return Err(TextError::FrontMatterTooLarge(yaml.len()));
    }
    let body = after_open.get(body_start..).unwrap_or("").to_owned();
    let front_matter = parse_yaml_mapping(yaml)?;
    Ok(Document {
        front_matter,
        has_front_matter: true,
        body,
        body_line: line_no + 1,
    })
}

fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = YAML_MAX_DEPTH;
    budget.max_aliases = YAML_MAX_ALIASES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

fn parse_yaml_value(yaml: &str) -> Result<Value, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options::<Value>(yaml, yaml_options())
}

/// Top-level keys whose plain values real-world files often leave unquoted although YAML
/// would misread them (`argument-hint: [a] [b]`, `description: Fix: the bug`).
const LENIENT_KEYS: &[&str] = &[
    "name",
    "description",
    "argument-hint",
    "argument_hint",
    "allowed-tools",
    "allowed_tools",
    "model",
    "title",
    "when_to_use",
    "when-to-use",
    "license",
    "version",
];

/// Re-quotes top-level `key: value` lines of [`LENIENT_KEYS`] whose value is not already
/// quoted, a block scalar or a well-formed flow collection. Returns `None` when nothing changed.
fn requote_lenient(yaml: &str) -> Option<String> {
    let mut changed = false;
    let mut out = String::with_capacity(yaml.len() + 16);
    for line in yaml.split_inclusive('\n') {
        let content = line.strip_suffix('\n').unwrap_or(line);
        let mut replaced = None;
        if let Some((key, value)) = content.split_once(':') {
            let value = value.trim();
            let plain_key = !key.starts_with([' ', '\t', '-', '#']);
            if plain_key
                && LENIENT_KEYS.contains(&key.trim())
                && !value.is_empty()
                && !value.starts_with(['\'', '"', '|', '>', '&', '*', '!'])
                && parse_yaml_value(&format!("k: {value}\n")).is_err()
            {
                replaced = Some(format!("{}: '{}'\n", key.trim(), value.replace('\'', "''")));
            }
        }
        match replaced {
            Some(r) => {
                changed = true;
                out.push_str(&r);
            }
            None => {
                out.push_str(content);
                out.push('\n');
            }
        }
    }
    changed.then_some(out)
}

/// Parses front matter YAML into a mapping. Empty or null YAML is an empty mapping.
pub(crate) fn parse_yaml_mapping(yaml: &str) -> Result<Map<String, Value>, TextError> {
    if yaml.trim().is_empty() {
        return Ok(Map::new());
    }
    let value = match parse_yaml_value(yaml) {
        Ok(v) => v,
        Err(first) => match requote_lenient(yaml).map(|y| parse_yaml_value(&y)) {
            Some(Ok(v)) => v,
            _ => {
                // Front matter starts on file line 2.
                let location = first.location();
                let line = location.map(|l| l.line() + 1);
                let text = first.to_string();
                let mut msg = text.lines().next().unwrap_or("invalid yaml").trim();
                msg = msg.strip_prefix("error:").unwrap_or(msg).trim();
                // Drop saphyr's own `line x column y:` prefix; we report file lines.
                if msg.starts_with("line ")
                    && let Some((_, rest)) = msg.split_once(": ")
                {
                    msg = rest;
                }
                let message = match location {
                    Some(l) => format!("column {}: {msg}", l.column()),
                    None => msg.to_owned(),
                };
                return Err(TextError::FrontMatter { message, line });
            }
        },
    };
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(TextError::FrontMatter {
            message: format!(
                "front matter must be a mapping, found {}",
                json_type_name(&other)
            ),
            line: Some(2),
        }),
    }
}

/// The JSON type name of a value, for messages.
pub(crate) fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// True for names matching `[a-z0-9][a-z0-9_-]*`, at most 128 bytes.
pub fn is_slug(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && name.len() <= 128
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// True for file names the loaders and the watcher ignore: editor temp and lock files
/// (`*.swp`, `*.swx`, `*~`, `.#*`, `4913`, `*___jb_tmp___`, `*___jb_old___`) and every other
/// hidden (dot) file or directory.
pub fn is_ignored_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
        || name == "4913"
}

/// True when a file name is a markdown asset candidate (`*.md`, case-insensitive extension).
pub fn is_markdown_name(name: &str) -> bool {
    !is_ignored_name(name)
        && name.len() > 3
        && name
            .get(name.len() - 3..)
            .is_some_and(|ext| ext.eq_ignore_ascii_case(".md"))
}

/// Lowercase hex SHA-256 of bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    out
}

/// Formats Unix milliseconds as RFC 3339 UTC with milliseconds (`2026-01-02T03:04:05.678Z`).
pub fn format_rfc3339_ms(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Milliseconds since the Unix epoch of a system time (0 before the epoch).
pub(crate) fn system_time_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The first `# ` heading of a markdown body, trimmed.
pub(crate) fn first_heading(body: &str) -> Option<&str> {
    let mut in_fence = false;
    for line in body.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence && let Some(h) = line.strip_prefix("# ") {
            let h = h.trim().trim_end_matches('#').trim();
            if !h.is_empty() {
                return Some(h);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bom_and_crlf_are_normalised() {
        let text = decode(b"\xEF\xBB\xBF---\r\nname: x\r\n---\r\nbody\r\n").unwrap();
        assert_eq!(text, "---\nname: x\n---\nbody\n");
        let doc = split_front_matter(&text).unwrap();
        assert_eq!(doc.front_matter.get("name"), Some(&json!("x")));
        assert_eq!(doc.body, "body\n");
        assert_eq!(doc.body_line, 4);
    }

    #[test]
    fn invalid_utf8_names_offset() {
        assert_eq!(decode(b"ab\xff"), Err(TextError::InvalidUtf8(2)));
    }

    #[test]
    fn front_matter_variants() {
        let empty = split_front_matter("---\n---\nbody").unwrap();
        assert!(empty.has_front_matter && empty.front_matter.is_empty());
        assert_eq!(empty.body, "body");
        let none = split_front_matter("# title\n---\nx").unwrap();
        assert!(!none.has_front_matter);
        let at_eof = split_front_matter("---\na: 1\n---").unwrap();
        assert_eq!(at_eof.front_matter.get("a"), Some(&json!(1)));
        assert_eq!(at_eof.body, "");
        // `---` indented inside a block scalar does not close it
        let nested = split_front_matter("---\na: |\n  ---\n  x\n---\nb").unwrap();
        assert_eq!(nested.front_matter.get("a"), Some(&json!("---\nx\n")));
        assert!(matches!(
            split_front_matter("---\na: 1\n"),
            Err(TextError::FrontMatter { .. })
        ));
        assert!(matches!(
            split_front_matter("---\n- a\n---\n"),
            Err(TextError::FrontMatter { .. })
        ));
        let bad = split_front_matter("---\na: 1\nb: [\n---\n").unwrap_err();
        assert!(
            matches!(bad, TextError::FrontMatter { line: Some(_), .. }),
            "{bad:?}"
        );
    }

    #[test]
    fn claude_style_unquoted_values_are_tolerated() {
        let doc =
            split_front_matter("---\nargument-hint: [pr] [priority]\ndescription: Fix: it\n---\n")
                .unwrap();
        assert_eq!(
            doc.front_matter.get("argument-hint"),
            Some(&json!("[pr] [priority]"))
        );
        assert_eq!(doc.front_matter.get("description"), Some(&json!("Fix: it")));
    }

    #[test]
    fn ignore_rules() {
        for n in [
            ".#foo.md",
            "foo.md~",
            ".foo.md.swp",
            "4913",
            "x.md___jb_tmp___",
            ".hidden.md",
        ] {
            assert!(is_ignored_name(n), "{n}");
            assert!(!is_markdown_name(n), "{n}");
        }
        assert!(is_markdown_name("foo.md"));
        assert!(is_markdown_name("FOO.MD"));
        assert!(!is_markdown_name("foo.txt"));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
    }

    #[test]
    fn headings() {
        assert_eq!(first_heading("```\n# no\n```\n# Yes #\n"), Some("Yes"));
        assert_eq!(first_heading("## sub\n"), None);
    }
}
