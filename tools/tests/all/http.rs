//! `http.fetch` against a local HTTP server on 127.0.0.1: the allowed path, loopback denied
//! without an allowlist entry, redirects to private/metadata/loopback addresses denied hop by
//! hop, DNS names resolving to loopback denied, credentials dropped across origins, body caps.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::support::{Opts, Project};

type Route = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// A tiny HTTP/1.1 server; records each request head.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn serve(route: Route) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let route = route.clone();
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                s.lock().expect("lock").push(head);
                let _ = sock.write_all(route(&path).as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Server { port, seen }
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-test: yes\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn redirect(to: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
}

fn allow_loopback() -> Opts {
    Opts {
        egress_allowlist: vec!["127.0.0.1".into()],
        ..Opts::default()
    }
}

async fn fetch(
    opts: Opts,
    args: serde_json::Value,
) -> Result<serde_json::Value, codeward_tools::ToolError> {
    let p = Project::new();
    codeward_tools::call_builtin("http.fetch", &p.ctx_with(opts), args).await
}

fn endpoint_detail(e: &codeward_tools::ToolError) -> (String, String) {
    (
        e.code().to_owned(),
        e.details()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn allowed_loopback_get_is_pinned_and_returned() {
    let srv = serve(Arc::new(|_| ok("hello"))).await;
    let url = format!("http://127.0.0.1:{}/x", srv.port);
    let v = fetch(allow_loopback(), json!({ "url": url }))
        .await
        .expect("fetch");
    assert_eq!(
        (
            v["status"].clone(),
            v["body"].clone(),
            v["encoding"].clone(),
            v["truncated"].clone()
        ),
        (json!(200), json!("hello"), json!("utf8"), json!(false))
    );
    assert_eq!(v["resolved_ip"], "127.0.0.1");
    assert_eq!(v["final_url"], url);
    assert_eq!(v["headers"]["x-test"], "yes");
}

#[tokio::test]
async fn loopback_is_denied_without_an_allowlist_entry() {
    let srv = serve(Arc::new(|_| ok("hello"))).await;
    let opts = Opts {
        egress_allowlist: vec!["*".into()],
        ..Opts::default()
    };
    let err = fetch(
        opts,
        json!({ "url": format!("http://127.0.0.1:{}/", srv.port) }),
    )
    .await
    .expect_err("denied");
    assert_eq!(
        endpoint_detail(&err),
        ("network_endpoint_denied".into(), "blocked_range".into())
    );
    assert!(
        srv.seen.lock().expect("lock").is_empty(),
        "no connection was made"
    );
}

#[tokio::test]
async fn dns_name_resolving_to_loopback_is_denied() {
    // `/etc/hosts` maps `vm` and `runsc` to 127.0.0.1 on this machine; any name that resolves
    // to loopback will do. Skip quietly where neither resolves.
    let srv = serve(Arc::new(|_| ok("hello"))).await;
    let mut tried = 0;
    for name in ["vm", "runsc"] {
        let resolves = tokio::net::lookup_host((name, 80))
            .await
            .map(|mut a| a.any(|a| a.ip().is_loopback()));
        if !matches!(resolves, Ok(true)) {
            continue;
        }
        tried += 1;
        let opts = Opts {
            egress_allowlist: vec![name.into()],
            ..Opts::default()
        };
        let err = fetch(
            opts,
            json!({ "url": format!("http://{name}:{}/", srv.port) }),
        )
        .await
        .expect_err(name);
        assert_eq!(
            endpoint_detail(&err),
            ("network_endpoint_denied".into(), "blocked_range".into())
        );
    }
    eprintln!("dns names resolving to loopback tried: {tried}");
    assert!(
        srv.seen.lock().expect("lock").is_empty(),
        "no connection was made"
    );
}

#[tokio::test]
async fn redirects_into_blocked_ranges_are_denied_hop_by_hop() {
    for target in [
        "http://10.0.0.1/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.1.1/",
        "http://[::1]/",
        "http://localhost/",
        "http://0xa9.254.169.254/",
    ] {
        let t = target.to_owned();
        let srv = serve(Arc::new(move |_| redirect(&t))).await;
        let err = fetch(
            allow_loopback(),
            json!({ "url": format!("http://127.0.0.1:{}/start", srv.port) }),
        )
        .await
        .expect_err(target);
        assert_eq!(err.code(), "network_endpoint_denied", "{target}: {err:?}");
    }
}

#[tokio::test]
async fn redirects_within_the_allowlist_are_followed_and_capped() {
    let srv = serve(Arc::new(|path: &str| match path {
        "/a" => redirect("/b"),
        "/b" => redirect("/c"),
        "/c" => ok("done"),
        p => {
            let n: u32 = p.trim_start_matches("/loop").parse().unwrap_or(0);
            redirect(&format!("/loop{}", n + 1))
        }
    }))
    .await;
    let base = format!("http://127.0.0.1:{}", srv.port);
    let v = fetch(allow_loopback(), json!({ "url": format!("{base}/a") }))
        .await
        .expect("fetch");
    assert_eq!(
        (v["body"].clone(), v["final_url"].clone()),
        (json!("done"), json!(format!("{base}/c")))
    );
    let v = fetch(
        allow_loopback(),
        json!({ "url": format!("{base}/a"), "follow_redirects": false }),
    )
    .await
    .expect("fetch");
    assert_eq!(v["status"], 302);
    let err = fetch(allow_loopback(), json!({ "url": format!("{base}/loop0") }))
        .await
        .expect_err("loop");
    assert_eq!(err.reason().map(|r| r.as_str()), Some("too_many_redirects"));
}

#[tokio::test]
async fn credentials_are_dropped_across_origins() {
    let second = serve(Arc::new(|_| ok("second"))).await;
    let to = format!("http://127.0.0.1:{}/landing", second.port);
    let first = serve(Arc::new(move |_| redirect(&to))).await;
    let v = fetch(
        allow_loopback(),
        json!({
            "url": format!("http://127.0.0.1:{}/", first.port),
            "headers": { "Authorization": "Bearer s3cret", "Cookie": "a=b", "X-Keep": "1" }
        }),
    )
    .await
    .expect("fetch");
    assert_eq!(v["body"], "second");
    let first_head = first.seen.lock().expect("lock")[0].to_ascii_lowercase();
    assert!(first_head.contains("authorization: bearer s3cret"));
    let second_head = second.seen.lock().expect("lock")[0].to_ascii_lowercase();
    assert!(
        !second_head.contains("authorization") && !second_head.contains("cookie"),
        "{second_head}"
    );
    assert!(second_head.contains("x-keep: 1"));
}

#[tokio::test]
async fn body_is_capped_and_bad_headers_refused() {
    let srv = serve(Arc::new(|_| ok(&"z".repeat(5000)))).await;
    let url = format!("http://127.0.0.1:{}/", srv.port);
    let v = fetch(allow_loopback(), json!({ "url": url, "max_bytes": 10 }))
        .await
        .expect("fetch");
    assert_eq!(
        (v["body"].clone(), v["truncated"].clone()),
        (json!("zzzzzzzzzz"), json!(true))
    );
    for h in ["Host", "proxy-authorization"] {
        let err = fetch(
            allow_loopback(),
            json!({ "url": url, "headers": { h: "x" } }),
        )
        .await
        .expect_err(h);
        assert_eq!(err.reason().map(|r| r.as_str()), Some("invalid_argument"));
    }
}

#[tokio::test]
async fn egress_deny_denies() {
    let err = fetch(Opts::default(), json!({ "url": "http://127.0.0.1:9/" }))
        .await
        .expect_err("denied");
    assert_eq!(err.code(), "network_denied");
}
