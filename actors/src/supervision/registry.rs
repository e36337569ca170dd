//! The registry of current child refs, and the [`Handle`] that callers use to reach a child.
//!
//! Each child name has one `tokio::sync::watch` slot holding its current `ActorCell` and a
//! generation number bumped on every (re)start. The supervisor publishes into it; handles read it
//! per call and, after a failed send or a death before the reply, wait (at most the retry wait,
//! 1 s by default) for a newer generation and retry **once** (SPEC §13.2). Every failure reaches
//! the caller as a typed [`HandleError`].
//!
//! The registry is owned by whoever builds the tree (the engine, per project) and outlives
//! supervisor restarts. It is independent of ractor's process-global name registry.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use ractor::{ActorCell, ActorRef, Message, RpcReplyPort, rpc::CallResult};
use tokio::sync::watch;

use super::error::{HandleError, HandleResult};

/// What a registry slot holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChildSlot {
    /// Bumped on every publish of a new cell; 0 = never started.
    pub(crate) generation: u64,
    /// The live cell, `None` while down or restarting.
    pub(crate) cell: Option<ActorCell>,
    /// The child will not come back (given up or removed); handles fail fast.
    pub(crate) closed: bool,
}

/// Current refs of supervised children, by name. Cheap to clone (an `Arc`).
#[derive(Debug, Clone, Default)]
pub struct ChildRegistry {
    slots: Arc<DashMap<String, watch::Sender<ChildSlot>>>,
}

/// How long a handle waits for a restarted child by default (SPEC §13.2: ≤1 s).
pub const DEFAULT_RETRY_WAIT: Duration = Duration::from_secs(1);

impl ChildRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn sender(&self, name: &str) -> watch::Sender<ChildSlot> {
        self.slots
            .entry(name.to_owned())
            .or_insert_with(|| watch::channel(ChildSlot::default()).0)
            .clone()
    }

    /// A typed handle to child `name`. The child need not be started yet; calls wait for it.
    pub fn handle<M: Message>(&self, name: &str) -> Handle<M> {
        Handle {
            component: Arc::from(name),
            slot: self.sender(name).subscribe(),
            retry_wait: DEFAULT_RETRY_WAIT,
            _msg: PhantomData,
        }
    }

    /// The generation of child `name` (0 = never started), if the name is known.
    pub fn generation(&self, name: &str) -> Option<u64> {
        self.slots.get(name).map(|s| s.borrow().generation)
    }

    /// Whether child `name` currently has a live ref.
    pub fn is_up(&self, name: &str) -> bool {
        self.slots
            .get(name)
            .is_some_and(|s| s.borrow().cell.is_some())
    }

    /// Publishes a freshly (re)started cell; returns the new generation.
    pub(crate) fn publish(&self, name: &str, cell: ActorCell) -> u64 {
        let mut generation = 0;
        self.sender(name).send_modify(|slot| {
            slot.generation += 1;
            slot.cell = Some(cell);
            slot.closed = false;
            generation = slot.generation;
        });
        generation
    }

    /// Marks child `name` as down (a restart may follow).
    pub(crate) fn mark_down(&self, name: &str) {
        self.sender(name).send_modify(|slot| slot.cell = None);
    }

    /// Marks child `name` as gone for good (handles fail fast with `unavailable`).
    pub(crate) fn close(&self, name: &str) {
        self.sender(name).send_modify(|slot| {
            slot.cell = None;
            slot.closed = true;
        });
    }
}

/// A cloneable, typed way to reach a supervised child that survives its restarts.
///
/// Resolves the current ref per call; on a dead or stale ref it waits for the supervisor to
/// publish a newer one and retries once; otherwise [`HandleError::Unavailable`].
pub struct Handle<M> {
    component: Arc<str>,
    slot: watch::Receiver<ChildSlot>,
    retry_wait: Duration,
    _msg: PhantomData<fn() -> M>,
}

impl<M> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Self {
            component: self.component.clone(),
            slot: self.slot.clone(),
            retry_wait: self.retry_wait,
            _msg: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for Handle<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("component", &self.component)
            .field("generation", &self.slot.borrow().generation)
            .finish()
    }
}

enum Attempt<R> {
    Done(R),
    Dead,
    TimedOut,
}

impl<M: Message> Handle<M> {
    /// The child name this handle reaches.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The same handle with another retry wait.
    pub fn with_retry_wait(mut self, wait: Duration) -> Self {
        self.retry_wait = wait;
        self
    }

    /// The current live cell, if any (crate-internal: tests and supervisors).
    pub(crate) fn current_cell(&self) -> Option<ActorCell> {
        self.slot.borrow().cell.clone()
    }

    /// The generation of the child's current ref (0 = never started).
    pub fn generation(&self) -> u64 {
        self.slot.borrow().generation
    }

    fn unavailable(&self) -> HandleError {
        HandleError::Unavailable {
            component: self.component.to_string(),
        }
    }

