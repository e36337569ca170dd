//! Telemetry: the event catalogue, the per-project store (counters, rings, seq, health,
//! repeated timeouts), alert routing, and the `TelemetryActor` that ties them together.
//!
//! Recording is fire-and-forget: [`TelemetryHandle::record`] `try_send`s into a bounded channel
//! (overflow counted as `telemetry.dropped`; [`TelemetryHandle::backlogged`] tells emitters that
//! can yield when it is over half full); a pump task hands batches to the actor, which redacts
//! (the pluggable [`Redactor`]: payloads, and the envelope's ids unless the emitter redacted
//! them), sequences and stores them in the engine-owned [`TelemetryStore`], logs them and passes
//! escalation events to the [`AlertRouter`] and every record to the observer (the journal).
//!
//! Payloads are JSON or lazy ([`EventPayload`]): a [`LazyPayload`] source (the runtime's
//! per-call record, shared by the three events of a call) is bundled with the redactor and
//! rendered only when something reads it — the decisions ring on snapshot, the observer, an
//! alert. Records ([`RecordedEvent`]) are built only for events an observer or the router
//! reads; the others go straight into the rings.
//!
//! Files: `event.rs` (catalogue), `payload.rs` (eager and lazy payloads), `store.rs` (pure
//! store), `alert.rs` (router and sinks), `telemetry_actor/` (msg, actor, handle, tests).

mod alert;
mod event;
mod payload;
mod store;
mod telemetry_actor;

pub use alert::{
    Alert, AlertConfig, AlertConfigError, AlertError, AlertRoute, AlertRouter, AlertSink,
    AlertStats, ChannelSink, LogSink, pattern_matches,
};
pub use event::{
    DEFAULT_CRITICAL_EVENTS, EventName, RecordedEvent, Severity, TelemetryEvent, UnknownEvent,
};
pub use payload::{EventPayload, LazyPayload, Payload};
pub use store::{
    COUNTER_NAMES, Health, HealthStatus, Redactor, Ring, RingEntry, Stored, TelemetryLimits,
    TelemetrySnapshot, TelemetryStore, no_redaction,
};
pub use telemetry_actor::{
    EventBatch, ObserveFilter, RecordObserver, SharedStore, TelemetryActor, TelemetryConfig,
    TelemetryHandle, TelemetryMsg, WallClock, supervision_observer,
};
