//! Supervisor tests: restarts, escalation observed by a parent, one_for_one isolation, callers
//! racing restarts, and the three restart policies. Each test builds its own registry, and
//! children are unnamed, so no ractor-global names collide.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::mpsc;

use crate::supervision::{
    Backoff, ChildRegistry, ChildSpec, Escalation, Handle, HandleError, Intensity, OnExceeded,
    OnExceededAction, RestartPolicy, Supervisor, SupervisorArgs, SupervisorConfig, SupervisorEvent,
    SupervisorHandle,
};

// ---------------------------------------------------------------------------------------------
// A test worker: counts its starts in a shared counter (the "state it rebuilds from").

enum WorkerMsg {
    Ping { reply: RpcReplyPort<u64> },
    Panic,
    Stop,
}

struct Worker;

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = u64;
    type Arguments = Arc<AtomicU64>;

    async fn pre_start(
        &self,
        _myself: ActorRef<WorkerMsg>,
        starts: Arc<AtomicU64>,
    ) -> Result<u64, ActorProcessingErr> {
        Ok(starts.fetch_add(1, Ordering::SeqCst) + 1)
    }

    async fn handle(
        &self,
        myself: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        start_no: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Ping { reply } => {
                let _ = reply.send(*start_no);
            }
            WorkerMsg::Panic => panic!("worker asked to panic"),
            WorkerMsg::Stop => myself.stop(Some("done".into())),
        }
        Ok(())
    }
}

fn worker(name: &str, restart: RestartPolicy, starts: &Arc<AtomicU64>) -> ChildSpec {
    let starts = starts.clone();
    ChildSpec::actor(name, restart, move || (Worker, starts.clone()))
}

fn config(name: &str, intensity: Intensity) -> SupervisorConfig {
    SupervisorConfig::new(name)
        .with_intensity(intensity)
        .with_backoff(Backoff::none())
}

async fn ping(h: &Handle<WorkerMsg>) -> Result<u64, HandleError> {
    h.call(
        |reply| WorkerMsg::Ping { reply },
        Some(Duration::from_secs(5)),
    )
    .await
}

async fn start(
    cfg: SupervisorConfig,
    children: Vec<ChildSpec>,
    registry: &ChildRegistry,
) -> SupervisorHandle {
    Supervisor::start(
        cfg,
        SupervisorArgs {
            children,
            registry: registry.clone(),
        },
    )
    .await
    .expect("supervisor starts")
}

/// Crashes the child and waits until the supervisor published its replacement.
async fn crash_and_wait(h: &Handle<WorkerMsg>) -> u64 {
    let before = h.generation();
    h.try_cast(WorkerMsg::Panic).expect("child is up");
    h.clone()
        .with_retry_wait(Duration::from_secs(10))
        .wait_ready_after(before)
        .await
        .expect("child restarted")
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn panicking_child_is_restarted_and_serves_again() {
    let registry = ChildRegistry::new();
    let starts = Arc::new(AtomicU64::new(0));
    let sup = start(
        config("sup-restart", Intensity::default()),
        vec![worker("w", RestartPolicy::Permanent, &starts)],
        &registry,
    )
    .await;
    let h = registry.handle::<WorkerMsg>("w");
    assert_eq!(ping(&h).await, Ok(1));

    let generation = crash_and_wait(&h).await;
    assert_eq!(generation, 2);
    assert_eq!(ping(&h).await, Ok(2), "the restarted child serves");
    assert_eq!(starts.load(Ordering::SeqCst), 2);

    let children = sup.children().await.unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].restart_count, 1);
    assert_eq!(children[0].status, "running");
    assert!(
        children[0]
            .last_reason
            .as_deref()
            .is_some_and(|r| r.contains("worker asked to panic")),
        "{children:?}"
    );
    sup.stop("test_done").await;
}

