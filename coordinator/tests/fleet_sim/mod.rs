//! A deterministic simulation of the coordinator's core with a large fleet, in virtual time.
//!
//! 1,000 agents of 40 operators; random task arrivals; agents that accept, decline, prove
//! fast or too slowly, deliver invalid proofs, disconnect and come back (within the grace
//! period or after it), crash and forget their tasks; operators that withdraw and drain; and
//! the coordinator itself restarted from what a store fed only its incremental change sets
//! would hold. After every step: the core's own invariants (asserted inside it), no task
//! lost, none verified twice, and every bound task settled by its deadline plus a bound.
//!
//! The seed is printed; `PROOFRACK_SIM_SEED=<n>` replays one run.
//!
//! Unlike `sim_clock` (a harness scripted scenarios drive step by step), this module is a test
//! of its own: random events on its own queue, its own agents. It shares only the circuit.

use super::sim_clock::{circuit_shape, CIRCUIT};
use super::StoreModel;
use proofrack_common::{KeyId, StakeUnits, TaskId, UnixMillis};
use proofrack_coordinator::ledger::source::StakeEvent;
use proofrack_coordinator::testkit::{agent_id, cuda_telemetry};
use proofrack_coordinator::{
    AgentId, CoordinatorCore, Effect, OfferReply, Policy, TaskSpec, TaskStatus,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;

const AGENTS: usize = 1_000;
const OPERATORS: usize = 40;
/// Virtual time simulated per seed: long enough for many deadlines, due times, grace periods
/// and several coordinator restarts; short enough for CI (a few seconds per seed).
const DURATION_MS: u64 = 30_000;
/// The coordinator restarts at least every this many steps (and at random in between).
const RESTART_EVERY_STEPS: u64 = 150;
/// One random arrival or disturbance per this much virtual time (~25 submissions/s).
const DISTURBANCE_PERIOD_MS: u64 = 15;
const TELEMETRY_PERIOD_MS: u64 = 5_000;
const GIB: u64 = 1 << 30;
/// How long after its deadline a bound task may still be unsettled: the timers fire at the
/// due time (never after the deadline), so only the step granularity separates them.
const SETTLE_BOUND_MS: u64 = 1;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Telemetry,
    Deliver { agent: usize, task: TaskId },
    Reconnect { agent: usize },
}

struct SimAgent {
    id: AgentId,
    connected: bool,
    seq: u64,
    /// Proves this much slower than its calibration claims (1 = honest timing).
    slowdown: u64,
    /// Delivers invalid proofs with this probability (percent).
    invalid_pct: u32,
    /// Tasks it is working on (lost when it crashes).
    working: BTreeSet<TaskId>,
}

struct World {
    policy: Policy,
    core: CoordinatorCore,
    store: StoreModel,
    now: UnixMillis,
    rng: StdRng,
    agents: Vec<SimAgent>,
    index: BTreeMap<AgentId, usize>,
    queue: BinaryHeap<Reverse<(UnixMillis, u64, Action)>>,
    seq: u64,
    /// Every task submitted, with its deadline.
    submitted: BTreeMap<TaskId, UnixMillis>,
    /// Submitted and not yet seen verified or failed.
    open: BTreeMap<TaskId, UnixMillis>,
    /// Tasks seen verified (a second verification would be a task done twice).
    verified: BTreeSet<TaskId>,
    requests: u64,
    restarts: u32,
    rows_written: u64,
    bytes_written: u64,
    next_disturbance: UnixMillis,
}

