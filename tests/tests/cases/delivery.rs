//! Proof deliveries: only the agent a task is bound to may deliver it; a proof that does not
//! verify slashes its operator and the task goes to another agent.

use crate::support::checks::{agent_is, assert_row, has_history_line};
use crate::support::cluster::{test_policy, Cluster, ClusterSpec};
use crate::support::real_agent::{cpu_prover, RealAgent};
use crate::support::scripted::{tamper_output, ScriptOptions, ScriptedAgent};
use crate::support::wait::{history, TaskWatch};
use crate::support::STEP_TIMEOUT;
use proofrack_common::protocol::{CoordinatorToAgent, DeliveryOutcome, TaskState};
use proofrack_coordinator::Policy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_deliver_a_proof_for_another_operators_task() {
    let cluster = Cluster::start("cross-operator", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let mut owner =
        ScriptedAgent::connect(&cluster, "op-b", "box-1", ScriptOptions::default()).await;
    // Connected but reporting no telemetry: never offered anything.
    let no_telemetry = ScriptOptions {
        memory_free_bytes: None,
        ..ScriptOptions::default()
    };
    let mut thief = ScriptedAgent::connect(&cluster, "op-a", "box-1", no_telemetry).await;
    client.wait_agent_ready("op-b", "box-1").await;

    let task = client.submit("mimc-6", 5, 40).await;
    let mut watch = TaskWatch::start(&client, task);
    let offer = owner.next_offer().await;
    assert_eq!(offer.task, task);
    owner.accept(task).await;
    watch
        .until("proving by op-b/box-1", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Proving { .. }) && agent_is(&v.state, "op-b", "box-1")
        })
        .await;

    // The thief makes a perfectly valid proof of the task's inputs and delivers it.
    let key = client.circuit("mimc-6").await.key;
    let stolen = thief.prove_task(task, "mimc-6", key, br#"{"x":"5"}"#).await;
    match thief.deliver(&stolen).await.expect("a verdict") {
        DeliveryOutcome::Rejected { reason } => assert!(
            reason.contains(&format!("{task} is not bound to op-a/box-1"))
                && reason.contains("bound to op-b/box-1"),
            "the rejection says whom the task is bound to: {reason}"
        ),
        DeliveryOutcome::Accepted => panic!("a proof from another operator's agent was accepted"),
    }
    // Refused before any verification: nobody is slashed, nothing moved.
    assert_row(&client.operator("op-a").await, 100, 0, 0);
    assert_row(&client.operator("op-b").await, 100, 40, 0);
    let status = client.status(task).await;
    assert!(
        matches!(status.state, TaskState::Proving { .. })
            && agent_is(&status.state, "op-b", "box-1"),
        "the task stays with its owner: {:?}",
        status.state
    );

    let proof = owner.prove(&offer).await;
    assert_eq!(
        owner.deliver(&proof).await.expect("a verdict"),
        DeliveryOutcome::Accepted
    );
    let last = watch.verified().await;
    assert!(agent_is(&last.state, "op-b", "box-1"), "{:?}", last.state);
    assert_row(&client.operator("op-b").await, 100, 0, 0);
    assert_row(&client.operator("op-a").await, 100, 0, 0);
    assert!(
        thief.pending_messages().is_empty(),
        "the thief was offered nothing"
    );
    owner.close().await;
    thief.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_proof_slashes_the_operator_and_the_task_is_reassigned() {
    let cluster = Cluster::start("slash", ClusterSpec::default()).await;
    let bps = ClusterSpec::default().policy.invalid_proof_slash_bps as u128;
    let client = cluster.client("alice").await;
    let mut liar = ScriptedAgent::connect(&cluster, "op-a", "liar", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "liar").await;

    let collateral = 40u128;
    let task = client.submit("mimc-6", 11, collateral).await;
    let mut watch = TaskWatch::start(&client, task);
    let offer = liar.next_offer().await;
    liar.accept(task).await;
    watch
        .until("proving by the liar", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Proving { .. }) && agent_is(&v.state, "op-a", "liar")
        })
        .await;
    assert_row(&client.operator("op-a").await, 100, collateral, 0);

    // An honest agent of another operator is ready to take the task over.
    let honest = RealAgent::start(&cluster, "op-b", "honest", cpu_prover());
    client.wait_agent_ready("op-b", "honest").await;

    let mut bad = liar.prove(&offer).await;
    tamper_output(&mut bad);
    match liar.deliver(&bad).await.expect("a verdict") {
        DeliveryOutcome::Rejected { reason } => assert!(
            reason.contains("does not verify") && reason.contains("slashed"),
            "the rejection says why and what it cost: {reason}"
        ),
        DeliveryOutcome::Accepted => panic!("a proof that does not verify was accepted"),
    }
    let slashed = collateral * bps / 10_000;
    assert_eq!(slashed, 20);
    // Slashed stake leaves the delegation; the rest of the collateral is released.
    assert_row(&client.operator("op-a").await, 100 - slashed, 0, slashed);

    let last = watch.verified().await;
    assert!(
        agent_is(&last.state, "op-b", "honest"),
        "reassigned to the honest agent: {:?}",
        last.state
    );
    assert!(
        has_history_line(
            &last,
            &format!(
                "proof from op-a/liar is invalid: {slashed} slashed, {} released",
                collateral - slashed
            )
        ),
        "{}",
        history(&last)
    );
    assert!(
        has_history_line(&last, "accepted by op-b/honest; 40 of op-b's stake bound"),
        "{}",
        history(&last)
    );
    // The valid proof released the honest operator's stake in full.
    assert_row(&client.operator("op-b").await, 100, 0, 0);
    assert_row(&client.operator("op-a").await, 100 - slashed, 0, slashed);
    let offers: Vec<_> = liar
        .pending_messages()
        .into_iter()
        .filter(|m| matches!(m, CoordinatorToAgent::Offer(_)))
        .collect();
    assert!(
        offers.is_empty(),
        "the task did not go back to the liar: {offers:?}"
    );
    liar.close().await;
    honest.stop().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_due_time_slashes_the_operator_and_the_task_is_reassigned() {
    // A short margin, so the due time of a few-millisecond proof comes within the test.
    let policy = Policy {
        deadline_margin_ms: 2_000,
        ..test_policy()
    };
    let bps = policy.deadline_miss_slash_bps as u128;
    let cluster = Cluster::start(
        "due-time",
        ClusterSpec {
            policy,
            ..ClusterSpec::default()
        },
    )
    .await;
    let client = cluster.client("alice").await;
    let mut sleeper =
        ScriptedAgent::connect(&cluster, "op-a", "sleeper", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "sleeper").await;

    let collateral = 40u128;
    let task = client.submit("mimc-4", 13, collateral).await;
    let mut watch = TaskWatch::start(&client, task);
    assert_eq!(sleeper.next_offer().await.task, task);
    sleeper.accept(task).await;
    watch
        .until("proving by the sleeper", STEP_TIMEOUT, |v| {
            agent_is(&v.state, "op-a", "sleeper")
        })
        .await;
    let honest = RealAgent::start(&cluster, "op-b", "honest", cpu_prover());
    client.wait_agent_ready("op-b", "honest").await;

    // The sleeper never delivers: at its due time the coordinator tells it to stop.
    let slashed = collateral * bps / 10_000;
    match sleeper.next_message().await {
        CoordinatorToAgent::Cancelled { task: t, reason } => {
            assert_eq!(t, task);
            assert!(
                reason.contains(&format!("passed; {slashed} of the collateral slashed")),
                "{reason}"
            );
        }
        other => panic!("expected a cancellation, got {other:?}"),
    }
    let last = watch.verified().await;
    assert!(agent_is(&last.state, "op-b", "honest"), "{:?}", last.state);
    assert!(
        has_history_line(&last, "op-a/sleeper missed its due time"),
        "{}",
        history(&last)
    );
    assert_row(&client.operator("op-a").await, 100 - slashed, 0, slashed);
    assert_row(&client.operator("op-b").await, 100, 0, 0);
    sleeper.close().await;
    honest.stop().await;
    cluster.shutdown().await;
}
