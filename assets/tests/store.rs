//! The store: generations, strict rejection keeping the last good snapshot, lenient stale
//! versions, per-kind versions, events and diagnostics.

use std::path::PathBuf;

use codeward_assets::{AssetKind, AssetStore, AssetsEvent, ReloadOutcome, ReloadTrigger};

use crate::support::Project;

#[test]
fn strict_rejection_keeps_the_last_good_generation() {
    let p = Project::new();
    p.write("skills/a.md", "---\ndescription: one\n---\n");
    let (store, first) = AssetStore::open(&p.data_dir, p.opts(true)).unwrap();
    assert_eq!(
        (first.generation, first.outcome),
        (1, ReloadOutcome::Applied)
    );
    assert_eq!(
        first
            .events()
            .iter()
            .map(AssetsEvent::name)
            .collect::<Vec<_>>(),
        ["project.assets_loaded"]
    );

    p.write("skills/a.md", "---\ndescription: [broken\n  x: y\n---\n");
    let report = store.reload(
        ReloadTrigger::Watcher,
        vec![PathBuf::from(".codeward/skills/a.md")],
    );
    assert!(report.rejected);
    assert_eq!((report.generation, report.error_count), (1, 1));
    assert_eq!(
        report
            .events()
            .iter()
            .map(AssetsEvent::name)
            .collect::<Vec<_>>(),
        [
            "project.assets_reload_failed",
            "project.watcher_reload_failed"
        ]
    );
    assert_eq!(store.snapshot().generation(), 1);
    assert_eq!(
        store
            .snapshot()
            .get(AssetKind::Skill, "a")
            .unwrap()
            .description,
        "one"
    );
    let diag = store.diagnostics();
    assert_eq!(
        (diag.generation, diag.errors.len(), diag.strict),
        (1, 1, true)
    );
    assert_eq!(
        diag.last_reload.as_ref().map(|r| r.outcome),
        Some(ReloadOutcome::Rejected)
    );
    assert_eq!(
        report.clone().into_result().unwrap_err().code(),
        "asset_load_failed"
    );

    p.write("skills/a.md", "---\ndescription: two\n---\n");
    let report = store.reload(ReloadTrigger::Api, vec![]);
    assert_eq!(
        (report.generation, report.outcome),
        (2, ReloadOutcome::Applied)
    );
    assert_eq!(
        store
            .snapshot()
            .get(AssetKind::Skill, "a")
            .unwrap()
            .description,
        "two"
    );
    assert!(store.diagnostics().errors.is_empty());
}

#[test]
fn strict_start_fails_with_asset_load_failed() {
    let p = Project::new();
    p.write("commands/x.md", "---\nparams: 3\n---\n");
    let err = AssetStore::open(&p.data_dir, p.opts(true)).unwrap_err();
    assert_eq!(err.code(), "asset_load_failed");
}

#[test]
fn lenient_keeps_previous_version_stale_and_drops_deleted_files() {
    let p = Project::new();
    p.write("skills/a.md", "---\ndescription: good a\n---\n");
    p.write("skills/b.md", "---\ndescription: good b\n---\n");
    let (store, _) = AssetStore::open(&p.data_dir, p.opts(false)).unwrap();
    p.write("skills/a.md", b"---\ndescription: \xff\n---\n");
    p.write("skills/new.md", b"\xff");
    std::fs::remove_file(p.data_dir.join("skills/b.md")).unwrap();
    let report = store.reload(ReloadTrigger::Api, vec![]);
    assert_eq!(
        (report.outcome, report.generation, report.error_count),
        (ReloadOutcome::Applied, 2, 2)
    );
    let stale: Vec<(String, bool)> = report
        .errors
        .iter()
        .map(|e| (e.path.display().to_string(), e.stale))
        .collect();
    assert_eq!(
        stale,
        [
            (".codeward/skills/a.md".to_owned(), true),
            (".codeward/skills/new.md".to_owned(), false)
        ]
    );
    let snap = store.snapshot();
    let names: Vec<String> = snap
        .list(AssetKind::Skill)
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a"]);
    assert_eq!(
        snap.get(AssetKind::Skill, "a").unwrap().description,
        "good a"
    );
    assert_eq!(store.diagnostics().errors.len(), 2);
}

#[test]
fn per_kind_versions_follow_content_changes() {
    let p = Project::new();
    p.write("skills/a.md", "a");
    p.write("commands/c.md", "c");
    let (store, first) = AssetStore::open(&p.data_dir, p.opts(false)).unwrap();
    assert_eq!((first.versions.skill, first.versions.command), (1, 1));
    let second = store.reload(ReloadTrigger::Api, vec![]);
    assert!(!second.changed);
    assert_eq!(
        (
            second.generation,
            second.versions.skill,
            second.versions.command
        ),
        (2, 1, 1)
    );
    p.write("commands/c.md", "changed");
    let third = store.reload(ReloadTrigger::Api, vec![]);
    assert!(third.changed);
    assert_eq!(
        (
            third.generation,
            third.versions.skill,
            third.versions.command
        ),
        (3, 1, 3)
    );
    assert_eq!(
        third
            .events()
            .iter()
            .map(AssetsEvent::name)
            .collect::<Vec<_>>(),
        ["project.assets_reloaded"]
    );
}

#[test]
fn subscribers_see_each_published_snapshot() {
    let p = Project::new();
    let store = AssetStore::new(&p.data_dir, p.opts(false));
    let mut rx = store.subscribe();
    assert_eq!(rx.borrow_and_update().generation(), 0);
    p.write("skills/a.md", "a");
    store.reload(ReloadTrigger::Startup, vec![]);
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().generation(), 1);
}

#[test]
fn events_serialize_with_their_names() {
    let p = Project::new();
    let (store, _) = AssetStore::open(&p.data_dir, p.opts(false)).unwrap();
    let report = store.reload(
        ReloadTrigger::Watcher,
        vec![PathBuf::from("b"), PathBuf::from("a")],
    );
    let events = report.events();
    let json = serde_json::to_value(&events).unwrap();
    assert_eq!(json[0]["event"], "project.assets_reloaded");
    assert_eq!(json[0]["trigger"], "watcher");
    assert_eq!(
        json[1],
        serde_json::json!({"event": "project.watcher_reload_completed", "changed_paths": ["a", "b"],
                           "changed_count": 2, "generation": 2})
    );
    let back: Vec<AssetsEvent> = serde_json::from_value(json).unwrap();
    assert_eq!(back, events);
}
