//! Shared support code for the workspace integration suite (`all.rs`): a project on a fresh
//! temp dir ([`TestProject`]), polling with a timeout instead of sleeping ([`eventually`]),
//! provider tools that wait on a gate, sleep, panic or echo ([`TestTools`]), misbehaving alert
//! sinks ([`HangingSink`], [`PanickingSink`]) and readers of the diagnostics JSON.
//!
//! Everything goes through the public `codeward` API.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codeward::{
    Alert, AlertError, AlertSink, ConversationId, ConversationOptions, Engine, EngineConfig,
    ProjectContext, ProjectId, ProjectOptions, ProviderCall, ProviderError, Signal, ToolCall,
    ToolCallMeta, ToolFailure, ToolProvider, ToolSpec, ToolSuccess,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// How long any poll waits before the test fails (generous: two cores, parallel builds).
pub const WAIT: Duration = Duration::from_secs(30);

/// Polls `probe` every 10 ms until it returns `Some`, and panics naming `what` after [`WAIT`].
/// The only way tests wait for asynchronous effects: nothing sleeps and then asserts.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A process-unique string with `prefix` (ids, markers), valid as any codeward id.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// A tool call from the Rust API.
pub fn call(name: &str, args: Value) -> ToolCall {
    ToolCall::new(name, args)
}

/// A tool call in conversation `c`.
pub fn call_in(name: &str, args: Value, c: &ConversationId) -> ToolCall {
    ToolCall::new(name, args).in_conversation(c.clone())
}

/// A tool call with these metadata.
pub fn call_with(name: &str, args: Value, meta: ToolCallMeta) -> ToolCall {
    ToolCall::new(name, args).with_meta(meta)
}

/// A user message whose `script` drives the built-in `scripted` model client.
pub fn scripted(text: &str, script: Value) -> Signal {
    let mut msg = Signal::user_message(text);
    msg.data.insert("script".into(), script);
    msg
}

/// An engine configuration with [`TestTools`] registered.
pub fn config_with(tools: &TestTools) -> EngineConfig {
    EngineConfig::default().with_tool_provider(Arc::new(tools.clone()))
}

/// One project on its own temp dir, in its own engine (or a shared one).
pub struct TestProject {
    /// The engine hosting it.
    pub engine: Engine,
    /// Its id.
    pub id: ProjectId,
    /// Canonical root.
    pub root: PathBuf,
    /// Keeps the root alive.
    pub dir: tempfile::TempDir,
}

impl TestProject {
    /// A fresh engine with [`TestTools`] (a fresh set), and a project with `options`.
    pub async fn start(options: ProjectOptions) -> Self {
        Self::start_with(config_with(&TestTools::default()), options).await
    }

    /// A fresh engine from `config`, and a project with `options`.
    pub async fn start_with(config: EngineConfig, options: ProjectOptions) -> Self {
        let engine = Engine::start(config).await.expect("engine starts");
        Self::start_in(&engine, empty_root(), options).await
    }

    /// A project on `dir` in an existing engine.
    pub async fn start_in(
        engine: &Engine,
        dir: tempfile::TempDir,
        options: ProjectOptions,
    ) -> Self {
        let id = engine
            .start_project(dir.path(), options)
            .await
            .expect("project starts");
        Self {
            engine: engine.clone(),
            id,
            root: dir.path().canonicalize().expect("canonical root"),
            dir,
        }
    }

    /// `root/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `contents` to `root/rel`, creating parents.
    pub fn write(&self, rel: &str, contents: &str) {
        write_file(&self.root, rel, contents);
    }

    /// Runs a tool call.
    pub async fn run(&self, name: &str, args: Value) -> Result<ToolSuccess, ToolFailure> {
        self.engine.run_tool(&self.id, call(name, args)).await
    }

    /// Runs a prepared tool call.
    pub async fn run_call(&self, c: ToolCall) -> Result<ToolSuccess, ToolFailure> {
        self.engine.run_tool(&self.id, c).await
    }

