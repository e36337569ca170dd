//! The one tool-execution path (SPEC §4). Every call — `Engine::run_tool`, conversations, workflow
//! steps, and later HTTP and MCP — goes through [`run_call`], in this order:
//!
//! 1. normalize name and arguments;
//! 2. correlation and tool-call ids;
//! 3. lookup in the catalog pinned for this call;
//! 4. to 9. schema, env, tool rules, network, sandbox paths and sensitive paths on the policy
//!    snapshot (`codeward-policies::evaluate`, on the blocking pool when paths may be resolved),
//!    with the decision record and its `policy.*` / `security.*` events;
//! 10. a slot of the project's executor (bounded FIFO wait);
//! 11. the conversation's quota;
//! 12. execution on the slot under `min(tool_timeout_ms, meta.timeout_ms)` and a cancellation
//!     token (a command's whole process tree is killed);
//! 13. output and artifact caps;
//! 14. the secret scan (annotate; redact only with `redact_tool_results`);
//! 15. the reply and its events.
//!
//! The first failing step ends the call and emits `conversation.tool.failed` (or
//! `conversation.tool.cancelled`) with `reason` = the error code. Nothing here waits on an actor
//! mailbox except the hop to the executor worker that holds the slot.

mod decide;
mod invoke;
pub(crate) mod normalize;
mod workflow;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use codeward_actors::executor::ExecError;
use codeward_actors::ids::{CorrelationId, ToolCallId};
use codeward_actors::telemetry::{EventName, TelemetryEvent};
use codeward_tools::CallIds;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) use decide::{CallIdsRef, DecideInput};
use invoke::{Failed, Invocation, Invoked};

use crate::catalog::{CatalogEntry, ToolExec};
use crate::error::Error;
use crate::project::ProjectRuntime;
use crate::types::{
    CallSource, ConversationId, PolicyDecision, RunMode, ToolCall, ToolFailure, ToolSuccess,
};

/// How long a tool gets to clean up (kill its tree, remove scratch) after its deadline or
/// cancellation before the call is answered anyway.
const CLEANUP_GRACE: Duration = Duration::from_secs(2);
/// Most finding paths carried by `security.sensitive_artifact_detected`.
const MAX_FINDING_PATHS: usize = 10;

/// Per-call options of the caller (not part of the public `ToolCall`).
#[derive(Default)]
pub(crate) struct ExecOpts {
    /// `run_mode = async` from an API caller: answer with a placeholder once the policy
    /// allowed the call and run the rest in the background. (Conversations handle async
    /// themselves and never detach.)
    pub detach_async: bool,
    /// The tools offered to the model in this step (model-originated calls).
    pub offered_tools: Option<Vec<String>>,
    /// Fired by the caller to cancel (conversation cancel / stop).
    pub cancel: Option<CancellationToken>,
    /// Called when the executor starts the call.
    pub on_started: Option<Box<dyn FnOnce() + Send>>,
    /// Fail at once instead of queueing for a slot (workflow steps).
    pub no_queue: bool,
}

impl ExecOpts {
    /// A Rust API / front-end call.
    pub fn api() -> Self {
        Self {
            detach_async: true,
            ..Self::default()
        }
    }

    /// A workflow step (cancelled with its workflow, never queued).
    pub fn workflow_step(cancel: CancellationToken) -> Self {
        Self {
            cancel: Some(cancel),
            no_queue: true,
            ..Self::default()
        }
    }
}

/// Who a failure or success belongs to.
struct CallCtx {
    project: Arc<ProjectRuntime>,
    tool: String,
    kind: &'static str,
    conversation_id: Option<ConversationId>,
    correlation_id: String,
    tool_call_id: String,
    decision_id: Option<String>,
    source: CallSource,
    run_mode: RunMode,
    started: Instant,
}

