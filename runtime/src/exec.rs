//! The one tool-execution path (SPEC §4). Every call — `Engine::run_tool`, conversations, workflow
//! steps, and later HTTP and MCP — goes through [`run_call`], in this order:
//!
//! - steps 1–3: normalize name and arguments, correlation and tool-call ids, lookup in the
//!   catalog pinned for this call;
//! - steps 4–9: schema, env, tool rules, network, sandbox paths and sensitive paths on the
//!   policy snapshot (`codeward-policies::evaluate`, on the blocking pool when paths may be
//!   resolved), then the decision record and its `policy.*` / `security.*` events;
//! - step 10: a slot of the project's executor (bounded FIFO wait); step 11: the conversation's
//!   quota;
//! - step 12: execution while holding the slot, in the calling task under the slot worker's
//!   liveness (see `codeward_actors::executor`), `min(tool_timeout_ms, meta.timeout_ms)` and a
//!   cancellation token (a command's whole process tree is killed);
//! - steps 13–15: output and artifact caps, the secret scan (annotate; redact only with
//!   `redact_tool_results`), the reply and its events.
//!
//! The first failing step ends the call and emits `conversation.tool.failed` (or
//! `conversation.tool.cancelled`) with `reason` = the error code. Nothing here waits on an actor
//! mailbox. The hot events (`policy.allowed`, `conversation.tool.started`, `.completed`) carry
//! lazy payloads backed by one typed record per call (`record.rs`), rendered only when read; a
//! `codeward.tool_call` span with `policy.evaluate` and `tool.execute` children covers each call
//! (SPEC §8.6), costing ~1 % of a no-op call when no subscriber is installed.

mod decide;
mod invoke;
pub(crate) mod normalize;
mod record;
#[cfg(test)]
mod tests;
mod workflow;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use codeward_actors::executor::ExecError;
use codeward_actors::ids::{CorrelationId, ToolCallId};
use codeward_actors::telemetry::{EventName, TelemetryEvent};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub(crate) use decide::DecideInput;
use invoke::{Failed, Invocation, Invoked};
use record::{CallIdentity, CallRecord, Completion, Envelope, StartedPayload};

use crate::catalog::{CatalogEntry, ToolExec};
use crate::error::Error;
use crate::project::ProjectRuntime;
use crate::types::{PolicyDecision, RunMode, ToolCall, ToolFailure, ToolSuccess};

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
    ids: Arc<CallIdentity>,
    kind: &'static str,
    run_mode: RunMode,
    /// The decision record, once steps 4–9 ran.
    record: Option<Arc<CallRecord>>,
    started: Instant,
    /// `codeward.tool_call` (SPEC §8.6); disabled when no subscriber wants it.
    span: tracing::Span,
}

impl CallCtx {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn decision_id(&self) -> Option<&str> {
        self.record.as_ref().map(|r| r.decision_id.as_str())
    }

    fn event(&self, name: EventName, payload: Value) -> TelemetryEvent {
        self.ids.json_event(name, &self.ids.tool, payload)
    }

    fn ids_payload(&self) -> serde_json::Map<String, Value> {
        let ids = &self.ids;
        let mut m = serde_json::Map::new();
        m.insert("project_id".into(), json!(ids.project_id));
        m.insert("tool".into(), json!(ids.tool));
        m.insert("conversation_id".into(), json!(ids.conversation_id));
        m.insert("correlation_id".into(), json!(ids.correlation_id));
        m.insert("tool_call_id".into(), json!(ids.tool_call_id));
        m.insert("decision_id".into(), json!(self.decision_id()));
        m
    }

    /// Records the call's ids on its span, redacted unless generated here (only when a
    /// subscriber enabled the span: nothing is computed otherwise).
    fn record_span_ids(&self) {
        if self.span.is_disabled() {
            return;
        }
        let redactor = self.project.redactor();
        let ids = &self.ids;
        let supplied = |field: &str, value: &str| {
            self.span.record(field, redactor.redact_str(value).as_ref());
        };
        supplied("project_id", ids.project_id.as_str());
        supplied("tool", &ids.tool);
        if let Some(c) = &ids.conversation_id {
            supplied("conversation_id", c.as_str());
        }
        if ids.correlation_generated {
            self.span
                .record("correlation_id", ids.correlation_id.as_str());
        } else {
            supplied("correlation_id", &ids.correlation_id);
        }
        if ids.tool_call_generated {
            self.span.record("tool_call_id", ids.tool_call_id.as_str());
        } else {
            supplied("tool_call_id", &ids.tool_call_id);
        }
    }

