//! The parts of `codeward-policies` the tools use, in one place.

pub(crate) use codeward_policies::{Access, PolicyError, PolicySet, RealFs};
