//! Admission: a pure function from (task, fleet snapshot, free stake, now, policy) to a
//! decision — which agent to offer the task to, or why none fits.
//!
//! An agent fits when it is connected, its telemetry is fresh and healthy, its operator has
//! free stake (less stake promised to outstanding offers) of at least the collateral, it holds
//! fewer than the per-agent task limit, its reported compute memory less what its tasks
//! reserve covers the task's estimated need, and its predicted finish (queue wait + calibrated
//! proving time) plus the safety margin is before the deadline. Among fits the earliest
//! predicted finish wins, ties broken by agent id; agents that failed this task before are
//! chosen only when nothing else fits.
//!
//! Architecture invariant: no I/O, no clock, no randomness; the same inputs give the same
//! decision, including the order of per-agent verdicts (agent id order).

pub(crate) mod format;
mod health;
pub use health::problems as health_problems;
mod misfit;
mod ranked;
mod snapshot;
mod summary;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use misfit::Misfit;
pub use ranked::{Choice, RankedFleet};
pub use snapshot::{AgentId, AgentSnapshot, AgentTelemetry, Assignment};
pub use summary::{FleetReason, NoFit};

use crate::policy::Policy;
use proofrack_common::telemetry::ProofShape;
use proofrack_common::{OperatorId, StakeUnits, TaskId, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What a task asks of an agent.
#[derive(Clone, Copy, Debug)]
pub struct TaskDemand<'a> {
    pub task: TaskId,
    pub shape: ProofShape,
    pub collateral: StakeUnits,
    pub deadline: UnixMillis,
    /// Agents that declined this task or let its offer expire, and until when they are skipped.
    pub declined_until: &'a BTreeMap<AgentId, UnixMillis>,
    /// Agents that failed this task before (invalid proof, missed due time): chosen only
    /// when no other agent fits.
    pub failed_on: &'a BTreeSet<AgentId>,
}

/// Where and when a task would run on one agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub agent: AgentId,
    /// Memory reserved on the agent for this task.
    pub memory_bytes: u64,
    /// Proving time predicted from the agent's calibration.
    pub predicted_proving_ms: u64,
    /// When a slot frees on the agent (now, if one is free).
    pub start_at: UnixMillis,
    pub predicted_done_at: UnixMillis,
    /// The agent's commitment: predicted finish plus the safety margin, never after the
    /// deadline. Missing it is slashed; the gap to the deadline leaves time to reassign.
    pub due_at: UnixMillis,
}

/// One agent's result for one task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentVerdict {
    pub agent: AgentId,
    pub fit: Result<Placement, Vec<Misfit>>,
}

/// The outcome of admitting one task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Offer(Placement),
    NoFit(NoFit),
}

/// The decision with every agent's verdict, for the task's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionDecision {
    pub task: TaskId,
    pub decided_at: UnixMillis,
    pub outcome: Outcome,
    /// One per agent in the snapshot, in agent id order.
    pub verdicts: Vec<AgentVerdict>,
}

/// Decides where `demand` goes. `free_stake` maps each operator the ledger knows to the stake
/// it may still promise (ledger free stake less collateral of its outstanding offers).
/// Scales a calibrated prediction by a learned factor (permille; saturating, at least 1 ms).
/// Admission applies it to each agent's prediction; the task life cycle learns the factors
/// (`tasks::learned`) and passes them in.
pub fn apply_speed_factor(predicted_ms: u64, factor_permille: u32) -> u64 {
    ((predicted_ms as u128 * factor_permille as u128) / 1_000).clamp(1, u64::MAX as u128) as u64
}

