//! The workspace integration suite: one test binary, one module per area (SPEC section in
//! brackets). Shared support — projects on temp dirs, polling, test tools and sinks — lives in
//! the `codeward_tests` library (`support.rs`).

mod errors; // §2.3
mod policy_paths; // §5.2, §5.4, §5.5
mod network_env; // §5.6, §5.7
mod quotas_timeouts; // §4 steps 10-12, §6.3, §8.4
mod conversations; // §11, §12.2
mod supervision; // §13
mod telemetry_alerts; // §5.9, §8
