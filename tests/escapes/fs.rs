//! The file tools (`fs.read`, `fs.write`, `fs.edit`, `fs.list`, `fs.stat`, `fs.move`,
//! `fs.delete`, `fs.search`) attacked through `run_tool`: symlinks out of the root in every
//! position, a directory swapped for a symlink while calls run, hard links onto outside files,
//! FIFOs / sockets / device nodes, `/proc/self/root` and other magic links, the state dir and its
//! ancestors, sensitive names, and edits through symlinks. Legitimate work next to each attack
//! must keep working.

use std::os::unix::fs::{FileTypeExt, MetadataExt, symlink};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use codeward::ProjectOptions;
use codeward_tests::{TestProject, WAIT, call_in, empty_root, write_file};
use serde_json::{Value, json};

use super::{CANARY, Loot, s};

/// An outside dir holding `secret.txt` (the canary) and `victim.txt`.
fn outside() -> tempfile::TempDir {
    let d = empty_root();
    write_file(d.path(), "secret.txt", &format!("TOKEN={CANARY}\n"));
    write_file(d.path(), "victim.txt", "victim");
    write_file(d.path(), "dir/secret.txt", &format!("{CANARY}\n"));
    d
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| format!("<{e}>"))
}

/// The outside dir is exactly as [`outside`] made it.
fn assert_untouched(d: &Path) {
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["dir", "secret.txt", "victim.txt"], "outside dir");
    assert_eq!(read(&d.join("secret.txt")), format!("TOKEN={CANARY}\n"));
    assert_eq!(read(&d.join("victim.txt")), "victim");
    assert_eq!(read(&d.join("dir/secret.txt")), format!("{CANARY}\n"));
    let dir_names: Vec<_> = std::fs::read_dir(d.join("dir")).unwrap().collect();
    assert_eq!(dir_names.len(), 1, "outside dir/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_out_of_the_root_lead_nowhere_for_any_fs_tool() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let out = outside();
    let o = out.path();
    p.write("ok.txt", "fine");
    p.write("sub/inner.txt", "inner");
    symlink(o.join("secret.txt"), p.path("file-link")).unwrap();
    symlink(o, p.path("dir-link")).unwrap();
    symlink(o.join("dir"), p.path("sub/mid")).unwrap();
    symlink("../dir-link/victim.txt", p.path("sub/rel-link")).unwrap();
    symlink(o.join("new.txt"), p.path("dangling")).unwrap();
    let c = p.conversation().await;
    let mut loot = Loot::default();
    let attacks = [
        ("fs.read", json!({"path": "file-link"})),
        ("fs.read", json!({"path": "dir-link/secret.txt"})),
        ("fs.read", json!({"path": "sub/mid/secret.txt"})),
        ("fs.read", json!({"path": "sub/rel-link"})),
        ("fs.read", json!({"path": "sub/../dir-link/secret.txt"})),
        ("fs.read", json!({"path": "dir-link/../ok.txt"})),
        (
            "fs.read",
            json!({"path": "file-link", "encoding": "base64"}),
        ),
        ("fs.list", json!({"path": "dir-link"})),
        ("fs.list", json!({"path": "sub/mid", "recursive": true})),
        ("fs.stat", json!({"path": "dir-link/secret.txt"})),
        ("fs.stat", json!({"path": "sub/mid/secret.txt"})),
        (
            "fs.search",
            json!({"pattern": "ESCAPEcanary", "path": "dir-link"}),
        ),
        (
            "fs.search",
            json!({"pattern": "ESCAPEcanary", "path": "sub/mid"}),
        ),
        ("fs.search", json!({"path": "dir-link", "glob": ["*"]})),
        ("fs.write", json!({"path": "file-link", "content": "pwned"})),
        (
            "fs.write",
            json!({"path": "dir-link/victim.txt", "content": "pwned"}),
        ),
        (
            "fs.write",
            json!({"path": "sub/mid/planted.txt", "content": "pwned"}),
        ),
        ("fs.write", json!({"path": "dangling", "content": "pwned"})),
        (
            "fs.write",
            json!({"path": "sub/rel-link", "content": "pwned", "mode": "append"}),
        ),
        (
            "fs.edit",
            json!({"path": "dir-link/victim.txt", "old_string": "victim", "new_string": "pwned"}),
        ),
        (
            "fs.edit",
            json!({"path": "sub/rel-link", "old_string": "victim", "new_string": "pwned"}),
        ),
        (
            "fs.move",
            json!({"source": "ok.txt", "destination": "dir-link/victim.txt", "overwrite": true}),
        ),
        (
            "fs.move",
            json!({"source": "ok.txt", "destination": "sub/mid/ok.txt"}),
        ),
        (
            "fs.move",
            json!({"source": "dir-link/victim.txt", "destination": "stolen.txt"}),
        ),
        (
            "fs.move",
            json!({"source": "sub/mid/secret.txt", "destination": "stolen2.txt"}),
        ),
        ("fs.delete", json!({"path": "dir-link/victim.txt"})),
        (
            "fs.delete",
            json!({"path": "sub/mid/secret.txt", "recursive": true}),
        ),
        (
            "fs.delete",
            json!({"path": "dir-link/dir", "recursive": true}),
        ),
    ];
    for (name, args) in attacks {
        let r = p.run_call(call_in(name, args.clone(), &c)).await;
        loot.take(&r);
        match &r {
            Ok(ok) => panic!("{name} {args} succeeded: {}", ok.result),
            Err(f) => assert!(
                matches!(f.code(), "outside_root" | "tool_failed"),
                "{name} {args}: {}",
                f.error.to_json()
            ),
        }
    }
    assert_untouched(o);
    assert!(!p.path("stolen.txt").exists() && !p.path("stolen2.txt").exists());

    // Walks from the root never follow a link out.
    let listed = p
        .run_call(call_in(
            "fs.list",
            json!({"path": ".", "recursive": true, "max_depth": 16}),
            &c,
        ))
        .await;
    loot.take(&listed);
    let listed = listed.unwrap().result;
    let paths: Vec<&str> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(e, "path"))
        .collect();
    assert!(
        paths.contains(&"dir-link") && paths.contains(&"sub/mid"),
        "{paths:?}"
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with("dir-link/") || p.starts_with("sub/mid/")),
        "{paths:?}"
    );
    for e in listed["entries"].as_array().unwrap() {
        if s(e, "path").ends_with("link") || s(e, "path") == "sub/mid" {
            assert_eq!(e["type"], "symlink", "{e}");
        }
    }
    for args in [
        json!({"pattern": "ESCAPEcanary", "include_hidden": true, "respect_gitignore": false}),
        json!({"glob": ["**/*secret*"], "include_hidden": true}),
        json!({"pattern": "victim"}),
    ] {
        let r = p.run_call(call_in("fs.search", args.clone(), &c)).await;
        loot.take(&r);
        let r = r.unwrap().result;
        assert_eq!(r["matches"], json!([]), "{args}: {r}");
        assert_eq!(r["files"], json!([]), "{args}: {r}");
    }

    // fs.stat of a link never shows an outside target.
    for link in ["file-link", "dir-link", "sub/mid", "dangling"] {
        let r = p
            .run_call(call_in("fs.stat", json!({"path": link}), &c))
            .await;
        loot.take(&r);
        if let Ok(ok) = &r {
            assert_eq!(ok.result["symlink_target"], Value::Null, "{}", ok.result);
            assert!(
                !ok.result.to_string().contains(&o.display().to_string()),
                "{}",
                ok.result
            );
        }
    }

    // fs.delete of a link deletes the link, never the target.
    let r = p
        .run_call(call_in("fs.delete", json!({"path": "file-link"}), &c))
        .await;
    loot.take(&r);
    if r.is_ok() {
        assert!(p.path("file-link").symlink_metadata().is_err());
    }
    let r = p
        .run_call(call_in(
            "fs.delete",
            json!({"path": "dir-link", "recursive": true}),
            &c,
        ))
        .await;
    loot.take(&r);
    assert_untouched(o);
    symlink("ok.txt", p.path("in-link")).unwrap();
    symlink("sub", p.path("in-dir-link")).unwrap();
    p.ok("fs.delete", json!({"path": "in-link"})).await;
    p.ok(
        "fs.delete",
        json!({"path": "in-dir-link", "recursive": true}),
    )
    .await;
    assert!(p.path("in-link").symlink_metadata().is_err());
    assert!(p.path("in-dir-link").symlink_metadata().is_err());
    assert_eq!(read(&p.path("ok.txt")), "fine");
    assert_eq!(read(&p.path("sub/inner.txt")), "inner");

    // fs.move of a link onto a name inside moves the link itself.
    symlink("ok.txt", p.path("mv-link")).unwrap();
    p.ok(
        "fs.move",
        json!({"source": "mv-link", "destination": "sub/moved-link"}),
    )
    .await;
    assert!(
        p.path("sub/moved-link")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(read(&p.path("ok.txt")), "fine");

    // Legitimate work through links that stay inside is not denied.
    symlink("sub", p.path("good-dir")).unwrap();
    symlink("sub/inner.txt", p.path("good-file")).unwrap();
    assert_eq!(
        p.ok("fs.read", json!({"path": "good-file"})).await.result["content"],
        "inner"
    );
    assert_eq!(
        p.ok("fs.read", json!({"path": "good-dir/inner.txt"}))
            .await
            .result["content"],
        "inner"
    );
    p.ok(
        "fs.write",
        json!({"path": "good-dir/new.txt", "content": "n"}),
    )
    .await;
    assert_eq!(read(&p.path("sub/new.txt")), "n");
    p.ok("fs.list", json!({"path": "good-dir"})).await;
    loot.assert_clean(&p, Some(&c), CANARY).await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_edit_through_a_symlinked_file_edits_the_target_inside_and_nothing_outside() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let out = outside();
    p.write("real.txt", "alpha beta");
    symlink("real.txt", p.path("alias.txt")).unwrap();
    symlink(out.path().join("victim.txt"), p.path("out.txt")).unwrap();
    let ok = p
        .ok(
            "fs.edit",
            json!({"path": "alias.txt", "old_string": "beta", "new_string": "gamma"}),
        )
        .await;
    assert_eq!(ok.result["replacements"], 1, "{}", ok.result);
    assert_eq!(read(&p.path("real.txt")), "alpha gamma");
    assert!(
        p.path("alias.txt")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let f = p
        .fails(
            "fs.edit",
            json!({"path": "out.txt", "old_string": "victim", "new_string": "pwned"}),
        )
        .await;
    assert_eq!(f.code(), "outside_root", "{}", f.error.to_json());
    assert_untouched(out.path());
    p.engine.shutdown().await.unwrap();
}

/// Swaps `a` and `b` atomically (`RENAME_EXCHANGE`).
fn exchange(a: &Path, b: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes()).unwrap();
    let b = std::ffi::CString::new(b.as_os_str().as_bytes()).unwrap();
    // SAFETY: both are NUL-terminated paths that live across the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(r, 0, "renameat2: {}", std::io::Error::last_os_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_in_a_tight_loop_leaks_nothing() {
    const ROUNDS: usize = 2000;
    let p = TestProject::start(ProjectOptions::default()).await;
    let out = outside();
    let o = out.path().to_path_buf();
    // `d` flips between a real dir (with `secret.txt` and `victim.txt` of its own) and a
    // symlink to the outside dir.
    p.write("d/secret.txt", "inside secret");
    p.write("d/victim.txt", "inside victim");
    symlink(&o, p.path("d-alt")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = {
        let (stop, a, b) = (stop.clone(), p.path("d"), p.path("d-alt"));
        std::thread::spawn(move || {
            let mut n = 0u64;
            // Bounded even if the readers hang: at most ~10 million flips.
            while !stop.load(Ordering::Relaxed) && n < 10_000_000 {
                exchange(&a, &b);
                n += 1;
            }
            // Leave `d` a real dir.
            if n % 2 == 1 {
                exchange(&a, &b);
            }
            n
        })
    };
    let mut loot = Loot::default();
    let (mut ok_reads, mut denied) = (0u32, 0u32);
    for i in 0..ROUNDS {
        let (name, args) = match i % 8 {
            0..=2 => ("fs.read", json!({"path": "d/secret.txt"})),
            3 => ("fs.list", json!({"path": "d"})),
            4 => (
                "fs.search",
                json!({"pattern": "secret|ESCAPE", "path": "d"}),
            ),
            5 => (
                "fs.write",
                json!({"path": "d/planted.txt", "content": "pwned"}),
            ),
            6 => (
                "fs.edit",
                json!({"path": "d/victim.txt", "old_string": "victim", "new_string": "victim"}),
            ),
            _ => ("fs.stat", json!({"path": "d/secret.txt"})),
        };
        let r = p.run(name, args).await;
        if name == "fs.read" {
            match &r {
                Ok(ok) => {
                    assert_eq!(ok.result["content"], "inside secret", "{}", ok.result);
                    ok_reads += 1;
                }
                Err(_) => denied += 1,
            }
        }
        if let Ok(ok) = &r
            && name == "fs.stat"
        {
            // Outside the root a file has another inode; the one shown must be ours.
            assert_eq!(ok.result["size"], "inside secret".len(), "{}", ok.result);
        }
        loot.take(&r);
    }
    // Deletes and moves race too; the outside files must survive them.
    for _ in 0..200 {
        loot.take(&p.run("fs.delete", json!({"path": "d/victim.txt"})).await);
        loot.take(
            &p.run(
                "fs.move",
                json!({"source": "d/secret.txt", "destination": "moved.txt"}),
            )
            .await,
        );
        if p.path("moved.txt").exists() {
            assert_eq!(read(&p.path("moved.txt")), "inside secret");
            std::fs::remove_file(p.path("moved.txt")).unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = swaps.join().unwrap();
    assert!(flips > 0);
    let leaks = loot.leaks(CANARY);
    if leaks > 0 {
        let first = loot.0.iter().find(|s| s.contains(CANARY)).unwrap();
        panic!("{ROUNDS} rounds ({flips} flips): {leaks} leaks, first: {first}");
    }
    assert_untouched(&o);
    // The race really ran both ways at least once (else the test proves nothing).
    assert!(
        ok_reads > 0,
        "no read ever saw the real dir ({denied} denied)"
    );
    eprintln!("swap race: {flips} flips, {ok_reads} reads ok, {denied} refused, 0 leaks");
    loot.assert_clean(&p, None, CANARY).await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_links_to_outside_files_are_read_only_by_default_and_never_written_through() {
    let out = outside();
    let o = out.path();
    let root = empty_root();
    // Same file system as the outside dir (both temp dirs), so the link works.
    for name in [
        "hl-read",
        "hl-write",
        "hl-append",
        "hl-edit",
        "hl-move",
        "hl-del",
    ] {
        std::fs::hard_link(o.join("victim.txt"), root.path().join(name)).unwrap();
    }
    std::fs::hard_link(o.join("secret.txt"), root.path().join("hl-secret")).unwrap();
    let engine = codeward::Engine::start(codeward::EngineConfig::default())
        .await
        .unwrap();
    let p = TestProject::start_in(&engine, root, ProjectOptions::default()).await;
    // Reading is allowed by default (the file is inside the root by name).
    assert_eq!(
        p.ok("fs.read", json!({"path": "hl-read"})).await.result["content"],
        "victim"
    );
    let ino = std::fs::metadata(o.join("victim.txt")).unwrap().ino();
    p.ok("fs.write", json!({"path": "hl-write", "content": "new"}))
        .await;
    p.ok(
        "fs.write",
        json!({"path": "hl-append", "content": "+more", "mode": "append"}),
    )
    .await;
    p.ok(
        "fs.edit",
        json!({"path": "hl-edit", "old_string": "victim", "new_string": "edited"}),
    )
    .await;
    p.ok(
        "fs.move",
        json!({"source": "hl-move", "destination": "moved"}),
    )
    .await;
    p.ok("fs.delete", json!({"path": "hl-del"})).await;
    assert_eq!(read(&p.path("hl-write")), "new");
    assert_eq!(read(&p.path("hl-append")), "victim+more");
    assert_eq!(read(&p.path("hl-edit")), "edited");
    // The outside file kept its inode and its content.
    assert_eq!(std::fs::metadata(o.join("victim.txt")).unwrap().ino(), ino);
    assert_untouched(o);
    p.engine.shutdown().await.unwrap();

    // With deny_multiply_linked_files, reads, searches and edits of them are refused.
    let root = empty_root();
    std::fs::hard_link(o.join("secret.txt"), root.path().join("hl-secret")).unwrap();
    write_file(root.path(), "plain.txt", "plain ESCAPEcanary-free text");
    let engine = codeward::Engine::start(codeward::EngineConfig::default())
        .await
        .unwrap();
    let p = TestProject::start_in(
        &engine,
        root,
        ProjectOptions::default().deny_multiply_linked_files(true),
    )
    .await;
    let mut loot = Loot::default();
    for (name, args) in [
        ("fs.read", json!({"path": "hl-secret"})),
        (
            "fs.read",
            json!({"path": "hl-secret", "encoding": "base64"}),
        ),
        (
            "fs.edit",
            json!({"path": "hl-secret", "old_string": "TOKEN", "new_string": "T"}),
        ),
        (
            "fs.write",
            json!({"path": "hl-secret", "content": "x", "mode": "append"}),
        ),
    ] {
        let r = p.run(name, args.clone()).await;
        loot.take(&r);
        let f = r.expect_err(&format!("{name} {args}"));
        assert_eq!(f.code(), "tool_failed", "{name}: {}", f.error.to_json());
        assert_eq!(
            f.error.details()["reason"],
            "multiply_linked",
            "{}",
            f.error.to_json()
        );
    }
    let r = p.run("fs.search", json!({"pattern": "ESCAPEcanary"})).await;
    loot.take(&r);
    let r = r.unwrap().result;
    assert_eq!(r["matches"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["files"], json!(["plain.txt"]), "{r}");
    // Overwriting replaces the name; the outside file is untouched.
    p.ok("fs.write", json!({"path": "hl-secret", "content": "mine"}))
        .await;
    assert_eq!(
        p.ok("fs.read", json!({"path": "hl-secret"})).await.result["content"],
        "mine"
    );
    assert_untouched(o);
    loot.assert_clean(&p, None, CANARY).await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_sockets_and_devices_are_refused_without_hanging_other_calls() {
    let p = TestProject::start(ProjectOptions::default()).await;
    p.write("ok.txt", "ok");
    for i in 0..6 {
        let c = std::ffi::CString::new(p.path(&format!("pipe{i}")).to_str().unwrap()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }
    let _sock = std::os::unix::net::UnixListener::bind(p.path("sock")).unwrap();
    // A char device node inside the root (works as root; skipped otherwise).
    let dev = std::ffi::CString::new(p.path("zero").to_str().unwrap()).unwrap();
    // SAFETY: a valid path; makedev(1, 5) is /dev/zero.
    let have_dev =
        unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o644, libc::makedev(1, 5)) } == 0;
    // Six reads of FIFOs nobody writes to, plus every other fs tool on a FIFO, at once; an
    // ordinary read must still complete (bounded by a timeout around *it*, not a speed assert).
    let fifo_calls = (0..6).map(|i| {
        let path = format!("pipe{i}");
        let (name, args) = match i {
            0..=3 => ("fs.read", json!({"path": path})),
            4 => (
                "fs.edit",
                json!({"path": path, "old_string": "a", "new_string": "b"}),
            ),
            _ => (
                "fs.write",
                json!({"path": path, "content": "x", "mode": "append"}),
            ),
        };
        p.run(name, args)
    });
    let others = async {
        tokio::time::timeout(WAIT, async {
            let a = p.run("fs.read", json!({"path": "ok.txt"})).await;
            let b = p.run("fs.list", json!({"path": "."})).await;
            let c = p
                .run(
                    "fs.search",
                    json!({"pattern": "ok", "include_hidden": true}),
                )
                .await;
            (a, b, c)
        })
        .await
    };
    let (fifo_results, others) = tokio::join!(futures::future::join_all(fifo_calls), others);
    let (a, b, c) = others.expect("other fs calls completed while FIFO calls were pending");
    assert_eq!(a.unwrap().result["content"], "ok");
    b.unwrap();
    let c = c.unwrap().result;
    assert_eq!(c["files"], json!(["ok.txt"]), "{c}");
    for r in fifo_results {
        let f = r.expect_err("a FIFO is not a regular file");
        assert_eq!(f.code(), "tool_failed", "{}", f.error.to_json());
        assert_eq!(
            f.error.details()["reason"],
            "not_a_regular_file",
            "{}",
            f.error.to_json()
        );
    }
    let mut specials = vec!["sock"];
    if have_dev {
        specials.push("zero");
    }
    for name in specials {
        for (tool, args) in [
            ("fs.read", json!({"path": name})),
            ("fs.write", json!({"path": name, "content": "x"})),
            (
                "fs.write",
                json!({"path": name, "content": "x", "mode": "append"}),
            ),
            (
                "fs.edit",
                json!({"path": name, "old_string": "a", "new_string": "b"}),
            ),
        ] {
            let f = p.fails(tool, args.clone()).await;
            assert_eq!(
                f.code(),
                "tool_failed",
                "{tool} {args}: {}",
                f.error.to_json()
            );
            assert_eq!(
                f.error.details()["reason"],
                "not_a_regular_file",
                "{tool} {args}"
            );
        }
    }
    // Devices outside the root are outside the root.
    for path in [
        "/dev/zero",
        "/dev/urandom",
        "/dev/stdin",
        "/dev/fd/0",
        "/dev/tty",
    ] {
        let f = p.fails("fs.read", json!({"path": path})).await;
        assert_eq!(f.code(), "outside_root", "{path}: {}", f.error.to_json());
    }
    // `fs.write` overwrite of a FIFO refuses it too, without opening it.
    let f = p
        .fails(
            "fs.write",
            json!({"path": "pipe0", "content": "now a file"}),
        )
        .await;
    assert_eq!(
        f.error.details()["reason"],
        "not_a_regular_file",
        "{}",
        f.error.to_json()
    );
    assert!(
        std::fs::symlink_metadata(p.path("pipe0"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_magic_links_lead_nowhere_outside_the_root() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let out = outside();
    p.write("ok.txt", "fine");
    let o = out.path().display().to_string();
    let pid = std::process::id();
    // An fd of this process open on the outside secret: /proc/self/fd/N is a magic link to it.
    let held = std::fs::File::open(out.path().join("secret.txt")).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&held);
    symlink(format!("/proc/self/fd/{fd}"), p.path("fd-link")).unwrap();
    symlink(
        format!("/proc/{pid}/root{o}/secret.txt"),
        p.path("root-link"),
    )
    .unwrap();
    symlink("/proc/self/cwd", p.path("cwd-link")).unwrap();
    symlink("/proc/self/root", p.path("slash-link")).unwrap();
    let mut loot = Loot::default();
    for (name, args) in [
        (
            "fs.read",
            json!({"path": format!("/proc/self/root{o}/secret.txt")}),
        ),
        (
            "fs.read",
            json!({"path": format!("/proc/{pid}/root{o}/secret.txt")}),
        ),
        ("fs.read", json!({"path": format!("/proc/self/fd/{fd}")})),
        (
            "fs.read",
            json!({"path": format!("/proc/thread-self/fd/{fd}")}),
        ),
        ("fs.read", json!({"path": format!("/dev/fd/{fd}")})),
        ("fs.read", json!({"path": "/proc/self/cwd/Cargo.toml"})),
        ("fs.read", json!({"path": "/proc/self/environ"})),
        ("fs.read", json!({"path": "/proc/self/mem"})),
        ("fs.read", json!({"path": "fd-link"})),
        ("fs.read", json!({"path": "root-link"})),
        ("fs.read", json!({"path": "cwd-link/Cargo.toml"})),
        (
            "fs.read",
            json!({"path": format!("slash-link{o}/secret.txt")}),
        ),
        ("fs.list", json!({"path": "/proc/self/fd"})),
        ("fs.list", json!({"path": "slash-link"})),
        (
            "fs.search",
            json!({"pattern": "ESCAPE", "path": format!("/proc/self/root{o}")}),
        ),
        (
            "fs.write",
            json!({"path": format!("/proc/self/root{o}/victim.txt"), "content": "pwned"}),
        ),
        ("fs.write", json!({"path": "fd-link", "content": "pwned"})),
        (
            "fs.delete",
            json!({"path": format!("slash-link{o}/victim.txt")}),
        ),
    ] {
        let r = p.run(name, args.clone()).await;
        loot.take(&r);
        if let Ok(ok) = r {
            panic!("{name} {args} succeeded: {}", ok.result);
        }
    }
    drop(held);
    assert_untouched(out.path());
    // The root reached through /proc/self/root is still the root: legitimate, not denied.
    let abs = format!("/proc/self/root{}/ok.txt", p.root.display());
    let r = p.run("fs.read", json!({"path": abs})).await;
    if let Ok(ok) = &r {
        assert_eq!(ok.result["content"], "fine");
    }
    loot.assert_clean(&p, None, CANARY).await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_dir_and_its_ancestors_cannot_be_moved_deleted_or_read() {
    let p = TestProject::start(ProjectOptions::default()).await;
    p.write("ok.txt", "fine");
    // Put something in the journal first.
    p.ok("fs.read", json!({"path": "ok.txt"})).await;
    let state = p.path(".codeward/state");
    assert!(state.is_dir(), "the default state dir is inside the root");
    let journal_files = || {
        let mut v: Vec<String> = std::fs::read_dir(&state)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let before = journal_files();
    assert!(!before.is_empty());
    symlink(".codeward", p.path("data-link")).unwrap();
    symlink(".codeward/state", p.path("state-link")).unwrap();
    let mut loot = Loot::default();
    for (name, args) in [
        (
            "fs.move",
            json!({"source": ".codeward", "destination": "moved"}),
        ),
        (
            "fs.move",
            json!({"source": ".codeward/state", "destination": "moved"}),
        ),
        (
            "fs.move",
            json!({"source": "data-link/state", "destination": "moved"}),
        ),
        ("fs.delete", json!({"path": ".codeward", "recursive": true})),
        (
            "fs.delete",
            json!({"path": ".codeward/state", "recursive": true}),
        ),
        (
            "fs.delete",
            json!({"path": "data-link/state", "recursive": true}),
        ),
        (
            "fs.write",
            json!({"path": ".codeward/state/x", "content": "x"}),
        ),
        ("fs.write", json!({"path": "state-link/x", "content": "x"})),
        (
            "fs.write",
            json!({"path": "data-link/state/x", "content": "x"}),
        ),
        ("fs.read", json!({"path": "state-link/journal.sqlite"})),
        ("fs.list", json!({"path": "state-link"})),
        ("fs.stat", json!({"path": "data-link/state/journal.sqlite"})),
        ("fs.search", json!({"path": "state-link", "glob": ["*"]})),
        (
            "fs.move",
            json!({"source": "ok.txt", "destination": ".codeward/state/journal.sqlite", "overwrite": true}),
        ),
    ] {
        let r = p.run(name, args.clone()).await;
        loot.take(&r);
        match r {
            Ok(ok) => panic!("{name} {args} succeeded: {}", ok.result),
            Err(f) => assert!(
                matches!(f.code(), "sensitive_path_denied" | "tool_failed"),
                "{name} {args}: {}",
                f.error.to_json()
            ),
        }
    }
    assert_eq!(journal_files(), before);
    assert!(!p.path("moved").exists());
    // Listings and searches from the root (and through links) never show the state dir's contents.
    for (name, args) in [
        ("fs.list", json!({"path": ".", "recursive": true})),
        ("fs.list", json!({"path": "data-link", "recursive": true})),
        ("fs.search", json!({"include_hidden": true, "glob": ["**"]})),
        (
            "fs.search",
            json!({"path": "data-link", "include_hidden": true, "glob": ["**"]}),
        ),
    ] {
        let r = p.run(name, args.clone()).await;
        loot.take(&r);
        if let Ok(ok) = r {
            let text = ok.result.to_string();
            assert!(!text.contains("journal"), "{name} {args}: {text}");
        }
    }
    // The journal still works.
    p.ok("fs.read", json!({"path": "ok.txt"})).await;
    let d = p.diagnostics().await;
    assert!(d["journal"].is_object(), "{d}");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_paths_are_refused_for_writes_moves_and_links() {
    let p = TestProject::start(ProjectOptions::default()).await;
    p.write("ok.txt", "fine");
    p.write(".env", &format!("KEY={CANARY}\n"));
    p.write(".ssh/id_ed25519", CANARY);
    p.write("conf/.aws/credentials", CANARY);
    symlink(".env", p.path("notes.txt")).unwrap();
    symlink(".ssh", p.path("keys")).unwrap();
    let mut loot = Loot::default();
    for (name, args) in [
        ("fs.write", json!({"path": ".env", "content": "X=1"})),
        (
            "fs.write",
            json!({"path": ".ssh/authorized_keys", "content": "ssh-ed25519 AAAA"}),
        ),
        (
            "fs.write",
            json!({"path": "keys/authorized_keys", "content": "ssh-ed25519 AAAA"}),
        ),
        ("fs.write", json!({"path": "server.pem", "content": "x"})),
        ("fs.write", json!({"path": "notes.txt", "content": "x"})),
        (
            "fs.move",
            json!({"source": "ok.txt", "destination": ".env"}),
        ),
        (
            "fs.move",
            json!({"source": ".env", "destination": "env.txt"}),
        ),
        // Regression: a directory move carried sensitive files to names no pattern matches.
        (
            "fs.move",
            json!({"source": ".ssh", "destination": "ssh-copy"}),
        ),
        (
            "fs.move",
            json!({"source": "conf/.aws", "destination": "aws"}),
        ),
        ("fs.move", json!({"source": "conf", "destination": "conf2"})),
        ("fs.delete", json!({"path": "conf", "recursive": true})),
        (
            "fs.edit",
            json!({"path": "notes.txt", "old_string": "KEY", "new_string": "K"}),
        ),
        ("fs.read", json!({"path": "notes.txt"})),
        ("fs.read", json!({"path": "keys/id_ed25519"})),
        ("fs.read", json!({"path": ".ENV"})),
        ("fs.delete", json!({"path": ".ssh", "recursive": true})),
    ] {
        let r = p.run(name, args.clone()).await;
        loot.take(&r);
        match r {
            Ok(ok) => panic!("{name} {args} succeeded: {}", ok.result),
            Err(f) => assert!(
                matches!(f.code(), "sensitive_path_denied" | "tool_failed"),
                "{name} {args}: {}",
                f.error.to_json()
            ),
        }
    }
    for args in [
        json!({"pattern": "ESCAPEcanary", "include_hidden": true, "respect_gitignore": false}),
        json!({"pattern": "ESCAPEcanary", "path": "keys", "include_hidden": true}),
    ] {
        let r = p.run("fs.search", args.clone()).await;
        loot.take(&r);
        if let Ok(ok) = &r {
            assert_eq!(ok.result["matches"], json!([]), "{args}: {}", ok.result);
        }
    }
    // Moving a link to `.ssh` moves the link; through it the keys are still refused.
    p.ok("fs.move", json!({"source": "keys", "destination": "k2"}))
        .await;
    let f = p.fails("fs.read", json!({"path": "k2/id_ed25519"})).await;
    assert_eq!(f.code(), "sensitive_path_denied", "{}", f.error.to_json());
    // A directory holding no sensitive file moves and deletes as usual.
    p.write("docs/a/b.md", "b");
    p.ok("fs.move", json!({"source": "docs", "destination": "docs2"}))
        .await;
    p.ok("fs.delete", json!({"path": "docs2", "recursive": true}))
        .await;
    assert_eq!(read(&p.path(".env")), format!("KEY={CANARY}\n"));
    assert!(p.path(".ssh/id_ed25519").exists() && !p.path(".ssh/authorized_keys").exists());
    loot.assert_clean(&p, None, CANARY).await;
    p.engine.shutdown().await.unwrap();
}

/// Regression: `RESOLVE_BENEATH` keeps a swapped-in link inside the root, but not out of the
/// state dir or a sensitive directory inside it; opens that follow a link are now re-checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_link_to_the_state_dir_or_ssh_leaks_nothing() {
    const ROUNDS: usize = 600;
    let p = TestProject::start(ProjectOptions::default()).await;
    p.write(".ssh/known", CANARY);
    p.write("ssh-ish/known", "inside");
    symlink(".ssh", p.path("ssh-alt")).unwrap();
    p.write("state-ish/journal.sqlite", "inside");
    symlink(".codeward/state", p.path("state-alt")).unwrap();
    let state = p.path(".codeward/state");
    let state_names = || {
        let mut v: Vec<_> = std::fs::read_dir(&state)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        v.sort();
        v
    };
    let stop = Arc::new(AtomicBool::new(false));
    let swaps: Vec<_> = [("ssh-ish", "ssh-alt"), ("state-ish", "state-alt")]
        .into_iter()
        .map(|(a, b)| {
            let (stop, a, b) = (stop.clone(), p.path(a), p.path(b));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && n < 10_000_000 {
                    exchange(&a, &b);
                    n += 1;
                }
                if n % 2 == 1 {
                    exchange(&a, &b);
                }
                n
            })
        })
        .collect();
    let before = state_names();
    let mut loot = Loot::default();
    let mut wrong = Vec::new();
    for i in 0..ROUNDS {
        let (name, args) = match i % 6 {
            0 => ("fs.read", json!({"path": "ssh-ish/known"})),
            1 => (
                "fs.read",
                json!({"path": "state-ish/journal.sqlite", "encoding": "base64"}),
            ),
            2 => (
                "fs.search",
                json!({"pattern": ".", "path": "ssh-ish", "include_hidden": true}),
            ),
            3 => ("fs.list", json!({"path": "state-ish"})),
            4 => (
                "fs.write",
                json!({"path": "ssh-ish/planted", "content": "x"}),
            ),
            _ => (
                "fs.write",
                json!({"path": "state-ish/planted", "content": "x"}),
            ),
        };
        let r = p.run(name, args).await;
        if let Ok(ok) = &r {
            let text = ok.result.to_string();
            if name == "fs.read"
                && ok.result["content"] != "inside"
                && ok.result["content"] != "aW5zaWRl"
            {
                wrong.push(text.clone());
            }
            if name == "fs.list" && text.contains("journal.sqlite-") {
                wrong.push(text);
            }
        }
        loot.take(&r);
    }
    stop.store(true, Ordering::Relaxed);
    for s in swaps {
        assert!(s.join().unwrap() > 0);
    }
    assert_eq!(loot.leaks(CANARY), 0, "the canary in .ssh leaked");
    assert_eq!(
        wrong,
        Vec::<String>::new(),
        "a read landed in .ssh or the state dir"
    );
    assert!(!p.path(".ssh/planted").exists(), "a write landed in .ssh");
    assert!(
        !state.join("planted").exists(),
        "a write landed in the state dir"
    );
    assert!(before.iter().all(|n| state_names().contains(n)));
    p.engine.shutdown().await.unwrap();
}
