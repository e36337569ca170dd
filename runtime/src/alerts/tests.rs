//! Tests of the webhook and exec sinks against real peers: a tiny loopback HTTP/1.1 server
//! (`tokio::net::TcpListener`) that records each request and answers from a script, and real
//! `/bin/sh` commands. One test wires both sinks through `AlertRouter::spawn`. Nothing asserts
//! on elapsed time; waits poll with a generous deadline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use codeward_actors::ids::{AlertId, ConversationId, CorrelationId, ProjectId};
use codeward_actors::telemetry::{
    Alert, AlertConfig, AlertError, AlertRoute, AlertRouter, AlertSink, EventName, RecordedEvent,
    Severity,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::*;

const FAST_RETRY: Duration = Duration::from_millis(20);
const DEADLINE: Duration = Duration::from_secs(20);

fn alert() -> Alert {
    Alert {
        alert_id: AlertId::generate(),
        event: "security.sandbox_violation".into(),
        severity: Severity::Critical,
        project_id: ProjectId::parse("proj-alerts").unwrap(),
        conversation_id: Some(ConversationId::generate()),
        correlation_id: Some(CorrelationId::generate()),
        at_ms: 1_750_000_000_000,
        payload: json!({"path": "/etc/shadow", "decision": {"reason_code": "outside_root"}}),
        suppressed_count: 0,
    }
}

/// Polls `f` until it returns `Some`, panicking after [`DEADLINE`].
async fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// loopback HTTP server

#[derive(Debug, Clone)]
enum Reply {
    Status(u16),
    /// Read the request, then never answer (until the client goes away).
    Hang,
    /// 302 to this location.
    Redirect(String),
}

#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    /// Lowercase names.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

struct Server {
    url: String,
    requests: mpsc::Receiver<Request>,
}

impl Server {
    /// Starts a server answering request *n* with `replies[n]` (the last one repeats).
    async fn start(replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, requests) = mpsc::channel(64);
        let replies = Arc::new(replies);
        let next = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(handle(sock, replies.clone(), next.clone(), tx.clone()));
            }
        });
        Self { url, requests }
    }

    async fn next_request(&mut self) -> Request {
        tokio::time::timeout(DEADLINE, self.requests.recv())
            .await
            .expect("no request arrived")
            .expect("server gone")
    }

    /// Requests already recorded.
    fn recorded(&mut self) -> Vec<Request> {
        let mut out = vec![];
        while let Ok(r) = self.requests.try_recv() {
            out.push(r);
        }
        out
    }
}

