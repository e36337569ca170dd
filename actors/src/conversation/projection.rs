//! Read models over the in-memory state (SPEC §11.5, §9.2): timeline, LLM context, diagnostics,
//! pending tool calls, sub-agent status. Stopped conversations are projected from the journal by
//! the runtime; these cover the live window only.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::state::{
    ChatMessage, ConversationEvent, ConversationState, FinishedSubagent, PendingSubagent,
    PendingToolCall, Role, Status,
};
use crate::ids::{ConversationId, ProjectId, RunId};

/// Which projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectionKey {
    /// `timeline`
    Timeline,
    /// `llm_context`
    LlmContext,
    /// `diagnostics`
    Diagnostics,
    /// `pending_tool_calls`
    PendingToolCalls,
    /// `subagent_status`
    SubagentStatus,
}

/// An unknown projection key (`projection_not_found`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("projection `{key}` not found")]
pub struct ProjectionNotFound {
    /// The key asked for.
    pub key: String,
}

impl ProjectionNotFound {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        "projection_not_found"
    }
}

impl FromStr for ProjectionKey {
    type Err = ProjectionNotFound;
    /// Case-insensitive.
    fn from_str(s: &str) -> Result<Self, ProjectionNotFound> {
        match s.trim().to_ascii_lowercase().as_str() {
            "timeline" => Ok(Self::Timeline),
            "llm_context" => Ok(Self::LlmContext),
            "diagnostics" => Ok(Self::Diagnostics),
            "pending_tool_calls" => Ok(Self::PendingToolCalls),
            "subagent_status" => Ok(Self::SubagentStatus),
            _ => Err(ProjectionNotFound { key: s.to_owned() }),
        }
    }
}

/// `timeline`: the in-memory window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Entries in seq order.
    pub entries: Vec<ConversationEvent>,
    /// First seq in the window (0 when empty).
    pub first_seq: u64,
    /// Last applied seq.
    pub last_seq: u64,
    /// Older entries exist outside the window.
    pub truncated: bool,
}

/// `llm_context`: what the next model step sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmContext {
    /// Project.
    pub project_id: ProjectId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Status.
    pub status: Status,
    /// System prompt first (always kept), then history since the last resume boundary.
    pub messages: Vec<ChatMessage>,
    /// Calls still pending.
    pub pending_tool_calls: Vec<PendingToolCall>,
}

/// The active run in diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRunInfo {
    /// Run id.
    pub run_id: RunId,
    /// Opened at (Unix milliseconds).
    pub opened_at_ms: i64,
    /// Opened at (RFC 3339 UTC with milliseconds; SPEC §9.2 `opened_at`).
    pub opened_at: String,
    /// Steps so far.
    pub step_count: u32,
}

/// `diagnostics` (SPEC §9.2). The reducer fills every field but `subscriber_count` and
/// `restored`, which only the actor knows (it sets them; a conversation projected from the
/// journal has 0 and `false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationDiagnostics {
    /// Project.
    pub project_id: ProjectId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Parent.
    pub parent_conversation_id: Option<ConversationId>,
    /// Status.
    pub status: Status,
    /// The active run.
    pub active_run: Option<ActiveRunInfo>,
    /// Closed runs remembered.
    pub run_history_count: usize,
    /// Last seq.
    pub event_count: u64,
    /// Entries in the in-memory window.
    pub timeline_in_memory: usize,
    /// Inbox size.
    pub queue_size: usize,
    /// Inbox bound.
    pub max_queue_size: usize,
    /// Drain bound.
    pub max_drain_steps: usize,
    /// Drain passes so far.
    pub drain_iteration: u64,
    /// Pending tool calls.
    pub pending_tool_call_count: usize,
    /// Pending sub-agents.
    pub pending_subagent_count: usize,
    /// Type of the last applied signal.
    pub last_signal_type: Option<String>,
    /// Time of the last applied signal (Unix milliseconds).
    pub last_event_at_ms: Option<i64>,
    /// Time of the last applied signal (RFC 3339; SPEC §9.2 `last_event_at`).
    pub last_event_at: Option<String>,
    /// Overflow signals written.
    pub overflow_count: u64,
    /// Late results discarded.
    pub late_results_discarded: u64,
    /// Live subscriptions (set by the actor).
    pub subscriber_count: usize,
    /// Rebuilt from a non-empty journal by this incarnation of the actor (set by the actor).
    pub restored: bool,
}

