//! Compiles a real `codeward_policies::PolicySet` for a test project.

use std::path::Path;

use codeward_policies::{PolicyContext, PolicyOptions, PolicySet, RawPolicyOptions};
use serde_json::json;

use super::Opts;

pub fn compile(root: &Path, opts: &Opts) -> PolicySet {
    let outside: Vec<_> = opts
        .outside_root_read
        .iter()
        .map(|p| json!({ "path": p, "reason_code": "test_docs", "access": "read" }))
        .collect();
    let egress = if opts.egress_allowlist.is_empty() {
        "deny"
    } else {
        "allow"
    };
    let raw = RawPolicyOptions::from_json(&json!({
        "network_egress_policy": egress,
        "network_allowlist": opts.egress_allowlist,
        "outside_root_allowlist": outside,
    }))
    .expect("raw options");
    let options = PolicyOptions::try_from(raw).expect("options");
    let base = root.parent().expect("parent");
    let ctx = PolicyContext {
        canonical_root: root.to_path_buf(),
        given_root: root.to_path_buf(),
        state_dir: Some(opts.state_dir.clone().unwrap_or_else(|| base.join("state"))),
        scratch_base: Some(base.join("scratch")),
    };
    PolicySet::compile(&options, ctx).expect("compile")
}
