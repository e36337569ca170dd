//! Every accepted format and every error reason, on the checked-in fixtures.

use std::path::{Path, PathBuf};

use codeward_assets::{
    AssetDefinition, AssetKind, CommandExec, ParamType, Quoting, RegistrationStatus, SkillLayout,
    WorkflowReturn, load,
};
use serde_json::json;

use crate::support::{codes, fixture, opts};

fn names(snapshot: &codeward_assets::AssetSnapshot, kind: AssetKind) -> Vec<String> {
    snapshot.list(kind).into_iter().map(|s| s.name).collect()
}

#[test]
fn valid_fixture_loads_every_format_without_errors() {
    let dir = fixture("valid");
    let out = load(&dir, &opts(true, &dir), 1);
    assert!(!out.rejected, "{:#?}", out.errors);
    assert_eq!(out.errors, vec![]);
    let s = &out.snapshot;
    assert_eq!(
        names(s, AssetKind::Skill),
        [
            "code-review",
            "deep-skill",
            "pdf-processing",
            "plain",
            "rust-testing",
            "windows"
        ]
    );
    assert_eq!(
        names(s, AssetKind::Command),
        [
            "commit",
            "empty-front-matter",
            "review",
            "run-tests",
            "todos"
        ]
    );
    assert_eq!(
        names(s, AssetKind::Workflow),
        ["disabled", "fetch-and-run", "inspect"]
    );
    assert_eq!(
        names(s, AssetKind::SkillGraph),
        ["index", "review", "testing"]
    );
    // Dangling links are warnings, not errors: strict mode accepted the load.
    assert_eq!(
        codes(s.warnings()),
        vec![("skill_graph/review.md".to_owned(), "dangling_link")]
    );
    let counts = s.counts();
    assert_eq!((counts.skill, counts.command, counts.workflow), (6, 5, 3));
    assert_eq!(
        (
            counts.skill_graph_nodes,
            counts.skill_graph_edges,
            counts.dangling_edges
        ),
        (3, 6, 1)
    );
}

#[test]
fn agent_skills_layout_with_resources_and_extra_fields() {
    let dir = fixture("valid");
    let s = load(&dir, &opts(false, &dir), 1).snapshot;
    let review = s.get(AssetKind::Skill, "code-review").unwrap();
    let AssetDefinition::Skill(def) = &review.definition else {
        panic!("not a skill")
    };
    assert_eq!(def.layout, SkillLayout::AgentSkills);
    assert_eq!(
        def.resources,
        vec![
            PathBuf::from("checklist.md"),
            PathBuf::from("scripts/lint.sh")
        ]
    );
    assert!(review.body.starts_with("# Code review\n"));

    let pdf = s.get(AssetKind::Skill, "pdf-processing").unwrap();
    let AssetDefinition::Skill(def) = &pdf.definition else {
        panic!("not a skill")
    };
    assert_eq!(def.allowed_tools, ["Read", "Bash(python:*)"]);
    assert_eq!(def.license.as_deref(), Some("Apache-2.0"));
    assert_eq!(
        def.metadata,
        Some(json!({"author": "example-org", "version": "1.0"}))
    );
    assert_eq!(
        pdf.front_matter.get("compatibility"),
        Some(&json!("claude-code"))
    );
    assert_eq!(def.resources, vec![PathBuf::from("reference.md")]);

    let flat = s.get(AssetKind::Skill, "rust-testing").unwrap();
    let AssetDefinition::Skill(def) = &flat.definition else {
        panic!("not a skill")
    };
    assert_eq!(def.layout, SkillLayout::Flat);
    assert_eq!(def.allowed_tools, ["fs.read", "fs.search", "command.run"]);
    assert_eq!(flat.sha256.len(), 64);
    assert!(
        flat.modified_at
            .as_deref()
            .is_some_and(|m| m.ends_with('Z'))
    );
    // get by path works too
    assert_eq!(
        s.get(AssetKind::Skill, "skills/rust-testing.md")
            .unwrap()
            .name,
        "rust-testing"
    );
}

