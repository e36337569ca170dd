//! The conversation actor: `pre_start` (register, restore from the journal), `handle` (thin
//! dispatch), and the write-ahead step every input goes through ([`Core::apply`]): checkpoint,
//! reducer, durable append, then commit and perform the effects — or roll back.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::{Value, json};
use tokio_util::task::AbortOnDropHandle;

use super::checkpoint::Checkpoint;
use super::error::ConversationError;
use super::msg::{
    ConversationActorDiagnostics, ConversationMsg, ConversationSnapshot, ConversationStateView,
    Internal, ModelReport, SignalAck, StopReason,
};
use super::ports::{ConversationMeta, ConversationStore, StoreError, ToolRunner};
use super::subscription::{ConversationSubscription, Hub};
use super::work::{ModelTask, ToolTask};
use crate::conversation::{
    ConversationConfig, ConversationDiagnostics, ConversationEvent, ConversationState, Effect,
    Input, ModelClient, Projection, ProjectionKey, Signal, SignalType, restore, step_in_place,
};
use crate::ids::{CorrelationId, SignalId, ToolCallId};
use crate::telemetry::{EventName, TelemetryEvent, TelemetryHandle, WallClock};

/// Default wait of `call` for the conversation to settle (SPEC §2.2).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Internal batches kept while the journal refuses appends; past it the actor fails (and is
/// rebuilt from the journal by its supervisor).
const BACKLOG_LIMIT: usize = 1024;
/// Retries of a refused internal batch before the actor fails.
const BACKLOG_MAX_ATTEMPTS: u32 = 8;

/// Start arguments of a conversation actor. Build with [`ConversationArgs::new`], then adjust
/// the public fields. Held in an `Arc` by the child spec: every (re)start of the actor gets the
/// same arguments, and with them the same subscriber hub.
pub struct ConversationArgs {
    /// Limits and model settings; `conversation_id` is also the supervised child's name.
    pub config: ConversationConfig,
    /// The journal.
    pub store: Arc<dyn ConversationStore>,
    /// The tool execution path.
    pub tools: Arc<dyn ToolRunner>,
    /// The model client.
    pub model: Arc<dyn ModelClient>,
    /// The project's telemetry.
    pub telemetry: TelemetryHandle,
    /// `llm_timeout_ms` (120 000).
    pub llm_timeout_ms: u64,
    /// Sampling temperature passed to the model.
    pub temperature: Option<f64>,
    /// Token cap passed to the model.
    pub max_tokens: Option<u32>,
    /// Rebuild from the journal on the first start (restarts always do). With `false` the
    /// journal must hold no entries for this id (the runtime refuses such a start).
    pub restore: bool,
    /// Wall clock (ms since the Unix epoch) stamped on signals before they are stepped.
    pub clock: WallClock,
    /// Creation time (for `register` and the state view).
    pub created_at_ms: i64,
    /// Effective options as JSON, for `register` and the state view.
    pub options: Value,
    pub(crate) shared: Shared,
}

/// What survives actor restarts besides the journal: the subscriber hub and bookkeeping.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) hub: Hub,
    /// Starts so far (a start after the first is a restart: always restored).
    pub(crate) starts: AtomicU64,
    /// Last seq known to be journaled.
    pub(crate) last_seq: AtomicU64,
}

impl std::fmt::Debug for ConversationArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationArgs")
            .field("conversation_id", &self.config.conversation_id)
            .field("restore", &self.restore)
            .field("llm_timeout_ms", &self.llm_timeout_ms)
            .finish_non_exhaustive()
    }
}

