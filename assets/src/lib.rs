#![doc = include_str!("../README.md")]

mod error;
mod kind;
mod load;
mod model;
mod parse;
mod search;
mod snapshot;
mod store;
mod template;
mod text;
mod watcher;

pub use error::{AssetError, AssetErrorReason, AssetsError, InvalidQueryReason, Result};
pub use kind::AssetKind;
pub use load::{
    LoadOptions, LoadOutcome, SourceFile, Sources, build_snapshot, ensure_layout, load,
    load_with_previous, read_sources,
};
pub use model::{
    Asset, AssetDefinition, AssetHit, AssetSummary, AssetTool, AssetToolKind, CommandDef,
    CommandExec, GraphEdge, GraphNode, GraphNodeSummary, Param, ParamType, Registration,
    RegistrationStatus, SkillDef, SkillGraph, SkillLayout, WorkflowDef, WorkflowReturn,
    WorkflowStep,
};
pub use parse::{
    ParseResult, extract_links, parse_asset, parse_command, parse_graph_node, parse_skill,
    parse_workflow,
};
pub use search::{DEFAULT_SEARCH_LIMIT, GraphSearchResult, MAX_QUERY_BYTES};
pub use snapshot::{
    AssetCounts, AssetSnapshot, AssetsDiagnostics, KindVersions, LastReload, SkippedFile,
};
pub use store::{
    AssetStore, AssetsEvent, LoadedPayload, ReloadOutcome, ReloadReport, ReloadTrigger,
};
pub use template::{Quoting, Template, TemplatePart, lookup, shell_quote};
pub use text::{
    MAX_FILE_BYTES, MAX_FRONT_MATTER_BYTES, format_rfc3339_ms, is_ignored_name, is_markdown_name,
    is_slug,
};
pub use watcher::{ReloadRequest, Watcher, WatcherConfig, WatcherError};
