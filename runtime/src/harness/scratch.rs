//! Scratch space for the harness: one temporary directory per run (removed on drop) holding
//! the project roots it starts, each with the 1 KiB file the `fs.read` workload reads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{HarnessError, HarnessResult};

/// The file every harness project holds, read by the `fs.read` workload and the scripted tool
/// calls of the conversations.
pub const FIXTURE_FILE: &str = "data.txt";
/// Its size.
pub const FIXTURE_BYTES: usize = 1024;

/// A temporary directory removed (with everything under it) when dropped.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// A fresh, empty directory under the system temp dir.
    pub fn new(label: &str) -> HarnessResult<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "codeward-harness-{label}-{}-{nanos:08x}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path)
            .map_err(|e| HarnessError::scratch(format!("cannot create {}: {e}", path.display())))?;
        Ok(Self { path })
    }

    /// Creates project root `index` (`p<index>/`) with the fixture file; returns its path.
    pub fn project_root(&self, index: usize) -> HarnessResult<PathBuf> {
        let root = self.path.join(format!("p{index}"));
        std::fs::create_dir_all(&root)
            .and_then(|()| std::fs::write(root.join(FIXTURE_FILE), fixture_content()))
            .map_err(|e| HarnessError::scratch(format!("cannot write {}: {e}", root.display())))?;
        Ok(root)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// 1 KiB of printable text (16 lines of 64 bytes).
pub fn fixture_content() -> String {
    let line = format!("{:<63}\n", "codeward harness fixture line");
    line.repeat(FIXTURE_BYTES / 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_get_the_fixture_and_the_dir_is_removed_on_drop() {
        let dir = ScratchDir::new("test").unwrap();
        let root = dir.project_root(3).unwrap();
        assert!(root.ends_with("p3"));
        let text = std::fs::read_to_string(root.join(FIXTURE_FILE)).unwrap();
        assert_eq!(text.len(), FIXTURE_BYTES);
        let path = dir.path.clone();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn two_scratch_dirs_never_collide() {
        let a = ScratchDir::new("same").unwrap();
        let b = ScratchDir::new("same").unwrap();
        assert_ne!(a.path, b.path);
    }
}
