//! Faults, with simulated time: agents lost and handed over, restarts from the durable rows,
//! withdrawals and drains, idempotent operator commands; a seeded simulation of a large
//! fleet with crashes of agents and of the coordinator itself (`fleet_sim`); fair
//! queueing across clients (`fairness`); request ids bounded and expiring (`retention`).

mod fairness;
mod fleet_sim;
mod retention;
mod sim_clock;

use proofrack_common::{StakeUnits, UnixMillis};
use proofrack_coordinator::tasks::{DeliveryRejected, RestoreError};
use proofrack_coordinator::testkit::cuda_telemetry;
use proofrack_coordinator::{CoordinatorCore, Effect, Policy, TaskStatus};
use sim_clock::{Sim, GIB};

const MINUTE_MS: u64 = 60_000;
const FAST: u64 = 10_000_000;

fn policy() -> Policy {
    Policy {
        max_tasks_per_agent: 8,
        agent_grace_ms: 5_000,
        // Due times well after the grace period, so losing an agent is a handover, not a
        // missed due time.
        deadline_margin_ms: 30_000,
        ..Policy::default()
    }
}

fn resumes(sim: &mut Sim) -> Vec<proofrack_common::TaskId> {
    let mut out = Vec::new();
    sim.effects.retain(|e| match e {
        Effect::ResumeTask(o) => {
            out.push(o.task);
            false
        }
        _ => true,
    });
    out
}

#[test]
fn an_agent_back_within_the_grace_period_keeps_its_task_and_is_told_to_resume() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let a = sim.gpu_agent("op-a", "gpu-1", FAST);
    let _b = sim.gpu_agent("op-a", "gpu-2", FAST);
    let t = sim.submit(30, MINUTE_MS).unwrap();
    let offer = sim.take_offers().remove(0);
    let holder = offer.agent.clone();
    sim.accept(&holder, t);
    sim.disconnect(&holder);
    sim.advance(4_000);
    assert!(matches!(sim.status(t), TaskStatus::Proving { ref agent, .. } if *agent == holder));
    sim.core
        .handle_agent_connected(sim.now, holder.clone(), 4)
        .unwrap();
    sim.collect();
    assert_eq!(resumes(&mut sim), vec![t], "told to resume its bound task");
    sim.advance(10_000);
    assert!(matches!(sim.status(t), TaskStatus::Proving { ref agent, .. } if *agent == holder));
    assert_eq!(sim.row("op-a").active, StakeUnits(30));
    sim.prove(&holder, t, true);
    assert!(matches!(sim.status(t), TaskStatus::Verified { .. }));
    let _ = a;
}

#[test]
fn an_agent_gone_past_the_grace_hands_its_task_to_another_agent_of_its_operator_with_stake_bound() {
    let mut sim = Sim::new(policy(), &[("op-a", 100), ("op-b", 100)]);
    let a1 = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t = sim.submit(30, MINUTE_MS).unwrap();
    sim.take_offers();
    sim.accept(&a1, t);
    // Another agent of op-a and one of op-b join; op-b's must not get the bound task.
    let a2 = sim.gpu_agent("op-a", "gpu-2", FAST);
    let _b1 = sim.gpu_agent("op-b", "gpu-1", FAST * 10);
    sim.disconnect(&a1);
    sim.advance(5_001);
    let offers = sim.take_offers();
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!((offers[0].task, &offers[0].agent), (t, &a2));
    // The stake never left op-a and op-b's was never touched.
    assert_eq!(sim.row("op-a").active, StakeUnits(30));
    assert_eq!(sim.row("op-b").active, StakeUnits(0));
    assert_eq!(sim.row("op-b").promised_to_offers, StakeUnits(0));
    sim.accept(&a2, t);
    assert_eq!(
        sim.row("op-a").active,
        StakeUnits(30),
        "bound once, not twice"
    );
    let history = sim.core.task(t).unwrap().history;
    assert!(history.iter().any(|h| h
        .event
        .to_string()
        .contains("handed over from op-a/gpu-1 to op-a/gpu-2")));
    // The lost agent comes back and delivers late: refused with the reason; no stake moves.
    sim.core
        .handle_agent_connected(sim.now, a1.clone(), 4)
        .unwrap();
    sim.collect();
    assert!(
        resumes(&mut sim).is_empty(),
        "the task is not handed back to it"
    );
    let late = sim
        .core
        .handle_proof_delivered(sim.now, &a1, t)
        .unwrap_err();
    assert!(matches!(late, DeliveryRejected::TooLate { .. }), "{late}");
    assert!(
        late.to_string().contains("handed over to op-a/gpu-2"),
        "{late}"
    );
    sim.prove(&a2, t, true);
    assert_eq!(sim.row("op-a").active, StakeUnits(0));
    assert_eq!(
        sim.row("op-a").slashed,
        StakeUnits(0),
        "a handover costs nothing"
    );
}

