//! Journal tests on real files in tempdirs: schema, modes and pragmas; identical roundtrips of
//! every signal type; duplicates; group commit under concurrent appenders; event batching,
//! overflow and write failures; the conversation registry; reopening; corruption quarantine and
//! `Fail`; schema versions; backup while appending; checks; compaction rules; snapshots;
//! readers concurrent with the writer. Helpers here are shared with the actor tests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{Value, json};

use super::*;
use crate::conversation::{ConversationEvent, Signal, SignalType};
use crate::ids::{ConversationId, CorrelationId, ProjectId, SignalId};
use crate::telemetry::{EventName, RecordedEvent};

pub(crate) const T0: i64 = 1_700_000_000_000;
pub(crate) const DAY: i64 = 86_400_000;

pub(crate) fn project() -> ProjectId {
    ProjectId::parse("proj").unwrap()
}

pub(crate) fn conv(name: &str) -> ConversationId {
    ConversationId::parse(name).unwrap()
}

/// A config under `dir/state/journal.sqlite` with a settable clock, no scheduled compaction.
pub(crate) fn config(dir: &Path) -> (JournalConfig, Arc<AtomicI64>) {
    let now = Arc::new(AtomicI64::new(T0));
    let clock = now.clone();
    let config = JournalConfig::new(dir.join("state").join("journal.sqlite"), project())
        .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)))
        .with_compact_every(None);
    (config, now)
}

pub(crate) fn entry(id: &ConversationId, seq: u64, signal: Signal) -> ConversationEvent {
    ConversationEvent {
        project_id: project(),
        conversation_id: id.clone(),
        seq,
        signal,
    }
}

pub(crate) fn user(id: &ConversationId, seq: u64) -> ConversationEvent {
    let mut s = Signal::user_message(format!("message {seq}"));
    s.at_ms = T0 + seq as i64;
    entry(id, seq, s)
}

pub(crate) fn recorded(
    seq: u64,
    conversation: Option<&ConversationId>,
    at_ms: i64,
) -> RecordedEvent {
    RecordedEvent {
        seq,
        event: EventName::ToolCompleted,
        at_ms,
        project_id: project(),
        conversation_id: conversation.cloned(),
        correlation_id: None,
        tool: Some("fs.read".into()),
        payload: json!({ "seq": seq, "ok": true }).into(),
    }
}

/// Collects notices.
pub(crate) fn collector() -> (JournalObserver, Arc<Mutex<Vec<JournalNotice>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (
        Arc::new(move |n: &JournalNotice| sink.lock().unwrap().push(n.clone())),
        seen,
    )
}

/// Polls `f` every 10 ms until it is true, failing after 10 s.
pub(crate) async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn raw(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

/// One signal of every type, with ids, causation, extensions and nested data.
fn every_signal_type(id: &ConversationId) -> Vec<ConversationEvent> {
    SignalType::ALL
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let mut s = Signal::new(
                *kind,
                json!({
                    "content": format!("{} #{i}", kind.as_str()),
                    "nested": { "list": [1, 2.5, "three", null, true], "n": i },
                    "unicode": "héllo — ✓",
                }),
            );
            s.at_ms = T0 + i as i64;
            if i % 2 == 1 {
                s.causation_id = Some(SignalId::generate());
                s.source = "/codeward/runtime".into();
            }
            if i % 3 == 0 {
                s.extensions.insert("trace".into(), json!({ "span": i }));
            }
            entry(id, i as u64 + 1, s)
        })
        .collect()
}

