//! Attacks on the filesystem tools: symlink swap races during `fs.read`/`fs.write`, FIFOs with
//! no writer, hard links onto outside files, `..`, absolute paths, symlinks out of the root.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use super::support::{Opts, Project, code, run};

const CANARY: &str = "OUTSIDE-CANARY";

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_bytes()).expect("cstr");
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Atomically exchanges two names (RENAME_EXCHANGE).
fn exchange(a: &Path, b: &Path) {
    let a = CString::new(a.as_os_str().as_bytes()).expect("cstr");
    let b = CString::new(b.as_os_str().as_bytes()).expect("cstr");
    // SAFETY: both paths are valid NUL-terminated strings.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(
        r,
        0,
        "renameat2 exchange: {}",
        std::io::Error::last_os_error()
    );
}

/// Sets up `root/dir` (a real dir holding `f` = "inside") and `root/stage` (a symlink to the
/// outside dir holding `f` = canary), then starts a thread that swaps them until stopped.
fn swapper(p: &Project) -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    p.write("dir/f", "inside");
    std::fs::write(p.outside.join("f"), CANARY).expect("canary");
    std::os::unix::fs::symlink(&p.outside, p.root.join("stage")).expect("symlink");
    let stop = Arc::new(AtomicBool::new(false));
    let (a, b) = (p.root.join("dir"), p.root.join("stage"));
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let mut flips = 0u64;
        while !s.load(Ordering::Relaxed) {
            exchange(&a, &b);
            flips += 1;
        }
        flips
    });
    (stop, h)
}