impl CallCtx {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn event(&self, name: EventName, payload: Value) -> TelemetryEvent {
        let mut ev = TelemetryEvent::new(name, payload).tool(self.tool.clone());
        ev.conversation_id = self.conversation_id.clone();
        ev.correlation_id = CorrelationId::parse(&self.correlation_id).ok();
        ev
    }

    fn ids_payload(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("project_id".into(), json!(self.project.id));
        m.insert("tool".into(), json!(self.tool));
        m.insert("conversation_id".into(), json!(self.conversation_id));
        m.insert("correlation_id".into(), json!(self.correlation_id));
        m.insert("tool_call_id".into(), json!(self.tool_call_id));
        m.insert("decision_id".into(), json!(self.decision_id));
        m
    }

    /// Ends the call with `error` without an event (a conversation cancel: the conversation
    /// emits `conversation.tool.cancelled` with the cancel's correlation, SPEC §11.6).
    fn fail_quiet(&self, error: Error) -> ToolFailure {
        ToolFailure {
            project_id: self.project.id.to_string(),
            tool: self.tool.clone(),
            conversation_id: self.conversation_id.clone(),
            correlation_id: self.correlation_id.clone(),
            tool_call_id: self.tool_call_id.clone(),
            decision_id: self.decision_id.clone(),
            duration_ms: self.elapsed_ms(),
            error,
        }
    }

    /// Ends the call with `error`, emitting `conversation.tool.failed` (or `.cancelled`).
    fn fail(&self, error: Error) -> ToolFailure {
        let duration_ms = self.elapsed_ms();
        let mut p = self.ids_payload();
        p.insert("duration_ms".into(), json!(duration_ms));
        p.insert("reason".into(), json!(error.code()));
        p.insert("error".into(), json!(error.to_string()));
        p.insert("details".into(), error.details());
        p.insert("source".into(), json!(self.source.as_str()));
        let name = if matches!(error, Error::Cancelled { .. }) {
            EventName::ToolCancelled
        } else {
            EventName::ToolFailed
        };
        self.project.emit(self.event(name, Value::Object(p)));
        ToolFailure {
            project_id: self.project.id.to_string(),
            tool: self.tool.clone(),
            conversation_id: self.conversation_id.clone(),
            correlation_id: self.correlation_id.clone(),
            tool_call_id: self.tool_call_id.clone(),
            decision_id: self.decision_id.clone(),
            duration_ms,
            error,
        }
    }
}

/// Runs one call through the whole path.
pub(crate) fn run_call(
    project: Arc<ProjectRuntime>,
    call: ToolCall,
    opts: ExecOpts,
) -> BoxFuture<'static, Result<ToolSuccess, ToolFailure>> {
    Box::pin(run_inner(project, call, opts))
}

/// The prepared call after steps 1–3 (and the policy input for 4–9).
struct Prepared {
    ctx: CallCtx,
    entry: Arc<CatalogEntry>,
    catalog: Arc<crate::catalog::Catalog>,
    args: Arc<Value>,
    input: DecideInput,
    conversation: Option<Arc<crate::conversations::ConversationEntry>>,
    timeout_ms: u64,
    scratch_dir: PathBuf,
}

