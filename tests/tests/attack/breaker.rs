//! An agent that inflates its calibration and never delivers wins offers only until its
//! circuit breaker opens; then its tasks go to an honest agent, and the breaker shows in the
//! agents table, `explain`, the metrics and the fleet page's data. Its operator's admin can
//! close it.

use super::roles::{admin, forbidden, id};
use crate::support::cluster::{test_policy, Cluster, ClusterSpec};
use crate::support::real_agent::{cpu_prover, RealAgent};
use crate::support::scripted::{ScriptOptions, ScriptedAgent};
use crate::support::wait::{poll_until, TaskWatch};
use crate::support::STEP_TIMEOUT;
use proofrack_common::protocol::{ClientRequest, CoordinatorToAgent, TaskState};
use proofrack_common::telemetry::Calibration;
use proofrack_common::testkit;
use proofrack_coordinator::Policy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_inflates_its_calibration_and_never_delivers_is_cut_off_by_its_breaker() {
    let cluster = Cluster::start(
        "breaker",
        ClusterSpec {
            policy: Policy {
                // Due times come quickly, so misses do too; two in a row open the breaker.
                deadline_margin_pct: 0,
                deadline_margin_ms: 300,
                breaker_failures: 2,
                breaker_cooldown_ms: 600_000,
                ..test_policy()
            },
            operators: vec![("op-a", 1_000)],
            circuits: vec!["mimc-4"],
            ..ClusterSpec::default()
        },
    )
    .await;
    let ops = cluster.connect_as(&id("operator/op-a/admin/ops")).await;
    let alice = cluster.client("alice").await;
    // The liar claims a thousand times the honest agent's speed, so it wins every offer (on
    // circuits this small both predict a millisecond; ties go by name, and "liar" < "steady").
    let fast = testkit::cpu_calibration();
    let inflated = Calibration {
        msm_g1_points_per_sec: fast.msm_g1_points_per_sec * 1_000,
        ntt_elements_per_sec: fast.ntt_elements_per_sec * 1_000,
        ..fast
    };
    let mut liar = ScriptedAgent::connect(
        &cluster,
        "op-a",
        "liar",
        ScriptOptions {
            max_concurrent_tasks: 4,
            calibration: inflated,
            ..ScriptOptions::default()
        },
    )
    .await;
    ops.wait_agent_ready("op-a", "liar").await;
    let honest = RealAgent::start(&cluster, "op-a", "steady", cpu_prover());
    ops.wait_agent_ready("op-a", "steady").await;

    // Two tasks go to the liar, which accepts and never delivers: two missed due times.
    let mut tasks = Vec::new();
    for x in 0..2 {
        let task = alice.submit("mimc-4", x, 10).await;
        let offer = liar.next_offer().await;
        assert_eq!(offer.task, task);
        liar.accept(task).await;
        tasks.push(task);
    }
    poll_until(STEP_TIMEOUT, "the liar's breaker to open", || async {
        ops.agent_row("op-a", "liar")
            .await
            .and_then(|r| r.health.first().cloned())
            .filter(|h| h.starts_with("circuit breaker open until"))
    })
    .await;
    let row = ops.agent_row("op-a", "liar").await.unwrap();
    assert!(
        row.health[0].contains("2 failures in a row, the last: missed its due time"),
        "{:?}",
        row.health
    );
    // Its tasks were slashed, not lost: the honest agent proves them.
    for task in &tasks {
        let done = TaskWatch::start(&alice, *task).verified().await;
        assert!(matches!(done.state, TaskState::Verified { .. }));
    }
    // While the breaker is open a new task goes to the honest agent, and explain says why
    // the faster liar was passed over.
    let task = alice.submit("mimc-4", 7, 10).await;
    let done = TaskWatch::start(&alice, task).verified().await;
    let TaskState::Verified { agent, .. } = &done.state else {
        unreachable!()
    };
    assert_eq!(agent.to_string(), "op-a/steady");
    let view = cluster
        .shared()
        .read(|core, _| core.task(task))
        .expect("task kept");
    let explained = proofrack_coordinator::tasks::explain(&view).to_string();
    assert!(
        explained.contains("op-a/liar") && explained.contains("circuit breaker open until"),
        "{explained}"
    );
    assert!(
        !liar
            .pending_messages()
            .iter()
            .any(|m| matches!(m, CoordinatorToAgent::Offer(o) if o.task == task)),
        "the liar was offered a task while its breaker was open"
    );
    // The metrics and the fleet page's data show it.
    let metrics = proofrack_coordinator::render_metrics(&*cluster.shared());
    assert!(
        metrics.contains("proofrack_agent_breaker_open{operator=\"op-a\",agent=\"liar\"} 1"),
        "{metrics}"
    );
    let fleet =
        serde_json::to_value(proofrack_coordinator::fleet_view(&*cluster.shared())).unwrap();
    let liar_row = fleet["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"]["name"] == "liar")
        .unwrap();
    assert!(
        liar_row["breaker"]["why"]
            .as_str()
            .is_some_and(|w| w.starts_with("2 failures in a row")),
        "{liar_row}"
    );

    // Only its operator's admin closes it; then the liar is offered work again.
    let reset = ClientRequest::ResetBreaker {
        request_id: 1,
        agent: "op-a/liar".parse().unwrap(),
    };
    assert_eq!(
        forbidden(alice.request(reset.clone()).await),
        "client/alice may not reset the circuit breakers of the agents of op-a: that needs an operator admin of op-a (operator/op-a/admin/NAME)"
    );
    let (ok, message) = admin(ops.request(reset).await);
    assert!(
        ok && message.starts_with("op-a/liar's circuit breaker closed"),
        "{message}"
    );
    let task = alice.submit("mimc-4", 9, 10).await;
    let offer = liar.next_offer().await;
    assert_eq!(offer.task, task);
    liar.decline(task, "done lying").await;
    TaskWatch::start(&alice, task).verified().await;
    liar.close().await;
    honest.stop().await;
    cluster.shutdown().await;
}
