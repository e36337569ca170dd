//! Telemetry: the event catalogue, the per-project store (counters, rings, seq, health,
//! repeated timeouts), alert routing, and the `TelemetryActor` that ties them together.
//!
//! Recording is fire-and-forget: [`TelemetryHandle::record`] `try_send`s into a bounded channel
//! (overflow counted as `telemetry.dropped`); a pump task hands batches to the actor, which
//! redacts (the pluggable [`Redactor`]), sequences and stores them in the engine-owned
//! [`TelemetryStore`], logs them and passes escalation events to the [`AlertRouter`].
//!
//! Files: `event.rs` (catalogue), `payload.rs` (eager and lazy payloads), `store.rs` (pure store), `alert.rs` (router and sinks),
//! `telemetry_actor/` (msg, actor, handle, tests).

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
    EventBatch, RecordObserver, SharedStore, TelemetryActor, TelemetryConfig, TelemetryHandle,
    TelemetryMsg, WallClock, supervision_observer,
};