/// Steps 1–3. Errors are returned with the context needed to report them.
fn prepare(
    project: Arc<ProjectRuntime>,
    call: ToolCall,
    offered_tools: Option<Vec<String>>,
) -> Result<Prepared, (CallCtx, Error)> {
    let ToolCall { name, args, meta } = call;
    let correlation = normalize::call_id(meta.correlation_id.as_deref(), || {
        CorrelationId::generate().to_string()
    });
    let tool_call = normalize::tool_call_id(meta.tool_call_id.as_deref(), || {
        ToolCallId::generate().to_string()
    });
    let mut ctx = CallCtx {
        project: project.clone(),
        tool: name.clone(),
        kind: "unknown",
        conversation_id: meta.conversation_id.clone(),
        correlation_id: correlation
            .clone()
            .unwrap_or_else(|_| CorrelationId::generate().to_string()),
        tool_call_id: tool_call
            .clone()
            .unwrap_or_else(|_| ToolCallId::generate().to_string()),
        decision_id: None,
        source: meta.source,
        run_mode: meta.run_mode.unwrap_or_default(),
        started: Instant::now(),
    };
    let opts = &project.options;
    let args = match normalize::normalize(&name, args, opts.tool_max_args_bytes) {
        Ok(a) => a,
        Err(e) => return Err((ctx, e)),
    };
    if let Err(e) = correlation.and(tool_call) {
        return Err((ctx, e));
    }
    let conversation = match &meta.conversation_id {
        None => None,
        Some(id) => match project.conversations.get(id) {
            Some(c) => Some(c.clone()),
            None => {
                let e = Error::ConversationNotFound {
                    conversation_id: id.to_string(),
                };
                return Err((ctx, e));
            }
        },
    };
    let catalog = project.catalog();
    let Some(entry) = catalog.get(&name).cloned() else {
        return Err((ctx, Error::UnknownTool { name }));
    };
    ctx.kind = entry.kind();
    ctx.run_mode = meta.run_mode.unwrap_or(match entry.spec.default_run_mode {
        codeward_tools::RunMode::Sync => RunMode::Sync,
        codeward_tools::RunMode::Async => RunMode::Async,
    });
    if entry.policy.is_none() {
        let e = invalid_tool(&catalog, &entry);
        return Err((ctx, e));
    }
    let timeout_ms = meta
        .timeout_ms
        .map_or(opts.tool_timeout_ms, |t| t.clamp(1, opts.tool_timeout_ms));
    let scratch_dir = project.data_dir.join("tmp").join(&ctx.tool_call_id);
    let is_command = matches!(
        entry.exec,
        ToolExec::CommandRun | ToolExec::AssetCommand { .. }
    );
    let input = DecideInput {
        source: meta.source,
        conversation_allow_tools: conversation.as_ref().and_then(|c| c.allow_tools.clone()),
        offered_tools,
        scratch_dir: is_command.then(|| scratch_dir.clone()),
        // Only command tools run under Landlock's network rules; any other network-capable
        // tool (http.fetch, providers) is refused by egress `deny` (SPEC §5.6).
        os_network_enforced: is_command && project.os_network_enforced,
    };
    Ok(Prepared {
        ctx,
        entry,
        catalog,
        args: Arc::new(args),
        input,
        conversation,
        timeout_ms,
        scratch_dir,
    })
}

fn invalid_tool(catalog: &crate::catalog::Catalog, entry: &CatalogEntry) -> Error {
    let (kind, name) = match &entry.exec {
        ToolExec::AssetCommand { asset } => (codeward_assets::AssetKind::Command, asset),
        ToolExec::Workflow { asset } => (codeward_assets::AssetKind::Workflow, asset),
        _ => {
            return Error::tool_failed("invalid_tool", "the tool's input schema does not compile");
        }
    };
    match catalog.snapshot.get(kind, name) {
        Ok(asset) => invoke::invalid_asset(asset),
        Err(e) => e.into(),
    }
}

