//! Benchmarks for the three figures of the assets issue:
//! loading 1,000 mixed 2 KiB asset files, searching them, and the latency from a file change
//! to a new snapshot being visible through the watcher (median over 20 changes, printed).
//!
//! Run with `cargo bench -p codeward-assets --bench assets`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use codeward_assets::{
    AssetKind, AssetStore, LoadOptions, ReloadTrigger, Watcher, WatcherConfig, ensure_layout, load,
};
use criterion::{Criterion, criterion_group, criterion_main};

const FILES_PER_KIND: usize = 250;
const FILE_BYTES: usize = 2048;

const WORDS: &[&str] = &[
    "deploy", "release", "review", "testing", "cargo", "module", "actor", "policy", "sandbox",
    "journal", "snapshot", "watcher", "schema", "workflow", "command", "skill", "graph", "network",
    "latency", "budget",
];

fn filler(seed: usize, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut i = seed;
    while out.len() < len {
        i = i.wrapping_mul(2_654_435_761).wrapping_add(12345) % 1_000_003;
        out.push_str(WORDS[i % WORDS.len()]);
        out.push(if i.is_multiple_of(13) { '\n' } else { ' ' });
    }
    out.truncate(len);
    out
}

fn pad(mut head: String, seed: usize) -> String {
    let remaining = FILE_BYTES.saturating_sub(head.len());
    head.push_str(&filler(seed, remaining));
    head
}

/// Writes 1,000 files (250 per kind, ~2 KiB each) under `data_dir`.
fn write_project(data_dir: &Path) {
    ensure_layout(data_dir).expect("layout");
    for i in 0..FILES_PER_KIND {
        let skill = format!(
            "---\nname: skill-{i}\ndescription: skill number {i} about {}\n---\n# Skill {i}\n\n",
            WORDS[i % WORDS.len()]
        );
        std::fs::write(data_dir.join(format!("skills/skill-{i}.md")), pad(skill, i))
            .expect("write");
        let command = format!(
            "---\ndescription: command {i}\nparams:\n  target:\n    type: string\n    required: true\n  count:\n    type: integer\n    default: 3\nshell: \"echo {{{{target}}}}\"\n---\nRun {{{{target}}}}.\n"
        );
        std::fs::write(
            data_dir.join(format!("commands/cmd-{i}.md")),
            pad(command, i + 1),
        )
        .expect("write");
        let workflow = format!(
            "---\nversion: 1.0.{i}\ndescription: workflow {i}\ninputs:\n  - name: file\n    type: string\n    required: true\n---\n## Steps\n### read\n```yaml\ntool: fs.read\nargs:\n  path: \"{{{{inputs.file}}}}\"\n```\n### list\n```yaml\ntool: fs.list\n```\n## Return\n```yaml\nfrom: steps.read.result\n```\n## Notes\n"
        );
        std::fs::write(
            data_dir.join(format!("workflows/wf-{i}.md")),
            pad(workflow, i + 2),
        )
        .expect("write");
        let node = format!(
            "# Node {i}\n\nLinks: [[node-{}]], [[node-{}|next]], [[missing-{i}]].\n\n",
            (i + 1) % FILES_PER_KIND,
            (i * 7) % FILES_PER_KIND
        );
        std::fs::write(
            data_dir.join(format!("skill_graph/node-{i}.md")),
            pad(node, i + 3),
        )
        .expect("write");
    }
}

fn bench_load_and_search(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join(".codeward");
    write_project(&data_dir);
    let opts = LoadOptions::default();
    let out = load(&data_dir, &opts, 1);
    assert!(out.errors.is_empty(), "{:?}", out.errors.first());
    let counts = out.snapshot.counts();
    assert_eq!(
        (
            counts.skill,
            counts.command,
            counts.workflow,
            counts.skill_graph_nodes
        ),
        (250, 250, 250, 250)
    );

    c.bench_function("load_1000_files_2k", |b| {
        b.iter(|| black_box(load(&data_dir, &opts, 1)))
    });

    let store = AssetStore::new(&data_dir, LoadOptions::default());
    store.reload(ReloadTrigger::Startup, Vec::new());
    c.bench_function("reload_1000_files_unchanged", |b| {
        b.iter(|| black_box(store.reload(ReloadTrigger::Watcher, Vec::new())))
    });

    let snapshot = out.snapshot;
    c.bench_function("search_all_kinds_two_terms", |b| {
        b.iter(|| {
            let mut n = 0;
            for kind in AssetKind::ALL {
                n += snapshot
                    .search(kind, black_box("deploy journal"), 50)
                    .map(|h| h.len())
                    .unwrap_or(0);
            }
            n
        })
    });
    c.bench_function("search_all_kinds_no_match", |b| {
        b.iter(|| {
            let mut n = 0;
            for kind in AssetKind::ALL {
                n += snapshot
                    .search(kind, black_box("zebra"), 50)
                    .map(|h| h.len())
                    .unwrap_or(0);
            }
            n
        })
    });
    c.bench_function("search_skills_name", |b| {
        b.iter(|| {
            snapshot
                .search(AssetKind::Skill, black_box("skill-42"), 50)
                .map(|h| h.len())
        })
    });
}

/// File change → new snapshot visible, through the real watcher (debounce 250 ms).
fn watch_latency() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join(".codeward");
        write_project(&data_dir);
        let (store, _) = AssetStore::open(&data_dir, LoadOptions::default()).expect("open");
        let debounce = Duration::from_millis(250);
        let config = WatcherConfig { debounce, ..WatcherConfig::new(&data_dir) };
        let (_watcher, mut rx) = Watcher::spawn(config).expect("watcher");
        let driver = store.clone();
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                driver.reload_async(ReloadTrigger::Watcher, req.changed_paths).await;
            }
        });
        let mut updates = store.subscribe();
        let mut samples = Vec::new();
        for i in 0..20 {
            let text = format!("---\ndescription: change {i}\n---\nbody\n");
            updates.borrow_and_update();
            let started = Instant::now();
            std::fs::write(data_dir.join("skills/skill-0.md"), &text).expect("write");
            loop {
                tokio::time::timeout(Duration::from_secs(10), updates.changed())
                    .await
                    .expect("snapshot within 10 s")
                    .expect("store alive");
                let snap = updates.borrow_and_update().clone();
                if snap.get(AssetKind::Skill, "skill-0").is_ok_and(|a| a.description == format!("change {i}")) {
                    break;
                }
            }
            samples.push(started.elapsed());
            // let the watcher go quiet before the next change
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "watch_change_to_snapshot (debounce 250 ms, 1,000 files, 20 changes): median {:.1} ms, min {:.1} ms, max {:.1} ms",
            ms(samples[samples.len() / 2]),
            ms(samples[0]),
            ms(samples[samples.len() - 1])
        );
    });
}

fn bench_watch(_c: &mut Criterion) {
    watch_latency();
}

criterion_group!(benches, bench_load_and_search, bench_watch);
criterion_main!(benches);