#[tokio::test]
async fn schema_modes_and_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    let path = config.path.clone();
    let (journal, report) = JournalHandle::open(config).await.unwrap();
    assert!(report.created);
    assert_eq!(report.schema_version, 1);
    assert!(report.quick_check.ok, "{report:?}");
    assert_eq!(report.quarantined, None);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    journal
        .append_signals(vec![user(&conv("c1"), 1)])
        .await
        .unwrap();
    assert_eq!(mode(&store::sidecar(&path, "-wal")), 0o600);
    assert_eq!(mode(&store::sidecar(&path, "-shm")), 0o600);

    let c = raw(&path);
    let pragma = |p: &str| -> Value {
        let v: rusqlite::types::Value = c
            .query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
            .unwrap();
        match v {
            rusqlite::types::Value::Integer(i) => json!(i),
            rusqlite::types::Value::Text(t) => json!(t),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(pragma("journal_mode"), json!("wal"));
    assert_eq!(pragma("auto_vacuum"), json!(2), "INCREMENTAL");
    let names: Vec<(String, String)> = c
        .prepare("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let expected: Vec<(String, String)> = [
        ("index", "events_conversation_at"),
        ("index", "events_correlation"),
        ("index", "signals_correlation"),
        ("table", "conversations"),
        ("table", "events"),
        ("table", "meta"),
        ("table", "signals"),
        ("table", "snapshots"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(names, expected);
    let meta = |k: &str| -> rusqlite::types::Value {
        c.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(meta("schema_version"), rusqlite::types::Value::Integer(1));
    assert_eq!(
        meta("project_id"),
        rusqlite::types::Value::Text("proj".into())
    );
    assert_eq!(meta("created_at"), rusqlite::types::Value::Integer(T0));
    journal.close().await.unwrap();
}

#[tokio::test]
async fn every_signal_type_roundtrips_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    let id = conv("conv-roundtrip");
    let entries = every_signal_type(&id);
    assert_eq!(entries.len(), SignalType::ALL.len());
    journal.append_signals(entries[..5].to_vec()).await.unwrap();
    journal.append_signals(entries[5..].to_vec()).await.unwrap();
    assert_eq!(journal.signals(&id, 0, None).await.unwrap(), entries);
    assert_eq!(
        journal.signals(&id, 3, Some(2)).await.unwrap(),
        entries[3..5].to_vec()
    );
    assert_eq!(
        journal
            .signals(&id, entries.len() as u64, None)
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        journal.last_conv_seq(&id).await.unwrap(),
        entries.len() as u64
    );
    assert_eq!(journal.last_conv_seq(&conv("nobody")).await.unwrap(), 0);
    assert_eq!(journal.counters().signals_appended, entries.len() as u64);
}

#[tokio::test]
async fn duplicates_fail_only_their_append() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    let id = conv("c");
    let first = vec![user(&id, 1), user(&id, 2)];
    journal.append_signals(first.clone()).await.unwrap();

    // Same signal id again (a retry), behind a new entry: nothing of the append is written.
    let mut retry = first[0].clone();
    retry.seq = 4;
    let err = journal
        .append_signals(vec![user(&id, 3), retry])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "duplicate_signal");
    assert!(
        matches!(
            &err,
            JournalError::DuplicateSignal {
                key: DuplicateKey::SignalId,
                conv_seq: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(journal.last_conv_seq(&id).await.unwrap(), 2);

    // A new signal on a taken seq.
    let err = journal
        .append_signals(vec![user(&id, 2)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            JournalError::DuplicateSignal {
                key: DuplicateKey::ConvSeq,
                conv_seq: 2,
                ..
            }
        ),
        "{err:?}"
    );
    // The same signal id in another conversation is fine.
    let mut other = first[0].clone();
    other.conversation_id = conv("other");
    journal.append_signals(vec![other]).await.unwrap();
    journal.append_signals(vec![user(&id, 3)]).await.unwrap();
    assert_eq!(journal.signals(&id, 0, None).await.unwrap().len(), 3);
    assert!(
        !journal.is_failing(),
        "caller errors are not storage failures"
    );
}

#[tokio::test]
async fn malformed_appends_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    let id = conv("c");
    let mut foreign = user(&id, 1);
    foreign.project_id = ProjectId::parse("other").unwrap();
    let codes = [
        journal.append_signals(vec![foreign]).await,
        journal.append_signals(vec![user(&id, 0)]).await,
        journal
            .append_signals((1..=MAX_APPEND as u64 + 1).map(|s| user(&id, s)).collect())
            .await,
    ]
    .map(|r| r.unwrap_err().code());
    assert_eq!(codes, ["invalid_journal_input"; 3]);
    assert_eq!(journal.append_signals(vec![]).await, Ok(()));
    assert_eq!(journal.last_conv_seq(&id).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_under_50_concurrent_appenders() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    const APPENDERS: usize = 50;
    const PER: u64 = 40;
    let tasks: Vec<_> = (0..APPENDERS)
        .map(|a| {
            let journal = journal.clone();
            tokio::spawn(async move {
                let id = conv(&format!("conv-{a:02}"));
                let mut sent = Vec::new();
                let mut seq = 1;
                while seq <= PER {
                    // Mix single entries and pairs.
                    let batch: Vec<_> = if seq % 3 == 0 && seq < PER {
                        vec![user(&id, seq), user(&id, seq + 1)]
                    } else {
                        vec![user(&id, seq)]
                    };
                    seq += batch.len() as u64;
                    journal.append_signals(batch.clone()).await.unwrap();
                    sent.extend(batch);
                }
                (id, sent)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        let (id, sent) = task.await.unwrap();
        total += sent.len() as u64;
        assert_eq!(journal.signals(&id, 0, None).await.unwrap(), sent, "{id}");
    }
    let counters = journal.counters();
    assert_eq!(counters.signals_appended, total);
    assert!(counters.transactions >= 1 && counters.transactions <= total);
    eprintln!(
        "group commit: {total} rows in {} transactions",
        counters.transactions
    );
}

#[tokio::test]
async fn events_are_batched_flushed_and_queried() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    let (a, b) = (conv("a"), conv("b"));
    let corr = CorrelationId::parse("corr-1").unwrap();
    let events: Vec<RecordedEvent> = (1..=600u64)
        .map(|seq| {
            let mut e = recorded(
                seq,
                Some(if seq % 2 == 0 { &a } else { &b }),
                T0 + seq as i64,
            );
            if seq % 10 == 0 {
                e.correlation_id = Some(corr.clone());
            }
            e
        })
        .collect();
    // On this single-threaded runtime the pump runs only once we await: it then finds all 600
    // queued and writes 512 + 88.
    assert_eq!(journal.append_events(events.clone()), 600);
    journal.flush_events().await.unwrap();
    let counters = journal.counters();
    assert_eq!((counters.event_batches, counters.events_written), (2, 600));
    let all = journal
        .events(EventQuery {
            limit: MAX_EVENT_QUERY,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all, events);
    let newest = journal
        .events(EventQuery {
            limit: 3,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(newest, events[597..].to_vec());
    let of_a = journal
        .events(EventQuery {
            conversation_id: Some(a.clone()),
            correlation_id: None,
            limit: 1000,
        })
        .await
        .unwrap();
    assert_eq!(of_a.len(), 300);
    assert!(of_a.iter().all(|e| e.conversation_id.as_ref() == Some(&a)));
    assert!(of_a.windows(2).all(|w| w[0].seq < w[1].seq));
    let correlated = journal
        .events(EventQuery {
            conversation_id: None,
            correlation_id: Some(corr.clone()),
            limit: 1000,
        })
        .await
        .unwrap();
    assert_eq!(correlated.len(), 60);
    let both = journal
        .events(EventQuery {
            conversation_id: Some(b.clone()),
            correlation_id: Some(corr),
            limit: 1000,
        })
        .await
        .unwrap();
    assert_eq!(
        both,
        vec![],
        "correlated events are all even seqs, i.e. conversation a"
    );
    assert_eq!(
        journal
            .events(EventQuery {
                limit: 0,
                ..EventQuery::default()
            })
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(journal.max_event_seq().await.unwrap(), 600);

    // The same seq again: first write wins, counted.
    let mut again = events[0].clone();
    again.payload = json!({ "changed": true }).into();
    journal.append_events(vec![again]);
    journal.flush_events().await.unwrap();
    assert_eq!(journal.counters().events_duplicate, 1);
    let first = journal
        .events(EventQuery {
            limit: MAX_EVENT_QUERY,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(first[0], events[0]);
}

#[tokio::test]
async fn events_are_written_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    journal.append_events((1..=3).map(|s| recorded(s, None, T0)).collect());
    eventually("the 100 ms batch is written", || {
        let journal = journal.clone();
        async move { journal.events(EventQuery::default()).await.unwrap().len() == 3 }
    })
    .await;
}

#[tokio::test]
async fn event_overflow_is_counted_never_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    let accepted = journal.append_events((1..=5000).map(|s| recorded(s, None, T0)).collect());
    assert_eq!(accepted, 4096);
    assert_eq!(journal.counters().events_dropped, 5000 - 4096);
    journal.flush_events().await.unwrap();
    assert_eq!(journal.counters().events_written, 4096);
}

#[tokio::test]
async fn failed_event_writes_are_dropped_counted_reported_then_recover() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    let (observer, seen) = collector();
    let path = config.path.clone();
    let (journal, _) = JournalHandle::open(config.with_observer(observer))
        .await
        .unwrap();
    journal.append_events(vec![recorded(1, None, T0)]);
    journal.flush_events().await.unwrap();

    // Break the events table under the writer.
    raw(&path).execute_batch("DROP TABLE events").unwrap();
    journal.append_events((2..=4).map(|s| recorded(s, None, T0)).collect());
    let err = journal.flush_events().await.unwrap_err();
    assert_eq!(err.code(), "journal_unavailable");
    let counters = journal.counters();
    assert_eq!((counters.events_dropped, counters.write_failures), (3, 1));
    assert!(journal.is_failing());
    // Signals still commit meanwhile (their own savepoint), and health recovers with them.
    journal
        .append_signals(vec![user(&conv("c"), 1)])
        .await
        .unwrap();
    assert!(!journal.is_failing());

    raw(&path)
        .execute_batch(
            "CREATE TABLE events(seq INTEGER PRIMARY KEY, event TEXT NOT NULL, at_ms INTEGER NOT NULL,
             conversation_id TEXT, correlation_id TEXT, tool TEXT, payload_json TEXT NOT NULL)",
        )
        .unwrap();
    journal.append_events(vec![recorded(5, None, T0)]);
    journal.flush_events().await.unwrap();
    assert_eq!(
        journal.events(EventQuery::default()).await.unwrap(),
        vec![recorded(5, None, T0)]
    );
    let notices = seen.lock().unwrap().clone();
    assert_eq!(
        notices,
        vec![
            JournalNotice::WriteFailed {
                reason: "sqlite_error".into(),
                dropped_events: 3
            },
            JournalNotice::WriteRecovered,
        ]
    );
}

#[tokio::test]
async fn live_conversations_after_stop_and_reregister() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    let ids = [conv("c-b"), conv("c-a"), conv("c-c")];
    for (i, id) in ids.iter().enumerate() {
        let mut row = ConversationRow::new(id.clone(), T0 + i as i64);
        row.options_json = json!({ "model": "scripted", "i": i });
        if i == 2 {
            row.parent_conversation_id = Some(ids[1].clone());
        }
        journal.register_conversation(row).await.unwrap();
    }
    let live = |j: JournalHandle| async move {
        j.live_conversations()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.conversation_id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(live(journal.clone()).await, ["c-a", "c-b", "c-c"]);
    journal
        .mark_stopped(&ids[0], "requested", T0 + 50)
        .await
        .unwrap();
    assert_eq!(live(journal.clone()).await, ["c-a", "c-c"]);
    let stopped = journal.conversation(&ids[0]).await.unwrap().unwrap();
    assert_eq!(
        stopped,
        ConversationRow {
            conversation_id: ids[0].clone(),
            parent_conversation_id: None,
            created_at_ms: T0,
            stopped_at_ms: Some(T0 + 50),
            stop_reason: Some("requested".into()),
            options_json: json!({ "model": "scripted", "i": 0 }),
        }
    );
    let child = journal.conversation(&ids[2]).await.unwrap().unwrap();
    assert_eq!(child.parent_conversation_id, Some(ids[1].clone()));

    // Re-registering clears the stop, keeps the first created_at, replaces the options.
    let mut again = ConversationRow::new(ids[0].clone(), T0 + 999);
    again.options_json = json!({ "model": "other" });
    journal.register_conversation(again).await.unwrap();
    assert_eq!(live(journal.clone()).await, ["c-a", "c-b", "c-c"]);
    let row = journal.conversation(&ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (
            row.created_at_ms,
            row.stopped_at_ms,
            row.stop_reason,
            row.options_json
        ),
        (T0, None, None, json!({ "model": "other" }))
    );
    assert_eq!(journal.conversation(&conv("nope")).await.unwrap(), None);
    let err = journal
        .mark_stopped(&conv("nope"), "x", T0)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conversation_not_found");
}

async fn fill(journal: &JournalHandle, id: &ConversationId, n: u64) -> Vec<ConversationEvent> {
    let entries: Vec<_> = (1..=n).map(|s| user(id, s)).collect();
    for chunk in entries.chunks(200) {
        journal.append_signals(chunk.to_vec()).await.unwrap();
    }
    entries
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    let id = conv("c");
    let (journal, _) = JournalHandle::open(config.clone()).await.unwrap();
    journal
        .register_conversation(ConversationRow::new(id.clone(), T0))
        .await
        .unwrap();
    let entries = fill(&journal, &id, 30).await;
    journal.append_events(vec![recorded(7, Some(&id), T0)]);
    journal.flush_events().await.unwrap();
    journal
        .put_snapshot(&id, 30, json!({ "status": "idle" }))
        .await
        .unwrap();
    drop(journal); // no close: the writer drains and ends by itself

    let (journal, report) = JournalHandle::open(config.clone()).await.unwrap();
    assert!(!report.created);
    assert_eq!(journal.signals(&id, 0, None).await.unwrap(), entries);
    assert_eq!(journal.max_event_seq().await.unwrap(), 7);
    assert_eq!(journal.live_conversations().await.unwrap().len(), 1);
    assert_eq!(
        journal.latest_snapshot(&id).await.unwrap(),
        Some((30, json!({ "status": "idle" })))
    );
    journal.append_signals(vec![user(&id, 31)]).await.unwrap();
    journal.close().await.unwrap();
    journal.close().await.unwrap(); // idempotent
    let closed = [
        journal
            .append_signals(vec![user(&id, 32)])
            .await
            .unwrap_err(),
        journal.signals(&id, 0, None).await.unwrap_err(),
        journal.stats().await.unwrap_err(),
    ];
    for err in closed {
        assert_eq!(err, JournalError::unavailable(UnavailableReason::Closed));
    }
    assert_eq!(journal.append_events(vec![recorded(8, None, T0)]), 1);
    assert!(
        journal.flush_events().await.is_err(),
        "events after close are dropped"
    );
    assert_eq!(
        std::fs::metadata(store::sidecar(journal.path(), "-wal")).map_or(0, |m| m.len()),
        0,
        "close checkpointed and truncated the WAL"
    );

    let (journal, _) = JournalHandle::open(config).await.unwrap();
    assert_eq!(journal.last_conv_seq(&id).await.unwrap(), 31);
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn garbage_file_is_quarantined_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    std::fs::create_dir_all(config.path.parent().unwrap()).unwrap();
    let garbage = vec![b'x'; 8192];
    std::fs::write(&config.path, &garbage).unwrap();
    let (journal, report) = JournalHandle::open(config.clone()).await.unwrap();
    let q = report.quarantined.clone().expect("quarantined");
    assert!(report.created);
    let expected = config
        .path
        .with_file_name(format!("journal.corrupt-{T0}.sqlite"));
    assert_eq!(q.moved_to, expected);
    assert!(q.reason.contains("not a database"), "{}", q.reason);
    assert_eq!(std::fs::read(&expected).unwrap(), garbage);
    journal
        .append_signals(vec![user(&conv("c"), 1)])
        .await
        .unwrap();
    assert_eq!(journal.last_conv_seq(&conv("c")).await.unwrap(), 1);
    journal.close().await.unwrap();
    let names = files_in(config.path.parent().unwrap());
    assert!(names.contains(&"journal.sqlite".to_owned()), "{names:?}");
    assert!(
        names.contains(&format!("journal.corrupt-{T0}.sqlite")),
        "{names:?}"
    );
}

#[tokio::test]
async fn corrupt_pages_are_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    let (journal, _) = JournalHandle::open(config.clone()).await.unwrap();
    let id = conv("c");
    let big = "y".repeat(1500);
    let entries: Vec<_> = (1..=300)
        .map(|s| entry(&id, s, Signal::user_message(big.clone())))
        .collect();
    for chunk in entries.chunks(100) {
        journal.append_signals(chunk.to_vec()).await.unwrap();
    }
    journal.close().await.unwrap();
    // Overwrite pages 3..=20 (4 KiB each) with garbage.
    let mut bytes = std::fs::read(&config.path).unwrap();
    assert!(bytes.len() > 20 * 4096);
    for b in &mut bytes[2 * 4096..20 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&config.path, &bytes).unwrap();

    let err = JournalHandle::open(config.clone().with_on_corruption(OnCorruption::Fail))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "journal_corrupt");
    assert_eq!(
        std::fs::read(&config.path).unwrap(),
        bytes,
        "Fail leaves the file alone"
    );

    let (journal, report) = JournalHandle::open(config).await.unwrap();
    assert!(report.quarantined.is_some(), "{report:?}");
    assert_eq!(
        journal.last_conv_seq(&id).await.unwrap(),
        0,
        "a fresh journal"
    );
}

#[tokio::test]
async fn fail_mode_refuses_a_garbage_file() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    std::fs::create_dir_all(config.path.parent().unwrap()).unwrap();
    std::fs::write(
        &config.path,
        b"definitely not sqlite, just some words to fill a header...",
    )
    .unwrap();
    let err = JournalHandle::open(config.clone().with_on_corruption(OnCorruption::Fail))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { path, .. } if *path == config.path),
        "{err:?}"
    );
    assert_eq!(files_in(config.path.parent().unwrap()), ["journal.sqlite"]);
}

#[tokio::test]
async fn schema_versions_and_project_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    let (journal, _) = JournalHandle::open(config.clone()).await.unwrap();
    journal.close().await.unwrap();
    let set_version = |v: i64| {
        raw(&config.path)
            .execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                [v],
            )
            .unwrap();
    };
    set_version(2);
    let err = JournalHandle::open(config.clone()).await.unwrap_err();
    assert_eq!(
        err,
        JournalError::SchemaTooNew {
            found: 2,
            supported: 1
        }
    );
    assert_eq!(err.code(), "schema_too_new");
    set_version(0);
    let err = JournalHandle::open(config.clone()).await.unwrap_err();
    assert_eq!(err.code(), "schema_unsupported");
    set_version(1);
    let mut other = config.clone();
    other.project_id = ProjectId::parse("someone-else").unwrap();
    let err = JournalHandle::open(other).await.unwrap_err();
    assert_eq!(err.code(), "journal_project_mismatch");
    JournalHandle::open(config).await.unwrap();
}

#[tokio::test]
async fn a_foreign_sqlite_file_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    std::fs::create_dir_all(config.path.parent().unwrap()).unwrap();
    raw(&config.path)
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let err = JournalHandle::open(config.clone().with_on_corruption(OnCorruption::Fail))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { reason, .. } if reason.contains("not a codeward journal")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_appending_has_every_committed_row() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    let (observer, seen) = collector();
    let (journal, _) = JournalHandle::open(config.with_observer(observer))
        .await
        .unwrap();
    // ~6 MiB of history so the copy takes many 256-page steps.
    let bulk = conv("bulk");
    let body = "z".repeat(2000);
    let history: Vec<_> = (1..=3000)
        .map(|s| entry(&bulk, s, Signal::user_message(body.clone())))
        .collect();
    for chunk in history.chunks(250) {
        journal.append_signals(chunk.to_vec()).await.unwrap();
    }

    let live = conv("live");
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let appender = {
        let (journal, live, acked, stop) =
            (journal.clone(), live.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seq = 1;
            while !stop.load(Ordering::SeqCst) {
                journal
                    .append_signals(vec![user(&live, seq)])
                    .await
                    .unwrap();
                acked.store(seq, Ordering::SeqCst);
                seq += 1;
                tokio::task::yield_now().await;
            }
        })
    };
    eventually("appends are flowing", || {
        let acked = acked.clone();
        async move { acked.load(Ordering::SeqCst) >= 5 }
    })
    .await;
    let dest = dir.path().join("backup.sqlite");
    let before = acked.load(Ordering::SeqCst);
    let report = journal.backup(&dest).await.unwrap();
    let after = acked.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    appender.await.unwrap();

    assert_eq!(report.path, dest);
    assert_eq!(report.bytes, std::fs::metadata(&dest).unwrap().len());
    assert!(report.bytes > 6_000_000, "{report:?}");
    assert_eq!(mode(&dest), 0o600);
    let copy = raw(&dest);
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let seqs: Vec<i64> = copy
        .prepare("SELECT conv_seq FROM signals WHERE conversation_id = 'live' ORDER BY conv_seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let k = seqs.len() as u64;
    assert!(
        seqs.iter().zip(1..).all(|(s, i)| *s == i),
        "contiguous from 1"
    );
    assert!(
        before <= k && k <= after + 1,
        "before {before}, in backup {k}, after {after}"
    );
    let bulk_rows: i64 = copy
        .query_row(
            "SELECT count(*) FROM signals WHERE conversation_id = 'bulk'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bulk_rows, 3000);
    drop(copy);
    let stats = journal.stats().await.unwrap();
    assert_eq!(stats.last_backup_at_ms, Some(T0));
    assert!(
        seen.lock()
            .unwrap()
            .contains(&JournalNotice::BackupCompleted(report))
    );
    assert!(!files_in(dir.path()).iter().any(|n| n.ends_with(".partial")));

    // The copy is a journal of its own.
    let mut restored = JournalConfig::new(dest.clone(), project()).with_compact_every(None);
    restored.on_corruption = OnCorruption::Fail;
    let (copy, report) = JournalHandle::open(restored).await.unwrap();
    assert!(!report.created);
    assert_eq!(copy.signals(&bulk, 0, None).await.unwrap(), history);

    let err = journal.backup(journal.path()).await.unwrap_err();
    assert_eq!(err.code(), "invalid_journal_input");
}

#[tokio::test]
async fn checks_quick_and_full_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (config, now) = config(dir.path());
    let (journal, report) = JournalHandle::open(config).await.unwrap();
    assert_eq!(
        journal.stats().await.unwrap().last_check,
        Some(report.quick_check)
    );
    fill(&journal, &conv("c"), 50).await;
    now.store(T0 + 1, Ordering::SeqCst);
    let quick = journal.check(false).await.unwrap();
    assert_eq!(
        quick,
        IntegrityReport {
            ok: true,
            check: CheckKind::Quick,
            messages: vec![],
            at_ms: T0 + 1
        }
    );
    now.store(T0 + 2, Ordering::SeqCst);
    let full = journal.check(true).await.unwrap();
    assert_eq!(
        (full.ok, full.check, full.at_ms),
        (true, CheckKind::Full, T0 + 2)
    );
    assert_eq!(serde_json::to_value(&full).unwrap()["check"], "full");
    assert_eq!(journal.stats().await.unwrap().last_check, Some(full));
}

