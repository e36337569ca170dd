//! Shared test support: a project root and an outside directory in temp dirs, and contexts with
//! a compiled policy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use codeward_tools::fs::RootDir;
use codeward_tools::{ToolContext, ToolError, call_builtin};
use serde_json::Value;

/// A project root plus a sibling directory outside it.
pub struct Project {
    _dir: tempfile::TempDir,
    /// Canonical project root.
    pub root: PathBuf,
    /// Canonical directory outside the root (holds canaries).
    pub outside: PathBuf,
}

impl Project {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canonical");
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir(&root).expect("root");
        std::fs::create_dir(&outside).expect("outside");
        Self {
            _dir: dir,
            root,
            outside,
        }
    }

    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write");
        p
    }

    /// A context with the default policy (no egress allowlist, no outside-root exceptions).
    pub fn ctx(&self) -> ToolContext {
        self.ctx_with(crate::all::support::Opts::default())
    }

    pub fn ctx_with(&self, opts: Opts) -> ToolContext {
        let policy = policy(&self.root, &opts);
        let root = Arc::new(RootDir::open(&self.root).expect("open root"));
        let mut ctx = ToolContext::new(Arc::new(policy), root);
        ctx.limits.deny_multiply_linked_files = opts.deny_multiply_linked_files;
        ctx
    }
}

/// Policy knobs the tests use.
#[derive(Default, Clone)]
pub struct Opts {
    pub egress_allowlist: Vec<String>,
    pub outside_root_read: Vec<PathBuf>,
    pub deny_multiply_linked_files: bool,
    /// Put the state dir here instead of beside the root.
    pub state_dir: Option<PathBuf>,
}

fn policy(root: &Path, opts: &Opts) -> codeward_policies::PolicySet {
    support_policy::compile(root, opts)
}

#[path = "support_policy.rs"]
mod support_policy;

/// Runs a tool on a current-thread runtime.
pub fn run(ctx: &ToolContext, name: &str, args: Value) -> Result<Value, ToolError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(call_builtin(name, ctx, args))
}

/// The error's code and `tool_failed` reason, e.g. `("tool_failed", Some("not_found"))`.
pub fn code(r: Result<Value, ToolError>) -> (String, Option<String>) {
    match r {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => (
            e.code().to_owned(),
            e.reason().map(|r| r.as_str().to_owned()),
        ),
    }
}
