//! Fair queueing across clients, with simulated time: each client's share of the queue, and
//! admission that serves waiting tasks fairly across clients, not in arrival order; a seeded
//! property test over random floods; and the order surviving a restart from the store's rows.

use super::sim_clock::{Sim, GIB};
use crate::StoreModel;
use proofrack_common::TaskId;
use proofrack_coordinator::tasks::SubmitRejected;
use proofrack_coordinator::testkit::cuda_telemetry;
use proofrack_coordinator::{CoordinatorCore, Policy, TaskStatus};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};
use std::collections::BTreeMap;

const MINUTE_MS: u64 = 60_000;
const FAST: u64 = 10_000_000;

fn policy(share: usize) -> Policy {
    Policy {
        max_unfinished_per_client: share,
        queue_capacity: 64,
        deadline_margin_ms: 30_000,
        // One task at a time on the agent: every offer is a choice between clients.
        max_tasks_per_agent: 1,
        ..Policy::default()
    }
}

/// A fleet of one agent that takes one task at a time: every offer is a choice between the
/// clients waiting.
fn one_slot(sim: &mut Sim) -> proofrack_coordinator::AgentId {
    sim.agent_with(
        "op-a",
        "gpu-1",
        cuda_telemetry(1, 8 * GIB, FAST, 1_000_000_000),
        1,
    )
}

fn client_of(sim: &Sim, task: TaskId) -> String {
    sim.core.task(task).expect("task kept").client.clone()
}

/// Proves the offered task, returns whose it was.
fn serve_next(sim: &mut Sim, agent: &proofrack_coordinator::AgentId) -> Option<String> {
    let offer = sim.take_offers().into_iter().next()?;
    sim.accept(agent, offer.task);
    sim.prove(agent, offer.task, true);
    Some(client_of(sim, offer.task))
}

#[test]
fn a_client_past_its_share_is_refused_and_others_still_submit() {
    let mut p = policy(3);
    p.client_unfinished_caps.insert("batch".into(), 5);
    let mut sim = Sim::new(p, &[("op-a", 1_000)]);
    for _ in 0..3 {
        sim.submit_as("flood", 10, MINUTE_MS).unwrap();
    }
    let err = sim.submit_as("flood", 10, MINUTE_MS).unwrap_err();
    assert_eq!(
        err,
        SubmitRejected::ClientShareFull {
            client: "flood".into(),
            held: 3,
            cap: 3
        }
    );
    assert!(err.to_string().contains("its share of the queue"), "{err}");
    assert!(sim.submit_as("honest", 10, MINUTE_MS).is_ok());
    for _ in 0..5 {
        sim.submit_as("batch", 10, MINUTE_MS).unwrap();
    }
    assert!(matches!(
        sim.submit_as("batch", 10, MINUTE_MS),
        Err(SubmitRejected::ClientShareFull { cap: 5, .. })
    ));
    assert_eq!(sim.core.admission_stats().refusals["client_share"], 2);
    // A finished task frees its place in the client's share.
    let agent = one_slot(&mut sim);
    sim.advance(1);
    while let Some(c) = serve_next(&mut sim, &agent) {
        if c == "flood" {
            break;
        }
    }
    assert!(sim.submit_as("flood", 10, MINUTE_MS).is_ok());
}

#[test]
fn a_flood_does_not_push_another_client_back() {
    let mut sim = Sim::new(policy(32), &[("op-a", 1_000)]);
    let agent = one_slot(&mut sim);
    // The flood first, with the earlier deadlines: in arrival (or deadline) order the honest
    // client would wait for all 30.
    for _ in 0..30 {
        sim.submit_as("flood", 10, MINUTE_MS).unwrap();
    }
    sim.advance(10);
    for _ in 0..3 {
        sim.submit_as("honest", 10, 2 * MINUTE_MS).unwrap();
    }
    let mut order = Vec::new();
    while let Some(c) = serve_next(&mut sim, &agent) {
        order.push(c);
        if order.len() == 8 {
            break;
        }
    }
    // The flood's first task was already offered; then the two clients take turns.
    assert_eq!(
        order,
        ["flood", "honest", "flood", "honest", "flood", "honest", "flood", "flood"]
    );
}

