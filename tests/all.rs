//! The workspace integration suite: one test binary, one module per area (its SPEC
//! sections in the comment). Shared support — projects on temp dirs, polling, test tools and sinks — lives in
//! the `codeward_tests` library (`support.rs`).

mod assets; // §7.3, §10
mod conversations; // §11, §12.2
mod errors; // §2.3
mod escapes; // §4, §5.4-5.6, §6, §7.2 (escape attempts through run_tool)
mod network_env; // §5.6, §5.7
mod policy_paths; // §5.2, §5.4, §5.5
mod quotas_timeouts; // §4 steps 10-12, §6.3, §8.4
mod smoke; // §2, §11
mod spec; // §1, §2.2, §3.3, §8.3, §9 shapes and field names
mod supervision; // §13
mod telemetry_alerts; // §5.9, §8
