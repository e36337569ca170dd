//! The tool calls of the facade: `list_tools`, `run_tool`, `explain_tool_call` and the
//! protocol gate for front ends (SPEC §2.2, §4, §5.8, §7.1).

use codeward_actors::ids::ProjectId;
use codeward_actors::telemetry::{EventName, TelemetryEvent};
use codeward_tools::ToolSpec;
use serde_json::json;

use super::Engine;
use crate::error::{Error, Result};
use crate::exec::{self, ExecOpts};
use crate::project::ProjectRuntime;
use crate::types::{PolicyDecision, ToolCall, ToolFailure, ToolSuccess};

impl Engine {
    /// The project's tools, sorted by name, minus denied and hidden ones (SPEC §7.1).
    pub async fn list_tools(&self, p: &ProjectId) -> Result<Vec<ToolSpec>> {
        let project = self.project(p)?;
        let catalog = project.catalog();
        let policy = project.policy.current();
        Ok(catalog
            .listed(&policy, project.os_network_enforced, None)
            .into_iter()
            .map(|e| e.spec.clone())
            .collect())
    }

    /// Runs one tool call through the whole policy-gated path (SPEC §4).
    pub async fn run_tool(
        &self,
        p: &ProjectId,
        call: ToolCall,
    ) -> std::result::Result<ToolSuccess, ToolFailure> {
        let project = match self.project(p) {
            Ok(project) => project,
            Err(error) => return Err(early_failure(p, &call, error)),
        };
        exec::run_call(project, call, ExecOpts::api()).await
    }

    /// Runs steps 1–9 only and returns the decision (no events, nothing executed).
    pub async fn explain_tool_call(&self, p: &ProjectId, call: ToolCall) -> Result<PolicyDecision> {
        let project = self.project(p)?;
        exec::explain(project, call).await
    }

    /// The protocol gate front ends call per request (SPEC §5.8).
    pub async fn protocol_allowed(&self, p: &ProjectId, protocol: &str) -> Result<()> {
        let project = self.project(p)?;
        check_protocol(&project, protocol, "request")
    }
}

/// `protocol_denied{protocol}` + `security.protocol_denied{protocol, operation}` unless the
/// protocol is allow-listed.
pub(crate) fn check_protocol(
    project: &ProjectRuntime,
    protocol: &str,
    operation: &str,
) -> Result<()> {
    let Err(error) = project.policy.current().protocol_allowed(protocol) else {
        return Ok(());
    };
    project.emit(TelemetryEvent::new(
        EventName::ProtocolDenied,
        json!({ "protocol": protocol.trim().to_ascii_lowercase(), "operation": operation }),
    ));
    Err(Error::Policy { error })
}

/// A failure before the call reached its project (unknown project, shutting down).
fn early_failure(p: &ProjectId, call: &ToolCall, error: Error) -> ToolFailure {
    ToolFailure {
        project_id: p.to_string(),
        tool: call.name.clone(),
        conversation_id: call.meta.conversation_id.clone(),
        correlation_id: call.meta.correlation_id.clone().unwrap_or_default(),
        tool_call_id: call.meta.tool_call_id.clone().unwrap_or_default(),
        decision_id: None,
        duration_ms: 0,
        error,
    }
}
