//! The README's main job: `cargo run --release --example quickstart`. Starts an `Engine` on
//! `examples/demo-project` (assets under `.codeward/`, policy in `codeward.toml`), runs allowed
//! and denied tool calls, a scripted conversation with tool calls, and prints the incident
//! timeline of that conversation and a diagnostics summary (the body is
//! `codeward_examples::quickstart`).
//!
//! No setup: everything it writes (the journal) lives under the demo's state dir
//! `examples/demo-project/.codeward/state/`, which is gitignored; `--temp` runs on a temporary
//! copy of the demo project instead. Exit code 0 when every expected outcome happened, 1 when
//! one did not (each is printed as an `ok` / `FAIL` line), 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use codeward_examples::{copy_demo_project, demo_project_dir, quickstart};

const USAGE: &str = "usage: quickstart [--temp] [--project DIR]

  --temp         run on a temporary copy of the project (removed afterwards)
  --project DIR  run on DIR instead of examples/demo-project";

fn main() -> ExitCode {
    let (root, temp) = match parse_args() {
        Ok(Some(v)) => v,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("quickstart: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quickstart: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(quickstart::run(&root));
    if let Some(dir) = temp {
        let _ = std::fs::remove_dir_all(dir);
    }
    match outcome {
        Ok(checks) if checks.failures().is_empty() => {
            println!("\nall {} expected outcomes happened", checks.passed());
            ExitCode::SUCCESS
        }
        Ok(checks) => {
            println!(
                "\n{} of {} expected outcomes did not happen: {}",
                checks.failures().len(),
                checks.failures().len() + checks.passed(),
                checks.failures().join("; ")
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("\nquickstart failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The root to run on, and the temporary copy to remove afterwards (with `--temp`);
/// `Ok(None)` for `--help`.
fn parse_args() -> Result<Option<(PathBuf, Option<PathBuf>)>, String> {
    let mut root = demo_project_dir();
    let mut temp = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--temp" => temp = true,
            "--project" => {
                root = PathBuf::from(args.next().ok_or("`--project` needs a directory")?);
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if !temp {
        return Ok(Some((root, None)));
    }
    let copy = std::env::temp_dir()
        .join(format!("codeward-quickstart-{}", std::process::id()))
        .join("demo-project");
    copy_demo_project(&root, &copy).map_err(|e| format!("cannot copy {}: {e}", root.display()))?;
    let remove = copy.parent().map(PathBuf::from);
    Ok(Some((copy, remove)))
}
