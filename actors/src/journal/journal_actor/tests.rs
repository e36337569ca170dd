//! Journal actor tests under a real supervisor: the first start adopts the opened writer, a
//! killed actor restarts with a fresh writer and the handle keeps working, a kill under load
//! loses no acknowledged signal and hangs no append, a writer panic fails the in-flight append
//! and restarts the actor, a stop flushes events and closes the writer, scheduled compaction,
//! and a closed journal restarting idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::journal::tests::{T0, collector, config, conv, eventually, recorded, user};
use crate::journal::writer::WriterCmd;
use crate::journal::{
    EventQuery, JournalError, JournalHandle, JournalMsg, JournalNotice, UnavailableReason,
    journal_child_spec,
};
use crate::supervision::{
    ChildRegistry, Supervisor, SupervisorArgs, SupervisorConfig, SupervisorHandle,
};

async fn supervise(journal: &JournalHandle) -> (SupervisorHandle, ChildRegistry) {
    let registry = ChildRegistry::new();
    let sup = Supervisor::start(
        SupervisorConfig::new("project"),
        SupervisorArgs {
            children: vec![journal_child_spec("journal", journal)],
            registry: registry.clone(),
        },
    )
    .await
    .unwrap();
    (sup, registry)
}

fn kill(registry: &ChildRegistry) {
    registry
        .handle::<JournalMsg>("journal")
        .current_cell()
        .expect("journal actor is up")
        .kill();
}