#[test]
fn bom_crlf_and_missing_front_matter() {
    let dir = fixture("valid");
    let s = load(&dir, &opts(false, &dir), 1).snapshot;
    let w = s.get(AssetKind::Skill, "windows").unwrap();
    assert_eq!(w.description, "A file saved on Windows with a BOM and CRLF");
    assert_eq!(w.body, "# Windows\n\nLine endings are CRLF.\n");
    let plain = s.get(AssetKind::Skill, "plain").unwrap();
    assert!(plain.front_matter.is_empty());
    assert_eq!(plain.description, "");
    let empty = s.get(AssetKind::Command, "empty-front-matter").unwrap();
    assert_eq!(
        empty.body,
        "Just a prompt with an empty front matter block.\n"
    );
    assert_eq!(empty.registration.status, RegistrationStatus::Valid);
}

#[test]
fn command_schema_for_prompt_command() {
    let dir = fixture("valid");
    let s = load(&dir, &opts(false, &dir), 1).snapshot;
    let tool = s.tool("command.run.review").unwrap();
    assert!(!tool.executable && !tool.network_capable && tool.is_callable());
    assert_eq!(
        tool.input_schema,
        json!({
            "type": "object",
            "properties": {
                "file": {"type": "string", "description": "the file to review"},
                "env": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "extra environment variables", "x-codeward": "env"},
                "timeout_ms": {"type": "integer", "minimum": 1,
                               "description": "timeout in milliseconds (can only shorten)"}
            },
            "required": ["file"],
            "additionalProperties": false
        })
    );
    let AssetDefinition::Command(def) = &s.get(AssetKind::Command, "review").unwrap().definition
    else {
        panic!("not a command")
    };
    assert_eq!(def.argument_hint.as_deref(), Some("<file>"));
    let args = json!({"file": "src/lib.rs"}).as_object().cloned().unwrap();
    assert_eq!(
        def.prompt.render(&args, Quoting::Plain),
        "Review `src/lib.rs` using the code-review skill.\n"
    );
}

#[test]
fn executable_commands_with_typed_params() {
    let dir = fixture("valid");
    let s = load(&dir, &opts(false, &dir), 1).snapshot;
    let AssetDefinition::Command(def) = &s.get(AssetKind::Command, "run-tests").unwrap().definition
    else {
        panic!("not a command")
    };
    let types: Vec<(&str, ParamType, bool)> = def
        .params
        .iter()
        .map(|p| (p.name.as_str(), p.param_type, p.required))
        .collect();
    assert_eq!(
        types,
        [
            ("filter", ParamType::String, false),
            ("jobs", ParamType::Integer, false),
            ("profile", ParamType::String, true),
            ("release", ParamType::Boolean, false)
        ]
    );
    let Some(CommandExec::Run { argv }) = &def.exec else {
        panic!("not argv")
    };
    let args = json!({"profile": "ci", "filter": "a b; rm -rf /"})
        .as_object()
        .cloned()
        .unwrap();
    let rendered: Vec<String> = argv
        .iter()
        .map(|t| t.render(&args, Quoting::Plain))
        .collect();
    assert_eq!(
        rendered,
        ["cargo", "test", "--profile", "ci", "a b; rm -rf /"]
    );
    let schema = &s.tool("command.run.run-tests").unwrap().input_schema;
    assert_eq!(
        schema["properties"]["profile"],
        json!({"type": "string", "enum": ["dev", "ci"]})
    );
    assert_eq!(
        schema["properties"]["jobs"],
        json!({"type": "integer", "default": 2})
    );
    assert_eq!(
        schema["properties"]["filter"],
        json!({"type": "string", "description": "only tests matching this"})
    );

    let AssetDefinition::Command(todos) = &s.get(AssetKind::Command, "todos").unwrap().definition
    else {
        panic!("not a command")
    };
    let Some(CommandExec::Shell { script }) = &todos.exec else {
        panic!("not shell")
    };
    let args = json!({"dir": "it's here"}).as_object().cloned().unwrap();
    assert_eq!(
        script.render(&args, Quoting::Shell),
        r"grep -rn TODO 'it'\''s here'"
    );
    assert_eq!(todos.timeout_ms, Some(5000));
    let tool = s.tool("command.run.todos").unwrap();
    assert!(tool.executable && tool.network_capable);
}

