//! Fuzz bodies (placeholder).
