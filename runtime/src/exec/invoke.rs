//! SPEC §4 step 12, per tool kind: built-ins of `codeward-tools` (fs, search, http), `command.run`
//! under the OS sandbox of §6, the asset tools (`asset.*`, §7.3), executable and prompt command
//! assets (the rendered command is checked again as a `command.run` call before it runs), and
//! provider tools. Workflows live in `workflow.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use codeward_assets::{AssetDefinition, AssetKind, CommandExec, Quoting};
use codeward_policies::{Access, ExceptionAccess, OutsideRootTarget, PolicySet, RealFs};
use codeward_tools::command::{self, CommandError, CommandLine, CommandRequest, EnvInputs};
use codeward_tools::sandbox::{NetRule, Rlimits, SandboxLevel, SandboxPlan};
use codeward_tools::{CallIds, CommandRunArgs, ToolContext, ToolError, ToolLimits};
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, CatalogEntry, ToolExec};
use crate::config::ProviderCall;
use crate::error::Error;
use crate::exec::decide::{self, DecideInput};
use crate::exec::record::CallIdentity;
use crate::project::ProjectRuntime;
use crate::types::{CallSource, ConversationId};

/// One execution, after every policy check passed.
#[derive(Clone)]
pub(crate) struct Invocation {
    pub project: Arc<ProjectRuntime>,
    pub entry: Arc<CatalogEntry>,
    pub catalog: Arc<Catalog>,
    pub args: Arc<Value>,
    /// The call's ids and source.
    pub call: Arc<CallIdentity>,
    pub cancel: CancellationToken,
    pub deadline: Instant,
    pub timeout_ms: u64,
    /// `<data_dir>/tmp/<tool_call_id>` for command tools, empty otherwise.
    pub scratch_dir: PathBuf,
}

impl Invocation {
    /// The ids in the form `codeward-tools` takes (built-ins, command env).
    pub fn tool_ids(&self) -> CallIds {
        CallIds {
            project_id: self.call.project_id.to_string(),
            conversation_id: self.call.conversation_id.as_ref().map(ToString::to_string),
            correlation_id: self.call.correlation_id.clone(),
            tool_call_id: self.call.tool_call_id.clone(),
        }
    }

    pub fn conversation_id(&self) -> Option<&ConversationId> {
        self.call.conversation_id.as_ref()
    }

    pub fn source(&self) -> CallSource {
        self.call.source
    }
}

/// A finished execution: the result and the processes killed after the command exited.
pub(crate) struct Invoked {
    pub result: Value,
    pub terminated: u32,
}

/// A failed execution and the processes killed on the way (timeout / cancel).
pub(crate) struct Failed {
    pub error: Error,
    pub terminated: u32,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Self {
            error,
            terminated: 0,
        }
    }
}

/// Runs the tool; the generic deadline guard lives in the caller.
///
/// The built-in, command, asset-command and workflow arms are boxed: their futures are several
/// KiB, and unboxed they would size every future that awaits this one (the whole call path,
/// moved a few times per call) for the largest tool kind.
pub(crate) async fn invoke(inv: Invocation) -> Result<Invoked, Failed> {
    match &inv.entry.exec {
        ToolExec::Builtin => Box::pin(builtin(&inv)).await,
        ToolExec::CommandRun => {
            let args: CommandRunArgs = parse_args(&inv.args)?;
            Box::pin(command_run(&inv, args, None)).await
        }
        ToolExec::AssetList => asset_list(&inv),
        ToolExec::AssetSearch => asset_search(&inv),
        ToolExec::AssetGet => asset_get(&inv),
        ToolExec::AssetCommand { asset } => Box::pin(asset_command(&inv, asset)).await,
        ToolExec::Workflow { asset } => Box::pin(crate::exec::workflow::run(&inv, asset)).await,
        ToolExec::Provider(provider) => {
            let call = ProviderCall {
                project: inv.project.context.clone(),
                tool: inv.entry.spec.name.clone(),
                conversation_id: inv.conversation_id().map(ToString::to_string),
                correlation_id: inv.call.correlation_id.clone(),
                tool_call_id: inv.call.tool_call_id.clone(),
                cancel: inv.cancel.clone(),
                deadline: inv.deadline,
            };
            let fut = provider.call(call, (*inv.args).clone());
            match fut.await {
                Ok(result) => Ok(Invoked {
                    result,
                    terminated: 0,
                }),
                Err(e) => Err(Error::tool_failed(e.reason, e.message).into()),
            }
        }
    }
}

