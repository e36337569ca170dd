//! The watcher: burst coalescing, max wait under a constant stream, editor save patterns,
//! deleted and re-created directories, ignored files, strict rejection. Every wait is a poll
//! with a generous timeout (the CI machine is small and shared); nothing asserts on time.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use codeward_assets::{
    AssetKind, AssetStore, ReloadOutcome, ReloadRequest, ReloadTrigger, Watcher, WatcherConfig,
};
use tokio::sync::mpsc;

use crate::support::{Project, poll};

const PATIENCE: Duration = Duration::from_secs(10);

fn config(p: &Project, debounce_ms: u64, max_wait_ms: u64) -> WatcherConfig {
    WatcherConfig {
        debounce: Duration::from_millis(debounce_ms),
        max_wait: Duration::from_millis(max_wait_ms),
        root: Some(p.root().to_path_buf()),
        ..WatcherConfig::new(&p.data_dir)
    }
}

/// Receives requests until `done` holds for the union of their paths, or the patience runs out.
async fn collect_until(
    rx: &mut mpsc::Receiver<ReloadRequest>,
    done: impl Fn(&[PathBuf]) -> bool,
) -> Vec<ReloadRequest> {
    let mut got: Vec<ReloadRequest> = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let all: Vec<PathBuf> = got.iter().flat_map(|r| r.changed_paths.clone()).collect();
        if done(&all) {
            return got;
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(r)) => got.push(r),
            _ => return got,
        }
    }
}

/// Runs a store behind a watcher, like the runtime's watcher actor; counts reloads.
fn drive(store: AssetStore, mut rx: mpsc::Receiver<ReloadRequest>) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            store
                .reload_async(ReloadTrigger::Watcher, req.changed_paths)
                .await;
            c.fetch_add(1, Ordering::SeqCst);
        }
    });
    count
}