/// `subagent_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubagentStatus {
    /// Requested or running.
    pub active: Vec<PendingSubagent>,
    /// Finished (bounded).
    pub completed: Vec<FinishedSubagent>,
    /// active + completed.
    pub count: usize,
    /// Active count.
    pub active_count: usize,
    /// Completed count.
    pub completed_count: usize,
}

/// Any projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    /// `timeline`
    Timeline(Timeline),
    /// `llm_context`
    LlmContext(LlmContext),
    /// `diagnostics`
    Diagnostics(ConversationDiagnostics),
    /// `pending_tool_calls`
    PendingToolCalls(Vec<PendingToolCall>),
    /// `subagent_status`
    SubagentStatus(SubagentStatus),
}

impl ConversationState {
    /// The projection for `key`.
    pub fn project(&self, key: ProjectionKey) -> Projection {
        match key {
            ProjectionKey::Timeline => Projection::Timeline(self.timeline()),
            ProjectionKey::LlmContext => Projection::LlmContext(self.llm_context()),
            ProjectionKey::Diagnostics => Projection::Diagnostics(self.diagnostics()),
            ProjectionKey::PendingToolCalls => Projection::PendingToolCalls(self.pending_calls()),
            ProjectionKey::SubagentStatus => Projection::SubagentStatus(self.subagent_status()),
        }
    }

    /// `timeline`.
    pub fn timeline(&self) -> Timeline {
        let first_seq = self.timeline.front().map_or(0, |e| e.seq);
        Timeline {
            entries: self.timeline.iter().cloned().collect(),
            first_seq,
            last_seq: self.last_seq,
            truncated: first_seq > 1,
        }
    }

    /// `llm_context`.
    pub fn llm_context(&self) -> LlmContext {
        let mut messages = Vec::with_capacity(self.history.len() + 1);
        if let Some(prompt) = &self.config.system_prompt {
            messages.push(ChatMessage::new(Role::System, prompt.clone()));
        }
        messages.extend(self.history.iter().cloned());
        LlmContext {
            project_id: self.config.project_id.clone(),
            conversation_id: self.config.conversation_id.clone(),
            status: self.status,
            messages,
            pending_tool_calls: self.pending_calls(),
        }
    }

    /// `pending_tool_calls`, in id order.
    pub fn pending_calls(&self) -> Vec<PendingToolCall> {
        self.pending_tool_calls.values().cloned().collect()
    }

    /// `diagnostics`.
    pub fn diagnostics(&self) -> ConversationDiagnostics {
        ConversationDiagnostics {
            project_id: self.config.project_id.clone(),
            conversation_id: self.config.conversation_id.clone(),
            parent_conversation_id: self.config.parent_conversation_id.clone(),
            status: self.status,
            active_run: self.active_run.as_ref().map(|r| ActiveRunInfo {
                run_id: r.run_id.clone(),
                opened_at_ms: r.opened_at_ms,
                opened_at: codeward_assets::format_rfc3339_ms(r.opened_at_ms),
                step_count: r.step,
            }),
            run_history_count: self.run_history.len(),
            event_count: self.last_seq,
            timeline_in_memory: self.timeline.len(),
            queue_size: self.queue.len(),
            max_queue_size: self.config.max_queue_size,
            max_drain_steps: self.config.max_drain_steps,
            drain_iteration: self.drain_iteration,
            pending_tool_call_count: self.pending_tool_calls.len(),
            pending_subagent_count: self.pending_subagents.len(),
            last_signal_type: self.last_signal.map(|(t, _)| t.as_str().to_owned()),
            last_event_at_ms: self.last_signal.map(|(_, at)| at),
            last_event_at: self
                .last_signal
                .map(|(_, at)| codeward_assets::format_rfc3339_ms(at)),
            overflow_count: self.overflow_count,
            late_results_discarded: self.late_results_discarded,
            subscriber_count: 0,
            restored: false,
        }
    }

    /// `subagent_status`.
    pub fn subagent_status(&self) -> SubagentStatus {
        let active: Vec<_> = self.pending_subagents.values().cloned().collect();
        let completed: Vec<_> = self.finished_subagents.iter().cloned().collect();
        SubagentStatus {
            count: active.len() + completed.len(),
            active_count: active.len(),
            completed_count: completed.len(),
            active,
            completed,
        }
    }
}
