//! The fuzz bodies as stable proptests, plus the path model property: no generated
//! `..`/symlink combination is allowed while an independent resolver model says it lands
//! outside the root; nested JSON encodings; false-positive guards.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::{EntryKind, PathResolver};

static EXT: LazyLock<ToolPolicy> = LazyLock::new(|| {
    ToolPolicy::compile("ext.t", &json!({"type": "object"}), false, false).unwrap()
});
static FS_READ: LazyLock<ToolPolicy> = LazyLock::new(|| {
    ToolPolicy::compile("fs.read", &json!({"type": "object", "x-codeward-complete": true, "properties": {"path": {"type": "string", "x-codeward": "path"}}}), true, false).unwrap()
});
static FS_WRITE: LazyLock<ToolPolicy> = LazyLock::new(|| {
    ToolPolicy::compile("fs.write", &json!({"type": "object", "x-codeward-complete": true, "properties": {"path": {"type": "string", "x-codeward": "path", "x-codeward-access": "write"}, "content": {"type": "string"}}}), true, false).unwrap()
});
static DEFAULT_SET: LazyLock<PolicySet> = LazyLock::new(|| {
    PolicySet::compile(&PolicyOptions::default(), PolicyContext::new("/r")).unwrap()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fuzz_evaluate_bytes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        evaluate_body(&data);
    }

    #[test]
    fn fuzz_evaluate_json(v in json_value()) {
        evaluate_body(v.to_string().as_bytes());
    }

    #[test]
    fn fuzz_check_url(s in url_text()) {
        check_url_body(s.as_bytes());
    }

    #[test]
    fn fuzz_check_path(s in path_text()) {
        check_path_body(s.as_bytes());
    }

    #[test]
    fn fuzz_redact(s in "[ -~\n]{0,200}") {
        redact_body(s.as_bytes());
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        "[a-z./~:=@ ]{0,20}".prop_map(|s| json!(s)),
        path_text().prop_map(|s| json!(s)),
        url_text().prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(key(), inner.clone(), 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            inner.prop_map(|v| json!(v.to_string())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("path".to_owned()),
        Just("url".to_owned()),
        Just("env".to_owned()),
        Just("data".to_owned()),
        Just("targetDir".to_owned()),
        "[a-z]{1,6}",
    ]
}

fn url_text() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just("http://"),
        Just("https://"),
        Just("//"),
        Just("ftp://"),
        Just("")
    ];
    let host = prop_oneof![
        Just("127.1".to_owned()),
        Just("0x7f.0.0.1".to_owned()),
        Just("[::ffff:127.0.0.1]".to_owned()),
        Just("localhost".to_owned()),
        Just("a.localhost.".to_owned()),
        Just("example.com".to_owned()),
        Just("u@169.254.169.254".to_owned()),
        Just("%31%32%37.0.0.1".to_owned()),
        "[a-z0-9.:@%\\[\\]]{0,16}",
    ];
    (scheme, host, "[a-z0-9/?#:]{0,8}").prop_map(|(s, h, p)| format!("{s}{h}{p}"))
}

fn path_text() -> impl Strategy<Value = String> {
    let comp = prop_oneof![
        Just(".."),
        Just("."),
        Just(""),
        Just("a"),
        Just("b"),
        Just("in"),
        Just("out"),
        Just("up"),
        Just("loop"),
        Just("dangle"),
        Just("r"),
        Just("o"),
        Just("r_evil"),
        Just(".env"),
        Just("f.txt"),
    ];
    (any::<bool>(), proptest::collection::vec(comp, 0..8))
        .prop_map(|(abs, c)| format!("{}{}", if abs { "/" } else { "" }, c.join("/")))
}

// ---- path model property ------------------------------------------------------------------

/// An independent, recursive model of kernel path resolution: `None` when the kernel would
/// fail (loop, `..` through a missing component).
fn model(fs: &MemFs, path: &str, hops: &mut usize) -> Option<PathBuf> {
    let mut cur = PathBuf::from("/");
    let mut missing = false;
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if missing {
                    return None;
                }
                cur.pop();
            }
            c => {
                let next = cur.join(c);
                if !missing {
                    match fs.lstat(&next) {
                        Ok(EntryKind::Symlink) => {
                            *hops += 1;
                            if *hops > 40 {
                                return None;
                            }
                            let t = fs.read_link(&next).ok()?;
                            let joined = if t.is_absolute() { t } else { cur.join(t) };
                            cur = model(fs, &joined.to_string_lossy(), hops)?;
                            if fs.lstat(&cur).is_err() {
                                missing = true;
                            }
                            continue;
                        }
                        Ok(_) => {}
                        Err(_) => missing = true,
                    }
                }
                cur = next;
            }
        }
    }
    Some(cur)
}

