//! Property test of the whole core: random event sequences (agents coming and going, telemetry
//! of every health, submissions, accepts, declines, deliveries from the right and the wrong
//! agent, valid and invalid proofs, stake changes, time passing) against a simulated clock.
//! After every step: the ledger's invariants hold and stake is conserved; every bound task's
//! collateral is in the ledger exactly once; each operator's active stake is the sum of the
//! collateral of tasks bound to it; stake is only slashed for invalid proofs and missed due
//! times; an accept only fails to bind after a withdrawal (outstanding offers never promise
//! the same free stake twice).

use proofrack_common::telemetry::ProofShape;
use proofrack_common::{KeyId, OperatorId, StakeUnits, TaskId, UnixMillis};
use proofrack_coordinator::ledger::source::StakeEvent;
use proofrack_coordinator::tasks::{OfferReplyRejected, TaskEvent};
use proofrack_coordinator::testkit::{agent_id, cpu_telemetry, cuda_telemetry};
use proofrack_coordinator::{
    AgentId, CoordinatorCore, Effect, OfferReply, Policy, TaskSpec, TaskStatus,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Fixed so that a failure replays.
const SEED: u64 = 0x5eed_c00d_0000_0002;
const CASES: u32 = 5_000;
const MAX_STEPS: usize = 80;
const AGENTS: [(&str, &str); 4] = [
    ("op-a", "g1"),
    ("op-a", "g2"),
    ("op-b", "g1"),
    ("op-c", "cpu"),
];
const OPERATORS: [&str; 3] = ["op-a", "op-b", "op-c"];
const GIB: u64 = 1 << 30;
const START: UnixMillis = UnixMillis(1_000_000_000);

#[derive(Clone, Debug)]
struct Report {
    cpu: bool,
    memory_gib: u64,
    msm: u64,
    temperature_c: u32,
    ecc: u64,
    throttled: bool,
}

#[derive(Clone, Debug)]
enum Ev {
    Connect {
        agent: usize,
        slots: u32,
    },
    Disconnect {
        agent: usize,
    },
    Telemetry {
        agent: usize,
        report: Report,
    },
    Submit {
        collateral: u128,
        deadline_ms: u64,
        big: bool,
    },
    /// Replies to the `pick`-th outstanding offer, from its agent.
    ReplyToOffer {
        pick: usize,
        accept: bool,
    },
    /// Any agent replies about any task (mostly refused).
    StrayReply {
        agent: usize,
        task: usize,
        accept: bool,
    },
    /// The agent of the `pick`-th proving task delivers; the shell's verdict follows.
    Deliver {
        pick: usize,
        valid: bool,
        verdict_now: bool,
    },
    /// Any agent delivers or reports a verdict for any task (mostly refused).
    StrayDelivery {
        agent: usize,
        task: usize,
        valid: bool,
    },
    /// The verdict for the `pick`-th verifying task.
    Verdict {
        pick: usize,
        valid: bool,
    },
    /// Time passes. A prompt shell handles each timeout when due; a late one lets the next
    /// event find the timeouts already due (every `handle_*` applies them first).
    Advance {
        ms: u64,
        prompt: bool,
    },
    Delegate {
        operator: usize,
        amount: u128,
    },
    RequestWithdrawal {
        operator: usize,
        amount: u128,
    },
    CompleteWithdrawal {
        operator: usize,
        amount: u128,
    },
}

fn report() -> impl Strategy<Value = Report> {
    (
        prop::bool::weighted(0.15),
        prop_oneof![Just(0u64), Just(1), Just(4), Just(16)],
        prop_oneof![Just(1_000_000u64), Just(10_000_000)],
        prop_oneof![8 => Just(60u32), 1 => Just(86), 1 => Just(95)],
        prop_oneof![9 => Just(0u64), 1 => Just(1)],
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(cpu, memory_gib, msm, temperature_c, ecc, throttled)| Report {
                cpu,
                memory_gib,
                msm,
                temperature_c,
                ecc,
                throttled,
            },
        )
}

fn event() -> impl Strategy<Value = Ev> {
    let agent = 0..AGENTS.len();
    let op = 0..OPERATORS.len();
    prop_oneof![
        3 => (agent.clone(), 1u32..4).prop_map(|(agent, slots)| Ev::Connect { agent, slots }),
        1 => agent.clone().prop_map(|agent| Ev::Disconnect { agent }),
        4 => (agent.clone(), report()).prop_map(|(agent, report)| Ev::Telemetry { agent, report }),
        5 => (0u128..70, prop_oneof![Just(0u64), 500u64..5_000, 5_000u64..120_000], any::<bool>())
            .prop_map(|(collateral, deadline_ms, big)| Ev::Submit { collateral, deadline_ms, big }),
        6 => (any::<usize>(), prop::bool::weighted(0.7)).prop_map(|(pick, accept)| Ev::ReplyToOffer { pick, accept }),
        1 => (agent.clone(), 0usize..10, any::<bool>()).prop_map(|(agent, task, accept)| Ev::StrayReply { agent, task, accept }),
        4 => (any::<usize>(), prop::bool::weighted(0.7), any::<bool>())
            .prop_map(|(pick, valid, verdict_now)| Ev::Deliver { pick, valid, verdict_now }),
        1 => (agent, 0usize..10, any::<bool>()).prop_map(|(agent, task, valid)| Ev::StrayDelivery { agent, task, valid }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, valid)| Ev::Verdict { pick, valid }),
        4 => (prop_oneof![0u64..100, 100u64..3_000, 3_000u64..40_000], prop::bool::weighted(0.7))
            .prop_map(|(ms, prompt)| Ev::Advance { ms, prompt }),
        1 => (op.clone(), 0u128..80).prop_map(|(operator, amount)| Ev::Delegate { operator, amount }),
        1 => (op.clone(), 0u128..80).prop_map(|(operator, amount)| Ev::RequestWithdrawal { operator, amount }),
        1 => (op, 0u128..80).prop_map(|(operator, amount)| Ev::CompleteWithdrawal { operator, amount }),
    ]
}

