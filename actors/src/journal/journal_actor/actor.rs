//! The journal actor: `pre_start` adopts or starts the writer, `handle` dispatches, `post_stop`
//! flushes and closes; the functions below do the work.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::JoinHandle;

use super::msg::JournalMsg;
use crate::journal::JournalHandle;
use crate::journal::core::JournalCore;
use crate::journal::writer::{Source, WriterExit, WriterGuard};
use crate::supervision::{ChildSpec, RestartPolicy};

/// How long `post_stop` waits for pending events to be flushed.
const STOP_FLUSH_WAIT: Duration = Duration::from_secs(5);
/// How long `post_stop` waits for the writer to close.
const STOP_CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The journal actor (`self` is the shared journal it serves).
pub struct JournalActor {
    core: Arc<JournalCore>,
}

impl std::fmt::Debug for JournalActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalActor")
            .field("path", &self.core.config.path)
            .finish()
    }
}

/// The child spec of the journal of `journal`: permanent; every (re)start serves the same open
/// journal with a fresh writer thread (the first start adopts the one `open` started).
pub fn journal_child_spec(name: &str, journal: &JournalHandle) -> ChildSpec {
    let core = journal.core.clone();
    ChildSpec::actor(name, RestartPolicy::Permanent, move || {
        (JournalActor { core: core.clone() }, ())
    })
}

/// Mutable state: the writer this actor owns and its compaction timer. Dropping it (a killed
/// actor) unpublishes the writer and stops the timer.
#[derive(Debug, Default)]
pub struct JournalActorState {
    writer: Option<WriterGuard>,
    timer: Option<JoinHandle<()>>,
}

impl Drop for JournalActorState {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }
}

impl Actor for JournalActor {
    type Msg = JournalMsg;
    type State = JournalActorState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<JournalMsg>,
        (): (),
    ) -> Result<JournalActorState, ActorProcessingErr> {
        let mut state = JournalActorState::default();
        if self.core.is_closed() {
            return Ok(state); // serves nothing; handles see `closed`
        }
        let mut writer = match self.core.take_parked() {
            Some(guard) if guard.is_alive() => guard,
            _ => {
                let sync = self.core.config.sync;
                self.core.spawn_writer(Source::Reopen(sync)).await?
            }
        };
        watch_exit(&myself, &mut writer);
        state.writer = Some(writer);
        state.timer = schedule_compaction(&self.core, &myself);
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<JournalMsg>,
        state: &mut JournalActorState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        if let Some(writer) = state.writer.take() {
            close_writer(&self.core, writer).await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<JournalMsg>,
        msg: JournalMsg,
        state: &mut JournalActorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            JournalMsg::WriterExited { generation, exit } => {
                on_writer_exit(state, generation, exit)
            }
            JournalMsg::Compact => {
                compact_in_background(&self.core);
                Ok(())
            }
        }
    }
}

/// Forwards the writer's exit report to the actor.
fn watch_exit(myself: &ActorRef<JournalMsg>, writer: &mut WriterGuard) {
    let Some(exit) = writer.take_exit() else {
        return;
    };
    let generation = writer.generation();
    let me = myself.clone();
    tokio::spawn(async move {
        if let Ok(exit) = exit.await {
            // Fails only when the actor is gone; then nobody needs to know.
            let _ = me.send_message(JournalMsg::WriterExited { generation, exit });
        }
    });
}

/// Compacts now on the first start in this process, then every `compact_every`.
fn schedule_compaction(
    core: &Arc<JournalCore>,
    myself: &ActorRef<JournalMsg>,
) -> Option<JoinHandle<()>> {
    let every = core.config.compact_every?;
    if !core.compacted_once.swap(true, Ordering::AcqRel) {
        let _ = myself.send_message(JournalMsg::Compact);
    }
    Some(myself.send_interval(every, || JournalMsg::Compact))
}

fn on_writer_exit(
    state: &mut JournalActorState,
    generation: u64,
    exit: WriterExit,
) -> Result<(), ActorProcessingErr> {
    let current = state.writer.as_ref().map(WriterGuard::generation);
    if current != Some(generation) {
        return Ok(()); // an older writer, already replaced
    }
    match exit {
        WriterExit::Closed => {
            state.writer = None; // the journal was closed; nothing to restart
            Ok(())
        }
        other => {
            state.writer = None;
            Err(format!("journal writer {generation} exited: {other}").into())
        }
    }
}

fn compact_in_background(core: &Arc<JournalCore>) {
    let handle = JournalHandle { core: core.clone() };
    tokio::spawn(async move {
        if let Err(e) = handle.compact().await {
            tracing::warn!(target: "codeward::journal", error = %e, code = e.code(), "scheduled journal compaction failed");
        }
    });
}

async fn close_writer(core: &JournalCore, writer: WriterGuard) {
    if tokio::time::timeout(STOP_FLUSH_WAIT, core.flush_events())
        .await
        .is_err()
    {
        tracing::warn!(target: "codeward::journal", "journal events not flushed before stop");
    }
    // New requests wait for the restarted writer instead of queueing behind the close.
    writer.unpublish();
    match tokio::time::timeout(STOP_CLOSE_WAIT, writer.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(target: "codeward::journal", error = %e, "journal writer closed with an error");
        }
        Err(_) => {
            tracing::warn!(target: "codeward::journal", "journal writer did not close in time")
        }
    }
}