impl ConversationArgs {
    /// Arguments with the defaults: `llm_timeout_ms` 120 000, no temperature / token cap,
    /// `restore = true`, the system clock, created now, options `{}`.
    pub fn new(
        config: ConversationConfig,
        store: Arc<dyn ConversationStore>,
        tools: Arc<dyn ToolRunner>,
        model: Arc<dyn ModelClient>,
        telemetry: TelemetryHandle,
    ) -> Self {
        let clock: WallClock = Arc::new(system_now_ms);
        Self {
            config,
            store,
            tools,
            model,
            telemetry,
            llm_timeout_ms: 120_000,
            temperature: None,
            max_tokens: None,
            restore: true,
            created_at_ms: clock(),
            clock,
            options: json!({}),
            shared: Shared::default(),
        }
    }

    pub(crate) fn emit(&self, event: EventName, payload: Value) {
        self.telemetry.record(
            TelemetryEvent::new(event, payload).conversation(self.config.conversation_id.clone()),
        );
    }

    /// An event of the run (or signal) correlated by `correlation_id` (SPEC §1: a user
    /// message's correlation id flows to every event of its run).
    pub(crate) fn emit_correlated(
        &self,
        event: EventName,
        correlation_id: &CorrelationId,
        payload: Value,
    ) {
        self.telemetry.record(
            TelemetryEvent::new(event, payload)
                .conversation(self.config.conversation_id.clone())
                .correlation(correlation_id.clone()),
        );
    }
}

fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The conversation actor (stateless; everything lives in its arguments and state).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConversationActor;

/// A caller waiting for its queued signal to be applied.
enum AckWaiter {
    Cast(RpcReplyPort<Result<SignalAck, ConversationError>>),
    Call {
        reply: RpcReplyPort<Result<ConversationSnapshot, ConversationError>>,
        timeout: Duration,
    },
}

/// A caller waiting for the conversation to settle.
struct SettleWaiter {
    reply: RpcReplyPort<Result<ConversationSnapshot, ConversationError>>,
    duplicate: bool,
    _timer: AbortOnDropHandle<Result<(), ractor::MessagingErr<ConversationMsg>>>,
}

/// An internal batch whose append failed, kept for a retry.
struct Batch {
    signals: Vec<Signal>,
    report: Option<ModelReport>,
}

/// Mutable state of a conversation actor (not constructible outside this module).
pub struct ConversationActorState {
    core: Core,
}

pub(crate) struct Core {
    pub(crate) args: Arc<ConversationArgs>,
    pub(crate) conv: ConversationState,
    restored: bool,
    // INVARIANT: keys are ids of external signals still in `conv.queue` (bounded by its size).
    acks: HashMap<SignalId, AckWaiter>,
    settles: HashMap<u64, SettleWaiter>,
    next_waiter: u64,
    pub(crate) tools: HashMap<ToolCallId, ToolTask>,
    pub(crate) model: Option<ModelTask>,
    backlog: VecDeque<Batch>,
    backlog_attempts: u32,
    backlog_timer: Option<AbortOnDropHandle<Result<(), ractor::MessagingErr<ConversationMsg>>>>,
    stopping: bool,
}

fn applied(fx: &[Effect]) -> impl Iterator<Item = &ConversationEvent> {
    fx.iter().filter_map(|e| match e {
        Effect::Applied(ev) => Some(ev),
        _ => None,
    })
}

impl Actor for ConversationActor {
    type Msg = ConversationMsg;
    type State = ConversationActorState;
    type Arguments = Arc<ConversationArgs>;

    async fn pre_start(
        &self,
        _myself: ActorRef<ConversationMsg>,
        args: Arc<ConversationArgs>,
    ) -> Result<ConversationActorState, ActorProcessingErr> {
        let core = Core::start(args).await?;
        Ok(ConversationActorState { core })
    }

