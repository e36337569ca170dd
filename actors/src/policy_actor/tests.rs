//! Policy actor tests: snapshots without a mailbox hop, recompile, a crash restarts the actor
//! while the snapshot keeps serving.

use std::sync::{Arc, Mutex};

use codeward_policies::{EgressPolicy, PolicyContext, PolicyOptions, PolicySet};
use tokio::sync::watch;

use super::{PolicyActor, PolicyHandle, PolicyInputs};
use crate::supervision::{ChildRegistry, Supervisor, SupervisorArgs, SupervisorConfig};

#[tokio::test]
async fn snapshot_recompile_and_crash() {
    let opts = PolicyOptions::default();
    let ctx = PolicyContext::new("/srv/app");
    let first = PolicySet::compile(&opts, ctx.clone()).unwrap();
    let (tx, _rx) = watch::channel(Arc::new(first));
    let slot = Arc::new(tx);
    let inputs = Arc::new(PolicyInputs {
        options: Mutex::new(opts.clone()),
        context: ctx,
    });
    let registry = ChildRegistry::new();
    let sup = Supervisor::start(
        SupervisorConfig::new("policy-test"),
        SupervisorArgs {
            children: vec![PolicyActor::child_spec("policy", inputs, slot.clone())],
            registry: registry.clone(),
        },
    )
    .await
    .unwrap();
    let handle = PolicyHandle::new(&registry, "policy", &slot);
    assert!(!handle.current().egress_allowed());

    let mut allow = opts.clone();
    allow.network_egress_policy = EgressPolicy::Allow;
    allow.network_allowlist = vec!["example.com".into()];
    handle.recompile(allow).await.unwrap().unwrap();
    assert!(handle.current().egress_allowed());

    let mut bad = opts.clone();
    bad.network_allowlist = vec!["".into()];
    assert!(handle.recompile(bad).await.unwrap().is_err());
    assert!(
        handle.current().egress_allowed(),
        "old snapshot keeps serving"
    );

    let generation = handle.generation();
    handle.crash().unwrap();
    // The restarted actor recompiles from the last accepted options.
    let snap = handle.snapshot().await.unwrap();
    assert!(snap.egress_allowed());
    assert!(handle.generation() > generation);
    assert_eq!(sup.children().await.unwrap()[0].restart_count, 1);
    sup.stop("done").await;
}
