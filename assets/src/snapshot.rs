//! [`AssetSnapshot`]: one immutable, versioned set of every asset, built whole by
//! [`build_snapshot`] from the bytes the loader read and swapped whole by the store. Also the
//! skill-graph resolution, the tool views of commands and workflows, and diagnostics.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{AssetError, AssetErrorReason, AssetsError};
use crate::kind::AssetKind;
use crate::load::{LoadOptions, LoadOutcome, Sources};
use crate::model::{
    Asset, AssetDefinition, AssetSummary, AssetTool, AssetToolKind, GraphEdge, GraphNodeSummary,
    Registration, SkillGraph,
};
use crate::parse::parse_asset;
use crate::search::SearchIndex;
use crate::store::{ReloadOutcome, ReloadTrigger};
use crate::text;

/// The key that returns the whole graph from `get(skill_graph, …)`.
pub const GRAPH_SNAPSHOT_KEY: &str = "snapshot";

/// A file deliberately not loaded (a symlink inside the data dir).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// The kind directory it is in.
    pub kind: Option<AssetKind>,
    /// Path relative to the project root.
    pub path: PathBuf,
    /// Why (`symlink`).
    pub reason: String,
    /// Where the symlink points, when known.
    pub target: Option<PathBuf>,
}

/// The generation at which each kind's content last changed (SPEC §9.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindVersions {
    /// Skills.
    pub skill: u64,
    /// Commands.
    pub command: u64,
    /// Workflows.
    pub workflow: u64,
    /// The skill graph.
    pub skill_graph: u64,
}

impl KindVersions {
    fn get_mut(&mut self, kind: AssetKind) -> &mut u64 {
        match kind {
            AssetKind::Skill => &mut self.skill,
            AssetKind::Command => &mut self.command,
            AssetKind::Workflow => &mut self.workflow,
            AssetKind::SkillGraph => &mut self.skill_graph,
        }
    }

    /// The version of one kind.
    pub fn get(&self, kind: AssetKind) -> u64 {
        match kind {
            AssetKind::Skill => self.skill,
            AssetKind::Command => self.command,
            AssetKind::Workflow => self.workflow,
            AssetKind::SkillGraph => self.skill_graph,
        }
    }
}

/// Counts per kind (SPEC §9.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetCounts {
    /// Skills loaded.
    pub skill: usize,
    /// Commands listed (valid and invalid).
    pub command: usize,
    /// Workflows listed (valid and invalid).
    pub workflow: usize,
    /// Skill-graph nodes.
    pub skill_graph_nodes: usize,
    /// Skill-graph edges (dangling included).
    pub skill_graph_edges: usize,
    /// Edges whose target does not exist.
    pub dangling_edges: usize,
    /// Commands and workflows with an invalid registration.
    pub invalid_tools: usize,
}

/// The last reload as the store saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastReload {
    /// When it finished (RFC 3339).
    pub at: String,
    /// What asked for it.
    pub trigger: ReloadTrigger,
    /// Applied or rejected.
    pub outcome: ReloadOutcome,
    /// Changed paths reported by the watcher (sorted, ≤50).
    pub changed_paths: Vec<PathBuf>,
    /// How long the load took.
    pub duration_ms: u64,
}

/// `assets_diagnostics` (SPEC §9.2) minus `project_id`, which the runtime adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetsDiagnostics {
    /// True once a snapshot was applied.
    pub loaded: bool,
    /// Strict loading.
    pub strict: bool,
    /// The serving generation.
    pub generation: u64,
    /// Per-kind versions.
    pub versions: KindVersions,
    /// Counts.
    pub counts: AssetCounts,
    /// Errors of the serving snapshot, or of the last rejected reload.
    pub errors: Vec<AssetError>,
    /// Findings that never fail a load (dangling links).
    pub warnings: Vec<AssetError>,
    /// Files deliberately not loaded.
    pub skipped: Vec<SkippedFile>,
    /// When the serving snapshot was built (RFC 3339 UTC, ms).
    pub loaded_at: String,
    /// Same, as Unix milliseconds.
    pub loaded_at_ms: i64,
    /// The last reload, when the store has done one.
    pub last_reload: Option<LastReload>,
}