    async fn handle(
        &self,
        myself: ActorRef<ConversationMsg>,
        msg: ConversationMsg,
        state: &mut ConversationActorState,
    ) -> Result<(), ActorProcessingErr> {
        // The async arms are boxed: the actor's message loop holds this future inline for its
        // whole life, so an unboxed handler would cost every idle conversation its largest
        // arm's size (≈1.5 KiB); one small allocation per message is cheaper.
        let core = &mut state.core;
        match msg {
            ConversationMsg::Call {
                signal,
                timeout,
                reply,
            } => Box::pin(core.external(&myself, signal, AckWaiter::Call { reply, timeout })).await,
            ConversationMsg::Cast { signal, reply } => {
                Box::pin(core.external(&myself, signal, AckWaiter::Cast(reply))).await
            }
            ConversationMsg::State { reply } => {
                let _ = reply.send(core.state_view());
            }
            ConversationMsg::Projection { key, reply } => {
                let _ = reply.send(core.projection(key));
            }
            ConversationMsg::Diagnostics { reply } => {
                let _ = reply.send(core.diagnostics());
            }
            ConversationMsg::Subscribe { from_seq, reply } => {
                let _ = reply.send(core.subscribe(from_seq));
            }
            ConversationMsg::Stop { reason, reply } => {
                Box::pin(core.stop(&myself, reason, reply)).await
            }
            ConversationMsg::Crash => {
                panic!("failure injection: conversation crash requested")
            }
            ConversationMsg::Internal(internal) => match internal.0 {
                Internal::Drain => Box::pin(core.drain(&myself)).await,
                Internal::Signals { signals, report } => {
                    return Box::pin(core.internal(&myself, signals, report)).await;
                }
                Internal::ToolStarted { tool_call_id } => {
                    // Applies no signal: nothing to journal.
                    step_in_place(&mut core.conv, Input::ToolStarted { tool_call_id });
                }
                Internal::SettleTimeout { waiter } => core.settle_timeout(waiter),
                Internal::RetryBacklog => return Box::pin(core.retry_backlog(&myself)).await,
            },
        }
        Ok(())
    }
}

impl Core {
    /// Registers the conversation and builds its state: fresh, or folded from the journal with
    /// the interruption entries journaled and published (always on a restart).
    async fn start(args: Arc<ConversationArgs>) -> Result<Self, ActorProcessingErr> {
        let shared = &args.shared;
        let restart = shared.starts.fetch_add(1, Ordering::Relaxed) > 0;
        let id = args.config.conversation_id.clone();
        args.store
            .register(ConversationMeta {
                project_id: args.config.project_id.clone(),
                conversation_id: id.clone(),
                parent_conversation_id: args.config.parent_conversation_id.clone(),
                created_at_ms: args.created_at_ms,
                options: args.options.clone(),
            })
            .await?;
        let (conv, report) = if args.restore || restart {
            let entries = args.store.load(&id, 0, None).await?;
            let (conv, fx, report) = restore(args.config.clone(), entries, (args.clock)())?;
            let entries: Vec<ConversationEvent> = applied(&fx).cloned().collect();
            if !entries.is_empty() {
                args.store.append(entries.clone()).await?;
                shared.hub.publish(&entries);
            }
            (conv, Some(report))
        } else {
            (ConversationState::new(args.config.clone()), None)
        };
        shared.last_seq.store(conv.last_seq, Ordering::Relaxed);
        let restored = report.as_ref().is_some_and(|r| r.events_replayed > 0);
        match report.filter(|r| r.events_replayed > 0) {
            Some(r) => args.emit(
                EventName::ConversationRestored,
                json!({
                    "events_replayed": r.events_replayed,
                    "interrupted_tool_calls": r.interrupted_tool_calls,
                }),
            ),
            None => args.emit(
                EventName::ConversationStarted,
                json!({
                    "parent_conversation_id": args.config.parent_conversation_id,
                    "restored": false,
                }),
            ),
        }
        Ok(Self {
            args,
            conv,
            restored,
            acks: HashMap::new(),
            settles: HashMap::new(),
            next_waiter: 0,
            tools: HashMap::new(),
            model: None,
            backlog: VecDeque::new(),
            backlog_attempts: 0,
            backlog_timer: None,
            stopping: false,
        })
    }

