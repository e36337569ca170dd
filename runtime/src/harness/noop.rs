//! The harness's provider tool `harness.noop` (SPEC §7.1 `ToolProvider`): trusted Rust code
//! that returns `{"ok": true}` at once, so a `run_tool` of it measures the execution path
//! itself — normalize, lookup, schema, policy, executor slot, telemetry — and nothing else.

use codeward_tools::{Registration, RegistrationStatus, RunMode, Safety, ToolKind};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::config::{ProjectContext, ProviderCall, ProviderError, ToolProvider, ToolSpec};

/// The no-op tool's name.
pub const NOOP_TOOL: &str = "harness.noop";

/// Registers [`NOOP_TOOL`] in every project.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopProvider;

impl ToolProvider for NoopProvider {
    fn tools(&self, _: &ProjectContext) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: NOOP_TOOL.to_owned(),
            description: "Does nothing and returns {\"ok\": true} (load harness).".to_owned(),
            input_schema: json!({
                "type": "object",
                "properties": {},
                "additionalProperties": false,
                "x-codeward-complete": true,
            }),
            output_schema: json!({ "type": "object" }),
            safety: Safety {
                sandboxed: true,
                network_capable: false,
            },
            kind: ToolKind::Provider,
            llm_exposed: true,
            default_run_mode: RunMode::Sync,
            source: "harness".to_owned(),
            registration: Registration {
                status: RegistrationStatus::Valid,
                errors: Vec::new(),
            },
        }]
    }

    fn call(&self, _: ProviderCall, _: Value) -> BoxFuture<'static, Result<Value, ProviderError>> {
        Box::pin(async { Ok(json!({ "ok": true })) })
    }
}
