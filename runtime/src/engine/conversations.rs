//! The conversation calls of the facade (SPEC §2.2, §11, §12.2): start (fresh or restored from
//! the journal), stop, call / cast, state, projections, subscriptions, diagnostics and the
//! incident timeline (§9.3); plus the journal operations (backup, check, compact) and the
//! conversation / journal blocks of the project diagnostics.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use codeward_actors::conversation::{ConversationConfig, ConversationState};
use codeward_actors::conversation::{Projection, ProjectionKey, Signal, SignalType, replay};
use codeward_actors::conversation_actor::{
    ConversationActorDiagnostics, ConversationError, ConversationSnapshot, ConversationStateView,
    ConversationSubscription, SignalAck, StopReason,
};
use codeward_actors::ids::{ConversationId, CorrelationId, ProjectId};
use codeward_actors::journal::{
    BackupReport, CompactionReport, EventQuery, IntegrityReport, JournalError,
};
use codeward_actors::supervision::SupervisorMsg;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::Engine;
use crate::conversations::{ArgsInputs, ConversationEntry, build_args};
use crate::error::{Error, Result};
use crate::project::{ProjectRuntime, names};
use crate::types::{
    ConversationOptions, IncidentTimeline, TimelineEntry, TimelineQuery, rfc3339_ms,
};

/// Entries read from the journal per timeline query (the newest ones).
const TIMELINE_SCAN: usize = 10_000;
/// How long `stop_conversation` waits for the supervisor to remove the stopped child.
const STOP_WAIT: Duration = Duration::from_secs(2);