fn parse_args<T: serde::de::DeserializeOwned>(args: &Value) -> Result<T, Failed> {
    serde_json::from_value(args.clone())
        .map_err(|e| Error::tool_failed("invalid_argument", e.to_string()).into())
}

/// Maps a built-in tool's error onto the facade error.
pub(crate) fn tool_error(e: ToolError, timeout_ms: u64) -> Error {
    match e {
        ToolError::Failed {
            reason,
            message,
            details,
        } => Error::ToolFailed {
            reason: reason.as_str().to_owned(),
            message,
            details,
        },
        ToolError::Policy(error) => Error::Policy { error },
        ToolError::Escaped { path } => Error::Policy {
            error: codeward_policies::PolicyError::OutsideRoot {
                path,
                location: "open".into(),
            },
        },
        ToolError::InvalidPath { reason, .. } => Error::Policy {
            error: codeward_policies::PolicyError::InvalidPath {
                reason: match reason {
                    "nul_byte" => codeward_policies::InvalidPathReason::NulByte,
                    "too_long" => codeward_policies::InvalidPathReason::TooLong,
                    "symlink_loop" => codeward_policies::InvalidPathReason::SymlinkLoop,
                    _ => codeward_policies::InvalidPathReason::Unresolvable,
                },
            },
        },
        ToolError::InvalidArgs { message } => Error::tool_failed("invalid_argument", message),
        ToolError::UnknownTool { name } => Error::UnknownTool { name },
        ToolError::Timeout { .. } => Error::Timeout { timeout_ms },
        ToolError::Cancelled { reason } => Error::Cancelled { reason },
        ToolError::OsSandboxUnavailable { missing } => Error::OsSandboxUnavailable { missing },
        other => Error::tool_failed("tool_error", other.to_string()),
    }
}

async fn builtin(inv: &Invocation) -> Result<Invoked, Failed> {
    let opts = &inv.project.options;
    let ctx = ToolContext {
        policy: inv.project.policy.current(),
        root: inv.project.root_dir.clone(),
        limits: ToolLimits {
            max_output_bytes: opts.tool_max_output_bytes,
            deny_multiply_linked_files: opts.deny_multiply_linked_files,
        },
        ids: inv.tool_ids(),
        cancel: inv.cancel.clone(),
        deadline: Some(inv.deadline),
    };
    let name = &inv.entry.spec.name;
    // fs.read / fs.stat: a bounded handful of syscalls, cheaper inline than a blocking-pool hop.
    if let Some(r) = codeward_tools::call_builtin_inline(name, &ctx, (*inv.args).clone()) {
        return r
            .map(|result| Invoked {
                result,
                terminated: 0,
            })
            .map_err(|e| tool_error(e, inv.timeout_ms).into());
    }
    codeward_tools::call_builtin(name, &ctx, (*inv.args).clone())
        .await
        .map(|result| Invoked {
            result,
            terminated: 0,
        })
        .map_err(|e| tool_error(e, inv.timeout_ms).into())
}

/// The Landlock plan for commands of this project (SPEC §6.2).
pub(crate) fn sandbox_plan(policy: &PolicySet, inv: &Invocation, timeout: Duration) -> SandboxPlan {
    let opts = &inv.project.options;
    let mut read_paths: Vec<PathBuf> = policy.command_read_paths().to_vec();
    let mut read_write_paths = vec![policy.canonical_root().to_path_buf()];
    for e in policy.outside_root_entries() {
        if let OutsideRootTarget::Path(p) = &e.target {
            match e.access {
                ExceptionAccess::Read => read_paths.push(p.clone()),
                ExceptionAccess::ReadWrite => read_write_paths.push(p.clone()),
            }
        }
    }
    read_paths.retain(|p| p.exists());
    read_write_paths.retain(|p| p.exists());
    SandboxPlan {
        read_paths,
        read_write_paths,
        net: if policy.egress_allowed() {
            NetRule::AllowPorts(policy.allowed_ports())
        } else {
            NetRule::DenyAll
        },
        rlimits: Rlimits {
            cpu_secs: Some(Rlimits::cpu_secs_for(timeout)),
            file_bytes: Some(opts.command_max_file_bytes),
            open_files: Some(opts.command_max_open_files),
            memory_bytes: opts.command_max_memory_bytes,
        },
        require_full: policy.require_os_sandbox(),
    }
}

fn level_str(level: SandboxLevel) -> &'static str {
    match level {
        SandboxLevel::Full => "full",
        SandboxLevel::Partial => "partial",
        SandboxLevel::None => "none",
    }
}

