//! The codeward examples' library: the quickstart's body ([`quickstart::run`], so the test
//! suite runs it too), where the demo project lives, the expected-outcome checks that make the
//! quickstart double as a smoke check, a plain-text table and a terminal progress bar for the
//! load harness. Only the facade crate `codeward` is used.

mod checks;
mod demo;
mod progress;
pub mod quickstart;
mod table;

pub use checks::Checks;
pub use demo::{copy_demo_project, demo_project_dir};
pub use progress::ProgressBar;
pub use table::Table;