pub fn admit(
    demand: &TaskDemand<'_>,
    fleet: &[AgentSnapshot<'_>],
    free_stake: &BTreeMap<OperatorId, StakeUnits>,
    now: UnixMillis,
    policy: &Policy,
) -> AdmissionDecision {
    let mut verdicts: Vec<AgentVerdict> = fleet
        .iter()
        .map(|agent| evaluate(demand, agent, free_stake, now, policy))
        .collect();
    verdicts.sort_by(|a, b| a.agent.cmp(&b.agent));

    let best = |preferred: bool| {
        verdicts
            .iter()
            .filter_map(|v| v.fit.as_ref().ok())
            .filter(|p| demand.failed_on.contains(&p.agent) != preferred)
            .min_by(|a, b| (a.predicted_done_at, &a.agent).cmp(&(b.predicted_done_at, &b.agent)))
            .cloned()
    };
    let outcome = match best(true).or_else(|| best(false)) {
        Some(placement) => Outcome::Offer(placement),
        None => Outcome::NoFit(NoFit::summarise(
            demand, &verdicts, fleet, free_stake, now, policy,
        )),
    };
    AdmissionDecision {
        task: demand.task,
        decided_at: now,
        outcome,
        verdicts,
    }
}

/// Every reason `agent` does not fit, or its placement.
fn evaluate(
    demand: &TaskDemand<'_>,
    agent: &AgentSnapshot<'_>,
    free_stake: &BTreeMap<OperatorId, StakeUnits>,
    now: UnixMillis,
    policy: &Policy,
) -> AgentVerdict {
    let verdict = |fit| AgentVerdict {
        agent: agent.id.clone(),
        fit,
    };
    if !agent.connected {
        return verdict(Err(vec![Misfit::Disconnected]));
    }
    if agent.draining {
        return verdict(Err(vec![Misfit::Draining]));
    }
    if let Some(until) = agent.breaker_open(now) {
        return verdict(Err(vec![Misfit::BreakerOpen { until }]));
    }
    let mut misfits = Vec::new();

    match agent.telemetry {
        None => misfits.push(Misfit::NoTelemetry),
        Some(t) => {
            let age_ms = t.age_ms(now);
            if age_ms > policy.telemetry_max_age_ms {
                misfits.push(Misfit::StaleTelemetry {
                    age_ms,
                    limit_ms: policy.telemetry_max_age_ms,
                });
            }
            misfits.extend(health::problems(t, policy));
        }
    }

    let operator = &agent.id.operator;
    match free_stake.get(operator) {
        None => misfits.push(Misfit::UnknownOperator {
            operator: operator.clone(),
        }),
        Some(free) if *free < demand.collateral => misfits.push(Misfit::InsufficientStake {
            operator: operator.clone(),
            free: *free,
            needed: demand.collateral,
        }),
        Some(_) => {}
    }

    if agent.assignments.len() >= policy.max_tasks_per_agent as usize {
        misfits.push(Misfit::AgentFull {
            tasks: agent.assignments.len(),
            limit: policy.max_tasks_per_agent,
        });
    }

    let needed_bytes = demand.shape.estimate_memory_bytes();
    let mut placement = None;
    if let Some(t) = agent.telemetry {
        let reported_free_bytes = t.compute_memory_free_bytes();
        let reserved_bytes = agent.reserved_memory_bytes();
        let free_bytes = reported_free_bytes.saturating_sub(reserved_bytes);
        if needed_bytes > free_bytes {
            misfits.push(Misfit::InsufficientMemory {
                needed_bytes,
                free_bytes,
                reported_free_bytes,
                reserved_bytes,
            });
        }

        let timing = Timing::of(demand, agent, t, now, policy);
        if timing.due_at > demand.deadline {
            misfits.push(Misfit::TooSlow {
                finish_in_ms: timing.predicted_done_at.0.saturating_sub(now.0),
                margin_ms: timing.margin_ms,
                deadline_in_ms: demand.deadline.0.saturating_sub(now.0),
            });
        }
        placement = Some(Placement {
            agent: agent.id.clone(),
            memory_bytes: needed_bytes,
            predicted_proving_ms: timing.predicted_proving_ms,
            start_at: timing.start_at,
            predicted_done_at: timing.predicted_done_at,
            due_at: timing.due_at,
        });
    }

    if let Some(until) = demand.declined_until.get(agent.id) {
        if *until > now {
            misfits.push(Misfit::RecentlyDeclined { until: *until });
        }
    }

    match placement {
        Some(p) if misfits.is_empty() => verdict(Ok(p)),
        _ => verdict(Err(misfits)),
    }
}

/// When a task would run on an agent and what it would commit to.
#[derive(Clone, Copy, Debug)]
struct Timing {
    predicted_proving_ms: u64,
    start_at: UnixMillis,
    predicted_done_at: UnixMillis,
    margin_ms: u64,
    due_at: UnixMillis,
}

impl Timing {
    fn of(
        demand: &TaskDemand<'_>,
        agent: &AgentSnapshot<'_>,
        t: &AgentTelemetry,
        now: UnixMillis,
        policy: &Policy,
    ) -> Timing {
        // Calibrated, then corrected by what the agent's real proofs took.
        let predicted_proving_ms = crate::admission::apply_speed_factor(
            demand.shape.estimate_proving_ms(&t.report.calibration),
            agent.speed_factor_permille,
        );
        let start_at = agent.earliest_start(now);
        let predicted_done_at = UnixMillis(start_at.0.saturating_add(predicted_proving_ms));
        let margin_ms = policy.deadline_margin_for(predicted_proving_ms);
        Timing {
            predicted_proving_ms,
            start_at,
            predicted_done_at,
            margin_ms,
            due_at: UnixMillis(predicted_done_at.0.saturating_add(margin_ms)),
        }
    }
}

#[cfg(test)]
mod ranked_proptest;
#[cfg(test)]
mod tests;
