//! `TelemetryMsg`: what the telemetry actor accepts.

use ractor::RpcReplyPort;

use crate::telemetry::{Health, TelemetryEvent, TelemetrySnapshot};

/// Messages of the telemetry actor.
pub enum TelemetryMsg {
    /// Records a batch from the ingest pump; replies `()` once recorded (the pump waits for it,
    /// so at most one batch per pump sits in the mailbox).
    RecordBatch {
        /// Events, in emit order.
        events: Vec<TelemetryEvent>,
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