fn race_read(fallback: bool) {
    codeward_tools::fs::force_walk_fallback(fallback);
    let p = Project::new();
    let ctx = p.ctx();
    let (stop, h) = swapper(&p);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let (mut inside, mut refused) = (0u32, 0u32);
    for _ in 0..3000 {
        match rt.block_on(codeward_tools::call_builtin(
            "fs.read",
            &ctx,
            json!({"path": "dir/f"}),
        )) {
            Ok(v) => {
                assert_ne!(v["content"], CANARY, "outside canary leaked");
                assert_eq!(v["content"], "inside");
                inside += 1;
            }
            Err(e) => {
                assert!(
                    matches!(e.code(), "outside_root" | "invalid_path" | "tool_failed"),
                    "unexpected {e:?}"
                );
                refused += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = h.join().expect("swapper");
    eprintln!("race_read(fallback={fallback}): {inside} inside, {refused} refused, {flips} flips");
    assert!(flips > 0 && inside + refused == 3000);
}

#[test]
fn symlink_swap_race_never_reads_outside_openat2() {
    race_read(false);
}

#[test]
fn symlink_swap_race_never_reads_outside_walk_fallback() {
    race_read(true);
}

fn race_write(fallback: bool) {
    codeward_tools::fs::force_walk_fallback(fallback);
    let p = Project::new();
    let ctx = p.ctx();
    let (stop, h) = swapper(&p);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let mut ok = 0u32;
    for i in 0..1500 {
        let args = match i % 3 {
            0 => json!({"path": "dir/f", "content": "written"}),
            1 => json!({"path": "dir/f", "content": "more", "mode": "append"}),
            _ => json!({"path": "dir/g", "content": "new", "mode": "create_new"}),
        };
        if rt
            .block_on(codeward_tools::call_builtin("fs.write", &ctx, args))
            .is_ok()
        {
            ok += 1;
        }
        assert!(!p.outside.join("g").exists(), "a file was created outside");
        let _ = std::fs::remove_file(p.root.join("dir/g"))
            .or_else(|_| std::fs::remove_file(p.root.join("stage/g")));
    }
    stop.store(true, Ordering::Relaxed);
    h.join().expect("swapper");
    assert_eq!(
        std::fs::read_to_string(p.outside.join("f")).expect("canary"),
        CANARY
    );
    let outside: Vec<_> = std::fs::read_dir(&p.outside)
        .expect("ls")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(
        outside,
        vec![std::ffi::OsString::from("f")],
        "nothing created outside"
    );
    eprintln!("race_write(fallback={fallback}): {ok} of 1500 writes landed inside");
    assert!(ok > 0);
}

#[test]
fn symlink_swap_race_never_writes_outside_openat2() {
    race_write(false);
}

#[test]
fn symlink_swap_race_never_writes_outside_walk_fallback() {
    race_write(true);
}

#[test]
fn fifo_without_writer_is_refused_at_once() {
    let p = Project::new();
    mkfifo(&p.root.join("pipe"));
    let ctx = p.ctx();
    let r = run(&ctx, "fs.read", json!({"path": "pipe"}));
    assert_eq!(
        code(r),
        ("tool_failed".into(), Some("not_a_regular_file".into()))
    );
    for args in [
        json!({"path": "pipe", "content": "x"}),
        json!({"path": "pipe", "content": "x", "mode": "append"}),
    ] {
        assert_eq!(
            code(run(&ctx, "fs.write", args)),
            ("tool_failed".into(), Some("not_a_regular_file".into()))
        );
    }
    let r = run(
        &ctx,
        "fs.edit",
        json!({"path": "pipe", "old_string": "a", "new_string": "b"}),
    );
    assert_eq!(
        code(r),
        ("tool_failed".into(), Some("not_a_regular_file".into()))
    );
}

#[test]
fn many_parallel_fifo_reads_do_not_hang_the_pool() {
    let p = Project::new();
    for i in 0..32 {
        mkfifo(&p.root.join(format!("pipe{i}")));
    }
    p.write("ok.txt", "fine");
    let ctx = p.ctx();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..32 {
            let ctx = ctx.clone();
            set.spawn(async move {
                codeward_tools::call_builtin("fs.read", &ctx, json!({"path": format!("pipe{i}")}))
                    .await
            });
        }
        // A hang would fail here (generous bound, not a speed assertion).
        let all = tokio::time::timeout(Duration::from_secs(60), set.join_all())
            .await
            .expect("fifo reads hung");
        assert_eq!(all.len(), 32);
        for r in all {
            assert_eq!(
                code(r),
                ("tool_failed".into(), Some("not_a_regular_file".into()))
            );
        }
        let ok = codeward_tools::call_builtin("fs.read", &ctx, json!({"path": "ok.txt"}))
            .await
            .expect("read");
        assert_eq!(ok["content"], "fine");
    });
}

#[test]
fn devices_and_sockets_are_not_regular_files() {
    let p = Project::new();
    std::os::unix::fs::symlink("/dev/zero", p.root.join("zero")).expect("symlink");
    let _sock = std::os::unix::net::UnixListener::bind(p.root.join("sock")).expect("bind");
    let ctx = p.ctx();
    assert_eq!(
        code(run(&ctx, "fs.read", json!({"path": "sock"}))),
        ("tool_failed".into(), Some("not_a_regular_file".into()))
    );
    // The symlink leads out of the root: the kernel refuses to follow it beneath the root fd.
    assert_eq!(
        code(run(&ctx, "fs.read", json!({"path": "zero"}))).0,
        "outside_root"
    );
}

fn hardlinked(p: &Project) -> std::path::PathBuf {
    let outside = p.outside.join("secret");
    std::fs::write(&outside, CANARY).expect("secret");
    std::fs::hard_link(&outside, p.root.join("window")).expect("link");
    outside
}

#[test]
fn hard_linked_outside_file_is_refused_when_configured() {
    let p = Project::new();
    hardlinked(&p);
    let ctx = p.ctx_with(Opts {
        deny_multiply_linked_files: true,
        ..Opts::default()
    });
    let err = run(&ctx, "fs.read", json!({"path": "window"})).expect_err("refused");
    assert_eq!(err.reason().map(|r| r.as_str()), Some("multiply_linked"));
    assert!(
        err.to_string().contains("deny_multiply_linked_files"),
        "{err}"
    );
    let r = run(
        &ctx,
        "fs.edit",
        json!({"path": "window", "old_string": "OUT", "new_string": "x"}),
    );
    assert_eq!(code(r).1.as_deref(), Some("multiply_linked"));
    let r = run(
        &ctx,
        "fs.write",
        json!({"path": "window", "content": "x", "mode": "append"}),
    );
    assert_eq!(code(r).1.as_deref(), Some("multiply_linked"));
}

#[test]
fn hard_linked_outside_file_is_read_by_default() {
    let p = Project::new();
    hardlinked(&p);
    let v = run(&p.ctx(), "fs.read", json!({"path": "window"})).expect("read");
    assert_eq!(v["content"], CANARY);
}

#[test]
fn writes_replace_a_hard_link_and_never_write_through_it() {
    let p = Project::new();
    let outside = hardlinked(&p);
    let ctx = p.ctx();
    run(
        &ctx,
        "fs.write",
        json!({"path": "window", "content": "new"}),
    )
    .expect("overwrite");
    assert_eq!(std::fs::read_to_string(&outside).expect("o"), CANARY);
    assert_eq!(
        std::fs::read_to_string(p.root.join("window")).expect("w"),
        "new"
    );

    std::fs::remove_file(p.root.join("window")).expect("rm");
    std::fs::hard_link(&outside, p.root.join("window")).expect("link");
    run(
        &ctx,
        "fs.write",
        json!({"path": "window", "content": "+tail", "mode": "append"}),
    )
    .expect("append");
    assert_eq!(std::fs::read_to_string(&outside).expect("o"), CANARY);
    assert_eq!(
        std::fs::read_to_string(p.root.join("window")).expect("w"),
        format!("{CANARY}+tail")
    );

    std::fs::remove_file(p.root.join("window")).expect("rm");
    std::fs::hard_link(&outside, p.root.join("window")).expect("link");
    run(
        &ctx,
        "fs.edit",
        json!({"path": "window", "old_string": "CANARY", "new_string": "EDITED"}),
    )
    .expect("edit");
    assert_eq!(std::fs::read_to_string(&outside).expect("o"), CANARY);
    assert_eq!(
        std::fs::read_to_string(p.root.join("window")).expect("w"),
        "OUTSIDE-EDITED"
    );
}

#[test]
fn dotdot_absolute_and_symlink_escapes_are_denied() {
    let p = Project::new();
    std::fs::write(p.outside.join("secret"), CANARY).expect("secret");
    std::os::unix::fs::symlink(&p.outside, p.root.join("out")).expect("symlink");
    std::os::unix::fs::symlink("../outside/secret", p.root.join("rel_out")).expect("symlink");
    p.write("sub/x", "x");
    let ctx = p.ctx();
    let secret_abs = p.outside.join("secret").to_string_lossy().into_owned();
    for path in [
        "../outside/secret",
        "sub/../../outside/secret",
        secret_abs.as_str(),
        "/etc/passwd",
        "out/secret",
        "rel_out",
        "sub/../out/secret",
    ] {
        let err = run(&ctx, "fs.read", json!({ "path": path })).expect_err(path);
        assert_eq!(err.code(), "outside_root", "{path}: {err:?}");
        let err = run(
            &ctx,
            "fs.write",
            json!({ "path": path, "content": "pwned" }),
        )
        .expect_err(path);
        assert!(
            matches!(err.code(), "outside_root" | "invalid_path"),
            "{path}: {err:?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(p.outside.join("secret")).expect("secret"),
        CANARY
    );
    // `..` that stays inside is fine.
    assert_eq!(
        run(&ctx, "fs.read", json!({"path": "sub/../sub/x"})).expect("read")["content"],
        "x"
    );
    let abs = p.root.join("sub/x").to_string_lossy().into_owned();
    assert_eq!(
        run(&ctx, "fs.read", json!({ "path": abs })).expect("read")["path"],
        "sub/x"
    );
}

#[test]
fn outside_root_exception_is_opened_from_its_own_root() {
    let p = Project::new();
    std::fs::write(p.outside.join("doc.txt"), "shared doc").expect("doc");
    let ctx = p.ctx_with(Opts {
        outside_root_read: vec![p.outside.clone()],
        ..Opts::default()
    });
    let abs = p.outside.join("doc.txt").to_string_lossy().into_owned();
    let v = run(&ctx, "fs.read", json!({ "path": abs })).expect("read");
    assert_eq!(v["content"], "shared doc");
    assert_eq!(v["path"], abs);
    // Read-only exception: writing there is denied.
    assert!(run(&ctx, "fs.write", json!({ "path": abs, "content": "x" })).is_err());
}

#[test]
fn state_dir_inside_the_root_is_unreachable() {
    let p = Project::new();
    p.write(".codeward/journal.db", "needle journal");
    p.write("src/a.txt", "needle");
    let ctx = p.ctx_with(Opts {
        state_dir: Some(p.root.join(".codeward")),
        ..Opts::default()
    });
    let err = run(&ctx, "fs.read", json!({"path": ".codeward/journal.db"})).expect_err("denied");
    assert_eq!(err.code(), "sensitive_path_denied");
    let v = run(
        &ctx,
        "fs.search",
        json!({"pattern": "needle", "include_hidden": true}),
    )
    .expect("search");
    assert_eq!(v["files"], json!(["src/a.txt"]));
    let v = run(&ctx, "fs.list", json!({"recursive": true})).expect("list");
    let paths: Vec<_> = v["entries"]
        .as_array()
        .expect("a")
        .iter()
        .map(|e| e["path"].clone())
        .collect();
    assert_eq!(paths, vec![json!("src"), json!("src/a.txt")]);
}
