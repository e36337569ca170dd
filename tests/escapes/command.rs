//! `command.run` attacked through `run_tool`: writes outside the root (plain and with the path
//! hidden from the argument layer), reads of outside secrets and `~/.ssh`, a TCP connect to a
//! loopback listener under egress `deny`, secrets in codeward's own env and `/proc`, leaked fds,
//! a 50-child tree with a `setsid` grandchild and a double-forked daemon that outlive the
//! timeout, a command that closes its output and keeps running, hard links of outside files into
//! the root, and an output flood (head + tail kept, bounded).

use std::path::Path;

use codeward::ProjectOptions;
use codeward_tests::{TestProject, call_in, empty_root, eventually, unique, write_file};
use serde_json::json;

use super::{CANARY, Loot, s};

/// The OS sandbox of the project as diagnostics report it.
async fn sandbox(p: &TestProject) -> serde_json::Value {
    p.diagnostics().await["os_sandbox"].clone()
}

/// Splits `cmd` so no token looks like a path to the argument layer: `"/tmp/x"` becomes
/// `"$(printf /t)mp/x"`, leaving the OS sandbox as the only wall.
fn hidden(path: &Path) -> String {
    let p = path.display().to_string();
    let (a, b) = p.split_at(2);
    format!("\"$(printf '{a}')\"'{b}'")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_cannot_write_or_read_outside_the_root() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let out = empty_root();
    write_file(out.path(), "secret.txt", &format!("TOKEN={CANARY}\n"));
    let target = Path::new("/tmp").join(unique("cw-outside"));
    let planted = out.path().join("planted");
    let c = p.conversation().await;
    let mut loot = Loot::default();
    let mut calls = vec![
        json!({"command": format!("echo x > {}", target.display())}),
        json!({"command": format!("echo x > {}", hidden(&target))}),
        json!({"command": format!("echo x > {}", hidden(&planted))}),
        json!({"command": format!("cp /etc/hostname {}", hidden(&planted))}),
        json!({"command": format!("mkdir {}", hidden(&planted))}),
        json!({"command": format!("touch {}", hidden(&planted))}),
        json!({"command": format!("cat {}", hidden(&out.path().join("secret.txt")))}),
        json!({"command": format!("cp {} stolen.txt; cat stolen.txt", hidden(&out.path().join("secret.txt")))}),
        json!({"command": format!("cd {} && cat secret.txt", hidden(out.path()))}),
        json!({"command": format!("cat /proc/self/root{}", hidden(&out.path().join("secret.txt")))}),
        json!({"argv": ["sh", "-c", "cat \"$0\"", out.path().join("secret.txt").display().to_string()]}),
        json!({"command": format!("cat {}/.ssh/id_rsa {}/.ssh/id_ed25519", hidden(Path::new("/root")), hidden(Path::new("/root")))}),
        json!({"command": "cat ~/.ssh/id_rsa"}),
        json!({"command": "ls -la /root/.ssh"}),
        json!({"argv": ["cat", ".env"]}),
    ];
    // The canary also sits in a `.ssh` dir of the real HOME when we may create one.
    if let Some(home) = std::env::var_os("HOME") {
        let ssh = Path::new(&home).join(".ssh");
        if ssh.is_dir() {
            calls.push(json!({"command": format!("ls {}", hidden(&ssh))}));
        }
    }
    p.write(".env", &format!("KEY={CANARY}\n"));
    for args in calls {
        let r = p.run_call(call_in("command.run", args.clone(), &c)).await;
        loot.take(&r);
        if let Ok(ok) = &r {
            assert_ne!(ok.result["exit_code"], 0, "{args}: {}", ok.result);
        }
    }
    assert!(!target.exists(), "{} was written", target.display());
    assert!(!planted.exists(), "{} was written", planted.display());
    assert!(
        !p.path("stolen.txt").exists()
            || !std::fs::read_to_string(p.path("stolen.txt"))
                .unwrap()
                .contains(CANARY)
    );
    // Legitimate work inside the root and the scratch dir is not denied.
    let ok = p
        .ok(
            "command.run",
            json!({"command": "mkdir -p build && echo hi > build/out.txt && cat build/out.txt && echo t > \"$TMPDIR/t\" && cat \"$TMPDIR/t\" && cat /etc/hostname >/dev/null && echo ok"}),
        )
        .await;
    assert_eq!(ok.result["exit_code"], 0, "{}", ok.result);
    assert_eq!(s(&ok.result, "stdout"), "hi\nt\nok\n", "{}", ok.result);
    loot.assert_clean(&p, Some(&c), CANARY).await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_links_of_outside_files_cannot_be_made_by_commands() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let out = empty_root();
    write_file(out.path(), "secret.txt", &format!("TOKEN={CANARY}\n"));
    let src = out.path().join("secret.txt");
    let mut loot = Loot::default();
    for args in [
        json!({"argv": ["ln", src.display().to_string(), "hl"]}),
        json!({"command": format!("ln {} hl", hidden(&src))}),
        json!({"command": format!("ln {} hl; cat hl", hidden(&src))}),
        json!({"command": format!("mv {} here.txt", hidden(&src))}),
    ] {
        let r = p.run("command.run", args.clone()).await;
        loot.take(&r);
        if let Ok(ok) = &r {
            assert_ne!(ok.result["exit_code"], 0, "{args}: {}", ok.result);
        }
    }
    assert!(
        !p.path("hl").exists(),
        "a hard link to an outside file was created"
    );
    assert!(!p.path("here.txt").exists());
    assert!(src.exists());
    // A symlink may be made (no tool follows it out); hard links inside the root are fine.
    p.write("a.txt", "a");
    let ok = p
        .ok(
            "command.run",
            json!({"command": "ln a.txt b.txt && cat b.txt"}),
        )
        .await;
    assert_eq!(s(&ok.result, "stdout"), "a", "{}", ok.result);
    loot.assert_clean(&p, None, CANARY).await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_connect_under_egress_deny_never_arrives() {
    let p = TestProject::start(ProjectOptions::default()).await;
    if sandbox(&p).await["net"] != true {
        eprintln!("skipped: no Landlock network rules on this kernel");
        p.engine.shutdown().await.unwrap();
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let listener6 = std::net::TcpListener::bind("[::1]:0").ok();
    for args in [
        json!({"argv": ["bash", "-c", format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected")]}),
        json!({"argv": ["bash", "-c", format!("echo hi > /dev/tcp/localhost/{port} && echo connected")]}),
        json!({"argv": ["python3", "-c", format!("import socket; socket.create_connection(('127.0.0.1', {port})); print('connected')")]}),
    ] {
        let r = p.run("command.run", args.clone()).await;
        if let Ok(ok) = &r {
            assert!(
                !s(&ok.result, "stdout").contains("connected"),
                "{args}: {}",
                ok.result
            );
        }
    }
    if let Some(l6) = &listener6 {
        let port6 = l6.local_addr().unwrap().port();
        let ok = p
            .ok(
                "command.run",
                json!({"argv": ["bash", "-c", format!("exec 3<>/dev/tcp/::1/{port6} && echo connected")]}),
            )
            .await;
        assert!(
            !s(&ok.result, "stdout").contains("connected"),
            "{}",
            ok.result
        );
        l6.set_nonblocking(true).unwrap();
        assert!(l6.accept().is_err(), "a connection reached [::1]");
    }
    // The calls are over: a connection would sit in the backlog by now.
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a connection reached the listener: {other:?}"),
    }
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codewards_env_secrets_and_fds_are_invisible_to_commands() {
    // SAFETY: nextest runs each test in its own process, and nothing in this one reads the env
    // concurrently before the engine starts.
    unsafe {
        std::env::set_var("CODEWARD_ESCAPE_CANARY", CANARY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", CANARY);
    }
    let out = empty_root();
    write_file(out.path(), "secret.txt", &format!("TOKEN={CANARY}\n"));
    // An fd of the engine's process open on an outside secret, not close-on-exec.
    let held = std::fs::File::open(out.path().join("secret.txt")).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&held);
    // SAFETY: `fd` is open; clearing FD_CLOEXEC makes it inheritable on purpose.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let p = TestProject::start(ProjectOptions::default()).await;
    let c = p.conversation().await;
    let me = std::process::id();
    let mut loot = Loot::default();
    for args in [
        json!({"argv": ["env"]}),
        json!({"command": "cat /proc/self/environ | tr '\\0' '\\n'"}),
        json!({"command": format!("cat /proc/{me}/environ | tr '\\0' '\\n'")}),
        json!({"command": "cat /proc/$PPID/environ; cat /proc/1/environ"}),
        json!({"command": format!("for f in /proc/{me}/task/*/environ; do cat $f; done")}),
        json!({"command": format!("cat /proc/{me}/fd/{fd}")}),
        json!({"command": format!("cat /proc/self/fd/{fd} <&{fd}")}),
        json!({"command": format!("cat <&{fd}")}),
        json!({"command": format!("ls -l /proc/{me}/fd/")}),
        json!({"command": format!("head -c 4096 /proc/{me}/mem")}),
        json!({"command": format!("grep -a ESCAPE /proc/{me}/maps /proc/{me}/cmdline")}),
        json!({"command": "echo $CODEWARD_ESCAPE_CANARY $AWS_SECRET_ACCESS_KEY"}),
        json!({"command": "ls -l /proc/self/fd/"}),
    ] {
        let r = p.run_call(call_in("command.run", args.clone(), &c)).await;
        loot.take(&r);
    }
    // Only stdin, stdout, stderr (and ls's own directory fd) are open in a command.
    let ok = p
        .ok("command.run", json!({"command": "ls /proc/self/fd/"}))
        .await;
    let fds: Vec<&str> = s(&ok.result, "stdout").split_whitespace().collect();
    assert!(fds.len() <= 4, "fds open in a command: {fds:?}");
    drop(held);
    loot.assert_clean(&p, Some(&c), CANARY).await;
    p.engine.shutdown().await.unwrap();
}

/// Pids written to `file` (one a line).
fn pids(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// `pids` that still exist (`kill(pid, 0)` succeeds).
fn alive(pids: &[i32]) -> Vec<i32> {
    pids.iter()
        .copied()
        // SAFETY: signal 0 only checks for existence.
        .filter(|&pid| unsafe { libc::kill(pid, 0) } == 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_tree_with_setsid_and_daemons_does_not_outlive_its_timeout() {
    let p = TestProject::start(ProjectOptions::default().tool_timeout_ms(60_000)).await;
    let hang = "trap '' TERM HUP INT; echo $$ >> pids; exec sleep 1000";
    let script = format!(
        "i=0; while [ $i -lt 50 ]; do sh -c \"{hang}\" & i=$((i+1)); done; \
         setsid sh -c \"{hang}\" & \
         sh -c 'sh -c \"{hang}\" & exit 0'; \
         setsid sh -c 'sh -c \"{hang}\" & exit 0' & \
         while [ \"$(wc -l < pids)\" -lt 53 ]; do sleep 0.05; done; echo $$ >> pids; echo ready; sleep 1000"
    );
    let f = p
        .fails(
            "command.run",
            json!({"command": script, "timeout_ms": 8_000}),
        )
        .await;
    assert_eq!(f.code(), "timeout", "{}", f.error.to_json());
    let all = pids(&p.path("pids"));
    assert_eq!(
        all.len(),
        54,
        "the whole tree started before the timeout: {all:?}"
    );
    let survivors = eventually("no process of the tree alive", || async {
        let a = alive(&all);
        a.is_empty().then_some(a)
    })
    .await;
    assert_eq!(survivors, Vec::<i32>::new());
    assert!(
        f.error.details()["terminated_process_count"]
            .as_u64()
            .unwrap_or(54)
            >= 54
            || p.counter("tool.child_processes_terminated").await >= 54,
        "{}",
        f.error.to_json()
    );
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_closes_its_output_and_keeps_running_is_killed() {
    let p = TestProject::start(ProjectOptions::default()).await;
    let script = "(exec >&- 2>&-; sh -c 'echo $$ >> pids; exec sleep 1000' >&- 2>&-) & \
                  exec >&- 2>&-; echo $$ >> pids; while [ \"$(wc -l < pids)\" -lt 2 ]; do sleep 0.05; done; exec sleep 1000";
    let f = p
        .fails(
            "command.run",
            json!({"command": script, "timeout_ms": 3_000}),
        )
        .await;
    assert_eq!(f.code(), "timeout", "{}", f.error.to_json());
    let all = pids(&p.path("pids"));
    assert_eq!(all.len(), 2, "{all:?}");
    eventually("no process alive", || async {
        alive(&all).is_empty().then_some(())
    })
    .await;
    // A main process that exits while a child keeps stdout open returns promptly and kills it.
    let ok = p
        .ok(
            "command.run",
            json!({"command": "sh -c 'echo $$ >> pids2; exec sleep 1000' & while [ ! -s pids2 ]; do sleep 0.05; done; echo main-done"}),
        )
        .await;
    assert_eq!(s(&ok.result, "stdout"), "main-done\n", "{}", ok.result);
    let child = pids(&p.path("pids2"));
    assert_eq!(child.len(), 1);
    eventually("the background child is gone", || async {
        alive(&child).is_empty().then_some(())
    })
    .await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_flood_keeps_head_and_tail_within_the_budget() {
    let max = 64 * 1024;
    let p = TestProject::start(ProjectOptions::default().tool_max_output_bytes(max)).await;
    let ok = p
        .ok(
            "command.run",
            json!({"command": "seq 1 2000000; seq 1 300000 >&2"}),
        )
        .await;
    let r = &ok.result;
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["stdout_truncated"], true);
    assert_eq!(r["stderr_truncated"], true);
    assert!(
        r["omitted_bytes"].as_u64().unwrap() > 10_000_000,
        "{}",
        r["omitted_bytes"]
    );
    let out = s(r, "stdout");
    assert!(
        out.starts_with("1\n2\n3\n"),
        "{}",
        &out[..40.min(out.len())]
    );
    assert!(
        out.ends_with("1999999\n2000000\n"),
        "{}",
        &out[out.len().saturating_sub(40)..]
    );
    assert!(s(r, "stderr").ends_with("300000\n"));
    assert!(
        r.to_string().len() as u64 <= max,
        "{} > {max}",
        r.to_string().len()
    );
    // A flood without newlines, from a background process too.
    let ok = p
        .ok(
            "command.run",
            json!({"command": "head -c 30000000 /dev/zero | tr '\\0' a"}),
        )
        .await;
    assert!(ok.result.to_string().len() as u64 <= max);
    assert_eq!(ok.result["stdout_truncated"], true);
    p.engine.shutdown().await.unwrap();
}
