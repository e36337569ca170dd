//! Commands: front matter fields, typed parameters and the `command.run.<name>` input
//! schema (SPEC §7.3, §10.2). Also shared by workflows: [`parse_params`] and
//! [`params_schema`].

use std::path::Path;

use serde_json::{Map, Value, json};

use super::{Fields, ParseResult, make_asset, read_document};
use crate::kind::AssetKind;
use crate::model::{AssetDefinition, CommandDef, CommandExec, Param, ParamType, Registration};
use crate::template::Template;
use crate::text;

/// Parameter names a command may not declare (they are added to every command schema).
const RESERVED_PARAMS: &[&str] = &["env", "timeout_ms"];

/// Parses a command. Field errors leave the command listed with an invalid registration.
pub fn parse_command(path: &Path, bytes: &[u8]) -> ParseResult {
    let kind = AssetKind::Command;
    let (doc, fm_error) = match read_document(kind, path, bytes) {
        Ok(d) => (d, None),
        Err(e) if e.reason == crate::error::AssetErrorReason::InvalidFrontMatter => {
            // Still list it (name from the stem) so operators see why it is not a tool.
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
    let description = f.string(&["description"]).unwrap_or_default();
    let argument_hint = match f.get(&["argument-hint", "argument_hint"]) {
        Some((_, Value::Array(items))) => Some(
            items
                .iter()
                .map(|v| match v {
                    Value::String(s) => format!("[{s}]"),
                    other => format!("[{other}]"),
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => f.string(&["argument-hint", "argument_hint"]),
    };
    let allowed_tools = f.tool_list(&["allowed-tools", "allowed_tools"]);
    let model = f.string(&["model"]);
    let has_params = f
        .get(&["params", "parameters"])
        .is_some_and(|(_, v)| !v.is_null());
    let mut params = parse_params(&mut f, &["params", "parameters"], true);
    for p in &params {
        if RESERVED_PARAMS.contains(&p.name.as_str()) {
            f.invalid("params", format!("parameter `{}` is reserved", p.name));
        }
    }
    let exec = match (f.get(&["run"]), f.get(&["shell"])) {
        (Some((_, r)), Some((_, s))) if !r.is_null() && !s.is_null() => {
            f.invalid("run", "give either `run` or `shell`, not both");
            None
        }
        (Some((_, Value::Array(items))), _) if !items.is_empty() => {
            let mut argv = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => argv.push(Template::compile(s, false)),
                    Value::Number(_) | Value::Bool(_) => {
                        argv.push(Template::compile(&item.to_string(), false))
                    }
                    _ => f.invalid("run", "expected a list of strings"),
                }
            }
            Some(CommandExec::Run { argv })
        }
        (Some((_, Value::Null)), _) | (None, _) => match f.string(&["shell"]) {
            Some(s) if !s.is_empty() => Some(CommandExec::Shell {
                script: Template::compile(&s, false),
            }),
            Some(_) => {
                f.invalid("shell", "expected a non-empty string");
                None
            }
            None => None,
        },
        (Some(_), _) => {
            f.invalid(
                "run",
                "expected a non-empty list of argv strings (use `shell` for a string)",
            );
            None
        }
    };
    let cwd = f.string(&["cwd"]).map(|c| Template::compile(&c, false));
    let timeout_ms = f.positive_int(&["timeout_ms", "timeout-ms"]);
    let prompt_uses_args = Template::compile(&doc.body, true).uses_claude_args();
    let implicit_arguments = !has_params && (prompt_uses_args || argument_hint.is_some());
    if implicit_arguments {
        params.push(Param {
            name: "arguments".into(),
            param_type: ParamType::String,
            required: false,
            description: argument_hint
                .clone()
                .or_else(|| Some("command arguments".into())),
            default: None,
            enum_values: None,
        });
    }
    let prompt = Template::compile(&doc.body, implicit_arguments);
    // Executable templates may only use declared parameters.
    let declared: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    let mut used: Vec<(&str, String)> = Vec::new();
    match &exec {
        Some(CommandExec::Run { argv }) => used.extend(
            argv.iter()
                .flat_map(|t| t.placeholders())
                .map(|p| ("run", p.to_owned())),
        ),
        Some(CommandExec::Shell { script }) => used.extend(
            script
                .placeholders()
                .into_iter()
                .map(|p| ("shell", p.to_owned())),
        ),
        None => {}
    }
    if let Some(c) = &cwd {
        used.extend(c.placeholders().into_iter().map(|p| ("cwd", p.to_owned())));
    }
    for (field, p) in used {
        if !declared.contains(&p.as_str()) {
            f.invalid(
                field,
                format!("placeholder `{{{{{p}}}}}` is not a declared parameter"),
            );
        }
    }
    let mut schema = params_schema(&params);
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "env".into(),
            json!({"type": "object", "additionalProperties": {"type": "string"},
                   "description": "extra environment variables", "x-codeward": "env"}),
        );
        props.insert(
            "timeout_ms".into(),
            json!({"type": "integer", "minimum": 1, "description": "timeout in milliseconds (can only shorten)"}),
        );
    }
    let def = CommandDef {
        argument_hint,
        allowed_tools,
        model,
        params,
        exec,
        cwd,
        timeout_ms,
        prompt,
        implicit_arguments,
        input_schema: schema,
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
        AssetDefinition::Command(def),
    );
    ParseResult {
        asset: Some(asset),
        errors,
    }
}

fn is_param_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && s.len() <= 64
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Reads a parameter list under `keys`: a map `name → {type, required, description|doc,
/// default, enum}` (or `name → "type"`), or a list of maps with `name`. Maps come out sorted
/// by name, lists in file order.
pub(crate) fn parse_params(f: &mut Fields<'_>, keys: &[&str], map_sorted: bool) -> Vec<Param> {
    let Some((key, v)) = f.get(keys) else {
        return Vec::new();
    };
    let entries: Vec<(String, Value)> = match v {
        Value::Null => return Vec::new(),
        Value::Object(m) => {
            let mut e: Vec<(String, Value)> =
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            if map_sorted {
                e.sort_by(|a, b| a.0.cmp(&b.0));
            }
            e
        }
        Value::Array(items) => {
            let mut e = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.get("name").and_then(Value::as_str) {
                    Some(n) => e.push((n.to_owned(), item.clone())),
                    None => f.invalid(key, format!("entry {i} has no `name`")),
                }
            }
            e
        }
        _ => {
            f.invalid(key, "expected a map or a list");
            return Vec::new();
        }
    };
    let mut out: Vec<Param> = Vec::new();
    for (name, spec) in entries {
        if !is_param_name(&name) {
            f.invalid(key, format!("`{name}` is not a valid parameter name"));
            continue;
        }
        if out.iter().any(|p| p.name == name) {
            f.invalid(key, format!("parameter `{name}` is declared twice"));
            continue;
        }
        let spec = match spec {
            Value::String(t) => json!({ "type": t }),
            Value::Null => json!({}),
            other => other,
        };
        let Some(obj) = spec.as_object() else {
            f.invalid(
                key,
                format!("parameter `{name}`: expected a map or a type name"),
            );
            continue;
        };
        let param_type = match obj.get("type") {
            None | Some(Value::Null) => ParamType::String,
            Some(Value::String(t)) => match ParamType::parse(t) {
                Some(t) => t,
                None => {
                    f.invalid(key, format!("parameter `{name}`: unknown type `{t}`"));
                    continue;
                }
            },
            Some(_) => {
                f.invalid(key, format!("parameter `{name}`: `type` must be a string"));
                continue;
            }
        };
        let required = match obj.get("required") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) if super::yaml11_bool(v).is_some() => super::yaml11_bool(v).unwrap_or(false),
            Some(_) => {
                f.invalid(
                    key,
                    format!("parameter `{name}`: `required` must be a boolean"),
                );
                false
            }
        };
        let description = match obj.get("description").or_else(|| obj.get("doc")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(_) => {
                f.invalid(
                    key,
                    format!("parameter `{name}`: `description` must be a string"),
                );
                None
            }
        };
        let default = obj.get("default").filter(|v| !v.is_null()).cloned();
        let default = match default {
            Some(d) if !param_type.accepts(&d) => {
                // YAML users write `default: 10` for strings too; coerce scalars to strings.
                if param_type == ParamType::String && (d.is_number() || d.is_boolean()) {
                    Some(Value::String(d.to_string()))
                } else {
                    f.invalid(
                        key,
                        format!(
                            "parameter `{name}`: default is not a {}",
                            param_type.as_str()
                        ),
                    );
                    None
                }
            }
            d => d,
        };
        let enum_values = match obj.get("enum") {
            None | Some(Value::Null) => None,
            Some(Value::Array(vals)) if !vals.is_empty() => {
                if let Some(bad) = vals.iter().find(|v| !param_type.accepts(v)) {
                    f.invalid(
                        key,
                        format!(
                            "parameter `{name}`: enum value {bad} is not a {}",
                            param_type.as_str()
                        ),
                    );
                }
                Some(vals.clone())
            }
            Some(_) => {
                f.invalid(
                    key,
                    format!("parameter `{name}`: `enum` must be a non-empty list"),
                );
                None
            }
        };
        out.push(Param {
            name,
            param_type,
            required,
            description,
            default,
            enum_values,
        });
    }
    out
}

/// The JSON Schema of a parameter list: one property per parameter, `required` sorted,
/// `additionalProperties: false`.
pub(crate) fn params_schema(params: &[Param]) -> Value {
    let mut props = Map::new();
    let mut required: Vec<&str> = Vec::new();
    for p in params {
        let mut prop = Map::new();
        prop.insert("type".into(), json!(p.param_type.as_str()));
        if let Some(d) = &p.description {
            prop.insert("description".into(), json!(d));
        }
        if let Some(d) = &p.default {
            prop.insert("default".into(), d.clone());
        }
        if let Some(e) = &p.enum_values {
            prop.insert("enum".into(), Value::Array(e.clone()));
        }
        props.insert(p.name.clone(), Value::Object(prop));
        if p.required {
            required.push(&p.name);
        }
    }
    required.sort_unstable();
    json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    })
}