    fn stamp(&self, mut signal: Signal) -> Signal {
        signal.at_ms = (self.args.clock)();
        signal
    }

    /// The write-ahead step: checkpoint, step every input, append the applied entries as one
    /// batch, then commit — or roll back and hand the effects back with the store error.
    async fn apply(
        &mut self,
        inputs: Vec<Input>,
    ) -> Result<Vec<Effect>, (StoreError, Vec<Effect>)> {
        let may_resume = inputs.iter().any(|i| self.may_resume(i));
        self.conv.offered_tool_count = self.args.tools.offered_tool_count();
        let checkpoint = Checkpoint::begin(&mut self.conv, may_resume);
        let mut fx = Vec::new();
        for input in inputs {
            fx.extend(step_in_place(&mut self.conv, input));
        }
        let entries: Vec<ConversationEvent> = applied(&fx).cloned().collect();
        if !entries.is_empty() {
            if let Err(e) = self.args.store.append(entries).await {
                let forget: Vec<SignalId> = applied(&fx)
                    .filter(|ev| ev.signal.kind.is_external())
                    .map(|ev| ev.signal.id.clone())
                    .collect();
                checkpoint.rollback(&mut self.conv, &forget);
                tracing::warn!(
                    conversation_id = %self.conv.config.conversation_id,
                    code = e.code(),
                    "conversation append failed; step rolled back"
                );
                return Err((e, fx));
            }
            self.args
                .shared
                .last_seq
                .store(self.conv.last_seq, Ordering::Relaxed);
        }
        checkpoint.commit(&mut self.conv);
        Ok(fx)
    }

    fn may_resume(&self, input: &Input) -> bool {
        match input {
            Input::Drain => self
                .conv
                .queue
                .iter()
                .take(self.conv.config.max_drain_steps.max(1))
                .any(|s| s.kind == SignalType::Resume),
            Input::External(s) | Input::Internal(s) => s.kind == SignalType::Resume,
            Input::ToolStarted { .. } => false,
        }
    }

    /// call / cast: validate, step into the inbox (a cancel is applied at once so it
    /// interleaves with long drains, SPEC §11.4), reply or park the caller.
    async fn external(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        signal: Signal,
        waiter: AckWaiter,
    ) {
        if self.stopping {
            return waiter.fail(ConversationError::Stopped {
                conversation_id: self.conv.config.conversation_id.to_string(),
            });
        }
        if !signal.kind.is_external() {
            return waiter.fail(ConversationError::ExternalTypeNotAllowed {
                r#type: signal.kind.as_str().to_owned(),
            });
        }
        let signal = self.stamp(signal);
        let (id, correlation_id) = (signal.id.clone(), signal.correlation_id.clone());
        let input = if signal.kind == SignalType::Cancel {
            Input::Internal(signal)
        } else {
            Input::External(signal)
        };
        let fx = match self.apply(vec![input]).await {
            Ok(fx) => fx,
            Err((e, fx)) => {
                waiter.fail(journal_unavailable(&e));
                self.fail(myself, fx, &e);
                return;
            }
        };
        let mut waiter = Some(waiter);
        for e in &fx {
            match e {
                Effect::Duplicate { signal_id } if *signal_id == id => {
                    let seq = self.seq_of(&id);
                    let correlation_id = self
                        .conv
                        .timeline
                        .iter()
                        .rev()
                        .find(|ev| ev.signal.id == id)
                        .map_or(correlation_id.clone(), |ev| {
                            ev.signal.correlation_id.clone()
                        });
                    if let Some(w) = waiter.take() {
                        self.acknowledge(
                            myself,
                            w,
                            SignalAck {
                                signal_id: id.clone(),
                                correlation_id,
                                seq,
                                duplicate: true,
                            },
                        );
                    }
                }
                Effect::QueueFull {
                    signal_id,
                    queue_size,
                    max_queue_size,
                } if *signal_id == id => {
                    self.args.emit(
                        EventName::ConversationQueueOverflow,
                        json!({
                            "queue_size": queue_size,
                            "max_queue_size": max_queue_size,
                            "dropped_signal_id": signal_id,
                        }),
                    );
                    if let Some(w) = waiter.take() {
                        w.fail(ConversationError::QueueFull {
                            queue_size: *queue_size,
                            max_queue_size: *max_queue_size,
                        });
                    }
                }
                _ => {}
            }
        }
        if let Some(w) = waiter {
            self.acks.insert(id, w);
        }
        self.perform(myself, fx, None);
    }