fn description(store: &AssetStore, name: &str) -> Option<String> {
    store
        .snapshot()
        .get(AssetKind::Skill, name)
        .ok()
        .map(|a| a.description.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_writes_is_one_request_with_every_path() {
    let p = Project::new();
    let (w, mut rx) = Watcher::spawn(config(&p, 500, 5000)).unwrap();
    let mut expected = Vec::new();
    for i in 0..20 {
        p.write(&format!("skills/s{i:02}.md"), format!("skill {i}"));
        expected.push(PathBuf::from(format!(".codeward/skills/s{i:02}.md")));
    }
    let got = collect_until(&mut rx, |all| expected.iter().all(|e| all.contains(e))).await;
    assert_eq!(w.started_event().name(), "project.watcher_started");
    assert_eq!(
        w.stopped_event("requested").name(),
        "project.watcher_stopped"
    );
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].changed_paths, expected);
    // Nothing else is pending: no second request for the same burst.
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), rx.recv())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constant_stream_still_reloads_within_max_wait() {
    let p = Project::new();
    // Writes every ~50 ms never leave a 400 ms quiet gap; only max wait can fire.
    let (_w, mut rx) = Watcher::spawn(config(&p, 400, 800)).unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut i = 0u32;
    let req = loop {
        i += 1;
        p.write("commands/busy.md", format!("write {i}"));
        if let Ok(Some(req)) = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
            break Some(req);
        }
        if tokio::time::Instant::now() > deadline {
            break None;
        }
    };
    let req = req.expect("a request while writes kept coming");
    assert_eq!(
        req.changed_paths,
        [PathBuf::from(".codeward/commands/busy.md")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_save_patterns_reload_the_new_content() {
    let p = Project::new();
    p.write("skills/a.md", "---\ndescription: one\n---\n");
    let (store, _) = AssetStore::open(&p.data_dir, p.opts(false)).unwrap();
    let (_w, rx) = Watcher::spawn(config(&p, 100, 1000)).unwrap();
    let _count = drive(store.clone(), rx);

    // 1. write a temp file, rename over the target (VS Code, JetBrains, most tools)
    p.write("skills/.a.md.tmp", "---\ndescription: two\n---\n");
    std::fs::rename(
        p.data_dir.join("skills/.a.md.tmp"),
        p.data_dir.join("skills/a.md"),
    )
    .unwrap();
    let seen = poll(PATIENCE, || {
        (description(&store, "a").as_deref() == Some("two")).then_some(())
    })
    .await;
    assert!(seen.is_some(), "rename-save not seen");

    // 2. vim: probe file 4913, move the original to a backup, write anew, delete the backup
    p.write("skills/4913", "");
    std::fs::remove_file(p.data_dir.join("skills/4913")).unwrap();
    std::fs::rename(
        p.data_dir.join("skills/a.md"),
        p.data_dir.join("skills/a.md~"),
    )
    .unwrap();
    p.write("skills/a.md", "---\ndescription: three\n---\n");
    std::fs::remove_file(p.data_dir.join("skills/a.md~")).unwrap();
    let seen = poll(PATIENCE, || {
        (description(&store, "a").as_deref() == Some("three")).then_some(())
    })
    .await;
    assert!(seen.is_some(), "vim save not seen");

    // 3. delete then create
    std::fs::remove_file(p.data_dir.join("skills/a.md")).unwrap();
    p.write("skills/a.md", "---\ndescription: four\n---\n");
    let seen = poll(PATIENCE, || {
        (description(&store, "a").as_deref() == Some("four")).then_some(())
    })
    .await;
    assert!(seen.is_some(), "delete + create not seen");
    assert!(store.snapshot().errors().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_recreated_directories_are_watched_again() {
    let p = Project::new();
    let (store, _) = AssetStore::open(&p.data_dir, p.opts(false)).unwrap();
    let (_w, rx) = Watcher::spawn(config(&p, 100, 1000)).unwrap();
    let _count = drive(store.clone(), rx);

    std::fs::remove_dir_all(p.data_dir.join("skills")).unwrap();
    std::fs::create_dir(p.data_dir.join("skills")).unwrap();
    p.write("skills/b.md", "---\ndescription: back\n---\n");
    let seen = poll(PATIENCE, || description(&store, "b")).await;
    assert_eq!(seen.as_deref(), Some("back"));

    // The whole data dir goes away and comes back.
    std::fs::remove_dir_all(&p.data_dir).unwrap();
    let gone = poll(PATIENCE, || {
        description(&store, "b").is_none().then_some(())
    })
    .await;
    assert!(gone.is_some(), "deletion of the data dir not seen");
    codeward_assets::ensure_layout(&p.data_dir).unwrap();
    p.write("skills/c.md", "---\ndescription: again\n---\n");
    let seen = poll(PATIENCE, || description(&store, "c")).await;
    assert_eq!(seen.as_deref(), Some("again"));
    // and later edits are still seen
    p.write("skills/c.md", "---\ndescription: edited\n---\n");
    let seen = poll(PATIENCE, || {
        (description(&store, "c").as_deref() == Some("edited")).then_some(())
    })
    .await;
    assert!(seen.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_files_and_other_dirs_trigger_nothing() {
    let p = Project::new();
    let (_w, mut rx) = Watcher::spawn(config(&p, 100, 1000)).unwrap();
    for name in [
        "skills/.#a.md",
        "skills/a.md~",
        "skills/.a.md.swp",
        "skills/4913",
        "state/journal.db",
        "tmp/x.md",
    ] {
        p.write(name, "x");
    }
    // A relevant write afterwards is the only thing reported.
    p.write("commands/real.md", "x");
    let got = collect_until(&mut rx, |all| {
        all.contains(&PathBuf::from(".codeward/commands/real.md"))
    })
    .await;
    let all: Vec<PathBuf> = got.iter().flat_map(|r| r.changed_paths.clone()).collect();
    assert_eq!(all, [PathBuf::from(".codeward/commands/real.md")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_watcher_reload_is_rejected_and_the_old_generation_serves() {
    let p = Project::new();
    p.write("skills/a.md", "---\ndescription: good\n---\n");
    let (store, _) = AssetStore::open(&p.data_dir, p.opts(true)).unwrap();
    let (_w, rx) = Watcher::spawn(config(&p, 100, 1000)).unwrap();
    let _count = drive(store.clone(), rx);

    p.write("skills/a.md", "---\ndescription: [bad\n  - x\n---\n");
    let rejected = poll(PATIENCE, || {
        store
            .diagnostics()
            .last_reload
            .filter(|r| r.outcome == ReloadOutcome::Rejected)
    })
    .await;
    assert!(rejected.is_some());
    assert_eq!(store.snapshot().generation(), 1);
    assert_eq!(description(&store, "a").as_deref(), Some("good"));
    assert_eq!(store.diagnostics().errors.len(), 1);

    p.write("skills/a.md", "---\ndescription: fixed\n---\n");
    let fixed = poll(PATIENCE, || {
        (description(&store, "a").as_deref() == Some("fixed")).then_some(())
    })
    .await;
    assert!(fixed.is_some());
    assert_eq!(store.snapshot().generation(), 2);
}

#[test]
fn spawning_outside_a_runtime_is_a_typed_error() {
    let p = Project::new();
    let err = Watcher::spawn(WatcherConfig::new(&p.data_dir)).unwrap_err();
    assert_eq!(err.code(), "no_runtime");
}

#[tokio::test]
async fn watching_a_missing_dir_fails_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let err = Watcher::spawn(WatcherConfig::new(dir.path().join("missing"))).unwrap_err();
    assert_eq!(err.code(), "watch_failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_reached_through_a_symlink_is_watched() {
    let p = Project::new();
    let link = p.root().join("link");
    std::os::unix::fs::symlink(&p.data_dir, &link).unwrap();
    let config = WatcherConfig {
        debounce: Duration::from_millis(100),
        ..WatcherConfig::new(&link)
    };
    let (_w, mut rx) = Watcher::spawn(config).unwrap();
    p.write("workflows/w.md", "x");
    let expected = link.join("workflows/w.md");
    let got = collect_until(&mut rx, |all| all.contains(&expected)).await;
    let all: Vec<PathBuf> = got.iter().flat_map(|r| r.changed_paths.clone()).collect();
    assert_eq!(all, [expected]);
}
