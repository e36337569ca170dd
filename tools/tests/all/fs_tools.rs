//! Behaviour of the filesystem tools on ordinary inputs.

use serde_json::json;

use super::support::{Project, code, run};

#[test]
fn read_windows_and_encodings() {
    let p = Project::new();
    p.write("a.txt", "hello world");
    let ctx = p.ctx();
    let v = run(&ctx, "fs.read", json!({"path": "a.txt"})).expect("read");
    assert_eq!(
        v,
        json!({"path": "a.txt", "size": 11, "content": "hello world", "encoding": "utf8", "truncated": false, "next_offset": null})
    );
    let v = run(
        &ctx,
        "fs.read",
        json!({"path": "./a.txt", "offset": 6, "max_bytes": 3}),
    )
    .expect("read");
    assert_eq!(
        v,
        json!({"path": "a.txt", "size": 11, "content": "wor", "encoding": "utf8", "truncated": true, "next_offset": 9})
    );
    let v = run(
        &ctx,
        "fs.read",
        json!({"path": "a.txt", "encoding": "base64", "max_bytes": 5}),
    )
    .expect("read");
    assert_eq!(v["content"], "aGVsbG8=");
}

#[test]
fn read_errors_are_typed() {
    let p = Project::new();
    std::fs::write(p.root.join("bin"), [0xff, 0xfe, 0x00]).expect("bin");
    std::fs::create_dir(p.root.join("d")).expect("d");
    let ctx = p.ctx();
    assert_eq!(
        code(run(&ctx, "fs.read", json!({"path": "bin"})))
            .1
            .as_deref(),
        Some("not_utf8")
    );
    assert_eq!(
        code(run(&ctx, "fs.read", json!({"path": "d"})))
            .1
            .as_deref(),
        Some("is_a_directory")
    );
    assert_eq!(
        code(run(&ctx, "fs.read", json!({"path": "nope"})))
            .1
            .as_deref(),
        Some("not_found")
    );
    assert_eq!(
        code(run(&ctx, "fs.read", json!({"path": "a\u{0}b"}))).0,
        "invalid_path"
    );
    assert_eq!(
        code(run(&ctx, "fs.read", json!({"path": "a.txt", "bogus": 1}))).0,
        "invalid_tool_args"
    );
    assert_eq!(code(run(&ctx, "fs.nope", json!({}))).0, "unknown_tool");
}

#[test]
fn read_stays_within_the_output_budget() {
    let p = Project::new();
    p.write("big.txt", &"\"x\n".repeat(200_000));
    let mut ctx = p.ctx();
    ctx.limits.max_output_bytes = 16 * 1024;
    let v = run(&ctx, "fs.read", json!({"path": "big.txt"})).expect("read");
    assert_eq!(v["truncated"], true);
    assert!(serde_json::to_string(&v).expect("json").len() <= 16 * 1024 - 4096);
    let next = v["next_offset"].as_u64().expect("next");
    assert_eq!(next as usize, v["content"].as_str().expect("s").len());
}

#[test]
fn read_cuts_a_window_at_a_character_boundary() {
    let p = Project::new();
    p.write("u.txt", "aé");
    let v = run(
        &p.ctx(),
        "fs.read",
        json!({"path": "u.txt", "max_bytes": 2}),
    )
    .expect("read");
    assert_eq!(
        (v["content"].as_str(), v["next_offset"].as_u64()),
        (Some("a"), Some(1))
    );
}

#[test]
fn write_modes() {
    let p = Project::new();
    let ctx = p.ctx();
    let v = run(
        &ctx,
        "fs.write",
        json!({"path": "n/e/w.txt", "content": "one", "create_parents": true}),
    )
    .expect("w");
    assert_eq!(
        v,
        json!({"path": "n/e/w.txt", "bytes_written": 3, "created": true})
    );
    let v = run(
        &ctx,
        "fs.write",
        json!({"path": "n/e/w.txt", "content": "two"}),
    )
    .expect("w");
    assert_eq!(v["created"], false);
    run(
        &ctx,
        "fs.write",
        json!({"path": "n/e/w.txt", "content": "+3", "mode": "append"}),
    )
    .expect("append");
    assert_eq!(
        std::fs::read_to_string(p.root.join("n/e/w.txt")).expect("r"),
        "two+3"
    );
    let r = run(
        &ctx,
        "fs.write",
        json!({"path": "n/e/w.txt", "content": "x", "mode": "create_new"}),
    );
    assert_eq!(code(r).1.as_deref(), Some("already_exists"));
    let r = run(
        &ctx,
        "fs.write",
        json!({"path": "missing/dir/x", "content": "x"}),
    );
    assert_eq!(code(r).1.as_deref(), Some("not_found"));
    run(
        &ctx,
        "fs.write",
        json!({"path": "b.bin", "content": "AAEC", "encoding": "base64"}),
    )
    .expect("b64");
    assert_eq!(
        std::fs::read(p.root.join("b.bin")).expect("r"),
        vec![0, 1, 2]
    );
    let r = run(&ctx, "fs.write", json!({"path": "n", "content": "x"}));
    assert_eq!(code(r).1.as_deref(), Some("is_a_directory"));
    // No temp files left behind.
    let names: Vec<_> = std::fs::read_dir(p.root.join("n/e"))
        .expect("ls")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("w.txt")]);
}

