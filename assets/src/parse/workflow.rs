//! Workflows: front matter (`name`, `version`, `description`, `enabled`, `inputs`), the
//! `## Steps` section of `### <step_id>` subsections with one fenced `yaml` block each, the
//! optional `## Return` block, the load checks of SPEC §10.2, and the `workflow.run.<name>`
//! input schema.

use std::path::Path;

use serde_json::{Map, Value};

use super::command::{params_schema, parse_params};
use super::{Fields, ParseResult, make_asset, read_document};
use crate::error::AssetErrorReason;
use crate::kind::AssetKind;
use crate::model::{AssetDefinition, Registration, WorkflowDef, WorkflowReturn, WorkflowStep};
use crate::template::Template;
use crate::text;

/// Most steps a workflow may have.
pub const MAX_WORKFLOW_STEPS: usize = 32;

/// Parses a workflow. Field errors leave it listed with an invalid registration.
pub fn parse_workflow(path: &Path, bytes: &[u8]) -> ParseResult {
    let kind = AssetKind::Workflow;
    let (doc, fm_error) = match read_document(kind, path, bytes) {
        Ok(d) => (d, None),
        Err(e) if e.reason == AssetErrorReason::InvalidFrontMatter => {
            let text = text::decode(bytes).unwrap_or_default();
            let doc = text::Document {
                front_matter: Map::new(),
                has_front_matter: true,
                body: text,
                body_line: 1,
            };
            (doc, Some(e))
        }
        Err(e) => return ParseResult::failed(e),
    };
    let fm = doc.front_matter.clone();
    let mut f = Fields::new(kind, path, &fm);
    f.errors.extend(fm_error);
    let Some(name) = f.name_or_stem() else {
        return ParseResult {
            asset: None,
            errors: f.errors,
        };
    };
    let version = f
        .string(&["version"])
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "0.0.0".into());
    let description = f.string(&["description"]).unwrap_or_default();
    let enabled = f.boolean(&["enabled"]).unwrap_or(true);
    let inputs = parse_params(&mut f, &["inputs"], false);

    let sections = split_sections(&doc.body);
    let mut steps: Vec<WorkflowStep> = Vec::new();
    match f.get(&["steps"]) {
        Some((_, Value::Array(items))) => {
            for (i, item) in items.iter().enumerate() {
                let id = item.get("id").and_then(Value::as_str).map(str::to_owned);
                match id {
                    Some(id) => step_from_value(&mut f, &mut steps, id, item),
                    None => f.invalid("steps", format!("step {i} has no `id`")),
                }
            }
        }
        Some((key, v)) if !v.is_null() => f.invalid(key, "expected a list of steps"),
        _ => match &sections.steps {
            None => f.missing("steps"),
            Some(subs) => {
                for (id, content) in subs {
                    let blocks = yaml_blocks(content);
                    match blocks.as_slice() {
                        [yaml] => match text::parse_yaml_mapping(yaml) {
                            Ok(map) => {
                                step_from_value(&mut f, &mut steps, id.clone(), &Value::Object(map))
                            }
                            Err(_) => f.invalid(
                                "steps",
                                format!("step `{id}`: the yaml block is not a valid mapping"),
                            ),
                        },
                        [] => f.invalid("steps", format!("step `{id}` has no fenced `yaml` block")),
                        _ => f.invalid(
                            "steps",
                            format!("step `{id}` has more than one fenced `yaml` block"),
                        ),
                    }
                }
            }
        },
    }
    if steps.is_empty()
        && f.errors
            .iter()
            .all(|e| e.detail.as_deref() != Some("steps"))
    {
        f.missing("steps");
    }
    if steps.len() > MAX_WORKFLOW_STEPS {
        f.invalid(
            "steps",
            format!("{} steps, the limit is {MAX_WORKFLOW_STEPS}", steps.len()),
        );
    }
    // References: inputs must be declared, steps must come earlier.
    for (i, step) in steps.iter().enumerate() {
        let mut refs = Vec::new();
        collect_placeholders(&step.args, &mut refs);
        for r in refs {
            check_reference(&mut f, &r, &inputs, &steps[..i], &step.id);
        }
    }
    let returns = match &sections.returns {
        None => None,
        Some(content) => {
            match yaml_blocks(content)
                .first()
                .map(|y| text::parse_yaml_mapping(y))
            {
                Some(Ok(map)) => {
                    if let Some(from) = map.get("from").and_then(Value::as_str) {
                        let mut segs = from.split('.');
                        let ok = segs.next() == Some("steps")
                            && segs
                                .next()
                                .is_some_and(|id| steps.iter().any(|s| s.id == id))
                            && segs.next() == Some("result");
                        if !ok {
                            f.invalid("return", format!("`from: {from}` must be `steps.<id>.result[.path]` of a known step"));
                        }
                        Some(WorkflowReturn::From(from.to_owned()))
                    } else if let Some(v) = map.get("value") {
                        let mut refs = Vec::new();
                        collect_placeholders(v, &mut refs);
                        for r in refs {
                            check_reference(&mut f, &r, &inputs, &steps, "return");
                        }
                        Some(WorkflowReturn::Value(v.clone()))
                    } else {
                        f.invalid("return", "expected `from` or `value`");
                        None
                    }
                }
                _ => {
                    f.invalid("return", "`## Return` needs one fenced yaml mapping");
                    None
                }
            }
        }
    };
    let input_schema = params_schema(&inputs);
    let def = WorkflowDef {
        version,
        enabled,
        inputs,
        steps,
        returns,
        input_schema,
    };
    let errors = std::mem::take(&mut f.errors);
    let asset = make_asset(
        kind,
        path,
        bytes,
        name,
        description,
        doc,
        Registration::from_errors(errors.clone()),
        AssetDefinition::Workflow(def),
    );
    ParseResult {
        asset: Some(asset),
        errors,
    }
}