pub(crate) fn conversation_error(e: ConversationError) -> Error {
    match e {
        ConversationError::QueueFull {
            queue_size,
            max_queue_size,
        } => Error::ConversationQueueFull {
            queue_size,
            max_queue_size,
        },
        ConversationError::JournalUnavailable { reason } => Error::JournalUnavailable { reason },
        ConversationError::ExternalTypeNotAllowed { r#type } => {
            Error::ExternalTypeNotAllowed { kind: r#type }
        }
        ConversationError::Unavailable { conversation_id } => Error::ProjectUnavailable {
            component: format!("conversation:{conversation_id}"),
        },
        ConversationError::Timeout { timeout_ms } => Error::ProjectUnavailable {
            component: format!("conversation (no answer within {timeout_ms} ms)"),
        },
        ConversationError::Stopped { conversation_id } => {
            Error::ConversationNotFound { conversation_id }
        }
        ConversationError::AlreadyStarted { conversation_id } => {
            Error::ConversationAlreadyStarted { conversation_id }
        }
        ConversationError::StartFailed { reason, .. } => Error::JournalUnavailable { reason },
        #[allow(unreachable_patterns)]
        other => Error::ProjectUnavailable {
            component: other.to_string(),
        },
    }
}

pub(crate) fn journal_error(e: JournalError) -> Error {
    Error::JournalUnavailable {
        reason: e.to_string(),
    }
}

fn parse_conversation_id(raw: &str) -> Result<ConversationId> {
    ConversationId::parse(raw).map_err(|e| Error::InvalidConversationId {
        reason: e.reason.as_str().to_owned(),
    })
}

/// Re-validates a caller's signal as external input (types, data, ids, content size).
fn external(signal: Signal, source: &str) -> Result<Signal> {
    if !signal.kind.is_external() {
        return Err(Error::ExternalTypeNotAllowed {
            kind: signal.kind.as_str().to_owned(),
        });
    }
    let value = serde_json::to_value(&signal).map_err(|e| Error::InvalidSignal {
        reason: format!("unserializable: {e}"),
    })?;
    Ok(Signal::from_external_json(value, source)?)
}

/// Starts (or restores) a conversation under the project's conversation supervisor.
pub(crate) async fn start(
    project: &Arc<ProjectRuntime>,
    id: ConversationId,
    options: ConversationOptions,
    restore: bool,
    created_at_ms: i64,
) -> Result<ConversationId> {
    let model_name = options
        .model_client
        .clone()
        .unwrap_or_else(|| project.options.model_client.clone());
    let Some(model) = project.model_clients.get(&model_name).cloned() else {
        return Err(Error::InvalidRuntimeOpt {
            key: "model_client".into(),
            reason: "unknown_model_client".into(),
            details: json!({ "model_client": model_name }),
        });
    };
    let inputs = ArgsInputs {
        project: project.self_ref.clone(),
        journal: project.journal.clone(),
        model,
    };
    let args = build_args(project, &inputs, &id, &options, restore, created_at_ms);
    let quota = project.options.tool_max_concurrency_per_conversation;
    let sup = project
        .registry
        .handle::<SupervisorMsg>(names::CONVERSATIONS);
    let handle = project
        .directory
        .start_in(&sup, &project.registry, args)
        .await
        .map_err(conversation_error)?;
    project.conversations.insert(
        id.clone(),
        Arc::new(ConversationEntry {
            quota: Arc::new(Semaphore::new(quota)),
            quota_limit: quota,
            allow_tools: options.allow_tools.clone(),
            handle,
            options,
            created_at_ms,
        }),
    );
    Ok(id)
}

/// Start arguments for every live conversation, for a restart of the conversation supervisor
/// (each is rebuilt from the journal).
pub(crate) fn restart_args(
    project: &Arc<ProjectRuntime>,
) -> Vec<codeward_actors::conversation_actor::ConversationArgs> {
    project
        .conversations
        .iter()
        .filter_map(|e| {
            let entry = e.value();
            let name = entry
                .options
                .model_client
                .clone()
                .unwrap_or_else(|| project.options.model_client.clone());
            let model = project.model_clients.get(&name)?.clone();
            let inputs = ArgsInputs {
                project: project.self_ref.clone(),
                journal: project.journal.clone(),
                model,
            };
            Some(build_args(
                project,
                &inputs,
                e.key(),
                &entry.options,
                true,
                entry.created_at_ms,
            ))
        })
        .collect()
}

/// Restores every conversation the journal says was live at the last stop or crash.
pub(crate) async fn restore_all(project: &Arc<ProjectRuntime>) {
    let Ok(rows) = project.journal.live_conversations().await else {
        return;
    };
    for row in rows {
        let options: ConversationOptions =
            serde_json::from_value(row.options_json.clone()).unwrap_or_default();
        let id = row.conversation_id.clone();
        if let Err(e) = start(project, id.clone(), options, true, row.created_at_ms).await {
            tracing::warn!(target: "codeward::runtime", conversation = %id, error = %e, "restore failed");
        }
    }
}

/// Stops every live conversation (project stop).
pub(crate) async fn stop_all(project: &Arc<ProjectRuntime>, reason: StopReason) {
    let entries: Vec<(ConversationId, Arc<ConversationEntry>)> = project
        .conversations
        .iter()
        .map(|e| (e.key().clone(), e.value().clone()))
        .collect();
    let stops = entries.iter().map(|(_, e)| e.handle.stop(reason));
    let _ = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(stops)).await;
    project.conversations.clear();
}

/// A stopped (journal-only) conversation folded back into a state, effects suppressed.
async fn journaled_state(
    project: &ProjectRuntime,
    id: &ConversationId,
) -> Result<ConversationState> {
    let row = project
        .journal
        .conversation(id)
        .await
        .map_err(journal_error)?
        .ok_or_else(|| Error::ConversationNotFound {
            conversation_id: id.to_string(),
        })?;
    let _ = row;
    let mut config = ConversationConfig::new(project.id.clone(), id.clone());
    config.timeline_window = project.options.conversation_timeline_window;
    let mut state = ConversationState::new(config);
    let entries = project
        .journal
        .signals(id, 0, None)
        .await
        .map_err(journal_error)?;
    for entry in entries {
        replay(&mut state, entry).map_err(|e| Error::JournalUnavailable {
            reason: e.to_string(),
        })?;
    }
    Ok(state)
}

