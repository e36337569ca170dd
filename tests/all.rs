//! The workspace integration suite: one test binary, one module per area.