    fn seq_of(&self, id: &SignalId) -> Option<u64> {
        self.conv
            .timeline
            .iter()
            .rev()
            .find(|ev| ev.signal.id == *id)
            .map(|ev| ev.seq)
    }

    /// A signal is durably applied (or was already): answer a cast, or start waiting for the
    /// conversation to settle for a call.
    fn acknowledge(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        waiter: AckWaiter,
        ack: SignalAck,
    ) {
        match waiter {
            AckWaiter::Cast(reply) => {
                let _ = reply.send(Ok(ack));
            }
            AckWaiter::Call { reply, timeout } => {
                if self.conv.is_settled() {
                    let _ = reply.send(Ok(ConversationSnapshot::of(&self.conv, ack.duplicate)));
                    return;
                }
                let waiter = self.next_waiter;
                self.next_waiter += 1;
                let timer = myself.send_after(timeout, move || {
                    ConversationMsg::internal(Internal::SettleTimeout { waiter })
                });
                self.settles.insert(
                    waiter,
                    SettleWaiter {
                        reply,
                        duplicate: ack.duplicate,
                        _timer: AbortOnDropHandle::new(timer),
                    },
                );
            }
        }
    }

    fn settle_timeout(&mut self, waiter: u64) {
        if let Some(w) = self.settles.remove(&waiter) {
            let _ = w
                .reply
                .send(Ok(ConversationSnapshot::of(&self.conv, w.duplicate)));
        }
        self.release_idle_capacity();
    }

    fn check_settled(&mut self) {
        if self.settles.is_empty() || !self.conv.is_settled() {
            return;
        }
        for (_, w) in self.settles.drain() {
            let _ = w
                .reply
                .send(Ok(ConversationSnapshot::of(&self.conv, w.duplicate)));
        }
    }

    /// Performs the effects of a committed step, in order: publish, acknowledge, then the
    /// work (drain, model, tools).
    fn perform(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        fx: Vec<Effect>,
        report: Option<ModelReport>,
    ) {
        self.args.shared.hub.publish(applied(&fx));
        let mut late = 0u64;
        for e in fx {
            match e {
                Effect::Applied(ev) => self.on_applied(myself, &ev, report.as_ref()),
                Effect::Duplicate { .. } | Effect::QueueFull { .. } => {} // answered by `external`
                Effect::ScheduleDrain => {
                    let _ = myself.send_message(ConversationMsg::internal(Internal::Drain));
                }
                Effect::RequestModel {
                    run_id,
                    step,
                    attempt,
                    delay_ms,
                    ..
                } => self.start_model(myself, run_id, step, attempt, delay_ms),
                Effect::AbortModel { run_id } => {
                    if self.model.as_ref().is_some_and(|m| m.run_id == run_id) {
                        self.model = None; // aborts the task; its output never arrives
                    }
                }
                Effect::ExecuteTool(call) => self.start_tool(myself, call),
                Effect::CancelTool { tool_call_id, .. } => {
                    if let Some(task) = self.tools.get(&tool_call_id) {
                        task.cancel();
                    }
                }
                Effect::StopSubagent { child_id, reason } => {
                    // Sub-agents are spawned and stopped by the runtime's sub-agent wiring.
                    tracing::debug!(%child_id, %reason, "sub-agent stop requested");
                }
                Effect::LateResultDiscarded { .. } => late += 1,
            }
        }
        if late > 0 {
            let telemetry = self.args.telemetry.clone();
            tokio::spawn(async move {
                let _ = telemetry
                    .add_counter("conversation.late_results_discarded", late)
                    .await;
            });
        }
        self.check_settled();
        self.release_idle_capacity();
    }

