//! The model step contract (SPEC §11.7): [`ModelClient`], its request/response types, the
//! translation of a response into internal signals, and the deterministic [`ScriptedModel`].
//!
//! [`ScriptedModel`] is for tests, demos and replay: it never touches the network, answers the
//! same request the same way, can request tool calls and sees the tool results in the next
//! request; the run loop continues until it answers without tool calls.

use std::collections::VecDeque;
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::signal::{Signal, SignalType};
use super::state::{ChatMessage, ConversationState, ModelToolCall, Role, RunMode};
use crate::ids::{ConversationId, CorrelationId, ProjectId, RunId, ToolCallId};

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelTool {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// JSON Schema of its input.
    pub input_schema: Value,
}

/// One model invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// Project.
    pub project_id: ProjectId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// The run's correlation id.
    pub correlation_id: CorrelationId,
    /// Run.
    pub run_id: RunId,
    /// Step (1-based).
    pub step: u32,
    /// Model name.
    pub model: Option<String>,
    /// System prompt.
    pub system_prompt: Option<String>,
    /// Temperature.
    pub temperature: Option<f64>,
    /// Token cap.
    pub max_tokens: Option<u32>,
    /// The `llm_context` messages.
    pub messages: Vec<ChatMessage>,
    /// Offered tools.
    pub tools: Vec<ModelTool>,
    /// `llm_timeout_ms`.
    pub timeout_ms: u64,
}

impl ModelRequest {
    /// The request for the active run's current step, or `None` without an active run.
    pub fn for_state(
        state: &ConversationState,
        tools: Vec<ModelTool>,
        timeout_ms: u64,
    ) -> Option<Self> {
        let run = state.active_run.as_ref()?;
        Some(Self {
            project_id: state.config.project_id.clone(),
            conversation_id: state.config.conversation_id.clone(),
            correlation_id: run.correlation_id.clone(),
            run_id: run.run_id.clone(),
            step: run.step,
            model: state.config.model.clone(),
            system_prompt: state.config.system_prompt.clone(),
            temperature: None,
            max_tokens: None,
            messages: state.llm_context().messages,
            tools,
            timeout_ms,
        })
    }
}

/// A successful model answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// Assistant text (may be empty).
    pub text: String,
    /// Requested tool calls.
    pub tool_calls: Vec<ModelToolCall>,
    /// `stop`, `tool_calls`, ...
    pub finish_reason: String,
    /// Provider usage figures.
    pub usage: Option<Value>,
}

/// A failed model call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("model call failed ({code}): {message}")]
pub struct ModelError {
    /// Stable snake_case code (e.g. `timeout`, `rate_limited`, `script_exhausted`).
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Whether a retry may succeed.
    pub retryable: bool,
}

impl ModelError {
    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }
}

/// Where streamed text deltas go. Bounded: when the receiver lags, deltas are dropped (the final
/// `assistant.message` still carries the whole text).
#[derive(Debug, Clone, Default)]
pub struct DeltaSink {
    tx: Option<mpsc::Sender<String>>,
}

impl DeltaSink {
    /// A sink feeding `tx`.
    pub fn new(tx: mpsc::Sender<String>) -> Self {
        Self { tx: Some(tx) }
    }

    /// A sink that drops everything.
    pub fn discard() -> Self {
        Self { tx: None }
    }

    /// Sends one delta; returns whether it was accepted.
    pub fn send(&self, delta: &str) -> bool {
        self.tx
            .as_ref()
            .is_some_and(|tx| tx.try_send(delta.to_owned()).is_ok())
    }
}

/// A model backend. Implementations must be cancel-safe: the conversation drops the future on
/// cancel.
pub trait ModelClient: Send + Sync {
    /// Registered name (e.g. `scripted`).
    fn name(&self) -> &str;
    /// Runs one model step.
    fn complete<'a>(
        &'a self,
        req: ModelRequest,
        deltas: DeltaSink,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>>;
}