#[test]
fn a_check_of_a_corrupt_file_reports_findings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sqlite");
    let mut c = raw(&path);
    c.execute_batch("CREATE TABLE t(x); CREATE INDEX tx ON t(x);")
        .unwrap();
    let tx = c.transaction().unwrap();
    for i in 0..2000 {
        tx.execute("INSERT INTO t VALUES (?1)", [format!("{i:0>100}")])
            .unwrap();
    }
    tx.commit().unwrap();
    drop(c);
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 2..len / 2 + 4096] {
        *b = 0x5A;
    }
    std::fs::write(&path, bytes).unwrap();
    let c = store::open_reader(&path).unwrap();
    let report = store::check(&c, &path, CheckKind::Full, 5).unwrap();
    assert!(!report.ok);
    assert!(!report.messages.is_empty() && report.messages.len() <= MAX_CHECK_MESSAGES);
}

async fn stopped(journal: &JournalHandle, id: &ConversationId, at: i64) {
    journal
        .register_conversation(ConversationRow::new(id.clone(), at))
        .await
        .unwrap();
    journal.mark_stopped(id, "completed", at).await.unwrap();
}

#[tokio::test]
async fn compaction_deletes_only_old_stopped_conversations_and_old_events() {
    let dir = tempfile::tempdir().unwrap();
    let (config, now) = config(dir.path());
    let (observer, seen) = collector();
    let (journal, _) = JournalHandle::open(config.with_observer(observer))
        .await
        .unwrap();
    let (live_old, gone, recent) = (
        conv("live-old"),
        conv("stopped-old"),
        conv("stopped-recent"),
    );
    journal
        .register_conversation(ConversationRow::new(live_old.clone(), T0))
        .await
        .unwrap();
    let live_entries = fill(&journal, &live_old, 20).await;
    stopped(&journal, &gone, T0).await;
    fill(&journal, &gone, 25).await;
    journal.put_snapshot(&gone, 25, json!({})).await.unwrap();
    let later = T0 + 30 * DAY;
    stopped(&journal, &recent, later).await;
    let recent_entries = fill(&journal, &recent, 5).await;
    let old_events: Vec<_> = (1..=40).map(|s| recorded(s, Some(&live_old), T0)).collect();
    let new_events: Vec<_> = (41..=45)
        .map(|s| recorded(s, Some(&live_old), later))
        .collect();
    journal.append_events(old_events);
    journal.append_events(new_events.clone());
    journal.flush_events().await.unwrap();

    now.store(T0 + 31 * DAY, Ordering::SeqCst);
    let report = journal.compact().await.unwrap();
    assert_eq!(
        (
            report.deleted_signals,
            report.deleted_events,
            report.deleted_conversations
        ),
        (25, 40, 1)
    );
    assert_eq!(report.warnings, Vec::<String>::new());
    assert!(report.bytes_before > 0 && report.bytes_after > 0);
    assert_eq!(
        journal.signals(&live_old, 0, None).await.unwrap(),
        live_entries
    );
    assert_eq!(
        journal.signals(&recent, 0, None).await.unwrap(),
        recent_entries
    );
    assert_eq!(journal.signals(&gone, 0, None).await.unwrap(), vec![]);
    assert_eq!(journal.conversation(&gone).await.unwrap(), None);
    assert_eq!(journal.latest_snapshot(&gone).await.unwrap(), None);
    assert!(journal.conversation(&recent).await.unwrap().is_some());
    assert_eq!(
        journal
            .events(EventQuery {
                limit: 1000,
                ..EventQuery::default()
            })
            .await
            .unwrap(),
        new_events
    );
    assert_eq!(journal.max_event_seq().await.unwrap(), 45);
    let stats = journal.stats().await.unwrap();
    assert_eq!(stats.last_compaction_at_ms, Some(T0 + 31 * DAY));
    assert_eq!(stats.wal_bytes, 0, "checkpointed with TRUNCATE");
    assert!(
        seen.lock()
            .unwrap()
            .contains(&JournalNotice::Compacted(report))
    );

    // Nothing left to do: a second run deletes nothing.
    let again = journal.compact().await.unwrap();
    assert_eq!((again.deleted_signals, again.deleted_events), (0, 0));
}

