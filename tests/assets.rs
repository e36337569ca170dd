//! SPEC §7.3, §10: assets through the facade and the `asset.*` tools; command assets as
//! `command.run.<name>` (prompt and executable, with parameters that try to escape the root or
//! the shell quoting); workflow assets (templated steps, a failing step stops the run,
//! `continue_on_error`); `reload_assets` after edits; strict mode keeping the old generation; the
//! watcher (polled with a timeout); and the scripted model's "list skills" path.

use std::time::Duration;

use codeward::{AssetKind, ProjectOptions, Signal, ToolFailure};
use codeward_tests::{TestProject, empty_root, eventually, write_file};
use serde_json::{Value, json};

const SKILL_FLAT: &str = "---\nname: rust-testing\ndescription: How to test Rust code\n---\n# Rust testing\nUse cargo nextest for integration suites.\n";
const SKILL_AGENT: &str = "---\nname: code-review\ndescription: Review a change carefully\n---\nCheck error handling first.\n";
const PROMPT_CMD: &str = "---\ndescription: Ask for a review of one file\nparams:\n  file:\n    type: string\n    required: true\n    description: the file to review\n---\nReview `{{file}}` using the code-review skill.\n";
const EXEC_CMD: &str = "---\ndescription: Print a file\nparams:\n  file:\n    type: string\n    required: true\nrun: [cat, \"{{file}}\"]\n---\nPrints {{file}}.\n";
const SHELL_CMD: &str = "---\ndescription: Count lines\nparams:\n  file:\n    type: string\n    default: notes.txt\nshell: \"wc -l < {{file}}\"\n---\nCounts lines.\n";
const WORKFLOW: &str = "---\nname: copy\nversion: 1.2.0\ndescription: Read a file and write a copy\ninputs:\n  - name: file\n    type: string\n    required: true\n---\n## Steps\n\n### read\n```yaml\ntool: fs.read\nargs:\n  path: \"{{inputs.file}}\"\n```\n\n### write\n```yaml\ntool: fs.write\nargs:\n  path: copy.txt\n  content: \"{{steps.read.result.content}}\"\n```\n\n## Return\n```yaml\nfrom: steps.write.result\n```\n";
const FAILING_WORKFLOW: &str = "---\nname: broken-chain\ndescription: The first step fails\n---\n## Steps\n\n### missing\n```yaml\ntool: fs.read\nargs:\n  path: does-not-exist.txt\n```\n\n### after\n```yaml\ntool: fs.write\nargs:\n  path: after.txt\n  content: should not exist\n```\n";
const TOLERANT_WORKFLOW: &str = "---\nname: tolerant\ndescription: The first step may fail\n---\n## Steps\n\n### missing\n```yaml\ntool: fs.read\nargs:\n  path: does-not-exist.txt\ncontinue_on_error: true\n```\n\n### after\n```yaml\ntool: fs.write\nargs:\n  path: after.txt\n  content: written\n```\n";
const GRAPH_INDEX: &str =
    "---\ntitle: Index\n---\nSee [[testing]] and [[review|reviews]] and [[missing-node]].\n";
const GRAPH_TESTING: &str = "# Testing\nBack to [[index]].\n";

async fn with_assets(options: ProjectOptions) -> TestProject {
    let dir = empty_root();
    let root = dir.path();
    write_file(root, ".codeward/skills/rust-testing.md", SKILL_FLAT);
    write_file(root, ".codeward/skills/code-review/SKILL.md", SKILL_AGENT);
    write_file(root, ".codeward/commands/review.md", PROMPT_CMD);
    write_file(root, ".codeward/commands/cat-file.md", EXEC_CMD);
    write_file(root, ".codeward/commands/count.md", SHELL_CMD);
    write_file(root, ".codeward/workflows/copy.md", WORKFLOW);
    write_file(
        root,
        ".codeward/workflows/broken-chain.md",
        FAILING_WORKFLOW,
    );
    write_file(root, ".codeward/workflows/tolerant.md", TOLERANT_WORKFLOW);
    write_file(root, ".codeward/skill_graph/index.md", GRAPH_INDEX);
    write_file(root, ".codeward/skill_graph/testing.md", GRAPH_TESTING);
    write_file(root, "notes.txt", "one\ntwo\nthree\n");
    let engine = codeward::Engine::start(codeward_tests::config_with(
        &codeward_tests::TestTools::default(),
    ))
    .await
    .unwrap();
    TestProject::start_in(&engine, dir, options).await
}

