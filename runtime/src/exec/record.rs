//! The typed record of one tool call behind its hot telemetry events (SPEC §8.1–8.2): the
//! call's ids ([`CallIdentity`], made once per call), the decision record of §5.1 and, once the
//! call succeeded, its completion ([`CallRecord`]). `policy.allowed` / `policy.denied` and
//! `conversation.tool.completed` carry the record itself and `conversation.tool.started` a small
//! [`StartedPayload`] pointing at it, as lazy payloads: nothing is rendered to JSON on the call
//! path, and the telemetry store renders only what something reads (the decisions ring on
//! snapshot, the journal writer, alerts).
//!
//! Rendering gives exactly the JSON the eager path would have stored after redaction, with one
//! difference: values this module generated itself skip the redactor — the fixed keys, generated
//! decision / correlation / tool-call ids, timestamps, numbers and fixed words (`kind`, `source`,
//! `decision`, `reason_code`, run mode, finding kinds). Everything a caller, a tool, a config file
//! or an asset supplied (project id, tool name, caller-given ids, conversation id, arguments,
//! rule, subject, exceptions, explanation) goes through the redactor, as before.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use codeward_actors::ids::{ConversationId, CorrelationId, ProjectId};
use codeward_actors::telemetry::{EventName, LazyPayload, Redactor, TelemetryEvent};
use codeward_policies::{Decision, Outcome};
use serde_json::{Map, Value};

use crate::types::{CallSource, PolicyDecision, RunMode, rfc3339_ms};

/// Who a call is: the ids every event and reply of the call carries. Made once per call.
#[derive(Debug)]
pub(crate) struct CallIdentity {
    pub project_id: ProjectId,
    pub tool: String,
    pub conversation_id: Option<ConversationId>,
    pub correlation_id: String,
    /// The event envelope's ids, redacted once per call (SPEC §5.9: rings and persisted
    /// telemetry too) — see [`Envelope::new`].
    pub envelope: Envelope,
    /// Whether `correlation_id` was generated here (so it cannot hold a secret).
    pub correlation_generated: bool,
    pub tool_call_id: String,
    /// Whether `tool_call_id` was generated here.
    pub tool_call_generated: bool,
    pub source: CallSource,
}

/// The ids an event envelope of the call carries, redacted.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub tool: String,
    /// `None` when the caller's id held a secret (`[REDACTED]` is not a conversation id).
    pub conversation_id: Option<ConversationId>,
    /// `None` when the id does not parse.
    pub correlation: Option<CorrelationId>,
}

impl Envelope {
    /// Redacts what the caller supplied: the tool name, the conversation id and a correlation
    /// id that was not generated here.
    pub fn new(
        redactor: &codeward_policies::secrets::Redactor,
        tool: &str,
        conversation_id: Option<&ConversationId>,
        correlation_id: &str,
        correlation_generated: bool,
    ) -> Self {
        let correlation = if correlation_generated {
            CorrelationId::parse(correlation_id).ok()
        } else {
            CorrelationId::parse(&redactor.redact_str(correlation_id)).ok()
        };
        let conversation_id = conversation_id
            .filter(|c| matches!(redactor.redact_str(c.as_str()), Cow::Borrowed(_)))
            .cloned();
        Self {
            tool: redactor.redact_str(tool).into_owned(),
            conversation_id,
            correlation,
        }
    }

    /// `ev` with this envelope. `tool` is the event's tool (the decision's for decision events);
    /// it only differs from the call's for a rendered command's decision, which the store then
    /// redacts itself.
    fn apply(&self, mut ev: TelemetryEvent, tool: &str, call_tool: &str) -> TelemetryEvent {
        ev.conversation_id.clone_from(&self.conversation_id);
        ev.correlation_id.clone_from(&self.correlation);
        if tool == call_tool {
            ev.tool = Some(self.tool.clone());
            ev.with_ids_redacted()
        } else {
            ev.tool = Some(tool.to_owned());
            ev
        }
    }
}