    /// Waits (≤ the retry wait) for a live ref whose generation is greater than `after`.
    async fn ready_after(&self, after: u64) -> HandleResult<(u64, ActorCell)> {
        let mut rx = self.slot.clone();
        let wait = rx.wait_for(|s| s.closed || (s.cell.is_some() && s.generation > after));
        match tokio::time::timeout(self.retry_wait, wait).await {
            Ok(Ok(slot)) if !slot.closed => match &slot.cell {
                Some(cell) => Ok((slot.generation, cell.clone())),
                None => Err(self.unavailable()),
            },
            _ => Err(self.unavailable()),
        }
    }

    /// Waits until the child has a ref newer than generation `after`; for tests and restarts
    /// observers. Returns the new generation or `unavailable` after the retry wait.
    pub async fn wait_ready_after(&self, after: u64) -> HandleResult<u64> {
        self.ready_after(after).await.map(|(g, _)| g)
    }

    /// The current live ref, or a wait (≤ the retry wait) for one.
    async fn current(&self) -> HandleResult<(u64, ActorCell)> {
        let slot = self.slot.borrow().clone();
        if slot.closed {
            return Err(self.unavailable());
        }
        match slot.cell {
            Some(cell) => Ok((slot.generation, cell)),
            None => self.ready_after(slot.generation.saturating_sub(1)).await,
        }
    }

    async fn attempt<R, F>(
        &self,
        cell: ActorCell,
        build: &F,
        timeout: Option<Duration>,
    ) -> Attempt<R>
    where
        F: Fn(RpcReplyPort<R>) -> M,
        R: Send + 'static,
    {
        let actor: ActorRef<M> = cell.into();
        match actor.call(build, timeout).await {
            Ok(CallResult::Success(r)) => Attempt::Done(r),
            Ok(CallResult::Timeout) => Attempt::TimedOut,
            Ok(CallResult::SenderError) | Err(_) => Attempt::Dead,
        }
    }

    /// Request/reply: builds the message around a reply port, sends it and awaits the reply.
    ///
    /// `build` may run twice (once per attempt). A timeout is reported, never retried.
    pub async fn call<R, F>(&self, build: F, timeout: Option<Duration>) -> HandleResult<R>
    where
        F: Fn(RpcReplyPort<R>) -> M,
        R: Send + 'static,
    {
        let (generation, cell) = self.current().await?;
        let timed_out = || HandleError::Timeout {
            component: self.component.to_string(),
            timeout_ms: timeout.map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        };
        match self.attempt(cell, &build, timeout).await {
            Attempt::Done(r) => return Ok(r),
            Attempt::TimedOut => return Err(timed_out()),
            Attempt::Dead => {}
        }
        // The ref was dead or stale: one retry on a fresh ref.
        let (_, cell) = self.ready_after(generation).await?;
        match self.attempt(cell, &build, timeout).await {
            Attempt::Done(r) => Ok(r),
            Attempt::TimedOut => Err(timed_out()),
            Attempt::Dead => Err(self.unavailable()),
        }
    }

    /// Fire-and-forget: sends `build()`; if the send fails, retries once on a fresh ref.
    ///
    /// Success means the message was enqueued, not that it was handled.
    pub async fn cast<F>(&self, build: F) -> HandleResult<()>
    where
        F: Fn() -> M,
    {
        let (generation, cell) = self.current().await?;
        if cell.send_message(build()).is_ok() {
            return Ok(());
        }
        let (_, cell) = self.ready_after(generation).await?;
        cell.send_message(build()).map_err(|_| self.unavailable())
    }

    /// Fire-and-forget with a message that is built once (not `Clone`, not rebuildable): sends
    /// it to the current ref; if that ref is dead, waits for a fresh one and sends the same
    /// message again (ractor hands an undeliverable message back). Fails with `unavailable`.
    pub async fn send(&self, msg: M) -> HandleResult<()> {
        let (generation, cell) = self.current().await?;
        let msg = match cell.send_message(msg) {
            Ok(()) => return Ok(()),
            Err(ractor::MessagingErr::SendErr(msg)) => msg,
            Err(_) => return Err(self.unavailable()),
        };
        let (_, cell) = self.ready_after(generation).await?;
        cell.send_message(msg).map_err(|_| self.unavailable())
    }

    /// Failure injection: kills the current ref at once, even in the middle of a handler
    /// (ractor `kill`); its supervisor sees it terminate and applies the restart policy.
    /// Returns whether there was a live ref.
    pub fn kill(&self) -> bool {
        let cell = self.slot.borrow().cell.clone();
        cell.map(|c| c.kill()).is_some()
    }

    /// Sends without waiting or retrying: fails at once when there is no live ref.
    pub fn try_cast(&self, msg: M) -> HandleResult<()> {
        let cell = self.slot.borrow().cell.clone();
        match cell {
            Some(cell) => cell.send_message(msg).map_err(|_| self.unavailable()),
            None => Err(self.unavailable()),
        }
    }
}
