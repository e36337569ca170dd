//! `fs.search`: content and name search, gitignore, binaries, sensitive files, links.

use serde_json::json;

use super::support::{Project, code, run};

fn project() -> Project {
    let p = Project::new();
    p.write(
        "src/main.rs",
        "fn main() {\n    let needle = 1;\n    println!(\"{needle}\");\n}\n",
    );
    p.write("src/lib.rs", "// Needle in caps\n");
    p.write("target/out.rs", "needle in ignored\n");
    p.write(".gitignore", "target/\n");
    p.write(".env", "needle=secret\n");
    p.write(".hidden/h.rs", "needle hidden\n");
    std::fs::write(p.root.join("blob.bin"), b"needle\x00\x01\x02").expect("bin");
    std::fs::write(p.outside.join("o.rs"), "needle outside\n").expect("outside");
    std::os::unix::fs::symlink(&p.outside, p.root.join("outlink")).expect("symlink");
    p
}

#[test]
fn content_search_with_context() {
    let p = project();
    let v = run(
        &p.ctx(),
        "fs.search",
        json!({"pattern": "needle = \\d", "context_lines": 1}),
    )
    .expect("search");
    assert_eq!(
        v,
        json!({
            "matches": [{"path": "src/main.rs", "line_number": 2, "line": "    let needle = 1;",
                         "before": ["fn main() {"], "after": ["    println!(\"{needle}\");"]}],
            "files": ["src/main.rs"], "files_searched": 3, "skipped_sensitive": 0, "truncated": false
        })
    );
}

#[test]
fn ignores_binaries_gitignored_hidden_links_and_counts_sensitive() {
    let p = project();
    let ctx = p.ctx();
    let v = run(
        &ctx,
        "fs.search",
        json!({"pattern": "needle", "fixed_strings": true}),
    )
    .expect("search");
    assert_eq!(v["files"], json!(["src/main.rs"]));
    assert_eq!(v["skipped_sensitive"], 0, ".env is hidden and not visited");
    let v = run(
        &ctx,
        "fs.search",
        json!({"pattern": "needle", "include_hidden": true, "case_insensitive": true}),
    )
    .expect("search");
    assert_eq!(
        v["files"],
        json!([".hidden/h.rs", "src/lib.rs", "src/main.rs"])
    );
    assert_eq!(v["skipped_sensitive"], 1);
    let v = run(
        &ctx,
        "fs.search",
        json!({"pattern": "needle", "respect_gitignore": false}),
    )
    .expect("search");
    assert_eq!(v["files"], json!(["src/main.rs", "target/out.rs"]));
}

#[test]
fn name_search_and_limits() {
    let p = project();
    let ctx = p.ctx();
    let v = run(&ctx, "fs.search", json!({"glob": ["*.rs"]})).expect("search");
    assert_eq!(v["files"], json!(["src/lib.rs", "src/main.rs"]));
    assert_eq!(v["matches"], json!([]));
    let v = run(&ctx, "fs.search", json!({"pattern": "e", "max_results": 1})).expect("search");
    assert_eq!(
        (
            v["matches"].as_array().expect("a").len(),
            v["truncated"].clone()
        ),
        (1, json!(true))
    );
    assert_eq!(
        code(run(&ctx, "fs.search", json!({"pattern": "("})))
            .1
            .as_deref(),
        Some("invalid_argument")
    );
    assert_eq!(
        code(run(
            &ctx,
            "fs.search",
            json!({"pattern": "x", "path": "outlink"})
        ))
        .0,
        "outside_root"
    );
}