async fn handle(
    mut sock: TcpStream,
    replies: Arc<Vec<Reply>>,
    next: Arc<AtomicUsize>,
    tx: mpsc::Sender<Request>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        assert!(buf.len() < 1 << 20, "request head too large");
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap().split(' ');
    let method = start.next().unwrap().to_owned();
    let target = start.next().unwrap().to_owned();
    let mut headers = BTreeMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':').unwrap();
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers
        .get("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let n = next.fetch_add(1, Ordering::SeqCst);
    let reply = replies
        .get(n)
        .or(replies.last())
        .cloned()
        .unwrap_or(Reply::Status(200));
    let _ = tx
        .send(Request {
            method,
            target,
            headers,
            body,
        })
        .await;
    let response = match reply {
        Reply::Status(s) => {
            format!("HTTP/1.1 {s} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        }
        Reply::Redirect(loc) => format!(
            "HTTP/1.1 302 Found\r\nlocation: {loc}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ),
        Reply::Hang => {
            // Hold the connection until the client gives up.
            while let Ok(n) = sock.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
            }
            return;
        }
    };
    let _ = sock.write_all(response.as_bytes()).await;
    let _ = sock.shutdown().await;
}

fn webhook(server: &Server, path: &str, timeout_ms: Option<u64>) -> WebhookSink {
    WebhookSink::new("hook", &format!("{}{path}", server.url), [], timeout_ms)
        .unwrap()
        .with_retry_delay(FAST_RETRY)
}

fn delivery_message(e: AlertError) -> String {
    match e {
        AlertError::DeliveryFailed { sink, message } => {
            assert_eq!(sink, "hook");
            message
        }
        other => panic!("expected delivery_failed, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// webhook

#[tokio::test]
async fn webhook_posts_the_alert_json_with_headers() {
    let mut server = Server::start(vec![Reply::Status(204)]).await;
    let headers = BTreeMap::from([
        ("X-Codeward-Token".to_owned(), "t0ken-value".to_owned()),
        ("x-team".to_owned(), "security".to_owned()),
    ]);
    let sink = WebhookSink::new(
        "hook",
        &format!("{}/hook?team=sec", server.url),
        headers,
        None,
    )
    .unwrap();
    assert_eq!(sink.name(), "hook");
    let a = alert();
    sink.deliver(&a).await.unwrap();

    let req = server.next_request().await;
    assert_eq!(req.method, "POST");
    assert_eq!(req.target, "/hook?team=sec");
    assert_eq!(req.headers["content-type"], "application/json");
    assert_eq!(req.headers["x-codeward-token"], "t0ken-value");
    assert_eq!(req.headers["x-team"], "security");
    assert!(req.headers["user-agent"].starts_with("codeward/"));
    let got: Alert = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(got, a);
    assert!(server.recorded().is_empty(), "exactly one request");
}

#[tokio::test]
async fn webhook_retries_once_after_a_failure() {
    // The default 1 s retry delay, for real.
    let mut server = Server::start(vec![Reply::Status(500), Reply::Status(200)]).await;
    let sink = WebhookSink::new("hook", &format!("{}/h", server.url), [], None).unwrap();
    let a = alert();
    sink.deliver(&a).await.unwrap();
    let first = server.next_request().await;
    let second = server.next_request().await;
    assert_eq!(first.body, second.body);
    assert_eq!(serde_json::from_slice::<Alert>(&second.body).unwrap(), a);
    assert!(server.recorded().is_empty(), "no third attempt");
}

#[tokio::test]
async fn webhook_fails_after_the_retry_fails() {
    let mut server = Server::start(vec![Reply::Status(503)]).await;
    let sink = webhook(&server, "/h", None);
    let err = sink.deliver(&alert()).await.unwrap_err();
    assert_eq!(err.code(), "alert_delivery_failed");
    let msg = delivery_message(err);
    assert!(
        msg.contains("attempt 1: http status 503; attempt 2: http status 503"),
        "{msg}"
    );
    assert!(!msg.contains("/h"), "the path is not echoed: {msg}");
    // Both requests were recorded before the server answered them.
    assert_eq!(server.recorded().len(), 2);
}

#[tokio::test]
async fn webhook_times_out_on_a_silent_server() {
    let mut server = Server::start(vec![Reply::Hang]).await;
    let sink = webhook(&server, "/h", Some(300));
    let msg = delivery_message(sink.deliver(&alert()).await.unwrap_err());
    assert!(
        msg.contains("attempt 1: timed out after 300 ms; attempt 2: timed out after 300 ms"),
        "{msg}"
    );
    server.next_request().await;
    server.next_request().await;
}

#[tokio::test]
async fn webhook_does_not_follow_redirects() {
    let mut target = Server::start(vec![Reply::Status(200)]).await;
    let mut redirector =
        Server::start(vec![Reply::Redirect(format!("{}/landed", target.url))]).await;
    let sink = webhook(&redirector, "/h", None);
    let msg = delivery_message(sink.deliver(&alert()).await.unwrap_err());
    assert!(msg.contains("attempt 2: http status 302"), "{msg}");
    assert_eq!(redirector.recorded().len(), 2);
    assert!(
        target.recorded().is_empty(),
        "the redirect target was contacted"
    );
}

#[tokio::test]
async fn webhook_connection_refused_fails() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let sink = WebhookSink::new(
        "hook",
        &format!("http://127.0.0.1:{port}/h"),
        [],
        Some(2000),
    )
    .unwrap()
    .with_retry_delay(FAST_RETRY);
    let msg = delivery_message(sink.deliver(&alert()).await.unwrap_err());
    assert!(msg.starts_with("POST to http://127.0.0.1:"), "{msg}");
    assert!(msg.contains("attempt 2: "), "{msg}");
    assert!(!msg.contains("timed out"), "{msg}");
}

#[test]
fn webhook_refuses_bad_config() {
    let ok = "https://hooks.example.com/services/T0/B1/s3cr3t";
    let h = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    /// (name, url, headers, timeout_ms, code, reason)
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(String, String)>,
        Option<u64>,
        &'a str,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        ("", ok, vec![], None, "invalid_sink_name", "empty"),
        (
            "a b",
            ok,
            vec![],
            None,
            "invalid_sink_name",
            "invalid_chars",
        ),
        ("hook", "not a url", vec![], None, "invalid_webhook_url", ""),
        (
            "hook",
            "ftp://example.com/x",
            vec![],
            None,
            "invalid_webhook_url",
            "unsupported_scheme",
        ),
        (
            "hook",
            "file:///etc/passwd",
            vec![],
            None,
            "invalid_webhook_url",
            "unsupported_scheme",
        ),
        (
            "hook",
            ok,
            h("content-type", "text/plain"),
            None,
            "invalid_webhook_header",
            "reserved",
        ),
        (
            "hook",
            ok,
            h("Host", "evil"),
            None,
            "invalid_webhook_header",
            "reserved",
        ),
        (
            "hook",
            ok,
            h("proxy-authorization", "x"),
            None,
            "invalid_webhook_header",
            "reserved",
        ),
        (
            "hook",
            ok,
            h("bad header", "x"),
            None,
            "invalid_webhook_header",
            "bad_name",
        ),
        (
            "hook",
            ok,
            h("x-a", "line\nbreak"),
            None,
            "invalid_webhook_header",
            "bad_value",
        ),
        ("hook", ok, vec![], Some(0), "invalid_sink_timeout", ""),
        (
            "hook",
            ok,
            vec![],
            Some(600_001),
            "invalid_sink_timeout",
            "",
        ),
    ];
    for (name, url, headers, timeout, code, reason) in cases {
        let err = WebhookSink::new(name, url, headers, timeout).unwrap_err();
        assert_eq!(err.code(), code, "{name} {url}: {err}");
        let text = err.to_string();
        assert!(text.contains(reason), "{text}");
        assert!(!text.contains("s3cr3t"), "url echoed: {text}");
    }
    let many: Vec<_> = (0..65)
        .map(|i| (format!("x-h{i}"), "v".to_owned()))
        .collect();
    let err = WebhookSink::new("hook", ok, many, None).unwrap_err();
    assert_eq!(
        err,
        SinkConfigError::InvalidHeader {
            sink: "hook".into(),
            header: "x-h64".into(),
            reason: "too_many".into()
        }
    );
    let s = WebhookSink::new("hook", ok, [], Some(600_000)).unwrap();
    assert_eq!(s.max_delivery_ms(), 1_201_000);
}

// ---------------------------------------------------------------------------------------------
// exec

fn sh(script: String) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script]
}

fn exec(argv: Vec<String>, timeout_ms: Option<u64>) -> ExecSink {
    ExecSink::new("script", argv, timeout_ms).unwrap()
}

fn quoted(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// Whether `pid` is a live (non-zombie) process.
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence and permission.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true);
    exists && !zombie
}

