//! The assets integration suite: one binary, one module per area.

mod support;

mod formats;
