//! SPEC §5.4–5.5 through `run_tool` with the real fs tools: `..` escapes, absolute paths,
//! symlinks to the outside and chains of them, the kernel order `link/../x`, the `root_evil`
//! sibling prefix, sensitive files (built-in and from options, case-insensitively), the default
//! `.env.example` exemption, outside-root exceptions with `read` vs `read_write`, the state dir,
//! and JSON-in-string payloads for provider tools whose schema is not complete (§5.2).
//!
//! Every denial must come with `policy.denied` and the matching `security.*` event (checked in
//! `telemetry.recent_events` by correlation id) and a decision record naming the reason.

use std::os::unix::fs::symlink;
use std::path::Path;

use codeward::{ProjectOptions, ToolFailure};
use codeward_tests::{TestProject, array, empty_root, write_file};
use serde_json::{Value, json};

/// Runs `name(args)`, expects `code`, and checks the decision record and the events.
async fn denied(
    p: &TestProject,
    name: &str,
    args: Value,
    code: &str,
    security: &str,
) -> ToolFailure {
    let f = p.fails(name, args.clone()).await;
    assert_eq!(f.code(), code, "{name} {args}: {}", f.error.to_json());
    let decision = p.wait_decision(&f.tool_call_id).await;
    assert_eq!(decision["decision"], "deny", "{decision}");
    assert_eq!(decision["reason_code"], code, "{decision}");
    assert_eq!(
        Some(decision["decision_id"].as_str().unwrap()),
        f.decision_id.as_deref()
    );
    assert!(
        !decision["explain"].as_str().unwrap_or_default().is_empty(),
        "{decision}"
    );
    p.wait_event_of("policy.denied", &f.correlation_id).await;
    p.wait_event_of(security, &f.correlation_id).await;
    let failed = p
        .wait_event_of("conversation.tool.failed", &f.correlation_id)
        .await;
    assert_eq!(failed["reason"], code, "{failed}");
    // A denied call never started.
    let events = p.recent_events().await;
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "conversation.tool.started"
                && e["correlation_id"] == f.correlation_id.as_str()),
        "{name} {args} started although denied"
    );
    f
}

async fn outside(p: &TestProject, name: &str, args: Value) -> ToolFailure {
    denied(p, name, args, "outside_root", "security.sandbox_violation").await
}

