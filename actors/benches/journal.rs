//! Journal benchmarks on a real SQLite file in a tempdir (`synchronous=NORMAL`, WAL): signal
//! appends per second with 1 and 16 concurrent appenders (each append is one acknowledged,
//! committed signal; group commit batches the concurrent ones), and the restore read of a
//! 10 000-signal conversation, alone and folded through the conversation reducer (SPEC §12.2:
//! restoring 10 000 signals should take under 1 s). A raw rusqlite single-row commit is the
//! baseline.
//!
//! Run: `cargo bench -p codeward-actors --bench journal`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use codeward_actors::conversation::{
    ConversationConfig, ConversationEvent, Signal, SignalType, restore,
};
use codeward_actors::ids::{ConversationId, ProjectId};
use codeward_actors::journal::{JournalConfig, JournalHandle};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn project() -> ProjectId {
    ProjectId::parse("bench").expect("project id")
}

fn open(rt: &tokio::runtime::Runtime, dir: &tempfile::TempDir) -> JournalHandle {
    let config =
        JournalConfig::new(dir.path().join("journal.sqlite"), project()).with_compact_every(None);
    rt.block_on(JournalHandle::open(config)).expect("open").0
}

fn entry(id: &ConversationId, seq: u64, signal: Signal) -> ConversationEvent {
    ConversationEvent {
        project_id: project(),
        conversation_id: id.clone(),
        seq,
        signal,
    }
}

fn appends(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = open(&rt, &dir);
    let round = AtomicU64::new(0);
    let mut group = c.benchmark_group("journal_append");
    group.throughput(Throughput::Elements(1));
    for appenders in [1u64, 16] {
        group.bench_function(format!("{appenders}_appenders"), |b| {
            b.iter_custom(|iters| {
                let r = round.fetch_add(1, Ordering::Relaxed);
                rt.block_on(async {
                    let started = Instant::now();
                    let tasks: Vec<_> = (0..appenders)
                        .map(|a| {
                            let journal = journal.clone();
                            let n = iters / appenders + u64::from(a < iters % appenders);
                            tokio::spawn(async move {
                                let id = ConversationId::parse(&format!("bench-{r}-{a}"))
                                    .expect("conversation id");
                                for seq in 1..=n {
                                    let sig = Signal::user_message(format!("append {seq}"));
                                    journal
                                        .append_signals(vec![entry(&id, seq, sig)])
                                        .await
                                        .expect("append");
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("appender");
                    }
                    started.elapsed()
                })
            });
        });
    }
    // A full group: one append of 256 entries, one transaction (the writer's best case).
    group.throughput(Throughput::Elements(256));
    group.bench_function("256_entries_per_append", |b| {
        b.iter_custom(|iters| {
            let r = round.fetch_add(1, Ordering::Relaxed);
            rt.block_on(async {
                let id = ConversationId::parse(&format!("bench-batch-{r}")).expect("id");
                let started = Instant::now();
                for i in 0..iters {
                    let batch = (1..=256)
                        .map(|k| {
                            let seq = i * 256 + k;
                            entry(&id, seq, Signal::user_message(format!("append {seq}")))
                        })
                        .collect();
                    journal.append_signals(batch).await.expect("append");
                }
                started.elapsed()
            })
        });
    });
    group.throughput(Throughput::Elements(1));
    // Baseline: the same row into the same table and indexes, committed inline on one rusqlite
    // connection (no thread hop, no savepoint, no group commit), to separate SQLite's cost from
    // the journal's.
    let raw = rusqlite::Connection::open(dir.path().join("raw.sqlite")).expect("raw db");
    raw.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE TABLE signals(seq INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL,
             conv_seq INTEGER NOT NULL, signal_id TEXT NOT NULL, type TEXT NOT NULL,
             correlation_id TEXT NOT NULL, causation_id TEXT, at_ms INTEGER NOT NULL,
             body_json TEXT NOT NULL, UNIQUE(conversation_id, conv_seq),
             UNIQUE(conversation_id, signal_id));
         CREATE INDEX signals_correlation ON signals(correlation_id);",
    )
    .expect("raw schema");
    let raw_seq = AtomicU64::new(0);
    group.bench_function("raw_rusqlite_commit_baseline", |b| {
        b.iter(|| {
            let seq = raw_seq.fetch_add(1, Ordering::Relaxed) + 1;
            let sig = Signal::user_message(format!("append {seq}"));
            let body = serde_json::to_string(&sig).expect("json");
            raw.execute_batch("BEGIN IMMEDIATE").expect("begin");
            raw.prepare_cached(
                "INSERT INTO signals(conversation_id, conv_seq, signal_id, type, correlation_id,
                                     causation_id, at_ms, body_json)
                 VALUES ('raw', ?1, ?2, ?3, ?4, NULL, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(rusqlite::params![
                    seq as i64,
                    sig.id.as_str(),
                    sig.kind.as_str(),
                    sig.correlation_id.as_str(),
                    sig.at_ms,
                    body
                ])
            })
            .expect("insert");
            raw.execute_batch("COMMIT").expect("commit");
        });
    });
    group.finish();
    let counters = journal.counters();
    eprintln!(
        "journal_append: {} signals in {} transactions ({:.1} per commit)",
        counters.signals_appended,
        counters.transactions,
        counters.signals_appended as f64 / counters.transactions.max(1) as f64
    );
    rt.block_on(journal.close()).expect("close");
}

/// A plausible conversation: user messages, model steps, tool calls and results.
fn history(id: &ConversationId, n: u64) -> Vec<ConversationEvent> {
    let kinds = [
        SignalType::UserMessage,
        SignalType::LlmRequested,
        SignalType::AssistantMessage,
        SignalType::ToolRequested,
        SignalType::ToolCompleted,
        SignalType::LlmCompleted,
    ];
    (1..=n)
        .map(|seq| {
            let kind = kinds[(seq as usize) % kinds.len()];
            let mut sig = Signal::new(
                kind,
                json!({
                    "content": "x".repeat(160),
                    "tool_call_id": format!("call-{seq:020x}"),
                    "name": "fs.read",
                    "result": { "bytes": seq, "path": "src/lib.rs" },
                }),
            );
            sig.at_ms = 1_700_000_000_000 + seq as i64;
            entry(id, seq, sig)
        })
        .collect()
}

fn restore_read(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = open(&rt, &dir);
    let id = ConversationId::parse("conv-restore").expect("conversation id");
    let entries = history(&id, 10_000);
    rt.block_on(async {
        for chunk in entries.chunks(250) {
            journal.append_signals(chunk.to_vec()).await.expect("fill");
        }
    });
    let mut group = c.benchmark_group("journal_restore");
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("read_10k_signals", |b| {
        b.iter(|| {
            let got = rt.block_on(journal.signals(&id, 0, None)).expect("read");
            assert_eq!(got.len(), 10_000);
            got
        });
    });
    group.bench_function("read_and_fold_10k_signals", |b| {
        b.iter(|| {
            let got = rt.block_on(journal.signals(&id, 0, None)).expect("read");
            let config = ConversationConfig::new(project(), id.clone());
            restore(config, got, 1_700_000_100_000).expect("restore")
        });
    });
    group.finish();
    rt.block_on(journal.close()).expect("close");
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = appends, restore_read
}
criterion_main!(benches);