async fn read_pid(path: PathBuf) -> i32 {
    poll("the pid file", || {
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
    .await
}

#[tokio::test]
async fn exec_feeds_the_alert_json_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alert.json");
    let sink = exec(sh(format!("cat > {}", quoted(&out))), None);
    assert_eq!(sink.name(), "script");
    let a = alert();
    sink.deliver(&a).await.unwrap();
    let got: Alert = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(got, a);
}

#[tokio::test]
async fn exec_runs_with_a_cleared_env() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env.txt");
    // A bare program name is looked up in the sink's PATH, not ours.
    let sink = exec(
        vec!["sh".into(), "-c".into(), format!("env > {}", quoted(&out))],
        None,
    );
    sink.deliver(&alert()).await.unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let child: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    assert_eq!(child.get("PATH"), Some(&EXEC_PATH));
    assert_eq!(child.get("LANG"), Some(&EXEC_LANG));
    // Whatever the shell adds itself.
    const SHELL_OWN: &[&str] = &["PATH", "LANG", "PWD", "OLDPWD", "SHLVL", "_"];
    let extra: Vec<_> = child.keys().filter(|k| !SHELL_OWN.contains(k)).collect();
    assert!(extra.is_empty(), "unexpected child env: {extra:?}");
    // The test process has variables of its own (cargo/nextest set several); none leaked.
    let ours: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| !SHELL_OWN.contains(&k.as_str()))
        .collect();
    assert!(!ours.is_empty(), "the test needs a variable of its own");
    for k in &ours {
        assert!(!child.contains_key(k.as_str()), "`{k}` leaked to the child");
    }
    assert_eq!(child.get("PWD").copied().unwrap_or("/"), "/");
}

#[tokio::test]
async fn exec_nonzero_exit_is_an_error() {
    let sink = exec(sh("echo boom >&2; exit 3".into()), None);
    let err = sink.deliver(&alert()).await.unwrap_err();
    assert_eq!(
        err,
        AlertError::DeliveryFailed {
            sink: "script".into(),
            message: "`/bin/sh` exited with status 3: stderr: boom".into()
        }
    );
}

