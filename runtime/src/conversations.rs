//! Conversations as the runtime hosts them: the two ports of the conversation actor implemented
//! over the project's SQLite journal ([`JournalStore`]) and the one tool-execution path
//! ([`ProjectToolRunner`]), the per-conversation tool quota and scope (SPEC §4 step 11, §5.3),
//! and how a conversation's start arguments are (re)built from its options — so the
//! conversation supervisor can restart it, and a project start can restore it, from the journal.

use std::sync::{Arc, OnceLock, Weak};

use codeward_actors::conversation::{
    ConversationConfig, ConversationEvent, ModelClient, ModelTool,
};
use codeward_actors::conversation_actor::{
    ConversationArgs, ConversationHandle, ConversationMeta, ConversationStore, StoreError,
    ToolOutcome, ToolRunRequest, ToolRunner,
};
use codeward_actors::ids::ConversationId;
use codeward_actors::journal::{ConversationRow, JournalHandle};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::catalog::CatalogEntry;
use crate::exec::{self, ExecOpts};
use crate::project::ProjectRuntime;
use crate::types::{CallSource, ConversationOptions, ToolCall, ToolCallMeta};

/// One live conversation.
pub(crate) struct ConversationEntry {
    /// Its tool-call quota.
    pub quota: Arc<Semaphore>,
    /// The quota's size (for errors).
    pub quota_limit: usize,
    /// Tool patterns the conversation may use (`None` = the project's).
    pub allow_tools: Option<Vec<String>>,
    /// The supervised actor.
    pub handle: ConversationHandle,
    /// The options it was started with (journaled; restores rebuild from them).
    pub options: ConversationOptions,
    /// First registration time.
    pub created_at_ms: i64,
}

/// [`ConversationStore`] over the project journal.
pub(crate) struct JournalStore {
    pub journal: JournalHandle,
}

fn store_error(e: codeward_actors::journal::JournalError) -> StoreError {
    StoreError {
        code: e.code().to_owned(),
        message: e.to_string(),
    }
}

impl ConversationStore for JournalStore {
    fn append(
        &self,
        entries: Vec<ConversationEvent>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let journal = self.journal.clone();
        Box::pin(async move { journal.append_signals(entries).await.map_err(store_error) })
    }

    fn load(
        &self,
        id: &ConversationId,
        after_seq: u64,
        limit: Option<usize>,
    ) -> BoxFuture<'static, Result<Vec<ConversationEvent>, StoreError>> {
        let (journal, id) = (self.journal.clone(), id.clone());
        Box::pin(async move {
            journal
                .signals(&id, after_seq, limit)
                .await
                .map_err(store_error)
        })
    }

    fn register(&self, meta: ConversationMeta) -> BoxFuture<'static, Result<(), StoreError>> {
        let journal = self.journal.clone();
        Box::pin(async move {
            journal
                .register_conversation(ConversationRow {
                    conversation_id: meta.conversation_id,
                    parent_conversation_id: meta.parent_conversation_id,
                    created_at_ms: meta.created_at_ms,
                    stopped_at_ms: None,
                    stop_reason: None,
                    options_json: meta.options,
                })
                .await
                .map_err(store_error)
        })
    }

    fn mark_stopped(
        &self,
        id: &ConversationId,
        reason: &str,
        at_ms: i64,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let (journal, id, reason) = (self.journal.clone(), id.clone(), reason.to_owned());
        Box::pin(async move {
            journal
                .mark_stopped(&id, &reason, at_ms)
                .await
                .map_err(store_error)
        })
    }
}

/// [`ToolRunner`]: model-originated calls go through the same path as every other call, with
/// `source: model`, the conversation's id (quota, scope) and the tools offered in the step.
pub(crate) struct ProjectToolRunner {
    pub project: Arc<OnceLock<Weak<ProjectRuntime>>>,
    pub allow_tools: Option<Vec<String>>,
}

impl ProjectToolRunner {
    fn project(&self) -> Option<Arc<ProjectRuntime>> {
        self.project.get().and_then(Weak::upgrade)
    }

    /// Runs `f` over the tools offered to the model, in no particular order: visible under
    /// the current policy and the conversation's scope, and exposed to models.
    fn with_offered<R>(
        project: &ProjectRuntime,
        scope: Option<&[String]>,
        f: impl FnOnce(&mut dyn Iterator<Item = &Arc<CatalogEntry>>) -> R,
    ) -> R {
        let catalog = project.catalog();
        let policy = project.policy.current();
        f(&mut catalog
            .visible_entries(&policy, project.os_network_enforced, scope)
            .filter(|e| e.spec.llm_exposed))
    }

    /// The tools offered to the model, sorted by name (the order the model sees).
    fn offered_specs(project: &ProjectRuntime, scope: Option<&[String]>) -> Vec<ModelTool> {
        let mut tools: Vec<ModelTool> = Self::with_offered(project, scope, |tools| {
            tools
                .map(|e| ModelTool {
                    name: e.spec.name.clone(),
                    description: e.spec.description.clone(),
                    input_schema: e.spec.input_schema.clone(),
                })
                .collect()
        });
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        tools
    }
}

