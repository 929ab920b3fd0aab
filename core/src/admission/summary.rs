//! Why a task fits no agent, aggregated over the fleet into a few readable reasons, e.g.
//! `no operator with 40 free stake; best has 25 (op-a)` or
//! `needs 3.2 GiB; largest free memory is 1.1 GiB (agent op-a/gpu-1)`.

use super::format;
use super::misfit::Misfit;
use super::snapshot::AgentSnapshot;
use super::{AgentId, AgentVerdict, TaskDemand};
use crate::policy::Policy;
use proofrack_common::{OperatorId, StakeUnits, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One kind of reason, with how many connected agents it excluded and the best value among
/// them (so the client sees how far off the task is).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FleetReason {
    NoAgentsConnected,
    Telemetry {
        agents: usize,
        newest_age_ms: Option<u64>,
        limit_ms: u64,
    },
    Unhealthy {
        agents: usize,
        example_agent: AgentId,
        example: Misfit,
    },
    Stake {
        agents: usize,
        needed: StakeUnits,
        best: Option<(OperatorId, StakeUnits)>,
    },
    Full {
        agents: usize,
        limit: u32,
    },
    Memory {
        agents: usize,
        needed_bytes: u64,
        largest_free_bytes: u64,
        largest_on: AgentId,
    },
    Speed {
        agents: usize,
        finish_in_ms: u64,
        margin_ms: u64,
        deadline_in_ms: u64,
        fastest: AgentId,
    },
    Declined {
        agents: usize,
    },
    /// Drained by their operators (`proofrack drain`).
    Draining {
        agents: usize,
    },
    /// Their circuit breakers are open (repeated failures or proofs far off calibration).
    BreakerOpen {
        agents: usize,
    },
}

impl FleetReason {
    /// How many connected agents this reason excluded.
    pub fn agents(&self) -> usize {
        match self {
            FleetReason::NoAgentsConnected => 0,
            FleetReason::Telemetry { agents, .. }
            | FleetReason::Unhealthy { agents, .. }
            | FleetReason::Stake { agents, .. }
            | FleetReason::Full { agents, .. }
            | FleetReason::Memory { agents, .. }
            | FleetReason::Speed { agents, .. }
            | FleetReason::Declined { agents }
            | FleetReason::Draining { agents }
            | FleetReason::BreakerOpen { agents } => *agents,
        }
    }

    /// The message; `every` says whether it excluded every connected agent.
    fn describe(&self, every: bool) -> String {
        match self {
            FleetReason::NoAgentsConnected => "no agents connected".to_string(),
            FleetReason::Telemetry {
                newest_age_ms: None,
                ..
            } if every => "no agent has sent telemetry yet".to_string(),
            FleetReason::Telemetry {
                newest_age_ms: Some(age),
                limit_ms,
                ..
            } if every => format!(
                "no agent has fresh telemetry (newest is {} old, limit {})",
                format::millis(*age),
                format::millis(*limit_ms)
            ),
            FleetReason::Telemetry { limit_ms, .. } => {
                format!(
                    "telemetry stale or missing (limit {})",
                    format::millis(*limit_ms)
                )
            }
            FleetReason::Unhealthy {
                example_agent,
                example,
                ..
            } => {
                format!("unhealthy, e.g. {example_agent}: {example}")
            }
            FleetReason::Stake {
                needed, best: None, ..
            } => {
                format!("no operator with {needed} free stake; their operators have no stake in the ledger")
            }
            FleetReason::Stake {
                needed,
                best: Some((op, free)),
                ..
            } if every => {
                format!("no operator with {needed} free stake; best has {free} ({op})")
            }
            FleetReason::Stake {
                needed,
                best: Some((op, free)),
                ..
            } => {
                format!("operator has under {needed} free stake (best {free}, {op})")
            }
            FleetReason::Full { limit, .. } => format!("at the limit of {limit} tasks per agent"),
            FleetReason::Memory {
                needed_bytes,
                largest_free_bytes,
                largest_on,
                ..
            } => format!(
                "needs {}; largest free memory is {} (agent {largest_on})",
                format::bytes(*needed_bytes),
                format::bytes(*largest_free_bytes)
            ),
            FleetReason::Speed {
                finish_in_ms,
                margin_ms,
                deadline_in_ms,
                fastest,
                ..
            } => format!(
                "would finish in {}, deadline in {} (fastest: {fastest}; safety margin {})",
                format::millis(*finish_in_ms),
                format::millis(*deadline_in_ms),
                format::millis(*margin_ms)
            ),
            FleetReason::Declined { .. } => "declined this task recently".to_string(),
            FleetReason::Draining { .. } => "drained by their operator".to_string(),
            FleetReason::BreakerOpen { .. } => {
                "circuit breaker open after repeated failures or proofs far off their calibration"
                    .to_string()
            }
        }
    }
}

