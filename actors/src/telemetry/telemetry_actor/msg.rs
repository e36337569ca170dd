//! `TelemetryMsg`: what the telemetry actor accepts.

use std::sync::{Arc, Mutex};

use ractor::RpcReplyPort;

use crate::telemetry::{Health, TelemetryEvent, TelemetrySnapshot};

/// A batch of events handed from the ingest pump to the actor. It is shared, not copied, between
/// a first delivery attempt and the retry after a restart: whichever actor takes it records it.
#[derive(Debug, Clone, Default)]
pub struct EventBatch(Arc<Mutex<Vec<TelemetryEvent>>>);

impl EventBatch {
    /// A batch of `events`, in emit order.
    pub fn new(events: Vec<TelemetryEvent>) -> Self {
        Self(Arc::new(Mutex::new(events)))
    }

    /// Takes the events out (empty when another attempt took them already).
    pub fn take(&self) -> Vec<TelemetryEvent> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Events not taken yet.
    pub fn len(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether every event was taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Messages of the telemetry actor.
pub enum TelemetryMsg {
    /// Records a batch from the ingest pump; replies `()` once recorded (the pump waits for it,
    /// so at most one batch per pump sits in the mailbox).
    RecordBatch {
        /// Events, in emit order.
        events: EventBatch,
        /// Reply port.
        reply: RpcReplyPort<()>,
    },
    /// Replies with counters, rings and health.
    Snapshot {
        /// Reply port.
        reply: RpcReplyPort<TelemetrySnapshot>,
    },
    /// Replies with health.
    Health {
        /// Reply port.
        reply: RpcReplyPort<Health>,
    },
    /// Adds `n` to a named counter. No reply.
    AddCounter {
        /// Counter name.
        name: String,
        /// Increment.
        n: u64,
    },
    /// Marks a component failing (`Some(reason)`) or recovered (`None`). No reply.
    SetFailing {
        /// Component.
        component: String,
        /// Reason.
        reason: Option<String>,
    },
}