impl Engine {
    fn conversation(
        &self,
        p: &ProjectId,
        c: &ConversationId,
    ) -> Result<(Arc<ProjectRuntime>, Option<Arc<ConversationEntry>>)> {
        let project = self.project(p)?;
        let entry = project.conversations.get(c).map(|e| e.value().clone());
        Ok((project, entry))
    }

    fn live(
        &self,
        p: &ProjectId,
        c: &ConversationId,
    ) -> Result<(Arc<ProjectRuntime>, Arc<ConversationEntry>)> {
        let (project, entry) = self.conversation(p, c)?;
        let entry = entry.ok_or_else(|| Error::ConversationNotFound {
            conversation_id: c.to_string(),
        })?;
        Ok((project, entry))
    }

    /// Starts a conversation; a journaled id is restored (or refused with `restore = false`).
    pub async fn start_conversation(
        &self,
        p: &ProjectId,
        options: ConversationOptions,
    ) -> Result<ConversationId> {
        let project = self.project(p)?;
        let id = match options.conversation_id.as_deref().map(str::trim) {
            None | Some("") => ConversationId::generate(),
            Some(raw) => parse_conversation_id(raw)?,
        };
        if project.conversations.contains_key(&id) {
            return Err(Error::ConversationAlreadyStarted {
                conversation_id: id.to_string(),
            });
        }
        let journaled = project
            .journal
            .conversation(&id)
            .await
            .map_err(journal_error)?;
        if journaled.is_some() && !options.restore {
            return Err(Error::ConversationAlreadyStarted {
                conversation_id: id.to_string(),
            });
        }
        let created_at_ms = journaled
            .as_ref()
            .map_or_else(|| project.now_ms(), |r| r.created_at_ms);
        start(&project, id, options, journaled.is_some(), created_at_ms).await
    }

    /// Stops a conversation: cancels its work, journals `conversation.stopped`, ends its
    /// subscriptions.
    pub async fn stop_conversation(&self, p: &ProjectId, c: &ConversationId) -> Result<()> {
        let (project, entry) = self.live(p, c)?;
        let r = entry.handle.stop(StopReason::Requested).await;
        project.conversations.remove(c);
        // The supervisor removes the stopped child just after the answer: wait (bounded) so a
        // `start_conversation` right after this returns restores it instead of finding it live.
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        while project.registry.is_up(c.as_str()) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        r.map_err(conversation_error)
    }

    /// Appends an external signal durably, then waits until the conversation is settled or
    /// `timeout` (default 30 s) passes (`settled: false`, not an error).
    pub async fn conversation_call(
        &self,
        p: &ProjectId,
        c: &ConversationId,
        signal: Signal,
        timeout: Option<Duration>,
    ) -> Result<ConversationSnapshot> {
        let (_, entry) = self.live(p, c)?;
        let signal = external(signal, "/codeward/api")?;
        entry
            .handle
            .call(signal, timeout)
            .await
            .map_err(conversation_error)
    }

    /// Appends an external signal durably and returns its ack.
    pub async fn conversation_cast(
        &self,
        p: &ProjectId,
        c: &ConversationId,
        signal: Signal,
    ) -> Result<SignalAck> {
        let (_, entry) = self.live(p, c)?;
        let signal = external(signal, "/codeward/api")?;
        entry.handle.cast(signal).await.map_err(conversation_error)
    }