/// Why no agent fits, for the client and the task's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoFit {
    pub connected_agents: usize,
    /// In the order agents are checked: telemetry, health, stake, task limit, memory, speed,
    /// declines. Never empty.
    pub reasons: Vec<FleetReason>,
}

impl fmt::Display for NoFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, reason) in self.reasons.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let every = reason.agents() >= self.connected_agents;
            if every {
                f.write_str(&reason.describe(true))?;
            } else {
                write!(
                    f,
                    "{} of {} agents: {}",
                    reason.agents(),
                    self.connected_agents,
                    reason.describe(false)
                )?;
            }
        }
        Ok(())
    }
}

impl NoFit {
    /// Whether `other` gives the same kinds of reasons, even if the figures in them (ages,
    /// times left, how many agents each excludes) moved. Used to record a waiting task's
    /// reason only when it changes in substance: in a large fleet the counts move with every
    /// report, and recording (and storing) each move would rewrite every waiting task.
    pub fn same_kind(&self, other: &NoFit) -> bool {
        let key = |n: &NoFit| -> Vec<std::mem::Discriminant<FleetReason>> {
            n.reasons.iter().map(std::mem::discriminant).collect()
        };
        key(self) == key(other)
    }

    pub(super) fn summarise(
        demand: &TaskDemand<'_>,
        verdicts: &[AgentVerdict],
        fleet: &[AgentSnapshot<'_>],
        free_stake: &BTreeMap<OperatorId, StakeUnits>,
        now: UnixMillis,
        policy: &Policy,
    ) -> NoFit {
        let connected_agents = fleet.iter().filter(|a| a.connected).count();
        if connected_agents == 0 {
            return NoFit {
                connected_agents,
                reasons: vec![FleetReason::NoAgentsConnected],
            };
        }
        let by_id: BTreeMap<&AgentId, &AgentSnapshot<'_>> =
            fleet.iter().map(|a| (a.id, a)).collect();
        let mut telemetry = (0usize, None::<u64>);
        let mut unhealthy: Option<(usize, AgentId, Misfit)> = None;
        let mut stake = (0usize, None::<(OperatorId, StakeUnits)>);
        let mut full = 0usize;
        let mut memory: Option<(usize, u64, AgentId)> = None;
        let mut speed: Option<(usize, u64, u64, u64, AgentId)> = None;
        let mut declined = 0usize;
        let mut draining = 0usize;
        let mut breaker_open = 0usize;

        for v in verdicts {
            let Err(misfits) = &v.fit else { continue };
            if misfits.contains(&Misfit::Disconnected) {
                continue;
            }
            if misfits.contains(&Misfit::Draining) {
                draining += 1;
                continue;
            }
            if misfits
                .iter()
                .any(|m| matches!(m, Misfit::BreakerOpen { .. }))
            {
                breaker_open += 1;
                continue;
            }
            let mut counted_health = false;
            for m in misfits {
                match m {
                    Misfit::Disconnected | Misfit::Draining | Misfit::BreakerOpen { .. } => {}
                    Misfit::NoTelemetry | Misfit::StaleTelemetry { .. } => {
                        telemetry.0 += 1;
                        let age = by_id
                            .get(&v.agent)
                            .and_then(|a| a.telemetry)
                            .map(|t| t.age_ms(now));
                        telemetry.1 = match (telemetry.1, age) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    Misfit::Overheating { .. }
                    | Misfit::NewEccErrors { .. }
                    | Misfit::Throttling { .. }
                    | Misfit::NoGpu => {
                        if !counted_health {
                            counted_health = true;
                            match &mut unhealthy {
                                Some((n, _, _)) => *n += 1,
                                None => unhealthy = Some((1, v.agent.clone(), m.clone())),
                            }
                        }
                    }
                    Misfit::UnknownOperator { .. } | Misfit::InsufficientStake { .. } => {
                        stake.0 += 1;
                        if let Some(free) = free_stake.get(&v.agent.operator) {
                            if stake.1.as_ref().is_none_or(|(_, best)| free > best) {
                                stake.1 = Some((v.agent.operator.clone(), *free));
                            }
                        }
                    }
                    Misfit::AgentFull { .. } => full += 1,
                    Misfit::InsufficientMemory { free_bytes, .. } => match &mut memory {
                        Some((n, largest, on)) => {
                            *n += 1;
                            if free_bytes > largest {
                                *largest = *free_bytes;
                                *on = v.agent.clone();
                            }
                        }
                        None => memory = Some((1, *free_bytes, v.agent.clone())),
                    },
                    Misfit::TooSlow {
                        finish_in_ms,
                        margin_ms,
                        deadline_in_ms,
                    } => match &mut speed {
                        Some((n, finish, margin, _, fastest)) => {
                            *n += 1;
                            if finish_in_ms < finish {
                                *finish = *finish_in_ms;
                                *margin = *margin_ms;
                                *fastest = v.agent.clone();
                            }
                        }
                        None => {
                            speed = Some((
                                1,
                                *finish_in_ms,
                                *margin_ms,
                                *deadline_in_ms,
                                v.agent.clone(),
                            ))
                        }
                    },
                    Misfit::RecentlyDeclined { .. } => declined += 1,
                }
            }
        }

        let mut reasons = Vec::new();
        if telemetry.0 > 0 {
            reasons.push(FleetReason::Telemetry {
                agents: telemetry.0,
                newest_age_ms: telemetry.1,
                limit_ms: policy.telemetry_max_age_ms,
            });
        }
        if let Some((agents, example_agent, example)) = unhealthy {
            reasons.push(FleetReason::Unhealthy {
                agents,
                example_agent,
                example,
            });
        }
        if stake.0 > 0 {
            reasons.push(FleetReason::Stake {
                agents: stake.0,
                needed: demand.collateral,
                best: stake.1,
            });
        }
        if full > 0 {
            reasons.push(FleetReason::Full {
                agents: full,
                limit: policy.max_tasks_per_agent,
            });
        }
        if let Some((agents, largest_free_bytes, largest_on)) = memory {
            reasons.push(FleetReason::Memory {
                agents,
                needed_bytes: demand.shape.estimate_memory_bytes(),
                largest_free_bytes,
                largest_on,
            });
        }
        if let Some((agents, finish_in_ms, margin_ms, deadline_in_ms, fastest)) = speed {
            reasons.push(FleetReason::Speed {
                agents,
                finish_in_ms,
                margin_ms,
                deadline_in_ms,
                fastest,
            });
        }
        if declined > 0 {
            reasons.push(FleetReason::Declined { agents: declined });
        }
        if draining > 0 {
            reasons.push(FleetReason::Draining { agents: draining });
        }
        if breaker_open > 0 {
            reasons.push(FleetReason::BreakerOpen {
                agents: breaker_open,
            });
        }
        assert!(
            !reasons.is_empty(),
            "admission: a connected agent was rejected without a reason"
        );
        NoFit {
            connected_agents,
            reasons,
        }
    }
}