/// Runs `command.run` (or a rendered command asset, `extra` merged into its result).
async fn command_run(
    inv: &Invocation,
    args: CommandRunArgs,
    extra: Option<Map<String, Value>>,
) -> Result<Invoked, Failed> {
    let project = &inv.project;
    let opts = &project.options;
    let policy = project.policy.current();
    let program = match (args.argv, args.command) {
        (Some(argv), None) if !argv.is_empty() => CommandLine::Argv(argv),
        (None, Some(script)) => CommandLine::Shell {
            shell: PathBuf::from(&opts.command_shell),
            script,
        },
        _ => {
            return Err(Error::tool_failed(
                "invalid_argument",
                "give exactly one of `argv` (non-empty) or `command`",
            )
            .into());
        }
    };
    let scratch = inv.scratch_dir.clone();
    let cwd_raw = args.cwd.unwrap_or_else(|| ".".to_owned());
    let cwd = {
        let (policy, scratch) = (policy.clone(), scratch.clone());
        tokio::task::spawn_blocking(move || {
            policy.check_path(&cwd_raw, Access::Read, None, Some(&scratch), &RealFs)
        })
        .await
        .map_err(|e| Error::tool_failed("panic", e.to_string()))?
        .map_err(|error| Error::Policy { error })?
        .resolved
    };
    let call_env: Vec<(String, String)> = args.env.unwrap_or_default().into_iter().collect();
    project.secrets.add(call_env.iter().map(|(_, v)| v.clone()));
    let ids = inv.tool_ids();
    let env = command::build_env(&EnvInputs {
        command_path: &opts.command_path,
        scratch_dir: &scratch,
        ids: &ids,
        inherit: policy.env_inherit(),
        call_env: &call_env,
    });
    let remaining = inv.deadline.saturating_duration_since(Instant::now());
    let timeout = match args.timeout_ms {
        Some(ms) => remaining.min(Duration::from_millis(ms)),
        None => remaining,
    };
    let req = CommandRequest {
        program,
        cwd,
        env,
        stdin: args.stdin.map(String::into_bytes),
        timeout,
        max_output_bytes: opts.tool_max_output_bytes.saturating_sub(4096).max(1024),
        sandbox: sandbox_plan(&policy, inv, timeout),
        scratch_dir: scratch,
    };
    match command::run(req, inv.cancel.clone()).await {
        Ok(out) => {
            let mut result = json!({
                "exit_code": out.exit_code,
                "signal": out.signal,
                "stdout": out.stdout,
                "stderr": out.stderr,
                "stdout_truncated": out.stdout_truncated,
                "stderr_truncated": out.stderr_truncated,
                "omitted_bytes": out.omitted_bytes,
                "duration_ms": out.duration_ms,
                "terminated_process_count": out.terminated_process_count,
                "os_sandbox": level_str(out.os_sandbox),
            });
            if let (Some(extra), Some(obj)) = (extra, result.as_object_mut()) {
                for (k, v) in extra {
                    obj.insert(k, v);
                }
            }
            Ok(Invoked {
                result,
                terminated: out.terminated_process_count,
            })
        }
        Err(e) => {
            let terminated = e.terminated_process_count();
            let error = match e {
                CommandError::Timeout { timeout_ms, .. } => Error::Timeout { timeout_ms },
                CommandError::Cancelled { .. } => Error::Cancelled {
                    reason: "cancel_requested".into(),
                },
                CommandError::SandboxUnavailable { missing } => Error::OsSandboxUnavailable {
                    missing: missing.join(","),
                },
                CommandError::SpawnFailed { message } => {
                    Error::tool_failed("spawn_failed", message)
                }
                other => Error::tool_failed("io", other.to_string()),
            };
            Err(Failed { error, terminated })
        }
    }
}

fn kind_arg(args: &Value) -> Result<AssetKind, Failed> {
    let raw = args.get("type").and_then(Value::as_str).unwrap_or_default();
    raw.parse::<AssetKind>().map_err(|e| Error::from(e).into())
}

fn asset_list(inv: &Invocation) -> Result<Invoked, Failed> {
    let kind = kind_arg(&inv.args)?;
    let items = inv.catalog.snapshot.list(kind);
    Ok(Invoked {
        result: json!({ "items": items }),
        terminated: 0,
    })
}

fn asset_search(inv: &Invocation) -> Result<Invoked, Failed> {
    let kind = kind_arg(&inv.args)?;
    let query = inv
        .args
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let limit = inv
        .args
        .get("limit")
        .and_then(Value::as_u64)
        .map_or(50, |l| usize::try_from(l).unwrap_or(50));
    let items = inv
        .catalog
        .snapshot
        .search(kind, query, limit)
        .map_err(Error::from)?;
    Ok(Invoked {
        result: json!({ "items": items }),
        terminated: 0,
    })
}

