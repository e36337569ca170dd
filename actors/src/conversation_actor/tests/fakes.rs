//! Test doubles: an in-memory journal that checks seq continuity and can refuse appends, a tool
//! runner with holding / gated / paired / panicking tools, a hanging and a recording model, and
//! the fixture that wires them under a telemetry actor and a ConversationSupervisor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::{Barrier, Semaphore};
use tokio::time::Instant;

use crate::conversation::{
    ConversationConfig, ConversationEvent, DeltaSink, ModelClient, ModelError, ModelRequest,
    ModelResponse, ModelTool, RunMode, ScriptedModel, Signal,
};
use crate::conversation_actor::{
    ConversationArgs, ConversationDirectory, ConversationHandle, ConversationMeta,
    ConversationStateView, ConversationStore, StoreError, ToolOutcome, ToolRunRequest, ToolRunner,
};
use crate::ids::{ConversationId, ProjectId};
use crate::supervision::{
    ChildRegistry, Supervisor, SupervisorArgs, SupervisorConfig, SupervisorHandle,
};
use crate::telemetry::{
    RecordedEvent, SharedStore, TelemetryActor, TelemetryConfig, TelemetryHandle, TelemetryLimits,
    TelemetrySnapshot, TelemetryStore, no_redaction,
};

pub(super) const NOW_MS: i64 = 1_700_000_000_000;

// ---------------------------------------------------------------- journal

#[derive(Default)]
struct StoreInner {
    entries: HashMap<String, Vec<ConversationEvent>>,
    metas: HashMap<String, ConversationMeta>,
    stopped: HashMap<String, (String, i64)>,
    violations: Vec<String>,
}

/// In-memory journal. Appends must continue each conversation's seq without gap (violations are
/// recorded and refused); `fail_appends(n)` makes the next `n` appends fail.
#[derive(Default)]
pub(super) struct MemStore {
    inner: Mutex<StoreInner>,
    fail_next: AtomicU32,
    fail_loads: AtomicU32,
    pub(super) appends: AtomicU64,
}

impl MemStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, StoreInner> {
        self.inner.lock().unwrap()
    }

    pub(super) fn fail_appends(&self, n: u32) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    pub(super) fn fail_loads(&self, n: u32) {
        self.fail_loads.store(n, Ordering::SeqCst);
    }

    pub(super) fn entries(&self, id: &str) -> Vec<ConversationEvent> {
        self.lock().entries.get(id).cloned().unwrap_or_default()
    }

    pub(super) fn types(&self, id: &str) -> Vec<String> {
        self.entries(id)
            .iter()
            .map(|e| short(e.signal.kind.as_str()))
            .collect()
    }

    pub(super) fn stopped(&self, id: &str) -> Option<(String, i64)> {
        self.lock().stopped.get(id).cloned()
    }

    pub(super) fn registered(&self, id: &str) -> Option<ConversationMeta> {
        self.lock().metas.get(id).cloned()
    }

    pub(super) fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Seeds a journal directly (a conversation that ran in an earlier process).
    pub(super) fn seed(&self, entries: Vec<ConversationEvent>) {
        for e in entries {
            let mut inner = self.lock();
            inner
                .entries
                .entry(e.conversation_id.to_string())
                .or_default()
                .push(e);
        }
    }
}

pub(super) fn short(kind: &str) -> String {
    kind.trim_start_matches("conversation.").to_owned()
}

fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl ConversationStore for MemStore {
    fn append(
        &self,
        entries: Vec<ConversationEvent>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let result = if take_one(&self.fail_next) {
            Err(StoreError::unavailable("disk on fire (injected)"))
        } else {
            let mut inner = self.lock();
            let id = entries
                .first()
                .map(|e| e.conversation_id.to_string())
                .unwrap_or_default();
            let last = inner
                .entries
                .get(&id)
                .and_then(|v| v.last())
                .map_or(0, |e| e.seq);
            let continuous = entries
                .iter()
                .enumerate()
                .all(|(i, e)| e.seq == last + 1 + i as u64 && e.conversation_id.as_str() == id);
            if continuous {
                inner.entries.entry(id).or_default().extend(entries);
                self.appends.fetch_add(1, Ordering::SeqCst);
                Ok(())
            } else {
                let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
                inner
                    .violations
                    .push(format!("{id}: append {seqs:?} after {last}"));
                Err(StoreError {
                    code: "seq_gap".into(),
                    message: "non-continuous append".into(),
                })
            }
        };
        Box::pin(async move {
            tokio::task::yield_now().await;
            result
        })
    }

    fn load(
        &self,
        id: &ConversationId,
        after_seq: u64,
        limit: Option<usize>,
    ) -> BoxFuture<'static, Result<Vec<ConversationEvent>, StoreError>> {
        let result = if take_one(&self.fail_loads) {
            Err(StoreError::unavailable("load refused (injected)"))
        } else {
            let inner = self.lock();
            Ok(inner
                .entries
                .get(id.as_str())
                .map(|v| {
                    v.iter()
                        .filter(|e| e.seq > after_seq)
                        .take(limit.unwrap_or(usize::MAX))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default())
        };
        Box::pin(async move {
            tokio::task::yield_now().await;
            result
        })
    }

    fn register(&self, meta: ConversationMeta) -> BoxFuture<'static, Result<(), StoreError>> {
        self.lock()
            .metas
            .insert(meta.conversation_id.to_string(), meta);
        Box::pin(async { Ok(()) })
    }

    fn mark_stopped(
        &self,
        id: &ConversationId,
        reason: &str,
        at_ms: i64,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        self.lock()
            .stopped
            .insert(id.to_string(), (reason.to_owned(), at_ms));
        Box::pin(async { Ok(()) })
    }
}

