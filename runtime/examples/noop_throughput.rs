//! Measures `run_tool` of a no-op provider tool with N concurrent callers on a 2-thread runtime:
//! calls/s, latency percentiles, telemetry events dropped, and process CPU time per call (user +
//! system, all threads; stable when other processes compete for the cores).
//! With a rate, callers are paced to that many calls per second in total (each keeps its own
//! schedule and catches up after a late wake-up), otherwise each calls back to back.
//! `NOOP_TRACE=info|debug` installs a minimal tracing subscriber that enables spans and events up
//! to that level and formats every field it is given (the cost of an installed subscriber, not
//! of any particular exporter); by default none is installed.
//! `cargo run --release -p codeward --example noop_throughput -- [callers] [seconds] [rate]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use codeward::{
    Engine, EngineConfig, ProjectContext, ProjectOptions, ProviderCall, ProviderError, ToolCall,
    ToolProvider, ToolSpec,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};

struct Noop;
impl ToolProvider for Noop {
    fn tools(&self, _: &ProjectContext) -> Vec<ToolSpec> {
        let mut spec = codeward_tools::builtin_specs().remove(0);
        spec.name = "bench.noop".into();
        spec.description = "does nothing".into();
        spec.input_schema =
            json!({"type": "object", "x-codeward-complete": true, "additionalProperties": false});
        spec.safety.network_capable = false;
        vec![spec]
    }
    fn call(&self, _: ProviderCall, _: Value) -> BoxFuture<'static, Result<Value, ProviderError>> {
        Box::pin(async { Ok(json!({"ok": true})) })
    }
}

/// Enables everything up to a level, formats each field into a scratch buffer, keeps nothing.
struct Formatting {
    max: tracing::Level,
    next_id: AtomicU64,
    bytes: AtomicU64,
}

struct Visit<'a>(&'a AtomicU64);

impl tracing::field::Visit for Visit<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let mut buf = String::new();
        let _ = write!(buf, "{}={:?} ", field.name(), value);
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
    }
}

impl tracing::Subscriber for Formatting {
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        *meta.level() <= self.max
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        span.record(&mut Visit(&self.bytes));
        tracing::span::Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Visit(&self.bytes));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        event.record(&mut Visit(&self.bytes));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn main() {
    let level = match std::env::var("NOOP_TRACE").as_deref() {
        Ok("debug") => Some(tracing::Level::DEBUG),
        Ok("info") => Some(tracing::Level::INFO),
        _ => None,
    };
    if let Some(max) = level {
        let subscriber = Formatting {
            max,
            next_id: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        };
        tracing::subscriber::set_global_default(subscriber).unwrap();
    }
    let args: Vec<String> = std::env::args().collect();
    let callers: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(24);
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let rate: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    // Per caller: the time between two calls of its schedule.
    let period = (rate > 0.0).then(|| Duration::from_secs_f64(callers as f64 / rate));
    // `NOOP_RUNTIME=current`: one thread, no work stealing or idle spinning, so instruction
    // counts (e.g. under `valgrind --tool=callgrind`) are comparable between builds.
    let rt = if std::env::var("NOOP_RUNTIME").as_deref() == Ok("current") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    };
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::start(EngineConfig::default().with_tool_provider(Arc::new(Noop)))
            .await
            .unwrap();
        let p = engine
            .start_project(
                dir.path(),
                ProjectOptions::default().tool_max_concurrency(24),
            )
            .await
            .unwrap();
        let done = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let cpu_start = cpu_us();
        let stop = start + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for _ in 0..callers {
            let (engine, p, done, errors) =
                (engine.clone(), p.clone(), done.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(1 << 16);
                let mut next = tokio::time::Instant::now();
                while Instant::now() < stop {
                    if let Some(period) = period {
                        next += period;
                        tokio::time::sleep_until(next).await;
                    }
                    let t = Instant::now();
                    match engine
                        .run_tool(&p, ToolCall::new("bench.noop", json!({})))
                        .await
                    {
                        Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("{e}");
                            }
                            0
                        }
                    };
                    lat.push(t.elapsed().as_micros() as u64);
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let el = start.elapsed().as_secs_f64();
        let cpu = cpu_us().saturating_sub(cpu_start);
        all.sort_unstable();
        let pct = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
        let calls = done.load(Ordering::Relaxed);
        println!(
            "calls {} errors {} -> {:.0}/s p50 {}us p95 {}us p99 {}us dropped {} cpu {:.2}us/call",
            calls,
            errors.load(Ordering::Relaxed),
            calls as f64 / el,
            pct(0.5),
            pct(0.95),
            pct(0.99),
            engine.health().await.telemetry_dropped_total,
            cpu as f64 / calls.max(1) as f64,
        );
        engine.shutdown().await.unwrap();
    });
}

/// Process CPU time (user + system, all threads) in microseconds.
fn cpu_us() -> u64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` fills the struct it is given; RUSAGE_SELF is always valid.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr());
        ru.assume_init()
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}