pub fn policy() -> Policy {
    Policy {
        agent_grace_ms: 4_000,
        telemetry_max_age_ms: 12_000,
        max_tasks_per_agent: 4,
        queue_capacity: 4_096,
        // One client submits everything: its share is the whole queue.
        max_unfinished_per_client: 4_096,
        decline_backoff_ms: 5_000,
        max_deadline_ms: 120_000,
        withdrawal_delay_ms: 150_000,
        ..Policy::default()
    }
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = StdRng::seed_from_u64(seed);
        let start = UnixMillis(1_700_000_000_000);
        let mut core = CoordinatorCore::new(policy()).unwrap();
        core.register_circuit(CIRCUIT.into(), KeyId([7; 32]), circuit_shape())
            .unwrap();
        for op in 0..OPERATORS {
            let operator = format!("op-{op}").parse().unwrap();
            core.handle_stake_event(start, StakeEvent::OperatorRegistered { operator })
                .unwrap();
            let operator = format!("op-{op}").parse().unwrap();
            let amount = StakeUnits(rng.gen_range(50..500));
            core.handle_stake_event(start, StakeEvent::Delegated { operator, amount })
                .unwrap();
        }
        let mut store = StoreModel::default();
        store.absorb(core.full_changes());
        let mut w = World {
            policy: policy(),
            core,
            store,
            now: start,
            rng,
            agents: Vec::new(),
            index: BTreeMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            submitted: BTreeMap::new(),
            open: BTreeMap::new(),
            verified: BTreeSet::new(),
            requests: 0,
            restarts: 0,
            rows_written: 0,
            bytes_written: 0,
            next_disturbance: start,
        };
        for i in 0..AGENTS {
            let id = agent_id(&format!("op-{}", i % OPERATORS), &format!("gpu-{i}"));
            let slowdown = if w.rng.gen_ratio(1, 20) { 40 } else { 1 };
            let invalid_pct = if w.rng.gen_ratio(1, 20) { 50 } else { 0 };
            w.index.insert(id.clone(), i);
            w.agents.push(SimAgent {
                id,
                connected: false,
                seq: 0,
                slowdown,
                invalid_pct,
                working: BTreeSet::new(),
            });
            w.connect(i);
        }
        w.schedule(start, Action::Telemetry);
        w.drain_effects();
        w
    }

    fn schedule(&mut self, at: UnixMillis, action: Action) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, action)));
    }

    fn report(&mut self, i: usize) {
        let a = &mut self.agents[i];
        a.seq += 1;
        let t = cuda_telemetry(a.seq, 16 * GIB, 300_000, 50_000_000);
        let id = a.id.clone();
        self.core.handle_telemetry(self.now, &id, t).unwrap();
    }

    fn connect(&mut self, i: usize) {
        let id = self.agents[i].id.clone();
        self.core.handle_agent_connected(self.now, id, 2).unwrap();
        self.agents[i].connected = true;
        self.agents[i].seq = 0;
        self.report(i);
    }

    /// Applies the effects: agents answer offers and start proving; resumes restart lost
    /// work; cancellations stop it. Then the store takes the changes, as the shell commits.
    fn drain_effects(&mut self) {
        while let Some(effect) = self.core.poll_effect() {
            match effect {
                Effect::SendOffer(offer) => {
                    let i = self.index[&offer.agent];
                    if !self.agents[i].connected {
                        continue; // lost on the wire; it will expire
                    }
                    let accept = self.rng.gen_ratio(9, 10);
                    let reply = if accept {
                        OfferReply::Accept
                    } else {
                        OfferReply::Decline {
                            reason: "busy".into(),
                        }
                    };
                    if self
                        .core
                        .handle_offer_reply(self.now, &offer.agent, offer.task, reply)
                        .is_ok()
                        && accept
                    {
                        self.start_proving(i, offer.task, offer.predicted_proving_ms);
                    }
                }
                Effect::ResumeTask(offer) => {
                    let i = self.index[&offer.agent];
                    if !self.agents[i].working.contains(&offer.task) {
                        self.start_proving(i, offer.task, offer.predicted_proving_ms);
                    }
                }
                Effect::CancelTask { agent, task, .. } => {
                    let i = self.index[&agent];
                    self.agents[i].working.remove(&task);
                }
                // For the chain's slasher; the ledger already took the slash.
                Effect::StakeSlashed { .. } => {}
                Effect::TaskUpdate { task, status, .. } => {
                    if matches!(status, TaskStatus::Verified { .. }) {
                        assert!(self.verified.insert(task), "{task} verified twice");
                    }
                    if matches!(
                        status,
                        TaskStatus::Verified { .. } | TaskStatus::Failed { .. }
                    ) {
                        self.open.remove(&task);
                    }
                }
            }
        }
        let changes = self.core.take_changes();
        self.rows_written += changes.tasks.len() as u64;
        self.bytes_written += changes
            .tasks
            .iter()
            .map(|(_, r)| r.as_ref().map_or(0, |r| r.0.len() as u64))
            .sum::<u64>();
        self.store.absorb(changes);
    }

    fn start_proving(&mut self, i: usize, task: TaskId, predicted_ms: u64) {
        self.agents[i].working.insert(task);
        let ms = predicted_ms.max(1) * self.agents[i].slowdown + self.rng.gen_range(0..200);
        self.schedule(
            UnixMillis(self.now.0 + ms),
            Action::Deliver { agent: i, task },
        );
    }

    fn step(&mut self) {
        // Random arrivals and disturbances, paced by virtual time (not by steps, which get
        // shorter as timers crowd: arrivals per step would feed on themselves).
        if self.now < self.next_disturbance {
            self.advance();
            return;
        }
        self.next_disturbance = UnixMillis(self.now.0 + DISTURBANCE_PERIOD_MS);
        match self.rng.gen_range(0..100) {
            0..=39 => self.submit(),
            40..=41 => self.crash_agent(),
            42..=44 => self.cut_agent(),
            45 => self.withdraw(),
            46 => self.drain_toggle(),
            47 => self.restart_coordinator(),
            _ => {}
        }
        self.drain_effects();
        self.advance();
    }

    /// Advances virtual time to the next scheduled action or timer and runs what is due.
    fn advance(&mut self) {
        let next_action = self.queue.peek().map(|Reverse((t, _, _))| *t);
        let next_timer = self.core.poll_timeout();
        let step_end = UnixMillis(self.now.0 + self.rng.gen_range(20..400));
        let next = [next_action, next_timer, Some(step_end)]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        self.now = self.now.max(next);
        if next_timer.is_some_and(|t| t <= self.now) {
            self.core.handle_timeout(self.now);
            self.drain_effects();
        }
        while let Some(Reverse((t, _, _))) = self.queue.peek() {
            if *t > self.now {
                break;
            }
            let Reverse((_, _, action)) = self.queue.pop().unwrap();
            self.run(action);
            self.drain_effects();
        }
        self.check();
    }

    fn run(&mut self, action: Action) {
        match action {
            Action::Telemetry => {
                for i in 0..self.agents.len() {
                    if self.agents[i].connected {
                        self.report(i);
                    }
                }
                self.schedule(
                    UnixMillis(self.now.0 + TELEMETRY_PERIOD_MS),
                    Action::Telemetry,
                );
            }
            Action::Deliver { agent: i, task } => {
                if !self.agents[i].working.remove(&task) || !self.agents[i].connected {
                    return; // crashed, cancelled, or cut off (it retries on reconnect)
                }
                let id = self.agents[i].id.clone();
                if self
                    .core
                    .handle_proof_delivered(self.now, &id, task)
                    .is_ok()
                {
                    let valid = !self.rng.gen_ratio(self.agents[i].invalid_pct.max(1), 100)
                        || self.agents[i].invalid_pct == 0;
                    self.core
                        .handle_proof_verified(self.now, &id, task, valid, 10)
                        .expect("a delivered proof is judged");
                }
            }
            Action::Reconnect { agent: i } => {
                if !self.agents[i].connected {
                    self.connect(i);
                }
            }
        }
    }

    fn submit(&mut self) {
        self.requests += 1;
        let deadline = UnixMillis(self.now.0 + self.rng.gen_range(20_000..120_000));
        let spec = TaskSpec {
            circuit: CIRCUIT.into(),
            inputs: Arc::from(&b"x"[..]),
            collateral: StakeUnits(self.rng.gen_range(1..60)),
            deadline,
            client: "sim".into(),
            request_id: self.requests,
        };
        if let Ok(id) = self.core.handle_submit(self.now, spec.clone()) {
            self.submitted.insert(id, deadline);
            self.open.insert(id, deadline);
            // A retry of the same request (lost reply) returns the same task.
            if self.rng.gen_ratio(1, 10) {
                assert_eq!(self.core.handle_submit(self.now, spec), Ok(id));
            }
        }
    }

    /// The agent process dies: it forgets its work and reconnects after a while.
    fn crash_agent(&mut self) {
        let i = self.rng.gen_range(0..self.agents.len());
        if !self.agents[i].connected {
            return;
        }
        self.agents[i].working.clear();
        self.disconnect(i);
    }

    /// The network drops: the agent keeps working and delivers when it is back.
    fn cut_agent(&mut self) {
        let i = self.rng.gen_range(0..self.agents.len());
        if self.agents[i].connected {
            self.disconnect(i);
        }
    }

    fn disconnect(&mut self, i: usize) {
        let id = self.agents[i].id.clone();
        self.core.handle_agent_disconnected(self.now, &id);
        self.agents[i].connected = false;
        // Back within the grace period or well after it.
        let back_in = if self.rng.gen_bool(0.5) {
            1_000
        } else {
            15_000
        };
        self.schedule(
            UnixMillis(self.now.0 + back_in),
            Action::Reconnect { agent: i },
        );
    }

    fn withdraw(&mut self) {
        let op = format!("op-{}", self.rng.gen_range(0..OPERATORS))
            .parse()
            .unwrap();
        self.requests += 1;
        let amount = StakeUnits(self.rng.gen_range(1..40));
        let reply =
            self.core
                .handle_withdrawal_request(self.now, "ops", self.requests, &op, amount);
        let again =
            self.core
                .handle_withdrawal_request(self.now, "ops", self.requests, &op, amount);
        assert_eq!(reply, again, "a retried withdrawal gets the same answer");
    }

    fn drain_toggle(&mut self) {
        let i = self.rng.gen_range(0..self.agents.len());
        self.requests += 1;
        let drain = self.rng.gen_bool(0.5);
        let id = self.agents[i].id.clone();
        self.core
            .handle_drain(self.now, "ops", self.requests, &id, drain);
    }

    /// The coordinator crashes and restarts from the store's rows; every agent's connection
    /// dropped with it, so each reconnects (most within the grace period).
    fn restart_coordinator(&mut self) {
        self.drain_effects();
        let before = self.core.ledger_rows();
        let unfinished: BTreeSet<TaskId> = self.open.keys().copied().collect();
        self.core = CoordinatorCore::restore(self.policy.clone(), self.store.state(), self.now)
            .expect("the store restores");
        self.core
            .register_circuit(CIRCUIT.into(), KeyId([7; 32]), circuit_shape())
            .unwrap();
        self.restarts += 1;
        let after = self.core.ledger_rows();
        let key = |r: &proofrack_coordinator::tasks::OperatorRow| {
            (
                r.operator.clone(),
                r.delegated,
                r.active,
                r.withdrawing,
                r.slashed,
                r.withdrawn,
            )
        };
        assert_eq!(
            before.iter().map(key).collect::<Vec<_>>(),
            after.iter().map(key).collect::<Vec<_>>(),
            "the ledger survives a restart"
        );
        for t in unfinished {
            assert!(self.core.task(t).is_some(), "{t} lost in a restart");
        }
        for i in 0..self.agents.len() {
            if self.agents[i].connected {
                self.agents[i].connected = false;
                let back_in = self.rng.gen_range(100..3_000);
                self.schedule(
                    UnixMillis(self.now.0 + back_in),
                    Action::Reconnect { agent: i },
                );
            }
        }
    }

    /// Every task past its deadline (plus the bound) must have finished: verified, or failed
    /// with its stake released or slashed. Nothing is lost: an open task is still in the core.
    fn check(&mut self) {
        let overdue: Vec<TaskId> = self
            .open
            .iter()
            .filter(|(_, d)| self.now.0 > d.0 + SETTLE_BOUND_MS)
            .map(|(t, _)| *t)
            .collect();
        for task in overdue {
            let view = self
                .core
                .task(task)
                .unwrap_or_else(|| panic!("{task} lost: unfinished yet gone"));
            match view.status {
                TaskStatus::Verified { .. } | TaskStatus::Failed { .. } => {
                    self.open.remove(&task);
                }
                other => panic!(
                    "{task} unsettled {} ms after its deadline: {other:?}",
                    self.now.0 - self.open[&task].0
                ),
            }
        }
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("PROOFRACK_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("PROOFRACK_SIM_SEED is a u64")],
        Err(_) => vec![1, 2, 3],
    }
}