#[tokio::test]
async fn siblings_are_undisturbed_one_for_one() {
    let registry = ChildRegistry::new();
    let (sa, sb) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let sup = start(
        config("sup-siblings", Intensity::default()),
        vec![
            worker("a", RestartPolicy::Permanent, &sa),
            worker("b", RestartPolicy::Permanent, &sb),
        ],
        &registry,
    )
    .await;
    let (a, b) = (
        registry.handle::<WorkerMsg>("a"),
        registry.handle::<WorkerMsg>("b"),
    );
    assert_eq!(ping(&b).await, Ok(1));
    crash_and_wait(&a).await;
    crash_and_wait(&a).await;
    assert_eq!(ping(&a).await, Ok(3));
    // b was never restarted: same generation, same incarnation, one start.
    assert_eq!(b.generation(), 1);
    assert_eq!(ping(&b).await, Ok(1));
    assert_eq!(sb.load(Ordering::SeqCst), 1);
    sup.stop("test_done").await;
}

// A parent actor that owns a supervisor as its linked child and forwards what it sees.
struct Parent;

enum ParentEvt {
    Failed(Option<Escalation>, String),
    Terminated(Option<String>),
}

impl Actor for Parent {
    type Msg = ();
    type State = mpsc::UnboundedSender<ParentEvt>;
    type Arguments = (
        mpsc::UnboundedSender<ParentEvt>,
        SupervisorConfig,
        SupervisorArgs,
    );

    async fn pre_start(
        &self,
        myself: ActorRef<()>,
        (tx, cfg, args): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Actor::spawn_linked(None, Supervisor::new(cfg), args, myself.get_cell()).await?;
        Ok(tx)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<()>,
        evt: SupervisionEvent,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(_, err) => {
                let esc = Escalation::from_failure(err.as_ref()).cloned();
                let _ = tx.send(ParentEvt::Failed(esc, err.to_string()));
            }
            SupervisionEvent::ActorTerminated(_, _, reason) => {
                let _ = tx.send(ParentEvt::Terminated(reason));
            }
            _ => {}
        }
        Ok(())
    }
}

#[tokio::test]
async fn panic_storm_past_intensity_escalates_to_the_parent() {
    let registry = ChildRegistry::new();
    let starts = Arc::new(AtomicU64::new(0));
    let sibling_starts = Arc::new(AtomicU64::new(0));
    let events = Arc::new(Mutex::new(Vec::<SupervisorEvent>::new()));
    let seen = events.clone();
    let cfg = config("sup-storm", Intensity::new(2, Duration::from_secs(10))).with_observer(
        Arc::new(move |e: &SupervisorEvent| seen.lock().unwrap().push(e.clone())),
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let args = SupervisorArgs {
        children: vec![
            worker("storm", RestartPolicy::Permanent, &starts),
            worker("calm", RestartPolicy::Permanent, &sibling_starts),
        ],
        registry: registry.clone(),
    };
    let (parent, _join) = Actor::spawn(None, Parent, (tx, cfg, args)).await.unwrap();
    let h = registry.handle::<WorkerMsg>("storm");
    assert_eq!(ping(&h).await, Ok(1));

    // Two restarts are tolerated, the third failure exceeds "2 in 10 s".
    crash_and_wait(&h).await;
    crash_and_wait(&h).await;
    h.try_cast(WorkerMsg::Panic).unwrap();

    let evt = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("parent hears from the supervisor")
        .expect("channel open");
    match evt {
        ParentEvt::Failed(Some(esc), text) => {
            assert_eq!(esc.supervisor, "sup-storm");
            assert_eq!(esc.child, "storm");
            assert_eq!(esc.restarts, 3);
            assert_eq!(esc.window_ms, 10_000);
            assert_eq!(esc.code(), "restart_intensity_exceeded");
            assert!(text.starts_with("restart_intensity_exceeded"), "{text}");
        }
        ParentEvt::Failed(None, text) => panic!("failure without escalation: {text}"),
        ParentEvt::Terminated(r) => panic!("terminated instead of escalating: {r:?}"),
    }
    // The children went down with the supervisor; handles report unavailable, not ractor errors.
    let fast = registry
        .handle::<WorkerMsg>("calm")
        .with_retry_wait(Duration::from_millis(50));
    assert!(matches!(
        ping(&fast).await,
        Err(HandleError::Unavailable { .. })
    ));
    let events = events.lock().unwrap().clone();
    assert!(
        events.iter().any(|e| matches!(
            e,
            SupervisorEvent::IntensityExceeded {
                action: OnExceededAction::Escalated,
                restart_count: 3,
                ..
            }
        )),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, SupervisorEvent::ChildRestarted { .. }))
            .count(),
        2
    );
    parent.stop(None);
}

