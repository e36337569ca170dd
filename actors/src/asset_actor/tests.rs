//! Asset store actor tests: reloads through the actor emit events, concurrent requests
//! coalesce, a crash restarts the actor (which reloads once) while the snapshot keeps serving.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use codeward_assets::{AssetKind, AssetStore, LoadOptions, ReloadTrigger, ensure_layout};

use super::{AssetHandle, AssetStoreActor};
use crate::ids::ProjectId;
use crate::supervision::{ChildRegistry, Supervisor, SupervisorArgs, SupervisorConfig};
use crate::telemetry::{
    TelemetryActor, TelemetryConfig, TelemetryHandle, TelemetryLimits, TelemetryStore, no_redaction,
};

#[tokio::test]
async fn reloads_coalesce_emit_events_and_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".codeward");
    ensure_layout(&data).unwrap();
    std::fs::write(data.join("skills/a.md"), "# A\nbody\n").unwrap();
    let store = AssetStore::new(&data, LoadOptions::lenient());

    let registry = ChildRegistry::new();
    let tstore = Arc::new(std::sync::Mutex::new(TelemetryStore::new(
        ProjectId::parse("assets-test").unwrap(),
        TelemetryLimits::default(),
        0,
    )));
    let telemetry = TelemetryHandle::new(&registry, "telemetry", 1024, Arc::new(AtomicU64::new(0)));
    let sup = Supervisor::start(
        SupervisorConfig::new("assets-test"),
        SupervisorArgs {
            children: vec![
                TelemetryActor::child_spec(
                    "telemetry",
                    TelemetryConfig::new(no_redaction()),
                    tstore,
                ),
                AssetStoreActor::child_spec("assets", store.clone(), telemetry.clone()),
            ],
            registry: registry.clone(),
        },
    )
    .await
    .unwrap();
    let assets = AssetHandle::new(&registry, "assets", store);
    let first = assets.reload(ReloadTrigger::Startup, vec![]).await.unwrap();
    assert_eq!(first.generation, 1);
    assert_eq!(assets.snapshot().list(AssetKind::Skill).len(), 1);

    // Ten concurrent requests: every caller gets a report, fewer than ten loads run.
    std::fs::write(data.join("skills/b.md"), "# B\nbody\n").unwrap();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let a = assets.clone();
            tokio::spawn(async move { a.reload(ReloadTrigger::Api, vec![]).await.unwrap() })
        })
        .collect();
    let mut generations = Vec::new();
    for c in calls {
        generations.push(c.await.unwrap().generation);
    }
    let last = *generations.iter().max().unwrap();
    assert!(last < 1 + 10, "coalesced: {generations:?}");
    assert_eq!(assets.snapshot().list(AssetKind::Skill).len(), 2);

    telemetry.flush().await.unwrap();
    let snap = telemetry.snapshot().await.unwrap();
    assert_eq!(snap.event_counts["project.assets_loaded"], 1);
    assert!(snap.event_counts["project.assets_reloaded"] >= 1);

    // A crash: the snapshot keeps serving; the restarted actor reloads once by itself.
    let before = assets.snapshot().generation();
    let actor_gen = assets.actor_generation();
    assets.crash().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while assets.snapshot().generation() == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reload after restart"
        );
        assert_eq!(assets.snapshot().list(AssetKind::Skill).len(), 2);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(assets.actor_generation() > actor_gen);
    sup.stop("done").await;
}