#[test]
fn the_fair_order_survives_a_restart_from_the_stored_rows() {
    let mut sim = Sim::new(policy(32), &[("op-a", 1_000)]);
    let mut store = StoreModel::default();
    store.absorb(sim.core.full_changes());
    let agent = one_slot(&mut sim);
    for _ in 0..4 {
        sim.submit_as("flood", 10, MINUTE_MS).unwrap();
    }
    sim.advance(10);
    sim.submit_as("honest", 10, 2 * MINUTE_MS).unwrap();
    // The flood's first task is proving; the honest one waits behind it.
    let first = sim.take_offers().remove(0);
    sim.accept(&agent, first.task);
    store.absorb(sim.core.take_changes());
    let p = policy(32);
    let mut restored = CoordinatorCore::restore(p, store.state(), sim.now).unwrap();
    // The agent comes back and delivers: the next offer goes to the honest client, as it
    // would have without the restart (the flood holds the agent's slot until then).
    restored
        .handle_agent_connected(sim.now, agent.clone(), 1)
        .unwrap();
    restored
        .handle_telemetry(
            sim.now,
            &agent,
            cuda_telemetry(1, 8 * GIB, FAST, 1_000_000_000),
        )
        .unwrap();
    restored
        .handle_proof_delivered(sim.now, &agent, first.task)
        .unwrap();
    restored
        .handle_proof_verified(sim.now, &agent, first.task, true, 40)
        .unwrap();
    let offered: Vec<TaskId> = std::iter::from_fn(|| restored.poll_effect())
        .filter_map(|e| match e {
            proofrack_coordinator::Effect::SendOffer(o) => Some(o.task),
            _ => None,
        })
        .collect();
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert_eq!(restored.task(offered[0]).unwrap().client, "honest");
}

/// Random floods from several clients against a fleet that frees one slot at a time: a
/// client with tasks waiting is never passed over by more offers to another than the number
/// of clients waiting (round robin), whatever the arrival order, and no client holds more
/// unfinished tasks than its share.
fn serve_with_random_arrivals(arrivals: Vec<(u8, u8)>, share: usize) {
    let mut sim = Sim::new(policy(share), &[("op-a", 100_000)]);
    let agent = one_slot(&mut sim);
    let clients = ["a", "b", "c", "d"];
    for (who, n) in arrivals {
        let client = clients[who as usize % clients.len()];
        for _ in 0..(n % 12) {
            match sim.submit_as(client, 1, 5 * MINUTE_MS) {
                Ok(_) => {}
                Err(SubmitRejected::ClientShareFull { held, cap, .. }) => {
                    assert_eq!(held, cap);
                    assert_eq!(cap, share);
                }
                Err(e) => panic!("{e}"),
            }
        }
        sim.advance(1);
        // One task served between arrival bursts.
        let _ = serve_next(&mut sim, &agent);
    }
    // Drain, one offer at a time: a client that waits is passed over by fewer offers to
    // others than there are clients (round robin), counted while it waits.
    let mut passed: BTreeMap<String, usize> = BTreeMap::new();
    let mut trace: Vec<String> = Vec::new();
    loop {
        let offers = sim.take_offers();
        let Some(offer) = offers.first() else { break };
        assert_eq!(offers.len(), 1, "one slot, one offer at a time");
        sim.accept(&agent, offer.task);
        let waiting = waiting_by_client(&sim);
        // Delivery frees the slot: the next offer is chosen among `waiting`.
        sim.prove(&agent, offer.task, true);
        let Some(next) = sim.effects.iter().find_map(|e| match e {
            proofrack_coordinator::Effect::SendOffer(o) => Some(o.task),
            _ => None,
        }) else {
            assert!(
                waiting.is_empty(),
                "tasks waiting with the agent idle: {waiting:?}"
            );
            break;
        };
        let served = client_of(&sim, next);
        let states: Vec<String> = sim
            .core
            .task_statuses()
            .into_iter()
            .filter(|(_, st)| !matches!(st, TaskStatus::Verified { .. }))
            .map(|(t, st)| format!("{t}:{}:{st:?}", client_of(&sim, t)))
            .collect();
        trace.push(format!("{served} ({next}) of {waiting:?}: {states:?}"));
        for c in clients {
            let n = passed.entry(c.to_string()).or_default();
            if c == served || !waiting.contains_key(c) {
                *n = 0;
            } else {
                *n += 1;
                assert!(
                    *n < clients.len(),
                    "{c} waited through {n} offers to others: {waiting:?}; {trace:#?}"
                );
            }
        }
        sim.advance(1);
    }
    let left = waiting_by_client(&sim);
    assert!(
        left.is_empty(),
        "tasks waiting with the fleet idle: {left:?}"
    );
}

fn waiting_by_client(sim: &Sim) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (task, status) in sim.core.task_statuses() {
        if matches!(status, TaskStatus::Queued { .. }) {
            *out.entry(client_of(sim, task)).or_default() += 1;
        }
    }
    out
}

proptest! {
    #![proptest_config(Config {
        cases: 32,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0xfa1e_0015),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn clients_take_turns_whatever_the_arrivals(
        arrivals in prop::collection::vec((any::<u8>(), any::<u8>()), 1..24),
        share in 2usize..20,
    ) {
        serve_with_random_arrivals(arrivals, share);
    }
}
