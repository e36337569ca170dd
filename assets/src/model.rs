//! The asset data model: records ([`Asset`]), their parsed definitions per kind, summaries,
//! search hits and tool registrations. Plain owned data; every type is
//! `Serialize + Deserialize + Clone` and serializes as snake_case JSON.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::AssetError;
use crate::kind::AssetKind;
use crate::template::Template;

/// Whether an asset is usable as a tool (commands, workflows) — skills and graph nodes are
/// always `valid` once loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    /// Loaded without errors.
    Valid,
    /// Listed so operators can see why, but not a tool.
    Invalid,
}

/// Registration status plus the errors that made it invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Valid or invalid.
    pub status: RegistrationStatus,
    /// Why it is invalid (empty when valid).
    #[serde(default)]
    pub errors: Vec<AssetError>,
}

impl Registration {
    /// A valid registration.
    pub fn valid() -> Self {
        Self {
            status: RegistrationStatus::Valid,
            errors: Vec::new(),
        }
    }

    /// Valid when `errors` is empty, else invalid.
    pub fn from_errors(errors: Vec<AssetError>) -> Self {
        let status = if errors.is_empty() {
            RegistrationStatus::Valid
        } else {
            RegistrationStatus::Invalid
        };
        Self { status, errors }
    }

    /// True when valid.
    pub fn is_valid(&self) -> bool {
        self.status == RegistrationStatus::Valid
    }
}

/// One loaded asset file (SPEC §10.1 record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// The kind.
    pub kind: AssetKind,
    /// The name (a slug for skills, commands and workflows; the file stem for graph nodes).
    pub name: String,
    /// Path relative to the project root.
    pub path: PathBuf,
    /// The description (front matter `description`, or the title for graph nodes; may be empty).
    pub description: String,
    /// The whole front matter, unknown keys included.
    pub front_matter: Map<String, Value>,
    /// The markdown body after the front matter.
    pub body: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the file bytes.
    pub sha256: String,
    /// Modification time, RFC 3339 UTC with milliseconds, when known.
    pub modified_at: Option<String>,
    /// Tool registration status (always valid for skills and graph nodes).
    pub registration: Registration,
    /// The kind-specific parsed definition.
    pub definition: AssetDefinition,
}

impl Asset {
    /// The summary shown by `list`.
    pub fn summary(&self) -> AssetSummary {
        AssetSummary {
            kind: self.kind,
            name: self.name.clone(),
            path: self.path.clone(),
            description: self.description.clone(),
            size_bytes: self.size_bytes,
            sha256: self.sha256.clone(),
            modified_at: self.modified_at.clone(),
            tool_name: self.tool_name(),
            registration: self.registration.clone(),
        }
    }

    /// `command.run.<name>` / `workflow.run.<name>` for commands and workflows.
    pub fn tool_name(&self) -> Option<String> {
        match self.kind {
            AssetKind::Command => Some(format!("command.run.{}", self.name)),
            AssetKind::Workflow => Some(format!("workflow.run.{}", self.name)),
            AssetKind::Skill | AssetKind::SkillGraph => None,
        }
    }
}

/// What `list` returns per asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetSummary {
    /// The kind.
    pub kind: AssetKind,
    /// The name.
    pub name: String,
    /// Path relative to the project root.
    pub path: PathBuf,
    /// The description.
    pub description: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the file bytes.
    pub sha256: String,
    /// Modification time, when known.
    pub modified_at: Option<String>,
    /// The tool this asset provides (commands and workflows).
    pub tool_name: Option<String>,
    /// Registration status and errors.
    pub registration: Registration,
}

/// One search result (SPEC §10.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetHit {
    /// The kind.
    pub kind: AssetKind,
    /// The name (node id for the skill graph).
    pub name: String,
    /// Path relative to the project root.
    pub path: PathBuf,
    /// The description (node title for the skill graph).
    pub description: String,
    /// The score: 8 for an exact name match, +4 per term in the name, +2 per term in the
    /// description, +1 per term in the path or body.
    pub score: u32,
    /// Up to 200 characters of the body around the first body match (empty when none).
    pub snippet: String,
}

