//! The per-tool compiled policy ([`ToolPolicy`]: JSON Schema validator + declared argument
//! locations, compiled once per tool spec) and the borrowed per-call view ([`ToolRequest`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::{SchemaError, SchemaViolation};
use crate::paths::Access;

/// Maximum schema errors reported by `invalid_tool_args`.
pub const MAX_SCHEMA_ERRORS: usize = 20;

/// Who issued the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CallSource {
    /// The Rust API (`Engine::run_tool`).
    #[default]
    Api,
    /// The model loop (must name an offered tool).
    Model,
    /// A workflow step.
    Workflow,
    /// A sub-agent.
    Subagent,
    /// The HTTP adapter.
    Http,
    /// The MCP server.
    Mcp,
    /// The CLI.
    Cli,
}

/// An argument kind declared with `x-codeward`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgKind {
    /// A filesystem path.
    Path,
    /// A URL.
    Url,
    /// A host (`host[:port]`).
    Host,
    /// A command: argv array or shell string.
    Command,
    /// An env object (string → string).
    Env,
}

impl ArgKind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "path" => Self::Path,
            "url" => Self::Url,
            "host" => Self::Host,
            "command" => Self::Command,
            "env" => Self::Env,
            _ => return None,
        })
    }
}

/// Declared locations of a schema, as a tree mirroring the argument shape.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeclNode {
    pub mark: Option<(ArgKind, Access)>,
    pub props: BTreeMap<String, DeclNode>,
    pub items: Option<Box<DeclNode>>,
    pub additional: Option<Box<DeclNode>>,
}

const MAX_REF_DEPTH: usize = 32;
/// Maximum schema nodes visited while collecting declared locations.
const MAX_SCHEMA_NODES: usize = 10_000;

impl DeclNode {
    fn collect(&mut self, schema: &Value, root: &Value, depth: usize, budget: &mut usize) {
        let Value::Object(s) = schema else { return };
        // Recursive `$ref`s branch: bound both depth and total visits so a hostile asset
        // schema cannot make compile exponential.
        if depth > MAX_REF_DEPTH || *budget == 0 {
            return;
        }
        *budget -= 1;
        if let Some(kind) = s
            .get("x-codeward")
            .and_then(Value::as_str)
            .and_then(ArgKind::parse)
        {
            let access = if s.get("x-codeward-access").and_then(Value::as_str) == Some("write") {
                Access::Write
            } else {
                Access::Read
            };
            self.mark = Some(match self.mark {
                Some((k, a)) => (k, if a == Access::Write { a } else { access }),
                None => (kind, access),
            });
        }
        if let Some(r) = s.get("$ref").and_then(Value::as_str)
            && let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p))
        {
            self.collect(target, root, depth + 1, budget);
        }
        if let Some(Value::Object(props)) = s.get("properties") {
            for (k, sub) in props {
                self.props
                    .entry(k.clone())
                    .or_default()
                    .collect(sub, root, depth + 1, budget);
            }
        }
        for key in ["items", "additionalItems", "contains"] {
            match s.get(key) {
                Some(sub @ Value::Object(_)) => {
                    self.items.get_or_insert_with(Box::default).collect(
                        sub,
                        root,
                        depth + 1,
                        budget,
                    );
                }
                Some(Value::Array(subs)) => {
                    for sub in subs {
                        self.items.get_or_insert_with(Box::default).collect(
                            sub,
                            root,
                            depth + 1,
                            budget,
                        );
                    }
                }
                _ => {}
            }
        }
        if let Some(Value::Array(subs)) = s.get("prefixItems") {
            for sub in subs {
                self.items
                    .get_or_insert_with(Box::default)
                    .collect(sub, root, depth + 1, budget);
            }
        }
        if let Some(sub @ Value::Object(_)) = s.get("additionalProperties") {
            self.additional
                .get_or_insert_with(Box::default)
                .collect(sub, root, depth + 1, budget);
        }
        if let Some(Value::Object(pp)) = s.get("patternProperties") {
            for sub in pp.values() {
                self.additional.get_or_insert_with(Box::default).collect(
                    sub,
                    root,
                    depth + 1,
                    budget,
                );
            }
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(subs)) = s.get(key) {
                for sub in subs {
                    self.collect(sub, root, depth + 1, budget);
                }
            }
        }
        for key in ["then", "else"] {
            if let Some(sub) = s.get(key) {
                self.collect(sub, root, depth + 1, budget);
            }
        }
    }

    fn any(&self, f: &dyn Fn(&DeclNode) -> bool) -> bool {
        f(self)
            || self.props.values().any(|n| n.any(f))
            || self.items.as_ref().is_some_and(|n| n.any(f))
            || self.additional.as_ref().is_some_and(|n| n.any(f))
    }

    /// The node for a property (explicit or `additionalProperties`).
    pub(crate) fn child(&self, key: &str) -> Option<&DeclNode> {
        self.props.get(key).or(self.additional.as_deref())
    }
}

