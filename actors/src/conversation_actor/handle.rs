//! `ConversationHandle`: typed async access to one supervised conversation. It resolves the
//! current actor per call through the [`ChildRegistry`] and retries once across a restart
//! (signals keep their id, so a retried signal is de-duplicated, never applied twice).

use std::time::Duration;

use super::actor::DEFAULT_CALL_TIMEOUT;
use super::error::{ConversationError, ConversationResult};
use super::msg::{
    ConversationActorDiagnostics, ConversationMsg, ConversationSnapshot, ConversationStateView,
    SignalAck, StopReason,
};
use super::subscription::ConversationSubscription;
use crate::conversation::{Projection, ProjectionKey, Signal};
use crate::ids::ConversationId;
use crate::supervision::{ChildRegistry, Handle};

/// How long queries, casts and stops wait for the actor's answer (a cast waits for its drain
/// pass, so this is generous).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra time a call's reply may take beyond its settle timeout.
const CALL_GRACE: Duration = Duration::from_secs(5);

/// A cloneable handle to a supervised conversation (child name = conversation id).
#[derive(Debug, Clone)]
pub struct ConversationHandle {
    id: ConversationId,
    handle: Handle<ConversationMsg>,
}

impl ConversationHandle {
    /// The handle of conversation `id` in `registry` (it need not be started yet).
    pub fn new(registry: &ChildRegistry, id: &ConversationId) -> Self {
        Self {
            id: id.clone(),
            handle: registry.handle(id.as_str()),
        }
    }

    /// The conversation.
    pub fn conversation_id(&self) -> &ConversationId {
        &self.id
    }

    /// The generation of the current actor (bumped on every restart; 0 = never started).
    pub fn generation(&self) -> u64 {
        self.handle.generation()
    }

    /// Waits (≤ the registry's retry wait, 1 s) for an actor newer than generation `after`;
    /// returns its generation.
    pub async fn wait_restarted(&self, after: u64) -> ConversationResult<u64> {
        self.handle
            .wait_ready_after(after)
            .await
            .map_err(|e| ConversationError::from_handle(e, &self.id))
    }

    async fn ask<R: Send + 'static>(
        &self,
        build: impl Fn(ractor::RpcReplyPort<R>) -> ConversationMsg,
        timeout: Duration,
    ) -> ConversationResult<R> {
        self.handle
            .call(build, Some(timeout))
            .await
            .map_err(|e| ConversationError::from_handle(e, &self.id))
    }

    /// `conversation_call`: appends an external signal, waits until the conversation settles
    /// or `timeout` (default 30 s) passes — then `settled: false`, not an error.
    pub async fn call(
        &self,
        signal: Signal,
        timeout: Option<Duration>,
    ) -> ConversationResult<ConversationSnapshot> {
        let timeout = timeout.unwrap_or(DEFAULT_CALL_TIMEOUT);
        self.ask(
            |reply| ConversationMsg::Call {
                signal: signal.clone(),
                timeout,
                reply,
            },
            timeout + CALL_GRACE,
        )
        .await?
    }

    /// `conversation_cast`: appends an external signal; returns once it is durably applied.
    pub async fn cast(&self, signal: Signal) -> ConversationResult<SignalAck> {
        self.ask(
            |reply| ConversationMsg::Cast {
                signal: signal.clone(),
                reply,
            },
            QUERY_TIMEOUT,
        )
        .await?
    }

    /// `conversation_state`.
    pub async fn state(&self) -> ConversationResult<ConversationStateView> {
        self.ask(|reply| ConversationMsg::State { reply }, QUERY_TIMEOUT)
            .await
    }

    /// `conversation_projection` over the live state.
    pub async fn projection(&self, key: ProjectionKey) -> ConversationResult<Projection> {
        self.ask(
            |reply| ConversationMsg::Projection { key, reply },
            QUERY_TIMEOUT,
        )
        .await
    }

    /// `conversation_diagnostics`.
    pub async fn diagnostics(&self) -> ConversationResult<ConversationActorDiagnostics> {
        self.ask(
            |reply| ConversationMsg::Diagnostics { reply },
            QUERY_TIMEOUT,
        )
        .await
    }

    /// `subscribe_conversation`: journal replay from `from_seq` (when given), then live.
    pub async fn subscribe(
        &self,
        from_seq: Option<u64>,
    ) -> ConversationResult<ConversationSubscription> {
        self.ask(
            |reply| ConversationMsg::Subscribe { from_seq, reply },
            QUERY_TIMEOUT,
        )
        .await
    }

    /// Stops the conversation for good (cancel, `conversation.stopped`, subscriptions end). The
    /// supervisor removes the child shortly after the answer.
    pub async fn stop(&self, reason: StopReason) -> ConversationResult<()> {
        self.ask(
            |reply| ConversationMsg::Stop { reason, reply },
            QUERY_TIMEOUT,
        )
        .await?
    }

    /// **Failure injection** (tests, runbook): makes the actor panic; the supervisor restarts
    /// it from the journal. Fails when no actor is live.
    pub fn crash(&self) -> ConversationResult<()> {
        self.handle
            .try_cast(ConversationMsg::Crash)
            .map_err(|e| ConversationError::from_handle(e, &self.id))
    }
}
