//! Conversation actor figures: heap bytes per idle conversation (printed first; a counting
//! global allocator), crash → back in service (a crashed conversation answered by its rebuilt
//! successor, short journal), and the `call` round trip of a user message (user message → run
//! closed: 6 entries, 5 journal appends, one scripted model step) with full in-memory windows
//! (2000 timeline entries, 10 000 dedupe ids) and either the default 1 MiB LLM history or a
//! 16 KiB one — the second isolates the write-ahead step from the cost of cloning a large
//! history into every model request.
//!
//! Run: `cargo bench -p codeward-actors --bench conversation`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use codeward_actors::conversation::{
    ConversationConfig, ConversationEvent, ModelTool, ScriptedModel, Signal,
};
use codeward_actors::conversation_actor::{
    ConversationArgs, ConversationDirectory, ConversationHandle, ConversationMeta,
    ConversationStore, StoreError, ToolOutcome, ToolRunRequest, ToolRunner,
    conversation_child_spec,
};
use codeward_actors::ids::{ConversationId, ProjectId};
use codeward_actors::supervision::{
    Backoff, ChildRegistry, Intensity, OnExceeded, Supervisor, SupervisorArgs, SupervisorConfig,
};
use codeward_actors::telemetry::{
    SharedStore, TelemetryActor, TelemetryConfig, TelemetryHandle, TelemetryLimits, TelemetryStore,
    no_redaction,
};
use criterion::Criterion;
use futures::future::BoxFuture;
use tokio::runtime::Runtime;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: delegates to the system allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// A journal that keeps entries only when asked to (so it does not count as conversation memory).
#[derive(Default)]
struct Store {
    keep: bool,
    entries: Mutex<Vec<ConversationEvent>>,
}

impl ConversationStore for Store {
    fn append(
        &self,
        entries: Vec<ConversationEvent>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        if self.keep {
            self.entries.lock().unwrap().extend(entries);
        }
        Box::pin(async { Ok(()) })
    }
    fn load(
        &self,
        id: &ConversationId,
        after_seq: u64,
        limit: Option<usize>,
    ) -> BoxFuture<'static, Result<Vec<ConversationEvent>, StoreError>> {
        let got: Vec<_> = self
            .entries
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.conversation_id == *id && e.seq > after_seq)
            .take(limit.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        Box::pin(async move { Ok(got) })
    }
    fn register(&self, _meta: ConversationMeta) -> BoxFuture<'static, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn mark_stopped(
        &self,
        _id: &ConversationId,
        _reason: &str,
        _at_ms: i64,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

struct NoTools;

impl ToolRunner for NoTools {
    fn offered_tools(&self) -> Vec<ModelTool> {
        Vec::new()
    }
    fn run(&self, _req: ToolRunRequest) -> BoxFuture<'static, ToolOutcome> {
        Box::pin(async {
            ToolOutcome::Failed {
                code: "unknown_tool".into(),
                message: "no tools".into(),
                details: serde_json::json!({}),
                duration_ms: 0,
            }
        })
    }
}

struct World {
    registry: ChildRegistry,
    telemetry: TelemetryHandle,
    directory: ConversationDirectory,
    sup: codeward_actors::supervision::SupervisorHandle,
    null: Arc<dyn ConversationStore>,
}

impl World {
    async fn new() -> Self {
        let registry = ChildRegistry::new();
        let tel_store: SharedStore = Arc::new(Mutex::new(TelemetryStore::new(
            ProjectId::parse("figures").unwrap(),
            TelemetryLimits::default(),
            0,
        )));
        let tel_config = TelemetryConfig::new(no_redaction());
        let dropped = tel_config.dropped.clone();
        Supervisor::start(
            SupervisorConfig::new("telemetry-sup"),
            SupervisorArgs {
                children: vec![TelemetryActor::child_spec(
                    "telemetry",
                    tel_config,
                    tel_store,
                )],
                registry: registry.clone(),
            },
        )
        .await
        .unwrap();
        let telemetry = TelemetryHandle::new(&registry, "telemetry", 4096, dropped);
        let directory = ConversationDirectory::new();
        let sup = Supervisor::start(
            directory
                .supervisor_config("conversations", None)
                .with_intensity(Intensity::new(1_000_000, Duration::from_secs(10)))
                .with_backoff(Backoff::none()),
            SupervisorArgs {
                children: vec![],
                registry: registry.clone(),
            },
        )
        .await
        .unwrap();
        Self {
            registry,
            telemetry,
            directory,
            sup,
            null: Arc::new(Store::default()),
        }
    }

