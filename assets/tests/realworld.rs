//! Real-world shaped files through the pure `(path, bytes)` parsers.

use std::path::Path;

use codeward_assets::{
    AssetDefinition, AssetKind, RegistrationStatus, parse_asset, parse_command, parse_skill,
    parse_workflow,
};
use serde_json::json;

fn codes(r: &codeward_assets::ParseResult) -> Vec<&'static str> {
    r.errors.iter().map(|e| e.code()).collect()
}

#[test]
fn claude_code_commands() {
    let cases: &[(&str, &str)] = &[
        (
            "commands/fix-issue.md",
            "---\nallowed-tools: Read, Grep, Glob, Bash(gh issue view:*)\nargument-hint: <issue-number> [--dry-run]\ndescription: Fix a GitHub issue\n---\nFix issue #$ARGUMENTS following our coding standards.\n",
        ),
        (
            "commands/optimize.md",
            "Analyze this code for performance issues and suggest optimizations:\n",
        ),
        (
            "commands/frontend/component.md",
            "---\ndescription: >\n  Create a new React component\n  with tests\nmodel: sonnet\n---\n# Component\nCreate $1 in $2.\n",
        ),
        ("commands/empty.md", ""),
        ("commands/dashes-only.md", "---\n---\n"),
        (
            "commands/trailing-space.md",
            "---   \ndescription: x\n---  \nbody\n",
        ),
    ];
    for (path, text) in cases {
        let r = parse_command(Path::new(path), text.as_bytes());
        assert_eq!(codes(&r), Vec::<&str>::new(), "{path}");
        let a = r.asset.expect(path);
        assert_eq!(a.registration.status, RegistrationStatus::Valid, "{path}");
    }
    let r = parse_command(Path::new("commands/fix-issue.md"), cases[0].1.as_bytes());
    let a = r.asset.unwrap();
    let AssetDefinition::Command(def) = &a.definition else {
        panic!()
    };
    assert_eq!(
        def.allowed_tools,
        ["Read", "Grep", "Glob", "Bash(gh issue view:*)"]
    );
    assert_eq!(
        def.argument_hint.as_deref(),
        Some("<issue-number> [--dry-run]")
    );
    let r = parse_command(
        Path::new("commands/frontend/component.md"),
        cases[2].1.as_bytes(),
    );
    let a = r.asset.unwrap();
    assert_eq!(a.description, "Create a new React component with tests");
    let AssetDefinition::Command(def) = &a.definition else {
        panic!()
    };
    assert!(def.implicit_arguments);
}

#[test]
fn agent_skills_variants() {
    let ok = "---\nname: my-skill\ndescription: Does things. Use when asked.\nallowed-tools: Bash(git:*) Read\nlicense: Complete terms in LICENSE.txt\nmetadata:\n  short-description: x\n---\nbody";
    let r = parse_skill(Path::new("skills/my-skill/SKILL.md"), ok.as_bytes());
    assert_eq!(codes(&r), Vec::<&str>::new());
    let a = r.asset.unwrap();
    let AssetDefinition::Skill(def) = &a.definition else {
        panic!()
    };
    assert_eq!(def.allowed_tools, ["Bash(git:*)", "Read"]);

    let upper = "---\nname: My Skill\ndescription: d\n---\n";
    let r = parse_skill(Path::new("skills/my-skill/SKILL.md"), upper.as_bytes());
    assert_eq!(codes(&r), ["invalid_field"]);
    assert!(r.asset.is_none());

    let crlf = b"\xef\xbb\xbf---\r\nname: my-skill\r\ndescription: d\r\n---\r\nx\r\n";
    let r = parse_skill(Path::new("skills/my-skill/SKILL.md"), crlf);
    assert_eq!(codes(&r), Vec::<&str>::new());
    assert_eq!(r.asset.unwrap().body, "x\n");

    let tabs = "---\nname: my-skill\n\tdescription: d\n---\n";
    let r = parse_skill(Path::new("skills/my-skill/SKILL.md"), tabs.as_bytes());
    assert_eq!(codes(&r), ["invalid_front_matter"]);
    assert!(r.errors[0].line.is_some());

    let dup_keys = "---\nname: my-skill\nname: again\ndescription: d\n---\n";
    let r = parse_skill(Path::new("skills/my-skill/SKILL.md"), dup_keys.as_bytes());
    assert_eq!(codes(&r), ["invalid_front_matter"]);
}

