use codeward::*;
use codeward_tests::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe() {
    let tools = TestTools::default();
    let p = TestProject::start_with(config_with(&tools), ProjectOptions::default()).await;
    let c = p.conversation().await;
    let msg = scripted("background", json!({"tool_calls": [{"name": "test.gate", "args": {"n": 7}, "run_mode": "async"}]}));
    let snap = p.engine.conversation_call(&p.id, &c, msg, Some(Duration::from_secs(5))).await.unwrap();
    println!("SNAP {}", serde_json::to_string(&snap).unwrap());
    if let Projection::Timeline(t) = p.engine.conversation_projection(&p.id, &c, ProjectionKey::Timeline).await.unwrap() {
        for e in t.entries { println!("{} {} {}", e.seq, e.signal.kind.as_str(), serde_json::Value::Object(e.signal.data)); }
    }
    let msg = scripted("slow", json!({"tool_calls": [{"name": "test.gate", "args": {"n": 1}}]}));
    let c2 = p.conversation().await;
    p.engine.conversation_cast(&p.id, &c2, msg).await.unwrap();
    eventually("x", || async { (tools.in_flight() == 2).then_some(()) }).await;
    let cancel = Signal::cancel(None);
    println!("CANCEL corr {}", cancel.correlation_id);
    p.engine.conversation_call(&p.id, &c2, cancel, Some(Duration::from_secs(5))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for e in p.recent_events().await.iter().rev() { println!("{e}"); }
    println!("in_flight {} cancelled {}", tools.in_flight(), tools.cancelled());
    let c3 = p.conversation().await;
    let msg = scripted("slow", json!({"tool_calls": [{"name": "test.gate", "args": {"n": 3}}]}));
    p.engine.conversation_cast(&p.id, &c3, msg).await.unwrap();
    eventually("x", || async { (tools.in_flight() == 2).then_some(()) }).await;
    p.engine.inject_failure(&p.id, FailureTarget::Conversation { conversation_id: c3.clone() }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    println!("after crash in_flight {} cancelled {}", tools.in_flight(), tools.cancelled());
    if let Projection::Timeline(t) = p.engine.conversation_projection(&p.id, &c3, ProjectionKey::Timeline).await.unwrap() {
        for e in t.entries { println!("{} {} {}", e.seq, e.signal.kind.as_str(), serde_json::Value::Object(e.signal.data)); }
    }
    tools.open();
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("{}", p.diagnostics().await["telemetry"]["counters"]);
}