struct World {
    core: CoordinatorCore,
    now: UnixMillis,
    seq: BTreeMap<AgentId, u64>,
    connected: BTreeSet<AgentId>,
    tasks: Vec<TaskId>,
    next_request: u64,
    /// Sum of successful delegations per operator (the model's side of conservation).
    delegated_ever: BTreeMap<OperatorId, u128>,
    /// Whether a withdrawal was requested at any time (the only way an accept may fail to bind).
    withdrawal_requested: bool,
}

fn operator(i: usize) -> OperatorId {
    OperatorId::new(OPERATORS[i]).unwrap()
}

fn agent(i: usize) -> AgentId {
    agent_id(AGENTS[i].0, AGENTS[i].1)
}

impl World {
    fn new() -> World {
        let policy = Policy {
            offer_timeout_ms: 2_000,
            decline_backoff_ms: 3_000,
            ..Policy::default()
        };
        let mut core = CoordinatorCore::new(policy).unwrap();
        core.register_circuit(
            "small".into(),
            KeyId([1; 32]),
            ProofShape {
                domain_size: 1 << 10,
                num_variables: 1 << 10,
            },
        )
        .unwrap();
        core.register_circuit(
            "big".into(),
            KeyId([2; 32]),
            ProofShape {
                domain_size: 1 << 22,
                num_variables: 1 << 22,
            },
        )
        .unwrap();
        let mut w = World {
            core,
            now: START,
            seq: BTreeMap::new(),
            connected: BTreeSet::new(),
            tasks: Vec::new(),
            next_request: 0,
            delegated_ever: BTreeMap::new(),
            withdrawal_requested: false,
        };
        for (op, stake) in [(0, 100u128), (1, 50)] {
            w.core
                .handle_stake_event(
                    w.now,
                    StakeEvent::Delegated {
                        operator: operator(op),
                        amount: StakeUnits(stake),
                    },
                )
                .unwrap();
            w.delegated_ever.insert(operator(op), stake);
        }
        w
    }