async fn run_inner(
    project: Arc<ProjectRuntime>,
    call: ToolCall,
    opts: ExecOpts,
) -> Result<ToolSuccess, ToolFailure> {
    let ExecOpts {
        detach_async,
        offered_tools,
        cancel,
        on_started,
        no_queue,
    } = opts;
    let mut p = match prepare(project, call, offered_tools) {
        Ok(p) => p,
        Err((ctx, e)) => return Err(ctx.fail(e)),
    };
    // Steps 4–9.
    let policy = p.ctx.project.policy.current();
    let decision = decide::evaluate_call(policy, &p.entry, &p.args, &p.input).await;
    let ids = CallIdsRef {
        conversation_id: p.ctx.conversation_id.as_ref(),
        correlation_id: &p.ctx.correlation_id,
        tool_call_id: &p.ctx.tool_call_id,
        source: p.ctx.source,
    };
    let record = decide::record(&p.ctx.project, &decision, &ids);
    p.ctx.decision_id = Some(record.decision_id);
    if let Err(error) = decision.into_result() {
        return Err(p.ctx.fail(Error::Policy { error }));
    }
    if detach_async && p.ctx.run_mode == RunMode::Async {
        let placeholder = ToolSuccess {
            project_id: p.ctx.project.id.clone(),
            tool: p.ctx.tool.clone(),
            kind: p.ctx.kind.to_owned(),
            conversation_id: p.ctx.conversation_id.clone(),
            correlation_id: p.ctx.correlation_id.clone(),
            tool_call_id: p.ctx.tool_call_id.clone(),
            decision_id: p.ctx.decision_id.clone().unwrap_or_default(),
            duration_ms: p.ctx.elapsed_ms(),
            result: json!({ "status": "started", "tool_call_id": p.ctx.tool_call_id }),
            risk_flags: Vec::new(),
            sensitivity_findings_count: 0,
            sensitivity_finding_kinds: Vec::new(),
        };
        tokio::spawn(execute(p, cancel, on_started, no_queue));
        return Ok(placeholder);
    }
    execute(p, cancel, on_started, no_queue).await
}

/// Steps 10–15.
async fn execute(
    p: Prepared,
    external_cancel: Option<CancellationToken>,
    on_started: Option<Box<dyn FnOnce() + Send>>,
    no_queue: bool,
) -> Result<ToolSuccess, ToolFailure> {
    let Prepared {
        ctx,
        entry,
        catalog,
        args,
        conversation,
        timeout_ms,
        scratch_dir,
        ..
    } = p;
    let project = ctx.project.clone();
    // Step 10: a slot (the bounded FIFO queue is inside the pool).
    let slot = if no_queue {
        project.executor.try_acquire()
    } else {
        project.executor.acquire().await
    };
    let slot = match slot {
        Ok(s) => s,
        Err(ExecError::Busy { limit, queued_ms }) => {
            return Err(ctx.fail(Error::MaxConcurrencyReached { limit, queued_ms }));
        }
        Err(_) => return Err(ctx.fail(Error::Interrupted)),
    };
    // Step 11: the conversation quota.
    let quota = match &conversation {
        None => None,
        Some(c) => match c.quota.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                drop(slot);
                return Err(ctx.fail(Error::ConversationMaxConcurrencyReached {
                    limit: c.quota_limit,
                }));
            }
        },
    };
    // Step 12.
    let conversation_cancelled = external_cancel.clone();
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let token = project.stop.child_token();
    project.emit(ctx.event(
        EventName::ToolStarted,
        json!({
            "kind": ctx.kind, "args": *args, "run_mode": ctx.run_mode,
            "source": ctx.source.as_str(), "tool_call_id": ctx.tool_call_id,
        }),
    ));
    if let Some(f) = on_started {
        f();
    }
    let inv = Invocation {
        project: project.clone(),
        entry: entry.clone(),
        catalog,
        args,
        ids: CallIds {
            project_id: project.id.to_string(),
            conversation_id: ctx.conversation_id.as_ref().map(ToString::to_string),
            correlation_id: ctx.correlation_id.clone(),
            tool_call_id: ctx.tool_call_id.clone(),
        },
        conversation_id: ctx.conversation_id.clone(),
        cancel: token.clone(),
        deadline,
        timeout_ms,
        source: ctx.source,
        scratch_dir,
    };
    let outcome = slot
        .run(move || async move {
            let _quota = quota;
            guarded(
                invoke::invoke(inv),
                token,
                external_cancel,
                deadline,
                timeout_ms,
            )
            .await
        })
        .await;
    let outcome = match outcome {
        Ok(r) => r,
        Err(ExecError::Panicked { message }) => Err(Error::tool_failed("panic", message).into()),
        Err(_) => Err(Error::Interrupted.into()),
    };
    match outcome {
        Ok(invoked) => finish(&ctx, invoked),
        Err(failed) => {
            let reason = match failed.error {
                Error::Timeout { .. } => "timeout",
                Error::Cancelled { .. } if project.stop.is_cancelled() => "project_stopped",
                Error::Cancelled { .. } => "cancelled",
                _ => "completed",
            };
            if let Error::Timeout { timeout_ms } = failed.error {
                project.emit(ctx.event(
                    EventName::ToolTimeout,
                    json!({ "timeout_ms": timeout_ms, "tool_call_id": ctx.tool_call_id }),
                ));
            }
            terminated_event(&ctx, failed.terminated, reason);
            if matches!(failed.error, Error::Cancelled { .. })
                && conversation_cancelled
                    .as_ref()
                    .is_some_and(CancellationToken::is_cancelled)
                && !project.stop.is_cancelled()
            {
                return Err(ctx.fail_quiet(failed.error));
            }
            Err(ctx.fail(failed.error))
        }
    }
}