    /// Runs a call that must succeed.
    pub async fn ok(&self, name: &str, args: Value) -> ToolSuccess {
        match self.run(name, args.clone()).await {
            Ok(ok) => ok,
            Err(e) => panic!("{name} {args} failed: {}", e.error.to_json()),
        }
    }

    /// Runs a call that must fail, and returns the failure.
    pub async fn fails(&self, name: &str, args: Value) -> ToolFailure {
        match self.run(name, args.clone()).await {
            Ok(ok) => panic!("{name} {args} succeeded: {}", ok.result),
            Err(e) => e,
        }
    }

    /// Starts a conversation with id `unique("conv")`.
    pub async fn conversation(&self) -> ConversationId {
        self.conversation_with(ConversationOptions::default()).await
    }

    /// Starts a conversation with these options (a unique id when none is given).
    pub async fn conversation_with(&self, mut options: ConversationOptions) -> ConversationId {
        if options.conversation_id.is_none() {
            options.conversation_id = Some(unique("conv"));
        }
        self.engine
            .start_conversation(&self.id, options)
            .await
            .expect("conversation starts")
    }

    /// The project diagnostics as JSON.
    pub async fn diagnostics(&self) -> Value {
        let d = self
            .engine
            .diagnostics(&self.id)
            .await
            .expect("diagnostics");
        serde_json::to_value(d).expect("diagnostics serialize")
    }

    /// `telemetry.recent_events`, newest first.
    pub async fn recent_events(&self) -> Vec<Value> {
        array(&self.diagnostics().await["telemetry"]["recent_events"])
    }

    /// `policy.recent_decisions`, newest first.
    pub async fn decisions(&self) -> Vec<Value> {
        array(&self.diagnostics().await["policy"]["recent_decisions"])
    }

    /// Waits for a recent event named `event` that satisfies `pred`.
    pub async fn wait_event(&self, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
        eventually(&format!("event {event}"), || async {
            self.recent_events()
                .await
                .into_iter()
                .find(|e| e["event"] == event && pred(e))
        })
        .await
    }

    /// Waits for a recent event named `event` of tool call `tool_call_id`'s correlation.
    pub async fn wait_event_of(&self, event: &str, correlation_id: &str) -> Value {
        self.wait_event(event, |e| e["correlation_id"] == correlation_id)
            .await
    }

    /// Waits for the decision record of tool call `tool_call_id`.
    pub async fn wait_decision(&self, tool_call_id: &str) -> Value {
        eventually(&format!("decision of {tool_call_id}"), || async {
            self.decisions()
                .await
                .into_iter()
                .find(|d| d["tool_call_id"] == tool_call_id)
        })
        .await
    }

    /// A telemetry counter (0 when absent).
    pub async fn counter(&self, name: &str) -> u64 {
        self.diagnostics().await["telemetry"]["counters"][name]
            .as_u64()
            .unwrap_or(0)
    }

    /// How many events named `event` were recorded (0 when none).
    pub async fn event_count(&self, event: &str) -> u64 {
        self.diagnostics().await["telemetry"]["event_counts"][event]
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits until counter `name` reaches at least `n`; returns its value.
    pub async fn wait_counter(&self, name: &str, n: u64) -> u64 {
        eventually(&format!("counter {name} >= {n}"), || async {
            let v = self.counter(name).await;
            (v >= n).then_some(v)
        })
        .await
    }

    /// Waits until `event_counts[event]` reaches at least `n`; returns it.
    pub async fn wait_event_count(&self, event: &str, n: u64) -> u64 {
        eventually(&format!("{n} x {event}"), || async {
            let v = self.event_count(event).await;
            (v >= n).then_some(v)
        })
        .await
    }
}

/// A fresh, empty project root.
pub fn empty_root() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Writes `contents` to `root/rel`, creating parents.
pub fn write_file(root: &Path, rel: &str, contents: &str) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parents");
    }
    std::fs::write(&path, contents).expect("write file");
}