    fn tasks_in(&self, wanted: fn(&TaskStatus) -> bool) -> Vec<(TaskId, TaskStatus)> {
        self.core
            .task_statuses()
            .into_iter()
            .filter(|(_, s)| wanted(s))
            .collect()
    }

    fn step(&mut self, ev: &Ev) {
        let now = self.now;
        // With a late shell, timeouts due now apply first and may take the task away.
        let late = self.core.poll_timeout().is_some_and(|t| t <= now);
        match ev.clone() {
            Ev::Connect { agent: i, slots } => {
                let id = agent(i);
                let r = self.core.handle_agent_connected(now, id.clone(), slots);
                assert_eq!(r.is_ok(), !self.connected.contains(&id), "{r:?}");
                self.connected.insert(id);
            }
            Ev::Disconnect { agent: i } => {
                self.core.handle_agent_disconnected(now, &agent(i));
                self.connected.remove(&agent(i));
            }
            Ev::Telemetry { agent: i, report } => {
                let id = agent(i);
                let seq = self.seq.entry(id.clone()).or_default();
                *seq += 1;
                let mut t = if report.cpu {
                    cpu_telemetry(*seq, report.memory_gib * GIB, report.msm / 10, 100_000_000)
                } else {
                    cuda_telemetry(*seq, report.memory_gib * GIB, report.msm, 1_000_000_000)
                };
                if let Some(g) = t.gpus.first_mut() {
                    g.temperature_c = report.temperature_c;
                    g.ecc_uncorrectable_total = Some(report.ecc);
                    g.throttle.hw_thermal_slowdown = report.throttled;
                }
                let r = self.core.handle_telemetry(now, &id, t);
                assert_eq!(r.is_ok(), self.connected.contains(&id), "{r:?}");
            }
            Ev::Submit {
                collateral,
                deadline_ms,
                big,
            } => {
                self.next_request += 1;
                let spec = TaskSpec {
                    circuit: if big { "big" } else { "small" }.into(),
                    inputs: Arc::from(&[1u8, 2, 3][..]),
                    collateral: StakeUnits(collateral),
                    deadline: UnixMillis(now.0 + deadline_ms),
                    client: "client".into(),
                    request_id: self.next_request,
                };
                if let Ok(id) = self.core.handle_submit(now, spec) {
                    assert!(collateral > 0 && deadline_ms > 0);
                    self.tasks.push(id);
                }
            }
            Ev::ReplyToOffer { pick, accept } => {
                let offered = self.tasks_in(|s| matches!(s, TaskStatus::Offered { .. }));
                if offered.is_empty() {
                    return;
                }
                let (task, TaskStatus::Offered { agent, .. }) =
                    offered[pick % offered.len()].clone()
                else {
                    unreachable!()
                };
                let reply = if accept {
                    OfferReply::Accept
                } else {
                    OfferReply::Decline {
                        reason: "test".into(),
                    }
                };
                match self.core.handle_offer_reply(now, &agent, task, reply) {
                    Ok(()) => {}
                    Err(OfferReplyRejected::BindFailed { .. }) => assert!(
                        self.withdrawal_requested,
                        "an accept failed to bind although no withdrawal ever competed for the stake"
                    ),
                    Err(OfferReplyRejected::NoOutstandingOffer { .. }) if late => {}
                    Err(e) => panic!("reply to an outstanding offer refused: {e}"),
                }
            }
            Ev::StrayReply {
                agent: i,
                task,
                accept,
            } => {
                if self.tasks.is_empty() {
                    return;
                }
                let task = self.tasks[task % self.tasks.len()];
                let reply = if accept {
                    OfferReply::Accept
                } else {
                    OfferReply::Decline {
                        reason: "stray".into(),
                    }
                };
                let status = self.core.task(task).map(|t| t.status);
                let offered_to_it =
                    matches!(&status, Some(TaskStatus::Offered { agent: a, .. }) if *a == agent(i));
                // A repeated accept of a task the agent already proves is the same answer again.
                let repeat_accept = accept
                    && matches!(&status, Some(TaskStatus::Proving { agent: a, .. }) if *a == agent(i));
                let r = self.core.handle_offer_reply(now, &agent(i), task, reply);
                if repeat_accept {
                    assert_eq!(r, Ok(()), "a repeated accept gets the same answer");
                } else if !offered_to_it {
                    assert!(
                        matches!(r, Err(OfferReplyRejected::NoOutstandingOffer { .. })),
                        "{r:?}"
                    );
                }
            }
            Ev::Deliver {
                pick,
                valid,
                verdict_now,
            } => {
                let proving = self.tasks_in(|s| matches!(s, TaskStatus::Proving { .. }));
                if proving.is_empty() {
                    return;
                }
                let (task, TaskStatus::Proving { agent, .. }) =
                    proving[pick % proving.len()].clone()
                else {
                    unreachable!()
                };
                match self.core.handle_proof_delivered(now, &agent, task) {
                    Ok(()) => {}
                    Err(_) if late => return self.drain_effects(),
                    Err(e) => panic!("delivery of a proving task by its agent refused: {e}"),
                }
                if verdict_now {
                    self.core
                        .handle_proof_verified(now, &agent, task, valid, 10)
                        .unwrap();
                }
            }
            Ev::StrayDelivery {
                agent: i,
                task,
                valid,
            } => {
                if self.tasks.is_empty() {
                    return;
                }
                let task = self.tasks[task % self.tasks.len()];
                let before = self.core.ledger_rows();
                let bound_to_it = matches!(
                    self.core.task(task).map(|t| t.status),
                    Some(TaskStatus::Proving { agent: a, .. }
                        | TaskStatus::Verifying { agent: a }
                        // A lost agent's proof still counts until another agent takes over.
                        | TaskStatus::Reassigning { lost_agent: a, .. }) if a == agent(i)
                );
                let r = self
                    .core
                    .handle_proof_verified(now, &agent(i), task, valid, 10);
                if !bound_to_it && !late {
                    assert!(
                        r.is_err(),
                        "a delivery for a task not bound to {} was taken",
                        agent(i)
                    );
                    assert_eq!(
                        before,
                        self.core.ledger_rows(),
                        "a refused delivery moved stake"
                    );
                }
            }
            Ev::Verdict { pick, valid } => {
                let verifying = self.tasks_in(|s| matches!(s, TaskStatus::Verifying { .. }));
                if verifying.is_empty() {
                    return;
                }
                let (task, TaskStatus::Verifying { agent }) =
                    verifying[pick % verifying.len()].clone()
                else {
                    unreachable!()
                };
                self.core
                    .handle_proof_verified(now, &agent, task, valid, 10)
                    .unwrap();
            }
            Ev::Advance { ms, prompt } => {
                let end = UnixMillis(now.0 + ms);
                let mut guard = 0;
                while let Some(t) = self.core.poll_timeout().filter(|t| prompt && *t <= end) {
                    guard += 1;
                    assert!(guard < 10_000, "poll_timeout does not make progress");
                    self.now = self.now.max(t);
                    self.core.handle_timeout(self.now);
                    self.drain_effects();
                }
                self.now = end;
            }
            Ev::Delegate {
                operator: i,
                amount,
            } => {
                if self
                    .core
                    .handle_stake_event(
                        now,
                        StakeEvent::Delegated {
                            operator: operator(i),
                            amount: StakeUnits(amount),
                        },
                    )
                    .is_ok()
                {
                    *self.delegated_ever.entry(operator(i)).or_default() += amount;
                }
            }
            Ev::RequestWithdrawal {
                operator: i,
                amount,
            } => {
                let r = self.core.handle_stake_event(
                    now,
                    StakeEvent::WithdrawalRequested {
                        operator: operator(i),
                        amount: StakeUnits(amount),
                    },
                );
                self.withdrawal_requested |= r.is_ok();
            }
            Ev::CompleteWithdrawal {
                operator: i,
                amount,
            } => {
                let _ = self.core.handle_stake_event(
                    now,
                    StakeEvent::WithdrawalCompleted {
                        operator: operator(i),
                        amount: StakeUnits(amount),
                    },
                );
            }
        }
        self.drain_effects();
    }