/// The policy view of one tool spec, compiled once (per catalog generation) and reused.
#[derive(Debug, Clone)]
pub struct ToolPolicy {
    name: String,
    validator: jsonschema::Validator,
    pub(crate) decl: DeclNode,
    complete: bool,
    network_capable: bool,
    command: bool,
    declared: bool,
}

impl ToolPolicy {
    /// Compiles `input_schema` (draft 2020-12, formats validated, linear-time regex, no remote
    /// `$ref`) and collects the declared `x-codeward` locations. `x-codeward-complete` is
    /// honoured only when `trusted` (built-ins and provider tools; never asset schemas).
    pub fn compile(
        name: &str,
        input_schema: &Value,
        trusted: bool,
        network_capable: bool,
    ) -> Result<ToolPolicy, SchemaError> {
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(input_schema)
            .map_err(|e| SchemaError {
                tool: name.to_owned(),
                message: e.to_string(),
            })?;
        let mut decl = DeclNode::default();
        decl.collect(input_schema, input_schema, 0, &mut { MAX_SCHEMA_NODES });
        let complete = trusted
            && input_schema
                .get("x-codeward-complete")
                .and_then(Value::as_bool)
                == Some(true);
        let command = decl.any(&|n| matches!(n.mark, Some((ArgKind::Command, _))));
        let decl_any = decl.any(&|n| n.mark.is_some());
        Ok(ToolPolicy {
            name: name.to_owned(),
            validator,
            decl,
            complete,
            network_capable,
            command,
            declared: decl_any,
        })
    }

    /// Tool name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether only declared locations are inspected (trusted `x-codeward-complete`).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Whether the schema declares any `x-codeward` location.
    pub fn has_declared_locations(&self) -> bool {
        self.declared
    }

    /// Whether the tool can reach the network (`safety.network_capable`).
    pub fn is_network_capable(&self) -> bool {
        self.network_capable
    }

    /// Whether the schema declares a `command` location (command areas apply).
    pub fn is_command(&self) -> bool {
        self.command
    }

    /// Marks the tool as a command tool even without a declared `command` location.
    pub fn with_command(mut self, command: bool) -> Self {
        self.command = command;
        self
    }

    /// §4 step 4: validates `args`; at most [`MAX_SCHEMA_ERRORS`] violations.
    pub fn validate(&self, args: &Value) -> Result<(), Vec<SchemaViolation>> {
        if self.validator.is_valid(args) {
            return Ok(());
        }
        let errors: Vec<SchemaViolation> = self
            .validator
            .iter_errors(args)
            .take(MAX_SCHEMA_ERRORS)
            .map(|e| SchemaViolation {
                instance_path: e.instance_path().as_str().to_owned(),
                schema_path: e.schema_path().as_str().to_owned(),
                message: crate::decision::short(&crate::secrets::redact_str(&e.to_string()), 256),
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// One tool call as policy sees it (borrowed; build with [`ToolRequest::new`] and set fields).
#[derive(Debug, Clone, Copy)]
pub struct ToolRequest<'a> {
    /// The compiled tool.
    pub tool: &'a ToolPolicy,
    /// The arguments (an object; `null` must be normalized to `{}` by the caller).
    pub args: &'a Value,
    /// Who issued the call.
    pub source: CallSource,
    /// The conversation's (or sub-agent template's) `allow_tools`; narrows, never widens.
    pub conversation_allow_tools: Option<&'a [String]>,
    /// Tools offered to the model in this step (required for [`CallSource::Model`]).
    pub offered_tools: Option<&'a [String]>,
    /// This call's scratch dir (command tools).
    pub scratch_dir: Option<&'a Path>,
    /// The OS layer blocks TCP connects of this command (Landlock network): with egress
    /// `deny`, a network-capable tool is then not denied outright, only its URL/host arguments.
    pub os_network_enforced: bool,
}

impl<'a> ToolRequest<'a> {
    /// A request from the Rust API with no conversation scope.
    pub fn new(tool: &'a ToolPolicy, args: &'a Value) -> Self {
        Self {
            tool,
            args,
            source: CallSource::Api,
            conversation_allow_tools: None,
            offered_tools: None,
            scratch_dir: None,
            os_network_enforced: false,
        }
    }
}