#[tokio::test]
async fn compaction_above_max_bytes_spares_live_conversations() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    let (journal, _) = JournalHandle::open(config.with_retention(0, 256 * 1024))
        .await
        .unwrap();
    let big = "q".repeat(3000);
    let (live, old, newer) = (conv("live"), conv("old"), conv("newer"));
    journal
        .register_conversation(ConversationRow::new(live.clone(), T0))
        .await
        .unwrap();
    stopped(&journal, &old, T0 + 1).await;
    stopped(&journal, &newer, T0 + 2).await;
    for id in [&live, &old, &newer] {
        let entries: Vec<_> = (1..=120)
            .map(|s| entry(id, s, Signal::user_message(big.clone())))
            .collect();
        journal.append_signals(entries).await.unwrap();
    }
    journal.append_events((1..=500).map(|s| recorded(s, None, T0)).collect());
    journal.flush_events().await.unwrap();

    let report = journal.compact().await.unwrap();
    assert_eq!(report.deleted_events, 500, "events go first");
    assert_eq!(
        report.deleted_conversations, 2,
        "then every stopped conversation"
    );
    assert_eq!(report.deleted_signals, 240);
    assert_eq!(
        journal.last_conv_seq(&live).await.unwrap(),
        120,
        "live is never trimmed"
    );
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert!(
        report.warnings[0].starts_with("over_max_bytes:"),
        "{report:?}"
    );
    assert!(report.bytes_after < report.bytes_before, "{report:?}");
}