#[test]
fn claude_code_command_front_matter() {
    let dir = fixture("valid");
    let s = load(&dir, &opts(false, &dir), 1).snapshot;
    let commit = s.get(AssetKind::Command, "commit").unwrap();
    assert_eq!(commit.path, PathBuf::from("commands/git/commit.md"));
    assert_eq!(commit.description, "Create a git commit: stage and commit");
    let AssetDefinition::Command(def) = &commit.definition else {
        panic!("not a command")
    };
    assert_eq!(
        def.allowed_tools,
        [
            "Bash(git add:*)",
            "Bash(git status:*)",
            "Bash(git commit:*)"
        ]
    );
    assert_eq!(def.argument_hint.as_deref(), Some("[message] [--amend]"));
    assert_eq!(def.model.as_deref(), Some("claude-3-5-haiku-20241022"));
    assert!(def.implicit_arguments);
    let args = json!({"arguments": "fix typo"})
        .as_object()
        .cloned()
        .unwrap();
    assert!(
        def.prompt
            .render(&args, Quoting::Plain)
            .ends_with("message: fix typo (first word: fix)\n")
    );
    let schema = &s.tool("command.run.commit").unwrap().input_schema;
    assert_eq!(
        schema["properties"]["arguments"],
        json!({"type": "string", "description": "[message] [--amend]"})
    );
}

#[test]
fn workflows_steps_return_and_schema() {
    let dir = fixture("valid");
    let s = load(&dir, &opts(false, &dir), 1).snapshot;
    let AssetDefinition::Workflow(def) = &s.get(AssetKind::Workflow, "inspect").unwrap().definition
    else {
        panic!("not a workflow")
    };
    assert_eq!(def.version, "1.0.0");
    let steps: Vec<(&str, &str, bool)> = def
        .steps
        .iter()
        .map(|st| (st.id.as_str(), st.tool.as_str(), st.continue_on_error))
        .collect();
    assert_eq!(
        steps,
        [("read", "fs.read", false), ("todos", "fs.search", true)]
    );
    assert_eq!(def.steps[0].args, json!({"path": "{{inputs.file}}"}));
    assert_eq!(
        def.returns,
        Some(WorkflowReturn::From("steps.todos.result".into()))
    );
    let tool = s.tool("workflow.run.inspect").unwrap();
    assert!(!tool.network_capable && tool.is_callable());
    assert_eq!(
        tool.input_schema,
        json!({"type": "object", "properties": {"file": {"type": "string", "description": "file to read"}},
               "required": ["file"], "additionalProperties": false})
    );
    let fetch = s.tool("workflow.run.fetch-and-run").unwrap();
    assert!(fetch.network_capable);
    let AssetDefinition::Workflow(def) = &s
        .get(AssetKind::Workflow, "fetch-and-run")
        .unwrap()
        .definition
    else {
        panic!("not a workflow")
    };
    assert_eq!((def.version.as_str(), def.steps.len()), ("2", 2));
    let disabled = s.tool("workflow.run.disabled").unwrap();
    assert!(
        !disabled.enabled
            && !disabled.is_callable()
            && disabled.registration.status == RegistrationStatus::Valid
    );
    assert_eq!(def.inputs[0].name, "url");
}

#[test]
fn skill_graph_nodes_edges_titles() {
    let dir = fixture("valid");
    let s = load(&dir, &opts(false, &dir), 1).snapshot;
    let edges: Vec<(String, String, Option<String>, bool)> = s
        .graph()
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone(), e.label.clone(), e.dangling))
        .collect();
    let e = |f: &str, t: &str, l: Option<&str>, d: bool| {
        (f.to_owned(), t.to_owned(), l.map(str::to_owned), d)
    };
    assert_eq!(
        edges,
        [
            e("index", "review", Some("code review"), false),
            e("index", "testing", None, false),
            e("review", "missing-note", None, true),
            e("review", "testing", None, false),
            e("testing", "index", None, false), // `[[Index]]` resolves case-insensitively
            e("testing", "review", None, false),
        ]
    );
    let titles: Vec<&str> = s.graph().nodes.iter().map(|n| n.title.as_str()).collect();
    assert_eq!(titles, ["Demo knowledge", "Review", "Testing"]);
    let whole = s.get(AssetKind::SkillGraph, "snapshot").unwrap();
    assert!(matches!(&whole.definition, AssetDefinition::Graph(g) if g == s.graph()));
    let node = s.get(AssetKind::SkillGraph, "testing").unwrap();
    let AssetDefinition::GraphNode(node) = &node.definition else {
        panic!("not a node")
    };
    assert_eq!(node.backlinks, ["index", "review"]);
    assert_eq!(node.edges.len(), 2);
}

