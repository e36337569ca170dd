#![doc = include_str!("../README.md")]

pub mod command;
mod context;
mod dispatch;
mod error;
pub mod fs;
pub mod http;
mod policy;
pub mod sandbox;
pub mod search;
mod spec;

pub use context::{CallIds, ToolContext, ToolLimits};
pub use dispatch::{INLINE_BUILTINS, call_builtin, call_builtin_inline};
pub use error::{FailReason, Result, ToolError};
pub use spec::{
    CommandRunArgs, CommandRunResult, Registration, RegistrationStatus, RunMode, Safety, ToolKind,
    ToolSpec, builtin_specs,
};