#[test]
fn workflow_yaml_errors_and_limits() {
    let mut steps = String::from("## Steps\n");
    for i in 0..33 {
        steps.push_str(&format!("### s{i}\n```yaml\ntool: fs.read\n```\n"));
    }
    let r = parse_workflow(Path::new("workflows/long.md"), steps.as_bytes());
    assert_eq!(codes(&r), ["invalid_field"]);
    let a = r.asset.unwrap();
    assert_eq!(a.registration.status, RegistrationStatus::Invalid);

    let value = "## Steps\n### a\n```yml\ntool: fs.read\nargs: {path: x}\n```\n## Return\n```yaml\nvalue: {content: \"{{steps.a.result.content}}\"}\n```\n";
    let r = parse_workflow(Path::new("workflows/v.md"), value.as_bytes());
    assert_eq!(codes(&r), Vec::<&str>::new());
    let AssetDefinition::Workflow(def) = &r.asset.unwrap().definition else {
        panic!()
    };
    assert_eq!(def.version, "0.0.0");
    assert_eq!(def.steps[0].args, json!({"path": "x"}));
}

#[test]
fn every_kind_survives_arbitrary_bytes() {
    let inputs: &[&[u8]] = &[
        b"",
        b"---",
        b"---\n",
        b"---\n---",
        b"\xff\xfe\x00",
        b"---\n: : :\n---\n",
        b"---\n&a [*a]\n---\n",
        b"[[",
        b"## Steps\n### \n```yaml\n",
        b"\r\r\n---\r",
    ];
    for kind in AssetKind::ALL {
        for bytes in inputs {
            let r = parse_asset(kind, Path::new("x/y.md"), bytes);
            assert!(
                r.asset.is_some() || !r.errors.is_empty(),
                "{kind} {bytes:?}"
            );
        }
    }
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    const PIECES: &[&str] = &[
        "---",
        "\n",
        "\r\n",
        "\r",
        "\u{feff}",
        "name: x",
        "description: ",
        "[[a|b]]",
        "[[",
        "]]",
        "{{",
        "}}",
        "{{inputs.a}}",
        "## Steps",
        "### s",
        "```yaml",
        "```",
        "tool: fs.read",
        "args:",
        "  - ",
        "params:",
        "  p: {type: int}",
        "&a",
        "*a",
        ":",
        "'",
        "\"",
        "é",
        "\u{0}",
        "# T",
        "## Return",
        "from: steps.s.result",
        "run: [a, '{{p}}']",
        "shell: x",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn parsers_never_panic_and_never_lose_a_file(
            picks in proptest::collection::vec(0..PIECES.len(), 0..40),
            raw in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes: Vec<u8> = picks.iter().flat_map(|i| PIECES[*i].bytes()).collect();
            bytes.extend_from_slice(&raw);
            for kind in AssetKind::ALL {
                for path in ["x/y.md", "skills/y/SKILL.md"] {
                    let r = parse_asset(kind, Path::new(path), &bytes);
                    // A file either loads or says why; nothing disappears silently.
                    prop_assert!(r.asset.is_some() || !r.errors.is_empty());
                    if let Some(a) = &r.asset {
                        prop_assert_eq!(a.registration.errors.is_empty(), r.errors.is_empty() || kind == AssetKind::Skill || kind == AssetKind::SkillGraph);
                    }
                }
            }
        }
    }
}

#[test]
fn yaml_1_1_booleans_are_accepted() {
    let text = "---\nenabled: no\ninputs:\n  - {name: a, required: yes}\n---\n## Steps\n### s\n```yaml\ntool: fs.read\ncontinue_on_error: on\n```\n";
    let r = parse_workflow(Path::new("workflows/w.md"), text.as_bytes());
    assert_eq!(codes(&r), Vec::<&str>::new());
    let AssetDefinition::Workflow(def) = &r.asset.unwrap().definition else {
        panic!()
    };
    assert!(!def.enabled && def.inputs[0].required && def.steps[0].continue_on_error);
}
