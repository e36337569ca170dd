//! The tool catalog (SPEC §7.1): built-ins, the asset tools `asset.list|search|get`, provider
//! tools, and the tools derived from the serving asset snapshot (`command.run.<name>`,
//! `workflow.run.<name>`). It is built once per asset generation — every schema compiled into a
//! [`ToolPolicy`] (its `jsonschema` validator and `x-codeward` locations) — and pinned by each
//! call at lookup, together with the snapshot it was built from.
//!
//! Built-in and provider schemas are trusted (`x-codeward-complete` honoured); schemas derived
//! from assets never are, so their arguments always get the heuristic deep scan.

use std::collections::HashMap;
use std::sync::Arc;

use codeward_assets::{AssetSnapshot, AssetToolKind};
use codeward_policies::{PolicySet, ToolPolicy};
use codeward_tools::{Registration, RegistrationStatus, RunMode, Safety, ToolKind, ToolSpec};
use serde_json::{Value, json};

use crate::config::ToolProvider;

/// How a catalog entry is executed.
#[derive(Clone)]
pub(crate) enum ToolExec {
    /// A filesystem / search / http built-in of `codeward-tools`.
    Builtin,
    /// `command.run`.
    CommandRun,
    /// `asset.list`.
    AssetList,
    /// `asset.search`.
    AssetSearch,
    /// `asset.get`.
    AssetGet,
    /// `command.run.<name>` (the asset is looked up in the pinned snapshot).
    AssetCommand {
        /// The asset name.
        asset: String,
    },
    /// `workflow.run.<name>`.
    Workflow {
        /// The asset name.
        asset: String,
    },
    /// A provider tool.
    Provider(Arc<dyn ToolProvider>),
}

/// One tool of the catalog.
pub(crate) struct CatalogEntry {
    /// The spec as `list_tools` shows it.
    pub spec: ToolSpec,
    /// The compiled policy view; `None` when the schema does not compile (invalid asset).
    pub policy: Option<ToolPolicy>,
    /// How to run it.
    pub exec: ToolExec,
    /// Whether evaluating its arguments may resolve paths on disk (then it runs on the
    /// blocking pool, SPEC §4).
    pub touches_fs: bool,
}

impl CatalogEntry {
    fn new(spec: ToolSpec, trusted: bool, exec: ToolExec) -> Self {
        let policy = if spec.registration.status == RegistrationStatus::Valid {
            ToolPolicy::compile(
                &spec.name,
                &spec.input_schema,
                trusted,
                spec.safety.network_capable,
            )
            .ok()
        } else {
            None
        };
        // fs.read / fs.stat resolve one declared path (a few `lstat`s): evaluated inline like
        // the tools themselves run (see `codeward_tools::INLINE_BUILTINS`).
        let touches_fs = !codeward_tools::INLINE_BUILTINS.contains(&spec.name.as_str())
            && policy
                .as_ref()
                .is_some_and(|p| !p.is_complete() || p.has_declared_locations());
        Self {
            spec,
            policy,
            exec,
            touches_fs,
        }
    }

    /// The kind as the API reports it.
    pub fn kind(&self) -> &'static str {
        kind_str(self.spec.kind)
    }
}

pub(crate) fn kind_str(kind: ToolKind) -> &'static str {
    match kind {
        ToolKind::Builtin => "builtin",
        ToolKind::AssetCommand => "asset_command",
        ToolKind::AssetWorkflow => "asset_workflow",
        ToolKind::SubagentSpawn => "subagent_spawn",
        ToolKind::Provider => "provider",
    }
}

/// The tools that do not depend on assets: built-ins and provider tools, compiled once.
pub(crate) struct StaticTools {
    entries: Vec<Arc<CatalogEntry>>,
}