    /// Hash maps keep their capacity when emptied; an idle conversation should not (SPEC: ≤ 16
    /// KiB per idle conversation). Re-allocating on the next busy period is cheap next to the
    /// journal append it accompanies.
    fn release_idle_capacity(&mut self) {
        if self.acks.is_empty() && self.acks.capacity() > 0 {
            self.acks = HashMap::new();
        }
        if self.settles.is_empty() && self.settles.capacity() > 0 {
            self.settles = HashMap::new();
        }
        if self.tools.is_empty() && self.tools.capacity() > 0 {
            self.tools = HashMap::new();
        }
    }

    fn on_applied(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        ev: &ConversationEvent,
        report: Option<&ModelReport>,
    ) {
        let sig = &ev.signal;
        if let Some(waiter) = self.acks.remove(&sig.id) {
            self.args.emit_correlated(
                EventName::ConversationEventIngested,
                &sig.correlation_id,
                json!({
                    "event_type": sig.kind.as_str(),
                    "signal_id": sig.id,
                    "correlation_id": sig.correlation_id,
                    "conv_seq": ev.seq,
                }),
            );
            let ack = SignalAck {
                signal_id: sig.id.clone(),
                correlation_id: sig.correlation_id.clone(),
                seq: Some(ev.seq),
                duplicate: false,
            };
            self.acknowledge(myself, waiter, ack);
        }
        if sig.kind == SignalType::ToolCancelled {
            // SPEC §11.6: the event carries the cancel signal's correlation id and the call's
            // own as `call_correlation_id` (the execution path stays silent for these).
            let mut event =
                TelemetryEvent::new(EventName::ToolCancelled, Value::Object(sig.data.clone()))
                    .conversation(self.args.config.conversation_id.clone())
                    .correlation(sig.correlation_id.clone());
            if let Some(name) = sig.str_field("name") {
                event = event.tool(name);
            }
            self.args.telemetry.record(event);
        }
        let Some(report) = report else {
            return;
        };
        match sig.kind {
            SignalType::LlmCompleted => self.args.emit_correlated(
                EventName::LlmCompleted,
                &sig.correlation_id,
                json!({
                    "run_id": report.run_id, "step": report.step,
                    "model": sig.data.get("model"),
                    "finish_reason": sig.data.get("finish_reason"),
                    "tool_call_count": sig.data.get("tool_call_count"),
                    "duration_ms": report.duration_ms,
                    "usage": sig.data.get("usage"),
                }),
            ),
            SignalType::LlmFailed => self.args.emit_correlated(
                EventName::LlmFailed,
                &sig.correlation_id,
                json!({
                    "run_id": report.run_id, "step": report.step,
                    "reason": sig.data.get("reason"),
                    "retryable": sig.data.get("retryable"),
                    "attempt": report.attempt,
                }),
            ),
            _ => {}
        }
    }

    /// A step failed its append (already rolled back): the external signals it applied fail
    /// `journal_unavailable`; a drain pass still re-arms itself for what is left in the inbox.
    fn fail(&mut self, myself: &ActorRef<ConversationMsg>, fx: Vec<Effect>, err: &StoreError) {
        for e in fx {
            match e {
                Effect::Applied(ev) => {
                    if let Some(w) = self.acks.remove(&ev.signal.id) {
                        w.fail(journal_unavailable(err));
                    }
                }
                Effect::ScheduleDrain => {
                    let _ = myself.send_message(ConversationMsg::internal(Internal::Drain));
                }
                _ => {}
            }
        }
    }

    async fn drain(&mut self, myself: &ActorRef<ConversationMsg>) {
        match self.apply(vec![Input::Drain]).await {
            Ok(fx) => self.perform(myself, fx, None),
            Err((e, fx)) => self.fail(myself, fx, &e),
        }
    }