/// An immutable, versioned set of all assets. Cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct AssetSnapshot {
    generation: u64,
    strict: bool,
    loaded_at_ms: i64,
    loaded_at: String,
    // INVARIANT: keyed by name; one map per kind in `AssetKind::ALL` order.
    assets: [BTreeMap<String, Asset>; 4],
    graph: SkillGraph,
    graph_asset: Asset,
    tools: Vec<AssetTool>,
    errors: Vec<AssetError>,
    warnings: Vec<AssetError>,
    skipped: Vec<SkippedFile>,
    versions: KindVersions,
    fingerprints: [u64; 4],
    pub(crate) index: SearchIndex,
}

fn kind_index(kind: AssetKind) -> usize {
    match kind {
        AssetKind::Skill => 0,
        AssetKind::Command => 1,
        AssetKind::Workflow => 2,
        AssetKind::SkillGraph => 3,
    }
}

impl AssetSnapshot {
    /// An empty snapshot (generation 0) — what serves before the first load.
    pub fn empty() -> Self {
        build_snapshot(
            Sources::default(),
            &LoadOptions {
                now_ms: Some(0),
                ..LoadOptions::default()
            },
            0,
            None,
        )
        .snapshot
    }

    /// The generation number.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When it was built, RFC 3339 UTC with milliseconds.
    pub fn loaded_at(&self) -> &str {
        &self.loaded_at
    }

    /// When it was built, Unix milliseconds.
    pub fn loaded_at_ms(&self) -> i64 {
        self.loaded_at_ms
    }

    /// Whether it was loaded in strict mode.
    pub fn strict(&self) -> bool {
        self.strict
    }

    /// Per-kind versions.
    pub fn versions(&self) -> KindVersions {
        self.versions
    }

    /// Errors recorded in this snapshot (lenient mode; empty for strict snapshots).
    pub fn errors(&self) -> &[AssetError] {
        &self.errors
    }

    /// Non-fatal findings (dangling links).
    pub fn warnings(&self) -> &[AssetError] {
        &self.warnings
    }

    /// Files deliberately not loaded.
    pub fn skipped(&self) -> &[SkippedFile] {
        &self.skipped
    }

    /// All assets of a kind, sorted by name.
    pub fn assets(&self, kind: AssetKind) -> impl ExactSizeIterator<Item = &Asset> {
        self.map(kind).values()
    }

    fn map(&self, kind: AssetKind) -> &BTreeMap<String, Asset> {
        // INVARIANT: kind_index is always < 4.
        &self.assets[kind_index(kind)]
    }

    /// Summaries of a kind, sorted by name (graph: nodes by id).
    pub fn list(&self, kind: AssetKind) -> Vec<AssetSummary> {
        self.map(kind).values().map(Asset::summary).collect()
    }

    /// One asset by name (or by its root-relative path). For the skill graph, `snapshot`
    /// returns the whole graph and a node id returns the node with its edges.
    pub fn get(&self, kind: AssetKind, key: &str) -> Result<&Asset, AssetsError> {
        let map = self.map(kind);
        if kind == AssetKind::SkillGraph && key == GRAPH_SNAPSHOT_KEY {
            return Ok(&self.graph_asset);
        }
        let key_trimmed = key.trim();
        map.get(key_trimmed)
            .or_else(|| map.values().find(|a| a.path.as_os_str() == key_trimmed))
            .ok_or_else(|| AssetsError::AssetNotFound {
                kind,
                key: key.to_owned(),
            })
    }

    /// The whole skill graph.
    pub fn graph(&self) -> &SkillGraph {
        &self.graph
    }