#[test]
fn write_keeps_the_mode_and_follows_an_inside_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new();
    let f = p.write("run.sh", "#!/bin/sh\n");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::symlink("run.sh", p.root.join("alias")).expect("symlink");
    let ctx = p.ctx();
    let v = run(
        &ctx,
        "fs.write",
        json!({"path": "alias", "content": "echo hi\n"}),
    )
    .expect("write");
    assert_eq!(v["path"], "run.sh");
    assert!(
        std::fs::symlink_metadata(p.root.join("alias"))
            .expect("m")
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&f).expect("r"), "echo hi\n");
    assert_eq!(
        std::fs::metadata(&f).expect("m").permissions().mode() & 0o777,
        0o755
    );
}

#[test]
fn edit_requires_a_unique_match() {
    let p = Project::new();
    p.write("e.txt", "foo bar foo");
    let ctx = p.ctx();
    let r = run(
        &ctx,
        "fs.edit",
        json!({"path": "e.txt", "old_string": "foo", "new_string": "baz"}),
    );
    let err = r.expect_err("not unique");
    assert_eq!(err.reason().map(|r| r.as_str()), Some("not_unique"));
    assert_eq!(err.details()["details"]["count"], 2);
    let r = run(
        &ctx,
        "fs.edit",
        json!({"path": "e.txt", "old_string": "qux", "new_string": "baz"}),
    );
    assert_eq!(code(r).1.as_deref(), Some("no_match"));
    let v = run(
        &ctx,
        "fs.edit",
        json!({"path": "e.txt", "old_string": "bar", "new_string": "BAR"}),
    )
    .expect("edit");
    assert_eq!(v, json!({"path": "e.txt", "replacements": 1}));
    let v = run(
        &ctx,
        "fs.edit",
        json!({"path": "e.txt", "old_string": "foo", "new_string": "f", "replace_all": true}),
    )
    .expect("edit");
    assert_eq!(v["replacements"], 2);
    assert_eq!(
        std::fs::read_to_string(p.root.join("e.txt")).expect("r"),
        "f BAR f"
    );
}

#[test]
fn list_depth_hidden_and_symlinks() {
    let p = Project::new();
    p.write("a/b/c.txt", "c");
    p.write(".hidden", "h");
    std::os::unix::fs::symlink(&p.outside, p.root.join("link")).expect("symlink");
    std::fs::write(p.outside.join("secret"), "s").expect("secret");
    let ctx = p.ctx();
    let v = run(&ctx, "fs.list", json!({})).expect("list");
    let paths: Vec<_> = v["entries"]
        .as_array()
        .expect("a")
        .iter()
        .map(|e| (e["path"].clone(), e["type"].clone()))
        .collect();
    assert_eq!(
        paths,
        vec![
            (json!(".hidden"), json!("file")),
            (json!("a"), json!("directory")),
            (json!("link"), json!("symlink"))
        ]
    );
    let v = run(
        &ctx,
        "fs.list",
        json!({"recursive": true, "include_hidden": false}),
    )
    .expect("list");
    let paths: Vec<_> = v["entries"]
        .as_array()
        .expect("a")
        .iter()
        .map(|e| e["path"].as_str().expect("s").to_owned())
        .collect();
    assert_eq!(paths, vec!["a", "a/b", "a/b/c.txt", "link"]);
    let v = run(
        &ctx,
        "fs.list",
        json!({"recursive": true, "max_entries": 2}),
    )
    .expect("list");
    assert_eq!(
        (
            v["entries"].as_array().expect("a").len(),
            v["truncated"].clone()
        ),
        (2, json!(true))
    );
    assert_eq!(
        code(run(&ctx, "fs.list", json!({"path": "link"}))).0,
        "outside_root"
    );
}

