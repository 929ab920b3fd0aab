//! Two live processes with one agent certificate: the one holding the session keeps it, the
//! newer one is held off with a wait it honours (no ping-pong), each refusal is a WARN and a
//! metric, and the held-off agent's own log says why. Once the holder is gone, it gets in.

use super::logs;
use super::roles::id;
use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::real_agent::{cpu_prover, AgentTarget, RealAgent};
use crate::support::scripted::{ScriptOptions, ScriptedAgent};
use crate::support::wait::poll_until;
use crate::support::STEP_TIMEOUT;
use proofrack_agent::BackoffLimits;
use proofrack_agent::ConnectionSettings;
use proofrack_common::protocol::CoordinatorToAgent;
use proofrack_common::OperatorId;
use std::time::{Duration, Instant};

fn refusals(cluster: &Cluster) -> u64 {
    cluster
        .shared()
        .trust()
        .duplicates()
        .get(&OperatorId::new("op-a").unwrap())
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_with_one_agent_certificate_is_held_off_and_the_holder_keeps_its_session()
{
    logs::capture();
    let cluster = Cluster::start("duplicate-agent", ClusterSpec::default()).await;
    let observer = cluster.connect_as(&id("admin/root")).await;
    let mut holder =
        ScriptedAgent::connect(&cluster, "op-a", "box-1", ScriptOptions::default()).await;
    observer.wait_agent_ready("op-a", "box-1").await;

    // The same certificate in a second, real agent process, retrying as fast as it may.
    let identity = id("operator/op-a/agent/box-1");
    let target = AgentTarget {
        coordinator: cluster.addr,
        tls: cluster.material(&identity),
        identity_files: None,
        cache_dir: cluster.dir.path().join("agents"),
        connection: ConnectionSettings {
            backoff: BackoffLimits {
                base_ms: 20,
                cap_ms: 50,
                healthy_after_ms: 60_000,
            },
            ..ConnectionSettings::default()
        },
    };
    let started = Instant::now();
    let duplicate = RealAgent::start_at(target, "op-a", "box-1", cpu_prover());
    poll_until(
        STEP_TIMEOUT,
        "the duplicate to be held off twice",
        || async { (refusals(&cluster) >= 2).then_some(()) },
    )
    .await;
    // The coordinator asked it to wait three telemetry intervals (1.5 s here) and it did,
    // although its own backoff would retry within 50 ms: no ping-pong.
    assert!(
        started.elapsed() >= Duration::from_millis(1_500),
        "held off twice within {:?}",
        started.elapsed()
    );
    // The holder kept its session throughout and is the one offered work.
    assert!(holder.conn.close_reason().is_none(), "the holder was cut");
    let task = cluster.client("alice").await.submit("mimc-4", 1, 10).await;
    let offer = holder.next_offer().await;
    assert_eq!(offer.task, task);
    assert!(
        !holder
            .pending_messages()
            .iter()
            .any(|m| matches!(m, CoordinatorToAgent::Cancelled { .. })),
        "the holder lost nothing"
    );
    // The coordinator counts it for /metrics and the held-off agent says why in its own log.
    let metrics = proofrack_coordinator::render_metrics(&*cluster.shared());
    assert!(
        metrics.lines().any(
            |l| l.starts_with("proofrack_duplicate_agent_connections_total{operator=\"op-a\"}")
        ),
        "{metrics}"
    );
    poll_until(STEP_TIMEOUT, "the duplicate's own warning", || async {
        logs::lines_with(&[
            "WARN",
            "another process is connected to the coordinator with this agent's certificate",
            "Stop the duplicate process",
        ])
        .into_iter()
        .next()
    })
    .await;

    // The holder goes away: the waiting process takes over at its next attempt.
    holder.decline(task, "leaving").await;
    holder.close().await;
    poll_until(
        STEP_TIMEOUT,
        "the second process to take the session",
        || async {
            observer
                .agent_row("op-a", "box-1")
                .await
                .filter(|r| r.connected && r.telemetry_age_ms.is_some())
        },
    )
    .await;
    duplicate.stop().await;
    cluster.shutdown().await;
}