/// A JSON array as a vector (empty for anything else).
pub fn array(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// The event names of a list of ring entries or timeline entries.
pub fn names(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .collect()
}

/// Counts of the gated tool: in flight now, the most ever in flight, the order calls started.
#[derive(Debug, Default)]
pub struct GateStats {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    started: Mutex<Vec<u64>>,
    cancelled: AtomicUsize,
}

/// The provider tools of the suite (all names under `test.`):
///
/// | Tool | Does |
/// |---|---|
/// | `test.echo` | returns `{echo: args}`; no `x-codeward-complete`, so its arguments get the heuristic deep scan |
/// | `test.gate` | `{n}`: records `n`, waits until the gate opens (or its token fires), returns `{n}` |
/// | `test.sleep` | `{ms}`: sleeps, or stops early when its token fires (counted) |
/// | `test.panic` | panics |
/// | `test.fail` | fails `tool_failed{reason: scripted}` with `message` |
/// | `test.result` | returns `args.value` as the result (for secret scans and redaction) |
/// | `test.net` | network-capable, heuristic schema; returns `{would_connect_to: args}` |
#[derive(Clone)]
pub struct TestTools {
    gate: Arc<tokio::sync::watch::Sender<bool>>,
    stats: Arc<GateStats>,
}

impl Default for TestTools {
    fn default() -> Self {
        Self {
            gate: Arc::new(tokio::sync::watch::channel(false).0),
            stats: Arc::new(GateStats::default()),
        }
    }
}

impl TestTools {
    /// Opens the gate: every waiting and future `test.gate` call returns.
    pub fn open(&self) {
        self.gate.send_replace(true);
    }

    /// `test.gate` calls running now (a call whose task was aborted no longer counts).
    pub fn in_flight(&self) -> usize {
        self.stats.in_flight.load(Ordering::SeqCst)
    }

    /// The most `test.gate` calls ever running at once.
    pub fn max_in_flight(&self) -> usize {
        self.stats.max_in_flight.load(Ordering::SeqCst)
    }

    /// The `n` of every `test.gate` call, in the order they started.
    pub fn started(&self) -> Vec<u64> {
        self.stats
            .started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `test.gate` / `test.sleep` calls that saw their cancellation token fire.
    pub fn cancelled(&self) -> usize {
        self.stats.cancelled.load(Ordering::SeqCst)
    }
}

fn spec(name: &str, description: &str, input_schema: Value) -> ToolSpec {
    spec_with(name, description, input_schema, false)
}

fn spec_with(name: &str, description: &str, input_schema: Value, network: bool) -> ToolSpec {
    serde_json::from_value(json!({
        "name": name,
        "description": description,
        "input_schema": input_schema,
        "output_schema": {"type": "object"},
        "safety": {"sandboxed": true, "network_capable": network},
        "kind": "provider",
        "llm_exposed": true,
        "default_run_mode": "sync",
        "source": "codeward-tests",
        "registration": {"status": "valid", "errors": []},
    }))
    .expect("tool spec")
}

fn complete(properties: Value) -> Value {
    json!({
        "type": "object",
        "x-codeward-complete": true,
        "additionalProperties": false,
        "properties": properties,
    })
}

impl ToolProvider for TestTools {
    fn tools(&self, _project: &ProjectContext) -> Vec<ToolSpec> {
        vec![
            spec(
                "test.echo",
                "Echoes its arguments.",
                json!({"type": "object"}),
            ),
            spec(
                "test.gate",
                "Waits for the test's gate.",
                complete(json!({"n": {"type": "integer"}})),
            ),
            spec(
                "test.sleep",
                "Sleeps `ms` milliseconds.",
                complete(json!({"ms": {"type": "integer", "minimum": 0}})),
            ),
            spec("test.panic", "Panics.", complete(json!({}))),
            spec(
                "test.fail",
                "Fails with `message`.",
                complete(json!({"message": {"type": "string"}})),
            ),
            spec(
                "test.result",
                "Returns `value`.",
                complete(json!({"value": {}})),
            ),
            spec_with(
                "test.net",
                "A network-capable provider tool (runs in-process, outside any OS sandbox).",
                json!({"type": "object"}),
                true,
            ),
        ]
    }

    fn call(
        &self,
        call: ProviderCall,
        args: Value,
    ) -> BoxFuture<'static, Result<Value, ProviderError>> {
        let (gate, stats) = (self.gate.subscribe(), self.stats.clone());
        Box::pin(async move {
            match call.tool.as_str() {
                "test.echo" => Ok(json!({ "echo": args })),
                "test.gate" => gated(gate, stats, &call, &args).await,
                "test.sleep" => {
                    let ms = args["ms"].as_u64().unwrap_or(0);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(json!({"slept_ms": ms})),
                        () = call.cancel.cancelled() => {
                            stats.cancelled.fetch_add(1, Ordering::SeqCst);
                            Err(ProviderError { reason: "cancelled".into(), message: "token fired".into() })
                        }
                    }
                }
                "test.panic" => panic!("test.panic was called"),
                "test.fail" => Err(ProviderError {
                    reason: "scripted".into(),
                    message: args["message"].as_str().unwrap_or_default().to_owned(),
                }),
                "test.result" => Ok(args["value"].clone()),
                "test.net" => Ok(json!({ "would_connect_to": args })),
                other => Err(ProviderError {
                    reason: "unknown".into(),
                    message: format!("no tool {other}"),
                }),
            }
        })
    }
}

