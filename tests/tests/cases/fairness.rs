//! Fair queueing over QUIC: a client flooding the queue is held to its share and does not
//! lock another client out; the other's task is served ahead of the flood's backlog.

use crate::support::cluster::{test_policy, Cluster, ClusterSpec, TASK_DEADLINE_MS};
use crate::support::real_agent::{cpu_prover, RealAgent};
use crate::support::wait::TaskWatch;
use proofrack_common::protocol::{ClientRequest, ClientResponse, SubmitRequest, TaskState};
use proofrack_common::StakeUnits;
use proofrack_coordinator::Policy;

const SHARE: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_the_queue_does_not_lock_another_client_out() {
    let cluster = Cluster::start(
        "fairness",
        ClusterSpec {
            policy: Policy {
                max_unfinished_per_client: SHARE,
                // One task at a time on the one agent: every offer is a choice.
                max_tasks_per_agent: 1,
                ..test_policy()
            },
            operators: vec![("op-a", 1_000)],
            circuits: vec!["mimc-4"],
            ..ClusterSpec::default()
        },
    )
    .await;
    let flood = cluster.client("flood").await;
    let honest = cluster.client("honest").await;
    // The flood: 40 tasks in one batch; its share is 12, the rest are refused with why.
    let batch = (0..40u64)
        .map(|i| SubmitRequest {
            circuit: "mimc-4".into(),
            inputs: format!(r#"{{"x":"{i}"}}"#).into_bytes(),
            collateral: StakeUnits(1),
            deadline_ms: TASK_DEADLINE_MS,
            request_id: 1_000 + i,
        })
        .collect();
    let ClientResponse::Batch(replies) = flood.request(ClientRequest::SubmitBatch(batch)).await
    else {
        panic!("a batch answers with a batch");
    };
    let flood_tasks: Vec<_> = replies
        .iter()
        .filter_map(|r| match r {
            ClientResponse::Submitted { task } => Some(*task),
            _ => None,
        })
        .collect();
    assert_eq!(flood_tasks.len(), SHARE, "{replies:?}");
    let refusal = replies
        .iter()
        .find_map(|r| match r {
            ClientResponse::Rejected { reason } => Some(reason.clone()),
            _ => None,
        })
        .expect("the flood past its share is refused");
    assert!(
        refusal.contains("client/flood")
            || refusal.contains("flood already has 12 unfinished tasks"),
        "{refusal}"
    );
    assert!(refusal.contains("its share of the queue"), "{refusal}");

    // The other client is not locked out: accepted, and proved ahead of the flood's backlog.
    let task = honest.submit("mimc-4", 7, 1).await;
    let _agent = RealAgent::start(&cluster, "op-a", "gpu-1", cpu_prover());
    let mut watch = TaskWatch::start(&honest, task);
    watch.verified().await;
    let mut still_waiting = 0;
    for t in &flood_tasks {
        if !flood.status(*t).await.state.is_terminal() {
            still_waiting += 1;
        }
    }
    assert!(
        still_waiting >= SHARE - 3,
        "the honest task waited behind the flood: only {still_waiting} of its {SHARE} were left"
    );
    // And the flood's own tasks are all proved in the end.
    for t in flood_tasks {
        let mut w = TaskWatch::start(&flood, t);
        let end = w.finished().await;
        assert!(matches!(end.state, TaskState::Verified { .. }), "{end:?}");
    }
}