/// The kind-specific part of an [`Asset`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetDefinition {
    /// A skill.
    Skill(SkillDef),
    /// A command.
    Command(CommandDef),
    /// A workflow.
    Workflow(WorkflowDef),
    /// One skill-graph node with its edges.
    GraphNode(GraphNode),
    /// The whole skill graph (`get(skill_graph, "snapshot")`).
    Graph(SkillGraph),
}

/// Which skills layout a skill came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillLayout {
    /// `skills/**/<name>.md`.
    Flat,
    /// `skills/<name>/SKILL.md` (Agent Skills).
    AgentSkills,
}

/// A skill (SPEC §10.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillDef {
    /// Flat file or Agent Skills directory.
    pub layout: SkillLayout,
    /// Front matter `license`.
    pub license: Option<String>,
    /// Front matter `allowed-tools` (list, or a comma/space-separated string).
    pub allowed_tools: Vec<String>,
    /// Front matter `metadata`.
    pub metadata: Option<Value>,
    /// Agent Skills only: the other files of the skill directory, relative to it, sorted.
    /// Listed, never loaded.
    pub resources: Vec<PathBuf>,
}

/// A command/workflow parameter type (aliases: float→number, map→object, list→array,
/// atom→string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// JSON string.
    String,
    /// JSON integer.
    Integer,
    /// JSON number.
    Number,
    /// JSON boolean.
    Boolean,
    /// JSON object.
    Object,
    /// JSON array.
    Array,
}

impl ParamType {
    /// Parses a type name or alias (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "string" | "str" | "atom" | "text" => Self::String,
            "integer" | "int" => Self::Integer,
            "number" | "float" => Self::Number,
            "boolean" | "bool" => Self::Boolean,
            "object" | "map" => Self::Object,
            "array" | "list" => Self::Array,
            _ => return None,
        })
    }

    /// The JSON Schema type name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Object => "object",
            Self::Array => "array",
        }
    }

    /// True when `v` has this type.
    pub fn accepts(self, v: &Value) -> bool {
        match self {
            Self::String => v.is_string(),
            Self::Integer => v.is_i64() || v.is_u64(),
            Self::Number => v.is_number(),
            Self::Boolean => v.is_boolean(),
            Self::Object => v.is_object(),
            Self::Array => v.is_array(),
        }
    }
}

/// One command parameter or workflow input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// The parameter name.
    pub name: String,
    /// The type.
    #[serde(rename = "type")]
    pub param_type: ParamType,
    /// Whether the caller must give it.
    pub required: bool,
    /// Its documentation (`description`, alias `doc`).
    pub description: Option<String>,
    /// The default value.
    pub default: Option<Value>,
    /// Allowed values.
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<Value>>,
}

/// How an executable command runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum CommandExec {
    /// `run`: an argv template; `{{param}}` is substituted per element, no word splitting.
    Run {
        /// One template per argv element.
        argv: Vec<Template>,
    },
    /// `shell`: a shell template; parameters are inserted single-quoted.
    Shell {
        /// The script template.
        script: Template,
    },
}

/// A command (SPEC §10.2, §7.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandDef {
    /// Front matter `argument-hint`.
    pub argument_hint: Option<String>,
    /// Front matter `allowed-tools`.
    pub allowed_tools: Vec<String>,
    /// Front matter `model`.
    pub model: Option<String>,
    /// Parameters, sorted by name.
    pub params: Vec<Param>,
    /// `run`/`shell` when executable; `None` for a prompt command.
    pub exec: Option<CommandExec>,
    /// Front matter `cwd` (a template).
    pub cwd: Option<Template>,
    /// Front matter `timeout_ms`.
    pub timeout_ms: Option<u64>,
    /// The body as a prompt template.
    pub prompt: Template,
    /// True when the command declares no `params` but uses Claude-Code style `$ARGUMENTS` /
    /// `$1`… or an `argument-hint`: an optional string parameter `arguments` is synthesised.
    pub implicit_arguments: bool,
    /// The `command.run.<name>` input schema.
    pub input_schema: Value,
}

