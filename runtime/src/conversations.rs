//! Live conversations of a project as the execution path sees them: the per-conversation tool
//! quota (`tool_max_concurrency_per_conversation`, SPEC §4 step 11) and the conversation's tool
//! scope (`allow_tools` narrows, never widens).

use std::sync::Arc;

use codeward_actors::ids::ConversationId;
use tokio::sync::Semaphore;

/// One live conversation.
pub(crate) struct ConversationEntry {
    /// Its id.
    pub id: ConversationId,
    /// Its tool-call quota.
    pub quota: Arc<Semaphore>,
    /// The quota's size (for errors).
    pub quota_limit: usize,
    /// Tool patterns the conversation may use (`None` = the project's).
    pub allow_tools: Option<Vec<String>>,
}

impl ConversationEntry {
    /// An entry with a fresh quota.
    pub fn new(id: ConversationId, quota: usize, allow_tools: Option<Vec<String>>) -> Self {
        Self {
            id,
            quota: Arc::new(Semaphore::new(quota)),
            quota_limit: quota,
            allow_tools,
        }
    }
}