    /// The conversation's state (live; a stopped one is folded from the journal).
    pub async fn conversation_state(
        &self,
        p: &ProjectId,
        c: &ConversationId,
    ) -> Result<ConversationStateView> {
        let (project, entry) = self.conversation(p, c)?;
        if let Some(entry) = entry {
            return entry.handle.state().await.map_err(conversation_error);
        }
        let state = journaled_state(&project, c).await?;
        let row = project
            .journal
            .conversation(c)
            .await
            .map_err(journal_error)?;
        Ok(ConversationStateView {
            snapshot: ConversationSnapshot {
                project_id: project.id.clone(),
                conversation_id: c.clone(),
                status: state.status,
                active_run: state.diagnostics().active_run,
                queue_size: 0,
                pending_tool_calls: state.pending_calls(),
                pending_subagents: state.pending_subagents.values().cloned().collect(),
                last_seq: state.last_seq,
                settled: state.is_settled(),
                duplicate: false,
            },
            run_history: state.run_history.iter().cloned().collect(),
            created_at_ms: row.as_ref().map_or(0, |r| r.created_at_ms),
            created_at: rfc3339_ms(row.as_ref().map_or(0, |r| r.created_at_ms)),
            parent_conversation_id: row.as_ref().and_then(|r| r.parent_conversation_id.clone()),
            restored: false,
            config: state.config.clone(),
            options: row.map_or(Value::Null, |r| r.options_json),
        })
    }

    /// A projection (`timeline`, `llm_context`, `diagnostics`, `pending_tool_calls`,
    /// `subagent_status`); stopped conversations are projected from the journal.
    pub async fn conversation_projection(
        &self,
        p: &ProjectId,
        c: &ConversationId,
        key: ProjectionKey,
    ) -> Result<Projection> {
        let (project, entry) = self.conversation(p, c)?;
        if let Some(entry) = entry {
            return entry
                .handle
                .projection(key)
                .await
                .map_err(conversation_error);
        }
        Ok(journaled_state(&project, c).await?.project(key))
    }

    /// Every applied signal as it is applied (from `from_seq` in the journal, then live).
    pub async fn subscribe_conversation(
        &self,
        p: &ProjectId,
        c: &ConversationId,
        from_seq: Option<u64>,
    ) -> Result<ConversationSubscription> {
        let (_, entry) = self.live(p, c)?;
        entry
            .handle
            .subscribe(from_seq)
            .await
            .map_err(conversation_error)
    }

    /// The conversation's diagnostics (SPEC §9.2).
    pub async fn conversation_diagnostics(
        &self,
        p: &ProjectId,
        c: &ConversationId,
    ) -> Result<ConversationActorDiagnostics> {
        let (project, entry) = self.conversation(p, c)?;
        if let Some(entry) = entry {
            return entry.handle.diagnostics().await.map_err(conversation_error);
        }
        let state = journaled_state(&project, c).await?;
        Ok(ConversationActorDiagnostics {
            core: state.diagnostics(),
            tool_tasks: 0,
            model_in_flight: false,
        })
    }

