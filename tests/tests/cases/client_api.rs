//! What a client sees: clear refusals of bad submissions, and a watch stream that follows a
//! task through its states.

use crate::support::checks::{has_history_line, queued_reason};
use crate::support::cluster::{Cluster, ClusterSpec, TASK_DEADLINE_MS};
use crate::support::scripted::{ScriptOptions, ScriptedAgent, AMPLE_MEMORY_BYTES};
use crate::support::wait::{history, within, TaskWatch};
use crate::support::{STEP_TIMEOUT, TASK_TIMEOUT};
use proofrack_common::protocol::{
    ClientRequest, ClientResponse, DeliveryOutcome, ProtocolError, TaskState,
};
use proofrack_common::TaskId;
use proofrack_kernels::curve::Fr;
use proofrack_kernels::field_bytes::fr_to_le_bytes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_get_clear_errors_for_bad_submissions() {
    let cluster = Cluster::start("client-errors", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let json = r#"{"x":"1"}"#;

    let expect_error = |reply: ClientResponse, needle: &str| match reply {
        ClientResponse::Error(e) => assert!(e.to_string().contains(needle), "{e}"),
        ClientResponse::Rejected { reason } => assert!(reason.contains(needle), "{reason}"),
        other => panic!("expected a refusal containing {needle:?}, got {other:?}"),
    };
    match client
        .submit_raw("mimc-99", json, 10, TASK_DEADLINE_MS)
        .await
    {
        ClientResponse::Error(ProtocolError::UnknownCircuit { circuit }) => {
            assert_eq!(circuit, "mimc-99")
        }
        other => panic!("unknown circuit: {other:?}"),
    }
    // A built-in circuit this coordinator does not serve.
    expect_error(
        client
            .submit_raw("mimc-12", json, 10, TASK_DEADLINE_MS)
            .await,
        "unknown circuit \"mimc-12\"",
    );
    expect_error(
        client
            .submit_raw("mimc-6", "not json", 10, TASK_DEADLINE_MS)
            .await,
        "inputs for mimc-6: circuit input is not valid JSON",
    );
    expect_error(
        client
            .submit_raw("mimc-6", r#"{"x":"abc"}"#, 10, TASK_DEADLINE_MS)
            .await,
        "input \"x\"",
    );
    expect_error(
        client
            .submit_raw("mimc-6", r#"{"y":"1"}"#, 10, TASK_DEADLINE_MS)
            .await,
        "not valid JSON",
    );
    expect_error(
        client.submit_raw("mimc-6", json, 0, TASK_DEADLINE_MS).await,
        "collateral is 0",
    );
    expect_error(
        client.submit_raw("mimc-6", json, 10, 0).await,
        "a deadline of 0 leaves no time to prove; ask for up to 10 m (policy.max_deadline_ms = 600000)",
    );
    expect_error(
        client
            .submit_raw("mimc-6", json, 1_000, TASK_DEADLINE_MS)
            .await,
        "exceeds every operator's delegated stake (largest 100)",
    );
    match client
        .request(ClientRequest::Status { task: TaskId(999) })
        .await
    {
        ClientResponse::Error(e) => assert!(e.to_string().contains("unknown task task-999"), "{e}"),
        other => panic!("unknown task: {other:?}"),
    }
    // Nothing was created by the refused submissions.
    for row in client.ledger().await.operators {
        assert_eq!(row.bound_tasks, 0);
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_follows_a_task_from_queued_to_verified() {
    let cluster = Cluster::start("watch", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let opts = ScriptOptions {
        memory_free_bytes: None,
        ..ScriptOptions::default()
    };
    let mut agent = ScriptedAgent::connect(&cluster, "op-a", "box-1", opts).await;

    let task = client.submit("mimc-4", 21, 10).await;
    let mut watch = TaskWatch::start(&client, task);
    let queued = watch
        .until("queued", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Queued { .. })
        })
        .await;
    assert!(
        queued_reason(&queued).is_some_and(|r| r.contains("telemetry")),
        "waiting for an agent's telemetry: {:?}",
        queued.state
    );
    agent.report_memory(AMPLE_MEMORY_BYTES).await;
    let offer = agent.next_offer().await;
    watch
        .until("offered", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Offered { .. })
        })
        .await;
    agent.accept(task).await;
    watch
        .until("proving", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Proving { .. })
        })
        .await;
    let proof = agent.prove(&offer).await;
    assert_eq!(
        agent.deliver(&proof).await.expect("verdict"),
        DeliveryOutcome::Accepted
    );
    let last = within(TASK_TIMEOUT, "verified", watch.verified()).await;

    let mut names = watch.state_names();
    names.dedup();
    // Verification takes a few milliseconds; the watcher may see the verified state first.
    let with_verifying = ["queued", "offered", "proving", "verifying", "verified"];
    let without = ["queued", "offered", "proving", "verified"];
    assert!(
        names == with_verifying || names == without,
        "states seen: {names:?}"
    );
    eprintln!("watch saw {names:?}");
    match &last.state {
        TaskState::Verified {
            agent: a,
            proof,
            public_outputs,
            ..
        } => {
            assert_eq!(a.to_string(), "op-a/box-1");
            assert!(!proof.is_empty());
            assert_eq!(
                public_outputs.get(1),
                Some(&fr_to_le_bytes(&Fr::from(21u64))),
                "x is the task's input"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        has_history_line(&last, "proof delivered by op-a/box-1; verifying"),
        "{}",
        history(&last)
    );
    watch
        .ended()
        .await
        .expect("the watch stream ends cleanly after the terminal state");
    agent.close().await;
    cluster.shutdown().await;
}