fn lexical(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

const TARGETS: &[&str] = &[
    "/o",
    "..",
    "../..",
    "a",
    "/r/a",
    "../o",
    "b/../..",
    "/r/l1",
    "l2",
    "/r",
    ".",
    "a/b/../../..",
    "/r/a/b/l3",
    "../r/a",
];

fn tree() -> impl Strategy<Value = MemFs> {
    proptest::collection::vec(proptest::option::of(proptest::sample::select(TARGETS)), 3).prop_map(
        |ts| {
            let mut m = MemFs::new();
            m.file("/r/a/b/f.txt").dir("/o/d").dir("/r_evil");
            for (at, t) in ["/r/l1", "/r/a/l2", "/r/a/b/l3"].iter().zip(ts) {
                if let Some(t) = t {
                    m.symlink(at, t);
                }
            }
            m
        },
    )
}

fn rel_path() -> impl Strategy<Value = String> {
    let comp = prop_oneof![
        Just(".."),
        Just("."),
        Just("a"),
        Just("b"),
        Just("l1"),
        Just("l2"),
        Just("l3"),
        Just("o"),
        Just("r"),
        Just("x"),
        Just("r_evil"),
        Just("")
    ];
    (
        prop_oneof![Just(""), Just("/"), Just("/r/")],
        proptest::collection::vec(comp, 0..8),
    )
        .prop_map(|(lead, c)| format!("{lead}{}", c.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_escape_the_model_sees(fs in tree(), raw in rel_path()) {
        let set = &*DEFAULT_SET;
        let joined = if raw.starts_with('/') { raw.clone() } else { format!("/r/{raw}") };
        if let Ok(ok) = set.check_path(&raw, Access::Read, None, None, &fs) {
            for form in [joined.clone(), lexical(&joined)] {
                let mut hops = 0;
                if let Some(p) = model(&fs, &form, &mut hops) {
                    prop_assert!(p.starts_with("/r"), "{raw:?} allowed as {ok:?} but {form} lands at {p:?}");
                }
            }
            prop_assert!(ok.resolved.starts_with("/r"));
        } else {
            // a deny is never for an in-root plain path without links or dots
            let plain = !raw.split('/').any(|c| matches!(c, ".." | "." | "l1" | "l2" | "l3"));
            if plain && joined.starts_with("/r/") && !joined.starts_with("/r/r_evil") {
                prop_assert!(false, "{raw:?} denied although plain and in root");
            }
        }
    }

    /// A path hidden under N levels of JSON-in-string is still found.
    #[test]
    fn nested_json_path_is_found(levels in 0usize..=4, keys in proptest::collection::vec("(data|payload|x|args)", 4)) {
        let set = fixture_set().unwrap();
        let tool = &*EXT;
        let mut v = json!({"path": "../../etc/passwd"});
        for k in keys.iter().take(levels) {
            v = json!({ k.as_str(): v.to_string() });
        }
        let d = evaluate(set, &ToolRequest::new(tool, &v), &fixture_fs());
        prop_assert_eq!(d.reason_code, "outside_root", "{}", d.explain);
        // a JSON-quoted string under a path key is a path candidate
        let q = json!({"file": json!("../../etc/passwd").to_string()});
        prop_assert_eq!(evaluate(set, &ToolRequest::new(tool, &q), &fixture_fs()).reason_code, "outside_root");
    }

    /// Legitimate in-root paths are allowed.
    #[test]
    fn in_root_paths_are_allowed(comps in proptest::collection::vec("[a-z][a-z0-9_]{0,8}(\\.(rs|md|txt))?", 1..6)) {
        let set = fixture_set().unwrap();
        let raw = comps.join("/");
        let tool = &*FS_READ;
        for p in [raw.clone(), format!("/r/{raw}"), format!("./{raw}"), format!("a/../{raw}")] {
            let args = json!({ "path": p });
            let d = evaluate(set, &ToolRequest::new(tool, &args), &fixture_fs());
            prop_assert_eq!(d.reason_code, "allowed", "{}", d.explain);
        }
    }

    /// `fs.write` content mentioning paths and URLs on a complete schema is no false positive.
    #[test]
    fn complete_schema_content_is_not_scanned(text in "[ -~]{0,80}") {
        let set = fixture_set().unwrap();
        let tool = &*FS_WRITE;
        let args = json!({"path": "notes.md", "content": format!("path=../x {text} /etc/passwd http://127.0.0.1")});
        let d = evaluate(set, &ToolRequest::new(tool, &args), &fixture_fs());
        prop_assert_eq!(d.reason_code, "allowed", "{}", d.explain);
    }
}

#[test]
fn component_containment_not_string_prefix() {
    let set =
        PolicySet::compile(&PolicyOptions::default(), PolicyContext::new("/r/allowed")).unwrap();
    let fs = MemFs::new();
    assert!(
        set.check_path("/r/allowed/x", Access::Read, None, None, &fs)
            .is_ok()
    );
    assert_eq!(
        set.check_path("/r/allowed_evil/x", Access::Read, None, None, &fs)
            .unwrap_err()
            .code(),
        "outside_root"
    );
    assert_eq!(
        set.check_path("../allowed_evil", Access::Read, None, None, &fs)
            .unwrap_err()
            .code(),
        "outside_root"
    );
}

#[test]
fn given_root_is_an_allowed_area() {
    let mut fs = MemFs::new();
    fs.dir("/real/app")
        .symlink("/home/u/app", "/real/app")
        .file("/real/app/x");
    let ctx = PolicyContext {
        canonical_root: "/real/app".into(),
        given_root: "/home/u/app/".into(),
        state_dir: None,
        scratch_base: None,
    };
    let set = PolicySet::compile(&PolicyOptions::default(), ctx).unwrap();
    let p = set
        .check_path("/home/u/app/x", Access::Read, None, None, &fs)
        .unwrap();
    assert_eq!(p.resolved, Path::new("/real/app/x"));
}

#[test]
fn dangling_link_write_is_judged_where_it_lands() {
    let set = fixture_set().unwrap();
    let e = set
        .check_path("dangle", Access::Write, None, None, &fixture_fs())
        .unwrap_err();
    assert_eq!(e.details(), json!({"path": "/o/new", "location": ""}));
}

#[test]
fn fuzz_bodies_regressions() {
    for s in [
        "",
        "\0",
        "/",
        "..",
        "http://",
        "//",
        "[::]",
        "%",
        "token=",
        "Bearer ",
        "-----BEGIN PRIVATE KEY-----",
    ] {
        evaluate_body(s.as_bytes());
        check_url_body(s.as_bytes());
        check_path_body(s.as_bytes());
        redact_body(s.as_bytes());
    }
}