    /// Background results (model output, tool outcomes), applied in arrival order; while the
    /// journal refuses them they wait in a bounded backlog.
    async fn internal(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        signals: Vec<Signal>,
        report: Option<ModelReport>,
    ) -> Result<(), ActorProcessingErr> {
        for sig in &signals {
            if matches!(sig.kind, SignalType::ToolCompleted | SignalType::ToolFailed)
                && let Some(id) = sig.tool_call_id()
            {
                self.tools.remove(&id); // the task has returned
            }
        }
        if let Some(r) = &report
            && self
                .model
                .as_ref()
                .is_some_and(|m| m.is(&r.run_id, r.step, r.attempt))
        {
            self.model = None; // the task has returned
        }
        if self.stopping {
            return Ok(());
        }
        let signals: Vec<Signal> = signals.into_iter().map(|s| self.stamp(s)).collect();
        let batch = Batch { signals, report };
        if !self.backlog.is_empty() {
            if self.backlog.len() >= BACKLOG_LIMIT {
                return Err(backlog_overflow());
            }
            self.backlog.push_back(batch);
            return Ok(());
        }
        if let Err(batch) = self.apply_batch(myself, batch).await {
            self.backlog.push_front(batch);
            self.arm_backlog_retry(myself);
        }
        Ok(())
    }

    async fn apply_batch(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        batch: Batch,
    ) -> Result<(), Batch> {
        let inputs = batch.signals.iter().cloned().map(Input::Internal).collect();
        match self.apply(inputs).await {
            Ok(fx) => {
                self.perform(myself, fx, batch.report);
                Ok(())
            }
            Err((e, fx)) => {
                self.fail(myself, fx, &e);
                Err(batch)
            }
        }
    }

    fn arm_backlog_retry(&mut self, myself: &ActorRef<ConversationMsg>) {
        let delay = Duration::from_millis((100u64 << self.backlog_attempts.min(5)).min(2000));
        let timer = myself.send_after(delay, || ConversationMsg::internal(Internal::RetryBacklog));
        self.backlog_timer = Some(AbortOnDropHandle::new(timer));
    }

    async fn retry_backlog(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
    ) -> Result<(), ActorProcessingErr> {
        self.backlog_timer = None;
        while let Some(batch) = self.backlog.pop_front() {
            if let Err(batch) = self.apply_batch(myself, batch).await {
                self.backlog.push_front(batch);
                self.backlog_attempts += 1;
                if self.backlog_attempts >= BACKLOG_MAX_ATTEMPTS {
                    // Crash-only: the supervisor rebuilds the conversation from the journal.
                    return Err(backlog_overflow());
                }
                self.arm_backlog_retry(myself);
                return Ok(());
            }
        }
        self.backlog_attempts = 0;
        Ok(())
    }

    fn subscribe(&self, from_seq: Option<u64>) -> ConversationSubscription {
        // Taken together inside the handler: nothing is published between them.
        let rx = self.args.shared.hub.subscribe();
        ConversationSubscription::new(
            self.args.store.clone(),
            self.conv.config.conversation_id.clone(),
            Some(self.args.telemetry.clone()),
            rx,
            self.conv.last_seq,
            from_seq,
        )
    }

