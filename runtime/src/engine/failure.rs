//! **Failure injection** (tests and the runbook's failure drills, SPEC §13): crashes one
//! supervised component of a project on purpose so that its restart policy can be watched —
//! `runtime.actor_restarted`, the restart intensity windows, the quarantine of a project whose
//! children crash too often (§13.2). Nothing here is used by the normal call paths.
//!
//! Each target maps onto the `crash` hook of the component's handle in `codeward-actors`
//! (policy, asset store, watcher, conversation) or the executor's `crash_worker`.

use codeward_actors::ids::{ConversationId, ProjectId};
use serde::{Deserialize, Serialize};

use super::Engine;
use crate::error::{Error, Result};

/// **Failure injection**: the component [`Engine::inject_failure`] crashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "component")]
#[non_exhaustive]
pub enum FailureTarget {
    /// The policy actor (a panic in its handler); calls keep evaluating on the last snapshot.
    Policy,
    /// The asset store actor; the serving snapshot stays, one reload follows the restart.
    Assets,
    /// The watcher actor (only with `watcher = true`).
    Watcher,
    /// One worker of the tool executor (by index, `0..tool_max_concurrency`): an idle worker
    /// panics, a busy one is killed mid-call (its caller gets `interrupted`).
    ExecutorWorker {
        /// The worker index.
        index: usize,
    },
    /// A conversation actor (a panic in its handler); it is rebuilt from the journal.
    Conversation {
        /// The conversation.
        conversation_id: ConversationId,
    },
}

impl FailureTarget {
    /// The component name used in `project_unavailable{component}`.
    pub fn component(&self) -> String {
        match self {
            Self::Policy => "policy".to_owned(),
            Self::Assets => "assets".to_owned(),
            Self::Watcher => "watcher".to_owned(),
            Self::ExecutorWorker { index } => format!("executor:worker:{index}"),
            Self::Conversation { conversation_id } => format!("conversation:{conversation_id}"),
        }
    }
}

impl Engine {
    /// **Failure injection** (tests, runbook drills): crashes `target` in project `p` and
    /// returns once the crash was delivered; its supervisor then applies the restart table of
    /// SPEC §13.1 (restart with backoff, `runtime.actor_restarted`, intensity → escalation).
    ///
    /// Fails with `project_not_found` / `project_failed` like every project call,
    /// `conversation_not_found` for a conversation that is not live, and
    /// `project_unavailable{component}` when the component has no live actor right now (it is
    /// between a crash and its restart, or the project runs without it).
    pub async fn inject_failure(&self, p: &ProjectId, target: FailureTarget) -> Result<()> {
        let project = self.project(p)?;
        let unavailable = || Error::ProjectUnavailable {
            component: target.component(),
        };
        let delivered = match &target {
            FailureTarget::Policy => project.policy.crash().is_ok(),
            FailureTarget::Assets => project.assets.crash().is_ok(),
            FailureTarget::Watcher => project.watcher.as_ref().is_some_and(|w| w.crash().is_ok()),
            FailureTarget::ExecutorWorker { index } => project.executor.crash_worker(*index),
            FailureTarget::Conversation { conversation_id } => {
                let entry = project
                    .conversations
                    .get(conversation_id)
                    .map(|e| e.value().clone())
                    .ok_or_else(|| Error::ConversationNotFound {
                        conversation_id: conversation_id.to_string(),
                    })?;
                entry.handle.crash().is_ok()
            }
        };
        if delivered {
            Ok(())
        } else {
            Err(unavailable())
        }
    }
}