#[test]
fn an_unhealthy_gpu_hands_its_tasks_over_at_once() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let a1 = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t = sim.submit(30, MINUTE_MS).unwrap();
    sim.take_offers();
    sim.accept(&a1, t);
    let a2 = sim.gpu_agent("op-a", "gpu-2", FAST);
    let mut sick = cuda_telemetry(0, 8 * GIB, FAST, 1_000_000_000);
    sick.gpus[0].ecc_uncorrectable_total = Some(3);
    sim.report(&a1, sick);
    assert!(
        sim.take_cancels().contains(&(a1.clone(), t)),
        "the sick agent is told to stop"
    );
    let offers = sim.take_offers();
    assert_eq!(
        offers
            .iter()
            .map(|o| (&o.agent, o.task))
            .collect::<Vec<_>>(),
        [(&a2, t)]
    );
}

#[test]
fn with_no_agent_of_its_operator_left_the_task_is_slashed_at_the_due_time_and_requeued() {
    let mut sim = Sim::new(policy(), &[("op-a", 100), ("op-b", 100)]);
    let a1 = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t = sim.submit(30, 2 * MINUTE_MS).unwrap();
    let due = sim.take_offers()[0].due_at;
    sim.accept(&a1, t);
    let b1 = sim.gpu_agent("op-b", "gpu-1", FAST);
    sim.disconnect(&a1);
    sim.advance(6_000);
    assert!(
        matches!(sim.status(t), TaskStatus::Reassigning { .. }),
        "{:?}",
        sim.status(t)
    );
    assert_eq!(sim.row("op-a").active, StakeUnits(30));
    assert!(
        sim.take_offers().is_empty(),
        "op-b cannot take op-a's bound task"
    );
    sim.advance(due.0 - sim.now.0 + 1);
    let row = sim.row("op-a");
    assert_eq!((row.active, row.slashed), (StakeUnits(0), StakeUnits(3)));
    let offers = sim.take_offers();
    assert_eq!(
        offers
            .iter()
            .map(|o| (&o.agent, o.task))
            .collect::<Vec<_>>(),
        [(&b1, t)]
    );
}

#[test]
fn a_restart_from_the_stored_rows_keeps_stake_and_tasks_and_lapses_only_offers() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let a1 = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t1 = sim.submit(30, MINUTE_MS).unwrap();
    let t2 = sim.submit(20, MINUTE_MS).unwrap();
    let offers = sim.take_offers();
    assert_eq!(offers.len(), 2);
    sim.accept(&a1, t1);
    // A store fed only the incremental change sets, as the shell feeds redb.
    let mut store = StoreModel::default();
    store.absorb(sim.core.full_changes());
    let reply = sim.core.handle_withdrawal_request(
        sim.now,
        "ops",
        7,
        &"op-a".parse().unwrap(),
        StakeUnits(10),
    );
    assert!(reply.ok, "{}", reply.message);
    store.absorb(sim.core.take_changes());
    let before_rows = sim.core.ledger_rows();

    let restarted = CoordinatorCore::restore(policy(), store.state(), sim.now).unwrap();
    sim.core = restarted;
    sim.effects.clear();
    let rows = sim.core.ledger_rows();
    assert_eq!(
        rows.iter()
            .map(|r| (r.delegated, r.active, r.withdrawing))
            .collect::<Vec<_>>(),
        before_rows
            .iter()
            .map(|r| (r.delegated, r.active, r.withdrawing))
            .collect::<Vec<_>>()
    );
    assert!(
        matches!(sim.status(t1), TaskStatus::Proving { .. }),
        "bound work survives"
    );
    assert!(
        matches!(sim.status(t2), TaskStatus::Queued { .. }),
        "the offer lapsed: {:?}",
        sim.status(t2)
    );
    // The same withdrawal request again: same answer, no second withdrawal.
    let again = sim.core.handle_withdrawal_request(
        sim.now,
        "ops",
        7,
        &"op-a".parse().unwrap(),
        StakeUnits(10),
    );
    assert_eq!(again, reply);
    assert_eq!(sim.row("op-a").withdrawing, StakeUnits(10));
    // The agent reconnects within the grace and is told to resume t1.
    sim.core
        .handle_agent_connected(sim.now, a1.clone(), 4)
        .unwrap();
    sim.collect();
    assert_eq!(resumes(&mut sim), vec![t1]);
}