fn is_tool_name(s: &str) -> bool {
    // `[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*`, ≤128
    let seg_ok = |seg: &str| {
        !seg.is_empty()
            && seg
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
    };
    s.len() <= 128
        && s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && s.split('.').all(seg_ok)
}

fn step_from_value(f: &mut Fields<'_>, steps: &mut Vec<WorkflowStep>, id: String, v: &Value) {
    let Some(obj) = v.as_object() else {
        f.invalid("steps", format!("step `{id}`: expected a mapping"));
        return;
    };
    if !text::is_slug(&id) {
        f.invalid("steps", format!("step id `{id}` is not a slug"));
        return;
    }
    if steps.iter().any(|s| s.id == id) {
        f.invalid("steps", format!("step id `{id}` is used twice"));
        return;
    }
    for k in obj.keys() {
        if !matches!(
            k.as_str(),
            "id" | "tool" | "args" | "continue_on_error" | "continue-on-error"
        ) {
            f.invalid("steps", format!("step `{id}`: unknown key `{k}`"));
        }
    }
    let tool = match obj.get("tool").and_then(Value::as_str).map(str::trim) {
        Some(t) if is_tool_name(t) => t.to_owned(),
        Some(t) => {
            f.invalid("steps", format!("step `{id}`: `{t}` is not a tool name"));
            return;
        }
        None => {
            f.error(
                AssetErrorReason::MissingField,
                "steps",
                format!("step `{id}`: missing field `tool`"),
            );
            return;
        }
    };
    if tool.starts_with("workflow.run.") || tool.starts_with("agent.spawn.") {
        f.invalid(
            "steps",
            format!("step `{id}`: `{tool}` may not be called from a workflow"),
        );
    }
    let args = match obj.get("args") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            f.invalid("steps", format!("step `{id}`: `args` must be a mapping"));
            Value::Object(Map::new())
        }
    };
    let continue_on_error = match obj
        .get("continue_on_error")
        .or_else(|| obj.get("continue-on-error"))
    {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) if super::yaml11_bool(v).is_some() => super::yaml11_bool(v).unwrap_or(false),
        Some(_) => {
            f.invalid(
                "steps",
                format!("step `{id}`: `continue_on_error` must be a boolean"),
            );
            false
        }
    };
    steps.push(WorkflowStep {
        id,
        tool,
        args,
        continue_on_error,
    });
}

fn collect_placeholders(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.extend(
            Template::compile(s, false)
                .placeholders()
                .into_iter()
                .map(str::to_owned),
        ),
        Value::Array(a) => a.iter().for_each(|x| collect_placeholders(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_placeholders(x, out)),
        _ => {}
    }
}

fn check_reference(
    f: &mut Fields<'_>,
    r: &str,
    inputs: &[crate::model::Param],
    earlier: &[WorkflowStep],
    at: &str,
) {
    let mut segs = r.split('.');
    let ok = match (segs.next(), segs.next()) {
        (Some("inputs"), Some(name)) => inputs.iter().any(|p| p.name == name),
        (Some("steps"), Some(id)) => earlier.iter().any(|s| s.id == id),
        _ => false,
    };
    if !ok {
        f.invalid(
            "steps",
            format!(
                "`{at}`: placeholder `{{{{{r}}}}}` refers to no declared input or earlier step"
            ),
        );
    }
}