#[tokio::test(start_paused = true)]
async fn restarts_outside_the_window_do_not_escalate() {
    let registry = ChildRegistry::new();
    let starts = Arc::new(AtomicU64::new(0));
    let sup = start(
        config("sup-window", Intensity::new(1, Duration::from_secs(10))),
        vec![worker("w", RestartPolicy::Permanent, &starts)],
        &registry,
    )
    .await;
    let h = registry.handle::<WorkerMsg>("w");
    for round in 0..4u64 {
        crash_and_wait(&h).await;
        assert_eq!(ping(&h).await, Ok(round + 2));
        tokio::time::advance(Duration::from_secs(11)).await;
    }
    assert!(sup.is_alive());
    sup.stop("test_done").await;
}

#[tokio::test(start_paused = true)]
async fn backoff_delays_repeated_restarts_on_paused_time() {
    let registry = ChildRegistry::new();
    let starts = Arc::new(AtomicU64::new(0));
    let cfg = SupervisorConfig::new("sup-backoff")
        .with_intensity(Intensity::new(10, Duration::from_secs(60)))
        .with_backoff(Backoff {
            base_ms: 1000,
            max_ms: 4000,
        });
    let sup = start(
        cfg,
        vec![worker("w", RestartPolicy::Permanent, &starts)],
        &registry,
    )
    .await;
    let h = registry.handle::<WorkerMsg>("w");
    crash_and_wait(&h).await; // 1st restart: immediate
    let t0 = tokio::time::Instant::now();
    crash_and_wait(&h).await; // 2nd restart: after 1 s of (paused, auto-advanced) time
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    sup.stop("test_done").await;
}

