//! Smoke tests of the facade (moved here from `runtime/tests/smoke.rs`): a project on a temp
//! dir with allowed and denied calls, and a scripted conversation with a tool call that is
//! restored after a project restart. The other modules attack each area in depth.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_conversation_with_tool_call_and_restore() {
    use codeward::{ConversationOptions, Signal, TimelineQuery};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello world").unwrap();
    let engine = Engine::start(EngineConfig::default()).await.unwrap();
    let p = engine
        .start_project(dir.path(), ProjectOptions::default())
        .await
        .unwrap();
    let c = engine
        .start_conversation(&p, ConversationOptions::default().with_id("conv-smoke"))
        .await
        .unwrap();
    let mut msg = Signal::user_message("read it");
    msg.data.insert(
        "script".into(),
        json!({"tool_calls": [{"name": "fs.read", "args": {"path": "hello.txt"}}]}),
    );
    let snap = engine
        .conversation_call(&p, &c, msg, Some(std::time::Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(snap.settled, "{snap:?}");
    let state = engine.conversation_state(&p, &c).await.unwrap();
    assert_eq!(state.run_history.len(), 1);
    assert_eq!(state.run_history[0].status, "completed");
    let timeline = engine
        .incident_timeline(&p, &c, TimelineQuery::default())
        .await
        .unwrap();
    let events: Vec<&str> = timeline.entries.iter().map(|e| e.event.as_str()).collect();
    assert!(
        events.contains(&"conversation.tool.completed"),
        "{events:?}"
    );
    assert!(events.contains(&"policy.allowed"), "{events:?}");
    // A restart of the project restores the conversation from the journal.
    engine.stop_project(&p).await.unwrap();
    let p = engine
        .start_project(dir.path(), ProjectOptions::default())
        .await
        .unwrap();
    let state = engine.conversation_state(&p, &c).await.unwrap();
    assert_eq!(
        state.snapshot.last_seq,
        snap.last_seq + 1,
        "stop entry journaled"
    );
    engine.shutdown().await.unwrap();
}