    /// The incident timeline of a conversation (SPEC §9.3): live signals, journaled signals
    /// and telemetry events (ring and journal), filtered, sorted, the last `limit` kept.
    pub async fn incident_timeline(
        &self,
        p: &ProjectId,
        c: &ConversationId,
        q: TimelineQuery,
    ) -> Result<IncidentTimeline> {
        let (project, entry) = self.conversation(p, c)?;
        let limit = match q.limit {
            0 => 100,
            n => n.min(500),
        };
        let filter = q
            .correlation_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let redactor = project.redactor();
        let mut entries: Vec<TimelineEntry> = Vec::new();
        // Conversation signals: the live window, and the journal for the rest.
        let mut live_first_seq = u64::MAX;
        if let Some(entry) = &entry
            && let Ok(Projection::Timeline(t)) =
                entry.handle.projection(ProjectionKey::Timeline).await
        {
            live_first_seq = t.first_seq.max(1);
            if t.entries.is_empty() {
                live_first_seq = u64::MAX;
            }
            for e in t.entries {
                entries.push(signal_entry("conversation", c, &e.signal, e.seq, &redactor));
            }
        }
        let journaled = project
            .journal
            .signals(c, 0, Some(TIMELINE_SCAN))
            .await
            .map_err(journal_error)?;
        if entry.is_none() && journaled.is_empty() {
            let row = project
                .journal
                .conversation(c)
                .await
                .map_err(journal_error)?;
            if row.is_none() {
                return Err(Error::ConversationNotFound {
                    conversation_id: c.to_string(),
                });
            }
        }
        for e in journaled.iter().filter(|e| e.seq < live_first_seq) {
            entries.push(signal_entry("journal", c, &e.signal, e.seq, &redactor));
        }
        // Telemetry: ring (live) and journal, de-duplicated by seq.
        let mut seen = std::collections::BTreeSet::new();
        let corr = filter.as_deref().and_then(|s| CorrelationId::parse(s).ok());
        // Read your writes: what was emitted before this call is recorded and journaled first.
        let _ = tokio::time::timeout(Duration::from_secs(2), project.telemetry.flush()).await;
        let _ = project.journal.flush_events().await;
        let journaled_events = project
            .journal
            .events(EventQuery {
                conversation_id: Some(c.clone()),
                correlation_id: corr,
                limit: TIMELINE_SCAN,
            })
            .await
            .unwrap_or_default();
        for ev in journaled_events {
            if seen.insert(ev.seq) {
                entries.push(event_entry(&ev, &redactor));
            }
        }
        for ring in recent_ring_of(&project, c) {
            if seen.insert(ring.seq) {
                entries.push(ring_entry(&ring, &redactor));
            }
        }
        entries.retain(|e| e.event != "conversation.event_ingested");
        if let Some(f) = &filter {
            entries.retain(|e| e.correlation_id.as_deref() == Some(f.as_str()));
        }
        let rank = |s: &str| match s {
            "conversation" => 0,
            "journal" => 1,
            _ => 2,
        };
        entries.sort_by(|a, b| {
            (a.at_ms, rank(&a.source), a.seq).cmp(&(b.at_ms, rank(&b.source), b.seq))
        });
        let total = entries.len();
        let mut keep = entries.split_off(total.saturating_sub(limit));
        // Correlation ids are caller input too: redacted on the way out, after filtering.
        let redact_id = |id: &str| match redactor.redact(&Value::String(id.to_owned())) {
            Value::String(s) => s,
            _ => "[REDACTED]".to_owned(),
        };
        for e in &mut keep {
            if let Some(id) = &e.correlation_id {
                e.correlation_id = Some(redact_id(id));
            }
        }
        Ok(IncidentTimeline {
            project_id: project.id.to_string(),
            conversation_id: c.to_string(),
            correlation_id: filter.as_deref().map(redact_id),
            limit,
            total_entries: total,
            truncated: total > keep.len(),
            entries: keep,
        })
    }

    /// Online backup of the project journal to `dest` (mode 0600).
    pub async fn backup_journal(&self, p: &ProjectId, dest: &Path) -> Result<BackupReport> {
        let project = self.project(p)?;
        project.journal.backup(dest).await.map_err(journal_error)
    }

    /// `quick_check` (or with `full`, `integrity_check`) of the project journal.
    pub async fn check_journal(&self, p: &ProjectId, full: bool) -> Result<IntegrityReport> {
        let project = self.project(p)?;
        project.journal.check(full).await.map_err(journal_error)
    }

    /// Retention and size compaction of the project journal (SPEC §12.3).
    pub async fn compact_journal(&self, p: &ProjectId) -> Result<CompactionReport> {
        let project = self.project(p)?;
        project.journal.compact().await.map_err(journal_error)
    }
}

/// The ring entries of conversation `c` (events the journal may not hold: dropped batches).
fn recent_ring_of(
    project: &ProjectRuntime,
    c: &ConversationId,
) -> Vec<codeward_actors::telemetry::RingEntry> {
    let snapshot = project
        .telemetry_store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .snapshot(tokio::time::Instant::now());
    snapshot
        .recent_events
        .into_iter()
        .filter(|r| r.conversation_id.as_ref() == Some(c))
        .collect()
}