async fn gated(
    mut gate: tokio::sync::watch::Receiver<bool>,
    stats: Arc<GateStats>,
    call: &ProviderCall,
    args: &Value,
) -> Result<Value, ProviderError> {
    let n = args["n"].as_u64().unwrap_or(0);
    stats
        .started
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(n);
    let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
    // Counted out when the call ends, or when its task is aborted and the future dropped.
    let _running = Running(stats.clone());
    tokio::select! {
        r = gate.wait_for(|open| *open) => {
            r.map(|_| json!({ "n": n })).map_err(|_| ProviderError {
                reason: "gate_dropped".into(), message: "the gate was dropped".into(),
            })
        }
        () = call.cancel.cancelled() => {
            stats.cancelled.fetch_add(1, Ordering::SeqCst);
            Err(ProviderError { reason: "cancelled".into(), message: "token fired".into() })
        }
    }
}

struct Running(Arc<GateStats>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An alert sink that never finishes a delivery.
pub struct HangingSink {
    name: String,
    /// Deliveries started.
    pub started: Arc<AtomicUsize>,
}

impl HangingSink {
    /// A sink named `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            started: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl AlertSink for HangingSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, _alert: &'a Alert) -> BoxFuture<'a, Result<(), AlertError>> {
        self.started.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::pending())
    }
}

/// An alert sink that panics on every delivery: inside the delivery future, or (`eager`) in
/// `deliver` itself before any future exists.
pub struct PanickingSink {
    name: String,
    eager: bool,
    /// Deliveries attempted.
    pub attempts: Arc<AtomicUsize>,
}

impl PanickingSink {
    /// A sink named `name` whose delivery future panics.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            eager: false,
            attempts: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A sink named `name` whose `deliver` panics before returning a future.
    pub fn eager(name: &str) -> Self {
        Self {
            eager: true,
            ..Self::new(name)
        }
    }
}

impl AlertSink for PanickingSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, _alert: &'a Alert) -> BoxFuture<'a, Result<(), AlertError>> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        assert!(!self.eager, "PanickingSink::deliver (eager)");
        Box::pin(async move { panic!("PanickingSink delivery future") })
    }
}