impl StaticTools {
    /// Compiles the built-ins and the providers' tools for one project. Duplicate names are a
    /// configuration error (`Err(name)`).
    pub fn build(
        providers: &[Arc<dyn ToolProvider>],
        project: &crate::config::ProjectContext,
    ) -> Result<Self, String> {
        let mut entries: Vec<Arc<CatalogEntry>> = builtin_entries().to_vec();
        let mut names: std::collections::BTreeSet<String> =
            entries.iter().map(|e| e.spec.name.clone()).collect();
        for provider in providers {
            for mut spec in provider.tools(project) {
                if !names.insert(spec.name.clone()) {
                    return Err(spec.name);
                }
                spec.kind = ToolKind::Provider;
                entries.push(Arc::new(CatalogEntry::new(
                    spec,
                    true,
                    ToolExec::Provider(provider.clone()),
                )));
            }
        }
        Ok(Self { entries })
    }
}

/// The built-in tools, compiled once per process (their schemas never change) and shared by
/// every project's catalog.
fn builtin_entries() -> &'static [Arc<CatalogEntry>] {
    static BUILTINS: std::sync::OnceLock<Vec<Arc<CatalogEntry>>> = std::sync::OnceLock::new();
    BUILTINS.get_or_init(|| {
        let mut entries = Vec::new();
        for spec in codeward_tools::builtin_specs() {
            let exec = if spec.name == "command.run" {
                ToolExec::CommandRun
            } else {
                ToolExec::Builtin
            };
            entries.push(Arc::new(CatalogEntry::new(spec, true, exec)));
        }
        for (spec, exec) in asset_tool_specs() {
            entries.push(Arc::new(CatalogEntry::new(spec, true, exec)));
        }
        entries
    })
}

/// The catalog of one asset generation.
pub(crate) struct Catalog {
    /// The snapshot it was built from (pinned by calls).
    pub snapshot: Arc<AssetSnapshot>,
    entries: HashMap<String, Arc<CatalogEntry>>,
}

impl Catalog {
    /// Builds the catalog for `snapshot`: static tools plus the snapshot's command and
    /// workflow tools (disabled workflows are not tools; invalid ones stay listed, not
    /// exposed). Asset tools never shadow a static tool.
    pub fn build(statics: &StaticTools, snapshot: Arc<AssetSnapshot>) -> Self {
        let mut entries: HashMap<String, Arc<CatalogEntry>> = statics
            .entries
            .iter()
            .map(|e| (e.spec.name.clone(), e.clone()))
            .collect();
        for tool in snapshot.commands().chain(snapshot.workflows()) {
            if !tool.enabled || entries.contains_key(&tool.tool_name) {
                continue;
            }
            let (kind, exec) = match tool.kind {
                AssetToolKind::AssetCommand => (
                    ToolKind::AssetCommand,
                    ToolExec::AssetCommand {
                        asset: tool.asset_name.clone(),
                    },
                ),
                AssetToolKind::AssetWorkflow => (
                    ToolKind::AssetWorkflow,
                    ToolExec::Workflow {
                        asset: tool.asset_name.clone(),
                    },
                ),
            };
            let valid = tool.registration.is_valid();
            let spec = ToolSpec {
                name: tool.tool_name.clone(),
                description: tool.description.clone(),
                input_schema: tool.input_schema.clone(),
                output_schema: json!({ "type": "object" }),
                safety: Safety {
                    sandboxed: true,
                    network_capable: tool.network_capable,
                },
                kind,
                llm_exposed: valid,
                default_run_mode: RunMode::Sync,
                source: tool.path.display().to_string(),
                registration: Registration {
                    status: if valid {
                        RegistrationStatus::Valid
                    } else {
                        RegistrationStatus::Invalid
                    },
                    errors: tool
                        .registration
                        .errors
                        .iter()
                        .map(|e| format!("{}: {}", e.reason.code(), e.message))
                        .collect(),
                },
            };
            entries.insert(
                tool.tool_name.clone(),
                Arc::new(CatalogEntry::new(spec, false, exec)),
            );
        }
        Self { snapshot, entries }
    }

    /// The asset generation this catalog was built from.
    pub fn generation(&self) -> u64 {
        self.snapshot.generation()
    }

