//! The executor worker actor: the supervised owner of one slot. Each incarnation publishes a
//! fresh *liveness token* in its slot's [`SlotCell`] when it starts and cancels it when it ends
//! — stopped, killed, panicked, or taken down by an escalation: the state's `Drop` runs in every
//! case — which interrupts the job running on the slot at that moment.

use std::sync::{Arc, Mutex, PoisonError};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::msg::WorkerMsg;

/// What a slot shares between its worker (which publishes liveness) and the callers that run
/// jobs on it.
#[derive(Debug)]
pub(crate) struct SlotCell {
    // INVARIANT: the token of the live worker incarnation, or a cancelled token while none is
    // live (before the first start, between a death and the restart).
    current: Mutex<Arc<CancellationToken>>,
    published: Notify,
}

impl SlotCell {
    pub(crate) fn new() -> Self {
        let none = CancellationToken::new();
        none.cancel();
        Self {
            current: Mutex::new(Arc::new(none)),
            published: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<CancellationToken>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live worker's token, if one is live now.
    pub(crate) fn live(&self) -> Option<Arc<CancellationToken>> {
        let token = self.lock().clone();
        (!token.is_cancelled()).then_some(token)
    }

    /// The live worker's token, waiting up to `wait` for a (re)started worker.
    pub(crate) async fn live_within(
        &self,
        wait: std::time::Duration,
    ) -> Option<Arc<CancellationToken>> {
        if let Some(t) = self.live() {
            return Some(t);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let published = self.published.notified();
            tokio::pin!(published);
            // Registered before the check, so a publish in between is not missed.
            published.as_mut().enable();
            if let Some(t) = self.live() {
                return Some(t);
            }
            if tokio::time::timeout_at(deadline, published).await.is_err() {
                return None;
            }
        }
    }

    fn publish(&self, token: Arc<CancellationToken>) {
        *self.lock() = token;
        self.published.notify_waiters();
    }
}

/// One executor worker (stateless but for its liveness token).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Worker;

/// A worker incarnation's state: dropping it (however the incarnation ends) cancels its token.
pub(crate) struct WorkerState {
    token: Arc<CancellationToken>,
}

impl Drop for WorkerState {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = WorkerState;
    type Arguments = Arc<SlotCell>;

    async fn pre_start(
        &self,
        _myself: ActorRef<WorkerMsg>,
        cell: Arc<SlotCell>,
    ) -> Result<WorkerState, ActorProcessingErr> {
        let token = Arc::new(CancellationToken::new());
        cell.publish(token.clone());
        Ok(WorkerState { token })
    }

    async fn handle(
        &self,
        _myself: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        _state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Crash => crash(),
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<WorkerMsg>,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        // A stopped worker gives up its slot's job now, not when its state is dropped later.
        state.token.cancel();
        Ok(())
    }
}

fn crash() -> Result<(), ActorProcessingErr> {
    Err("executor worker crash requested (a job on its slot panicked, or failure injection)".into())
}
