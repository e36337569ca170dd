//! Smoke test of the facade: a project on a temp dir, allowed and denied calls.

use codeward::{Engine, EngineConfig, ProjectOptions, ToolCall};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_tool_allowed_and_denied() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello world").unwrap();
    let engine = Engine::start(EngineConfig::default()).await.unwrap();
    let p = engine
        .start_project(dir.path(), ProjectOptions::default())
        .await
        .unwrap();
    let ok = engine
        .run_tool(&p, ToolCall::new("fs.read", json!({"path": "hello.txt"})))
        .await
        .unwrap();
    assert_eq!(ok.result["content"], "hello world");
    let denied = engine
        .run_tool(
            &p,
            ToolCall::new("fs.read", json!({"path": "../../../../etc/passwd"})),
        )
        .await
        .unwrap_err();
    assert_eq!(denied.code(), "outside_root");
    let unknown = engine
        .run_tool(&p, ToolCall::new("nope.tool", json!({})))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), "unknown_tool");
    let cmd = engine
        .run_tool(
            &p,
            ToolCall::new("command.run", json!({"argv": ["echo", "hi"]})),
        )
        .await
        .unwrap();
    assert_eq!(cmd.result["stdout"], "hi\n");
    let tools = engine.list_tools(&p).await.unwrap();
    assert!(tools.iter().any(|t| t.name == "fs.read"));
    let d = engine.diagnostics(&p).await.unwrap();
    assert_eq!(d.project_id, p);
    engine.stop_project(&p).await.unwrap();
    assert_eq!(
        engine.list_tools(&p).await.unwrap_err().code(),
        "project_not_found"
    );
    engine.shutdown().await.unwrap();
}