#[tokio::test]
async fn exec_stderr_is_capped_and_redacted() {
    let sink = exec(
        sh(
            "echo 'token=supersecretvalue1' >&2; head -c 200000 /dev/zero | tr '\\0' x >&2; exit 1"
                .into(),
        ),
        None,
    );
    let err = sink.deliver(&alert()).await.unwrap_err();
    let AlertError::DeliveryFailed { message, .. } = err else {
        panic!("{err:?}")
    };
    assert!(
        message.starts_with("`/bin/sh` exited with status 1: stderr: token=[REDACTED]"),
        "{message}"
    );
    assert!(!message.contains("supersecretvalue1"), "{message}");
    assert!(message.len() < MAX_STDERR_BYTES + 100, "{}", message.len());
    assert!(message.ends_with("xxx…"), "{message}");
}

#[tokio::test]
async fn exec_command_that_ignores_stdin_is_delivered() {
    // Larger than a pipe buffer: the write hits a closed pipe once `true` exits.
    let mut a = alert();
    a.payload = json!({ "blob": "y".repeat(1 << 20) });
    exec(vec!["/bin/true".into()], None)
        .deliver(&a)
        .await
        .unwrap();
    let err = exec(vec!["/bin/false".into()], None)
        .deliver(&a)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "alert_delivery_failed");
}

#[tokio::test]
async fn exec_timeout_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("bg.pid");
    let sink = exec(
        sh(format!(
            "sleep 300 & echo $! > {}; exec sleep 300",
            quoted(&pidfile)
        )),
        Some(2000),
    );
    let err = sink.deliver(&alert()).await.unwrap_err();
    assert_eq!(
        err,
        AlertError::Timeout {
            sink: "script".into()
        }
    );
    let bg = read_pid(pidfile).await;
    poll("the background child to die", || (!alive(bg)).then_some(())).await;
}

#[tokio::test]
async fn exec_kills_leftover_background_children_after_exit() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("bg.pid");
    // The background `sleep` also holds the stderr pipe: delivery must not wait for it.
    let sink = exec(
        sh(format!(
            "sleep 300 & echo $! > {}; exit 0",
            quoted(&pidfile)
        )),
        Some(60_000),
    );
    sink.deliver(&alert()).await.unwrap();
    let bg = read_pid(pidfile).await;
    poll("the leftover child to die", || (!alive(bg)).then_some(())).await;
}

#[tokio::test]
async fn exec_dropped_delivery_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("main.pid");
    let sink = exec(
        sh(format!("echo $$ > {}; exec sleep 300", quoted(&pidfile))),
        Some(60_000),
    );
    let a = alert();
    let mut delivery = sink.deliver(&a);
    let pid = tokio::select! {
        r = &mut delivery => panic!("delivery finished: {r:?}"),
        pid = read_pid(pidfile.clone()) => pid,
    };
    assert!(alive(pid));
    // Dropped mid-run, as the router's timeout would.
    drop(delivery);
    poll("the dropped child to die", || (!alive(pid)).then_some(())).await;
}

#[tokio::test]
async fn exec_missing_program_fails() {
    let err = exec(vec!["/nonexistent/notify".into()], None)
        .deliver(&alert())
        .await
        .unwrap_err();
    let AlertError::DeliveryFailed { message, .. } = err else {
        panic!("{err:?}")
    };
    assert!(
        message.starts_with("cannot start `/nonexistent/notify`: "),
        "{message}"
    );
}

#[test]
fn exec_refuses_bad_config() {
    let cases: Vec<(Vec<String>, Option<u64>, &str)> = vec![
        (vec![], None, "empty"),
        (vec![String::new()], None, "empty_program"),
        (vec!["./notify.sh".into()], None, "relative_program"),
        (vec!["bin/notify".into()], None, "relative_program"),
        (vec!["/bin/echo".into(), "a\0b".into()], None, "nul_byte"),
        (vec!["/bin/echo".into(); 257], None, "too_many_args"),
        (
            vec!["/bin/echo".into(), "x".repeat(4097)],
            None,
            "arg_too_long",
        ),
    ];
    for (argv, timeout, reason) in cases {
        let err = ExecSink::new("script", argv, timeout).unwrap_err();
        assert_eq!(
            err,
            SinkConfigError::InvalidArgv {
                sink: "script".into(),
                reason: reason.into()
            }
        );
        assert_eq!(err.code(), "invalid_exec_argv");
    }
    let err = ExecSink::new("script", vec!["/bin/true".into()], Some(0)).unwrap_err();
    assert_eq!(err.code(), "invalid_sink_timeout");
    let err = ExecSink::new("x".repeat(65), vec!["/bin/true".into()], None).unwrap_err();
    assert_eq!(err.code(), "invalid_sink_name");
    let s = ExecSink::new(
        "script",
        vec!["/usr/bin/notify".into(), "--token=abc123".into()],
        None,
    )
    .unwrap();
    let dbg = format!("{s:?}");
    assert!(
        dbg.contains("/usr/bin/notify") && !dbg.contains("abc123"),
        "{dbg}"
    );
}

