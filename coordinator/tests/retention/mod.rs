//! Request ids and what they keep, bounded in count and in age: operator-command replies (one
//! store row each) and finished tasks (with their request ids), forgotten after
//! `policy.request_retention_ms`, durably, and restored with their age.

use super::sim_clock::Sim;
use crate::StoreModel;
use proofrack_common::UnixMillis;
use proofrack_coordinator::{CoordinatorCore, Policy};

const RETENTION_MS: u64 = 120_000;

fn policy() -> Policy {
    Policy {
        request_retention_ms: RETENTION_MS,
        deadline_margin_ms: 30_000,
        ..Policy::default()
    }
}

#[test]
fn command_replies_stay_bounded_and_expire_and_so_do_their_rows() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let mut store = StoreModel::default();
    store.absorb(sim.core.full_changes());
    // A known agent: drains of agents never seen are refused and store nothing.
    let agent = sim.gpu_agent("op-a", "gpu-1", 1_000_000);
    // 6,000 drains, past the bound of 4,096 (the attacker's suite sends 20,000 to a real
    // process): the replies kept, and their rows, stay at the bound.
    let n = 6_000u64;
    for i in 0..n {
        let reply = sim
            .core
            .handle_drain(sim.now, "mallory", i, &agent, i % 2 == 0);
        assert!(reply.ok);
        if i % 1_000 == 0 {
            store.absorb(sim.core.take_changes());
        }
    }
    store.absorb(sim.core.take_changes());
    let state = store.state();
    assert_eq!(
        state.commands.len(),
        proofrack_coordinator::tasks::MAX_ADMIN_REQUESTS
    );
    // A retry of a recent command gets its stored answer, not a second action.
    let again = sim
        .core
        .handle_drain(sim.now, "mallory", n - 1, &agent, true);
    assert!(
        again.message.contains("takes tasks again") || again.message.contains("was not drained"),
        "{}",
        again.message
    );
    // Restored with their age, then forgotten once it passes, rows and all.
    let mut restored = CoordinatorCore::restore(policy(), store.state(), sim.now).unwrap();
    assert_eq!(
        restored.durable_state().commands.len(),
        proofrack_coordinator::tasks::MAX_ADMIN_REQUESTS
    );
    let due = restored.poll_timeout().expect("retention end is a timer");
    assert!(due.0 <= sim.now.0 + RETENTION_MS + 1_000, "{due:?}");
    restored.handle_timeout(UnixMillis(sim.now.0 + RETENTION_MS + 1_000));
    store.absorb(restored.take_changes());
    assert!(store.state().commands.is_empty(), "expired rows deleted");
    assert!(restored.durable_state().commands.is_empty());
}

#[test]
fn finished_tasks_and_their_request_ids_are_forgotten_after_retention() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let a = sim.gpu_agent("op-a", "gpu-1", 10_000_000);
    let t = sim.submit(10, 60_000).unwrap();
    sim.take_offers();
    sim.accept(&a, t);
    sim.prove(&a, t, true);
    assert!(sim.core.task(t).is_some());
    sim.advance(RETENTION_MS - 1_000);
    assert!(sim.core.task(t).is_some(), "kept within retention");
    sim.advance(2_000);
    assert!(sim.core.task(t).is_none(), "forgotten after retention");
    let mut store = StoreModel::default();
    store.absorb(sim.core.full_changes());
    assert!(store.state().tasks.is_empty());
}
