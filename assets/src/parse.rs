//! Pure parsing: `(path, bytes) → ParseResult` for every kind, no file-system access.
//! The loader ([`crate::load`]) reads files and hands their bytes here; tests and fuzzers can
//! call these directly. Shared steps — size check, UTF-8, front matter — live in this file;
//! one submodule per kind does the fields.

mod command;
mod graph;
mod skill;
mod workflow;

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{AssetError, AssetErrorReason};
use crate::kind::AssetKind;
use crate::model::{Asset, AssetDefinition, Registration};
use crate::text::{self, Document, MAX_FILE_BYTES, TextError};

pub use command::parse_command;
pub use graph::{extract_links, parse_graph_node};
pub use skill::{SKILL_FILE, parse_skill};
pub use workflow::parse_workflow;

/// What parsing one file produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseResult {
    /// The asset, when one could be built. A command or workflow with field errors is still
    /// built, with `registration.status = invalid`.
    pub asset: Option<Asset>,
    /// Every problem found, with the path.
    pub errors: Vec<AssetError>,
}

impl ParseResult {
    fn failed(error: AssetError) -> Self {
        Self {
            asset: None,
            errors: vec![error],
        }
    }
}

/// Parses one file of `kind`. `path` is the path recorded in the asset (relative to the
/// project root); its file stem and parent directory name give default names.
pub fn parse_asset(kind: AssetKind, path: &Path, bytes: &[u8]) -> ParseResult {
    match kind {
        AssetKind::Skill => parse_skill(path, bytes),
        AssetKind::Command => parse_command(path, bytes),
        AssetKind::Workflow => parse_workflow(path, bytes),
        AssetKind::SkillGraph => parse_graph_node(path, bytes),
    }
}

/// Size check, UTF-8 decoding and front matter split, as a typed per-file error.
pub(crate) fn read_document(
    kind: AssetKind,
    path: &Path,
    bytes: &[u8],
) -> Result<Document, AssetError> {
    let err = |reason, msg: String| AssetError::new(Some(kind), path, reason, msg);
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(err(
            AssetErrorReason::AssetTooLarge,
            format!(
                "file is {} bytes, the limit is {MAX_FILE_BYTES}",
                bytes.len()
            ),
        ));
    }
    let decoded = text::decode(bytes).map_err(|e| text_error(kind, path, e))?;
    text::split_front_matter(&decoded).map_err(|e| text_error(kind, path, e))
}

fn text_error(kind: AssetKind, path: &Path, e: TextError) -> AssetError {
    match e {
        TextError::InvalidUtf8(at) => AssetError::new(
            Some(kind),
            path,
            AssetErrorReason::InvalidUtf8,
            format!("invalid utf-8 at byte {at}"),
        ),
        TextError::FrontMatter { message, line } => {
            let msg = match line {
                Some(l) => format!("line {l}: {message}"),
                None => message,
            };
            let e = AssetError::new(Some(kind), path, AssetErrorReason::InvalidFrontMatter, msg);
            match line {
                Some(l) => e.with_line(l),
                None => e,
            }
        }
        TextError::FrontMatterTooLarge(n) => AssetError::new(
            Some(kind),
            path,
            AssetErrorReason::AssetTooLarge,
            format!(
                "front matter is {n} bytes, the limit is {}",
                text::MAX_FRONT_MATTER_BYTES
            ),
        ),
    }
}