    fn drain_effects(&mut self) {
        while let Some(effect) = self.core.poll_effect() {
            if let Effect::SendOffer(offer) = &effect {
                assert!(
                    self.connected.contains(&offer.agent),
                    "offer to a disconnected agent: {}",
                    offer.agent
                );
                assert!(offer.due_at <= offer.deadline && offer.offer_expires <= offer.due_at);
                assert!(
                    offer.offer_expires > self.now,
                    "offer already expired when sent"
                );
            }
        }
    }

    fn check(&self) {
        self.core.assert_invariants();
        if self.core.poll_timeout().is_none_or(|t| t > self.now) {
            // Settled unless a late shell has timeouts pending (they may free stake).
            self.core.assert_settled(self.now);
        }
        let ledger = self.core.ledger();

        // Bound tasks: exactly one binding each, from the agent's operator, for its collateral.
        let mut bound: BTreeMap<OperatorId, u128> = BTreeMap::new();
        let mut bound_count = 0;
        let mut slashed_by_history: BTreeMap<OperatorId, u128> = BTreeMap::new();
        for &id in &self.tasks {
            let view = self
                .core
                .task(id)
                .expect("tasks are kept in these short runs");
            match &view.status {
                TaskStatus::Proving { agent, .. }
                | TaskStatus::Verifying { agent }
                | TaskStatus::Reassigning {
                    lost_agent: agent, ..
                }
                | TaskStatus::Offered {
                    agent,
                    stake_bound: true,
                    ..
                } => {
                    let b = ledger
                        .binding(id)
                        .expect("a bound task has stake in the ledger");
                    assert_eq!((&b.operator, b.amount), (&agent.operator, view.collateral));
                    *bound.entry(agent.operator.clone()).or_default() += view.collateral.0;
                    bound_count += 1;
                }
                _ => assert!(
                    ledger.binding(id).is_none(),
                    "{id} is not bound but has stake bound"
                ),
            }
            for h in &view.history {
                if let TaskEvent::InvalidProof { agent, slashed, .. }
                | TaskEvent::DueTimeMissed { agent, slashed, .. } = &h.event
                {
                    *slashed_by_history
                        .entry(agent.operator.clone())
                        .or_default() += slashed.0;
                }
            }
        }
        assert_eq!(
            ledger.bindings().count(),
            bound_count,
            "bindings for tasks that are not bound"
        );

        for row in self.core.ledger_rows() {
            let account = ledger.account(&row.operator).unwrap();
            assert!(row.active <= row.delegated);
            assert_eq!(
                row.free.0,
                row.delegated.0 - row.active.0 - row.withdrawing.0
            );
            assert_eq!(
                row.active.0,
                bound.get(&row.operator).copied().unwrap_or(0),
                "{}: active != bound collateral",
                row.operator
            );
            assert_eq!(
                account.delegated_ever().0,
                row.free.0 + row.active.0 + row.withdrawing.0 + row.withdrawn.0 + row.slashed.0,
                "{}: conservation",
                row.operator
            );
            assert_eq!(
                account.delegated_ever().0,
                self.delegated_ever.get(&row.operator).copied().unwrap_or(0)
            );
            assert_eq!(
                row.slashed.0,
                slashed_by_history.get(&row.operator).copied().unwrap_or(0),
                "{}: slashed only for invalid proofs and missed due times",
                row.operator
            );
            if !self.withdrawal_requested {
                assert!(
                    row.promised_to_offers <= row.free,
                    "{}: offers promise more than the free stake",
                    row.operator
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(Config {
        cases: CASES,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(SEED),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn random_event_sequences_keep_stake_and_tasks_consistent(events in prop::collection::vec(event(), 1..MAX_STEPS)) {
        let mut world = World::new();
        world.check();
        for ev in &events {
            world.step(ev);
            world.check();
        }
    }
}