impl CallIdentity {
    /// An event of this call with a lazy payload; `tool` is the envelope's tool (the decision's
    /// tool for decision events).
    pub fn event(
        &self,
        name: EventName,
        tool: &str,
        payload: Arc<dyn LazyPayload>,
    ) -> TelemetryEvent {
        self.envelope
            .apply(TelemetryEvent::lazy(name, payload), tool, &self.tool)
    }

    /// An event of this call with a JSON payload (redacted by the store).
    pub fn json_event(&self, name: EventName, tool: &str, payload: Value) -> TelemetryEvent {
        self.envelope
            .apply(TelemetryEvent::new(name, payload), tool, &self.tool)
    }
}

/// What a successful call adds for `conversation.tool.completed`.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub duration_ms: u64,
    pub output_bytes: usize,
    /// Fixed words (`sensitive_artifact_detected`).
    pub risk_flags: Vec<String>,
    pub findings_count: u32,
    /// Detector kind names (fixed words).
    pub finding_kinds: Vec<String>,
}

/// One call's decision record, its ids and (after success) its completion.
#[derive(Debug)]
pub(crate) struct CallRecord {
    pub ids: Arc<CallIdentity>,
    /// Catalog kind of the tool (a fixed word).
    pub kind: &'static str,
    pub run_mode: RunMode,
    /// `dec-` + ULID, generated.
    pub decision_id: String,
    /// When the decision was recorded (engine clock).
    pub at_ms: i64,
    /// The policy outcome (`error` taken out).
    pub decision: Decision,
    /// Set once, just before `conversation.tool.completed` is emitted.
    pub completion: OnceLock<Completion>,
}

/// The payload of `conversation.tool.started`: the record and the arguments.
#[derive(Debug)]
pub(crate) struct StartedPayload {
    pub record: Arc<CallRecord>,
    pub args: Arc<Value>,
}

/// A value a caller, tool or config supplied: through the redactor.
fn supplied(redact: &Redactor, s: &str) -> Value {
    redact(&Value::String(s.to_owned()))
}

/// A value generated here: as it is.
fn generated(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn id(redact: &Redactor, s: &str, was_generated: bool) -> Value {
    if was_generated {
        generated(s)
    } else {
        supplied(redact, s)
    }
}

fn words(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| generated(s)).collect())
}