/// One workflow step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowStep {
    /// The step id (a slug, unique in the workflow).
    pub id: String,
    /// The tool to call.
    pub tool: String,
    /// The argument template (an object; strings may hold `{{…}}` placeholders).
    pub args: Value,
    /// Keep going when this step fails.
    pub continue_on_error: bool,
}

/// Where a workflow's result comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowReturn {
    /// `steps.<id>.result[.path]`.
    From(String),
    /// A value template.
    Value(Value),
}

/// A workflow (SPEC §10.2, §7.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowDef {
    /// `version`, default `0.0.0`.
    pub version: String,
    /// `enabled`, default true; a disabled workflow is not a tool.
    pub enabled: bool,
    /// Declared inputs, in file order.
    pub inputs: Vec<Param>,
    /// Steps, in file order.
    pub steps: Vec<WorkflowStep>,
    /// The `## Return` block, if any.
    pub returns: Option<WorkflowReturn>,
    /// The `workflow.run.<name>` input schema.
    pub input_schema: Value,
}

/// A skill-graph edge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GraphEdge {
    /// Source node id.
    pub from: String,
    /// Target node id (the raw link target when dangling).
    pub to: String,
    /// `[[target|label]]` label.
    pub label: Option<String>,
    /// True when no node has this id.
    pub dangling: bool,
}

/// One skill-graph node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphNode {
    /// The node id (file stem).
    pub id: String,
    /// Front matter `title`, else the first `# ` heading, else the id.
    pub title: String,
    /// Path relative to the project root.
    pub path: PathBuf,
    /// Outgoing edges, sorted.
    pub edges: Vec<GraphEdge>,
    /// Ids of nodes linking here, sorted.
    pub backlinks: Vec<String>,
}

/// A node as listed in the whole graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphNodeSummary {
    /// The node id.
    pub id: String,
    /// The title.
    pub title: String,
    /// Path relative to the project root.
    pub path: PathBuf,
}

/// The whole skill graph.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SkillGraph {
    /// Nodes sorted by id.
    pub nodes: Vec<GraphNodeSummary>,
    /// Edges de-duplicated by (from, to) and sorted.
    pub edges: Vec<GraphEdge>,
}

/// What kind of tool an asset provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetToolKind {
    /// `command.run.<name>`.
    AssetCommand,
    /// `workflow.run.<name>`.
    AssetWorkflow,
}

/// The tool view of a command or workflow, for the runtime's catalog (SPEC §7.1, §7.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetTool {
    /// `command.run.<name>` or `workflow.run.<name>`.
    pub tool_name: String,
    /// Command or workflow.
    pub kind: AssetToolKind,
    /// The asset name.
    pub asset_name: String,
    /// Path relative to the project root.
    pub path: PathBuf,
    /// Tool description (the asset description, else the first body line).
    pub description: String,
    /// The input JSON Schema (`{"type":"object"}` fallback for an invalid asset).
    pub input_schema: Value,
    /// Commands with `run`/`shell`; always true for workflows.
    pub executable: bool,
    /// Hint: executable commands, and workflows with a network-capable step tool
    /// (`command.run*`, `http.fetch`, unknown non-built-in tools).
    pub network_capable: bool,
    /// False for disabled workflows.
    pub enabled: bool,
    /// Registration status and errors; an invalid asset is listed but is not a tool.
    pub registration: Registration,
}

impl AssetTool {
    /// True when the runtime should register it as a callable tool.
    pub fn is_callable(&self) -> bool {
        self.enabled && self.registration.is_valid()
    }
}