fn ring_entry(
    r: &codeward_actors::telemetry::RingEntry,
    redactor: &codeward_policies::secrets::Redactor,
) -> TimelineEntry {
    let payload = redactor.redact(&json!({ "reason": r.reason, "error": r.error }));
    let cancelled = r.event.as_str() == "conversation.tool.failed"
        && matches!(
            r.reason.as_deref(),
            Some("conversation_cancelled" | "cancelled")
        );
    TimelineEntry {
        source: "telemetry".to_owned(),
        seq: r.seq,
        at: rfc3339_ms(r.at_ms),
        event: if cancelled {
            "conversation.tool.cancelled".to_owned()
        } else {
            r.event.as_str().to_owned()
        },
        conversation_id: r.conversation_id.as_ref().map(ToString::to_string),
        correlation_id: r.correlation_id.as_ref().map(ToString::to_string),
        tool: r.tool.clone(),
        payload,
        at_ms: r.at_ms,
    }
}

fn signal_entry(
    source: &str,
    conversation: &ConversationId,
    signal: &Signal,
    seq: u64,
    redactor: &codeward_policies::secrets::Redactor,
) -> TimelineEntry {
    let payload = redactor.redact(&Value::Object(signal.data.clone()));
    TimelineEntry {
        source: source.to_owned(),
        seq,
        at: rfc3339_ms(signal.at_ms),
        event: signal.kind.as_str().to_owned(),
        conversation_id: Some(conversation.to_string()),
        correlation_id: Some(signal.correlation_id.to_string()),
        tool: match signal.kind {
            SignalType::ToolRequested
            | SignalType::ToolCompleted
            | SignalType::ToolFailed
            | SignalType::ToolCancelled => signal.str_field("name").map(str::to_owned),
            _ => None,
        },
        payload,
        at_ms: signal.at_ms,
    }
}

fn event_entry(
    ev: &codeward_actors::telemetry::RecordedEvent,
    redactor: &codeward_policies::secrets::Redactor,
) -> TimelineEntry {
    let reason = ev.payload.get("reason").and_then(Value::as_str);
    let event = if ev.event.as_str() == "conversation.tool.failed"
        && matches!(reason, Some("conversation_cancelled" | "cancelled"))
    {
        "conversation.tool.cancelled".to_owned()
    } else {
        ev.event.as_str().to_owned()
    };
    TimelineEntry {
        source: "telemetry".to_owned(),
        seq: ev.seq,
        at: rfc3339_ms(ev.at_ms),
        event,
        conversation_id: ev.conversation_id.as_ref().map(ToString::to_string),
        correlation_id: ev.correlation_id.as_ref().map(ToString::to_string),
        tool: ev.tool.clone(),
        payload: redactor.redact(&ev.payload),
        at_ms: ev.at_ms,
    }
}

/// The conversations block of the project diagnostics.
pub(crate) async fn diagnostics_all(project: &Arc<ProjectRuntime>) -> Vec<Value> {
    let entries: Vec<Arc<ConversationEntry>> = project
        .conversations
        .iter()
        .map(|e| e.value().clone())
        .collect();
    let mut out = Vec::new();
    for e in entries {
        if let Ok(d) = e.handle.diagnostics().await {
            out.push(serde_json::to_value(d).unwrap_or(Value::Null));
        }
    }
    out
}

/// The journal block of the project diagnostics.
pub(crate) async fn journal_diagnostics(project: &Arc<ProjectRuntime>) -> Value {
    match project.journal.stats().await {
        Ok(s) => json!({
            "path": s.path,
            "size_bytes": s.size_bytes,
            "wal_bytes": s.wal_bytes,
            "signal_count": s.signal_count,
            "event_count": s.event_count,
            "oldest_at": s.oldest_at_ms.map(rfc3339_ms),
            "last_backup_at": s.last_backup_at_ms.map(rfc3339_ms),
            "last_check": s.last_check,
            "last_compaction_at": s.last_compaction_at_ms.map(rfc3339_ms),
            "counters": s.counters,
            "failing": project.journal.is_failing(),
        }),
        Err(e) => json!({ "error": e.to_string(), "failing": true }),
    }
}
