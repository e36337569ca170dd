#![doc = include_str!("../README.md")]

pub mod asset_actor;
pub mod conversation;
pub mod executor;
pub mod ids;
pub mod policy_actor;
pub mod journal;
pub mod supervision;
pub mod telemetry;
pub mod watcher_actor;