async fn sensitive(p: &TestProject, name: &str, args: Value) -> ToolFailure {
    denied(
        p,
        name,
        args,
        "sensitive_path_denied",
        "security.sensitive_path_denied",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_and_absolute_escapes_are_outside_root() {
    let p = TestProject::start(ProjectOptions::default()).await;
    p.write("hello.txt", "hello");
    p.write("sub/inner.txt", "inner");
    // A sibling of the root (same parent), outside every allowed area.
    let sibling = tempfile::tempdir_in(p.root.parent().unwrap()).unwrap();
    write_file(sibling.path(), "secret.txt", "sibling secret");
    let away = sibling
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let away_abs = sibling.path().display().to_string();
    for (name, args) in [
        ("fs.read", json!({"path": "../../../../etc/passwd"})),
        ("fs.read", json!({"path": "sub/../../outside.txt"})),
        ("fs.read", json!({"path": "/etc/passwd"})),
        ("fs.list", json!({"path": ".."})),
        ("fs.stat", json!({"path": "/"})),
        ("fs.write", json!({"path": "../escape.txt", "content": "x"})),
        (
            "fs.move",
            json!({"source": "hello.txt", "destination": "../moved.txt"}),
        ),
        ("fs.search", json!({"pattern": "root", "path": "/etc"})),
        // Commands may read `command_read_paths` (/etc, /usr, …), nothing else outside.
        (
            "command.run",
            json!({"argv": ["cat", format!("../{away}/secret.txt")]}),
        ),
        ("command.run", json!({"argv": ["ls"], "cwd": away_abs})),
        (
            "command.run",
            json!({"command": format!("cat {away_abs}/secret.txt")}),
        ),
        (
            "command.run",
            json!({"argv": ["cp", "hello.txt", format!("{away_abs}/copy")]}),
        ),
    ] {
        let f = outside(&p, name, args.clone()).await;
        let d = f.error.details();
        assert!(d["path"].is_string(), "{name} {args}: {d}");
        assert!(d["location"].is_string(), "{name} {args}: {d}");
    }
    // The file that would have been written or moved is not there.
    assert!(!p.root.parent().unwrap().join("escape.txt").exists());
    assert!(!sibling.path().join("copy").exists());
    assert!(p.path("hello.txt").exists());
    // Absolute paths inside the root, `.` segments and `..` that stays inside are fine.
    let abs = p.path("hello.txt").display().to_string();
    assert_eq!(
        p.ok("fs.read", json!({"path": abs})).await.result["content"],
        "hello"
    );
    assert_eq!(
        p.ok("fs.read", json!({"path": "sub/../sub/./inner.txt"}))
            .await
            .result["content"],
        "inner"
    );
    // The decision explains itself.
    let f = p
        .fails("fs.read", json!({"path": "../../etc/passwd"}))
        .await;
    let decision = p.wait_decision(&f.tool_call_id).await;
    assert_eq!(decision["subject"]["location"], "/args/path", "{decision}");
    assert_eq!(decision["subject"]["raw"], "../../etc/passwd", "{decision}");
    assert_eq!(decision["rule"]["layer"], "sandbox", "{decision}");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_to_the_outside_and_chains_of_them_are_followed_and_denied() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let elsewhere = empty_root();
    write_file(elsewhere.path(), "secret.txt", "outside secret");
    write_file(elsewhere.path(), "dir/x.txt", "x");
    p.write("inside.txt", "inside");
    symlink(elsewhere.path(), p.path("out")).unwrap();
    symlink(elsewhere.path().join("secret.txt"), p.path("secret-link")).unwrap();
    // A chain: a -> b -> c -> outside; and relative hops.
    symlink(p.path("b"), p.path("a")).unwrap();
    symlink("c", p.path("b")).unwrap();
    symlink(elsewhere.path(), p.path("c")).unwrap();
    // A dangling link whose target is outside: a write through it lands outside.
    symlink(elsewhere.path().join("new.txt"), p.path("dangling")).unwrap();
    // Links that stay inside are fine.
    symlink("inside.txt", p.path("good-link")).unwrap();
    for (name, args) in [
        ("fs.read", json!({"path": "out/secret.txt"})),
        ("fs.read", json!({"path": "secret-link"})),
        ("fs.read", json!({"path": "a/secret.txt"})),
        ("fs.list", json!({"path": "a/dir"})),
        ("fs.stat", json!({"path": "b/dir/x.txt"})),
        ("fs.write", json!({"path": "dangling", "content": "x"})),
        (
            "fs.write",
            json!({"path": "out/planted.txt", "content": "x"}),
        ),
        ("command.run", json!({"argv": ["cat", "./secret-link"]})),
        ("command.run", json!({"argv": ["cat", "out/secret.txt"]})),
        ("command.run", json!({"argv": ["ls"], "cwd": "a"})),
    ] {
        outside(&p, name, args).await;
    }
    // A bare word is not path-like at the argument layer (SPEC §5.2), so the second wall
    // holds: Landlock refuses the read, and the secret never reaches the caller.
    for args in [
        json!({"argv": ["cat", "secret-link"]}),
        json!({"command": "cd a && cat secret.txt"}),
        json!({"command": "cat $(printf 'secret-link')"}),
    ] {
        match p.run("command.run", args.clone()).await {
            Err(f) => assert_eq!(f.code(), "outside_root", "{args}"),
            Ok(ok) => {
                assert_ne!(ok.result["exit_code"], 0, "{args}: {}", ok.result);
                assert!(
                    !ok.result.to_string().contains("outside secret"),
                    "{args} leaked: {}",
                    ok.result
                );
            }
        }
    }
    assert!(!elsewhere.path().join("new.txt").exists());
    assert!(!elsewhere.path().join("planted.txt").exists());
    assert_eq!(
        p.ok("fs.read", json!({"path": "good-link"})).await.result["content"],
        "inside"
    );
    // A loop is `invalid_path{symlink_loop}`, not a hang.
    symlink("loop-b", p.path("loop-a")).unwrap();
    symlink("loop-a", p.path("loop-b")).unwrap();
    let f = denied(
        &p,
        "fs.read",
        json!({"path": "loop-a/x"}),
        "invalid_path",
        "security.sandbox_violation",
    )
    .await;
    assert_eq!(f.error.details()["reason"], "symlink_loop");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_then_dot_dot_is_judged_in_kernel_order() {
    // `root/link_out/../x` folds lexically to `root/x` (inside), but the kernel resolves the
    // link first and lands next to its target, outside: both forms must be contained.
    let p = TestProject::start(ProjectOptions::default()).await;
    let elsewhere = empty_root();
    write_file(elsewhere.path(), "deep/dir/keep.txt", "k");
    write_file(elsewhere.path(), "deep/x.txt", "outside x");
    p.write("x.txt", "inside x");
    symlink(elsewhere.path().join("deep/dir"), p.path("link_out")).unwrap();
    outside(&p, "fs.read", json!({"path": "link_out/../x.txt"})).await;
    outside(
        &p,
        "fs.write",
        json!({"path": "link_out/../y.txt", "content": "x"}),
    )
    .await;
    assert!(!elsewhere.path().join("deep/y.txt").exists());
    assert!(!p.path("y.txt").exists());
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sibling_with_the_root_as_string_prefix_is_outside() {
    let parent = empty_root();
    std::fs::create_dir(parent.path().join("app")).unwrap();
    write_file(parent.path(), "app_evil/secret.txt", "evil");
    write_file(parent.path(), "app/ok.txt", "ok");
    let engine = codeward::Engine::start(codeward_tests::config_with(
        &codeward_tests::TestTools::default(),
    ))
    .await
    .unwrap();
    let id = engine
        .start_project(parent.path().join("app"), ProjectOptions::default())
        .await
        .unwrap();
    let p = TestProject {
        engine,
        id,
        root: parent.path().join("app").canonicalize().unwrap(),
        dir: empty_root(),
    };
    let evil = p.root.parent().unwrap().join("app_evil/secret.txt");
    outside(&p, "fs.read", json!({"path": evil.display().to_string()})).await;
    outside(&p, "fs.read", json!({"path": "../app_evil/secret.txt"})).await;
    // The test tool's heuristic scan is held to the same rule.
    outside(&p, "test.echo", json!({"file": evil.display().to_string()})).await;
    assert_eq!(
        p.ok("fs.read", json!({"path": "ok.txt"})).await.result["content"],
        "ok"
    );
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_files_are_denied_case_insensitively_and_templates_are_not() {
    let p =
        TestProject::start(ProjectOptions::default().sensitive_path_denylist(["secrets/**"])).await;
    for rel in [
        ".env",
        ".ENV",
        "config/.env.local",
        ".ssh/id_rsa",
        "keys/id_rsa",
        "deploy/server.PEM",
        ".aws/credentials",
        "secrets/db/password.txt",
        ".npmrc",
        ".bash_history",
    ] {
        p.write(rel, "s3cr3t");
    }
    p.write(".env.example", "EXAMPLE=1");
    p.write("src/main.rs", "fn main() {}");
    for rel in [
        ".env",
        ".ENV",
        "config/.env.local",
        ".ssh/id_rsa",
        "keys/id_rsa",
        "deploy/server.PEM",
        ".aws/credentials",
        "secrets/db/password.txt",
        ".npmrc",
        ".bash_history",
    ] {
        let f = sensitive(&p, "fs.read", json!({"path": rel})).await;
        assert!(f.error.details()["pattern"].is_string(), "{rel}");
    }
    // Writes, stats, moves and commands are held to the same list.
    sensitive(&p, "fs.write", json!({"path": ".env", "content": "X=2"})).await;
    sensitive(
        &p,
        "fs.write",
        json!({"path": "new/.env", "content": "X=2"}),
    )
    .await;
    sensitive(&p, "fs.stat", json!({"path": "secrets/db/password.txt"})).await;
    sensitive(
        &p,
        "fs.move",
        json!({"source": "src/main.rs", "destination": "id_rsa"}),
    )
    .await;
    sensitive(&p, "command.run", json!({"argv": ["cat", ".env"]})).await;
    // A symlink with an innocent name to a sensitive file is judged by its target.
    symlink(p.path(".env"), p.path("innocent.txt")).unwrap();
    sensitive(&p, "fs.read", json!({"path": "innocent.txt"})).await;
    // The options' pattern shows up in the decision.
    let f = p
        .fails("fs.read", json!({"path": "secrets/db/password.txt"}))
        .await;
    let decision = p.wait_decision(&f.tool_call_id).await;
    assert_eq!(decision["rule"]["value"], "secrets/**", "{decision}");
    // Templates are allow-listed by default; ordinary files are fine.
    assert_eq!(
        p.ok("fs.read", json!({"path": ".env.example"}))
            .await
            .result["content"],
        "EXAMPLE=1"
    );
    p.ok("fs.read", json!({"path": "src/main.rs"})).await;
    // fs.search skips sensitive files and counts them instead of reading them.
    let found = p
        .ok(
            "fs.search",
            json!({"pattern": "s3cr3t", "include_hidden": true}),
        )
        .await;
    assert_eq!(found.result["matches"], json!([]), "{}", found.result);
    assert!(found.result["skipped_sensitive"].as_u64().unwrap() >= 1);
    assert!(!p.path("id_rsa").exists());
    p.engine.shutdown().await.unwrap();
}

fn read_entry(path: &Path, reason: &str, access: &str) -> Value {
    json!({"path": path.display().to_string(), "reason_code": reason, "access": access})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_root_exceptions_admit_reads_and_writes_per_access() {
    let ro = empty_root();
    let rw = empty_root();
    write_file(ro.path(), "data.txt", "shared data");
    write_file(ro.path(), ".env", "X=1");
    write_file(rw.path(), "out.txt", "old");
    let (ro_path, rw_path) = (
        ro.path().canonicalize().unwrap(),
        rw.path().canonicalize().unwrap(),
    );
    let options = ProjectOptions::default()
        .set(
            "outside_root_allowlist",
            json!([
                read_entry(&ro_path, "shared_ro", "read"),
                read_entry(&rw_path, "shared_rw", "read_write"),
            ]),
        )
        .unwrap();
    let p = TestProject::start(options).await;
    // Read through a read exception: allowed, the exception is named.
    let ok = p
        .ok(
            "fs.read",
            json!({"path": ro_path.join("data.txt").display().to_string()}),
        )
        .await;
    assert_eq!(ok.result["content"], "shared data");
    let decision = p.wait_decision(&ok.tool_call_id).await;
    assert_eq!(decision["decision"], "allow");
    assert_eq!(
        decision["exceptions_used"],
        json!(["shared_ro"]),
        "{decision}"
    );
    p.wait_event_of("security.sandbox_exception_used", &ok.correlation_id)
        .await;
    // A write needs read_write.
    outside(
        &p,
        "fs.write",
        json!({"path": ro_path.join("new.txt").display().to_string(), "content": "x"}),
    )
    .await;
    assert!(!ro_path.join("new.txt").exists());
    let ok = p
        .ok(
            "fs.write",
            json!({"path": rw_path.join("out.txt").display().to_string(), "content": "new"}),
        )
        .await;
    assert_eq!(
        std::fs::read_to_string(rw_path.join("out.txt")).unwrap(),
        "new"
    );
    let decision = p.wait_decision(&ok.tool_call_id).await;
    assert_eq!(
        decision["exceptions_used"],
        json!(["shared_rw"]),
        "{decision}"
    );
    // An exception does not lift the sensitive list.
    sensitive(
        &p,
        "fs.read",
        json!({"path": ro_path.join(".env").display().to_string()}),
    )
    .await;
    // Other outside paths stay outside.
    outside(&p, "fs.read", json!({"path": "/etc/hostname"})).await;
    // Diagnostics show the exceptions.
    let diag = p.diagnostics().await;
    let listed = array(&diag["policy"]["outside_root_allowlist"]);
    assert_eq!(listed.len(), 2, "{listed:?}");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_dir_is_unreachable() {
    let p = TestProject::start(ProjectOptions::default()).await;
    // Make sure the journal exists.
    p.conversation().await;
    assert!(p.path(".codeward/state/journal.sqlite").exists());
    symlink(p.path(".codeward/state"), p.path("journal-link")).unwrap();
    for (name, args) in [
        ("fs.read", json!({"path": ".codeward/state/journal.sqlite"})),
        ("fs.list", json!({"path": ".codeward/state"})),
        (
            "fs.stat",
            json!({"path": ".codeward/./state/../state/journal.sqlite"}),
        ),
        ("fs.read", json!({"path": "journal-link/journal.sqlite"})),
        (
            "fs.write",
            json!({"path": ".codeward/state/journal.sqlite", "content": "x"}),
        ),
        (
            "fs.delete",
            json!({"path": ".codeward/state/journal.sqlite"}),
        ),
        (
            "command.run",
            json!({"argv": ["ls"], "cwd": ".codeward/state"}),
        ),
        (
            "command.run",
            json!({"argv": ["cat", ".codeward/state/journal.sqlite"]}),
        ),
    ] {
        let f = sensitive(&p, name, args.clone()).await;
        let decision = p.wait_decision(&f.tool_call_id).await;
        assert_eq!(
            decision["rule"]["key"], "builtin:state_dir",
            "{name} {args}: {decision}"
        );
    }
    assert!(p.path(".codeward/state/journal.sqlite").exists());
    // The journal still works.
    p.engine.check_journal(&p.id, true).await.unwrap();
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_tools_without_a_complete_schema_get_the_deep_scan() {
    let p = TestProject::start(ProjectOptions::default()).await;
    p.write(".env", "X=1");
    p.write("ok.txt", "fine");
    // JSON inside strings, at several depths, under neutral keys.
    for args in [
        json!({"payload": "{\"path\": \"../../etc/passwd\"}"}),
        json!({"payload": "[\"/etc/shadow\"]"}),
        json!({"outer": {"inner": "{\"config\": \"{\\\"file\\\": \\\"/etc/passwd\\\"}\"}"}}),
        json!({"path": "\"../escape\""}),
        json!({"files": ["ok.txt", "../../etc/passwd"]}),
        json!({"target": {"name": "x", "where": "/root/.profile"}}),
        json!({"note": "please read ../../etc/passwd for me"}),
        json!({"note": "src_dir=/etc today"}),
        json!({"cmd": "cat file:///etc/passwd"}),
    ] {
        outside(&p, "test.echo", args).await;
    }
    for args in [
        json!({"payload": "{\"path\": \".env\"}"}),
        json!({"paths": [".ENV"]}),
    ] {
        sensitive(&p, "test.echo", args).await;
    }
    // Neutral content passes: whole-word keys, no path-like tokens.
    for args in [
        json!({"profile": "default", "security": "high", "ghost": "boo"}),
        json!({"message": "hello world", "count": 3}),
        json!({"path": "ok.txt", "payload": "{\"path\": \"ok.txt\"}"}),
    ] {
        let ok = p.ok("test.echo", args.clone()).await;
        assert_eq!(ok.result["echo"], args);
    }
    // A complete built-in schema is not scanned heuristically: content is content.
    p.ok(
        "fs.write",
        json!({"path": "notes.txt", "content": "see ../../etc/passwd and path=/etc/shadow"}),
    )
    .await;
    p.engine.shutdown().await.unwrap();
}

/// fs.read runs inline on the async workers: a FIFO with no writer (and a device) must fail at
/// once with `not_a_regular_file`, never hang the caller or the other calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_and_devices_never_hang_fs_read_through_run_tool() {
    let p = TestProject::start(ProjectOptions::default()).await;
    for i in 0..4 {
        let path = p.path(&format!("pipe{i}"));
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }
    let reads = (0..4).map(|i| p.fails("fs.read", json!({"path": format!("pipe{i}")})));
    for f in futures::future::join_all(reads).await {
        assert_eq!(
            f.error.details()["reason"],
            "not_a_regular_file",
            "{}",
            f.error.to_json()
        );
    }
    p.write("ok.txt", "fine");
    p.ok("fs.read", json!({"path": "ok.txt"})).await;
    p.engine.shutdown().await.unwrap();
}
