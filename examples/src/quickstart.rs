//! The quickstart's body (`cargo run --release --example quickstart` calls [`run`]): starts an
//! [`Engine`] on a project root (the demo project), prints the project and its effective
//! policy, allowed calls (`fs.read`, `fs.list`, `asset.list`, command assets), denied calls
//! with the policy's `explain` line, a scripted conversation with tool calls, its incident
//! timeline and a diagnostics summary. Every expected outcome is a [`Checks`] entry, so the
//! run doubles as a smoke check (and is one: see the test below).

use std::path::Path;
use std::time::Duration;

use codeward::{
    AssetKind, ConversationId, ConversationOptions, Engine, EngineConfig, ProjectId,
    ProjectOptions, Signal, TimelineQuery, ToolCall,
};
use serde_json::{Value, json};

use crate::{Checks, Table};

/// What can stop the quickstart before its checks are done (an engine call that must work).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the quickstart on `root`, printing sectioned output to stdout; returns the tally of
/// expected outcomes.
pub async fn run(root: &Path) -> Result<Checks, BoxError> {
    let mut checks = Checks::new();
    let engine = Engine::start(EngineConfig::default()).await?;
    let health = engine.health().await;
    section("engine");
    println!(
        "  codeward {} · os sandbox: available {} (landlock abi {})",
        health.version, health.os_sandbox["available"], health.os_sandbox["landlock_abi"]
    );
    let outcome = demo(&engine, root, &mut checks).await;
    engine.shutdown().await?;
    outcome.map(|()| checks)
}

async fn demo(engine: &Engine, root: &Path, checks: &mut Checks) -> Result<(), BoxError> {
    let p = engine
        .start_project(root, ProjectOptions::default())
        .await?;
    let net_enforced = project(engine, &p, checks).await?;
    allowed(engine, &p, net_enforced, checks).await?;
    denied(engine, &p, checks).await?;
    let c = conversation(engine, &p, checks).await?;
    timeline(engine, &p, &c, checks).await?;
    diagnostics(engine, &p, checks).await?;
    engine.stop_conversation(&p, &c).await?;
    engine.stop_project(&p).await?;
    Ok(())
}

fn section(title: &str) {
    println!(
        "\n== {title} {}",
        "=".repeat(76usize.saturating_sub(title.len()))
    );
}

