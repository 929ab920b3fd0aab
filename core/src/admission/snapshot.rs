//! What admission sees of the fleet: agent identities, their last telemetry with its health
//! baseline, and the tasks already assigned to them.

use proofrack_common::telemetry::{ProverBackend, Telemetry};
use proofrack_common::{TaskId, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use proofrack_common::AgentId;

/// An agent's latest telemetry, when it arrived, and the health baseline of its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentTelemetry {
    pub report: Telemetry,
    pub received_at: UnixMillis,
    /// Uncorrectable ECC totals per GPU (by UUID) in the first report of this connection. Any
    /// increase over this marks the GPU failing until the agent reconnects (a driver reload
    /// resets the volatile counters, so a reconnect starts a new baseline).
    pub ecc_baseline: BTreeMap<String, u64>,
}

impl AgentTelemetry {
    /// Folds a new report into the previous one of the same connection (`None` for the first).
    pub fn update(
        previous: Option<AgentTelemetry>,
        report: Telemetry,
        now: UnixMillis,
    ) -> AgentTelemetry {
        let mut ecc_baseline = previous.map(|p| p.ecc_baseline).unwrap_or_default();
        for gpu in &report.gpus {
            if let Some(total) = gpu.ecc_uncorrectable_total {
                ecc_baseline.entry(gpu.uuid.clone()).or_insert(total);
            }
        }
        AgentTelemetry {
            report,
            received_at: now,
            ecc_baseline,
        }
    }

    pub fn age_ms(&self, now: UnixMillis) -> u64 {
        now.0.saturating_sub(self.received_at.0)
    }

    /// Memory a proof can use where this agent proves: the largest free GPU memory for CUDA
    /// agents (a proof runs on one GPU), available host memory for CPU agents.
    pub fn compute_memory_free_bytes(&self) -> u64 {
        match self.report.calibration.backend {
            ProverBackend::Cuda => self
                .report
                .gpus
                .iter()
                .map(|g| g.memory_free_bytes)
                .max()
                .unwrap_or(0),
            ProverBackend::Cpu => self.report.host.memory_available_bytes,
        }
    }
}

/// A task offered to or bound to an agent, as admission accounts for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub task: TaskId,
    /// Reserved out of the agent's reported free memory until the task is delivered.
    pub memory_bytes: u64,
    /// When the agent is predicted to finish it.
    pub predicted_done_at: UnixMillis,
}

/// One agent as admission sees it. Borrowed from the fleet, so building one is cheap.
#[derive(Clone, Copy, Debug)]
pub struct AgentSnapshot<'a> {
    pub id: &'a AgentId,
    pub connected: bool,
    /// Drained by its operator: takes no new tasks, keeps proving what it holds.
    pub draining: bool,
    pub telemetry: Option<&'a AgentTelemetry>,
    /// Tasks the agent proves at once (beyond that they wait in its local queue).
    pub max_concurrent_tasks: u32,
    pub assignments: &'a [Assignment],
    /// The memory of `assignments`, summed where they change (admission reads it for every
    /// agent for every task; see [`AgentSnapshot::sum_memory`]).
    pub assignments_memory_bytes: u64,
    /// Learned correction of its calibrated speed, permille (1000: as calibrated).
    pub speed_factor_permille: u32,
    /// Its circuit breaker is open until then: no new tasks.
    pub breaker_open_until: Option<UnixMillis>,
}

impl AgentSnapshot<'_> {
    /// Until when its circuit breaker keeps it from new tasks, if it does at `now`.
    pub fn breaker_open(&self, now: UnixMillis) -> Option<UnixMillis> {
        self.breaker_open_until.filter(|until| *until > now)
    }

    pub fn reserved_memory_bytes(&self) -> u64 {
        debug_assert_eq!(
            self.assignments_memory_bytes,
            Self::sum_memory(self.assignments),
            "{}: kept memory sum differs from its assignments",
            self.id
        );
        self.assignments_memory_bytes
    }

    /// The memory reserved for `assignments`.
    pub fn sum_memory(assignments: &[Assignment]) -> u64 {
        assignments
            .iter()
            .fold(0u64, |sum, a| sum.saturating_add(a.memory_bytes))
    }

    /// When a new task could start: now if a slot is free, else when the earliest of its
    /// slots frees. With list scheduling the last tasks of the slots are the `slots` latest
    /// predicted finishes, so the earliest free slot is the `slots`-th latest finish.
    pub fn earliest_start(&self, now: UnixMillis) -> UnixMillis {
        let slots = self.max_concurrent_tasks.max(1) as usize;
        if self.assignments.len() < slots {
            return now;
        }
        let mut done: Vec<u64> = self
            .assignments
            .iter()
            .map(|a| a.predicted_done_at.0)
            .collect();
        done.sort_unstable_by(|a, b| b.cmp(a));
        UnixMillis(done[slots - 1].max(now.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofrack_common::{AgentName, OperatorId};

    fn id() -> AgentId {
        AgentId::new(
            OperatorId::new("op-a").unwrap(),
            AgentName::new("gpu-1").unwrap(),
        )
    }

    fn assignment(task: u64, done: u64) -> Assignment {
        Assignment {
            task: TaskId(task),
            memory_bytes: 10,
            predicted_done_at: UnixMillis(done),
        }
    }

    #[test]
    fn earliest_start_uses_the_earliest_free_slot() {
        let id = id();
        let a = [assignment(1, 500), assignment(2, 900), assignment(3, 1_400)];
        let snap = |slots, assignments| AgentSnapshot {
            draining: false,
            id: &id,
            connected: true,
            telemetry: None,
            max_concurrent_tasks: slots,
            assignments,
            assignments_memory_bytes: AgentSnapshot::sum_memory(assignments),
            speed_factor_permille: 1_000,
            breaker_open_until: None,
        };
        assert_eq!(
            snap(4, &a[..]).earliest_start(UnixMillis(100)),
            UnixMillis(100)
        );
        assert_eq!(
            snap(1, &a[..]).earliest_start(UnixMillis(100)),
            UnixMillis(1_400)
        );
        assert_eq!(
            snap(2, &a[..]).earliest_start(UnixMillis(100)),
            UnixMillis(900)
        );
        assert_eq!(
            snap(3, &a[..]).earliest_start(UnixMillis(100)),
            UnixMillis(500)
        );
        // a task predicted done already (running late) frees nothing before now
        assert_eq!(
            snap(3, &a[..]).earliest_start(UnixMillis(700)),
            UnixMillis(700)
        );
        assert_eq!(snap(2, &a[..]).reserved_memory_bytes(), 30);
        assert_eq!(id.to_string(), "op-a/gpu-1");
    }
}