async fn restarted_past(journal: &JournalHandle, generation: u64) {
    eventually("a newer writer is published", || {
        let g = journal.writer_generation();
        async move { g > generation }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_actor_restarts_and_the_handle_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    assert_eq!(journal.writer_generation(), 1);
    let (sup, registry) = supervise(&journal).await;
    assert_eq!(
        journal.writer_generation(),
        1,
        "the first start adopts the opened writer"
    );
    let id = conv("c");
    journal.append_signals(vec![user(&id, 1)]).await.unwrap();

    kill(&registry);
    restarted_past(&journal, 1).await;
    journal.append_signals(vec![user(&id, 2)]).await.unwrap();
    assert_eq!(journal.last_conv_seq(&id).await.unwrap(), 2);
    assert_eq!(sup.children().await.unwrap()[0].restart_count, 1);

    // Again: every restart gets a fresh writer.
    let g = journal.writer_generation();
    kill(&registry);
    restarted_past(&journal, g).await;
    journal.append_signals(vec![user(&id, 3)]).await.unwrap();
    let seqs: Vec<u64> = journal
        .signals(&id, 0, None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    sup.stop("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_under_load_loses_no_acknowledged_signal() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    let (sup, registry) = supervise(&journal).await;
    const APPENDERS: usize = 20;
    const PER: u64 = 60;
    let acked = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..APPENDERS)
        .map(|a| {
            let (journal, acked, failures) = (journal.clone(), acked.clone(), failures.clone());
            tokio::spawn(async move {
                let id = conv(&format!("c-{a}"));
                let mut seq = 1;
                while seq <= PER {
                    let entry = user(&id, seq);
                    let sent = tokio::time::timeout(
                        Duration::from_secs(10),
                        journal.append_signals(vec![entry]),
                    )
                    .await
                    .expect("an append never hangs");
                    match sent {
                        Ok(()) => {}
                        // A retry of a signal that had committed: acknowledged after all.
                        Err(JournalError::DuplicateSignal { .. }) => {}
                        Err(e) => {
                            assert_eq!(e.code(), "journal_unavailable", "{e:?}");
                            failures.fetch_add(1, Ordering::Relaxed);
                            continue; // retry the same entry
                        }
                    }
                    acked.fetch_add(1, Ordering::Relaxed);
                    seq += 1;
                }
                id
            })
        })
        .collect();
    eventually("load is running", || {
        let n = acked.load(Ordering::Relaxed);
        async move { n >= 100 }
    })
    .await;
    kill(&registry);
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    for id in ids {
        let seqs: Vec<u64> = journal
            .signals(&id, 0, None)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, (1..=PER).collect::<Vec<_>>(), "{id}");
    }
    assert!(journal.writer_generation() > 1, "the writer was restarted");
    eprintln!(
        "kill under load: {} failed appends retried",
        failures.load(Ordering::Relaxed)
    );
    sup.stop("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_panic_fails_the_queued_append_and_restarts_the_actor() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    let (sup, _registry) = supervise(&journal).await;
    let id = conv("c");
    journal.append_signals(vec![user(&id, 1)]).await.unwrap();

    let tx = journal.core.writer_sender().unwrap();
    let rows = vec![crate::journal::store::SignalRow::from_event(&user(&id, 2)).unwrap()];
    let (reply, answer) = tokio::sync::oneshot::channel();
    tx.try_send(WriterCmd::Panic).unwrap();
    let queued = tx.try_send(WriterCmd::Signals { rows, reply }).is_ok();
    drop(tx);
    if queued {
        let got = answer.await;
        assert!(
            matches!(
                got,
                Err(_)
                    | Ok(Err(JournalError::Unavailable {
                        reason: UnavailableReason::WriterStopped,
                        ..
                    }))
            ),
            "{got:?}"
        );
    }
    restarted_past(&journal, 1).await;
    journal.append_signals(vec![user(&id, 2)]).await.unwrap();
    assert_eq!(journal.last_conv_seq(&id).await.unwrap(), 2);
    assert_eq!(sup.children().await.unwrap()[0].restart_count, 1);
    sup.stop("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_flushes_events_and_closes_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    let (sup, _registry) = supervise(&journal).await;
    journal.append_events((1..=5).map(|s| recorded(s, None, T0)).collect());
    // Stopping the child runs post_stop (a stopping supervisor kills its children instead).
    sup.stop_child("journal").await.unwrap();
    assert_eq!(journal.writer_generation(), 0, "no writer after the stop");
    let events = journal.events(EventQuery::default()).await.unwrap();
    assert_eq!(events.len(), 5, "post_stop flushed the pending batch");
    let err = journal
        .append_signals(vec![user(&conv("c"), 1)])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        JournalError::unavailable(UnavailableReason::WriterDown)
    );
    assert!(
        journal.is_failing(),
        "no writer within the retry wait is a failing journal"
    );
    journal.close().await.unwrap();
    sup.stop("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_compacts_on_its_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path());
    // A journal created just now has nothing to compact; one that already existed does.
    let (fresh, report) = JournalHandle::open(config.clone()).await.unwrap();
    assert!(report.created);
    fresh.close().await.unwrap();
    let (observer, seen) = collector();
    let config = config
        .with_observer(observer)
        .with_compact_every(Some(Duration::from_secs(3600)));
    let (journal, _) = JournalHandle::open(config).await.unwrap();
    let (sup, registry) = supervise(&journal).await;
    eventually("a compaction was reported", || {
        let done = seen
            .lock()
            .unwrap()
            .iter()
            .any(|n| matches!(n, JournalNotice::Compacted(_)));
        async move { done }
    })
    .await;
    // A restart does not compact again.
    kill(&registry);
    restarted_past(&journal, 1).await;
    journal
        .append_signals(vec![user(&conv("c"), 1)])
        .await
        .unwrap();
    let compactions = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|n| matches!(n, JournalNotice::Compacted(_)))
        .count();
    assert_eq!(compactions, 1);
    assert!(
        journal
            .stats()
            .await
            .unwrap()
            .last_compaction_at_ms
            .is_some()
    );
    sup.stop("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_journal_restarts_idle() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalHandle::open(config(dir.path()).0).await.unwrap();
    let (sup, registry) = supervise(&journal).await;
    journal.close().await.unwrap();
    let err = journal
        .append_signals(vec![user(&conv("c"), 1)])
        .await
        .unwrap_err();
    assert_eq!(err, JournalError::unavailable(UnavailableReason::Closed));
    let gen_before = registry.generation("journal").unwrap();
    kill(&registry);
    let handle = registry.handle::<JournalMsg>("journal");
    handle.wait_ready_after(gen_before).await.unwrap();
    let children = sup.children().await.unwrap();
    assert_eq!(
        (children[0].status.as_str(), children[0].restart_count),
        ("running", 1)
    );
    assert!(sup.is_alive());
    sup.stop("done").await;
}
