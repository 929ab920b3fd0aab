//! Circuit breakers and operator commands on agents, with the simulated clock: an agent that
//! keeps failing or whose proofs are far off its calibration gets no new offers for a
//! cool-down; an operator admin can close the breaker; drains name only known agents.

use super::{policy, FAST, MINUTE_MS, SLOW};
use crate::sim_clock::Sim;
use proofrack_common::{AgentName, OperatorId, TaskId};
use proofrack_coordinator::testkit::agent_id;
use proofrack_coordinator::{CoordinatorCore, Policy, TaskStatus};

fn breaker_policy() -> Policy {
    Policy {
        breaker_failures: 2,
        breaker_cooldown_ms: MINUTE_MS,
        ..policy()
    }
}

/// Offered to and accepted by `agent`, then its due time passes.
fn accept_and_miss(sim: &mut Sim, agent: &proofrack_coordinator::AgentId, t: TaskId) {
    let offer = sim
        .take_offers()
        .into_iter()
        .find(|o| o.task == t)
        .expect("offered");
    assert_eq!(&offer.agent, agent, "{t} went to {}", offer.agent);
    sim.accept(agent, t);
    sim.advance(offer.due_at.0 - sim.now.0);
    assert!(
        sim.take_cancels().contains(&(agent.clone(), t)),
        "{t} missed"
    );
}