    /// Records how the call ended on its span: `ok` or the error code, and the duration.
    fn record_span_outcome(&self, outcome: &str, duration_ms: u64) {
        self.span.record("outcome", outcome);
        self.span.record("duration_ms", duration_ms);
    }

    /// Ends the call with `error` without an event (a conversation cancel: the conversation
    /// emits `conversation.tool.cancelled` with the cancel's correlation, SPEC §11.6).
    fn fail_quiet(&self, error: Error) -> ToolFailure {
        let duration_ms = self.elapsed_ms();
        self.record_span_outcome(error.code(), duration_ms);
        self.failure(error, duration_ms)
    }

    fn failure(&self, error: Error, duration_ms: u64) -> ToolFailure {
        ToolFailure {
            project_id: self.project.id.to_string(),
            tool: self.ids.tool.clone(),
            conversation_id: self.ids.conversation_id.clone(),
            correlation_id: self.ids.correlation_id.clone(),
            tool_call_id: self.ids.tool_call_id.clone(),
            decision_id: self.decision_id().map(str::to_owned),
            duration_ms,
            error,
        }
    }

    /// Ends the call with `error`, emitting `conversation.tool.failed` (or `.cancelled`).
    fn fail(&self, error: Error) -> ToolFailure {
        let duration_ms = self.elapsed_ms();
        self.record_span_outcome(error.code(), duration_ms);
        let mut p = self.ids_payload();
        p.insert("duration_ms".into(), json!(duration_ms));
        p.insert("reason".into(), json!(error.code()));
        p.insert("error".into(), json!(error.to_string()));
        p.insert("details".into(), error.details());
        p.insert("source".into(), json!(self.ids.source.as_str()));
        let name = if matches!(error, Error::Cancelled { .. }) {
            EventName::ToolCancelled
        } else {
            EventName::ToolFailed
        };
        self.project.emit(self.event(name, Value::Object(p)));
        self.failure(error, duration_ms)
    }
}

