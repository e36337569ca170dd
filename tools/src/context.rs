//! `ToolContext`: everything a built-in tool needs for one call — the policy snapshot, the
//! project root fd, limits, ids, the cancellation token and the deadline.

use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::fs::RootDir;
use crate::policy::PolicySet;

/// Limits a tool enforces while it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolLimits {
    /// `tool_max_output_bytes`; large-output tools stay within this minus 4096 and report
    /// `truncated`.
    pub max_output_bytes: usize,
    /// Refuse reading regular files with more than one hard link (`multiply_linked`).
    pub deny_multiply_linked_files: bool,
}

impl ToolLimits {
    /// Room for the variable part of a result (`max_output_bytes − 4096`, at least 1024).
    pub fn output_budget(&self) -> usize {
        self.max_output_bytes.saturating_sub(4096).max(1024)
    }
}

impl Default for ToolLimits {
    fn default() -> Self {
        Self {
            max_output_bytes: 262_144,
            deny_multiply_linked_files: false,
        }
    }
}

/// Identifiers of the call, for logs and spans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallIds {
    /// Project id.
    pub project_id: String,
    /// Conversation id, when the call belongs to one.
    pub conversation_id: Option<String>,
    /// Correlation id.
    pub correlation_id: String,
    /// Tool call id.
    pub tool_call_id: String,
}

/// Everything a tool needs for one call. Cheap to clone (all shared parts are `Arc`s).
#[derive(Clone)]
pub struct ToolContext {
    /// The policy snapshot the call was checked against.
    pub policy: Arc<PolicySet>,
    /// The project root, opened once per project.
    pub root: Arc<RootDir>,
    /// Limits.
    pub limits: ToolLimits,
    /// Ids.
    pub ids: CallIds,
    /// Cancelled when the call is cancelled or times out.
    pub cancel: CancellationToken,
    /// When the call's time runs out, if it has a deadline.
    pub deadline: Option<Instant>,
}

impl ToolContext {
    /// A context with default limits, fresh ids, a fresh token and no deadline.
    pub fn new(policy: Arc<PolicySet>, root: Arc<RootDir>) -> Self {
        Self {
            policy,
            root,
            limits: ToolLimits::default(),
            ids: CallIds::default(),
            cancel: CancellationToken::new(),
            deadline: None,
        }
    }

    /// `cancelled` when the token fired, `timeout` when the deadline passed.
    pub fn check_live(&self) -> crate::Result<()> {
        if self.cancel.is_cancelled() {
            return Err(crate::ToolError::Cancelled {
                reason: "cancel_requested".into(),
            });
        }
        if let Some(d) = self.deadline
            && Instant::now() >= d
        {
            return Err(crate::ToolError::Timeout { timeout_ms: 0 });
        }
        Ok(())
    }
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("root", &self.root.path())
            .field("limits", &self.limits)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}
