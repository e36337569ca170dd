//! Shared helpers: fixture paths, deterministic load options, polling with a timeout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use codeward_assets::{AssetError, LoadOptions};

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Options with a fixed clock and paths relative to `root`.
pub fn opts(strict: bool, root: &Path) -> LoadOptions {
    LoadOptions {
        strict,
        root: Some(root.to_path_buf()),
        now_ms: Some(1_700_000_000_000),
    }
}

/// `(path, code)` pairs of errors, for whole-list assertions.
pub fn codes(errors: &[AssetError]) -> Vec<(String, &'static str)> {
    errors
        .iter()
        .map(|e| (e.path.display().to_string(), e.code()))
        .collect()
}

/// Polls `check` every 20 ms until it returns `Some` or `timeout` passes.
pub async fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A project in a temp dir with its layout created.
pub struct Project {
    /// Keeps the temp dir alive.
    pub dir: tempfile::TempDir,
    /// `<root>/.codeward`.
    pub data_dir: PathBuf,
}

impl Project {
    /// A new empty project.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join(".codeward");
        codeward_assets::ensure_layout(&data_dir).expect("layout");
        Self { dir, data_dir }
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file under the data dir, creating parents.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.data_dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, content).expect("write");
        path
    }

    /// Load options rooted here.
    pub fn opts(&self, strict: bool) -> LoadOptions {
        opts(strict, self.root())
    }
}
