#![doc = include_str!("../README.md")]
// `run_tool` returns `Result<ToolSuccess, ToolFailure>` with a fat failure by SPEC §2.1; the
// internal steps pass the same failure along rather than boxing it.
#![allow(clippy::result_large_err)]

pub mod alerts;
mod catalog;
pub mod config;
mod conversations;
mod engine;
pub mod error;
mod exec;
pub mod harness;
pub mod options;
mod project;
pub mod types;

pub use alerts::{ExecSink, WebhookSink};
// Named by the conversation calls of `Engine`, by `ModelClient` and by `EngineConfig`'s alert
// fields.
pub use codeward_actors::conversation::{
    ConversationEvent, DeltaSink, ModelClient, ModelError, ModelRequest, ModelResponse, ModelTool,
    ModelToolCall, Projection, ProjectionKey, ScriptedModel, Signal, SignalType,
};
pub use codeward_actors::conversation_actor::{
    ConversationActorDiagnostics, ConversationActorDiagnostics as ConversationDiagnostics,
    ConversationSnapshot, ConversationStateView, ConversationStateView as ConversationState,
    ConversationSubscription, Lagged, SignalAck,
};
pub use codeward_actors::ids::{ConversationId, ProjectId};
pub use codeward_actors::journal::{BackupReport, CompactionReport, IntegrityReport};
pub use codeward_actors::telemetry::{
    Alert, AlertError, AlertRoute, AlertSink, ChannelSink, Severity,
};
pub use codeward_assets::{Asset, AssetHit, AssetKind, AssetSummary, ReloadReport};
pub use codeward_tools::ToolSpec;
pub use config::{
    Clock, EngineConfig, ProjectContext, ProviderCall, ProviderError, SystemClock, ToolProvider,
};
pub use engine::Engine;
pub use engine::assets::AssetsDiagnostics;
pub use engine::diagnostics::ProjectDiagnostics;
pub use engine::failure::FailureTarget;
pub use error::{Error, Result};
pub use options::ProjectOptions;
pub use types::*;