fn names(items: &[codeward::AssetSummary]) -> Vec<&str> {
    items.iter().map(|a| a.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_listed_fetched_and_searched() {
    let p = with_assets(ProjectOptions::default()).await;
    let (e, id) = (&p.engine, &p.id);
    let skills = e.list_assets(id, AssetKind::Skill).await.unwrap();
    assert_eq!(names(&skills), ["code-review", "rust-testing"]);
    let commands = e.list_assets(id, AssetKind::Command).await.unwrap();
    assert_eq!(names(&commands), ["cat-file", "count", "review"]);
    let tool_names: Vec<Option<&str>> = commands.iter().map(|c| c.tool_name.as_deref()).collect();
    assert_eq!(
        tool_names,
        [
            Some("command.run.cat-file"),
            Some("command.run.count"),
            Some("command.run.review")
        ]
    );
    let workflows = e.list_assets(id, AssetKind::Workflow).await.unwrap();
    assert_eq!(names(&workflows), ["broken-chain", "copy", "tolerant"]);
    // Kinds parse case-insensitively, plural or not.
    let also: AssetKind = "SKILLS".parse().unwrap();
    assert_eq!(e.list_assets(id, also).await.unwrap().len(), 2);
    let skill = e
        .get_asset(id, AssetKind::Skill, "rust-testing")
        .await
        .unwrap();
    let skill = serde_json::to_value(skill).unwrap();
    assert_eq!(skill["description"], "How to test Rust code", "{skill}");
    assert!(
        skill["body"].as_str().unwrap().contains("nextest"),
        "{skill}"
    );
    let hits = e
        .search_assets(id, AssetKind::Skill, "nextest")
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].name, "rust-testing");
    let ranked = e
        .search_assets(id, AssetKind::Skill, "review")
        .await
        .unwrap();
    assert_eq!(ranked[0].name, "code-review", "name matches rank first");
    assert!(
        e.search_assets(id, AssetKind::Skill, "zebra")
            .await
            .unwrap()
            .is_empty()
    );
    // The skill graph: nodes, edges, dangling targets.
    let graph = serde_json::to_value(
        e.get_asset(id, AssetKind::SkillGraph, "snapshot")
            .await
            .unwrap(),
    )
    .unwrap();
    let text = graph.to_string();
    assert!(
        text.contains("missing-node") && text.contains("dangling"),
        "{text}"
    );
    let diag = serde_json::to_value(e.assets_diagnostics(id).await.unwrap()).unwrap();
    assert_eq!(diag["counts"]["skill"], 2, "{diag}");
    assert_eq!(diag["counts"]["command"], 3, "{diag}");
    assert_eq!(diag["errors"], json!([]), "{diag}");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asset_tools_answer_from_the_snapshot() {
    let p = with_assets(ProjectOptions::default()).await;
    let listed = p.ok("asset.list", json!({"type": "skill"})).await;
    assert_eq!(listed.result["items"].as_array().unwrap().len(), 2);
    let found = p
        .ok(
            "asset.search",
            json!({"type": "skills", "query": "nextest", "limit": 5}),
        )
        .await;
    assert_eq!(found.result["items"][0]["name"], "rust-testing");
    let got = p
        .ok("asset.get", json!({"type": "command", "key": "review"}))
        .await;
    assert_eq!(got.result["asset"]["name"], "review");
    let f = p
        .fails("asset.get", json!({"type": "skill", "key": "nope"}))
        .await;
    assert_eq!(f.code(), "tool_failed");
    assert_eq!(f.error.details()["reason"], "asset_not_found");
    let f = p.fails("asset.list", json!({"type": "widgets"})).await;
    assert_eq!(f.code(), "invalid_tool_args", "{}", f.error.to_json());
    let f = p
        .fails("asset.search", json!({"type": "skill", "query": ""}))
        .await;
    assert_eq!(f.code(), "invalid_tool_args");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_and_executable_command_assets_run_and_their_params_cannot_escape() {
    let p = with_assets(ProjectOptions::default()).await;
    let sibling = tempfile::tempdir_in(p.root.parent().unwrap()).unwrap();
    write_file(sibling.path(), "secret.txt", "sibling secret");
    let away = sibling
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    // Prompt command.
    let ok = p
        .ok("command.run.review", json!({"file": "src/lib.rs"}))
        .await;
    assert_eq!(ok.kind, "asset_command");
    assert_eq!(ok.result["mode"], "prompt");
    assert_eq!(
        ok.result["prompt"],
        "Review `src/lib.rs` using the code-review skill.\n"
    );
    // Parameters follow the schema: required, no extras.
    let f = p.fails("command.run.review", json!({})).await;
    assert_eq!(f.code(), "invalid_tool_args");
    let f = p
        .fails("command.run.review", json!({"file": "x", "extra": 1}))
        .await;
    assert_eq!(f.code(), "invalid_tool_args");
    // Executable command: runs like command.run.
    let ok = p
        .ok("command.run.cat-file", json!({"file": "notes.txt"}))
        .await;
    assert_eq!(ok.result["mode"], "executed");
    assert_eq!(ok.result["stdout"], "one\ntwo\nthree\n");
    assert_eq!(ok.result["exit_code"], 0);
    // A parameter that walks out of the root is judged as the rendered command.run call.
    for file in [
        format!("../{away}/secret.txt"),
        format!("{}/secret.txt", sibling.path().display()),
    ] {
        let f: ToolFailure = p.fails("command.run.cat-file", json!({"file": file})).await;
        assert_eq!(f.code(), "outside_root", "{file}: {}", f.error.to_json());
        p.wait_event_of("security.sandbox_violation", &f.correlation_id)
            .await;
    }
    p.write(".env", "SECRET=1");
    let f = p
        .fails("command.run.cat-file", json!({"file": ".env"}))
        .await;
    assert_eq!(f.code(), "sensitive_path_denied");
    // Shell form: the parameter is one single-quoted word, never shell syntax.
    let ok = p.ok("command.run.count", json!({})).await;
    assert_eq!(
        ok.result["stdout"].as_str().unwrap().trim(),
        "3",
        "default param"
    );
    let ok = p
        .ok(
            "command.run.count",
            json!({"file": "notes.txt; echo pwned"}),
        )
        .await;
    let out = ok.result.to_string();
    assert!(
        !ok.result["stdout"].as_str().unwrap().contains("pwned"),
        "{out}"
    );
    assert_ne!(ok.result["exit_code"], 0, "{out}");
    let ok = p
        .ok("command.run.count", json!({"file": "$(echo notes.txt)"}))
        .await;
    assert_ne!(ok.result["exit_code"], 0, "no substitution: {}", ok.result);
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_template_their_steps_and_stop_at_a_failing_step() {
    let p = with_assets(ProjectOptions::default()).await;
    p.write("input.txt", "workflow data");
    let ok = p
        .ok("workflow.run.copy", json!({"file": "input.txt"}))
        .await;
    assert_eq!(ok.kind, "asset_workflow");
    assert_eq!(ok.result["mode"], "executed");
    assert_eq!(ok.result["workflow"], "copy");
    assert_eq!(ok.result["version"], "1.2.0");
    let steps: Vec<(&str, &str)> = ok.result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [("read", "completed"), ("write", "completed")]);
    assert_eq!(
        std::fs::read_to_string(p.path("copy.txt")).unwrap(),
        "workflow data"
    );
    assert_eq!(
        ok.result["result"]["path"], "copy.txt",
        "from steps.write.result"
    );
    // Each step took the whole path: decisions with source workflow, the workflow's correlation.
    let steps_decided = eventually("the steps' decisions", || async {
        let mine: Vec<Value> = p
            .decisions()
            .await
            .into_iter()
            .filter(|d| {
                d["correlation_id"] == ok.correlation_id.as_str() && d["source"] == "workflow"
            })
            .collect();
        (mine.len() == 2).then_some(mine)
    })
    .await;
    assert!(steps_decided.iter().all(|d| d["decision"] == "allow"));
    // Workflow inputs get the heuristic deep scan (asset schemas are never trusted)…
    let f = p
        .fails("workflow.run.copy", json!({"file": "../../etc/passwd"}))
        .await;
    assert_eq!(f.code(), "outside_root", "{}", f.error.to_json());
    // …and a step's own check still applies to what the templates produce: an input under
    // a neutral key renders into a path inside a step.
    p.write(
        ".codeward/workflows/relay.md",
        "---\nname: relay\ninputs:\n  - {name: blob, type: string, required: true}\n---\n## Steps\n\n### read\n```yaml\ntool: fs.read\nargs:\n  path: \"{{inputs.blob}}\"\n```\n",
    );
    p.engine.reload_assets(&p.id).await.unwrap();
    let f = p
        .fails("workflow.run.relay", json!({"blob": "secret-name"}))
        .await;
    assert_eq!(f.error.details()["reason"], "workflow_step_failed");
    p.write(".env", "X=1");
    let f = p.fails("workflow.run.relay", json!({"blob": ".env"})).await;
    let text = f.error.to_json().to_string();
    assert!(text.contains("sensitive_path_denied"), "{text}");
    // A failing step stops the run.
    let f = p.fails("workflow.run.broken-chain", json!({})).await;
    assert_eq!(
        f.error.details()["reason"],
        "workflow_step_failed",
        "{}",
        f.error.to_json()
    );
    let steps = f.error.details()["details"]["steps"].clone();
    assert_eq!(steps.as_array().unwrap().len(), 1, "{steps}");
    assert_eq!(steps[0]["status"], "failed");
    assert!(!p.path("after.txt").exists(), "the next step never ran");
    // Unless the step may fail.
    let ok = p.ok("workflow.run.tolerant", json!({})).await;
    let statuses: Vec<&str> = ok.result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "completed"]);
    assert_eq!(
        std::fs::read_to_string(p.path("after.txt")).unwrap(),
        "written"
    );
    // Inputs are checked by the workflow's schema.
    let f = p.fails("workflow.run.copy", json!({})).await;
    assert_eq!(f.code(), "invalid_tool_args");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_picks_up_edits_and_the_catalog_follows() {
    let p = with_assets(ProjectOptions::default()).await;
    let before = serde_json::to_value(p.engine.assets_diagnostics(&p.id).await.unwrap()).unwrap();
    let g0 = before["generation"].as_u64().unwrap();
    p.write(
        ".codeward/commands/hello.md",
        "---\ndescription: Say hello\nrun: [echo, hello]\n---\nHello.\n",
    );
    std::fs::remove_file(p.path(".codeward/skills/rust-testing.md")).unwrap();
    let report = p.engine.reload_assets(&p.id).await.unwrap();
    assert_eq!(report.generation, g0 + 1);
    assert!(report.changed);
    let skills = p.engine.list_assets(&p.id, AssetKind::Skill).await.unwrap();
    assert_eq!(names(&skills), ["code-review"]);
    let tools: Vec<String> = p
        .engine
        .list_tools(&p.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(tools.contains(&"command.run.hello".to_owned()), "{tools:?}");
    assert_eq!(
        p.ok("command.run.hello", json!({})).await.result["stdout"],
        "hello\n"
    );
    // Lenient mode: a file that breaks keeps its previous version, marked stale.
    p.write(
        ".codeward/skills/code-review/SKILL.md",
        "---\nname: [unclosed\n---\nx",
    );
    let report = p.engine.reload_assets(&p.id).await.unwrap();
    assert!(report.error_count >= 1);
    let skills = p.engine.list_assets(&p.id, AssetKind::Skill).await.unwrap();
    assert_eq!(names(&skills), ["code-review"], "kept");
    let diag = serde_json::to_value(p.engine.assets_diagnostics(&p.id).await.unwrap()).unwrap();
    assert!(
        diag["errors"].to_string().contains("\"stale\":true"),
        "{diag}"
    );
    p.wait_event("project.assets_reloaded", |_| true).await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_reload_with_errors_is_rejected_and_the_old_generation_serves() {
    let p = with_assets(ProjectOptions::default().strict_asset_loading(true)).await;
    let g0 = serde_json::to_value(p.engine.assets_diagnostics(&p.id).await.unwrap()).unwrap()
        ["generation"]
        .as_u64()
        .unwrap();
    p.write(
        ".codeward/skills/broken.md",
        "---\ndescription: \"unterminated\n---\nx",
    );
    p.write(
        ".codeward/skills/new-good.md",
        "---\ndescription: fine\n---\nx",
    );
    let e = p.engine.reload_assets(&p.id).await.unwrap_err();
    assert_eq!(e.code(), "asset_load_failed", "{}", e.to_json());
    let errors = e.details()["errors"].clone();
    assert!(errors.to_string().contains("broken.md"), "{errors}");
    let diag = serde_json::to_value(p.engine.assets_diagnostics(&p.id).await.unwrap()).unwrap();
    assert_eq!(diag["generation"], g0, "the old generation keeps serving");
    let skills = p.engine.list_assets(&p.id, AssetKind::Skill).await.unwrap();
    assert_eq!(
        names(&skills),
        ["code-review", "rust-testing"],
        "nothing of the rejected load"
    );
    p.wait_event("project.assets_reload_failed", |_| true).await;
    // Fixed on disk: the next reload applies.
    std::fs::remove_file(p.path(".codeward/skills/broken.md")).unwrap();
    let report = p.engine.reload_assets(&p.id).await.unwrap();
    assert_eq!(report.generation, g0 + 1);
    assert_eq!(
        names(&p.engine.list_assets(&p.id, AssetKind::Skill).await.unwrap()),
        ["code-review", "new-good", "rust-testing"]
    );
    // A strict project does not start on broken assets at all.
    let dir = empty_root();
    write_file(
        dir.path(),
        ".codeward/skills/broken.md",
        "---\ndescription: \"x\n---\n",
    );
    let e = p
        .engine
        .start_project(
            dir.path(),
            ProjectOptions::default().strict_asset_loading(true),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "start_project_failed");
    assert_eq!(e.details()["stage"], "assets");
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_reloads_after_edits() {
    let p = with_assets(
        ProjectOptions::default()
            .watcher(true)
            .watcher_debounce_ms(50)
            .watcher_max_wait_ms(500),
    )
    .await;
    let watcher = p.diagnostics().await["watcher"].clone();
    assert_eq!(watcher["enabled"], true, "{watcher}");
    p.write(
        ".codeward/skills/watched.md",
        "---\ndescription: seen by the watcher\n---\nx",
    );
    let skills = eventually("the watcher loads the new skill", || async {
        let s = p.engine.list_assets(&p.id, AssetKind::Skill).await.unwrap();
        s.iter().any(|a| a.name == "watched").then_some(s)
    })
    .await;
    assert_eq!(skills.len(), 3);
    p.wait_event("project.watcher_reload_completed", |_| true)
        .await;
    // Editor temp files are ignored; deletes are seen.
    p.write(".codeward/skills/.#watched.md", "lock");
    std::fs::remove_file(p.path(".codeward/skills/watched.md")).unwrap();
    eventually("the watcher drops the deleted skill", || async {
        let s = p.engine.list_assets(&p.id, AssetKind::Skill).await.unwrap();
        (!s.iter().any(|a| a.name == "watched")).then_some(())
    })
    .await;
    p.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scripted_model_lists_skills_through_the_asset_tool() {
    let p = with_assets(ProjectOptions::default()).await;
    let c = p.conversation().await;
    let snap = p
        .engine
        .conversation_call(
            &p.id,
            &c,
            Signal::user_message("please list skills"),
            Some(Duration::from_secs(20)),
        )
        .await
        .unwrap();
    assert!(snap.settled);
    let t = p
        .engine
        .incident_timeline(&p.id, &c, codeward::TimelineQuery::default())
        .await
        .unwrap();
    let outcome: Vec<(&str, String)> = t
        .entries
        .iter()
        .filter(|e| e.source == "conversation" && e.event.starts_with("conversation.tool."))
        .map(|e| (e.event.as_str(), e.payload.to_string()))
        .collect();
    assert!(
        outcome
            .iter()
            .any(|(ev, payload)| *ev == "conversation.tool.completed"
                && payload.contains("rust-testing")),
        "{outcome:?}"
    );
    p.engine.shutdown().await.unwrap();
}
