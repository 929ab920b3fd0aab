//! Connections come and go; bound tasks stay: an agent that reconnects replaces its old
//! connection and delivers what it accepted before.

use crate::support::checks::{agent_is, assert_row};
use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::scripted::{ScriptOptions, ScriptedAgent};
use crate::support::wait::{poll_until, TaskWatch};
use crate::support::STEP_TIMEOUT;
use proofrack_common::protocol::{CoordinatorToAgent, DeliveryOutcome, TaskState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_agent_replaces_its_old_connection_and_delivers_its_task() {
    let cluster = Cluster::start("reconnect", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let mut before =
        ScriptedAgent::connect(&cluster, "op-a", "box-1", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "box-1").await;

    let task = client.submit("mimc-4", 17, 20).await;
    let mut watch = TaskWatch::start(&client, task);
    let offer = before.next_offer().await;
    before.accept(task).await;
    watch
        .until("proving by op-a/box-1", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Proving { .. }) && agent_is(&v.state, "op-a", "box-1")
        })
        .await;

    // The agent's process dies while its old connection still looks alive (QUIC keep-alives,
    // no reports): once the coordinator has not heard from it for three telemetry intervals,
    // the newer connection wins. (While it still reports, a newer one is held off: see the
    // attack suite's `duplicates`.)
    before.stop_telemetry();
    poll_until(STEP_TIMEOUT, "the old connection to go quiet", || async {
        client
            .agent_row("op-a", "box-1")
            .await
            .filter(|r| r.telemetry_age_ms.is_some_and(|age| age >= 3 * 500))
    })
    .await;
    let mut after =
        ScriptedAgent::connect(&cluster, "op-a", "box-1", ScriptOptions::default()).await;
    let said = before.refusal().await;
    assert!(
        said.contains("replaced by a newer connection of this agent"),
        "{said}"
    );
    client.wait_agent_ready("op-a", "box-1").await;
    let agents = client.agents().await.rows;
    assert_eq!(agents.len(), 1, "one agent, not two: {agents:?}");
    assert_eq!(
        agents[0].in_flight,
        vec![task],
        "the task stayed with the agent"
    );

    // The task stayed bound across the reconnect and is delivered on the new connection.
    let status = client.status(task).await;
    assert!(
        matches!(status.state, TaskState::Proving { .. }),
        "{:?}",
        status.state
    );
    assert_row(&client.operator("op-a").await, 100, 20, 0);
    let proof = after.prove(&offer).await;
    assert_eq!(
        after.deliver(&proof).await.expect("verdict"),
        DeliveryOutcome::Accepted
    );
    let last = watch.verified().await;
    assert!(agent_is(&last.state, "op-a", "box-1"));
    assert_row(&client.operator("op-a").await, 100, 0, 0);
    // The new connection was told once that the task is bound to it (an agent that restarted
    // would have forgotten it), and offered nothing.
    let pending = after.pending_messages();
    assert!(
        matches!(pending.as_slice(), [CoordinatorToAgent::Resume(o)] if o.task == task),
        "exactly one resume of {task} and no offer: {pending:?}"
    );
    before.close().await;
    after.close().await;
    cluster.shutdown().await;
}
