//! File-system rules: layout, symlinks, FIFOs, size limits, missing directories.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use codeward_assets::{AssetKind, load};

use crate::support::{Project, codes};

#[test]
fn ensure_layout_creates_every_directory_and_is_idempotent() {
    let p = Project::new();
    for d in [
        "skills",
        "commands",
        "workflows",
        "skill_graph",
        "state",
        "tmp",
    ] {
        assert!(p.data_dir.join(d).is_dir(), "{d}");
    }
    let mode = std::fs::metadata(p.data_dir.join("state"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    codeward_assets::ensure_layout(&p.data_dir).unwrap();
}

#[test]
fn missing_directories_load_empty() {
    let dir = tempfile::tempdir().unwrap();
    let out = load(&dir.path().join("nothing-here"), &Default::default(), 1);
    assert!(!out.rejected && out.errors.is_empty());
    assert_eq!(out.snapshot.counts(), Default::default());
}

#[test]
fn symlinks_are_never_followed() {
    let p = Project::new();
    p.write("skills/real.md", "---\ndescription: real\n---\nx\n");
    std::os::unix::fs::symlink(
        p.data_dir.join("skills/real.md"),
        p.data_dir.join("skills/alias.md"),
    )
    .unwrap();
    let outside = p.root().join("outside.md");
    std::fs::write(&outside, "---\ndescription: secret\n---\n").unwrap();
    std::os::unix::fs::symlink(&outside, p.data_dir.join("skills/escape.md")).unwrap();
    std::os::unix::fs::symlink("/etc", p.data_dir.join("commands/etc")).unwrap();
    // a non-markdown symlink is not an asset candidate
    std::os::unix::fs::symlink("/etc/passwd", p.data_dir.join("skills/passwd")).unwrap();

    let out = load(&p.data_dir, &p.opts(false), 1);
    assert_eq!(
        codes(&out.errors),
        vec![
            (
                ".codeward/commands/etc".to_owned(),
                "symlink_outside_data_dir"
            ),
            (
                ".codeward/skills/escape.md".to_owned(),
                "symlink_outside_data_dir"
            ),
        ]
    );
    let skipped: Vec<PathBuf> = out
        .snapshot
        .skipped()
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(skipped, [PathBuf::from(".codeward/skills/alias.md")]);
    let names: Vec<String> = out
        .snapshot
        .list(AssetKind::Skill)
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["real"]);
    assert!(load(&p.data_dir, &p.opts(true), 1).rejected);
}

#[test]
fn fifos_are_reported_and_never_opened() {
    let p = Project::new();
    let fifo = p.data_dir.join("skills/pipe.md");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let out = load(&p.data_dir, &p.opts(false), 1);
    assert_eq!(
        codes(&out.errors),
        vec![(".codeward/skills/pipe.md".to_owned(), "io_error")]
    );
    assert_eq!(out.errors[0].detail.as_deref(), Some("not_a_regular_file"));
}

#[test]
fn size_limits() {
    let p = Project::new();
    let mut big = b"---\ndescription: big\n---\n".to_vec();
    big.resize(1024 * 1024 + 1, b'x');
    p.write("skills/big.md", &big);
    let mut fm = b"---\nd: \"".to_vec();
    fm.resize(70 * 1024, b'y');
    fm.extend_from_slice(b"\"\n---\nbody\n");
    p.write("skills/big-front-matter.md", &fm);
    let mut ok = b"---\ndescription: just under\n---\n".to_vec();
    ok.resize(1024 * 1024, b'z');
    p.write("skills/at-limit.md", &ok);
    let out = load(&p.data_dir, &p.opts(false), 1);
    assert_eq!(
        codes(&out.errors),
        vec![
            (
                ".codeward/skills/big-front-matter.md".to_owned(),
                "asset_too_large"
            ),
            (".codeward/skills/big.md".to_owned(), "asset_too_large"),
        ]
    );
    assert_eq!(out.snapshot.list(AssetKind::Skill).len(), 1);
}

#[test]
fn state_and_tmp_are_never_read() {
    let p = Project::new();
    p.write("state/journal.md", "\u{0}garbage");
    p.write("tmp/x.md", "---\n[bad\n");
    p.write("README.md", "# not an asset\n");
    let out = load(&p.data_dir, &p.opts(true), 1);
    assert!(!out.rejected, "{:?}", out.errors);
}

#[test]
fn yaml_budget_is_enforced() {
    let p = Project::new();
    let mut deep = String::from("---\na: ");
    deep.push_str(&"[".repeat(40));
    deep.push_str(&"]".repeat(40));
    deep.push_str("\n---\n");
    p.write("skills/deep.md", deep);
    let mut aliases = String::from("---\nx: &a [1]\ny: [");
    aliases.push_str(&vec!["*a"; 150].join(", "));
    aliases.push_str("]\n---\n");
    p.write("skills/aliases.md", aliases);
    let out = load(&p.data_dir, &p.opts(false), 1);
    assert_eq!(
        codes(&out.errors),
        vec![
            (
                ".codeward/skills/aliases.md".to_owned(),
                "invalid_front_matter"
            ),
            (
                ".codeward/skills/deep.md".to_owned(),
                "invalid_front_matter"
            ),
        ]
    );
}