/// The internal signals for one finished model step, in apply order: `assistant.delta`* (from
/// `deltas`), `assistant.message` (non-empty text), one `tool.requested` per call, then
/// `llm.completed` — or `llm.failed`. All carry `run_id` and `step` so stale outputs are
/// recognised.
pub fn response_signals(
    req: &ModelRequest,
    deltas: &[String],
    result: Result<ModelResponse, ModelError>,
) -> Vec<Signal> {
    let corr = &req.correlation_id;
    let sig = |kind, mut data: Value| {
        if let Some(obj) = data.as_object_mut() {
            obj.insert("run_id".into(), json!(req.run_id));
            obj.insert("step".into(), json!(req.step));
        }
        Signal::derived(kind, data, corr, None).with_source("/codeward/model")
    };
    let mut out: Vec<Signal> = deltas
        .iter()
        .enumerate()
        .map(|(i, d)| {
            sig(
                SignalType::AssistantDelta,
                json!({ "content": d, "index": i }),
            )
        })
        .collect();
    match result {
        Ok(resp) => {
            if !resp.text.is_empty() {
                out.push(sig(
                    SignalType::AssistantMessage,
                    json!({ "content": resp.text }),
                ));
            }
            for call in &resp.tool_calls {
                let id = call.id.clone().unwrap_or_else(ToolCallId::generate);
                let mode = match call.run_mode.unwrap_or_default() {
                    RunMode::Sync => "sync",
                    RunMode::Async => "async",
                };
                out.push(sig(
                    SignalType::ToolRequested,
                    json!({ "tool_call_id": id, "name": call.name, "args": call.args, "run_mode": mode }),
                ));
            }
            out.push(sig(
                SignalType::LlmCompleted,
                json!({
                    "finish_reason": resp.finish_reason, "model": req.model,
                    "tool_call_count": resp.tool_calls.len(), "usage": resp.usage,
                }),
            ));
        }
        Err(e) => out.push(sig(
            SignalType::LlmFailed,
            json!({ "reason": e.code, "retryable": e.retryable, "message": e.message }),
        )),
    }
    out
}

/// The deterministic `scripted` model client (tests, demos, replay).
///
/// Behaviour, in order:
/// 1. [`ScriptedModel::from_responses`]: replays the given answers in order, then fails
///    `script_exhausted`.
/// 2. If the newest messages are tool results (after the last user message), answers
///    `Tool <name> completed.` / `Tool <name> failed: <code>.` / `Tool <name> started.`
///    (async placeholder) for each, joined by a space, with no tool calls — ending the loop.
/// 3. Otherwise obeys the last user message's `script` object:
///    `{assistant_text, delta_chunks, tool_calls: [{name, args, run_mode}], fail: {code,
///    retryable}}`.
/// 4. Otherwise "list skills|commands|workflows" requests `asset.list {type}`; anything else is
///    answered `Acknowledged: <first 200 chars>`.
///
/// Tool-call ids are derived from (conversation, run, step, index), so the same request always
/// yields the same ids.
#[derive(Debug, Default)]
pub struct ScriptedModel {
    replay: Option<Mutex<VecDeque<Result<ModelResponse, ModelError>>>>,
}

impl ScriptedModel {
    /// The rule-based client.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client that replays fixed answers.
    pub fn from_responses(
        responses: impl IntoIterator<Item = Result<ModelResponse, ModelError>>,
    ) -> Self {
        Self {
            replay: Some(Mutex::new(responses.into_iter().collect())),
        }
    }

