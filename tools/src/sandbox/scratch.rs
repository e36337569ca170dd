//! The per-call scratch dir (SPEC §6.2): `<data_dir>/tmp/<tool_call_id>`, created 0700 with
//! `tmp/` inside before the command starts and removed after the call.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::SandboxPlan;

/// A created scratch dir; removed when dropped.
pub(crate) struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates `dir` (0700) and its `tmp/`; an existing dir is kept as it is. The second value
    /// is a Landlock ruleset already built for `plan` with this dir, when one was prepared.
    pub(crate) fn create(dir: &Path, _plan: &SandboxPlan) -> io::Result<(Self, Option<OwnedFd>)> {
        make(dir)?;
        Ok((
            Self {
                dir: dir.to_path_buf(),
            },
            None,
        ))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn make(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut b = std::fs::DirBuilder::new();
    b.mode(0o700);
    match b.create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    match b.create(dir.join("tmp")) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}