fn asset_get(inv: &Invocation) -> Result<Invoked, Failed> {
    let kind = kind_arg(&inv.args)?;
    let key = inv
        .args
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match inv.catalog.snapshot.get(kind, key) {
        Ok(asset) => Ok(Invoked {
            result: json!({ "asset": asset }),
            terminated: 0,
        }),
        Err(e) => Err(Error::ToolFailed {
            reason: "asset_not_found".into(),
            message: e.to_string(),
            details: json!({ "kind": kind.to_string(), "key": key }),
        }
        .into()),
    }
}

/// Fills declared defaults into an argument map.
pub(crate) fn with_defaults(args: &Value, params: &[codeward_assets::Param]) -> Map<String, Value> {
    let mut map = args.as_object().cloned().unwrap_or_default();
    for p in params {
        if let Some(d) = &p.default
            && !map.contains_key(&p.name)
        {
            map.insert(p.name.clone(), d.clone());
        }
    }
    map
}

async fn asset_command(inv: &Invocation, name: &str) -> Result<Invoked, Failed> {
    let asset = inv
        .catalog
        .snapshot
        .get(AssetKind::Command, name)
        .map_err(Error::from)?;
    if !asset.registration.is_valid() {
        return Err(invalid_asset(asset).into());
    }
    let AssetDefinition::Command(def) = &asset.definition else {
        return Err(invalid_asset(asset).into());
    };
    let args = with_defaults(&inv.args, &def.params);
    let Some(exec) = &def.exec else {
        let prompt = def.prompt.render(&args, Quoting::Plain);
        return Ok(Invoked {
            result: json!({ "mode": "prompt", "asset": name, "args": args, "prompt": prompt }),
            terminated: 0,
        });
    };
    let mut cmd = Map::new();
    match exec {
        CommandExec::Run { argv } => {
            let argv: Vec<Value> = argv
                .iter()
                .map(|t| Value::String(t.render(&args, Quoting::Plain)))
                .collect();
            cmd.insert("argv".into(), Value::Array(argv));
        }
        CommandExec::Shell { script } => {
            cmd.insert(
                "command".into(),
                Value::String(script.render(&args, Quoting::Shell)),
            );
        }
    }
    if let Some(cwd) = &def.cwd {
        cmd.insert(
            "cwd".into(),
            Value::String(cwd.render(&args, Quoting::Plain)),
        );
    }
    if let Some(env) = args.get("env") {
        cmd.insert("env".into(), env.clone());
    }
    let timeout = match (
        def.timeout_ms,
        args.get("timeout_ms").and_then(Value::as_u64),
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Some(t) = timeout {
        cmd.insert("timeout_ms".into(), json!(t));
    }
    let cmd = Value::Object(cmd);
    // The rendered command is judged exactly like a `command.run` call (SPEC §7.3).
    let Some(runner) = inv.catalog.get("command.run").cloned() else {
        return Err(Error::UnknownTool {
            name: "command.run".into(),
        }
        .into());
    };
    let input = DecideInput {
        source: inv.source(),
        conversation_allow_tools: None,
        offered_tools: None,
        scratch_dir: Some(inv.scratch_dir.clone()),
        os_network_enforced: inv.project.os_network_enforced,
    };
    let decision = decide::evaluate_call(
        inv.project.policy.current(),
        &runner,
        &Arc::new(cmd.clone()),
        &input,
    )
    .await;
    if !decision.is_allowed() {
        let kind = runner.kind();
        let (_, verdict) = decide::record(
            &inv.project,
            decision,
            &inv.call,
            kind,
            crate::types::RunMode::Sync,
        );
        let error = verdict.err().map_or(
            Error::tool_failed("denied", "rendered command denied"),
            |error| Error::Policy { error },
        );
        return Err(error.into());
    }
    let cmd_args: CommandRunArgs = parse_args(&cmd)?;
    let mut extra = Map::new();
    extra.insert("mode".into(), json!("executed"));
    extra.insert("asset".into(), json!(name));
    extra.insert("args".into(), Value::Object(args));
    command_run(inv, cmd_args, Some(extra)).await
}

pub(crate) fn invalid_asset(asset: &codeward_assets::Asset) -> Error {
    Error::ToolFailed {
        reason: "invalid_asset".into(),
        message: format!("{} `{}` is invalid", asset.kind, asset.name),
        details: json!({ "errors": asset.registration.errors }),
    }
}