    fn args(&self, id: &str, store: Arc<dyn ConversationStore>) -> ConversationArgs {
        let config = ConversationConfig::new(
            ProjectId::parse("figures").unwrap(),
            ConversationId::parse(id).unwrap(),
        );
        let mut a = ConversationArgs::new(
            config,
            store,
            Arc::new(NoTools),
            Arc::new(ScriptedModel::new()),
            self.telemetry.clone(),
        );
        a.restore = false;
        a
    }

    async fn start(&self, args: ConversationArgs) -> ConversationHandle {
        self.directory
            .start(&self.sup, &self.registry, args)
            .await
            .unwrap()
    }
}

/// Heap bytes per conversation: N started (fresh), then after one short exchange each.
fn idle_memory(rt: &Runtime) {
    rt.block_on(async {
        let w = World::new().await;
        let warm = w.start(w.args("conv-warm", w.null.clone())).await;
        warm.call(Signal::user_message("warm up"), None)
            .await
            .unwrap();
        w.telemetry.flush().await.unwrap();
        const N: usize = 2000;
        let mut handles: Vec<ConversationHandle> = Vec::with_capacity(N);
        let before = LIVE.load(Ordering::Relaxed);
        for i in 0..N {
            handles.push(
                w.start(w.args(&format!("conv-{i:05}"), w.null.clone()))
                    .await,
            );
        }
        w.telemetry.flush().await.unwrap();
        let fresh = LIVE.load(Ordering::Relaxed);
        for h in &handles {
            h.call(Signal::user_message("hello there"), None)
                .await
                .unwrap();
        }
        w.telemetry.flush().await.unwrap();
        let after = LIVE.load(Ordering::Relaxed);
        println!(
            "idle conversation heap: {} B started, {} B after one exchange (6 entries); N = {N}, \
             counting allocator, incl. the ractor actor, registry slot and supervisor entry",
            (fresh - before) / N as isize,
            (after - before) / N as isize,
        );
        w.sup.stop("done").await;
    });
}

fn restart(c: &mut Criterion, rt: &Runtime) {
    std::panic::set_hook(Box::new(|_| {})); // the injected panics are expected
    let (w, h) = rt.block_on(async {
        let w = World::new().await;
        let kept: Arc<dyn ConversationStore> = Arc::new(Store {
            keep: true,
            ..Store::default()
        });
        let spec = conversation_child_spec(w.args("conv-crashy", kept)).with_intensity(
            Intensity::new(1_000_000, Duration::from_secs(10)),
            OnExceeded::StopChild,
        );
        w.sup.start_child(spec).await.unwrap();
        let h =
            ConversationHandle::new(&w.registry, &ConversationId::parse("conv-crashy").unwrap());
        h.call(Signal::user_message("hello"), None).await.unwrap();
        (w, h)
    });
    let mut g = c.benchmark_group("conversation");
    g.sample_size(20);
    g.bench_function("crash_to_answer_6_entries", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = Instant::now();
                    h.crash().unwrap();
                    let s = h.state().await.unwrap();
                    total += t0.elapsed();
                    assert!(s.restored);
                }
                total
            })
        })
    });
    g.finish();
    let _ = std::panic::take_hook();
    rt.block_on(w.sup.stop("done"));
}

fn call_round_trip(c: &mut Criterion, rt: &Runtime) {
    let w = rt.block_on(World::new());
    let mut g = c.benchmark_group("conversation_call");
    g.sample_size(20);
    for (label, fill, context) in [
        ("full_windows_1mib_history", 2000, 1024 * 1024),
        ("full_windows_16kib_history", 2000, 16 * 1024),
    ] {
        let h = rt.block_on(async {
            let mut a = w.args(&format!("conv-{label}"), w.null.clone());
            a.config.max_context_bytes = context;
            let h = w.start(a).await;
            for i in 0..fill {
                h.call(Signal::user_message(format!("fill {i}")), None)
                    .await
                    .unwrap();
            }
            h
        });
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let t0 = Instant::now();
                    for i in 0..iters {
                        h.call(Signal::user_message(format!("m{i}")), None)
                            .await
                            .unwrap();
                    }
                    t0.elapsed()
                })
            })
        });
    }
    g.finish();
    rt.block_on(w.sup.stop("done"));
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    idle_memory(&rt);
    let mut c = Criterion::default().configure_from_args();
    restart(&mut c, &rt);
    call_round_trip(&mut c, &rt);
    c.final_summary();
}