/// The `## Steps` subsections and the `## Return` section of a workflow body.
#[derive(Default)]
struct Sections {
    steps: Option<Vec<(String, String)>>,
    returns: Option<String>,
}

fn split_sections(body: &str) -> Sections {
    #[derive(PartialEq)]
    enum In {
        Other,
        Steps,
        Return,
    }
    let mut out = Sections::default();
    let mut state = In::Other;
    let mut in_fence = false;
    let mut current: Option<(String, String)> = None;
    let mut steps: Vec<(String, String)> = Vec::new();
    let mut returns = String::new();
    for line in body.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_fence = !in_fence;
        } else if !in_fence {
            if let Some(h) = line.strip_prefix("## ") {
                if let Some(c) = current.take() {
                    steps.push(c);
                }
                state = match h
                    .trim()
                    .trim_end_matches('#')
                    .trim()
                    .to_ascii_lowercase()
                    .as_str()
                {
                    "steps" => {
                        out.steps.get_or_insert_with(Vec::new);
                        In::Steps
                    }
                    "return" | "returns" => {
                        out.returns.get_or_insert_with(String::new);
                        In::Return
                    }
                    _ => In::Other,
                };
                continue;
            }
            if line.starts_with("# ") {
                if let Some(c) = current.take() {
                    steps.push(c);
                }
                state = In::Other;
                continue;
            }
            if state == In::Steps
                && let Some(h) = line.strip_prefix("### ")
            {
                if let Some(c) = current.take() {
                    steps.push(c);
                }
                let id = h
                    .trim()
                    .trim_end_matches('#')
                    .trim()
                    .trim_matches('`')
                    .to_owned();
                current = Some((id, String::new()));
                continue;
            }
        }
        match state {
            In::Steps => {
                if let Some((_, c)) = current.as_mut() {
                    c.push_str(line);
                    c.push('\n');
                }
            }
            In::Return => {
                returns.push_str(line);
                returns.push('\n');
            }
            In::Other => {}
        }
    }
    if let Some(c) = current.take() {
        steps.push(c);
    }
    if let Some(s) = out.steps.as_mut() {
        *s = steps;
    }
    if out.returns.is_some() {
        out.returns = Some(returns);
    }
    out
}

/// The contents of fenced code blocks whose info string is `yaml` or `yml`.
fn yaml_blocks(content: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None; // (fence, text)
    for line in content.lines() {
        let t = line.trim_start();
        match cur.as_mut() {
            None => {
                let fence = if t.starts_with("```") {
                    "```"
                } else if t.starts_with("~~~") {
                    "~~~"
                } else {
                    continue;
                };
                let info = t
                    .trim_start_matches(fence.chars().next().unwrap_or('`'))
                    .trim()
                    .to_ascii_lowercase();
                if info == "yaml" || info == "yml" {
                    cur = Some((fence.to_owned(), String::new()));
                } else {
                    // A non-yaml fence: skip to its end.
                    cur = Some((fence.to_owned(), "\u{0}skip".to_owned()));
                }
            }
            Some((fence, text)) => {
                if t.starts_with(fence.as_str())
                    && t.trim_start_matches(fence.chars().next().unwrap_or('`'))
                        .trim()
                        .is_empty()
                {
                    let (_, text) = cur.take().unwrap_or_default();
                    if !text.starts_with('\u{0}') {
                        out.push(text);
                    }
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_blocks() {
        let body = "# T\n## Steps\n### a\ntext\n```yaml\ntool: fs.read\n```\n### b\n```bash\nx\n```\n## Return\n```yaml\nfrom: steps.a.result\n```\n";
        let s = split_sections(body);
        let steps = s.steps.unwrap_or_default();
        assert_eq!(steps.len(), 2);
        assert_eq!(yaml_blocks(&steps[0].1), vec!["tool: fs.read\n".to_owned()]);
        assert!(yaml_blocks(&steps[1].1).is_empty());
        assert_eq!(yaml_blocks(&s.returns.unwrap_or_default()).len(), 1);
    }

    #[test]
    fn tool_names() {
        assert!(is_tool_name("fs.read"));
        assert!(is_tool_name("command.run.todos"));
        assert!(!is_tool_name("Fs.read"));
        assert!(!is_tool_name("fs..read"));
    }
}