#[tokio::test]
async fn compaction_trims_oldest_stopped_first_and_stops_when_small_enough() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    let (journal, _) = JournalHandle::open(config.with_retention(0, 800 * 1024))
        .await
        .unwrap();
    let big = "q".repeat(3000);
    let (old, newer) = (conv("old"), conv("newer"));
    stopped(&journal, &newer, T0 + 2).await;
    stopped(&journal, &old, T0 + 1).await;
    for id in [&old, &newer] {
        let entries: Vec<_> = (1..=150)
            .map(|s| entry(id, s, Signal::user_message(big.clone())))
            .collect();
        journal.append_signals(entries).await.unwrap();
    }
    let report = journal.compact().await.unwrap();
    assert_eq!(report.deleted_conversations, 1, "{report:?}");
    assert_eq!(journal.conversation(&old).await.unwrap(), None);
    assert_eq!(journal.last_conv_seq(&newer).await.unwrap(), 150);
    assert_eq!(report.warnings, Vec::<String>::new());
}

#[tokio::test]
async fn snapshots_keep_the_two_newest() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    let id = conv("c");
    assert_eq!(journal.latest_snapshot(&id).await.unwrap(), None);
    for seq in [1000, 2000, 3000] {
        journal
            .put_snapshot(&id, seq, json!({ "at": seq }))
            .await
            .unwrap();
    }
    assert_eq!(
        journal.latest_snapshot(&id).await.unwrap(),
        Some((3000, json!({ "at": 3000 })))
    );
    let c = raw(journal.path());
    let kept: Vec<i64> = c
        .prepare("SELECT conv_seq FROM snapshots ORDER BY conv_seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(kept, [2000, 3000]);
}