#[test]
fn withdrawals_pay_out_after_the_delay_and_drained_agents_get_no_new_tasks() {
    let p = Policy {
        max_deadline_ms: 2 * MINUTE_MS,
        withdrawal_delay_ms: 3 * MINUTE_MS,
        ..policy()
    };
    let mut sim = Sim::new(p, &[("op-a", 100)]);
    let a1 = sim.gpu_agent("op-a", "gpu-1", FAST);
    let reply = sim.core.handle_drain(sim.now, "ops", 1, &a1, true);
    assert!(
        reply.ok && reply.message.contains("drained"),
        "{}",
        reply.message
    );
    let t = sim.submit(30, MINUTE_MS).unwrap();
    assert!(
        sim.take_offers().is_empty(),
        "a drained agent is offered nothing"
    );
    assert!(matches!(sim.status(t), TaskStatus::Queued { .. }));
    sim.core.handle_drain(sim.now, "ops", 2, &a1, false);
    sim.collect();
    assert_eq!(sim.take_offers().len(), 1, "undrained: offered again");

    let op = "op-a".parse().unwrap();
    let reply = sim
        .core
        .handle_withdrawal_request(sim.now, "ops", 3, &op, StakeUnits(50));
    assert!(reply.ok, "{}", reply.message);
    let row = sim.row("op-a");
    assert_eq!(
        (row.delegated, row.withdrawing),
        (StakeUnits(100), StakeUnits(50))
    );
    let too_much = sim
        .core
        .handle_withdrawal_request(sim.now, "ops", 4, &op, StakeUnits(60));
    assert!(
        !too_much.ok && too_much.message.contains("free stake"),
        "{}",
        too_much.message
    );
    sim.advance(3 * MINUTE_MS - 1);
    assert_eq!(sim.row("op-a").delegated, StakeUnits(100));
    sim.advance(1);
    let row = sim.row("op-a");
    assert_eq!(
        (row.delegated, row.withdrawing, row.withdrawn),
        (StakeUnits(50), StakeUnits(0), StakeUnits(50))
    );
}

#[test]
fn every_state_that_keeps_an_agent_from_tasks_is_visible() {
    use proofrack_common::protocol::OperatorStanding;
    let mut sim = Sim::new(policy(), &[("op-a", 100), ("op-empty", 0)]);
    let leaving = sim.gpu_agent("op-a", "gpu-1", FAST);
    let drained = sim.gpu_agent("op-a", "gpu-2", FAST);
    let stakeless = sim.gpu_agent("op-empty", "gpu-1", FAST);
    let stranger = sim.gpu_agent("op-unknown", "gpu-1", FAST);
    sim.core.handle_drain(sim.now, "ops", 1, &drained, true);
    sim.core.handle_agent_leaving(sim.now, &leaving);
    sim.collect();
    let rows = sim.core.agent_rows(sim.now);
    let row = |id: &proofrack_coordinator::admission::AgentId| {
        rows.iter()
            .find(|r| &r.agent == id)
            .expect("listed")
            .clone()
    };
    assert!(row(&leaving).leaving && !row(&leaving).drained);
    assert!(row(&drained).drained && !row(&drained).leaving);
    assert_eq!(row(&stakeless).operator_standing, OperatorStanding::NoStake);
    assert_eq!(row(&stranger).operator_standing, OperatorStanding::Unknown);
    assert_eq!(row(&leaving).operator_standing, OperatorStanding::Staked);
    // The fleet page's rows say the same in words.
    let page = sim.core.fleet_agents(sim.now);
    let words = |id: &proofrack_coordinator::admission::AgentId| {
        page.iter().find(|a| &a.agent == id).unwrap().state.clone()
    };
    assert_eq!(words(&leaving), "up, withdrawing");
    assert_eq!(words(&drained), "up, drained");
    assert_eq!(words(&stakeless), "up, operator has no stake");
    assert_eq!(words(&stranger), "up, unknown operator");
    // None of them is offered a task; a withdrawing agent that connects again takes tasks.
    let t = sim.submit(30, MINUTE_MS).unwrap();
    assert!(sim.take_offers().is_empty(), "nobody may take it");
    assert!(matches!(sim.status(t), TaskStatus::Queued { .. }));
    sim.disconnect(&leaving);
    sim.core
        .handle_agent_connected(sim.now, leaving.clone(), 4)
        .unwrap();
    sim.report(
        &leaving,
        proofrack_coordinator::testkit::cuda_telemetry(1, 8 * GIB, FAST, 1_000_000_000),
    );
    sim.advance(1_000);
    let offers = sim.take_offers();
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!((offers[0].task, &offers[0].agent), (t, &leaving));
}

