//! Env scrub of `command.run`, in its own test binary because it puts a secret into this
//! process's environment: the command must see only the env built by `command::build_env` —
//! never codeward's own variables — plus the names it was told to inherit.

#![cfg(target_os = "linux")]

use std::time::Duration;

use codeward_tools::CallIds;
use codeward_tools::command::{self, CommandLine, CommandRequest, EnvInputs};
use codeward_tools::sandbox::{self, SandboxPlan};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "cw-secret-value-4f1d2e";

#[tokio::test]
async fn codeward_secrets_do_not_reach_the_command() {
    // SAFETY: this binary holds this one test, and nextest runs each test in its own process;
    // no other thread reads the environment concurrently at this point.
    unsafe {
        std::env::set_var("CW_SECRET_TOKEN", SECRET);
        std::env::set_var("CW_INHERITED", "inherited-ok");
    }
    let root = tempfile::tempdir().expect("root");
    let data = tempfile::tempdir().expect("data");
    let root_path = root.path().canonicalize().expect("canonical");
    let scratch = data.path().join("tmp").join("call-env");
    let ids = CallIds {
        tool_call_id: "call-env".into(),
        ..CallIds::default()
    };
    let inherit = vec!["CW_INHERITED".to_owned()];
    let env = command::build_env(&EnvInputs {
        command_path: "/usr/bin:/bin",
        scratch_dir: &scratch,
        ids: &ids,
        inherit: &inherit,
        call_env: &[],
    });
    let req = CommandRequest {
        program: CommandLine::Argv(vec!["cat".into(), "/proc/self/environ".into()]),
        cwd: root_path.clone(),
        env,
        stdin: None,
        timeout: Duration::from_secs(30),
        max_output_bytes: 64 * 1024,
        sandbox: SandboxPlan {
            read_paths: sandbox::default_read_paths(),
            read_write_paths: vec![root_path],
            ..SandboxPlan::default()
        },
        scratch_dir: scratch,
    };
    let out = command::run(req, CancellationToken::new())
        .await
        .expect("runs");
    assert_eq!(out.exit_code, Some(0), "stderr: {}", out.stderr);
    let vars: Vec<&str> = out.stdout.split('\0').filter(|s| !s.is_empty()).collect();
    assert!(vars.contains(&"CW_INHERITED=inherited-ok"), "{vars:?}");
    assert!(!out.stdout.contains(SECRET), "secret leaked: {vars:?}");
    assert!(
        !out.stdout.contains("CW_SECRET_TOKEN"),
        "secret name leaked: {vars:?}"
    );
    // Nothing beyond the built env: codeward's own PATH/HOME/CARGO_* etc. are absent.
    assert!(vars.iter().all(|kv| !kv.starts_with("CARGO")), "{vars:?}");
}