    /// Tool views of every command, sorted by tool name (invalid ones included).
    pub fn commands(&self) -> impl Iterator<Item = &AssetTool> {
        self.tools
            .iter()
            .filter(|t| t.kind == AssetToolKind::AssetCommand)
    }

    /// Tool views of every workflow, sorted by tool name (invalid and disabled included).
    pub fn workflows(&self) -> impl Iterator<Item = &AssetTool> {
        self.tools
            .iter()
            .filter(|t| t.kind == AssetToolKind::AssetWorkflow)
    }

    /// Tool view by tool name (`command.run.x` / `workflow.run.y`).
    pub fn tool(&self, tool_name: &str) -> Option<&AssetTool> {
        self.tools
            .binary_search_by(|t| t.tool_name.as_str().cmp(tool_name))
            .ok()
            .and_then(|i| self.tools.get(i))
    }

    /// Counts per kind.
    pub fn counts(&self) -> AssetCounts {
        AssetCounts {
            skill: self.map(AssetKind::Skill).len(),
            command: self.map(AssetKind::Command).len(),
            workflow: self.map(AssetKind::Workflow).len(),
            skill_graph_nodes: self.graph.nodes.len(),
            skill_graph_edges: self.graph.edges.len(),
            dangling_edges: self.graph.edges.iter().filter(|e| e.dangling).count(),
            invalid_tools: self
                .tools
                .iter()
                .filter(|t| !t.registration.is_valid())
                .count(),
        }
    }

    /// Diagnostics of this snapshot (the store adds `last_reload`).
    pub fn diagnostics(&self) -> AssetsDiagnostics {
        AssetsDiagnostics {
            loaded: self.generation > 0,
            strict: self.strict,
            generation: self.generation,
            versions: self.versions,
            counts: self.counts(),
            errors: self.errors.clone(),
            warnings: self.warnings.clone(),
            skipped: self.skipped.clone(),
            loaded_at: self.loaded_at.clone(),
            loaded_at_ms: self.loaded_at_ms,
            last_reload: None,
        }
    }
}

