//! Support code shared by the codeward examples: where the demo project lives, the
//! expected-outcome checks that make the quickstart double as a smoke check, a plain-text table
//! and a terminal progress bar for the load harness. Only the facade crate `codeward` is used.

mod checks;
mod demo;
mod progress;
mod table;

pub use checks::Checks;
pub use demo::demo_project_dir;
pub use progress::ProgressBar;
pub use table::Table;