// ---------------------------------------------------------------- tools

struct RunnerInner {
    calls: Mutex<Vec<(String, RunMode)>>,
    started: AtomicU64,
    cancelled: AtomicU64,
    pair: Barrier,
    gate: Semaphore,
}

/// Tools: `echo` (completes at once), `pair` (completes only once two `pair` calls run at the
/// same time), `hold` (returns `cancelled` once its token fires — a late result), `gated`
/// (completes when [`FakeRunner::release`] opens the gate), `boom` (panics).
#[derive(Clone)]
pub(super) struct FakeRunner {
    inner: Arc<RunnerInner>,
}

impl Default for FakeRunner {
    fn default() -> Self {
        Self {
            inner: Arc::new(RunnerInner {
                calls: Mutex::new(Vec::new()),
                started: AtomicU64::new(0),
                cancelled: AtomicU64::new(0),
                pair: Barrier::new(2),
                gate: Semaphore::new(0),
            }),
        }
    }
}

impl FakeRunner {
    pub(super) fn calls(&self) -> Vec<(String, RunMode)> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// Tokens seen fired (by the executor's side of the call).
    pub(super) fn cancelled(&self) -> u64 {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    pub(super) fn release(&self, n: usize) {
        self.inner.gate.add_permits(n);
    }
}

impl ToolRunner for FakeRunner {
    fn offered_tools(&self) -> Vec<ModelTool> {
        ["echo", "pair", "hold", "gated", "boom"]
            .iter()
            .map(|n| ModelTool {
                name: (*n).into(),
                description: format!("test tool {n}"),
                input_schema: json!({"type": "object"}),
            })
            .collect()
    }

    fn run(&self, req: ToolRunRequest) -> BoxFuture<'static, ToolOutcome> {
        let inner = self.inner.clone();
        inner
            .calls
            .lock()
            .unwrap()
            .push((req.name.clone(), req.run_mode));
        // The executor watches the token on its own, even if our future is dropped.
        let token = req.cancel.clone();
        let watcher = inner.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            watcher.cancelled.fetch_add(1, Ordering::SeqCst);
        });
        Box::pin(async move {
            (req.on_started)();
            inner.started.fetch_add(1, Ordering::SeqCst);
            let ok = |args: Value| ToolOutcome::Completed {
                result: json!({ "echo": args }),
                duration_ms: 1,
                risk_flags: vec![],
            };
            match req.name.as_str() {
                "echo" => ok(req.args),
                "pair" => {
                    inner.pair.wait().await;
                    ok(req.args)
                }
                "hold" => {
                    req.cancel.cancelled().await;
                    ToolOutcome::Failed {
                        code: "cancelled".into(),
                        message: "cancelled".into(),
                        details: json!({}),
                        duration_ms: 0,
                    }
                }
                "gated" => {
                    if let Ok(permit) = inner.gate.acquire().await {
                        permit.forget();
                    }
                    ok(req.args)
                }
                "boom" => panic!("tool runner exploded (test)"),
                other => ToolOutcome::Failed {
                    code: "unknown_tool".into(),
                    message: format!("no tool {other}"),
                    details: json!({}),
                    duration_ms: 0,
                },
            }
        })
    }
}

// ---------------------------------------------------------------- models

/// Never answers.
pub(super) struct Hanging;

impl ModelClient for Hanging {
    fn name(&self) -> &str {
        "hanging"
    }
    fn complete<'a>(
        &'a self,
        _req: ModelRequest,
        _deltas: DeltaSink,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(futures::future::pending())
    }
}

/// A scripted model that records when it was called.
pub(super) struct Recording {
    pub(super) inner: ScriptedModel,
    pub(super) calls: Mutex<Vec<Instant>>,
}

impl Recording {
    pub(super) fn new(inner: ScriptedModel) -> Self {
        Self {
            inner,
            calls: Mutex::new(Vec::new()),
        }
    }
}

impl ModelClient for Recording {
    fn name(&self) -> &str {
        "recording"
    }
    fn complete<'a>(
        &'a self,
        req: ModelRequest,
        deltas: DeltaSink,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        self.calls.lock().unwrap().push(Instant::now());
        self.inner.complete(req, deltas)
    }
}

