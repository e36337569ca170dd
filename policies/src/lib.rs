#![doc = include_str!("../README.md")]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod decision;
pub mod env;
mod error;
mod evaluate;
mod extract;
pub mod fuzzing;
pub mod net;
mod options;
mod paths;
mod policy_set;
mod request;
mod resolver;
pub mod secrets;
mod sensitive;
mod tools;

pub use decision::{Decision, MatchedRule, Outcome, RuleLayer, Subject, SubjectKind};
pub use error::{
    EndpointDetail, InvalidPathReason, InvalidRuntimeOpt, PolicyError, Result, SchemaError,
    SchemaViolation,
};
pub use evaluate::{evaluate, explain};
pub use extract::{MAX_CANDIDATES, MAX_DECODES, MAX_DEPTH, MAX_SCANNED_BYTES, key_words};
pub use net::CheckedUrl;
pub use options::{
    EgressPolicy, ExceptionAccess, OutsideRootEntry, OutsideRootTarget, PolicyOptions,
    RawPolicyOptions,
};
pub use paths::{
    Access, Area, COMMAND_DEVICES, CheckedPath, MAX_COMPONENT_BYTES, MAX_PATH_BYTES,
    MAX_SYMLINK_HOPS, normalize_lexically,
};
pub use policy_set::{PolicyContext, PolicySet};
pub use request::{ArgKind, CallSource, MAX_SCHEMA_ERRORS, ToolPolicy, ToolRequest};
pub use resolver::{EntryKind, MemFs, PathResolver, RealFs};
pub use sensitive::BUILTIN_SENSITIVE;
pub use tools::tool_pattern_matches;