#[test]
fn stat_shows_inside_targets_only() {
    let p = Project::new();
    p.write("t.txt", "12345");
    std::os::unix::fs::symlink("t.txt", p.root.join("in")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", p.root.join("out")).expect("symlink");
    let ctx = p.ctx();
    let v = run(&ctx, "fs.stat", json!({"path": "t.txt"})).expect("stat");
    assert_eq!(
        (
            v["type"].clone(),
            v["size"].clone(),
            v["is_symlink"].clone()
        ),
        (json!("file"), json!(5), json!(false))
    );
    let v = run(&ctx, "fs.stat", json!({"path": "in"})).expect("stat");
    assert_eq!(
        (v["is_symlink"].clone(), v["symlink_target"].clone()),
        (json!(true), json!("t.txt"))
    );
    let v = run(&ctx, "fs.stat", json!({"path": "out"})).expect("stat");
    assert_eq!(
        (v["is_symlink"].clone(), v["symlink_target"].clone()),
        (json!(true), json!(null))
    );
    assert_eq!(
        run(&ctx, "fs.stat", json!({"path": "."})).expect("stat")["type"],
        "directory"
    );
}

#[test]
fn move_and_delete() {
    let p = Project::new();
    p.write("m.txt", "m");
    p.write("x.txt", "x");
    p.write("tree/a/b", "b");
    std::os::unix::fs::symlink(&p.outside, p.root.join("link")).expect("symlink");
    std::fs::write(p.outside.join("keep"), "keep").expect("keep");
    let ctx = p.ctx();
    let r = run(
        &ctx,
        "fs.move",
        json!({"source": "m.txt", "destination": "x.txt"}),
    );
    assert_eq!(code(r).1.as_deref(), Some("already_exists"));
    let v = run(
        &ctx,
        "fs.move",
        json!({"source": "m.txt", "destination": "new/m2.txt", "create_parents": true}),
    )
    .expect("move");
    assert_eq!(v, json!({"source": "m.txt", "destination": "new/m2.txt"}));
    run(
        &ctx,
        "fs.move",
        json!({"source": "new/m2.txt", "destination": "x.txt", "overwrite": true}),
    )
    .expect("move");
    assert_eq!(
        std::fs::read_to_string(p.root.join("x.txt")).expect("r"),
        "m"
    );
    let r = run(&ctx, "fs.delete", json!({"path": "tree"}));
    assert_eq!(code(r).1.as_deref(), Some("directory_not_empty"));
    let v = run(
        &ctx,
        "fs.delete",
        json!({"path": "tree", "recursive": true}),
    )
    .expect("delete");
    assert_eq!(
        v,
        json!({"path": "tree", "type": "directory", "removed": 3})
    );
    let v = run(
        &ctx,
        "fs.delete",
        json!({"path": "link", "recursive": true}),
    )
    .expect("delete");
    assert_eq!(v["type"], "symlink");
    assert_eq!(
        std::fs::read_to_string(p.outside.join("keep")).expect("kept"),
        "keep"
    );
    assert_eq!(
        code(run(&ctx, "fs.delete", json!({"path": "."})))
            .1
            .as_deref(),
        Some("permission_denied")
    );
}

#[test]
fn list_can_respect_gitignore() {
    let p = Project::new();
    p.write(".gitignore", "target/\n*.log\n");
    p.write("target/debug/x", "x");
    p.write("src/a.rs", "a");
    p.write("src/b.log", "b");
    p.write("src/.gitignore", "!keep.log\n");
    p.write("src/keep.log", "k");
    p.write(".git/HEAD", "ref");
    let ctx = p.ctx();
    let v = run(
        &ctx,
        "fs.list",
        json!({"recursive": true, "respect_gitignore": true}),
    )
    .expect("list");
    let paths: Vec<_> = v["entries"]
        .as_array()
        .expect("a")
        .iter()
        .map(|e| e["path"].as_str().expect("s").to_owned())
        .collect();
    assert_eq!(
        paths,
        vec![
            ".gitignore",
            "src",
            "src/.gitignore",
            "src/a.rs",
            "src/keep.log"
        ]
    );
    let v = run(&ctx, "fs.list", json!({"recursive": true})).expect("list");
    assert_eq!(v["entries"].as_array().expect("a").len(), 11);
}
