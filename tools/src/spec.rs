//! Tool specs (SPEC §7.1) and the built-in catalog: each built-in declares its name,
//! description, input schema (derived with schemars from the same structs the tool
//! deserializes, with `x-codeward` marks, `x-codeward-complete` and
//! `additionalProperties: false`), output schema and safety flags.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fs::{delete, edit, list, mv, read, stat, write};
use crate::{http, search};

/// A tool as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Dotted tool name (`fs.read`).
    pub name: String,
    /// What the tool does, for models and humans.
    pub description: String,
    /// JSON Schema (draft 2020-12) of the arguments.
    pub input_schema: Value,
    /// JSON Schema of the result.
    pub output_schema: Value,
    /// Safety flags.
    pub safety: Safety,
    /// Where the tool comes from.
    pub kind: ToolKind,
    /// Offered to models.
    pub llm_exposed: bool,
    /// How calls run by default.
    pub default_run_mode: RunMode,
    /// Origin (`builtin`, an asset path, a provider name).
    pub source: String,
    /// Whether the registration is usable.
    pub registration: Registration,
}

/// Safety flags of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Safety {
    /// All filesystem and process effects are confined by policy and the OS sandbox.
    pub sandboxed: bool,
    /// The tool can reach the network (subject to egress policy).
    pub network_capable: bool,
}

/// Where a tool comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    /// Built into codeward.
    Builtin,
    /// A command asset.
    AssetCommand,
    /// A workflow asset.
    AssetWorkflow,
    /// `agent.spawn.<template>`.
    SubagentSpawn,
    /// A `ToolProvider`.
    Provider,
}

/// How a call runs by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// The caller waits for the result.
    Sync,
    /// The call runs in the background.
    Async,
}

/// Validity of a tool registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// `valid` or `invalid`.
    pub status: RegistrationStatus,
    /// Why it is invalid.
    pub errors: Vec<String>,
}

/// `valid` or `invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    /// Usable.
    Valid,
    /// Listed, not callable by models.
    Invalid,
}

/// Input of `command.run` (schema only; `command::run` executes it).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend(
    "x-codeward-complete" = true,
    "oneOf" = [{ "required": ["argv"] }, { "required": ["command"] }]
))]
pub struct CommandRunArgs {
    /// Program and arguments; a bare `argv[0]` is looked up on `command_path`.
    #[serde(default)]
    #[schemars(extend("x-codeward" = "command"), length(min = 1))]
    pub argv: Option<Vec<String>>,
    /// Shell command line, run as `command_shell -c`.
    #[serde(default)]
    #[schemars(extend("x-codeward" = "command"), length(min = 1))]
    pub command: Option<String>,
    /// Working directory.
    #[serde(default)]
    #[schemars(extend("x-codeward" = "path"))]
    pub cwd: Option<String>,
    /// Extra environment variables (subject to `tool_env_allowlist`).
    #[serde(default)]
    #[schemars(extend("x-codeward" = "env"))]
    pub env: Option<BTreeMap<String, String>>,
    /// Data written to standard input.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Timeout for this command.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
}

/// Result of `command.run` (schema only).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct CommandRunResult {
    /// Exit code, when the process exited.
    pub exit_code: Option<i32>,
    /// Terminating signal, when killed by one.
    pub signal: Option<i32>,
    /// Captured standard output.
    pub stdout: String,
    /// Captured standard error.
    pub stderr: String,
    /// `stdout` was cut.
    pub stdout_truncated: bool,
    /// `stderr` was cut.
    pub stderr_truncated: bool,
    /// Bytes dropped from both streams.
    pub omitted_bytes: u64,
    /// Wall time.
    pub duration_ms: u64,
    /// Processes killed when the tree was torn down.
    pub terminated_process_count: u64,
    /// Which OS sandbox layers were in force.
    pub os_sandbox: Value,
}

fn schema<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null)
}

fn builtin<I: JsonSchema, O: JsonSchema>(name: &str, description: &str, network: bool) -> ToolSpec {
    ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        input_schema: schema::<I>(),
        output_schema: schema::<O>(),
        safety: Safety {
            sandboxed: true,
            network_capable: network,
        },
        kind: ToolKind::Builtin,
        llm_exposed: true,
        default_run_mode: RunMode::Sync,
        source: "builtin".to_owned(),
        registration: Registration {
            status: RegistrationStatus::Valid,
            errors: Vec::new(),
        },
    }
}

/// Specs of the built-in tools this crate provides, sorted by name: `command.run`, `fs.*`,
/// `fs.search`, `http.fetch` (the `asset.*` tools belong to the runtime).
pub fn builtin_specs() -> Vec<ToolSpec> {
    vec![
        builtin::<CommandRunArgs, CommandRunResult>(
            "command.run",
            "Run a command (argv or shell string) in the project under the OS sandbox; a \
             non-zero exit is a successful call.",
            true,
        ),
        builtin::<delete::DeleteArgs, delete::DeleteResult>(
            "fs.delete",
            "Delete a file, symlink or (with recursive) directory.",
            false,
        ),
        builtin::<edit::EditArgs, edit::EditResult>(
            "fs.edit",
            "Replace an exact string in a UTF-8 file; fails unless it occurs exactly once \
             (or replace_all is set).",
            false,
        ),
        builtin::<list::ListArgs, list::ListResult>(
            "fs.list",
            "List a directory, optionally recursively, without following symlinks.",
            false,
        ),
        builtin::<mv::MoveArgs, mv::MoveResult>(
            "fs.move",
            "Move or rename a file or directory.",
            false,
        ),
        builtin::<read::ReadArgs, read::ReadResult>(
            "fs.read",
            "Read a regular file (a window of it with offset/max_bytes) as UTF-8 or base64.",
            false,
        ),
        builtin::<search::SearchArgs, search::SearchResult>(
            "fs.search",
            "Search file contents by regex or literal (gitignore-aware, binaries skipped), or \
             file names by glob when no pattern is given.",
            false,
        ),
        builtin::<stat::StatArgs, stat::StatResult>(
            "fs.stat",
            "Describe a path without following it.",
            false,
        ),
        builtin::<write::WriteArgs, write::WriteResult>(
            "fs.write",
            "Create, overwrite (atomically) or append to a file.",
            false,
        ),
        builtin::<http::FetchArgs, http::FetchResult>(
            "http.fetch",
            "Make an HTTP(S) request to an allowed host; redirects are followed and re-checked.",
            true,
        ),
    ]
}
