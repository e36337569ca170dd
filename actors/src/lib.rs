#![doc = include_str!("../README.md")]

pub mod conversation;
pub mod ids;
pub mod journal;
pub mod supervision;
pub mod telemetry;