#[test]
fn a_thousand_agents_with_crashes_partitions_and_restarts_keep_every_invariant() {
    for seed in seeds() {
        eprintln!("simulation seed {seed} (replay: PROOFRACK_SIM_SEED={seed})");
        let mut w = World::new(seed);
        let duration_ms = std::env::var("PROOFRACK_SIM_MS")
            .map(|s| s.parse().expect("PROOFRACK_SIM_MS is milliseconds"))
            .unwrap_or(DURATION_MS);
        let end = UnixMillis(w.now.0 + duration_ms);
        let started = std::time::Instant::now();
        let mut steps = 0u64;
        while w.now < end {
            w.step();
            steps += 1;
            if steps.is_multiple_of(RESTART_EVERY_STEPS) {
                w.restart_coordinator();
            }
            if std::env::var("PROOFRACK_SIM_TRACE").is_ok() && steps.is_multiple_of(25) {
                eprintln!(
                    "step {steps} t={} open={} rows={} bytes={} elapsed={:.1}s",
                    w.now.0 % 1_000_000,
                    w.open.len(),
                    w.rows_written,
                    w.bytes_written,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        let verified = w.verified.len();
        eprintln!(
            "seed {seed}: {steps} steps, {} tasks, {verified} verified, {} coordinator restarts, {:.1} s",
            w.submitted.len(),
            w.restarts,
            started.elapsed().as_secs_f64()
        );
        eprintln!(
            "task rows written: {}, {} bytes",
            w.rows_written, w.bytes_written
        );
        assert!(
            w.restarts >= 3,
            "the run restarted the coordinator only {} times",
            w.restarts
        );
        assert!(verified > 0, "tasks get proven");
        let slashed: u128 = w.core.ledger_rows().iter().map(|r| r.slashed.0).sum();
        assert!(slashed > 0, "slow and dishonest agents were slashed");
    }
}
