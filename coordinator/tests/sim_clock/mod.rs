//! A simulated clock around `CoordinatorCore`, in the style of quinn-proto's test `Pair`: no
//! sockets, a few agents the test adds by hand, time advanced by hand (`Sim::advance`, which
//! delivers their telemetry and the core's timers in time order), effects collected for
//! inspection. The scripted scenarios (`scenarios.rs`, `faults.rs`) are written against it;
//! the seeded thousand-agent run (`fleet_sim`) drives the core itself and borrows only the
//! circuit.

#![allow(dead_code)] // each test binary uses a different part

use proofrack_common::telemetry::{ProofShape, Telemetry};
use proofrack_common::{KeyId, StakeUnits, TaskId, UnixMillis};
use proofrack_coordinator::ledger::source::StakeEvent;
use proofrack_coordinator::tasks::{OperatorRow, SubmitRejected};
use proofrack_coordinator::testkit::{agent_id, cuda_telemetry};
use proofrack_coordinator::{
    AgentId, CoordinatorCore, Effect, Offer, OfferReply, Policy, TaskSpec, TaskStatus,
};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const GIB: u64 = 1 << 30;
pub const START: UnixMillis = UnixMillis(1_700_000_000_000);
/// How often simulated agents report telemetry.
pub const TELEMETRY_PERIOD_MS: u64 = 1_000;
/// The circuit every scenario registers.
pub const CIRCUIT: &str = "square";

pub fn circuit_shape() -> ProofShape {
    ProofShape {
        domain_size: 1 << 16,
        num_variables: 1 << 16,
    }
}

pub struct Sim {
    pub core: CoordinatorCore,
    pub now: UnixMillis,
    /// Every effect emitted, in order, not yet taken by a test.
    pub effects: Vec<Effect>,
    /// Agents that keep reporting telemetry as time passes, with their last report.
    reporting: BTreeMap<AgentId, Telemetry>,
    next_telemetry_at: UnixMillis,
    next_request: u64,
}

impl Sim {
    pub fn new(policy: Policy, operators: &[(&str, u128)]) -> Sim {
        let mut core = CoordinatorCore::new(policy).expect("valid policy");
        core.register_circuit(CIRCUIT.into(), KeyId([7; 32]), circuit_shape())
            .unwrap();
        let mut sim = Sim {
            core,
            now: START,
            effects: Vec::new(),
            reporting: BTreeMap::new(),
            next_telemetry_at: START,
            next_request: 1,
        };
        for (op, stake) in operators {
            let operator = op.parse().unwrap();
            sim.core
                .handle_stake_event(sim.now, StakeEvent::OperatorRegistered { operator })
                .unwrap();
            if *stake > 0 {
                let operator = op.parse().unwrap();
                sim.core
                    .handle_stake_event(
                        sim.now,
                        StakeEvent::Delegated {
                            operator,
                            amount: StakeUnits(*stake),
                        },
                    )
                    .unwrap();
            }
        }
        sim.collect();
        sim
    }

    pub fn collect(&mut self) {
        while let Some(e) = self.core.poll_effect() {
            self.effects.push(e);
        }
    }

    /// Connects a healthy CUDA agent (8 GiB free, `msm` points/s) that reports every second.
    pub fn gpu_agent(&mut self, op: &str, name: &str, msm: u64) -> AgentId {
        self.agent_with(op, name, cuda_telemetry(1, 8 * GIB, msm, 1_000_000_000), 4)
    }

    pub fn agent_with(&mut self, op: &str, name: &str, report: Telemetry, slots: u32) -> AgentId {
        let id = agent_id(op, name);
        self.core
            .handle_agent_connected(self.now, id.clone(), slots)
            .unwrap();
        self.core
            .handle_telemetry(self.now, &id, report.clone())
            .unwrap();
        self.reporting.insert(id.clone(), report);
        self.collect();
        id
    }

    /// Sends `report` (its seq is set to follow the last one) and keeps sending it.
    pub fn report(&mut self, agent: &AgentId, mut report: Telemetry) {
        let last = self.reporting.get(agent).map_or(0, |r| r.seq);
        report.seq = last + 1;
        self.core
            .handle_telemetry(self.now, agent, report.clone())
            .unwrap();
        self.reporting.insert(agent.clone(), report);
        self.collect();
    }

    /// The agent stops reporting (its telemetry will go stale) but stays connected.
    pub fn silence(&mut self, agent: &AgentId) {
        self.reporting.remove(agent);
    }

