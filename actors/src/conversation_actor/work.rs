//! The background work a conversation starts: model steps and tool calls, each a spawned task
//! whose results come back to the actor as internal signals (a handler never awaits a tool or
//! the model).
//!
//! Tasks are owned by the actor state through abort-on-drop handles, and each tool call's
//! cancellation token fires when its [`ToolTask`] is dropped — so a stop, a crash or a restart
//! aborts the work and tells the executor to kill its process trees. A cancelled tool call keeps
//! its task until the runner returns; that late result is discarded and counted by the reducer.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use ractor::ActorRef;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::actor::Core;
use super::msg::{ConversationMsg, Internal, ModelReport};
use super::ports::{ToolOutcome, ToolRunRequest};
use crate::conversation::{
    DeltaSink, ModelClient, ModelError, ModelRequest, PendingToolCall, Signal, SignalType,
    response_signals,
};
use crate::ids::RunId;

/// Streamed deltas buffered between the client and the forwarding task (the sink drops past
/// it; the final `assistant.message` still has the whole text).
const DELTA_BUFFER: usize = 256;

/// A model request in flight (or waiting for its retry delay).
pub(crate) struct ModelTask {
    pub(crate) run_id: RunId,
    step: u32,
    attempt: u32,
    _task: AbortOnDropHandle<()>,
}

impl ModelTask {
    pub(crate) fn is(&self, run_id: &RunId, step: u32, attempt: u32) -> bool {
        self.run_id == *run_id && self.step == step && self.attempt == attempt
    }
}

/// A tool call's task and cancellation token (fired on drop).
pub(crate) struct ToolTask {
    token: CancellationToken,
    _task: AbortOnDropHandle<()>,
}

impl ToolTask {
    pub(crate) fn cancel(&self) {
        self.token.cancel();
    }
}

impl Drop for ToolTask {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl Core {
    /// Starts model step `step` (attempt `attempt`) of the active run after `delay_ms`,
    /// replacing any request in flight. A stale effect (the run moved on) starts nothing.
    pub(crate) fn start_model(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        run_id: RunId,
        step: u32,
        attempt: u32,
        delay_ms: u64,
    ) {
        let timeout_ms = self.args.llm_timeout_ms;
        let Some(mut req) =
            ModelRequest::for_state(&self.conv, self.args.tools.offered_tools(), timeout_ms)
        else {
            return;
        };
        if req.run_id != run_id || req.step != step {
            return;
        }
        req.temperature = self.args.temperature;
        req.max_tokens = self.args.max_tokens;
        self.model = None;
        let task = tokio::spawn(model_task(
            myself.clone(),
            self.args.model.clone(),
            req,
            attempt,
            delay_ms,
        ));
        self.model = Some(ModelTask {
            run_id,
            step,
            attempt,
            _task: AbortOnDropHandle::new(task),
        });
    }

