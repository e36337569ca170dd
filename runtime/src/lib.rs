#![doc = include_str!("../README.md")]

pub mod alerts;
mod catalog;
pub mod config;
mod conversations;
mod engine;
pub mod error;
mod exec;
pub mod options;
mod project;
pub mod types;

pub use alerts::{ExecSink, WebhookSink};
pub use codeward_actors::conversation::{ModelClient, ScriptedModel, Signal};
pub use codeward_actors::ids::{ConversationId, ProjectId};
pub use codeward_assets::{Asset, AssetHit, AssetKind, AssetSummary, ReloadReport};
pub use codeward_tools::ToolSpec;
pub use config::{
    Clock, EngineConfig, ProjectContext, ProviderCall, ProviderError, SystemClock, ToolProvider,
};
pub use engine::Engine;
pub use engine::assets::AssetsDiagnostics;
pub use engine::diagnostics::ProjectDiagnostics;
pub use error::{Error, Result};
pub use options::ProjectOptions;
pub use types::*;
