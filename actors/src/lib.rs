#![doc = include_str!("../README.md")]

pub mod asset_actor;
pub mod conversation;
pub mod conversation_actor;
pub mod executor;
pub mod ids;
pub mod journal;
pub mod policy_actor;
pub mod supervision;
pub mod telemetry;
pub mod watcher_actor;