    /// Submits one tool call to the runner.
    pub(crate) fn start_tool(&mut self, myself: &ActorRef<ConversationMsg>, call: PendingToolCall) {
        let token = CancellationToken::new();
        let started_ref = myself.clone();
        let started_id = call.tool_call_id.clone();
        let req = ToolRunRequest {
            conversation_id: self.conv.config.conversation_id.clone(),
            tool_call_id: call.tool_call_id.clone(),
            correlation_id: call.correlation_id.clone(),
            name: call.name.clone(),
            args: call.args.clone(),
            run_mode: call.run_mode,
            cancel: token.clone(),
            on_started: Box::new(move || {
                let _ =
                    started_ref.send_message(ConversationMsg::internal(Internal::ToolStarted {
                        tool_call_id: started_id,
                    }));
            }),
        };
        let runner = self.args.tools.clone();
        let me = myself.clone();
        let id = call.tool_call_id.clone();
        let task = tokio::spawn(async move {
            let run = AssertUnwindSafe(async move { runner.run(req).await });
            let outcome = run
                .catch_unwind()
                .await
                .unwrap_or_else(|_| ToolOutcome::Failed {
                    code: "tool_failed".into(),
                    message: "the tool runner panicked".into(),
                    details: json!({ "reason": "panic" }),
                    duration_ms: 0,
                });
            let signal = outcome_signal(&call, outcome);
            let _ = me.send_message(ConversationMsg::internal(Internal::Signals {
                signals: vec![signal],
                report: None,
            }));
        });
        // A duplicate id would replace (and cancel) the older task; the reducer never
        // executes the same id twice.
        self.tools.insert(
            id,
            ToolTask {
                token,
                _task: AbortOnDropHandle::new(task),
            },
        );
    }
}

/// `tool.completed` / `tool.failed` for a finished call.
fn outcome_signal(call: &PendingToolCall, outcome: ToolOutcome) -> Signal {
    let (kind, data) = match outcome {
        ToolOutcome::Completed {
            result,
            duration_ms,
            risk_flags,
        } => (
            SignalType::ToolCompleted,
            json!({
                "tool_call_id": call.tool_call_id, "name": call.name, "result": result,
                "duration_ms": duration_ms, "risk_flags": risk_flags,
            }),
        ),
        ToolOutcome::Failed {
            code,
            message,
            details,
            duration_ms,
        } => (
            SignalType::ToolFailed,
            json!({
                "tool_call_id": call.tool_call_id, "name": call.name,
                "error": { "code": code, "message": message, "details": details },
                "duration_ms": duration_ms,
            }),
        ),
    };
    Signal::derived(kind, data, &call.correlation_id, None).with_source("/codeward/tool")
}

fn delta_signal(req: &ModelRequest, content: String, index: u64) -> Signal {
    Signal::derived(
        SignalType::AssistantDelta,
        json!({ "content": content, "index": index, "run_id": req.run_id, "step": req.step }),
        &req.correlation_id,
        None,
    )
    .with_source("/codeward/model")
}

/// One model step: wait out the retry delay, call the client under the timeout, forward the
/// deltas as they stream (batched per wake-up, in order), then the response signals.
async fn model_task(
    myself: ActorRef<ConversationMsg>,
    client: Arc<dyn ModelClient>,
    req: ModelRequest,
    attempt: u32,
    delay_ms: u64,
) {
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let started = Instant::now();
    let timeout_ms = req.timeout_ms;
    // The request's identity without its (possibly 1 MiB) messages, for the signals.
    let mut req = req;
    let (messages, tools) = (
        std::mem::take(&mut req.messages),
        std::mem::take(&mut req.tools),
    );
    let meta = req.clone();
    req.messages = messages;
    req.tools = tools;
    let req_meta = &meta;
    let (tx, mut rx) = mpsc::channel::<String>(DELTA_BUFFER);
    let call = tokio::time::timeout(
        Duration::from_millis(timeout_ms),
        client.complete(req, DeltaSink::new(tx)),
    );
    tokio::pin!(call);
    let mut index = 0u64;
    let forward = |batch: Vec<String>, index: &mut u64| {
        let signals = batch
            .into_iter()
            .map(|d| {
                *index += 1;
                delta_signal(req_meta, d, *index - 1)
            })
            .collect();
        let _ = myself.send_message(ConversationMsg::internal(Internal::Signals {
            signals,
            report: None,
        }));
    };
    let result = loop {
        tokio::select! {
            biased;
            result = &mut call => break result,
            Some(first) = rx.recv() => {
                let mut batch = vec![first];
                while let Ok(d) = rx.try_recv() {
                    batch.push(d);
                }
                forward(batch, &mut index);
            }
        }
    };
    let mut rest = Vec::new();
    while let Ok(d) = rx.try_recv() {
        rest.push(d);
    }
    if !rest.is_empty() {
        forward(rest, &mut index);
    }
    let result = result.unwrap_or_else(|_| {
        Err(ModelError {
            code: "timeout".into(),
            message: format!("the model did not answer within {timeout_ms} ms"),
            retryable: true,
        })
    });
    let report = ModelReport {
        run_id: meta.run_id.clone(),
        step: meta.step,
        attempt,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let signals = response_signals(&meta, &[], result);
    let _ = myself.send_message(ConversationMsg::internal(Internal::Signals {
        signals,
        report: Some(report),
    }));
}