    /// The answer to `req`, computed synchronously; deltas are returned alongside.
    pub fn answer(&self, req: &ModelRequest) -> (Vec<String>, Result<ModelResponse, ModelError>) {
        if let Some(replay) = &self.replay {
            let next = replay.lock().map(|mut q| q.pop_front()).unwrap_or(None);
            return (
                Vec::new(),
                next.unwrap_or_else(|| {
                    Err(ModelError {
                        code: "script_exhausted".into(),
                        message: "no scripted responses left".into(),
                        retryable: false,
                    })
                }),
            );
        }
        let last_user = req.messages.iter().rposition(|m| m.role == Role::User);
        let tail = &req.messages[last_user.map_or(0, |i| i + 1)..];
        let results: Vec<&ChatMessage> = tail
            .iter()
            .rev()
            .take_while(|m| m.role == Role::Tool)
            .collect();
        if !results.is_empty() {
            let text = results
                .iter()
                .rev()
                .map(|m| describe_tool_result(m))
                .collect::<Vec<_>>()
                .join(" ");
            return (Vec::new(), Ok(text_response(text)));
        }
        let Some(user) = last_user.and_then(|i| req.messages.get(i)) else {
            return (Vec::new(), Ok(text_response("Acknowledged: ".into())));
        };
        if let Some(script) = user.script.as_ref().and_then(Value::as_object) {
            if let Some(fail) = script.get("fail") {
                return (
                    Vec::new(),
                    Err(ModelError {
                        code: fail
                            .get("code")
                            .and_then(Value::as_str)
                            .unwrap_or("scripted_failure")
                            .into(),
                        message: "scripted failure".into(),
                        retryable: fail
                            .get("retryable")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    }),
                );
            }
            let deltas: Vec<String> = script
                .get("delta_chunks")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let text = script
                .get("assistant_text")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| deltas.concat());
            let tool_calls: Vec<ModelToolCall> = script
                .get("tool_calls")
                .and_then(Value::as_array)
                .map(|calls| {
                    calls
                        .iter()
                        .enumerate()
                        .map(|(i, c)| ModelToolCall {
                            id: Some(scripted_call_id(req, i)),
                            name: c
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .into(),
                            args: c.get("args").cloned().unwrap_or_else(|| json!({})),
                            run_mode: c
                                .get("run_mode")
                                .and_then(|m| serde_json::from_value(m.clone()).ok()),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let finish_reason = if tool_calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            };
            return (
                deltas,
                Ok(ModelResponse {
                    text,
                    tool_calls,
                    finish_reason: finish_reason.into(),
                    usage: None,
                }),
            );
        }
        let lower = user.content.to_ascii_lowercase();
        for kind in ["skills", "commands", "workflows"] {
            if lower.contains(&format!("list {kind}")) {
                let call = ModelToolCall {
                    id: Some(scripted_call_id(req, 0)),
                    name: "asset.list".into(),
                    args: json!({ "type": kind }),
                    run_mode: None,
                };
                return (
                    Vec::new(),
                    Ok(ModelResponse {
                        text: String::new(),
                        tool_calls: vec![call],
                        finish_reason: "tool_calls".into(),
                        usage: None,
                    }),
                );
            }
        }
        let head: String = user.content.chars().take(200).collect();
        (
            Vec::new(),
            Ok(text_response(format!("Acknowledged: {head}"))),
        )
    }
}

impl ModelClient for ScriptedModel {
    fn name(&self) -> &str {
        "scripted"
    }

    fn complete<'a>(
        &'a self,
        req: ModelRequest,
        deltas: DeltaSink,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(async move {
            let (chunks, result) = self.answer(&req);
            for chunk in &chunks {
                deltas.send(chunk);
            }
            result
        })
    }
}

fn text_response(text: String) -> ModelResponse {
    ModelResponse {
        text,
        tool_calls: Vec::new(),
        finish_reason: "stop".into(),
        usage: None,
    }
}

fn describe_tool_result(m: &ChatMessage) -> String {
    let name = m.name.as_deref().unwrap_or("tool");
    let parsed: Value = serde_json::from_str(&m.content).unwrap_or(Value::Null);
    if parsed.get("status").and_then(Value::as_str) == Some("started") {
        return format!("Tool {name} started.");
    }
    match parsed.get("error") {
        Some(err) => {
            let code = err.get("code").and_then(Value::as_str).unwrap_or("error");
            format!("Tool {name} failed: {code}.")
        }
        None => format!("Tool {name} completed."),
    }
}

/// `call-` + 20 hex derived (FNV-1a) from conversation, run, step and index.
fn scripted_call_id(req: &ModelRequest, index: usize) -> ToolCallId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in req
        .conversation_id
        .as_str()
        .bytes()
        .chain([0])
        .chain(req.run_id.as_str().bytes())
        .chain(req.step.to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let idx = u16::try_from(index).unwrap_or(u16::MAX);
    ToolCallId::parse(&format!("call-{h:016x}{idx:04x}")).unwrap_or_else(|_| ToolCallId::generate())
}