    /// Looks a tool up.
    pub fn get(&self, name: &str) -> Option<&Arc<CatalogEntry>> {
        self.entries.get(name)
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// What `list_tools` returns: sorted by name, minus tools denied by the tool rules (and a
    /// conversation's narrower scope), and network-capable tools hidden by egress `deny` —
    /// except command tools when the OS blocks their TCP connects (SPEC §5.6, §7.1).
    pub fn listed(
        &self,
        policy: &PolicySet,
        os_network_enforced: bool,
        scope: Option<&[String]>,
    ) -> Vec<&Arc<CatalogEntry>> {
        let mut out: Vec<&Arc<CatalogEntry>> = self
            .visible_entries(policy, os_network_enforced, scope)
            .collect();
        out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        out
    }

    /// The entries of [`listed`](Self::listed) in no particular order (for counting and
    /// membership, where sorting would be wasted).
    pub fn visible_entries<'a: 'b, 'b>(
        &'a self,
        policy: &'b PolicySet,
        os_network_enforced: bool,
        scope: Option<&'b [String]>,
    ) -> impl Iterator<Item = &'a Arc<CatalogEntry>> + 'b {
        self.entries
            .values()
            .filter(move |e| visible(e, policy, os_network_enforced, scope))
    }
}

/// Whether a tool is visible (listed and callable in principle) under this policy and scope.
pub(crate) fn visible(
    e: &CatalogEntry,
    policy: &PolicySet,
    os_network_enforced: bool,
    scope: Option<&[String]>,
) -> bool {
    if !policy.tool_listed(&e.spec.name) {
        return false;
    }
    if let Some(scope) = scope
        && !scope
            .iter()
            .any(|p| codeward_policies::tool_pattern_matches(p, &e.spec.name))
    {
        return false;
    }
    if e.spec.safety.network_capable && !policy.egress_allowed() {
        // Executable command assets run exactly like `command.run` (under the same Landlock
        // rules), though their derived schema declares no `command` location.
        let is_command = e.policy.as_ref().is_some_and(ToolPolicy::is_command)
            || matches!(e.exec, ToolExec::AssetCommand { .. });
        return is_command && os_network_enforced;
    }
    true
}

fn asset_type_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["skill", "skills", "command", "commands", "workflow", "workflows", "skill_graph"],
        "description": "Asset kind."
    })
}

fn asset_tool_specs() -> Vec<(ToolSpec, ToolExec)> {
    let spec = |name: &str, description: &str, input: Value| ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        input_schema: input,
        output_schema: json!({ "type": "object" }),
        safety: Safety {
            sandboxed: true,
            network_capable: false,
        },
        kind: ToolKind::Builtin,
        llm_exposed: true,
        default_run_mode: RunMode::Sync,
        source: "builtin".to_owned(),
        registration: Registration {
            status: RegistrationStatus::Valid,
            errors: Vec::new(),
        },
    };
    vec![
        (
            spec(
                "asset.get",
                "Get one asset (skill, command, workflow or skill graph node) by name or path.",
                json!({
                    "type": "object", "x-codeward-complete": true, "additionalProperties": false,
                    "required": ["type", "key"],
                    "properties": {
                        "type": asset_type_schema(),
                        "key": {"type": "string", "minLength": 1, "maxLength": 1024}
                    }
                }),
            ),
            ToolExec::AssetGet,
        ),
        (
            spec(
                "asset.list",
                "List the project's assets of one kind.",
                json!({
                    "type": "object", "x-codeward-complete": true, "additionalProperties": false,
                    "required": ["type"],
                    "properties": { "type": asset_type_schema() }
                }),
            ),
            ToolExec::AssetList,
        ),
        (
            spec(
                "asset.search",
                "Search the project's assets of one kind (name matches rank first).",
                json!({
                    "type": "object", "x-codeward-complete": true, "additionalProperties": false,
                    "required": ["type", "query"],
                    "properties": {
                        "type": asset_type_schema(),
                        "query": {"type": "string", "minLength": 1, "maxLength": 1024},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}
                    }
                }),
            ),
            ToolExec::AssetSearch,
        ),
    ]
}
