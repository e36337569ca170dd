//! `workflow.run.<name>` (SPEC §7.3): steps run in order, each a full §4 call with the
//! workflow's correlation id, `source: workflow`, its own permits (a step that finds no free
//! slot fails instead of queueing behind its own workflow, so workflows never deadlock) and
//! the time left of the workflow's deadline. Templates `{{inputs.<name>}}` and
//! `{{steps.<id>.result.<path>}}` are rendered into step arguments; a string that is exactly
//! one placeholder takes the typed JSON value.

use std::time::Duration;

use codeward_assets::{AssetDefinition, AssetKind, Quoting, Template, WorkflowReturn, lookup};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::error::Error;
use crate::exec::invoke::{Failed, Invocation, Invoked, invalid_asset, with_defaults};
use crate::exec::{ExecOpts, run_call};
use crate::types::{CallSource, ToolCall, ToolCallMeta};

/// Renders every string of `v` against the template scope.
fn render(v: &Value, scope: &Map<String, Value>) -> Value {
    match v {
        Value::String(s) if s.contains("{{") => {
            let t = Template::compile(s, false);
            match t.sole_placeholder() {
                Some(name) => lookup(scope, name).cloned().unwrap_or(Value::Null),
                None => Value::String(t.render(scope, Quoting::Plain)),
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| render(x, scope)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), render(x, scope)))
                .collect(),
        ),
        other => other.clone(),
    }
}

pub(crate) async fn run(inv: &Invocation, name: &str) -> Result<Invoked, Failed> {
    let asset = inv
        .catalog
        .snapshot
        .get(AssetKind::Workflow, name)
        .map_err(Error::from)?;
    let AssetDefinition::Workflow(def) = &asset.definition else {
        return Err(invalid_asset(asset).into());
    };
    if !asset.registration.is_valid() || !def.enabled {
        return Err(invalid_asset(asset).into());
    }
    let inputs = with_defaults(&inv.args, &def.inputs);
    let mut scope = Map::new();
    scope.insert("inputs".into(), Value::Object(inputs));
    scope.insert("steps".into(), Value::Object(Map::new()));
    let mut steps_out: Vec<Value> = Vec::new();
    let mut last: Value = Value::Null;
    for step in &def.steps {
        let remaining = inv.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::Timeout {
                timeout_ms: inv.timeout_ms,
            }
            .into());
        }
        let args = render(&step.args, &scope);
        let call = ToolCall {
            name: step.tool.clone(),
            args,
            meta: ToolCallMeta {
                conversation_id: inv.conversation_id().cloned(),
                correlation_id: Some(inv.call.correlation_id.clone()),
                tool_call_id: None,
                timeout_ms: Some(
                    u64::try_from(remaining.as_millis())
                        .unwrap_or(u64::MAX)
                        .max(1),
                ),
                run_mode: None,
                source: CallSource::Workflow,
            },
        };
        let started = Instant::now();
        let outcome = tokio::select! {
            r = run_call(inv.project.clone(), call, ExecOpts::workflow_step(inv.cancel.clone())) => r,
            () = tokio::time::sleep(remaining + Duration::from_millis(50)) => {
                return Err(Error::Timeout { timeout_ms: inv.timeout_ms }.into());
            }
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(ok) => {
                if let Some(Value::Object(steps)) = scope.get_mut("steps") {
                    steps.insert(step.id.clone(), json!({ "result": ok.result }));
                }
                last = ok.result.clone();
                steps_out.push(json!({
                    "id": step.id, "tool": step.tool, "status": "completed",
                    "duration_ms": duration_ms, "result": ok.result,
                }));
            }
            Err(fail) => {
                steps_out.push(json!({
                    "id": step.id, "tool": step.tool, "status": "failed",
                    "duration_ms": duration_ms, "error": fail.error,
                }));
                if !step.continue_on_error {
                    return Err(Error::ToolFailed {
                        reason: "workflow_step_failed".into(),
                        message: format!(
                            "step `{}` ({}) failed: {}",
                            step.id, step.tool, fail.error
                        ),
                        details: json!({ "workflow": name, "steps": steps_out }),
                    }
                    .into());
                }
            }
        }
    }
    let result = match &def.returns {
        Some(WorkflowReturn::From(path)) => lookup(&scope, path).cloned().unwrap_or(Value::Null),
        Some(WorkflowReturn::Value(v)) => render(v, &scope),
        None => last,
    };
    Ok(Invoked {
        result: json!({
            "mode": "executed", "workflow": name, "version": def.version,
            "steps": steps_out, "result": result,
        }),
        terminated: 0,
    })
}
