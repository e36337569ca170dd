//! Criterion benches of `evaluate`: a typical `fs.read`-shaped request with two path
//! arguments inside a 3-level nested payload on the real filesystem (tempdir), and a request
//! with no path or URL arguments.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use codeward_policies::{
    PolicyContext, PolicyOptions, PolicySet, RealFs, ToolPolicy, ToolRequest, evaluate,
};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("src/util")).unwrap();
    std::fs::write(root.join("src/main.rs"), "fn main() {}").unwrap();
    std::fs::write(root.join("src/util/io.rs"), "").unwrap();
    let set = PolicySet::compile(&PolicyOptions::default(), PolicyContext::new(&root)).unwrap();

    let schema = json!({
        "type": "object", "x-codeward-complete": true,
        "properties": {"request": {"type": "object", "properties": {"files": {"type": "object", "properties": {
            "path": {"type": "string", "x-codeward": "path"},
            "other_path": {"type": "string", "x-codeward": "path"},
            "max_bytes": {"type": "integer"}}}}}}
    });
    let tool = ToolPolicy::compile("fs.read", &schema, true, false).unwrap();
    let args = json!({"request": {"files": {"path": "src/main.rs", "other_path": "src/util/io.rs", "max_bytes": 4096}}});
    let req = ToolRequest::new(&tool, &args);
    assert!(evaluate(&set, &req, &RealFs).is_allowed());
    c.bench_function("evaluate_fs_read_two_paths_nested", |b| {
        b.iter(|| black_box(evaluate(&set, black_box(&req), &RealFs)))
    });

    // The same request on an in-memory tree: the policy's own CPU cost without the five
    // lstat(2) syscalls (about 1.5 µs each on the benchmark VM).
    let mut mem = codeward_policies::MemFs::new();
    mem.file(root.join("src/main.rs"))
        .file(root.join("src/util/io.rs"));
    assert!(evaluate(&set, &req, &mem).is_allowed());
    c.bench_function("evaluate_fs_read_two_paths_nested_memfs", |b| {
        b.iter(|| black_box(evaluate(&set, black_box(&req), &mem)))
    });

    // Parts of the cost.
    let f = root.join("src/util/io.rs");
    c.bench_function("part_sensitive_match", |b| {
        b.iter(|| black_box(set.sensitive_match(black_box(&f))))
    });
    c.bench_function("part_check_path_memfs", |b| {
        b.iter(|| {
            black_box(set.check_path(
                black_box("src/util/io.rs"),
                codeward_policies::Access::Read,
                None,
                None,
                &mem,
            ))
        })
    });
    c.bench_function("part_schema_validate", |b| {
        b.iter(|| black_box(tool.validate(black_box(&args))))
    });

    let plain = ToolPolicy::compile(
        "asset.search",
        &json!({"type": "object", "x-codeward-complete": true,
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}}}),
        true,
        false,
    )
    .unwrap();
    let args2 = json!({"query": "how to deploy", "limit": 20});
    let req2 = ToolRequest::new(&plain, &args2);
    assert!(evaluate(&set, &req2, &RealFs).is_allowed());
    c.bench_function("evaluate_no_path_or_url", |b| {
        b.iter(|| black_box(evaluate(&set, black_box(&req2), &RealFs)))
    });
}

criterion_group!(group, benches);
criterion_main!(group);