#[test]
fn broken_fixture_reports_every_error_with_its_path() {
    let dir = fixture("broken");
    let out = load(&dir, &opts(false, &dir), 1);
    let p = |path: &str, code: &'static str| (path.to_owned(), code);
    assert_eq!(
        codes(&out.errors),
        vec![
            p("commands/bad-fm.md", "invalid_front_matter"),
            p("commands/bad-param.md", "invalid_field"),
            p("commands/both.md", "invalid_field"),
            p("commands/reserved.md", "invalid_field"),
            p("commands/undeclared.md", "invalid_field"),
            p("skill_graph/sub/a.md", "duplicate_node"),
            p("skills/Bad Name.md", "invalid_field"),
            p("skills/bad-name-field.md", "invalid_field"),
            p("skills/bad-utf8.md", "invalid_utf8"),
            p("skills/bad-yaml.md", "invalid_front_matter"),
            p("skills/broken-agent/SKILL.md", "missing_field"),
            p("skills/mismatch/SKILL.md", "name_mismatch"),
            p("skills/no-fm-agent/SKILL.md", "missing_field"),
            p("skills/no-fm-agent/SKILL.md", "missing_field"),
            p("skills/not-a-map.md", "invalid_front_matter"),
            p("skills/sub/dup.md", "duplicate_name"),
            p("skills/unclosed.md", "invalid_front_matter"),
            p("workflows/bad-step.md", "invalid_field"),
            p("workflows/bad-step.md", "invalid_field"),
            p("workflows/bad-step.md", "invalid_field"),
            p("workflows/bad-step.md", "invalid_field"),
            p("workflows/bad-step.md", "invalid_field"),
            p("workflows/no-steps.md", "missing_field"),
        ]
    );
    let yaml = out
        .errors
        .iter()
        .find(|e| e.path == Path::new("skills/bad-yaml.md"))
        .unwrap();
    assert_eq!(yaml.line, Some(5), "{yaml:?}");
    assert!(yaml.message.starts_with("line 5"), "{}", yaml.message);
    // Lenient: the good files serve; invalid commands and workflows stay listed, not callable.
    let s = &out.snapshot;
    assert_eq!(names(s, AssetKind::Skill), ["dup", "ok"]);
    assert_eq!(s.get(AssetKind::Skill, "dup").unwrap().description, "first");
    assert_eq!(
        names(s, AssetKind::Command),
        ["bad-fm", "bad-param", "both", "reserved", "undeclared"]
    );
    assert!(
        s.commands()
            .all(|t| !t.is_callable() && !t.registration.errors.is_empty())
    );
    assert!(s.workflows().all(|t| !t.is_callable()));
    assert_eq!(names(s, AssetKind::SkillGraph), ["a", "b"]);
    assert_eq!(s.diagnostics().errors.len(), out.errors.len());
    // Strict: the same files reject the load.
    let strict = load(&dir, &opts(true, &dir), 1);
    assert!(strict.rejected);
    assert_eq!(
        strict.into_result().unwrap_err().code(),
        "asset_load_failed"
    );
}

#[test]
fn typed_api_errors() {
    let dir = fixture("valid");
    let s = load(&dir, &opts(false, &dir), 1).snapshot;
    let err = s.get(AssetKind::Command, "nope").unwrap_err();
    assert_eq!(err.code(), "asset_not_found");
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!({"code": "asset_not_found", "kind": "command", "key": "nope"})
    );
    assert_eq!(
        s.search(AssetKind::Skill, "   ", 10).unwrap_err().code(),
        "invalid_query"
    );
    assert_eq!(
        "bogus".parse::<AssetKind>().unwrap_err().code(),
        "invalid_asset_kind"
    );
    assert_eq!(
        "Skill_Graph".parse::<AssetKind>().unwrap(),
        AssetKind::SkillGraph
    );
}
