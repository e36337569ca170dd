//! Criterion bench of the secret scan on a 256 KiB mixed text/JSON tool output.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use codeward_policies::secrets::Redactor;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

/// ~256 KiB: log-like lines, JSON records, code, a few secrets.
fn output() -> (Value, usize) {
    let mut lines = Vec::new();
    let mut records = Vec::new();
    let mut size = 0usize;
    let mut i = 0usize;
    while size < 256 * 1024 {
        let line = match i % 8 {
            0 => format!("2026-11-22T08:00:{:02}Z INFO request id={i} path=/api/v1/items status=200 took=12ms", i % 60),
            1 => format!("    let value_{i} = compute(&input[{i}..], Options {{ retries: 3, verbose: false }});"),
            2 => format!("warning: unused variable `tmp_{i}` at src/lib.rs:{i}:9 — see https://docs.rs/crate/{i}"),
            3 => "The quick brown fox jumps over the lazy dog; nothing secret in this sentence at all.".to_owned(),
            4 => format!("{{\"user\": \"u{i}\", \"email\": \"u{i}@example.com\", \"count\": {i}, \"ok\": true}}"),
            5 => format!("test result: ok. {i} passed; 0 failed; 0 ignored; finished in 0.{i}s"),
            6 if i % 64 == 6 => format!("export GITHUB_TOKEN=ghp_{:0>36}", i),
            _ => format!("diff --git a/src/m{i}.rs b/src/m{i}.rs index 3f2a..9c1b 100644"),
        };
        size += line.len();
        if i.is_multiple_of(5) {
            records.push(json!({"line": line, "n": i, "tags": ["a", "b"]}));
        } else {
            lines.push(line);
        }
        i += 1;
    }
    (
        json!({"stdout": lines.join("\n"), "records": records, "exit_code": 0}),
        size,
    )
}

fn benches(c: &mut Criterion) {
    let (v, _) = output();
    let bytes = serde_json::to_vec(&v).unwrap().len();
    let r = Redactor::new(vec!["an-exact-secret-value".to_owned()]);
    assert!(!r.scan(&v).is_empty());
    let mut g = c.benchmark_group("secrets");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("scan_256k_mixed", |b| {
        b.iter(|| black_box(r.scan(black_box(&v))))
    });
    g.bench_function("redact_256k_mixed", |b| {
        b.iter(|| black_box(r.redact(black_box(&v))))
    });
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