impl ToolRunner for ProjectToolRunner {
    fn offered_tools(&self) -> Vec<ModelTool> {
        match self.project() {
            Some(p) => Self::offered_specs(&p, self.allow_tools.as_deref()),
            None => Vec::new(),
        }
    }

    fn offered_tool_count(&self) -> usize {
        self.project().map_or(0, |p| {
            Self::with_offered(&p, self.allow_tools.as_deref(), |tools| tools.count())
        })
    }

    fn run(&self, req: ToolRunRequest) -> BoxFuture<'static, ToolOutcome> {
        let project = self.project();
        let scope = self.allow_tools.clone();
        Box::pin(async move {
            let Some(project) = project else {
                return ToolOutcome::Failed {
                    code: "project_not_found".into(),
                    message: "the project stopped".into(),
                    details: json!({}),
                    duration_ms: 0,
                };
            };
            let offered: Vec<String> = Self::with_offered(&project, scope.as_deref(), |tools| {
                tools.map(|e| e.spec.name.clone()).collect()
            });
            let call = ToolCall {
                name: req.name,
                args: req.args,
                meta: ToolCallMeta {
                    conversation_id: Some(req.conversation_id),
                    correlation_id: Some(req.correlation_id.to_string()),
                    tool_call_id: Some(req.tool_call_id.to_string()),
                    timeout_ms: None,
                    run_mode: Some(req.run_mode),
                    source: CallSource::Model,
                },
            };
            let opts = ExecOpts {
                detach_async: false,
                offered_tools: Some(offered),
                cancel: Some(req.cancel),
                on_started: Some(req.on_started),
                no_queue: false,
            };
            // Its own task: if the conversation's task is aborted (a crash), the call is not
            // dropped mid-flight but sees the conversation's token fire and cleans up.
            let outcome = tokio::spawn(exec::run_call(project, call, opts)).await;
            let Ok(outcome) = outcome else {
                return ToolOutcome::Failed {
                    code: "interrupted".into(),
                    message: "the tool call task ended abnormally".into(),
                    details: json!({}),
                    duration_ms: 0,
                };
            };
            match outcome {
                Ok(ok) => ToolOutcome::Completed {
                    result: ok.result,
                    duration_ms: ok.duration_ms,
                    risk_flags: ok.risk_flags,
                },
                Err(fail) => ToolOutcome::Failed {
                    code: fail.error.code().to_owned(),
                    message: fail.error.to_string(),
                    details: fail.error.details(),
                    duration_ms: fail.duration_ms,
                },
            }
        })
    }
}

/// The engine-side ingredients of a conversation's start arguments.
pub(crate) struct ArgsInputs {
    pub project: Arc<OnceLock<Weak<ProjectRuntime>>>,
    pub journal: JournalHandle,
    pub model: Arc<dyn ModelClient>,
}

/// Builds the start arguments of conversation `id` from its options (fresh start and restore
/// alike: the same options always give the same configuration).
pub(crate) fn build_args(
    project: &ProjectRuntime,
    inputs: &ArgsInputs,
    id: &ConversationId,
    options: &ConversationOptions,
    restore: bool,
    created_at_ms: i64,
) -> ConversationArgs {
    let o = &project.options;
    let mut config = ConversationConfig::new(project.id.clone(), id.clone());
    config.model = options.model.clone().or_else(|| o.llm_model.clone());
    config.system_prompt = options
        .system_prompt
        .clone()
        .or_else(|| o.llm_system_prompt.clone());
    config.max_queue_size = o.conversation_max_queue_size;
    config.max_drain_steps = usize::try_from(o.conversation_max_drain_steps).unwrap_or(128);
    config.max_turn_steps = options
        .max_turn_steps
        .unwrap_or(o.conversation_max_turn_steps)
        .clamp(1, o.conversation_max_turn_steps.max(1));
    config.timeline_window = o.conversation_timeline_window;
    config.llm_max_retries = o.llm_max_retries;
    let runner = ProjectToolRunner {
        project: inputs.project.clone(),
        allow_tools: options.allow_tools.clone(),
    };
    let mut args = ConversationArgs::new(
        config,
        Arc::new(JournalStore {
            journal: inputs.journal.clone(),
        }),
        Arc::new(runner),
        inputs.model.clone(),
        project.telemetry.clone(),
    );
    args.llm_timeout_ms = o.llm_timeout_ms;
    args.temperature = options.temperature.or(o.llm_temperature);
    args.max_tokens = options
        .max_tokens
        .or(o.llm_max_tokens)
        .map(|t| u32::try_from(t).unwrap_or(u32::MAX));
    args.restore = restore;
    let clock = project.clock.clone();
    args.clock = Arc::new(move || clock.now_ms());
    args.created_at_ms = created_at_ms;
    args.options = serde_json::to_value(options).unwrap_or(Value::Null);
    args
}
