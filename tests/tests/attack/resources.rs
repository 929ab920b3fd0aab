//! Resource bounds under attack, with the default `[limits]` and policy: 3,000 idle
//! connections; 4 connections × 128 half-open 1 MiB frames; 4 concurrent 256 MiB
//! registration uploads; 20,000 drains of agents that never existed; a request trickled a
//! byte at a time. For each: the coordinator's RSS grows by at most 128 MiB and comes back
//! afterwards, the attacker is refused or cut off with a reason, and an honest client's
//! submissions are still proved.
//!
//! Until roles land, a plain client may register circuits: the uploads here are "allowed"
//! ones, and what holds is that they are streamed to disk under the upload limits, never
//! held in memory. `PROOFRACK_ATTACK_DRAINS=N` scales the drains (time only; the bound on
//! stored request ids is 4,096).

use super::child::CHILD_TEST;
use crate::support::cluster::{init_pki, material_from, COORDINATOR_HOST};
use crate::support::process::{free_udp_port, ChildConfig, CoordinatorProcess};
use crate::support::real_agent::{cpu_prover, AgentTarget, RealAgent};
use crate::support::TempDir;
use proofrack_agent::ConnectionSettings;
use proofrack_bench::load::attack::{
    self as attack_load, Scale, Target, MAX_GROWTH_BYTES, RECOVERED_WITHIN_BYTES,
};
use proofrack_certs::CertsDir;
use proofrack_common::client::CoordinatorClient;
use proofrack_common::identity::Identity;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resource_attack_is_bounded_and_an_honest_client_is_still_served() {
    crate::support::init_logging();
    let dir = TempDir::new("attack");
    let pki = init_pki(dir.path());
    // Default [limits] and queue policy; only the test margins are widened.
    let config = ChildConfig {
        circuits: &["mimc-4"],
        operators: &[("op-a", 1_000_000)],
        policy: &[],
    }
    .write(dir.path(), pki.dir(), free_udp_port());
    let coordinator = CoordinatorProcess::start_as(&config, CHILD_TEST).await;
    let pid = coordinator.pid().expect("the coordinator runs");

    let agent_id = Identity::agent("op-a", "honest-gpu").expect("agent identity");
    let _agent = RealAgent::start_at(
        AgentTarget {
            coordinator: coordinator.addr,
            tls: material_from(&pki, &agent_id),
            identity_files: None,
            cache_dir: dir.path().join("agents"),
            connection: ConnectionSettings::default(),
        },
        "op-a",
        "honest-gpu",
        cpu_prover(),
    );
    let honest_id = Identity::client("honest").expect("client identity");
    let honest = CoordinatorClient::connect(
        coordinator.addr,
        COORDINATOR_HOST,
        &material_from(&pki, &honest_id),
    )
    .await
    .expect("the honest client connects");

    let mut scale = Scale::issue();
    if let Some(n) = std::env::var("PROOFRACK_ATTACK_DRAINS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        scale.drains = n;
    }
    let target = Target {
        addr: coordinator.addr,
        pid,
        certs: CertsDir::new(dir.path().join("certs")),
    };
    let reports = attack_load::run_suite(&target, &honest, &scale, |r| {
        println!("{}", r.json());
    })
    .await
    .expect("the attack suite runs");

    let mut failures = Vec::new();
    for r in &reports {
        if r.growth_bytes() > MAX_GROWTH_BYTES {
            failures.push(format!(
                "{}: RSS grew by {} MiB (limit 128)",
                r.attack,
                r.growth_bytes() >> 20
            ));
        }
        if r.rss_after_bytes > r.rss_before_bytes + RECOVERED_WITHIN_BYTES {
            failures.push(format!(
                "{}: RSS did not come back: {} MiB before, {} MiB after",
                r.attack,
                r.rss_before_bytes >> 20,
                r.rss_after_bytes >> 20
            ));
        }
        if r.honest_tasks == 0 {
            failures.push(format!(
                "{}: the honest client got nothing proved",
                r.attack
            ));
        }
        if r.attack == "large_uploads" {
            // Every upload refused before a payload byte is read: a plain client may not
            // register circuits (the authorization table answers from the request alone).
            for answer in r.outcome.split(" | ") {
                let bounded = answer.contains("may not register circuits");
                if !answer.starts_with("refused: ") || !bounded {
                    failures.push(format!(
                        "large_uploads: an upload was not refused: {answer}"
                    ));
                }
            }
        }
        let expect: &[&str] = match r.attack {
            "idle_connections" => &["max_client_connections", "max_connections_per_identity"],
            "half_open_frames" => &["within 10000 ms"],
            "unknown_drains" => &["20000 drains", "answered"],
            "slow_trickle" => &["within 10000 ms"],
            _ => &[],
        };
        for e in expect {
            let e = if *e == "20000 drains" {
                format!("{} drains", scale.drains)
            } else {
                e.to_string()
            };
            if !r.outcome.contains(&e) {
                failures.push(format!("{}: outcome lacks {e:?}: {}", r.attack, r.outcome));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    honest.close().await;
}