#[test]
fn a_deadline_beyond_the_policy_is_refused() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    sim.gpu_agent("op-a", "gpu-1", FAST);
    let err = sim.submit(10, 11 * MINUTE_MS).unwrap_err();
    assert!(err.to_string().contains("policy.max_deadline_ms"), "{err}");
}

#[test]
fn a_store_whose_ledger_breaks_an_invariant_is_refused() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let a1 = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t = sim.submit(30, MINUTE_MS).unwrap();
    sim.take_offers();
    sim.accept(&a1, t);
    let mut state = sim.core.durable_state();
    // Forget the bound task's row: the ledger's active stake no longer matches its bindings.
    state.tasks.clear();
    let err = CoordinatorCore::restore(policy(), state, UnixMillis(sim.now.0)).unwrap_err();
    assert!(matches!(err, RestoreError::Ledger(_)), "{err}");
    assert!(
        err.to_string()
            .contains("active 30 != sum of its bindings 0"),
        "{err}"
    );
}

/// What a store holds after absorbing change sets in order (the redb tables, in memory).
#[derive(Default)]
pub struct StoreModel {
    tasks: std::collections::BTreeMap<u64, Vec<u8>>,
    ledger: Option<proofrack_coordinator::ledger::LedgerState>,
    meta: Option<proofrack_coordinator::tasks::MetaState>,
    agents: std::collections::BTreeMap<
        proofrack_coordinator::AgentId,
        proofrack_coordinator::tasks::AgentFacts,
    >,
    audit: std::collections::BTreeMap<u64, proofrack_coordinator::tasks::AuditEntry>,
    commands: std::collections::BTreeMap<
        proofrack_coordinator::tasks::CommandKey,
        proofrack_coordinator::tasks::StoredCommand,
    >,
}

impl StoreModel {
    pub fn absorb(&mut self, c: proofrack_coordinator::tasks::Changes) {
        for (id, row) in c.tasks {
            match row {
                Some(r) => {
                    self.tasks.insert(id.0, r.0);
                }
                None => {
                    self.tasks.remove(&id.0);
                }
            }
        }
        if c.ledger.is_some() {
            self.ledger = c.ledger;
        }
        if c.meta.is_some() {
            self.meta = c.meta;
        }
        for (agent, row) in c.agents {
            match row {
                Some(f) => self.agents.insert(agent, f),
                None => self.agents.remove(&agent),
            };
        }
        for e in c.audit.added {
            self.audit.insert(e.seq, e);
        }
        for seq in c.audit.pruned {
            self.audit.remove(&seq);
        }
        for (key, row) in c.commands {
            match row {
                Some(r) => {
                    self.commands.insert(key, r);
                }
                None => {
                    self.commands.remove(&key);
                }
            }
        }
    }

    pub fn state(&self) -> proofrack_coordinator::tasks::DurableState {
        proofrack_coordinator::tasks::DurableState {
            tasks: self
                .tasks
                .values()
                .map(|v| proofrack_coordinator::tasks::TaskRow(v.clone()))
                .collect(),
            ledger: self.ledger.clone().expect("ledger written"),
            meta: self.meta.clone().expect("meta written"),
            agents: self
                .agents
                .iter()
                .map(|(a, f)| (a.clone(), f.clone()))
                .collect(),
            audit: self.audit.values().cloned().collect(),
            commands: self
                .commands
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}
