//! `http.fetch` attacked through `run_tool`: loopback, private, link-local and metadata
//! addresses in every spelling (decimal, IPv4-mapped IPv6, userinfo tricks), names that resolve to
//! loopback (`localhost`, `*.localhost`, `/etc/hosts` names), and redirects from an explicitly
//! allowlisted loopback test server to private addresses, other ports and other schemes. A
//! legitimate fetch from the allowlisted server works, redirects within it included.
//!
//! Connections go only to the test's own server on 127.0.0.1; every other URL must be refused
//! before connecting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use codeward::ProjectOptions;
use codeward_tests::TestProject;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A tiny HTTP/1.1 server: `/ok` → 200 `fine`; `/r/N` → 302 to `targets[N]`. Counts requests.
struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
}

/// A listener on 127.0.0.1 (port chosen by the kernel).
async fn bind() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
}

fn serve(listener: tokio::net::TcpListener, targets: Vec<String>) -> Server {
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let targets = Arc::new(targets);
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (targets, h) = (targets.clone(), h.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = 0;
                while got < buf.len() {
                    let Ok(n) = sock.read(&mut buf[got..]).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    got += n;
                    if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let head = String::from_utf8_lossy(&buf[..got]).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let resp = if let Some(n) = path.strip_prefix("/r/") {
                    let to = n
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| targets.get(i).cloned());
                    format!(
                        "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        to.unwrap_or_default()
                    )
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfine"
                        .to_owned()
                };
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    Server { port, hits }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_loopback_private_and_metadata_is_refused() {
    let p = TestProject::start(
        ProjectOptions::default()
            .network_egress_policy("allow")
            .network_allowlist(["*"]),
    )
    .await;
    // A server that must never see a request.
    let srv = serve(bind().await, Vec::new());
    let port = srv.port;
    let mut urls: Vec<String> = [
        "http://127.0.0.1:{port}/",
        "http://127.0.0.2:{port}/",
        "http://2130706433:{port}/",
        "http://0x7f000001:{port}/",
        "http://0177.0.0.1:{port}/",
        "http://127.1:{port}/",
        "http://0:{port}/",
        "http://[::1]:{port}/",
        "http://[0:0:0:0:0:0:0:1]:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://[::ffff:7f00:1]:{port}/",
        "http://[::127.0.0.1]:{port}/",
        "http://[64:ff9b::7f00:1]:{port}/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://169.254.169.254.:80/",
        "http://metadata.google.internal/",
        "http://METADATA.google.internal./",
        "http://localhost:{port}/",
        "http://LOCALHOST.:{port}/",
        "http://foo.localhost:{port}/",
        "http://a.b.localhost.:{port}/",
        "http://user:pass@127.0.0.1:{port}/",
        "http://example.com@127.0.0.1:{port}/",
        "http://example.com:80@127.0.0.1:{port}/",
        "http://%31%32%37.0.0.1:{port}/",
        "http://127.0.0.1%2e:{port}/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.31.255.255/",
        "http://100.100.100.200/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "https://127.0.0.1:{port}/",
    ]
    .iter()
    .map(|u| u.replace("{port}", &port.to_string()))
    .collect();
    // Names that /etc/hosts resolves to loopback here (the answer is checked after resolving).
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    for line in hosts.lines() {
        let mut words = line.split_whitespace();
        if let Some(ip) = words.next()
            && (ip.starts_with("127.") || ip == "::1")
        {
            for name in words.filter(|w| !w.starts_with('#')) {
                urls.push(format!("http://{name}:{port}/"));
            }
        }
    }
    for url in &urls {
        let f = p.fails("http.fetch", json!({"url": url})).await;
        assert_eq!(
            f.code(),
            "network_endpoint_denied",
            "{url}: {}",
            f.error.to_json()
        );
    }
    assert_eq!(
        srv.hits.load(Ordering::SeqCst),
        0,
        "the loopback server was reached"
    );
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_from_an_allowlisted_loopback_server_are_checked_at_every_hop() {
    let targets_for = |port: u16| -> Vec<String> {
        [
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://localhost:{port}/ok",
            "http://[::1]:{port}/ok",
            "http://127.0.0.2:{port}/ok",
            "http://[::ffff:127.0.0.2]:{port}/ok",
            "http://2130706434:{port}/ok",
            "file:///etc/passwd",
            "gopher://127.0.0.1:{port}/",
            "http://user:pw@169.254.169.254/",
            "/ok",
            "http://127.0.0.1:{port}/r/10",
            "//169.254.169.254/",
        ]
        .iter()
        .map(|u| u.replace("{port}", &port.to_string()))
        .collect()
    };
    // Bind first, then serve with targets that name the bound port.
    let listener = bind().await;
    let port = listener.local_addr().unwrap().port();
    let srv = serve(listener, targets_for(port));
    let p = TestProject::start(
        ProjectOptions::default()
            .network_egress_policy("allow")
            .network_allowlist([format!("127.0.0.1:{port}")]),
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    // Legitimate: the allowlisted server, directly and through same-server redirects.
    let ok = p
        .ok("http.fetch", json!({"url": format!("{base}/ok")}))
        .await;
    assert_eq!(ok.result["status"], 200, "{}", ok.result);
    assert_eq!(ok.result["body"], "fine");
    assert_eq!(ok.result["resolved_ip"], "127.0.0.1");
    for i in [10, 11] {
        let ok = p
            .ok("http.fetch", json!({"url": format!("{base}/r/{i}")}))
            .await;
        assert_eq!(ok.result["body"], "fine", "/r/{i}: {}", ok.result);
    }
    let before = srv.hits.load(Ordering::SeqCst);
    for i in 0..10 {
        let f = p
            .fails("http.fetch", json!({"url": format!("{base}/r/{i}")}))
            .await;
        assert!(
            matches!(
                f.code(),
                "network_endpoint_denied" | "network_protocol_denied"
            ),
            "/r/{i}: {}",
            f.error.to_json()
        );
    }
    let f = p
        .fails("http.fetch", json!({"url": format!("{base}/r/12")}))
        .await;
    assert!(f.code().starts_with("network_"), "{}", f.error.to_json());
    // Each refused redirect cost exactly one request: the first hop, never the second.
    assert_eq!(srv.hits.load(Ordering::SeqCst) - before, 11);
    // The port is pinned by the allowlist entry.
    let f = p
        .fails(
            "http.fetch",
            json!({"url": format!("http://127.0.0.1:{}/", port.wrapping_add(1))}),
        )
        .await;
    assert_eq!(f.code(), "network_endpoint_denied", "{}", f.error.to_json());
    // `follow_redirects: false` returns the 302 itself.
    let ok = p
        .ok(
            "http.fetch",
            json!({"url": format!("{base}/r/0"), "follow_redirects": false}),
        )
        .await;
    assert_eq!(ok.result["status"], 302, "{}", ok.result);
    p.engine.shutdown().await.unwrap();
}
