//! The `TelemetryActor`: owns nothing but configuration; its state is the engine-owned
//! [`SharedStore`], so a restart loses no counters, rings or seq.
//!
//! Restart table (see `crate::supervision` for the format):
//!
//! | Child | Restart | Strategy | Intensity | Rebuilds from |
//! |---|---|---|---|---|
//! | telemetry | permanent | — | counts toward parent | `SharedStore` (counters, rings, seq) |

mod actor;
mod handle;
mod msg;
#[cfg(test)]
mod tests;

pub use actor::{
    ObserveFilter, RecordObserver, SharedStore, TelemetryActor, TelemetryConfig, WallClock,
};
pub use handle::{TelemetryHandle, supervision_observer};
pub use msg::{EventBatch, TelemetryMsg};