/// Runs one call through the whole path.
pub(crate) fn run_call(
    project: Arc<ProjectRuntime>,
    call: ToolCall,
    opts: ExecOpts,
) -> BoxFuture<'static, Result<ToolSuccess, ToolFailure>> {
    let span = tracing::info_span!(
        "codeward.tool_call",
        project_id = tracing::field::Empty,
        conversation_id = tracing::field::Empty,
        correlation_id = tracing::field::Empty,
        tool_call_id = tracing::field::Empty,
        tool = tracing::field::Empty,
        kind = tracing::field::Empty,
        decision = tracing::field::Empty,
        outcome = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    Box::pin(run_inner(project, call, opts, span.clone()).instrument(span))
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

/// Step 2 for one id: the caller's (trimmed) id, or a generated one. Returns the id, whether it
/// was generated, and the error when the caller's id was invalid (a generated one stands in).
/// Validates a caller id (or generates one): `normalize::call_id` / `normalize::tool_call_id`.
type IdCheck = fn(Option<&str>, fn() -> String) -> Result<String, Error>;

fn pick_id(
    given: Option<&str>,
    generate: fn() -> String,
    check: IdCheck,
) -> (String, bool, Option<Error>) {
    let blank = given.is_none_or(|s| s.trim().is_empty());
    match check(given, generate) {
        Ok(id) => (id, blank, None),
        Err(e) => (generate(), true, Some(e)),
    }
}

/// Steps 1–3. Errors are returned with the context needed to report them.
fn prepare(
    project: Arc<ProjectRuntime>,
    call: ToolCall,
    offered_tools: Option<Vec<String>>,
    span: tracing::Span,
) -> Result<Prepared, Box<(CallCtx, Error)>> {
    let ToolCall { name, args, meta } = call;
    let started = Instant::now();
    let (correlation_id, correlation_generated, correlation_err) = pick_id(
        meta.correlation_id.as_deref(),
        || CorrelationId::generate().into(),
        normalize::call_id,
    );
    let (tool_call_id, tool_call_generated, tool_call_err) = pick_id(
        meta.tool_call_id.as_deref(),
        || ToolCallId::generate().into(),
        normalize::tool_call_id,
    );
    let envelope = Envelope::new(
        &project.redactor(),
        &name,
        meta.conversation_id.as_ref(),
        &correlation_id,
        correlation_generated,
    );
    let ids = Arc::new(CallIdentity {
        project_id: project.id.clone(),
        envelope,
        tool: name,
        conversation_id: meta.conversation_id.clone(),
        correlation_id,
        correlation_generated,
        tool_call_id,
        tool_call_generated,
        source: meta.source,
    });
    let mut ctx = CallCtx {
        project: project.clone(),
        ids,
        kind: "unknown",
        run_mode: meta.run_mode.unwrap_or_default(),
        record: None,
        started,
        span,
    };
    ctx.record_span_ids();
    let opts = &project.options;
    let name = ctx.ids.tool.as_str();
    let args = match normalize::normalize(name, args, opts.tool_max_args_bytes) {
        Ok(a) => a,
        Err(e) => return Err(Box::new((ctx, e))),
    };
    if let Some(e) = correlation_err.or(tool_call_err) {
        return Err(Box::new((ctx, e)));
    }
    let conversation = match &meta.conversation_id {
        None => None,
        Some(id) => match project.conversations.get(id) {
            Some(c) => Some(c.clone()),
            None => {
                let e = Error::ConversationNotFound {
                    conversation_id: id.to_string(),
                };
                return Err(Box::new((ctx, e)));
            }
        },
    };
    let catalog = project.catalog();
    let Some(entry) = catalog.get(name).cloned() else {
        let e = Error::UnknownTool {
            name: name.to_owned(),
        };
        return Err(Box::new((ctx, e)));
    };
    ctx.kind = entry.kind();
    ctx.span.record("kind", ctx.kind);
    ctx.run_mode = meta.run_mode.unwrap_or(match entry.spec.default_run_mode {
        codeward_tools::RunMode::Sync => RunMode::Sync,
        codeward_tools::RunMode::Async => RunMode::Async,
    });
    if entry.policy.is_none() {
        let e = invalid_tool(&catalog, &entry);
        return Err(Box::new((ctx, e)));
    }
    let timeout_ms = meta
        .timeout_ms
        .map_or(opts.tool_timeout_ms, |t| t.clamp(1, opts.tool_timeout_ms));
    let is_command = matches!(
        entry.exec,
        ToolExec::CommandRun | ToolExec::AssetCommand { .. }
    );
    // Only commands use a scratch dir; other calls skip building the path.
    let scratch_dir = if is_command {
        project.data_dir.join("tmp").join(&ctx.ids.tool_call_id)
    } else {
        PathBuf::new()
    };
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
    span: tracing::Span,
) -> Result<ToolSuccess, ToolFailure> {
    let ExecOpts {
        detach_async,
        offered_tools,
        cancel,
        on_started,
        no_queue,
    } = opts;
    if project.telemetry.backlogged() {
        // Telemetry is falling behind: give the pump and the telemetry actor the thread before
        // this call adds three more events (a yield, not a wait: nothing here blocks).
        tokio::task::yield_now().await;
    }
    let mut p = match prepare(project, call, offered_tools, span) {
        Ok(p) => p,
        Err(failed) => {
            let (ctx, e) = *failed;
            return Err(ctx.fail(e));
        }
    };
    // Steps 4–9.
    let policy = p.ctx.project.policy.current();
    let evaluate = tracing::debug_span!(parent: &p.ctx.span, "policy.evaluate");
    let decision = decide::evaluate_call(policy, &p.entry, &p.args, &p.input)
        .instrument(evaluate)
        .await;
    p.ctx.span.record(
        "decision",
        if decision.is_allowed() {
            "allow"
        } else {
            "deny"
        },
    );
    let (record, verdict) = decide::record(
        &p.ctx.project,
        decision,
        &p.ctx.ids,
        p.ctx.kind,
        p.ctx.run_mode,
    );
    p.ctx.record = Some(record);
    if let Err(error) = verdict {
        return Err(p.ctx.fail(Error::Policy { error }));
    }
    if detach_async && p.ctx.run_mode == RunMode::Async {
        let ids = &p.ctx.ids;
        let placeholder = ToolSuccess {
            project_id: p.ctx.project.id.clone(),
            tool: ids.tool.clone(),
            kind: p.ctx.kind.to_owned(),
            conversation_id: ids.conversation_id.clone(),
            correlation_id: ids.correlation_id.clone(),
            tool_call_id: ids.tool_call_id.clone(),
            decision_id: p.ctx.decision_id().unwrap_or_default().to_owned(),
            duration_ms: p.ctx.elapsed_ms(),
            result: json!({ "status": "started", "tool_call_id": ids.tool_call_id }),
            risk_flags: Vec::new(),
            sensitivity_findings_count: 0,
            sensitivity_finding_kinds: Vec::new(),
        };
        let span = p.ctx.span.clone();
        tokio::spawn(execute(p, cancel, on_started, no_queue).instrument(span));
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
    let conversation_cancelled = external_cancel.clone();
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
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    // The call's own token, fired by `guarded` on deadline, caller cancel or project stop (not
    // a child of `project.stop`: that would lock the project token's node twice per call).
    let token = CancellationToken::new();
    // A caller that drops the call (an aborted conversation task, a dropped `run_tool` future)
    // cancels it: the job runs inline, so the tool must hear about it.
    let _cancel_on_drop = token.clone().drop_guard();
    match &ctx.record {
        Some(record) => {
            let started = Arc::new(StartedPayload {
                record: record.clone(),
                args: args.clone(),
            });
            project.emit(
                ctx.ids
                    .event(EventName::ToolStarted, &ctx.ids.tool, started),
            );
        }
        // Unreachable (steps 4–9 always leave a record); emit the eager form all the same.
        None => project.emit(ctx.event(
            EventName::ToolStarted,
            json!({
                "kind": ctx.kind, "args": *args, "run_mode": ctx.run_mode,
                "source": ctx.ids.source.as_str(), "tool_call_id": ctx.ids.tool_call_id,
            }),
        )),
    }
    if let Some(f) = on_started {
        f();
    }
    let inv = Invocation {
        project: project.clone(),
        entry: entry.clone(),
        catalog,
        args,
        call: ctx.ids.clone(),
        cancel: token.clone(),
        deadline,
        timeout_ms,
        scratch_dir,
    };
    let stop = project.stop.clone();
    let execute_span = tracing::debug_span!(parent: &ctx.span, "tool.execute", timeout_ms);
    let outcome = slot
        .run(move || async move {
            let _quota = quota;
            guarded(
                invoke::invoke(inv),
                token,
                stop,
                external_cancel,
                deadline,
                timeout_ms,
            )
            .await
        })
        .instrument(execute_span)
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
                    json!({ "timeout_ms": timeout_ms, "tool_call_id": ctx.ids.tool_call_id }),
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
                    "tool_call_id": ctx.ids.tool_call_id }),
        ));
    }
}