// ---------------------------------------------------------------------------------------------
// raw config

#[test]
fn sink_config_parses_and_builds() {
    #[derive(serde::Deserialize)]
    struct Alerts {
        sinks: Vec<SinkConfig>,
    }
    #[derive(serde::Deserialize)]
    struct File {
        alerts: Alerts,
    }
    let text = r#"
        [[alerts.sinks]]
        kind = "webhook"
        name = "pager"
        url = "https://hooks.example.com/T0/s3cr3t"
        headers = { authorization = "Bearer abcdefgh12345" }

        [[alerts.sinks]]
        kind = "exec"
        name = "notify"
        argv = ["/usr/bin/logger", "-t", "codeward"]
        timeout_ms = 2000
    "#;
    let file: File = toml::from_str(text).unwrap();
    let sinks = file.alerts.sinks;
    assert_eq!(
        sinks[1],
        SinkConfig::Exec {
            name: "notify".into(),
            argv: vec!["/usr/bin/logger".into(), "-t".into(), "codeward".into()],
            timeout_ms: Some(2000),
        }
    );
    let dbg = format!("{:?}", sinks[0]);
    assert!(
        dbg.contains("https://hooks.example.com") && !dbg.contains("s3cr3t"),
        "{dbg}"
    );
    assert!(!dbg.contains("abcdefgh12345"), "{dbg}");
    let built: Vec<_> = sinks.iter().map(|s| s.build().unwrap()).collect();
    let names: Vec<_> = built.iter().map(|s| s.name().to_owned()).collect();
    assert_eq!(names, ["pager", "notify"]);
    assert_eq!(sinks[0].name(), "pager");

    let unknown = "kind = \"exec\"\nname = \"n\"\nargv = [\"/bin/true\"]\nshell = true\n";
    assert!(toml::from_str::<SinkConfig>(unknown).is_err());
    let bad = SinkConfig::Webhook {
        name: "w".into(),
        url: "gopher://x".into(),
        headers: BTreeMap::new(),
        timeout_ms: None,
    };
    assert_eq!(bad.build().err().unwrap().code(), "invalid_webhook_url");
}

// ---------------------------------------------------------------------------------------------
// through the router

#[tokio::test]
async fn router_delivers_a_sandbox_violation_to_webhook_and_exec() {
    let mut server = Server::start(vec![Reply::Status(200)]).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alert.json");
    let hook = Arc::new(webhook(&server, "/alerts", None));
    let script = Arc::new(exec(
        sh(format!("cat > {o}.tmp && mv {o}.tmp {o}", o = quoted(&out))),
        None,
    ));
    let config = AlertConfig {
        routes: vec![AlertRoute {
            events: vec!["security.*".into()],
            min_severity: Severity::Critical,
            sinks: vec!["hook".into(), "script".into()],
        }],
        delivery_timeout_ms: hook.max_delivery_ms(),
        ..AlertConfig::default()
    };
    let router = AlertRouter::spawn(config, vec![hook, script]).unwrap();
    let event = RecordedEvent {
        seq: 7,
        event: EventName::SandboxViolation,
        at_ms: 1_750_000_000_123,
        project_id: ProjectId::parse("proj-alerts").unwrap(),
        conversation_id: None,
        correlation_id: Some(CorrelationId::generate()),
        tool: Some("fs.read".into()),
        payload: json!({"path": "/etc/shadow", "reason_code": "outside_root"}).into(),
    };
    assert!(router.consider(&event), "a default critical event");

    let req = server.next_request().await;
    let via_hook: Alert = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        via_hook,
        Alert {
            alert_id: via_hook.alert_id.clone(),
            event: "security.sandbox_violation".into(),
            severity: Severity::Critical,
            project_id: event.project_id.clone(),
            conversation_id: None,
            correlation_id: event.correlation_id.clone(),
            at_ms: event.at_ms,
            payload: event.payload.clone().into_value(),
            suppressed_count: 0,
        }
    );
    let via_exec: Alert = poll("the exec sink's output", || {
        std::fs::read(&out)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    })
    .await;
    assert_eq!(via_exec, via_hook);
    let stats = router.stats().clone();
    poll("both deliveries counted", || {
        (stats.totals() == (2, 0, 0, 0)).then_some(())
    })
    .await;
}
