//! SPEC §4 steps 4–9 and the decision record (§5.1): evaluates the call on the policy
//! snapshot (on the blocking pool when path resolution may touch the disk), then records the
//! decision as a typed [`CallRecord`] and emits `policy.allowed|denied` (a lazy payload backed
//! by that record) and the `security.*` events the decision implies.

use std::path::PathBuf;
use std::sync::Arc;

use codeward_actors::ids::DecisionId;
use codeward_actors::telemetry::{EventName, LazyPayload, TelemetryEvent};
use codeward_policies::{Decision, Outcome, PolicyError, PolicySet, RealFs, ToolRequest, evaluate};
use serde_json::{Value, json};

use super::record::{CallIdentity, CallRecord};
use crate::catalog::CatalogEntry;
use crate::project::ProjectRuntime;
use crate::types::{CallSource, RunMode};

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

/// Builds the decision record of `d` for the call `ids` and emits its events: `policy.allowed`
/// or `policy.denied` (lazy: the record is rendered only when read), one
/// `security.sandbox_exception_used` per exception used, and the `security.*` event a denial
/// implies. Returns the record and the verdict.
pub(crate) fn record(
    project: &ProjectRuntime,
    mut d: Decision,
    ids: &Arc<CallIdentity>,
    kind: &'static str,
    run_mode: RunMode,
) -> (Arc<CallRecord>, Result<(), PolicyError>) {
    let verdict = match (d.decision, d.error.take()) {
        (Outcome::Allow, _) => Ok(()),
        (Outcome::Deny, Some(e)) => Err(e),
        (Outcome::Deny, None) => Err(PolicyError::Denied {
            rule: "builtin:default_deny".to_owned(),
        }),
    };
    let rec = Arc::new(describe(project, d, ids, kind, run_mode));
    emit_decision(project, &rec, verdict.as_ref().err());
    (rec, verdict)
}

/// Builds the decision record (no events).
pub(crate) fn describe(
    project: &ProjectRuntime,
    d: Decision,
    ids: &Arc<CallIdentity>,
    kind: &'static str,
    run_mode: RunMode,
) -> CallRecord {
    CallRecord {
        ids: ids.clone(),
        kind,
        run_mode,
        decision_id: DecisionId::generate().into(),
        at_ms: project.now_ms(),
        decision: d,
        completion: std::sync::OnceLock::new(),
    }
}

/// An eager event of the decision (the `security.*` ones carry a copy of the record's JSON).
fn event(name: EventName, payload: Value, rec: &CallRecord) -> TelemetryEvent {
    rec.ids.json_event(name, &rec.decision.tool, payload)
}

fn emit_decision(project: &ProjectRuntime, rec: &Arc<CallRecord>, error: Option<&PolicyError>) {
    let d = &rec.decision;
    let name = match d.decision {
        Outcome::Allow => EventName::PolicyAllowed,
        Outcome::Deny => EventName::PolicyDenied,
    };
    let lazy: Arc<dyn LazyPayload> = rec.clone();
    project.emit(rec.ids.event(name, &d.tool, lazy));
    if d.exceptions_used.is_empty() && d.decision == Outcome::Allow {
        return;
    }
    // The `security.*` events embed the record: the eager JSON, redacted by the store.
    let payload = serde_json::to_value(rec.policy_decision()).unwrap_or_else(|_| json!({}));
    for reason_code in &d.exceptions_used {
        let mut p = payload.clone();
        if let Some(o) = p.as_object_mut() {
            o.insert("reason_code".into(), json!(reason_code));
        }
        project.emit(event(EventName::SandboxExceptionUsed, p, rec));
    }
    if d.decision == Outcome::Allow {
        return;
    }
    let details = error.map(PolicyError::details).unwrap_or_default();
    let security = match d.reason_code {
        "env_vars_not_allowed" | "invalid_env_payload" => {
            let keys = details.get("keys").cloned().unwrap_or_else(|| json!([]));
            Some((
                EventName::EnvDenied,
                json!({ "reason": d.reason_code, "denied_env_keys": keys, "decision": payload }),
            ))
        }
        "network_denied" | "network_protocol_denied" | "network_endpoint_denied" => {
            Some((EventName::NetworkDenied, payload))
        }
        "outside_root" | "invalid_path" => {
            let mut p = payload;
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
            let mut p = payload;
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
        project.emit(event(name, p, rec));
    }
}
