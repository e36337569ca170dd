#![doc = include_str!("../README.md")]

pub mod command;
mod context;
mod error;
pub mod fs;
mod policy;
pub mod sandbox;

pub use context::{CallIds, ToolContext, ToolLimits};
pub use error::{FailReason, Result, ToolError};
