//! Where the demo project shipped in the repository lives (`examples/demo-project`), and a
//! copy of it for runs that must not write into the checkout.

use std::path::{Path, PathBuf};

/// The demo project's root: `examples/demo-project` of this checkout.
pub fn demo_project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo-project")
}

/// Copies a project tree — directories and regular files; symlinks and the data dir's
/// `state/` and `tmp/` (journal, scratch) are left out — from `from` to `to`.
pub fn copy_demo_project(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            let name = entry.file_name();
            let runtime_dir = from.file_name().is_some_and(|f| f == ".codeward")
                && (name == "state" || name == "tmp");
            if !runtime_dir {
                copy_demo_project(&entry.path(), &target)?;
            }
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_has_the_assets_and_policy_but_no_state() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join(".codeward/state")).unwrap();
        std::fs::create_dir_all(src.join(".codeward/skills")).unwrap();
        std::fs::create_dir_all(src.join("keep/state")).unwrap();
        std::fs::write(src.join(".codeward/state/journal.sqlite"), "x").unwrap();
        std::fs::write(src.join(".codeward/skills/a.md"), "a").unwrap();
        std::fs::write(src.join("codeward.toml"), "").unwrap();
        let to = dir.path().join("copy");
        copy_demo_project(&src, &to).unwrap();
        assert!(to.join(".codeward/skills/a.md").is_file());
        assert!(to.join("codeward.toml").is_file());
        assert!(to.join("keep/state").is_dir());
        assert!(!to.join(".codeward/state").exists());
    }

    #[test]
    fn the_demo_project_ships_its_policy_and_assets() {
        let root = demo_project_dir();
        assert!(root.join("codeward.toml").is_file());
        assert!(root.join(".codeward/commands/todos.md").is_file());
    }
}