/// Builds a snapshot from files already read (pure: no I/O). The result does not depend on
/// the order of `sources`.
pub fn build_snapshot(
    mut sources: Sources,
    opts: &LoadOptions,
    generation: u64,
    previous: Option<&AssetSnapshot>,
) -> LoadOutcome {
    sources
        .files
        .sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    let mut errors = sources.errors;
    let mut assets: [BTreeMap<String, Asset>; 4] = Default::default();
    // Previous assets by (kind, path): unchanged files (same SHA-256) are not parsed again.
    let prev_by_path: HashMap<(AssetKind, &std::path::Path), &Asset> = previous
        .map(|p| {
            AssetKind::ALL
                .iter()
                .flat_map(|k| p.map(*k).values().map(move |a| ((*k, a.path.as_path()), a)))
                .collect()
        })
        .unwrap_or_default();
    for file in sources.files {
        let prev = prev_by_path.get(&(file.kind, file.path.as_path())).copied();
        let sha = prev.map(|_| text::sha256_hex(&file.bytes));
        let (mut asset, mut file_errors) = match prev {
            Some(p) if sha.as_deref() == Some(p.sha256.as_str()) => {
                (Some(p.clone()), p.registration.errors.clone())
            }
            _ => {
                let result = parse_asset(file.kind, &file.path, &file.bytes);
                (result.asset, result.errors)
            }
        };
        if let Some(a) = asset.as_mut() {
            a.modified_at = file.modified_ms.map(text::format_rfc3339_ms);
            if let AssetDefinition::Skill(s) = &mut a.definition {
                s.resources = file.resources;
            }
        }
        if !file_errors.is_empty() && !opts.strict {
            // Lenient: keep the previous good version of this file, if any.
            if let Some(prev) = prev
                && prev.registration.is_valid()
            {
                asset = Some(prev.clone());
                file_errors.iter_mut().for_each(|e| e.stale = true);
            }
        }
        if let Some(a) = asset {
            let slot = &mut assets[kind_index(file.kind)];
            if let Some(first) = slot.get(&a.name) {
                let reason = if file.kind == AssetKind::SkillGraph {
                    AssetErrorReason::DuplicateNode
                } else {
                    AssetErrorReason::DuplicateName
                };
                let message = format!(
                    "{} `{}` is already defined by `{}`",
                    file.kind,
                    a.name,
                    first.path.display()
                );
                file_errors.push(
                    AssetError::new(Some(file.kind), &file.path, reason, message)
                        .with_detail(first.path.display().to_string()),
                );
            } else {
                slot.insert(a.name.clone(), a);
            }
        }
        errors.extend(file_errors);
    }
    errors.sort_by(|a, b| {
        (&a.path, a.reason, &a.message, &a.detail, a.line)
            .cmp(&(&b.path, b.reason, &b.message, &b.detail, b.line))
    });
    let mut skipped = sources.skipped;
    skipped.sort_by(|a, b| a.path.cmp(&b.path));

    let (graph, warnings) = resolve_graph(&mut assets[kind_index(AssetKind::SkillGraph)]);
    let tools = build_tools(&assets);

    let now_ms = opts.now_ms();
    let mut fingerprints = [0u64; 4];
    let mut versions = KindVersions::default();
    for kind in AssetKind::ALL {
        let fp = fingerprint(&assets[kind_index(kind)]);
        fingerprints[kind_index(kind)] = fp;
        *versions.get_mut(kind) = match previous {
            Some(p) if p.fingerprints[kind_index(kind)] == fp => p.versions.get(kind),
            _ => generation,
        };
    }
    let graph_asset = Asset {
        kind: AssetKind::SkillGraph,
        name: GRAPH_SNAPSHOT_KEY.into(),
        path: PathBuf::new(),
        description: "the whole skill graph".into(),
        front_matter: serde_json::Map::new(),
        body: String::new(),
        size_bytes: 0,
        sha256: String::new(),
        modified_at: None,
        registration: Registration::valid(),
        definition: AssetDefinition::Graph(graph.clone()),
    };
    let index = SearchIndex::build(&assets);
    let rejected = opts.strict && !errors.is_empty();
    let snapshot = AssetSnapshot {
        generation,
        strict: opts.strict,
        loaded_at_ms: now_ms,
        loaded_at: text::format_rfc3339_ms(now_ms),
        assets,
        graph,
        graph_asset,
        tools,
        errors: errors.clone(),
        warnings,
        skipped,
        versions,
        fingerprints,
        index,
    };
    LoadOutcome {
        snapshot,
        errors,
        rejected,
    }
}

fn fingerprint(map: &BTreeMap<String, Asset>) -> u64 {
    let mut h = DefaultHasher::new();
    for a in map.values() {
        a.name.hash(&mut h);
        a.path.hash(&mut h);
        a.sha256.hash(&mut h);
        a.registration.is_valid().hash(&mut h);
    }
    h.finish()
}