fn list(v: &Value) -> String {
    match v.as_array() {
        Some(items) if items.is_empty() => "[]".into(),
        Some(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        None => v.to_string(),
    }
}

/// Prints the project and its effective policy; returns whether the OS blocks the network of
/// command tools (then command tools stay available under egress `deny`, SPEC §5.6).
async fn project(engine: &Engine, p: &ProjectId, checks: &mut Checks) -> Result<bool, BoxError> {
    let d = engine.diagnostics(p).await?;
    section("project started");
    println!("  id          {}", d.project_id);
    println!("  root        {}", d.root_path);
    println!("  state dir   {} (journal)", d.state_dir);
    println!("  health      {}", d.health["status"]);
    let pol = &d.policy;
    println!("\n  effective policy (from codeward.toml, narrowing only):");
    println!("    deny_tools              {}", list(&pol["deny_tools"]));
    println!(
        "    network_egress_policy   {}",
        pol["network_egress_policy"]
    );
    let sensitive = pol["sensitive_path_denylist"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let extra: Vec<&Value> = sensitive
        .iter()
        .filter(|v| v.as_str().is_some_and(|s| s.starts_with("secrets")))
        .collect();
    println!(
        "    sensitive paths         {} patterns (built-ins incl. .env, keys, cloud credentials) + {}",
        sensitive.len(),
        extra
            .iter()
            .map(|v| v.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "    tool_env_allowlist      {}",
        list(&pol["tool_env_allowlist"])
    );
    for key in ["deny_tools", "sensitive_path_denylist"] {
        checks.expect(
            d.option_sources.get(key).map(|s| s.as_str()) == Some("file"),
            &format!("`{key}` comes from codeward.toml"),
            "",
        );
    }
    if let Some(warnings) = pol["warnings"].as_array().filter(|w| !w.is_empty()) {
        println!(
            "    warnings                {}",
            list(&Value::Array(warnings.clone()))
        );
    }
    let a = &d.assets;
    println!(
        "\n  assets: generation {} · {} skills, {} commands, {} workflows, skill graph {} nodes / {} edges, {} errors",
        a["generation"],
        a["counts"]["skill"],
        a["counts"]["command"],
        a["counts"]["workflow"],
        a["counts"]["skill_graph_nodes"],
        a["counts"]["skill_graph_edges"],
        a["errors"].as_array().map_or(0, Vec::len)
    );
    let tools = engine.list_tools(p).await?;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    println!("  tools ({}): {}", names.len(), names.join(", "));
    checks.expect(
        !names.contains(&"fs.delete"),
        "fs.delete is hidden by deny_tools",
        "",
    );
    checks.expect(
        !names.contains(&"http.fetch"),
        "http.fetch is hidden by egress deny",
        "",
    );
    Ok(d.os_sandbox["net"].as_bool().unwrap_or(false) || names.contains(&"command.run"))
}

async fn allowed(
    engine: &Engine,
    p: &ProjectId,
    net_enforced: bool,
    checks: &mut Checks,
) -> Result<(), BoxError> {
    section("allowed calls");
    let read = engine
        .run_tool(p, ToolCall::new("fs.read", json!({"path": "src/main.rs"})))
        .await;
    match &read {
        Ok(ok) => {
            let content = ok.result["content"].as_str().unwrap_or_default();
            checks.expect(
                content.contains("hello from the demo project"),
                "fs.read src/main.rs",
                format!(
                    "{} bytes in {} ms, decision {}",
                    ok.result["size"], ok.duration_ms, ok.decision_id
                ),
            );
        }
        Err(e) => checks.expect(false, "fs.read src/main.rs", e),
    }
    let listing = engine
        .run_tool(p, ToolCall::new("fs.list", json!({"path": "."})))
        .await;
    match &listing {
        Ok(ok) => {
            let entries: Vec<String> = ok.result["entries"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .map(|x| {
                            format!(
                                "{}{}",
                                x["path"].as_str().unwrap_or_default(),
                                if x["type"] == "dir" { "/" } else { "" }
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            checks.expect(
                entries.iter().any(|e| e.starts_with("src")),
                "fs.list .",
                entries.join(" "),
            );
        }
        Err(e) => checks.expect(false, "fs.list .", e),
    }
    let skills = engine
        .run_tool(p, ToolCall::new("asset.list", json!({"type": "skills"})))
        .await;
    match &skills {
        Ok(ok) => {
            let names: Vec<&str> = ok.result["items"]
                .as_array()
                .map(|i| i.iter().filter_map(|s| s["name"].as_str()).collect())
                .unwrap_or_default();
            checks.expect(
                names.contains(&"code-review") && names.contains(&"rust-testing"),
                "asset.list skills",
                names.join(", "),
            );
        }
        Err(e) => checks.expect(false, "asset.list skills", e),
    }
    let commands = engine.list_assets(p, AssetKind::Command).await?;
    println!(
        "  (commands: {})",
        commands
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let todos = engine
        .run_tool(p, ToolCall::new("command.run.todos", json!({"dir": "src"})))
        .await;
    match (&todos, net_enforced) {
        (Ok(ok), _) => {
            let stdout = ok.result["stdout"].as_str().unwrap_or_default().trim();
            checks.expect(
                stdout.contains("TODO: greet by name"),
                "command.run.todos {dir: src} (a command asset, run in the OS sandbox)",
                format!("exit {} · {stdout}", ok.result["exit_code"]),
            );
        }
        (Err(e), false) => checks.expect(
            e.code() == "network_denied",
            "command.run.todos is refused: the OS cannot block its network here, so egress deny applies",
            e.code(),
        ),
        (Err(e), true) => checks.expect(false, "command.run.todos", e),
    }
    let review = engine
        .run_tool(
            p,
            ToolCall::new("command.run.review", json!({"file": "src/main.rs"})),
        )
        .await;
    match &review {
        Ok(ok) => checks.expect(
            ok.result["mode"] == "prompt",
            "command.run.review {file: src/main.rs} (a prompt command)",
            ok.result["prompt"].as_str().unwrap_or_default(),
        ),
        Err(e) => checks.expect(false, "command.run.review", e),
    }
    Ok(())
}

async fn denied(engine: &Engine, p: &ProjectId, checks: &mut Checks) -> Result<(), BoxError> {
    section("denied calls (with the policy's explanation)");
    let cases = [
        (
            "fs.read ../../etc/passwd",
            ToolCall::new("fs.read", json!({"path": "../../etc/passwd"})),
            "outside_root",
        ),
        (
            "fs.read .env",
            ToolCall::new("fs.read", json!({"path": ".env"})),
            "sensitive_path_denied",
        ),
        (
            "fs.read secrets/notes.txt",
            ToolCall::new("fs.read", json!({"path": "secrets/notes.txt"})),
            "sensitive_path_denied",
        ),
        (
            "fs.delete src/main.rs",
            ToolCall::new("fs.delete", json!({"path": "src/main.rs"})),
            "denied",
        ),
        (
            "http.fetch https://example.com/",
            ToolCall::new("http.fetch", json!({"url": "https://example.com/"})),
            "network_denied",
        ),
    ];
    for (what, call, expected) in cases {
        let outcome = engine.run_tool(p, call.clone()).await;
        let decision = engine.explain_tool_call(p, call).await?;
        match outcome {
            Ok(_) => checks.expect(false, what, "was allowed"),
            Err(e) => {
                checks.expect(e.code() == expected, what, e.code());
                println!("          explain: {}", decision.explain);
            }
        }
    }
    Ok(())
}

/// The user messages of the scripted conversation: (label, text, script).
fn script() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        (
            "list skills",
            "Which skills does this project have?",
            Some(json!({
                "tool_calls": [{"name": "asset.list", "args": {"type": "skills"}}],
            })),
        ),
        (
            "read src/main.rs",
            "What does the entry point print?",
            Some(json!({
                "assistant_text": "Let me read the entry point.",
                "tool_calls": [{"name": "fs.read", "args": {"path": "src/main.rs"}}],
            })),
        ),
        (
            "try .env",
            "Show me the API token.",
            Some(json!({
                "assistant_text": "Reading .env.",
                "tool_calls": [{"name": "fs.read", "args": {"path": ".env"}}],
            })),
        ),
    ]
}

async fn conversation(
    engine: &Engine,
    p: &ProjectId,
    checks: &mut Checks,
) -> Result<ConversationId, BoxError> {
    section("scripted conversation");
    let c = engine
        .start_conversation(p, ConversationOptions::default())
        .await?;
    println!("  conversation {c} (model client `scripted`)");
    for (label, text, script) in script() {
        let mut msg = Signal::user_message(text);
        if let Some(script) = script {
            msg.data.insert("script".into(), script);
        }
        let snap = engine
            .conversation_call(p, &c, msg, Some(Duration::from_secs(30)))
            .await?;
        checks.expect(
            snap.settled,
            &format!("user: {text:?}"),
            format!("settled at seq {} ({label})", snap.last_seq),
        );
    }
    let state = engine.conversation_state(p, &c).await?;
    let statuses: Vec<&str> = state
        .run_history
        .iter()
        .map(|r| r.status.as_str())
        .collect();
    checks.expect(
        statuses == ["completed", "completed", "completed"],
        "three runs completed",
        statuses.join(", "),
    );
    Ok(c)
}

async fn timeline(
    engine: &Engine,
    p: &ProjectId,
    c: &ConversationId,
    checks: &mut Checks,
) -> Result<(), BoxError> {
    section("incident timeline of the conversation");
    let t = engine
        .incident_timeline(
            p,
            c,
            TimelineQuery {
                limit: 200,
                correlation_id: None,
            },
        )
        .await?;
    let mut table = Table::new(["at", "source", "seq", "event", "detail"]);
    for e in &t.entries {
        table.row([
            e.at.get(11..23).unwrap_or(&e.at).to_owned(),
            e.source.clone(),
            e.seq.to_string(),
            e.event.clone(),
            detail(&e.event, e.tool.as_deref(), &e.payload),
        ]);
    }
    print!("{}", indent(&table.render()));
    println!(
        "  {} entries{}",
        t.total_entries,
        if t.truncated { " (truncated)" } else { "" }
    );
    let events: Vec<&str> = t.entries.iter().map(|e| e.event.as_str()).collect();
    let assistant: Vec<&str> = t
        .entries
        .iter()
        .filter(|e| e.event == "conversation.assistant.message")
        .filter_map(|e| e.payload["content"].as_str())
        .collect();
    checks.expect(
        events.contains(&"policy.allowed") && events.contains(&"conversation.tool.completed"),
        "timeline shows the allowed tool call",
        "",
    );
    checks.expect(
        events.contains(&"security.sensitive_path_denied"),
        "timeline shows the model's .env read being refused",
        "",
    );
    checks.expect(
        assistant.contains(&"Tool fs.read failed: sensitive_path_denied."),
        "the model was told why",
        assistant.join(" | "),
    );
    Ok(())
}

/// A short, single-line summary of a timeline payload.
fn detail(event: &str, tool: Option<&str>, payload: &Value) -> String {
    let s = |k: &str| payload[k].as_str().unwrap_or_default().to_owned();
    let text = match event {
        "conversation.user.message" | "conversation.assistant.message" => {
            format!("{:?}", s("content"))
        }
        "conversation.tool.requested" => format!("{} {}", s("name"), payload["args"]),
        "conversation.tool.completed" => format!(
            "{} in {} ms",
            tool.unwrap_or_default(),
            payload["duration_ms"]
        ),
        "conversation.tool.failed" => format!(
            "{} {}",
            tool.unwrap_or_default(),
            payload["error"]["code"]
                .as_str()
                .or(payload["reason"].as_str())
                .unwrap_or_default()
        ),
        "conversation.run.closed" => s("status"),
        "policy.allowed" | "policy.denied" => format!("{} {}", s("tool"), s("reason_code")),
        "security.sensitive_path_denied" | "security.sandbox_violation" => s("explain"),
        _ => tool.map(str::to_owned).unwrap_or_default(),
    };
    let text: String = text.chars().take(90).collect();
    text
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

async fn diagnostics(engine: &Engine, p: &ProjectId, checks: &mut Checks) -> Result<(), BoxError> {
    section("diagnostics summary");
    let d = engine.diagnostics(p).await?;
    let counters = &d.telemetry["counters"];
    let mut table = Table::new(["counter", "value"]);
    for key in [
        "tool.calls",
        "tool.completed",
        "tool.failed",
        "policy.allowed",
        "policy.denied",
        "telemetry.dropped",
        "alerts.sent",
        "alerts.dropped",
        "journal.appends",
    ] {
        table.row([key.to_owned(), counters[key].to_string()]);
    }
    print!("{}", indent(&table.render()));
    println!(
        "  health {} · {} errors in the last {} ms · total events {}",
        d.health["status"],
        d.health["error_count"],
        d.health["window_ms"],
        d.telemetry["total_events"]
    );
    println!(
        "  journal: {} signals, {} events, {} bytes",
        d.journal["signal_count"], d.journal["event_count"], d.journal["size_bytes"]
    );
    for s in &d.supervision {
        println!(
            "  actor {:<14} {} (restarts in window {})",
            s["actor"].as_str().unwrap_or_default(),
            s["status"].as_str().unwrap_or_default(),
            s["restarts_in_window"]
        );
    }
    println!("\n  recent decisions (newest first):");
    let decisions = d.policy["recent_decisions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for dec in decisions.iter().take(8) {
        println!(
            "    {:<5} {:<22} {:<18} {}",
            dec["decision"].as_str().unwrap_or_default(),
            dec["reason_code"].as_str().unwrap_or_default(),
            dec["tool"].as_str().unwrap_or_default(),
            dec["explain"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(80)
                .collect::<String>()
        );
    }
    let n = |k: &str| counters[k].as_u64().unwrap_or(0);
    checks.expect(
        n("policy.denied") >= 6 && n("policy.allowed") >= 5,
        "counters saw the allowed and denied calls",
        format!(
            "allowed {}, denied {}",
            n("policy.allowed"),
            n("policy.denied")
        ),
    );
    checks.expect(n("telemetry.dropped") == 0, "no telemetry dropped", "");
    let check = engine.check_journal(p, false).await?;
    checks.expect(
        serde_json::to_value(&check)?["ok"] == true,
        "journal quick_check",
        serde_json::to_string(&check)?,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_quickstart_passes_on_a_copy_of_the_demo_project() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("demo-project");
        crate::copy_demo_project(&crate::demo_project_dir(), &root).unwrap();
        let checks = run(&root).await.unwrap();
        assert_eq!(checks.failures(), [] as [String; 0]);
        assert!(checks.passed() >= 20, "{} checks", checks.passed());
    }
}