    pub fn disconnect(&mut self, agent: &AgentId) {
        self.reporting.remove(agent);
        self.core.handle_agent_disconnected(self.now, agent);
        self.collect();
    }

    /// Advances the clock by `ms`, delivering telemetry and timeouts in time order, as the
    /// shell's event loop would.
    pub fn advance(&mut self, ms: u64) {
        let end = UnixMillis(self.now.0 + ms);
        for step in 0.. {
            assert!(
                step < 1_000_000,
                "poll_timeout keeps returning a due time that handle_timeout does not clear"
            );
            let timer = self.core.poll_timeout().filter(|t| *t <= end);
            let telemetry =
                Some(self.next_telemetry_at).filter(|t| *t <= end && !self.reporting.is_empty());
            match (timer, telemetry) {
                (Some(t), Some(r)) if t <= r => self.fire_timer(t),
                (Some(t), None) => self.fire_timer(t),
                (_, Some(r)) => {
                    self.now = self.now.max(r);
                    for (agent, report) in self.reporting.iter_mut() {
                        report.seq += 1;
                        self.core
                            .handle_telemetry(self.now, agent, report.clone())
                            .unwrap();
                    }
                    self.next_telemetry_at = UnixMillis(r.0 + TELEMETRY_PERIOD_MS);
                    self.collect();
                }
                (None, None) => break,
            }
        }
        self.now = end;
        if self.next_telemetry_at < end {
            self.next_telemetry_at = end;
        }
    }

    fn fire_timer(&mut self, t: UnixMillis) {
        self.now = self.now.max(t);
        self.core.handle_timeout(self.now);
        self.collect();
    }

    pub fn submit(
        &mut self,
        collateral: u128,
        deadline_in_ms: u64,
    ) -> Result<TaskId, SubmitRejected> {
        self.submit_as("client-1", collateral, deadline_in_ms)
    }

    /// [`Sim::submit`] by another client.
    pub fn submit_as(
        &mut self,
        client: &str,
        collateral: u128,
        deadline_in_ms: u64,
    ) -> Result<TaskId, SubmitRejected> {
        let spec = TaskSpec {
            circuit: CIRCUIT.into(),
            inputs: Arc::from(&b"x=3"[..]),
            collateral: StakeUnits(collateral),
            deadline: UnixMillis(self.now.0 + deadline_in_ms),
            client: client.into(),
            request_id: self.next_request,
        };
        self.next_request += 1;
        let r = self.core.handle_submit(self.now, spec);
        self.collect();
        r
    }

    /// Takes the offers sent since the last call.
    pub fn take_offers(&mut self) -> Vec<Offer> {
        let mut offers = Vec::new();
        self.effects.retain(|e| match e {
            Effect::SendOffer(o) => {
                offers.push(o.clone());
                false
            }
            _ => true,
        });
        offers
    }

    /// Takes the cancellations sent since the last call, as (agent, task).
    pub fn take_cancels(&mut self) -> Vec<(AgentId, TaskId)> {
        let mut cancels = Vec::new();
        self.effects.retain(|e| match e {
            Effect::CancelTask { agent, task, .. } => {
                cancels.push((agent.clone(), *task));
                false
            }
            _ => true,
        });
        cancels
    }

    pub fn accept(&mut self, agent: &AgentId, task: TaskId) {
        self.core
            .handle_offer_reply(self.now, agent, task, OfferReply::Accept)
            .unwrap();
        self.collect();
    }

    pub fn decline(&mut self, agent: &AgentId, task: TaskId) {
        self.core
            .handle_offer_reply(
                self.now,
                agent,
                task,
                OfferReply::Decline {
                    reason: "busy".into(),
                },
            )
            .unwrap();
        self.collect();
    }

    /// Delivers and judges a proof.
    pub fn prove(&mut self, agent: &AgentId, task: TaskId, valid: bool) {
        self.core
            .handle_proof_delivered(self.now, agent, task)
            .unwrap();
        self.core
            .handle_proof_verified(self.now, agent, task, valid, 40)
            .unwrap();
        self.collect();
    }

    pub fn status(&self, task: TaskId) -> TaskStatus {
        self.core.task(task).expect("task kept").status
    }

    pub fn row(&self, op: &str) -> OperatorRow {
        self.core
            .ledger_rows()
            .into_iter()
            .find(|r| r.operator.as_str() == op)
            .expect("operator in the ledger")
    }
}
