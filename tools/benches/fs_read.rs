//! `fs.read` of a 1 KiB file: the tool function itself (locate, openat2 beneath the root fd,
//! fstat, pread, UTF-8 check), without the runtime around it.

use std::hint::black_box;
use std::sync::Arc;

use codeward_policies::{PolicyContext, PolicyOptions, PolicySet};
use codeward_tools::ToolContext;
use codeward_tools::fs::RootDir;
use codeward_tools::fs::read::{ReadArgs, read};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().canonicalize().expect("canonical");
    let root = base.join("root");
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    std::fs::write(root.join("src/file.txt"), "x".repeat(1024)).expect("write");
    let pctx = PolicyContext {
        canonical_root: root.clone(),
        given_root: root.clone(),
        state_dir: Some(base.join("state")),
        scratch_base: Some(base.join("scratch")),
    };
    let policy = PolicySet::compile(&PolicyOptions::default(), pctx).expect("policy");
    let ctx = ToolContext::new(
        Arc::new(policy),
        Arc::new(RootDir::open(&root).expect("root")),
    );
    let args = ReadArgs {
        path: "src/file.txt".into(),
        offset: 0,
        max_bytes: None,
        encoding: Default::default(),
    };
    let mut g = c.benchmark_group("fs_read");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1KiB", |b| {
        b.iter(|| {
            let r = read(black_box(&ctx), black_box(args.clone())).expect("read");
            black_box(r)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
