#![doc = include_str!("../README.md")]

pub mod conversation;
pub mod conversation_actor;
pub mod ids;
pub mod supervision;
pub mod telemetry;
