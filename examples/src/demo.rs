//! Where the demo project shipped in the repository lives (`examples/demo-project`).

use std::path::PathBuf;

/// The demo project's root: `examples/demo-project` of this checkout.
pub fn demo_project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo-project")
}
