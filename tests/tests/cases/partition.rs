//! An agent's link to the coordinator is cut by a UDP proxy the test controls (packets
//! dropped both ways, nothing closed). Cut for less than the grace, the agent keeps its task:
//! after reconnecting it is told to resume it and its proof is accepted. Cut for longer, the
//! task is handed to another agent of the same operator with the collateral still bound; the
//! cut-off agent, back, is not given the task again and its late proof is refused. Stake ends
//! where it started: all free, nothing slashed.

use crate::support::checks::{agent_is, assert_row, has_history_line};
use crate::support::cluster::{test_policy, Cluster, ClusterSpec};
use crate::support::proxy::UdpProxy;
use crate::support::real_agent::{cpu_prover, RealAgent};
use crate::support::scripted::{ScriptOptions, ScriptedAgent};
use crate::support::wait::{history, TaskWatch};
use crate::support::STEP_TIMEOUT;
use proofrack_common::protocol::{CoordinatorToAgent, DeliveryOutcome, TaskState};
use proofrack_common::tls::Liveness;
use proofrack_coordinator::Policy;
use std::time::{Duration, Instant};

/// The grace a disconnected agent has to come back before its tasks are handed over.
const GRACE_MS: u64 = 5_000;
/// The cut-off agent's link: a silent peer counts as gone after 1.5 s (instead of 12 s), so
/// the coordinator notices the cut well within the grace.
const LIVENESS: Liveness = Liveness {
    idle_timeout: Duration::from_millis(1_500),
    keep_alive: Duration::from_millis(300),
};
const COLLATERAL: u128 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_shorter_than_the_grace_keeps_the_task_and_a_longer_one_hands_it_over() {
    let spec = ClusterSpec {
        policy: Policy {
            agent_grace_ms: GRACE_MS,
            ..test_policy()
        },
        operators: vec![("op-a", 100)],
        ..ClusterSpec::default()
    };
    let cluster = Cluster::start("partition", spec).await;
    let client = cluster.client("alice").await;
    let proxy = UdpProxy::start(cluster.addr).await;
    let behind_proxy = || ScriptOptions {
        via: Some(proxy.addr),
        liveness: LIVENESS,
        ..ScriptOptions::default()
    };
    let edge = ScriptedAgent::connect(&cluster, "op-a", "edge", behind_proxy()).await;
    client.wait_agent_ready("op-a", "edge").await;

    // A cut shorter than the grace.
    let (edge, offer) = {
        let mut edge = edge;
        let task = client.submit("mimc-4", 3, COLLATERAL).await;
        let offer = edge.next_offer().await;
        assert_eq!(offer.task, task);
        edge.accept(task).await;
        let mut watch = TaskWatch::start(&client, task);
        watch
            .until("proving by op-a/edge", STEP_TIMEOUT, |v| {
                matches!(v.state, TaskState::Proving { .. })
            })
            .await;

        proxy.cut();
        client.wait_agent_gone("op-a", "edge").await;
        let gone_at = Instant::now();
        assert_row(&client.operator("op-a").await, 100, COLLATERAL, 0);
        proxy.restore();
        edge.close().await;
        let mut edge = ScriptedAgent::connect(&cluster, "op-a", "edge", behind_proxy()).await;
        assert!(
            gone_at.elapsed() < Duration::from_millis(GRACE_MS),
            "the reconnect took longer than the grace on this machine; the case did not run"
        );
        let resumed = loop {
            match edge.next_message().await {
                CoordinatorToAgent::Resume(o) => break o,
                CoordinatorToAgent::Offer(o) => panic!("a new offer instead of Resume: {o:?}"),
                _ => {}
            }
        };
        assert_eq!(resumed.task, task, "the reconnected agent resumes its task");
        let delivery = edge.prove(&resumed).await;
        assert_eq!(edge.deliver(&delivery).await, Ok(DeliveryOutcome::Accepted));
        let done = watch.verified().await;
        assert!(agent_is(&done.state, "op-a", "edge"), "{:?}", done.state);
        assert!(
            !watch.state_names().contains(&"reassigning"),
            "a cut within the grace reassigned the task: {:?}",
            watch.state_names()
        );
        assert_row(&client.operator("op-a").await, 100, 0, 0);
        let next = client.submit("mimc-4", 4, COLLATERAL).await;
        let offer = edge.next_offer().await;
        assert_eq!(offer.task, next);
        (edge, offer)
    };

    // A cut longer than the grace: the task goes to another agent of op-a.
    let task = offer.task;
    edge.accept(task).await;
    let mut watch = TaskWatch::start(&client, task);
    watch
        .until("proving by op-a/edge", STEP_TIMEOUT, |v| {
            agent_is(&v.state, "op-a", "edge") && matches!(v.state, TaskState::Proving { .. })
        })
        .await;
    proxy.cut();
    client.wait_agent_gone("op-a", "edge").await;
    // Joins only now, so the first offer could only have gone to op-a/edge.
    let spare = RealAgent::start(&cluster, "op-a", "spare", cpu_prover());
    // The handover shows as `Reassigning`, or, when the spare is offered it in the same step,
    // straight as its offer; the history says which agent was lost.
    watch
        .until(
            "handed over after the grace",
            Duration::from_millis(GRACE_MS) + STEP_TIMEOUT,
            |v| {
                matches!(v.state, TaskState::Reassigning { .. })
                    || agent_is(&v.state, "op-a", "spare")
            },
        )
        .await;
    let done = watch.verified().await;
    assert!(agent_is(&done.state, "op-a", "spare"), "{:?}", done.state);
    let states = watch.state_names();
    let first_proving = states
        .iter()
        .position(|s| *s == "proving")
        .expect("proving seen");
    assert!(
        !states[first_proving..].contains(&"queued"),
        "the collateral was let go during the handover: {states:?}"
    );
    for needle in ["op-a/edge lost", "handed over from op-a/edge to op-a/spare"] {
        assert!(
            has_history_line(&done, needle),
            "no \"{needle}\" in the history: {}",
            history(&done)
        );
    }
    assert_row(&client.operator("op-a").await, 100, 0, 0);

    // The cut-off agent comes back: nothing to resume, and its proof is refused.
    proxy.restore();
    edge.close().await;
    let mut edge = ScriptedAgent::connect(&cluster, "op-a", "edge", behind_proxy()).await;
    client.wait_agent_ready("op-a", "edge").await;
    assert!(
        !edge
            .pending_messages()
            .iter()
            .any(|m| matches!(m, CoordinatorToAgent::Resume(o) if o.task == task)),
        "the task was handed back to the agent that lost it"
    );
    let late = edge.prove(&offer).await;
    match edge.deliver(&late).await {
        Ok(DeliveryOutcome::Rejected { reason }) => eprintln!("late proof refused: {reason}"),
        other => panic!("the cut-off agent's proof of a reassigned task: {other:?}"),
    }
    assert_row(&client.operator("op-a").await, 100, 0, 0);
    spare.stop().await;
    edge.close().await;
}
