//! The assets integration suite: one binary, one module per area.

mod support;

mod files;
mod formats;
mod order;
mod realworld;
mod search;
mod store;
mod watcher;
