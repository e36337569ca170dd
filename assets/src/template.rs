//! `{{placeholder}}` templates, compiled once per load (SPEC §10.2) and rendered by the tools
//! crate: per argv element, single-quoted into a shell script, or into a prompt. Claude-Code
//! style `$ARGUMENTS` and `$1`…`$9` are understood in prompt templates of commands that
//! declare no `params`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One piece of a compiled template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplatePart {
    /// Text copied as is.
    Literal(String),
    /// `{{name}}` (or a dotted path like `inputs.file`).
    Placeholder(String),
    /// `$ARGUMENTS`: the whole `arguments` string.
    Arguments,
    /// `$N` (1-based): the N-th whitespace-separated word of `arguments`.
    Positional(u8),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// The source text.
    pub source: String,
    /// The compiled parts.
    pub parts: Vec<TemplatePart>,
}

/// How a placeholder value is inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// Strings verbatim, other JSON values serialized.
    Plain,
    /// Like `Plain`, then wrapped in POSIX single quotes.
    Shell,
}

fn is_placeholder_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl Template {
    /// Compiles `{{name}}` placeholders; with `claude_args`, also `$ARGUMENTS` and `$1`…`$9`.
    /// Malformed `{{` sequences stay literal text.
    pub fn compile(source: &str, claude_args: bool) -> Self {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = source;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{{")
                && let Some(end) = after.find("}}")
            {
                let name = after.get(..end).unwrap_or("").trim();
                if is_placeholder_name(name) {
                    if !lit.is_empty() {
                        parts.push(TemplatePart::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(TemplatePart::Placeholder(name.to_owned()));
                    rest = after.get(end + 2..).unwrap_or("");
                    continue;
                }
            }
            if claude_args && rest.starts_with('$') {
                if let Some(after) = rest.strip_prefix("$ARGUMENTS") {
                    if !lit.is_empty() {
                        parts.push(TemplatePart::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(TemplatePart::Arguments);
                    rest = after;
                    continue;
                }
                let bytes = rest.as_bytes();
                if let (Some(d @ b'1'..=b'9'), false) = (
                    bytes.get(1).copied(),
                    bytes.get(2).is_some_and(u8::is_ascii_digit),
                ) {
                    if !lit.is_empty() {
                        parts.push(TemplatePart::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(TemplatePart::Positional(d - b'0'));
                    rest = rest.get(2..).unwrap_or("");
                    continue;
                }
            }
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                lit.push(c);
            }
            rest = chars.as_str();
        }
        if !lit.is_empty() {
            parts.push(TemplatePart::Literal(lit));
        }
        Self {
            source: source.to_owned(),
            parts,
        }
    }

    /// The placeholder names used, in order of first use.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.parts {
            if let TemplatePart::Placeholder(n) = p
                && !out.contains(&n.as_str())
            {
                out.push(n);
            }
        }
        out
    }

    /// True when the template uses `$ARGUMENTS` or `$N`.
    pub fn uses_claude_args(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, TemplatePart::Arguments | TemplatePart::Positional(_)))
    }

    /// If the template is exactly one placeholder, its name (such a string takes the typed
    /// JSON value in workflows).
    pub fn sole_placeholder(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [TemplatePart::Placeholder(n)] => Some(n),
            _ => None,
        }
    }

    /// Renders against `args`; a placeholder may be a dotted path into nested objects.
    /// Missing values render as the empty string.
    pub fn render(&self, args: &Map<String, Value>, quoting: Quoting) -> String {
        let mut out = String::with_capacity(self.source.len());
        let arguments = args.get("arguments").and_then(Value::as_str).unwrap_or("");
        for p in &self.parts {
            let value: String = match p {
                TemplatePart::Literal(l) => {
                    out.push_str(l);
                    continue;
                }
                TemplatePart::Placeholder(name) => {
                    lookup(args, name).map(plain).unwrap_or_default()
                }
                TemplatePart::Arguments => arguments.to_owned(),
                TemplatePart::Positional(n) => arguments
                    .split_whitespace()
                    .nth(usize::from(*n).saturating_sub(1))
                    .unwrap_or("")
                    .to_owned(),
            };
            match quoting {
                Quoting::Plain => out.push_str(&value),
                Quoting::Shell => out.push_str(&shell_quote(&value)),
            }
        }
        out
    }
}

/// Looks up a dotted path (`a.b.0.c`) in an argument map.
pub fn lookup<'a>(args: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segs = path.split('.');
    let mut cur = args.get(segs.next()?)?;
    for seg in segs {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// POSIX single-quotes a string (`'` becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compiles_and_renders() {
        let t = Template::compile("grep -rn TODO {{ dir }} {{x", false);
        assert_eq!(t.placeholders(), vec!["dir"]);
        let args = json!({"dir": "it's"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(t.render(&args, Quoting::Plain), "grep -rn TODO it's {{x");
        assert_eq!(
            t.render(&args, Quoting::Shell),
            r"grep -rn TODO 'it'\''s' {{x"
        );
        assert_eq!(
            Template::compile("{{inputs.file}}", false).sole_placeholder(),
            Some("inputs.file")
        );
    }

    #[test]
    fn claude_arguments() {
        let t = Template::compile("Fix $ARGUMENTS now; first=$1 cost=$10", true);
        assert!(t.uses_claude_args());
        let args = json!({"arguments": "a b"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            t.render(&args, Quoting::Plain),
            "Fix a b now; first=a cost=$10"
        );
        assert!(!Template::compile("$ARGUMENTS", false).uses_claude_args());
    }
}