fn terminated_event(ctx: &CallCtx, count: u32, reason: &str) {
    if count > 0 {
        ctx.project.emit(ctx.event(
            EventName::ToolChildProcessesTerminated,
            json!({ "reason": reason, "terminated_process_count": count,
                    "tool_call_id": ctx.tool_call_id }),
        ));
    }
}

/// Runs the tool honouring the deadline and cancellation: when either fires, the token is
/// cancelled and the tool gets [`CLEANUP_GRACE`] to clean up; a timed-out call reports
/// `timeout` even if the tool saw the cancellation first.
async fn guarded(
    fut: impl std::future::Future<Output = Result<Invoked, Failed>>,
    token: CancellationToken,
    external: Option<CancellationToken>,
    deadline: Instant,
    timeout_ms: u64,
) -> Result<Invoked, Failed> {
    tokio::pin!(fut);
    let external = async {
        match &external {
            Some(t) => t.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let timed_out = tokio::select! {
        r = &mut fut => return r,
        () = token.cancelled() => false,
        () = external => false,
        () = tokio::time::sleep_until(deadline) => true,
    };
    token.cancel();
    let r = match tokio::time::timeout(CLEANUP_GRACE, &mut fut).await {
        Ok(r) => r,
        Err(_) => Err(Failed {
            error: Error::Cancelled {
                reason: "cancelled".into(),
            },
            terminated: 0,
        }),
    };
    if timed_out {
        return match r {
            Err(Failed { terminated, .. }) => Err(Failed {
                error: Error::Timeout { timeout_ms },
                terminated,
            }),
            ok => ok,
        };
    }
    match r {
        Err(Failed { terminated, error }) if !matches!(error, Error::Cancelled { .. }) => {
            // The tool failed in its own way while being cancelled: report the cancellation.
            let _ = error;
            Err(Failed {
                error: Error::Cancelled {
                    reason: "cancelled".into(),
                },
                terminated,
            })
        }
        other => other,
    }
}

/// Steps 13–15.
fn finish(ctx: &CallCtx, invoked: Invoked) -> Result<ToolSuccess, ToolFailure> {
    let project = &ctx.project;
    let opts = &project.options;
    terminated_event(ctx, invoked.terminated, "completed");
    let mut result = invoked.result;
    // Step 13.
    let max = opts.tool_max_output_bytes;
    let output_bytes = normalize::json_size(&result, usize::MAX).unwrap_or(usize::MAX);
    if output_bytes > max {
        return Err(ctx.fail(Error::OutputTooLarge {
            size: output_bytes,
            max,
        }));
    }
    if let Some(e) = check_artifacts(&result, opts.tool_max_artifact_bytes) {
        return Err(ctx.fail(e));
    }
    // Step 14.
    let redactor = project.redactor();
    let findings = redactor.scan(&result);
    let mut kinds: Vec<String> = findings
        .iter()
        .filter_map(|f| {
            serde_json::to_value(f.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    let risk_flags = if findings.is_empty() {
        Vec::new()
    } else {
        let paths: Vec<&str> = findings
            .iter()
            .take(MAX_FINDING_PATHS)
            .map(|f| f.path.as_str())
            .collect();
        project.emit(ctx.event(
            EventName::SensitiveArtifactDetected,
            json!({ "finding_count": findings.len(), "finding_kinds": kinds,
                    "finding_paths": paths, "tool_call_id": ctx.tool_call_id }),
        ));
        vec!["sensitive_artifact_detected".to_owned()]
    };
    if project.policy.current().redact_tool_results() {
        result = redactor.redact(&result);
    }
    // Step 15.
    let success = ToolSuccess {
        project_id: project.id.clone(),
        tool: ctx.tool.clone(),
        kind: ctx.kind.to_owned(),
        conversation_id: ctx.conversation_id.clone(),
        correlation_id: ctx.correlation_id.clone(),
        tool_call_id: ctx.tool_call_id.clone(),
        decision_id: ctx.decision_id.clone().unwrap_or_default(),
        duration_ms: ctx.elapsed_ms(),
        result,
        risk_flags,
        sensitivity_findings_count: u32::try_from(findings.len()).unwrap_or(u32::MAX),
        sensitivity_finding_kinds: kinds,
    };
    let mut p = ctx.ids_payload();
    p.insert("kind".into(), json!(success.kind));
    p.insert("duration_ms".into(), json!(success.duration_ms));
    p.insert("risk_flags".into(), json!(success.risk_flags));
    p.insert(
        "sensitivity_findings_count".into(),
        json!(success.sensitivity_findings_count),
    );
    p.insert(
        "sensitivity_finding_kinds".into(),
        json!(success.sensitivity_finding_kinds),
    );
    p.insert("output_bytes".into(), json!(output_bytes));
    p.insert("source".into(), json!(ctx.source.as_str()));
    project.emit(ctx.event(EventName::ToolCompleted, Value::Object(p)));
    Ok(success)
}

/// Every element of every array under an `artifacts` key, at any depth, in encounter order.
fn check_artifacts(v: &Value, max: usize) -> Option<Error> {
    fn walk(v: &Value, max: usize, index: &mut usize) -> Option<Error> {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "artifacts"
                        && let Value::Array(items) = x
                    {
                        for item in items {
                            let size = normalize::json_size(item, usize::MAX).unwrap_or(usize::MAX);
                            if size > max {
                                return Some(Error::ArtifactTooLarge {
                                    index: *index,
                                    size,
                                    max,
                                });
                            }
                            *index += 1;
                        }
                    }
                    if let Some(e) = walk(x, max, index) {
                        return Some(e);
                    }
                }
                None
            }
            Value::Array(a) => a.iter().find_map(|x| walk(x, max, index)),
            _ => None,
        }
    }
    walk(v, max, &mut 0)
}

/// `explain_tool_call`: steps 1–9 only, no events, no execution.
pub(crate) async fn explain(
    project: Arc<ProjectRuntime>,
    call: ToolCall,
) -> Result<PolicyDecision, Error> {
    let p = prepare(project, call, None).map_err(|(_, e)| e)?;
    let policy = p.ctx.project.policy.current();
    let d = decide::evaluate_call(policy, &p.entry, &p.args, &p.input).await;
    let ids = CallIdsRef {
        conversation_id: p.ctx.conversation_id.as_ref(),
        correlation_id: &p.ctx.correlation_id,
        tool_call_id: &p.ctx.tool_call_id,
        source: p.ctx.source,
    };
    Ok(decide::describe(&p.ctx.project, &d, &ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_are_checked_in_encounter_order() {
        let v = json!({"a": {"artifacts": ["x", "y".repeat(50)]}, "b": [{"artifacts": ["z"]}]});
        match check_artifacts(&v, 10) {
            Some(Error::ArtifactTooLarge { index, .. }) => assert_eq!(index, 1),
            other => panic!("{other:?}"),
        }
        assert!(check_artifacts(&v, 1000).is_none());
    }
}
