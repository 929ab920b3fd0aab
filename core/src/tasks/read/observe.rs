//! What operators watch: read-only views for the metrics endpoint and the fleet page (the
//! admission counters, tasks by state, recent slashes with their reasons, predicted against
//! actual proving time per agent, agents with their GPUs). The counters themselves are kept
//! by the core as it decides (`tasks/stats.rs`).

use crate::tasks::history::TaskEvent;
use crate::tasks::model::TaskState;
use crate::tasks::{AdmissionStats, CoordinatorCore, OpenBreaker};
use proofrack_common::protocol::OperatorStanding;
use proofrack_common::telemetry::{GpuTelemetry, ProverBackend};
use proofrack_common::{timefmt, AgentId, OperatorId, StakeUnits, TaskId, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every task state, in life-cycle order (so a state with no task still shows as 0).
pub const TASK_STATES: [&str; 6] = [
    "queued",
    "offered",
    "proving",
    "verifying",
    "verified",
    "failed",
];

/// A slash, for the fleet page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashRecord {
    pub at: UnixMillis,
    pub task: TaskId,
    pub agent: AgentId,
    pub operator: OperatorId,
    pub slashed: StakeUnits,
    /// e.g. `invalid proof` or `missed its due time`.
    pub reason: String,
}

/// Predicted against actual proving time of one agent's verified tasks (those still kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAccuracy {
    pub agent: AgentId,
    pub verified_tasks: u64,
    pub mean_predicted_ms: u64,
    pub mean_actual_ms: u64,
}

/// An agent with its GPUs, for the fleet page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetAgent {
    pub agent: AgentId,
    pub connected: bool,
    pub drained: bool,
    /// Shutting down (withdrawing from the fleet): finishes what it holds.
    pub leaving: bool,
    pub operator_standing: OperatorStanding,
    /// The same conditions in words (`up, drained`), as `proofrack agents` shows them.
    pub state: String,
    pub backend: Option<ProverBackend>,
    pub backend_name: Option<String>,
    pub telemetry_age_ms: Option<u64>,
    pub gpus: Vec<GpuTelemetry>,
    pub cpu_cores: Option<u32>,
    pub tasks: usize,
    pub max_concurrent_tasks: u32,
    /// Learned correction of its calibrated speed, permille (1000: as calibrated).
    pub speed_factor_permille: u32,
    /// Its circuit breaker, while open: until when, and why.
    pub breaker: Option<OpenBreaker>,
}

/// An unfinished task, for the fleet page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovingTask {
    pub id: TaskId,
    pub circuit: String,
    pub state: &'static str,
    pub agent: Option<AgentId>,
    pub collateral: StakeUnits,
    pub age_ms: u64,
}

impl CoordinatorCore {
    pub fn admission_stats(&self) -> &AdmissionStats {
        &self.stats
    }

    /// Agents the core tracks (connected, or disconnected with tasks still bound).
    pub fn agents_tracked(&self) -> usize {
        self.fleet.len()
    }

    /// Kept tasks per state (every state present).
    pub fn task_state_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts: BTreeMap<&'static str, usize> =
            TASK_STATES.iter().map(|s| (*s, 0)).collect();
        for t in self.tasks.values() {
            *counts.entry(t.state.name()).or_default() += 1;
        }
        counts
    }

    /// Unfinished tasks, newest first, at most `limit`.
    pub fn moving_tasks(&self, now: UnixMillis, limit: usize) -> Vec<MovingTask> {
        self.tasks
            .values()
            .rev()
            .filter(|t| !t.state.is_finished())
            .take(limit)
            .map(|t| MovingTask {
                id: t.id,
                circuit: t.spec.circuit.clone(),
                state: t.state.name(),
                agent: match &t.state {
                    TaskState::Offered { placement, .. }
                    | TaskState::Proving { placement, .. }
                    | TaskState::Verifying { placement, .. } => Some(placement.agent.clone()),
                    _ => None,
                },
                collateral: t.spec.collateral,
                age_ms: now.0.saturating_sub(t.submitted_at.0),
            })
            .collect()
    }

    /// The latest slashes recorded in kept tasks' histories, newest first, at most `limit`.
    pub fn recent_slashes(&self, limit: usize) -> Vec<SlashRecord> {
        let mut out: Vec<SlashRecord> = self
            .tasks
            .values()
            .flat_map(|t| {
                t.history.entries().iter().filter_map(move |e| {
                    let (agent, slashed, reason) = match &e.event {
                        TaskEvent::InvalidProof { agent, slashed, .. } => {
                            (agent, *slashed, "invalid proof".to_string())
                        }
                        TaskEvent::DueTimeMissed {
                            agent,
                            slashed,
                            due_at,
                            ..
                        } => (
                            agent,
                            *slashed,
                            format!(
                                "missed its due time ({})",
                                timefmt::after(*due_at, t.submitted_at, "submission")
                            ),
                        ),
                        _ => return None,
                    };
                    Some(SlashRecord {
                        at: e.at,
                        task: t.id,
                        agent: agent.clone(),
                        operator: agent.operator.clone(),
                        slashed,
                        reason,
                    })
                })
            })
            .collect();
        out.sort_by(|a, b| b.at.cmp(&a.at).then(b.task.cmp(&a.task)));
        out.truncate(limit);
        out
    }

    /// Predicted against actual proving time per agent, over kept verified tasks.
    pub fn agent_accuracy(&self) -> Vec<AgentAccuracy> {
        let mut sums: BTreeMap<&AgentId, (u64, u128, u128)> = BTreeMap::new();
        for t in self.tasks.values() {
            for e in t.history.entries() {
                if let TaskEvent::Verified {
                    agent,
                    predicted_proving_ms,
                    actual_proving_ms,
                } = &e.event
                {
                    let s = sums.entry(agent).or_default();
                    s.0 += 1;
                    s.1 += *predicted_proving_ms as u128;
                    s.2 += *actual_proving_ms as u128;
                }
            }
        }
        sums.into_iter()
            .map(|(agent, (n, p, a))| AgentAccuracy {
                agent: agent.clone(),
                verified_tasks: n,
                mean_predicted_ms: (p / n as u128) as u64,
                mean_actual_ms: (a / n as u128) as u64,
            })
            .collect()
    }

    /// Every tracked agent with its GPUs' latest telemetry.
    pub fn fleet_agents(&self, now: UnixMillis) -> Vec<FleetAgent> {
        self.fleet
            .values()
            .map(|r| {
                let t = r.telemetry.as_ref();
                let operator_standing = self.operator_standing(&r.id.operator);
                let state = proofrack_common::protocol::agent_state_words(
                    r.connected,
                    r.draining,
                    r.leaving,
                    operator_standing,
                );
                FleetAgent {
                    agent: r.id.clone(),
                    connected: r.connected,
                    drained: r.draining,
                    leaving: r.leaving,
                    operator_standing,
                    state,
                    backend: t.map(|t| t.report.calibration.backend),
                    backend_name: t.map(|t| t.report.calibration.backend_name.clone()),
                    telemetry_age_ms: t.map(|t| t.age_ms(now)),
                    gpus: t.map_or_else(Vec::new, |t| t.report.gpus.clone()),
                    cpu_cores: t.map(|t| t.report.host.cpu_cores),
                    tasks: r.assignments.len(),
                    max_concurrent_tasks: r.max_concurrent_tasks,
                    speed_factor_permille: r.speed_factor_permille,
                    breaker: self
                        .agent_book
                        .get(&r.id)
                        .and_then(|f| f.breaker.open.clone())
                        .filter(|o| o.until > now),
                }
            })
            .collect()
    }
}