// ---------------------------------------------------------------- fixture

/// A telemetry actor and a ConversationSupervisor on one registry, with the fakes.
pub(super) struct Fixture {
    pub(super) registry: ChildRegistry,
    pub(super) telemetry: TelemetryHandle,
    pub(super) recorded: Arc<Mutex<Vec<RecordedEvent>>>,
    pub(super) sup: SupervisorHandle,
    tel_sup: SupervisorHandle,
    _tel_store: SharedStore,
    pub(super) directory: ConversationDirectory,
    pub(super) store: Arc<MemStore>,
    pub(super) runner: FakeRunner,
}

impl Fixture {
    pub(super) async fn new(name: &str) -> Self {
        let registry = ChildRegistry::new();
        let tel_store: SharedStore = Arc::new(Mutex::new(TelemetryStore::new(
            ProjectId::parse("proj").unwrap(),
            TelemetryLimits::default(),
            0,
        )));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let sink = recorded.clone();
        let config = TelemetryConfig::new(no_redaction())
            .with_clock(Arc::new(|| NOW_MS))
            .with_observer(Arc::new(move |e: &RecordedEvent| {
                sink.lock().unwrap().push(e.clone());
            }));
        let dropped = config.dropped.clone();
        let tel_sup = Supervisor::start(
            SupervisorConfig::new(format!("{name}-telemetry")),
            SupervisorArgs {
                children: vec![TelemetryActor::child_spec(
                    "telemetry",
                    config,
                    tel_store.clone(),
                )],
                registry: registry.clone(),
            },
        )
        .await
        .unwrap();
        let telemetry = TelemetryHandle::new(&registry, "telemetry", 4096, dropped);
        let directory = ConversationDirectory::new();
        let sup = Supervisor::start(
            directory.supervisor_config(&format!("{name}-conversations"), None),
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
            recorded,
            sup,
            tel_sup,
            _tel_store: tel_store,
            directory,
            store: Arc::new(MemStore::default()),
            runner: FakeRunner::default(),
        }
    }

    pub(super) fn config(&self, id: &str) -> ConversationConfig {
        ConversationConfig::new(
            ProjectId::parse("proj").unwrap(),
            ConversationId::parse(id).unwrap(),
        )
    }

    pub(super) fn args(
        &self,
        config: ConversationConfig,
        model: Arc<dyn ModelClient>,
    ) -> ConversationArgs {
        let mut args = ConversationArgs::new(
            config,
            self.store.clone(),
            Arc::new(self.runner.clone()),
            model,
            self.telemetry.clone(),
        );
        args.restore = false;
        args.clock = Arc::new(|| NOW_MS);
        args.created_at_ms = NOW_MS;
        args
    }

    /// Starts `id` with the scripted model and `tweak`ed config.
    pub(super) async fn start(
        &self,
        id: &str,
        model: Arc<dyn ModelClient>,
        tweak: impl FnOnce(&mut ConversationConfig),
    ) -> ConversationHandle {
        let mut config = self.config(id);
        tweak(&mut config);
        self.directory
            .start(&self.sup, &self.registry, self.args(config, model))
            .await
            .unwrap()
    }

    pub(super) async fn telemetry_snapshot(&self) -> TelemetrySnapshot {
        self.telemetry.flush().await.unwrap();
        self.telemetry.snapshot().await.unwrap()
    }

    /// Recorded events named `name` (after a flush).
    pub(super) async fn events(&self, name: &str) -> Vec<RecordedEvent> {
        self.telemetry.flush().await.unwrap();
        self.recorded
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.event.as_str() == name)
            .cloned()
            .collect()
    }

    /// Polls the counter until it reaches `want` (bounded).
    pub(super) async fn counter_reaches(&self, name: &str, want: u64) -> u64 {
        let got = eventually(|| async {
            let n = self
                .telemetry_snapshot()
                .await
                .counters
                .get(name)
                .copied()
                .unwrap_or(0);
            (n >= want).then_some(n)
        })
        .await;
        assert_eq!(got, want, "counter {name}");
        got
    }

    pub(super) async fn shutdown(self) {
        assert_eq!(self.store.violations(), Vec::<String>::new());
        self.sup.stop("test_done").await;
        self.tel_sup.stop("test_done").await;
    }
}

/// Polls `probe` (sleeping 5 ms between tries, so paused time advances) until it yields a
/// value; panics after 20 s.
pub(super) async fn eventually<T, F, Fut>(mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition reached in time")
}

/// Polls the state view until `pred` holds.
pub(super) async fn state_until(
    h: &ConversationHandle,
    pred: impl Fn(&ConversationStateView) -> bool,
) -> ConversationStateView {
    eventually(|| async {
        let s = h.state().await.ok()?;
        pred(&s).then_some(s)
    })
    .await
}

/// A user message carrying a `script` for the scripted model.
pub(super) fn scripted(content: &str, script: Value) -> Signal {
    let mut s = Signal::user_message(content);
    s.data.insert("script".into(), script);
    s
}