/// Runs the tool honouring the deadline and cancellation (the caller's token, the project's
/// stop): when either fires, the call's token is cancelled and the tool gets [`CLEANUP_GRACE`]
/// to clean up; a timed-out call reports `timeout` even if the tool saw the cancellation first.
async fn guarded(
    fut: impl std::future::Future<Output = Result<Invoked, Failed>>,
    token: CancellationToken,
    stop: CancellationToken,
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
    // Biased, the tool first: a call that finishes on its first poll never registers a timer
    // or a cancellation waiter.
    let timed_out = tokio::select! {
        biased;
        r = &mut fut => return r,
        () = token.cancelled() => false,
        () = stop.cancelled() => false,
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
#[expect(
    clippy::result_large_err,
    reason = "ToolFailure is the public reply, returned by value along the whole path"
)]
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
                    "finding_paths": paths, "tool_call_id": ctx.ids.tool_call_id }),
        ));
        vec!["sensitive_artifact_detected".to_owned()]
    };
    if project.policy.current().redact_tool_results() {
        result = redactor.redact(&result);
    }
    // Step 15.
    let ids = &ctx.ids;
    let success = ToolSuccess {
        project_id: project.id.clone(),
        tool: ids.tool.clone(),
        kind: ctx.kind.to_owned(),
        conversation_id: ids.conversation_id.clone(),
        correlation_id: ids.correlation_id.clone(),
        tool_call_id: ids.tool_call_id.clone(),
        decision_id: ctx.decision_id().unwrap_or_default().to_owned(),
        duration_ms: ctx.elapsed_ms(),
        result,
        risk_flags,
        sensitivity_findings_count: u32::try_from(findings.len()).unwrap_or(u32::MAX),
        sensitivity_finding_kinds: kinds,
    };
    ctx.record_span_outcome("ok", success.duration_ms);
    let completion = Completion {
        duration_ms: success.duration_ms,
        output_bytes,
        risk_flags: success.risk_flags.clone(),
        findings_count: success.sensitivity_findings_count,
        finding_kinds: success.sensitivity_finding_kinds.clone(),
    };
    match &ctx.record {
        Some(record) if record.completion.set(completion).is_ok() => {
            let payload: Arc<dyn codeward_actors::telemetry::LazyPayload> = record.clone();
            project.emit(ids.event(EventName::ToolCompleted, &ids.tool, payload));
        }
        // No record (unreachable after steps 4–9) or completed twice: the eager form.
        _ => {
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
            p.insert("source".into(), json!(ids.source.as_str()));
            project.emit(ctx.event(EventName::ToolCompleted, Value::Object(p)));
        }
    }
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
    let p = prepare(project, call, None, tracing::Span::none()).map_err(|failed| failed.1)?;
    let policy = p.ctx.project.policy.current();
    let d = decide::evaluate_call(policy, &p.entry, &p.args, &p.input).await;
    let record = decide::describe(&p.ctx.project, d, &p.ctx.ids, p.ctx.kind, p.ctx.run_mode);
    Ok(record.policy_decision())
}