#[tokio::test]
async fn stats_describe_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    let path: PathBuf = config.path.clone();
    let (journal, _) = JournalHandle::open(config).await.unwrap();
    let empty = journal.stats().await.unwrap();
    assert_eq!(
        (empty.signal_count, empty.event_count, empty.oldest_at_ms),
        (0, 0, None)
    );
    fill(&journal, &conv("c"), 12).await;
    journal.append_events(vec![recorded(1, None, T0 - 5)]);
    journal.flush_events().await.unwrap();
    let stats = journal.stats().await.unwrap();
    assert_eq!(stats.path, path);
    assert_eq!((stats.signal_count, stats.event_count), (12, 1));
    assert_eq!(stats.oldest_at_ms, Some(T0 - 5));
    assert!(stats.size_bytes > 0 && stats.wal_bytes > 0);
    assert_eq!(stats.last_backup_at_ms, None);
    assert_eq!(stats.counters.signals_appended, 12);
    assert_eq!(stats.counters.events_written, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_consistent_prefixes_while_the_writer_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    let id = conv("c");
    const N: u64 = 300;
    let writer = {
        let (journal, id) = (journal.clone(), id.clone());
        tokio::spawn(async move {
            for seq in 1..=N {
                journal.append_signals(vec![user(&id, seq)]).await.unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (journal, id) = (journal.clone(), id.clone());
            tokio::spawn(async move {
                let mut last = 0;
                let mut reads = 0;
                while last < N {
                    let got = journal.signals(&id, 0, None).await.unwrap();
                    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
                    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
                    assert!(seqs.len() as u64 >= last, "reads never go back");
                    last = seqs.len() as u64;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    writer.await.unwrap();
    for r in readers {
        assert!(r.await.unwrap() >= 1);
    }
}

proptest::proptest! {
    /// `body_json` decodes to the very signal that was encoded, floats included (regression:
    /// without serde_json's `float_roundtrip` some floats came back one ulp off).
    #[test]
    fn signal_bodies_roundtrip_exactly(
        x in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
        n in proptest::num::i64::ANY,
        text in "\\PC{0,40}",
    ) {
        let id = conv("c");
        let sig = Signal::new(SignalType::ToolCompleted, json!({ "x": x, "n": n, "text": text }));
        let row = store::SignalRow::from_event(&entry(&id, 1, sig.clone())).unwrap();
        let back: Signal = serde_json::from_str(&row.body_json).unwrap();
        proptest::prop_assert_eq!(back, sig);
    }
}
