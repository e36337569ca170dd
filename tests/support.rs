//! Shared support code for the workspace integration suite (`all.rs`).