#[tokio::test]
async fn caller_racing_a_restart_gets_a_result_after_one_retry() {
    let registry = ChildRegistry::new();
    let starts = Arc::new(AtomicU64::new(0));
    let sup = start(
        config("sup-race", Intensity::new(50, Duration::from_secs(10))),
        vec![worker("w", RestartPolicy::Permanent, &starts)],
        &registry,
    )
    .await;
    let h = registry.handle::<WorkerMsg>("w");
    for _ in 0..20 {
        // The panic is queued before the ping on the same ref: the ping's actor dies before
        // replying, so the handle must wait for the fresh ref and retry.
        h.cast(|| WorkerMsg::Panic).await.unwrap();
        let got = ping(&h).await;
        match got {
            Ok(n) => assert!(n >= 2),
            Err(HandleError::Unavailable { component }) => assert_eq!(component, "w"),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    // With a restart that completes within the retry wait every call succeeded.
    assert_eq!(starts.load(Ordering::SeqCst), 21);
    sup.stop("test_done").await;
}

#[tokio::test(start_paused = true)]
async fn caller_gets_unavailable_when_the_restart_is_too_slow() {
    let registry = ChildRegistry::new();
    let starts = Arc::new(AtomicU64::new(0));
    let slow_starts = starts.clone();
    // Restarts (not the first start) take 5 s, longer than the 1 s retry wait.
    let spec = ChildSpec::new("slow", RestartPolicy::Permanent, move |sup| {
        let starts = slow_starts.clone();
        async move {
            if starts.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            let (r, _) = Actor::spawn_linked(None, Worker, starts, sup).await?;
            Ok(r.get_cell())
        }
    });
    let sup = start(
        config("sup-slow", Intensity::default()),
        vec![spec],
        &registry,
    )
    .await;
    let h = registry.handle::<WorkerMsg>("slow");
    assert_eq!(ping(&h).await, Ok(1));
    h.try_cast(WorkerMsg::Panic).unwrap();
    assert_eq!(
        ping(&h).await,
        Err(HandleError::Unavailable {
            component: "slow".into()
        })
    );
    // Once the restart lands, calls succeed again.
    let h_long = h.clone().with_retry_wait(Duration::from_secs(30));
    assert_eq!(ping(&h_long).await, Ok(2));
    sup.stop("test_done").await;
}

#[tokio::test]
async fn call_timeout_is_typed_and_not_retried() {
    struct Silent;
    impl Actor for Silent {
        type Msg = RpcReplyPort<()>;
        type State = Vec<RpcReplyPort<()>>;
        type Arguments = ();
        async fn pre_start(
            &self,
            _: ActorRef<Self::Msg>,
            _: (),
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(Vec::new())
        }
        async fn handle(
            &self,
            _: ActorRef<Self::Msg>,
            port: Self::Msg,
            held: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            held.push(port); // never answers
            Ok(())
        }
    }
    let registry = ChildRegistry::new();
    let sup = start(
        config("sup-timeout", Intensity::default()),
        vec![ChildSpec::actor("silent", RestartPolicy::Permanent, || {
            (Silent, ())
        })],
        &registry,
    )
    .await;
    let h = registry.handle::<RpcReplyPort<()>>("silent");
    let got = h.call(|reply| reply, Some(Duration::from_millis(20))).await;
    assert_eq!(
        got,
        Err(HandleError::Timeout {
            component: "silent".into(),
            timeout_ms: 20
        })
    );
    assert_eq!(got.unwrap_err().code(), "timeout");
    sup.stop("test_done").await;
}

#[tokio::test]
async fn restart_policies_permanent_transient_temporary() {
    let registry = ChildRegistry::new();
    let starts: Vec<Arc<AtomicU64>> = (0..5).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let sup = start(
        config("sup-policies", Intensity::new(20, Duration::from_secs(10))),
        vec![
            worker("perm-stop", RestartPolicy::Permanent, &starts[0]),
            worker("trans-stop", RestartPolicy::Transient, &starts[1]),
            worker("trans-panic", RestartPolicy::Transient, &starts[2]),
            worker("temp-panic", RestartPolicy::Temporary, &starts[3]),
            worker("temp-stop", RestartPolicy::Temporary, &starts[4]),
        ],
        &registry,
    )
    .await;
    let h = |n: &str| {
        registry
            .handle::<WorkerMsg>(n)
            .with_retry_wait(Duration::from_secs(5))
    };

    // permanent: a normal stop is restarted
    h("perm-stop").try_cast(WorkerMsg::Stop).unwrap();
    h("perm-stop")
        .wait_ready_after(1)
        .await
        .expect("permanent restarts");
    assert_eq!(ping(&h("perm-stop")).await, Ok(2));

    // transient: a failure is restarted ...
    crash_and_wait(&h("trans-panic")).await;
    assert_eq!(ping(&h("trans-panic")).await, Ok(2));

    // ... a normal stop is not; temporary never restarts. Their handles fail fast.
    for name in ["trans-stop", "temp-stop"] {
        h(name).try_cast(WorkerMsg::Stop).unwrap();
    }
    h("temp-panic").try_cast(WorkerMsg::Panic).unwrap();
    for name in ["trans-stop", "temp-stop", "temp-panic"] {
        assert_eq!(
            ping(&h(name)).await,
            Err(HandleError::Unavailable {
                component: name.into()
            }),
            "{name}"
        );
    }
    let names: Vec<String> = sup
        .children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.actor)
        .collect();
    assert_eq!(names, vec!["perm-stop", "trans-panic"]);
    assert_eq!(starts[1].load(Ordering::SeqCst), 1);
    assert_eq!(starts[3].load(Ordering::SeqCst), 1);
    assert_eq!(starts[4].load(Ordering::SeqCst), 1);
    sup.stop("test_done").await;
}

#[tokio::test]
async fn child_past_its_own_intensity_stops_alone() {
    let registry = ChildRegistry::new();
    let (sa, sb) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let sup = start(
        config("sup-own", Intensity::new(20, Duration::from_secs(10))),
        vec![
            worker("conv", RestartPolicy::Transient, &sa).with_intensity(
                Intensity::new(1, Duration::from_secs(10)),
                OnExceeded::StopChild,
            ),
            worker("other", RestartPolicy::Permanent, &sb),
        ],
        &registry,
    )
    .await;
    let conv = registry.handle::<WorkerMsg>("conv");
    crash_and_wait(&conv).await;
    conv.try_cast(WorkerMsg::Panic).unwrap();
    assert_eq!(
        ping(&conv.clone().with_retry_wait(Duration::from_secs(5))).await,
        Err(HandleError::Unavailable {
            component: "conv".into()
        })
    );
    assert!(sup.is_alive());
    assert_eq!(ping(&registry.handle::<WorkerMsg>("other")).await, Ok(1));
    sup.stop("test_done").await;
}

#[tokio::test]
async fn dynamic_children_start_and_stop_on_request() {
    let registry = ChildRegistry::new();
    let starts = Arc::new(AtomicU64::new(0));
    let sup = start(config("sup-dyn", Intensity::default()), vec![], &registry).await;
    sup.start_child(worker("d", RestartPolicy::Permanent, &starts))
        .await
        .unwrap();
    let dup = sup
        .start_child(worker("d", RestartPolicy::Permanent, &starts))
        .await;
    assert_eq!(dup.unwrap_err().code(), "duplicate_child");
    assert_eq!(ping(&registry.handle::<WorkerMsg>("d")).await, Ok(1));
    sup.stop_child("d").await.unwrap();
    // stopped on request: not restarted, handle fails fast
    assert_eq!(
        ping(&registry.handle::<WorkerMsg>("d")).await,
        Err(HandleError::Unavailable {
            component: "d".into()
        })
    );
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    assert_eq!(
        sup.stop_child("d").await.unwrap_err().code(),
        "child_not_found"
    );
    sup.stop("test_done").await;
}

#[tokio::test]
async fn nested_supervisor_escalation_is_restarted_by_its_parent() {
    let registry = ChildRegistry::new();
    let starts = Arc::new(AtomicU64::new(0));
    let inner_registry = registry.clone();
    let inner_starts = starts.clone();
    let inner = Supervisor::child_spec(
        config("inner", Intensity::new(0, Duration::from_secs(10))),
        RestartPolicy::Transient,
        registry.clone(),
        move || vec![worker("leaf", RestartPolicy::Permanent, &inner_starts)],
    );
    let _ = inner_registry;
    let outer = start(
        config("outer", Intensity::new(5, Duration::from_secs(10))),
        vec![inner],
        &registry,
    )
    .await;
    let leaf = registry.handle::<WorkerMsg>("leaf");
    assert_eq!(ping(&leaf).await, Ok(1));
    // inner tolerates no restart: it escalates, outer restarts it (transient + failure),
    // and the restarted inner starts a fresh leaf.
    crash_and_wait(&leaf).await;
    assert_eq!(ping(&leaf).await, Ok(2));
    let children = outer.children().await.unwrap();
    assert_eq!(children[0].actor, "inner");
    assert_eq!(children[0].restart_count, 1);
    assert!(
        children[0]
            .last_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("restart_intensity_exceeded")),
        "{children:?}"
    );
    outer.stop("test_done").await;
}

