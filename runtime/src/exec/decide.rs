//! SPEC §4 steps 4–9 and the decision record (§5.1): evaluates the call on the policy
//! snapshot (on the blocking pool when path resolution may touch the disk), then emits
//! `policy.allowed|denied` and the `security.*` events the decision implies.

use std::path::PathBuf;
use std::sync::Arc;

use codeward_actors::ids::{ConversationId, CorrelationId, DecisionId};
use codeward_actors::telemetry::{EventName, TelemetryEvent};
use codeward_policies::{Decision, Outcome, PolicySet, RealFs, ToolRequest, evaluate};
use serde_json::{Value, json};

use crate::catalog::CatalogEntry;
use crate::project::ProjectRuntime;
use crate::types::{CallSource, PolicyDecision, rfc3339_ms};

/// What the evaluation needs besides the arguments.
#[derive(Clone)]
pub(crate) struct DecideInput {
    pub source: CallSource,
    pub conversation_allow_tools: Option<Vec<String>>,
    pub offered_tools: Option<Vec<String>>,
    pub scratch_dir: Option<PathBuf>,
    pub os_network_enforced: bool,
}

fn run_evaluate(
    policy: &PolicySet,
    entry: &CatalogEntry,
    args: &Value,
    input: &DecideInput,
) -> Decision {
    let Some(tool) = entry.policy.as_ref() else {
        // Unreachable for callers (invalid assets are refused before), but never fail open.
        return deny_unavailable(entry);
    };
    let mut req = ToolRequest::new(tool, args);
    req.source = input.source.policy();
    req.conversation_allow_tools = input.conversation_allow_tools.as_deref();
    req.offered_tools = input.offered_tools.as_deref();
    req.scratch_dir = input.scratch_dir.as_deref();
    req.os_network_enforced = input.os_network_enforced;
    evaluate(policy, &req, &RealFs)
}

fn deny_unavailable(entry: &CatalogEntry) -> Decision {
    Decision {
        decision: Outcome::Deny,
        reason_code: "denied",
        tool: entry.spec.name.clone(),
        source: codeward_policies::CallSource::Api,
        rule: None,
        subject: None,
        exceptions_used: Vec::new(),
        candidates_checked: 0,
        explain: format!("deny denied: tool {} has no valid schema", entry.spec.name),
        error: Some(codeward_policies::PolicyError::Denied {
            rule: "builtin:invalid_schema".into(),
        }),
        details: json!({}),
    }
}

/// Evaluates on the current snapshot; path-touching tools run on the blocking pool.
pub(crate) async fn evaluate_call(
    policy: Arc<PolicySet>,
    entry: &Arc<CatalogEntry>,
    args: &Arc<Value>,
    input: &DecideInput,
) -> Decision {
    if !entry.touches_fs {
        return run_evaluate(&policy, entry, args, input);
    }
    let (entry2, args2, input2) = (entry.clone(), args.clone(), input.clone());
    match tokio::task::spawn_blocking(move || run_evaluate(&policy, &entry2, &args2, &input2)).await
    {
        Ok(d) => d,
        Err(_) => deny_unavailable(entry),
    }
}

/// Ids of the call a decision belongs to.
pub(crate) struct CallIdsRef<'a> {
    pub conversation_id: Option<&'a ConversationId>,
    pub correlation_id: &'a str,
    pub tool_call_id: &'a str,
    pub source: CallSource,
}

/// Builds the decision record and emits its events. Returns the record.
pub(crate) fn record(
    project: &ProjectRuntime,
    d: &Decision,
    ids: &CallIdsRef<'_>,
) -> PolicyDecision {
    let rec = describe(project, d, ids);
    emit_decision(project, d, &rec, ids);
    rec
}

/// Builds the decision record (no events).
pub(crate) fn describe(
    project: &ProjectRuntime,
    d: &Decision,
    ids: &CallIdsRef<'_>,
) -> PolicyDecision {
    let decision_id = DecisionId::generate().to_string();
    PolicyDecision {
        decision_id,
        at: rfc3339_ms(project.now_ms()),
        project_id: project.id.to_string(),
        conversation_id: ids.conversation_id.map(ToString::to_string),
        correlation_id: ids.correlation_id.to_owned(),
        tool_call_id: ids.tool_call_id.to_owned(),
        tool: d.tool.clone(),
        source: ids.source.as_str().to_owned(),
        decision: match d.decision {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
        }
        .to_owned(),
        reason_code: d.reason_code.to_owned(),
        rule: d.rule.as_ref().and_then(|r| serde_json::to_value(r).ok()),
        subject: d
            .subject
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok()),
        exceptions_used: d.exceptions_used.clone(),
        candidates_checked: d.candidates_checked,
        explain: d.explain.clone(),
    }
}

fn event(
    project_ev: EventName,
    payload: Value,
    d: &Decision,
    ids: &CallIdsRef<'_>,
) -> TelemetryEvent {
    let mut ev = TelemetryEvent::new(project_ev, payload).tool(d.tool.clone());
    ev.conversation_id = ids.conversation_id.cloned();
    ev.correlation_id = CorrelationId::parse(ids.correlation_id).ok();
    ev
}

fn emit_decision(
    project: &ProjectRuntime,
    d: &Decision,
    rec: &PolicyDecision,
    ids: &CallIdsRef<'_>,
) {
    let payload = serde_json::to_value(rec).unwrap_or_else(|_| json!({}));
    let name = match d.decision {
        Outcome::Allow => EventName::PolicyAllowed,
        Outcome::Deny => EventName::PolicyDenied,
    };
    project.emit(event(name, payload.clone(), d, ids));
    for reason_code in &d.exceptions_used {
        let mut p = payload.clone();
        if let Some(o) = p.as_object_mut() {
            o.insert("reason_code".into(), json!(reason_code));
        }
        project.emit(event(EventName::SandboxExceptionUsed, p, d, ids));
    }
    if d.decision == Outcome::Allow {
        return;
    }
    let details = d.error.as_ref().map(|e| e.details()).unwrap_or_default();
    let security = match d.reason_code {
        "env_vars_not_allowed" | "invalid_env_payload" => {
            let keys = details.get("keys").cloned().unwrap_or_else(|| json!([]));
            Some((
                EventName::EnvDenied,
                json!({ "reason": d.reason_code, "denied_env_keys": keys, "decision": payload }),
            ))
        }
        "network_denied" | "network_protocol_denied" | "network_endpoint_denied" => {
            Some((EventName::NetworkDenied, payload.clone()))
        }
        "outside_root" | "invalid_path" => {
            let mut p = payload.clone();
            if let Some(o) = p.as_object_mut() {
                let path = details
                    .get("path")
                    .cloned()
                    .or_else(|| d.subject.as_ref().map(|s| json!(s.raw)))
                    .unwrap_or(Value::Null);
                o.insert("path".into(), path);
            }
            Some((EventName::SandboxViolation, p))
        }
        "sensitive_path_denied" => {
            let mut p = payload.clone();
            if let Some(o) = p.as_object_mut() {
                o.insert(
                    "pattern".into(),
                    details.get("pattern").cloned().unwrap_or(Value::Null),
                );
            }
            Some((EventName::SensitivePathDenied, p))
        }
        _ => None,
    };
    if let Some((name, p)) = security {
        project.emit(event(name, p, d, ids));
    }
}
