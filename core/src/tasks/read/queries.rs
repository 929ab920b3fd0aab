//! Read-only views for operators and clients: stake per operator, the fleet, task records.

use crate::admission::{format, health_problems};
use crate::tasks::history::{HistoryEntry, TaskEvent};
use crate::tasks::model::{Task, TaskState, TaskStatus};
use crate::tasks::{CoordinatorCore, PendingWithdrawal};
use proofrack_common::protocol::OperatorStanding;
use proofrack_common::telemetry::ProverBackend;
use proofrack_common::{AgentId, KeyId, OperatorId, StakeUnits, TaskId, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One operator's stake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRow {
    pub operator: OperatorId,
    pub delegated: StakeUnits,
    /// Bound to accepted tasks.
    pub active: StakeUnits,
    pub withdrawing: StakeUnits,
    /// `delegated - active - withdrawing`.
    pub free: StakeUnits,
    /// Collateral of outstanding offers to its agents (part of `free`, not bindable by others).
    pub promised_to_offers: StakeUnits,
    pub withdrawn: StakeUnits,
    pub slashed: StakeUnits,
    pub bound_tasks: usize,
}

/// One agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRow {
    pub agent: AgentId,
    pub connected: bool,
    /// Drained by its operator.
    pub drained: bool,
    /// Shutting down: finishes what it holds, takes nothing new.
    pub leaving: bool,
    pub operator_standing: OperatorStanding,
    pub backend: Option<ProverBackend>,
    /// e.g. `cuda: NVIDIA H100 (sm_90); GPU 0 NVIDIA H100 78.1 GiB free of 79.6 GiB, 41 °C`.
    pub hardware: String,
    pub telemetry_age_ms: Option<u64>,
    /// Health problems that exclude it from admission (empty when healthy).
    pub health: Vec<String>,
    /// Its circuit breaker while open: until when and why.
    pub breaker: Option<String>,
    /// Its offered and proving tasks.
    pub tasks: Vec<TaskId>,
    pub max_concurrent_tasks: u32,
    pub msm_g1_points_per_sec: Option<u64>,
    pub ntt_elements_per_sec: Option<u64>,
    pub compute_memory_free_bytes: Option<u64>,
    pub reserved_memory_bytes: u64,
}

/// One line of [`CoordinatorCore::task_list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskListEntry {
    pub id: TaskId,
    pub circuit: String,
    pub client: String,
    pub state: &'static str,
    pub submitted_at: UnixMillis,
    pub deadline: UnixMillis,
}

/// A task's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskView {
    pub id: TaskId,
    pub client: String,
    pub request_id: u64,
    pub circuit: String,
    pub key_id: KeyId,
    pub collateral: StakeUnits,
    pub deadline: UnixMillis,
    pub submitted_at: UnixMillis,
    pub status: TaskStatus,
    pub history: Vec<HistoryEntry>,
}

/// Most kept tasks one task listing looks at. Each costs about 0.5 µs under the core's lock
/// (its owner is worked out for the reader's authorization), so a listing holds the lock for
/// at most ~2 ms whatever the reader may see: at 100,000 kept tasks an unbounded listing by a
/// client that may read none of them held it for 50 ms (`proofrack-bench core`), and a
/// client could repeat it without end. Pages go on from where the scan stopped.
pub const MAX_TASKS_SCANNED_PER_LISTING: usize = 4_096;

impl CoordinatorCore {
    /// Stake per operator, in operator order.
    ///
    /// Costs the operators (the index keeps each one's promised collateral), not operators ×
    /// tasks: any client may ask for it, under the core's lock.
    pub fn ledger_rows(&self) -> Vec<OperatorRow> {
        let promised_per_operator = self.promised_collateral();
        self.ledger
            .rows()
            .into_iter()
            .map(|r| {
                let promised = promised_per_operator
                    .get(&r.operator)
                    .copied()
                    .unwrap_or(StakeUnits::ZERO);
                OperatorRow {
                    operator: r.operator,
                    delegated: r.delegated,
                    active: r.active,
                    withdrawing: r.withdrawing,
                    free: r.free,
                    promised_to_offers: promised,
                    withdrawn: r.withdrawn,
                    slashed: r.slashed,
                    bound_tasks: r.bound_tasks,
                }
            })
            .collect()
    }