#[tokio::test(start_paused = true)]
async fn default_intensity_and_backoff_escalate_on_the_sixth_failure_in_ten_seconds() {
    let registry = ChildRegistry::new();
    let starts = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let args = SupervisorArgs {
        children: vec![worker("w", RestartPolicy::Permanent, &starts)],
        registry: registry.clone(),
    };
    // SPEC defaults: 5 restarts in 10 s, backoff 0/100/200/400/800 ms (1.5 s in all).
    let (parent, _join) = Actor::spawn(
        None,
        Parent,
        (tx, SupervisorConfig::new("sup-defaults"), args),
    )
    .await
    .unwrap();
    let h = registry.handle::<WorkerMsg>("w");
    let t0 = tokio::time::Instant::now();
    for _ in 0..5 {
        crash_and_wait(&h).await;
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "backoff applied: {:?}",
        t0.elapsed()
    );
    assert!(rx.try_recv().is_err(), "five restarts are tolerated");
    h.try_cast(WorkerMsg::Panic).unwrap();
    match rx.recv().await {
        Some(ParentEvt::Failed(Some(esc), _)) => {
            assert_eq!((esc.restarts, esc.window_ms), (6, 10_000));
        }
        _ => panic!("expected an escalation"),
    }
    assert_eq!(starts.load(Ordering::SeqCst), 6);
    parent.stop(None);
}