/// Resolves raw link targets to node ids (exact, then case-insensitive), marks dangling
/// edges, fills backlinks, and returns the whole graph plus `dangling_link` warnings.
fn resolve_graph(nodes: &mut BTreeMap<String, Asset>) -> (SkillGraph, Vec<AssetError>) {
    let ids: BTreeSet<String> = nodes.keys().cloned().collect();
    let mut lower: HashMap<String, String> = HashMap::new();
    for id in &ids {
        lower.entry(id.to_lowercase()).or_insert_with(|| id.clone());
    }
    let mut all_edges: Vec<GraphEdge> = Vec::new();
    let mut warnings = Vec::new();
    for asset in nodes.values_mut() {
        let path = asset.path.clone();
        let AssetDefinition::GraphNode(node) = &mut asset.definition else {
            continue;
        };
        let mut resolved: Vec<GraphEdge> = Vec::new();
        for e in node.edges.drain(..) {
            let target = if ids.contains(&e.to) {
                Some(e.to.clone())
            } else {
                lower.get(&e.to.to_lowercase()).cloned()
            };
            let edge = match target {
                Some(to) => GraphEdge {
                    to,
                    dangling: false,
                    ..e
                },
                None => {
                    warnings.push(
                        AssetError::new(
                            Some(AssetKind::SkillGraph),
                            &path,
                            AssetErrorReason::DanglingLink,
                            format!("link `[[{}]]` has no target node", e.to),
                        )
                        .with_detail(e.to.clone()),
                    );
                    GraphEdge {
                        dangling: true,
                        ..e
                    }
                }
            };
            if !resolved.iter().any(|r| r.to == edge.to) {
                resolved.push(edge);
            }
        }
        resolved.sort();
        all_edges.extend(resolved.iter().cloned());
        node.edges = resolved;
    }
    let mut backlinks: HashMap<String, Vec<String>> = HashMap::new();
    for e in all_edges.iter().filter(|e| !e.dangling) {
        backlinks
            .entry(e.to.clone())
            .or_default()
            .push(e.from.clone());
    }
    let mut summaries = Vec::new();
    for asset in nodes.values_mut() {
        if let AssetDefinition::GraphNode(node) = &mut asset.definition {
            let mut b = backlinks.remove(&node.id).unwrap_or_default();
            b.sort();
            b.dedup();
            node.backlinks = b;
            summaries.push(GraphNodeSummary {
                id: node.id.clone(),
                title: node.title.clone(),
                path: node.path.clone(),
            });
        }
    }
    all_edges.sort();
    (
        SkillGraph {
            nodes: summaries,
            edges: all_edges,
        },
        warnings,
    )
}

/// Built-in tools known not to reach the network.
fn builtin_offline(tool: &str) -> bool {
    tool.starts_with("fs.") || tool.starts_with("asset.")
}

fn build_tools(assets: &[BTreeMap<String, Asset>; 4]) -> Vec<AssetTool> {
    let commands = &assets[kind_index(AssetKind::Command)];
    let mut tools = Vec::new();
    for a in commands.values() {
        let AssetDefinition::Command(def) = &a.definition else {
            continue;
        };
        let executable = def.exec.is_some();
        tools.push(AssetTool {
            tool_name: format!("command.run.{}", a.name),
            kind: AssetToolKind::AssetCommand,
            asset_name: a.name.clone(),
            path: a.path.clone(),
            description: tool_description(a),
            input_schema: def.input_schema.clone(),
            executable,
            network_capable: executable,
            enabled: true,
            registration: a.registration.clone(),
        });
    }
    for a in assets[kind_index(AssetKind::Workflow)].values() {
        let AssetDefinition::Workflow(def) = &a.definition else {
            continue;
        };
        let network_capable = def.steps.iter().any(|s| {
            if let Some(cmd) = s.tool.strip_prefix("command.run.") {
                commands.get(cmd).is_none_or(|c| {
                    matches!(&c.definition, AssetDefinition::Command(d) if d.exec.is_some())
                        || !c.registration.is_valid()
                })
            } else {
                !builtin_offline(&s.tool)
            }
        });
        tools.push(AssetTool {
            tool_name: format!("workflow.run.{}", a.name),
            kind: AssetToolKind::AssetWorkflow,
            asset_name: a.name.clone(),
            path: a.path.clone(),
            description: tool_description(a),
            input_schema: def.input_schema.clone(),
            executable: true,
            network_capable,
            enabled: def.enabled,
            registration: a.registration.clone(),
        });
    }
    tools.sort_by(|a, b| a.tool_name.cmp(&b.tool_name));
    tools
}

fn tool_description(a: &Asset) -> String {
    if !a.description.is_empty() {
        return a.description.clone();
    }
    a.body
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(200).collect())
        .unwrap_or_else(|| a.name.clone())
}