    /// Every tracked agent, in id order.
    pub fn agent_rows(&self, now: UnixMillis) -> Vec<AgentRow> {
        self.fleet
            .values()
            .map(|r| {
                let t = r.telemetry.as_ref();
                let snapshot = r.snapshot();
                AgentRow {
                    agent: r.id.clone(),
                    connected: r.connected,
                    drained: r.draining,
                    leaving: r.leaving,
                    operator_standing: self.operator_standing(&r.id.operator),
                    backend: t.map(|t| t.report.calibration.backend),
                    hardware: t.map_or_else(|| "no telemetry yet".to_string(), hardware_summary),
                    telemetry_age_ms: t.map(|t| t.age_ms(now)),
                    health: t.map_or_else(Vec::new, |t| {
                        health_problems(t, &self.policy)
                            .iter()
                            .map(ToString::to_string)
                            .collect()
                    }),
                    breaker: self.breaker_line(&r.id, now),
                    tasks: r.assignments.iter().map(|a| a.task).collect(),
                    max_concurrent_tasks: r.max_concurrent_tasks,
                    msm_g1_points_per_sec: t.map(|t| t.report.calibration.msm_g1_points_per_sec),
                    ntt_elements_per_sec: t.map(|t| t.report.calibration.ntt_elements_per_sec),
                    compute_memory_free_bytes: t.map(|t| t.compute_memory_free_bytes()),
                    reserved_memory_bytes: snapshot.reserved_memory_bytes(),
                }
            })
            .collect()
    }

    /// When the core last heard from a connected agent (its latest telemetry, or its
    /// connection); `None` if it is not connected.
    pub fn agent_last_heard(&self, agent: &AgentId) -> Option<UnixMillis> {
        self.fleet
            .get(agent)
            .filter(|r| r.connected)
            .map(|r| r.last_heard_at)
    }

    /// An agent's open circuit breaker, in words.
    fn breaker_line(&self, agent: &AgentId, now: UnixMillis) -> Option<String> {
        let open = self
            .breaker(agent)?
            .open
            .as_ref()
            .filter(|o| o.until > now)?;
        Some(format!(
            "circuit breaker open until {}: {}",
            open.until, open.why
        ))
    }

    /// The key of the requester that submitted a task (see `authz::requester_key`).
    pub fn task_client(&self, id: TaskId) -> Option<&str> {
        self.tasks.get(&id).map(|t| t.spec.client.as_str())
    }

    /// Who may read a task: the requester that submitted it and the operators whose agents
    /// were offered or held it (the authorization table's owner of a task).
    pub fn task_owner(&self, id: TaskId) -> Option<(String, BTreeSet<OperatorId>)> {
        self.tasks.get(&id).map(owner_of)
    }

    /// The kept tasks in state `state` (any if `None`) that `may_read` allows (given each
    /// task's client and the operators that were offered or ran it), newest first below
    /// `before`, at most `limit`; and where to continue (`before` for the next page) when
    /// more may match. A listing looks at no more than [`MAX_TASKS_SCANNED_PER_LISTING`]
    /// tasks, so a page can hold fewer rows than asked (even none) and still have a next page.
    pub fn task_list(
        &self,
        state: Option<&str>,
        before: Option<TaskId>,
        limit: usize,
        may_read: impl FnMut(&str, &BTreeSet<OperatorId>) -> bool,
    ) -> (Vec<TaskListEntry>, Option<TaskId>) {
        self.task_list_scanning(
            state,
            before,
            limit,
            MAX_TASKS_SCANNED_PER_LISTING,
            may_read,
        )
    }

    /// [`CoordinatorCore::task_list`] looking at no more than `max_scanned` tasks (tests
    /// page with a small bound).
    pub fn task_list_scanning(
        &self,
        state: Option<&str>,
        before: Option<TaskId>,
        limit: usize,
        max_scanned: usize,
        mut may_read: impl FnMut(&str, &BTreeSet<OperatorId>) -> bool,
    ) -> (Vec<TaskListEntry>, Option<TaskId>) {
        let limit = limit.max(1);
        let max_scanned = max_scanned.max(1);
        let mut rows: Vec<TaskListEntry> = Vec::new();
        let range = match before {
            Some(b) => self.tasks.range(..b),
            None => self.tasks.range(..),
        };
        for (scanned, (id, t)) in range.rev().enumerate() {
            if scanned == max_scanned {
                // Continue from the task not looked at yet (it is below `id + 1`).
                return (rows, Some(TaskId(id.0 + 1)));
            }
            if state.is_some_and(|s| s != t.state.name()) {
                continue;
            }
            let (client, operators) = owner_of(t);
            if !may_read(&client, &operators) {
                continue;
            }
            if rows.len() == limit {
                let last = rows.last().map(|r| r.id);
                return (rows, last);
            }
            rows.push(TaskListEntry {
                id: *id,
                circuit: t.spec.circuit.clone(),
                client,
                state: t.state.name(),
                submitted_at: t.submitted_at,
                deadline: t.spec.deadline,
            });
        }
        (rows, None)
    }