#[test]
fn repeated_misses_open_the_breaker_for_the_cool_down_then_probation() {
    let mut sim = Sim::new(breaker_policy(), &[("op-a", 1_000)]);
    // The liar claims a fast calibration and never delivers; the honest one is slower.
    let liar = sim.gpu_agent("op-a", "liar", FAST);
    let honest = sim.gpu_agent("op-a", "honest", SLOW);
    let t1 = sim.submit(10, 10 * MINUTE_MS).unwrap();
    accept_and_miss(&mut sim, &liar, t1);
    assert!(
        sim.core.open_breakers(sim.now).is_empty(),
        "one failure is not a streak"
    );
    let t2 = sim.submit(10, 10 * MINUTE_MS).unwrap();
    accept_and_miss(&mut sim, &liar, t2);
    let open = sim.core.open_breakers(sim.now);
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].0, liar);
    assert_eq!(open[0].1.until.0, sim.now.0 + MINUTE_MS);
    assert!(
        open[0]
            .1
            .why
            .starts_with("2 failures in a row, the last: missed its due time"),
        "{}",
        open[0].1.why
    );
    let row = sim
        .core
        .agent_rows(sim.now)
        .into_iter()
        .find(|r| r.agent == liar)
        .unwrap();
    assert!(
        row.breaker
            .as_deref()
            .is_some_and(|b| b.starts_with("circuit breaker open until")),
        "{row:?}"
    );

    // While open, new tasks go to the honest agent even though the liar predicts faster.
    sim.take_offers();
    let t3 = sim.submit(10, 10 * MINUTE_MS).unwrap();
    let offers = sim.take_offers();
    assert!(
        offers.iter().any(|o| o.task == t3 && o.agent == honest),
        "{offers:?}"
    );
    sim.decline(&honest, t3);
    // With the honest agent declining, the only reason left names the breaker.
    sim.advance(1);
    match sim.status(t3) {
        TaskStatus::Queued { reason } => {
            assert!(reason.contains("circuit breaker open"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    // The breaker survives a restart (the agent book is durable).
    let state = sim.core.durable_state();
    let restored = CoordinatorCore::restore(breaker_policy(), state, sim.now).unwrap();
    assert_eq!(restored.open_breakers(sim.now).len(), 1);
    assert_eq!(restored.breaker(&liar).unwrap().trips, 1);

    // After the cool-down the liar is offered tasks again, on probation: one more miss opens
    // its breaker at once.
    sim.advance(MINUTE_MS);
    assert!(sim.core.open_breakers(sim.now).is_empty());
    assert_eq!(sim.core.breaker(&liar).unwrap().failures_in_a_row, 1);
    sim.take_offers();
    let t4 = sim.submit(10, 10 * MINUTE_MS).unwrap();
    accept_and_miss(&mut sim, &liar, t4);
    assert_eq!(sim.core.open_breakers(sim.now).len(), 1);
    assert_eq!(sim.core.breaker(&liar).unwrap().trips, 2);
    assert_eq!(sim.core.admission_stats().breaker_trips, 2);
}

#[test]
fn a_verified_proof_ends_the_streak_and_slow_proofs_open_the_breaker() {
    let p = Policy {
        breaker_slow_factor_permille: 2_000,
        ..breaker_policy()
    };
    let mut sim = Sim::new(p, &[("op-a", 1_000)]);
    let a = sim.gpu_agent("op-a", "gpu-1", SLOW);
    let t1 = sim.submit(10, 10 * MINUTE_MS).unwrap();
    accept_and_miss(&mut sim, &a, t1);
    assert_eq!(sim.core.breaker(&a).unwrap().failures_in_a_row, 1);
    // t1 is offered again (its only agent failed it before, but nothing else fits).
    assert!(sim.take_offers().iter().any(|o| o.task == t1));
    sim.accept(&a, t1);
    // A proof well within its time: the streak ends, no breaker.
    sim.core.handle_proof_delivered(sim.now, &a, t1).unwrap();
    sim.core
        .handle_proof_verified(sim.now, &a, t1, true, 25)
        .unwrap();
    sim.collect();
    assert_eq!(sim.core.breaker(&a).unwrap().failures_in_a_row, 0);
    assert!(sim.core.open_breakers(sim.now).is_empty());
    // Proofs eight times slower than predicted: the learned factor passes 2× and the
    // breaker opens, naming the factor.
    for _ in 0..4 {
        if !sim.core.open_breakers(sim.now).is_empty() {
            break;
        }
        let t = sim.submit(10, 10 * MINUTE_MS).unwrap();
        assert!(sim.take_offers().iter().any(|o| o.task == t));
        sim.accept(&a, t);
        let calibrated = sim
            .core
            .task(t)
            .unwrap()
            .history
            .iter()
            .find_map(|h| match &h.event {
                proofrack_coordinator::tasks::TaskEvent::Offered { placement, .. } => {
                    Some(placement.predicted_proving_ms)
                }
                _ => None,
            })
            .unwrap();
        assert!(calibrated >= 20, "{calibrated} ms teaches nothing");
        sim.core.handle_proof_delivered(sim.now, &a, t).unwrap();
        sim.core
            .handle_proof_verified(sim.now, &a, t, true, calibrated * 8)
            .unwrap();
        sim.collect();
    }
    let open = sim.core.open_breakers(sim.now);
    assert_eq!(
        open.len(),
        1,
        "factor {}",
        sim.core.speed_factor_permille(&a)
    );
    assert!(
        open[0]
            .1
            .why
            .contains("× its calibrated time (limit 2.00×)"),
        "{}",
        open[0].1.why
    );
}

#[test]
fn an_operator_admin_resets_a_breaker_and_a_retry_gets_the_same_reply() {
    let mut sim = Sim::new(breaker_policy(), &[("op-a", 1_000)]);
    let a = sim.gpu_agent("op-a", "gpu-1", FAST);
    for _ in 0..2 {
        let t = sim.submit(10, 10 * MINUTE_MS).unwrap();
        accept_and_miss(&mut sim, &a, t);
    }
    assert_eq!(sim.core.open_breakers(sim.now).len(), 1);
    let ops = "operator/op-a/admin/ops";
    let reply = sim.core.handle_breaker_reset(sim.now, ops, 7, &a);
    assert!(reply.ok);
    assert!(
        reply
            .message
            .starts_with("op-a/gpu-1's circuit breaker closed (it was open until"),
        "{}",
        reply.message
    );
    assert!(sim.core.open_breakers(sim.now).is_empty());
    assert_eq!(sim.core.breaker(&a).unwrap().failures_in_a_row, 0);
    // The same request id again: the stored reply, nothing changes twice.
    assert_eq!(sim.core.handle_breaker_reset(sim.now, ops, 7, &a), reply);
    let again = sim.core.handle_breaker_reset(sim.now, ops, 8, &a);
    assert!(
        again.ok && again.message.contains("was not open"),
        "{}",
        again.message
    );
    // A task waiting is offered to the agent again at once.
    let t = sim.submit(10, 10 * MINUTE_MS).unwrap();
    assert!(sim
        .take_offers()
        .iter()
        .any(|o| o.task == t && o.agent == a));
    let unknown = sim
        .core
        .handle_breaker_reset(sim.now, ops, 9, &agent_id("op-a", "ghost"));
    assert!(!unknown.ok);
    assert_eq!(
        unknown.message,
        "op-a/ghost is not an agent this coordinator knows (it has never connected); nothing was changed. op-a's known agents: gpu-1"
    );
}

#[test]
fn a_drain_of_an_unknown_agent_is_refused_with_the_known_ones_and_stores_nothing() {
    let mut sim = Sim::new(policy(), &[("op-a", 1_000), ("op-b", 1_000)]);
    for i in 0..20 {
        sim.gpu_agent("op-a", &format!("gpu-{i:02}"), FAST);
    }
    sim.core.take_changes();
    let ghost = agent_id("op-a", "ghost");
    let reply = sim
        .core
        .handle_drain(sim.now, "operator/op-a/admin/ops", 1, &ghost, true);
    assert!(!reply.ok);
    assert_eq!(
        reply.message,
        "op-a/ghost is not an agent this coordinator knows (it has never connected); nothing was changed. \
         op-a's known agents: gpu-00, gpu-01, gpu-02, gpu-03, gpu-04, gpu-05, gpu-06, gpu-07, gpu-08, \
         gpu-09, gpu-10, gpu-11, gpu-12, gpu-13, gpu-14, gpu-15 (the first 16 of 20)"
    );
    assert!(sim.core.take_changes().is_empty(), "nothing stored");
    let none = sim.core.handle_drain(
        sim.now,
        "operator/op-b/admin/ops",
        1,
        &agent_id("op-b", "x"),
        true,
    );
    assert!(
        none.message
            .ends_with("op-b has no agent this coordinator knows"),
        "{}",
        none.message
    );
    // A known agent, even disconnected and idle (forgotten by the fleet), can be drained.
    let gone = agent_id("op-a", "gpu-03");
    sim.disconnect(&gone);
    let reply = sim
        .core
        .handle_drain(sim.now, "operator/op-a/admin/ops", 2, &gone, true);
    assert!(reply.ok, "{}", reply.message);
    assert!(sim.core.knows_agent(&gone));
    let (names, total) = sim
        .core
        .known_agents_of(&OperatorId::new("op-a").unwrap(), 2);
    assert_eq!(total, 20);
    assert_eq!(
        names,
        [
            AgentName::new("gpu-00").unwrap(),
            AgentName::new("gpu-01").unwrap()
        ]
    );
}
