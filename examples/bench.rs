//! The load harness from the command line (later `codeward bench`):
//! `cargo run --release --example bench -- [flags]`. Parses the flags into a
//! [`HarnessConfig`] (the reference profile unless told otherwise), runs
//! [`codeward::harness::run`] with a progress bar on a terminal, and prints a table — or the
//! whole report as JSON with `--json`.
//!
//! Exit codes: 0 done (failed calls under load are reported, not fatal), 1 the run could not
//! be set up or measured, 2 bad usage, 3 with `--check` when a figure of the issue was missed.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codeward::harness::{self, HarnessConfig, HarnessReport, Progress, ProgressFn, Workload};
use codeward_examples::{ProgressBar, Table};

const USAGE: &str = "usage: bench [flags]

The reference profile (--projects 5 --conversations 8 --events 4 --concurrency 24 --duration 5s,
every workload) unless flags say otherwise.

  --projects N            projects of the timed workloads (1..=1000)
  --conversations N       conversations per project (1..=10000)
  --events N              user messages per conversation per round (1..=1000)
  --concurrency N         concurrent callers / parallel starters (1..=4096)
  --duration D            per timed workload: 500ms, 5s, 2m or plain seconds
  --only W                one workload: noop, fs_read, conversations, projects,
                          idle_memory, crash_recovery (default: all)
  --churn-projects N      projects started and stopped by `projects` (default 1000)
  --idle-conversations N  conversations of `idle_memory` (default 10000)
  --crash-samples N       conversations crashed by `crash_recovery` (default 20)
  --json                  print the report as JSON instead of tables
  --check                 exit 3 when a figure of the issue is missed
  -h, --help              this text";

struct Args {
    config: HarnessConfig,
    json: bool,
    check: bool,
}

fn main() -> ExitCode {
    quiet_injected_panics();
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("bench: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = args.config.validate() {
        eprintln!("bench: {e}\n\n{USAGE}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bar = Arc::new(Mutex::new(ProgressBar::stderr()));
    let progress: Option<ProgressFn> =
        bar.lock().map(|b| b.enabled()).unwrap_or(false).then(|| {
            let bar = bar.clone();
            Arc::new(move |p: &Progress| {
                if let Ok(mut bar) = bar.lock() {
                    bar.draw(
                        p.workload.as_str(),
                        p.fraction,
                        &format!(
                            "{} done, {} failed, {:.1} s",
                            p.done,
                            p.errors,
                            p.elapsed.as_secs_f64()
                        ),
                    );
                }
            }) as ProgressFn
        });
    let outcome = runtime.block_on(harness::run(&args.config, progress));
    if let Ok(mut bar) = bar.lock() {
        bar.finish();
    }
    let report = match outcome {
        Ok(report) => report,
        Err(e) => {
            eprintln!("bench: {} ({}): {}", e, e.code(), e.details());
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("bench: cannot serialize the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", render(&report));
    }
    if args.check && report.figures.iter().any(|f| !f.pass) {
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

/// The `crash_recovery` workload makes conversation actors panic on purpose; their panic
/// messages would flood the terminal. Every other panic is reported as usual.
fn quiet_injected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or_default();
        if !message.starts_with("failure injection:") {
            default(info);
        }
    }));
}

/// The flags; `Ok(None)` for `--help`.
fn parse(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args {
        config: HarnessConfig::reference(),
        json: false,
        check: false,
    };
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (flag.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        let c = &mut args.config;
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--json" => args.json = true,
            "--check" => args.check = true,
            "--projects" => c.projects = number(&name, &value()?)?,
            "--conversations" => c.conversations = number(&name, &value()?)?,
            "--events" => c.events = number(&name, &value()?)?,
            "--concurrency" => c.concurrency = number(&name, &value()?)?,
            "--churn-projects" => c.churn_projects = number(&name, &value()?)?,
            "--idle-conversations" => c.idle_conversations = number(&name, &value()?)?,
            "--crash-samples" => c.crash_samples = number(&name, &value()?)?,
            "--duration" => c.duration = duration(&value()?)?,
            "--only" => c.workload = value()?.parse::<Workload>().map_err(|e| e.to_string())?,
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    Ok(Some(args))
}

fn number(flag: &str, v: &str) -> Result<usize, String> {
    v.replace('_', "")
        .parse()
        .map_err(|_| format!("`{flag}` needs a whole number, got `{v}`"))
}

/// `500ms`, `5s`, `2m` or plain seconds (`1.5`).
fn duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("`--duration` needs e.g. 500ms, 5s, 2m or 10, got `{v}`");
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else {
        (v, 1.0)
    };
    let x: f64 = num.trim().parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(x * scale).map_err(|_| bad())
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "-".into(), |b| format!("{:.1}", b as f64 / 1_048_576.0))
}

/// Microseconds with a unit: `20.5 µs`, or `14.8 ms` from 10 ms up.
fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else {
        format!("{v:.1} µs")
    }
}