    /// A task's status and history, while it is kept (see `MAX_FINISHED_TASKS`).
    pub fn task(&self, id: TaskId) -> Option<TaskView> {
        self.tasks.get(&id).map(|t| TaskView {
            id: t.id,
            client: t.spec.client.clone(),
            request_id: t.spec.request_id,
            circuit: t.spec.circuit.clone(),
            key_id: t.key_id,
            collateral: t.spec.collateral,
            deadline: t.spec.deadline,
            submitted_at: t.submitted_at,
            status: t.status(),
            history: t.history.entries().to_vec(),
        })
    }

    /// Every kept task's status, in id order.
    pub fn task_statuses(&self) -> Vec<(TaskId, TaskStatus)> {
        self.tasks.values().map(|t| (t.id, t.status())).collect()
    }

    /// Tasks not yet verified or failed.
    pub fn unfinished_tasks(&self) -> usize {
        self.tasks.len() - self.finished.len()
    }
}

fn hardware_summary(t: &crate::admission::AgentTelemetry) -> String {
    let report = &t.report;
    let mut out = report.calibration.backend_name.clone();
    match report.calibration.backend {
        ProverBackend::Cuda => {
            for g in &report.gpus {
                out.push_str(&format!(
                    "; GPU {} {} {} free of {}, {} °C",
                    g.index,
                    g.name,
                    format::bytes(g.memory_free_bytes),
                    format::bytes(g.memory_total_bytes),
                    g.temperature_c
                ));
            }
            if report.gpus.is_empty() {
                out.push_str("; no GPU reported");
            }
        }
        ProverBackend::Cpu => out.push_str(&format!(
            "; {} cores, {} available of {}",
            report.host.cpu_cores,
            format::bytes(report.host.memory_available_bytes),
            format::bytes(report.host.memory_total_bytes)
        )),
    }
    out
}

impl CoordinatorCore {
    /// The agent whose proof of `id` was verified, if it was: a repeated delivery of the same
    /// task by that agent (its reply was lost) gets the same answer.
    pub fn verified_by(&self, id: TaskId) -> Option<&AgentId> {
        match &self.tasks.get(&id)?.state {
            TaskState::Verified { agent, .. } => Some(agent),
            _ => None,
        }
    }

    /// Tasks waiting for their proof's verdict (e.g. after a restart), with their agents.
    pub fn verifying_tasks(&self) -> Vec<(TaskId, AgentId)> {
        self.tasks
            .values()
            .filter_map(|t| match &t.state {
                TaskState::Verifying { placement, .. } => Some((t.id, placement.agent.clone())),
                _ => None,
            })
            .collect()
    }

    /// Agents drained by their operators.
    pub fn drained_agents(&self) -> impl Iterator<Item = &AgentId> {
        self.drained.iter()
    }

    /// Withdrawals requested through the coordinator and not yet paid out.
    pub fn pending_withdrawals(&self) -> impl Iterator<Item = &PendingWithdrawal> {
        self.withdrawals.values()
    }

    /// A task's circuit and inputs as submitted, for the shell's proof verification.
    pub fn task_inputs(&self, id: TaskId) -> Option<(String, std::sync::Arc<[u8]>)> {
        self.tasks
            .get(&id)
            .map(|t| (t.spec.circuit.clone(), t.spec.inputs.clone()))
    }
}

/// [`CoordinatorCore::task_owner`] of a task in hand.
fn owner_of(t: &Task) -> (String, BTreeSet<OperatorId>) {
    let mut operators: BTreeSet<OperatorId> = t
        .history
        .entries()
        .iter()
        .filter_map(|e| match &e.event {
            TaskEvent::Offered { placement, .. } => Some(placement.agent.operator.clone()),
            TaskEvent::StakeBound { operator, .. } => Some(operator.clone()),
            TaskEvent::HandedOver { to, .. } => Some(to.operator.clone()),
            _ => None,
        })
        .collect();
    if let Some(p) = t.bound_placement() {
        operators.insert(p.agent.operator.clone());
    }
    (t.spec.client.clone(), operators)
}
