//! Admission: stake is never over-committed, and a task is offered only to an agent with the
//! memory it needs; a waiting task says why it waits.

use crate::support::checks::{agent_is, assert_row, has_history_line, queued_reason};
use crate::support::cluster::{Client, Cluster, ClusterSpec};
use crate::support::scripted::{ScriptOptions, ScriptedAgent};
use crate::support::wait::{history, poll_until, within, TaskWatch};
use crate::support::STEP_TIMEOUT;
use proofrack_common::protocol::{DeliveryOutcome, TaskState};
use proofrack_common::{StakeUnits, TaskId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Reads the ledger and checks that no operator has more stake active than delegated and
/// that its free stake adds up; returns the largest active stake in it.
async fn observe_ledger(client: &Client) -> u128 {
    let mut max_active = 0;
    for row in client.ledger().await.operators {
        assert!(
            row.active <= row.delegated,
            "over-committed: {} has {} active of {} delegated",
            row.operator,
            row.active,
            row.delegated
        );
        assert_eq!(
            row.active.0 + row.withdrawing.0 + row.free.0,
            row.delegated.0,
            "free stake does not add up: {row:?}"
        );
        max_active = max_active.max(row.active.0);
    }
    max_active
}

/// Observes the ledger back to back until told to stop, besides the test's own observations
/// at each step; returns (observations, largest active stake seen).
fn keep_observing_ledger(
    client: Client,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, u128)> {
    tokio::spawn(async move {
        let (mut observations, mut max_active) = (0usize, 0u128);
        while !stop.load(Ordering::SeqCst) {
            max_active = max_active.max(observe_ledger(&client).await);
            observations += 1;
        }
        (observations, max_active)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stake_is_never_over_committed_and_a_waiting_task_runs_when_stake_frees() {
    let spec = ClusterSpec {
        operators: vec![("op-a", 100)],
        ..ClusterSpec::default()
    };
    let cluster = Cluster::start("over-commit", spec).await;
    let client = cluster.client("alice").await;
    // Room for four tasks at once: only stake can hold the third back.
    let opts = ScriptOptions {
        max_concurrent_tasks: 4,
        ..ScriptOptions::default()
    };
    let mut agent = ScriptedAgent::connect(&cluster, "op-a", "box-1", opts).await;
    client.wait_agent_ready("op-a", "box-1").await;
    let stop = Arc::new(AtomicBool::new(false));
    let observer = keep_observing_ledger(client.clone(), stop.clone());

    let first = client.submit("mimc-4", 1, 40).await;
    let second = client.submit("mimc-4", 2, 40).await;
    let third = client.submit("mimc-4", 3, 40).await;
    let offers = [agent.next_offer().await, agent.next_offer().await];
    let mut offered: Vec<TaskId> = offers.iter().map(|o| o.task).collect();
    offered.sort();
    assert_eq!(offered, vec![first, second]);
    for o in &offers {
        agent.accept(o.task).await;
        observe_ledger(&client).await;
    }

    let mut watch = TaskWatch::start(&client, third);
    let waiting = watch
        .until(
            "the third task queued for lack of stake",
            STEP_TIMEOUT,
            |v| {
                queued_reason(v).is_some_and(|r| {
                    r.contains("no operator with 40 free stake; best has 20 (op-a)")
                })
            },
        )
        .await;
    let row = poll_until(STEP_TIMEOUT, "two tasks' stake bound", || async {
        observe_ledger(&client).await;
        let row = client.operator("op-a").await;
        (row.bound_tasks == 2).then_some(row)
    })
    .await;
    assert_row(&row, 100, 80, 0);
    assert_eq!(row.free, StakeUnits(20));
    let status = client.status(third).await;
    assert!(
        queued_reason(&status).is_some(),
        "still waiting: {:?}",
        status.state
    );
    assert!(
        !has_history_line(&status, "offered to"),
        "never offered:\n{}",
        history(&status)
    );
    assert!(
        agent.pending_messages().is_empty(),
        "no third offer while two are active"
    );

    // One finishes: its stake is released and the waiting task is offered.
    let proof = agent.prove(&offers[0]).await;
    assert_eq!(
        agent.deliver(&proof).await.expect("verdict"),
        DeliveryOutcome::Accepted
    );
    let offer = agent.next_offer().await;
    assert_eq!(offer.task, third, "the waiting task runs when stake frees");
    agent.accept(third).await;
    observe_ledger(&client).await;
    watch
        .until("the third task proving", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Proving { .. })
        })
        .await;
    for o in [&offers[1], &offer] {
        let proof = agent.prove(o).await;
        assert_eq!(
            agent.deliver(&proof).await.expect("verdict"),
            DeliveryOutcome::Accepted
        );
        assert!(observe_ledger(&client).await <= 80);
    }
    watch.verified().await;
    assert_row(&client.operator("op-a").await, 100, 0, 0);

    stop.store(true, Ordering::SeqCst);
    let (observations, max_active) = within(STEP_TIMEOUT, "the ledger observer", observer)
        .await
        .expect("ledger observer");
    assert!(observations > 0);
    assert!(
        max_active <= 80,
        "never three tasks active at once: {max_active} active"
    );
    eprintln!(
        "ledger observed {observations} times; waiting reason was {:?}",
        queued_reason(&waiting)
    );
    agent.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_needing_more_memory_than_any_agent_reports_is_offered_to_none() {
    let cluster = Cluster::start("memory", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let need = client.circuit("mimc-8").await.shape.estimate_memory_bytes();
    let small = ScriptOptions {
        memory_free_bytes: Some(need / 2),
        ..ScriptOptions::default()
    };
    let mut a = ScriptedAgent::connect(&cluster, "op-a", "small-1", small.clone()).await;
    let mut b = ScriptedAgent::connect(&cluster, "op-b", "small-2", small).await;
    client.wait_agent_ready("op-a", "small-1").await;
    client.wait_agent_ready("op-b", "small-2").await;

    let task = client.submit("mimc-8", 3, 40).await;
    let mut watch = TaskWatch::start(&client, task);
    let waiting = watch
        .until("the task queued for lack of memory", STEP_TIMEOUT, |v| {
            queued_reason(v).is_some_and(|r| r.contains("largest free memory is"))
        })
        .await;
    let reason = queued_reason(&waiting).expect("queued");
    assert!(
        reason.starts_with("needs "),
        "the reason names the need first: {reason}"
    );
    let status = client.status(task).await;
    assert!(
        !has_history_line(&status, "offered to"),
        "never offered:\n{}",
        history(&status)
    );
    for (agent, name) in [(&mut a, "small-1"), (&mut b, "small-2")] {
        let got = agent.pending_messages();
        assert!(got.is_empty(), "{name} was sent {got:?}");
    }
    for row in client.agents().await.rows {
        assert!(
            row.in_flight.is_empty(),
            "{} holds {:?}",
            row.agent,
            row.in_flight
        );
    }

    // Memory was the only obstacle: once one agent reports enough, the task is offered to it.
    b.report_memory(need * 2).await;
    let offer = b.next_offer().await;
    assert_eq!(offer.task, task);
    b.accept(task).await;
    let proof = b.prove(&offer).await;
    assert_eq!(
        b.deliver(&proof).await.expect("verdict"),
        DeliveryOutcome::Accepted
    );
    let last = watch.verified().await;
    assert!(agent_is(&last.state, "op-b", "small-2"), "{:?}", last.state);
    assert!(
        a.pending_messages().is_empty(),
        "the small agent was never offered the task"
    );
    a.close().await;
    b.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_offer_goes_to_the_next_agent_without_penalty() {
    let cluster = Cluster::start("decline", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let mut a = ScriptedAgent::connect(&cluster, "op-a", "box-1", ScriptOptions::default()).await;
    let mut b = ScriptedAgent::connect(&cluster, "op-b", "box-1", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "box-1").await;
    client.wait_agent_ready("op-b", "box-1").await;

    let task = client.submit("mimc-4", 4, 30).await;
    let mut watch = TaskWatch::start(&client, task);
    // Whichever agent admission picks declines; the other must get the task next.
    let (decliner, taker) = tokio::select! {
        o = a.next_offer() => { assert_eq!(o.task, task); (&mut a, &mut b) }
        o = b.next_offer() => { assert_eq!(o.task, task); (&mut b, &mut a) }
    };
    decliner.decline(task, "busy with other work").await;
    let offer = taker.next_offer().await;
    assert_eq!(offer.task, task, "the declined task goes to the next fit");
    taker.accept(task).await;
    let proof = taker.prove(&offer).await;
    assert_eq!(
        taker.deliver(&proof).await.expect("verdict"),
        DeliveryOutcome::Accepted
    );
    let last = watch.verified().await;
    let (decliner_name, taker_name) = (decliner.name(), taker.name());
    match &last.state {
        TaskState::Verified { agent, .. } => assert_eq!(agent.to_string(), taker_name),
        other => panic!("{other:?}"),
    }
    assert!(
        has_history_line(
            &last,
            &format!("declined by {decliner_name}: busy with other work")
        ),
        "{}",
        history(&last)
    );
    // Declining costs nothing; the taker's stake was bound and released.
    for row in client.ledger().await.operators {
        assert_row(&row, 100, 0, 0);
    }
    assert!(
        decliner.pending_messages().is_empty(),
        "{decliner_name} was not offered it again"
    );
    eprintln!("{decliner_name} declined, {taker_name} proved");
    a.close().await;
    b.close().await;
    cluster.shutdown().await;
}