fn load(l: Option<[f64; 3]>) -> String {
    l.map_or_else(|| "?".into(), |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"))
}

fn render(r: &HarnessReport) -> String {
    let c = &r.config;
    let mut out = format!(
        "codeward load harness · {} cores · load {} at start, {} at end · {:.1} s\n\
         profile: --projects {} --conversations {} --events {} --concurrency {} --duration {}ms --only {}\n",
        r.machine.cpus,
        load(r.machine.load_average_start),
        load(r.machine.load_average_end),
        r.elapsed_ms / 1000.0,
        c.projects,
        c.conversations,
        c.events,
        c.concurrency,
        c.duration.as_millis(),
        c.workload
    );
    if !r.throughput.is_empty() {
        let mut t = Table::new([
            "workload", "callers", "ops", "errors", "ops/s", "p50", "p95", "p99", "max", "dropped",
            "peak MiB",
        ]);
        for w in &r.throughput {
            t.row([
                w.workload.to_string(),
                w.callers.to_string(),
                w.operations.to_string(),
                w.errors.values().sum::<u64>().to_string(),
                format!("{:.0}", w.throughput_per_s),
                us(w.latency.p50_us),
                us(w.latency.p95_us),
                us(w.latency.p99_us),
                us(w.latency.max_us),
                w.telemetry_dropped.to_string(),
                mib(w.peak_rss_bytes),
            ]);
        }
        out.push_str(
            "\nthroughput (ops = run_tool calls; for conversations, user messages to settled)\n",
        );
        out.push_str(&t.render());
        for w in r.throughput.iter().filter(|w| !w.notes.is_empty()) {
            let notes: Vec<String> = w.notes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            out.push_str(&format!("  {}: {}\n", w.workload, notes.join(", ")));
        }
    }
    if let Some(p) = &r.projects {
        out.push_str(&format!(
            "\nprojects: {} started in {:.0} ms, stopped in {:.0} ms ({} in parallel); \
             start p50 {} p99 {}, stop p50 {} p99 {}; peak {} MiB\n",
            p.count,
            p.start_total_ms,
            p.stop_total_ms,
            p.parallelism,
            us(p.start_latency.p50_us),
            us(p.start_latency.p99_us),
            us(p.stop_latency.p50_us),
            us(p.stop_latency.p99_us),
            mib(p.peak_rss_bytes)
        ));
    }
    if let Some(i) = &r.idle_memory {
        out.push_str(&format!(
            "\nidle memory: {} conversations in one project, RSS {} → {} MiB = {} per conversation; \
             started in {:.0} ms (p99 {}), stopped in {:.0} ms\n",
            i.started,
            mib(i.rss_before_bytes),
            mib(i.rss_after_bytes),
            i.bytes_per_conversation
                .map_or_else(|| "?".into(), |b| format!("{:.1} KiB", b / 1024.0)),
            i.start_total_ms,
            us(i.start_latency.p99_us),
            i.stop_total_ms
        ));
    }
    if let Some(cr) = &r.crash_recovery {
        out.push_str(&format!(
            "\ncrash recovery: {} samples, {} restored from the journal; back in service p50 {}, \
             p99 {}, max {}\n  ({})\n",
            cr.samples,
            cr.restored,
            us(cr.back_in_service.p50_us),
            us(cr.back_in_service.p99_us),
            us(cr.back_in_service.max_us),
            cr.method
        ));
    }
    let errors = r.errors_by_code();
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push_str(&format!("\nerrors by code: {}\n", list.join(", ")));
    }
    out.push_str(&format!(
        "\npeak RSS {} MiB · telemetry dropped {}\n",
        mib(r.peak_rss_bytes),
        r.telemetry_dropped
    ));
    if !r.figures.is_empty() {
        let mut t = Table::new(["figure", "", "target", "measured"]);
        for f in &r.figures {
            t.row([
                f.name.clone(),
                if f.pass { "PASS" } else { "MISS" }.to_owned(),
                f.target.clone(),
                f.measured.clone(),
            ]);
        }
        out.push_str("\nfigures of the issue\n");
        out.push_str(&t.render());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(args: &[&str]) -> Args {
        parse(args.iter().map(|s| (*s).to_owned()))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn flags_set_the_config_and_default_to_the_reference() {
        let a = parse_ok(&[]);
        assert_eq!(a.config, HarnessConfig::reference());
        let a = parse_ok(&[
            "--projects",
            "2",
            "--conversations=3",
            "--events",
            "1",
            "--concurrency",
            "8",
            "--duration",
            "250ms",
            "--only",
            "fs_read",
            "--json",
        ]);
        assert_eq!(
            (
                a.config.projects,
                a.config.conversations,
                a.config.events,
                a.config.concurrency
            ),
            (2, 3, 1, 8)
        );
        assert_eq!(a.config.duration, Duration::from_millis(250));
        assert_eq!(a.config.workload, Workload::FsRead);
        assert!(a.json && !a.check);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let err = |args: &[&str]| parse(args.iter().map(|s| (*s).to_owned())).err().unwrap();
        assert!(err(&["--projects"]).contains("needs a value"));
        assert!(err(&["--projects", "x"]).contains("whole number"));
        assert!(err(&["--duration", "fast"]).contains("--duration"));
        assert!(err(&["--only", "everything"]).contains("not one of"));
        assert!(err(&["--frobnicate"]).contains("unknown flag"));
        assert!(parse(["--help".to_owned()].into_iter()).unwrap().is_none());
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(duration("-1s").is_err());
    }
}