impl CallRecord {
    /// The decision record as the API shows it (unredacted, for `explain_tool_call` and the
    /// eager `security.*` payloads, which the store redacts).
    pub fn policy_decision(&self) -> PolicyDecision {
        let d = &self.decision;
        PolicyDecision {
            decision_id: self.decision_id.clone(),
            at: rfc3339_ms(self.at_ms),
            project_id: self.ids.project_id.to_string(),
            conversation_id: self.ids.conversation_id.as_ref().map(ToString::to_string),
            correlation_id: self.ids.correlation_id.clone(),
            tool_call_id: self.ids.tool_call_id.clone(),
            tool: d.tool.clone(),
            source: self.ids.source.as_str().to_owned(),
            decision: outcome(d.decision).to_owned(),
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

    /// `redact(to_value(policy_decision()))`, skipping the redactor for generated values.
    fn decision_json(&self, redact: &Redactor) -> Value {
        let (d, ids) = (&self.decision, &self.ids);
        let opt = |v: Option<Value>| v.map_or(Value::Null, |v| redact(&v));
        // The ids block is the call's own (decision id, project, tool, conversation,
        // correlation, tool call); the decision's `tool` is the call's tool.
        let mut m = self.ids_json(redact);
        m.insert("at".into(), Value::String(rfc3339_ms(self.at_ms)));
        m.insert("source".into(), generated(ids.source.as_str()));
        m.insert("decision".into(), generated(outcome(d.decision)));
        m.insert("reason_code".into(), generated(d.reason_code));
        m.insert(
            "rule".into(),
            opt(d.rule.as_ref().and_then(|r| serde_json::to_value(r).ok())),
        );
        m.insert(
            "subject".into(),
            opt(d
                .subject
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok())),
        );
        m.insert(
            "exceptions_used".into(),
            redact(&Value::Array(
                d.exceptions_used.iter().map(|s| generated(s)).collect(),
            )),
        );
        m.insert(
            "candidates_checked".into(),
            Value::from(d.candidates_checked),
        );
        m.insert("explain".into(), supplied(redact, &d.explain));
        Value::Object(m)
    }

    /// The ids block of the call's own events (as `CallCtx::ids_payload`).
    fn ids_json(&self, redact: &Redactor) -> Map<String, Value> {
        let ids = &self.ids;
        let mut m = Map::new();
        m.insert(
            "project_id".into(),
            supplied(redact, ids.project_id.as_str()),
        );
        m.insert("tool".into(), supplied(redact, &ids.tool));
        m.insert(
            "conversation_id".into(),
            ids.conversation_id
                .as_ref()
                .map_or(Value::Null, |c| supplied(redact, c.as_str())),
        );
        m.insert(
            "correlation_id".into(),
            id(redact, &ids.correlation_id, ids.correlation_generated),
        );
        m.insert(
            "tool_call_id".into(),
            id(redact, &ids.tool_call_id, ids.tool_call_generated),
        );
        m.insert("decision_id".into(), generated(&self.decision_id));
        m
    }

    fn completed_json(&self, redact: &Redactor) -> Value {
        let mut m = self.ids_json(redact);
        let c = self.completion.get();
        m.insert("kind".into(), generated(self.kind));
        m.insert(
            "duration_ms".into(),
            c.map_or(Value::Null, |c| c.duration_ms.into()),
        );
        m.insert(
            "risk_flags".into(),
            c.map_or(Value::Array(Vec::new()), |c| words(&c.risk_flags)),
        );
        m.insert(
            "sensitivity_findings_count".into(),
            c.map_or(Value::from(0), |c| c.findings_count.into()),
        );
        m.insert(
            "sensitivity_finding_kinds".into(),
            c.map_or(Value::Array(Vec::new()), |c| words(&c.finding_kinds)),
        );
        m.insert(
            "output_bytes".into(),
            c.map_or(Value::Null, |c| c.output_bytes.into()),
        );
        m.insert("source".into(), generated(self.ids.source.as_str()));
        Value::Object(m)
    }
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Allow => "allow",
        Outcome::Deny => "deny",
    }
}

impl LazyPayload for CallRecord {
    fn render(&self, event: EventName, redact: &Redactor) -> Value {
        match event {
            EventName::PolicyAllowed | EventName::PolicyDenied => self.decision_json(redact),
            EventName::ToolCompleted => self.completed_json(redact),
            // Not emitted with this source; nothing to show.
            _ => Value::Object(Map::new()),
        }
    }

    fn has_ring_fields(&self, _: EventName) -> bool {
        // Neither the decision record nor the completion has `reason` or `error`.
        false
    }
}

impl LazyPayload for StartedPayload {
    fn render(&self, _: EventName, redact: &Redactor) -> Value {
        let r = &self.record;
        let mut m = Map::new();
        m.insert("kind".into(), generated(r.kind));
        m.insert("args".into(), redact(&self.args));
        m.insert(
            "run_mode".into(),
            serde_json::to_value(r.run_mode).unwrap_or(Value::Null),
        );
        m.insert("source".into(), generated(r.ids.source.as_str()));
        m.insert(
            "tool_call_id".into(),
            id(redact, &r.ids.tool_call_id, r.ids.tool_call_generated),
        );
        Value::Object(m)
    }

    fn has_ring_fields(&self, _: EventName) -> bool {
        false
    }
}