    /// Cancel (when there is something to cancel), journal `conversation.stopped`, record the
    /// stop, end subscriptions, answer everyone, stop normally.
    async fn stop(
        &mut self,
        myself: &ActorRef<ConversationMsg>,
        reason: StopReason,
        reply: RpcReplyPort<Result<(), ConversationError>>,
    ) {
        if self.stopping {
            let _ = reply.send(Ok(()));
            return;
        }
        let mut inputs = Vec::new();
        let busy = self.conv.active_run.is_some()
            || !self.conv.pending_tool_calls.is_empty()
            || !self.conv.pending_subagents.is_empty();
        if busy {
            let cancel =
                Signal::cancel(Some(reason.cancel_reason())).with_source("/codeward/runtime");
            inputs.push(Input::Internal(self.stamp(cancel)));
        }
        let stopped = Signal::derived(
            SignalType::Stopped,
            json!({ "reason": reason.as_str() }),
            &CorrelationId::generate(),
            None,
        );
        inputs.push(Input::Internal(self.stamp(stopped)));
        match self.apply(inputs).await {
            Ok(fx) => self.perform(myself, fx, None),
            Err((e, fx)) => {
                self.fail(myself, fx, &e);
                let _ = reply.send(Err(journal_unavailable(&e)));
                return;
            }
        }
        self.stopping = true;
        let id = self.conv.config.conversation_id.clone();
        let at_ms = (self.args.clock)();
        if let Err(e) = self
            .args
            .store
            .mark_stopped(&id, reason.as_str(), at_ms)
            .await
        {
            // The `conversation.stopped` entry is journaled; only the bookkeeping row is late.
            tracing::warn!(conversation_id = %id, code = e.code(), "mark_stopped failed");
        }
        self.args.emit(
            EventName::ConversationStopped,
            json!({ "reason": reason.as_str() }),
        );
        self.args.shared.hub.close();
        let stopped = ConversationError::Stopped {
            conversation_id: id.to_string(),
        };
        for (_, w) in self.acks.drain() {
            w.fail(stopped.clone());
        }
        for (_, w) in self.settles.drain() {
            let _ = w
                .reply
                .send(Ok(ConversationSnapshot::of(&self.conv, w.duplicate)));
        }
        self.tools.clear(); // fires every token, aborts the tasks
        self.model = None;
        self.backlog.clear();
        let _ = reply.send(Ok(()));
        myself.stop(Some(reason.as_str().to_owned()));
    }

    fn state_view(&self) -> ConversationStateView {
        ConversationStateView {
            snapshot: ConversationSnapshot::of(&self.conv, false),
            run_history: self.conv.run_history.iter().cloned().collect(),
            created_at_ms: self.args.created_at_ms,
            created_at: codeward_assets::format_rfc3339_ms(self.args.created_at_ms),
            parent_conversation_id: self.conv.config.parent_conversation_id.clone(),
            restored: self.restored,
            config: self.conv.config.clone(),
            options: self.args.options.clone(),
        }
    }

    /// The SPEC §9.2 diagnostics: the reducer's fields plus what only the actor knows.
    fn core_diagnostics(&self) -> ConversationDiagnostics {
        let mut d = self.conv.diagnostics();
        d.subscriber_count = self.args.shared.hub.subscriber_count();
        d.restored = self.restored;
        d
    }

    /// A projection; `diagnostics` carries the actor's fields too.
    fn projection(&self, key: ProjectionKey) -> Projection {
        match key {
            ProjectionKey::Diagnostics => Projection::Diagnostics(self.core_diagnostics()),
            other => self.conv.project(other),
        }
    }

    fn diagnostics(&self) -> ConversationActorDiagnostics {
        ConversationActorDiagnostics {
            core: self.core_diagnostics(),
            tool_tasks: self.tools.len(),
            model_in_flight: self.model.is_some(),
        }
    }
}

impl AckWaiter {
    fn fail(self, err: ConversationError) {
        match self {
            Self::Cast(reply) => {
                let _ = reply.send(Err(err));
            }
            Self::Call { reply, .. } => {
                let _ = reply.send(Err(err));
            }
        }
    }
}

fn journal_unavailable(e: &StoreError) -> ConversationError {
    ConversationError::JournalUnavailable {
        reason: e.message.clone(),
    }
}

fn backlog_overflow() -> ActorProcessingErr {
    Box::new(ConversationError::JournalUnavailable {
        reason: "internal results could not be journaled; rebuilding from the journal".into(),
    })
}