/// The file stem of a path as a string (lossy).
pub(crate) fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Collects field errors for one file and reads typed front matter fields.
pub(crate) struct Fields<'a> {
    kind: AssetKind,
    path: &'a Path,
    fm: &'a Map<String, Value>,
    /// Errors so far.
    pub errors: Vec<AssetError>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(kind: AssetKind, path: &'a Path, fm: &'a Map<String, Value>) -> Self {
        Self {
            kind,
            path,
            fm,
            errors: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, reason: AssetErrorReason, field: &str, message: String) {
        self.errors
            .push(AssetError::new(Some(self.kind), self.path, reason, message).with_detail(field));
    }

    pub(crate) fn invalid(&mut self, field: &str, message: impl Into<String>) {
        let message = format!("field `{field}`: {}", message.into());
        self.error(AssetErrorReason::InvalidField, field, message);
    }

    pub(crate) fn missing(&mut self, field: &str) {
        self.error(
            AssetErrorReason::MissingField,
            field,
            format!("missing field `{field}`"),
        );
    }

    /// The value of the first present key among `keys`.
    pub(crate) fn get(&self, keys: &[&str]) -> Option<(&'a str, &'a Value)> {
        keys.iter()
            .find_map(|k| self.fm.get_key_value(*k))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// A string field; numbers and booleans are stringified, null is absent.
    pub(crate) fn string(&mut self, keys: &[&str]) -> Option<String> {
        let (key, v) = self.get(keys)?;
        match v {
            Value::Null => None,
            Value::String(s) => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.invalid(
                    key,
                    format!("expected a string, found {}", text::json_type_name(other)),
                );
                None
            }
        }
    }

    /// A boolean field.
    pub(crate) fn boolean(&mut self, keys: &[&str]) -> Option<bool> {
        let (key, v) = self.get(keys)?;
        match v {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            other => match yaml11_bool(other) {
                Some(b) => Some(b),
                None => {
                    self.invalid(
                        key,
                        format!("expected a boolean, found {}", text::json_type_name(other)),
                    );
                    None
                }
            },
        }
    }

    /// A positive integer field.
    pub(crate) fn positive_int(&mut self, keys: &[&str]) -> Option<u64> {
        let (key, v) = self.get(keys)?;
        match v.as_u64() {
            Some(n) if n >= 1 => Some(n),
            _ if v.is_null() => None,
            _ => {
                self.invalid(key, "expected a positive integer");
                None
            }
        }
    }

    /// `allowed-tools`: a list of strings, or one string split on commas and whitespace
    /// outside parentheses (`Bash(git add:*), Read` → two entries).
    pub(crate) fn tool_list(&mut self, keys: &[&str]) -> Vec<String> {
        let Some((key, v)) = self.get(keys) else {
            return Vec::new();
        };
        match v {
            Value::Null => Vec::new(),
            Value::String(s) => split_tool_list(s),
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s) => out.extend(split_tool_list(s)),
                        None => {
                            self.invalid(key, "expected a list of strings");
                            return Vec::new();
                        }
                    }
                }
                out
            }
            _ => {
                self.invalid(key, "expected a list or a space-separated string");
                Vec::new()
            }
        }
    }

    /// The name: front matter `name` (must be a slug) or the lowercased file stem.
    pub(crate) fn name_or_stem(&mut self) -> Option<String> {
        if let Some(name) = self.string(&["name"]) {
            if text::is_slug(&name) {
                return Some(name);
            }
            self.invalid(
                "name",
                format!("`{name}` is not a slug `[a-z0-9][a-z0-9_-]*`"),
            );
            return None;
        }
        let stem = stem(self.path).to_lowercase();
        if text::is_slug(&stem) {
            Some(stem)
        } else {
            let message =
                format!("file stem `{stem}` is not a valid name; set front matter `name`");
            self.error(AssetErrorReason::InvalidField, "name", message);
            None
        }
    }
}

/// YAML 1.1 boolean spellings (`yes`, `no`, `on`, `off`, any case) that YAML 1.2 reads as
/// strings; accepted where a boolean is expected.
pub(crate) fn yaml11_bool(v: &Value) -> Option<bool> {
    match v.as_str()?.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" => Some(true),
        "false" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

fn split_tool_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            ',' | ' ' | '\t' | '\n' if depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_owned());
                }
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// Assembles an asset record from its parts (no file metadata yet).
#[expect(
    clippy::too_many_arguments,
    reason = "a plain record constructor, called once per kind"
)]
pub(crate) fn make_asset(
    kind: AssetKind,
    path: &Path,
    bytes: &[u8],
    name: String,
    description: String,
    doc: Document,
    registration: Registration,
    definition: AssetDefinition,
) -> Asset {
    Asset {
        kind,
        name,
        path: path.to_path_buf(),
        description,
        front_matter: doc.front_matter,
        body: doc.body,
        size_bytes: bytes.len() as u64,
        sha256: text::sha256_hex(bytes),
        modified_at: None,
        registration,
        definition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_lists() {
        assert_eq!(
            split_tool_list("Bash(git add:*), Bash(git status:*) Read"),
            vec!["Bash(git add:*)", "Bash(git status:*)", "Read"]
        );
        assert_eq!(
            split_tool_list("fs.read fs.search"),
            vec!["fs.read", "fs.search"]
        );
    }
}
