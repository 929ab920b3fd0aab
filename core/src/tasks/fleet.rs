//! The fleet: agents connecting, disconnecting and reporting telemetry.

use super::error::{AgentRejected, TelemetryRejected};
use super::history::TaskEvent;
use super::model::TaskState;
use super::{CoordinatorCore, PassScope, MAX_AGENTS};
use crate::admission::{AgentId, AgentSnapshot, AgentTelemetry, Assignment};
use crate::policy::MAX_TASKS_PER_AGENT;
use proofrack_common::protocol::OperatorStanding;
use proofrack_common::telemetry::Telemetry;
use proofrack_common::{OperatorId, StakeUnits, TaskId, UnixMillis};

/// One agent as the core tracks it.
#[derive(Clone, Debug)]
pub(crate) struct AgentRecord {
    pub(crate) id: AgentId,
    pub(crate) connected: bool,
    /// When it disconnected (its bound tasks are handed over a grace period later).
    pub(crate) disconnected_at: Option<UnixMillis>,
    /// Its last telemetry, or its connection if none came yet: staleness counts from here.
    pub(crate) last_heard_at: UnixMillis,
    /// Drained by its operator: no new offers.
    pub(crate) draining: bool,
    /// The agent said it is shutting down (`Draining` on its control stream): no new
    /// offers; it finishes what it holds. Cleared when it connects again.
    pub(crate) leaving: bool,
    /// Tasks it proves at once, as it declared when connecting (at least 1).
    pub(crate) max_concurrent_tasks: u32,
    /// Latest report of the current connection; `None` until the first one.
    pub(crate) telemetry: Option<AgentTelemetry>,
    /// Its offered and proving tasks, in the order they were offered. Changed only through
    /// [`AgentRecord::assign`] and [`AgentRecord::unassign_task`], which keep
    /// `assignments_memory_bytes` with it.
    pub(crate) assignments: Vec<Assignment>,
    pub(crate) assignments_memory_bytes: u64,
    /// Learned correction of its calibrated speed (see `learned.rs`).
    pub(crate) speed_factor_permille: u32,
    /// Its circuit breaker is open until then (a copy of the agent book's, see `breaker.rs`).
    pub(crate) breaker_open_until: Option<UnixMillis>,
}

impl AgentRecord {
    /// An agent known only from the tasks bound to it (after a restart), not connected.
    pub(crate) fn disconnected(id: AgentId, now: UnixMillis) -> AgentRecord {
        AgentRecord {
            id,
            connected: false,
            disconnected_at: Some(now),
            last_heard_at: now,
            draining: false,
            leaving: false,
            max_concurrent_tasks: 1,
            telemetry: None,
            assignments: Vec::new(),
            assignments_memory_bytes: 0,
            speed_factor_permille: super::learned::NEUTRAL_SPEED_FACTOR_PERMILLE,
            breaker_open_until: None,
        }
    }

    pub(crate) fn snapshot(&self) -> AgentSnapshot<'_> {
        AgentSnapshot {
            id: &self.id,
            connected: self.connected,
            draining: self.draining || self.leaving,
            telemetry: self.telemetry.as_ref(),
            max_concurrent_tasks: self.max_concurrent_tasks,
            assignments: &self.assignments,
            assignments_memory_bytes: self.assignments_memory_bytes,
            speed_factor_permille: self.speed_factor_permille,
            breaker_open_until: self.breaker_open_until,
        }
    }

    pub(crate) fn assign(&mut self, assignment: Assignment) {
        self.assignments_memory_bytes = self
            .assignments_memory_bytes
            .saturating_add(assignment.memory_bytes);
        self.assignments.push(assignment);
    }

    /// Removes `task`'s assignment; whether it was there.
    pub(crate) fn unassign_task(&mut self, task: TaskId) -> bool {
        let Some(i) = self.assignments.iter().position(|a| a.task == task) else {
            return false;
        };
        self.assignments.remove(i);
        assert!(
            !self.assignments.iter().any(|a| a.task == task),
            "{task} was assigned to {} more than once",
            self.id
        );
        // Summed again rather than subtracted: the sum saturates, so only a fresh sum is exact
        // (once per finished task, over at most MAX_TASKS_PER_AGENT entries).
        self.assignments_memory_bytes = AgentSnapshot::sum_memory(&self.assignments);
        true
    }
}

impl CoordinatorCore {
    /// An agent connected (its identity comes from its certificate). `max_concurrent_tasks`
    /// is how many tasks it proves at once (clamped to 1..=MAX_TASKS_PER_AGENT); tasks
    /// beyond that wait in its own queue. Tasks still bound to it from an earlier connection
    /// stay bound.
    pub fn handle_agent_connected(
        &mut self,
        now: UnixMillis,
        agent: AgentId,
        max_concurrent_tasks: u32,
    ) -> Result<(), AgentRejected> {
        self.expire(now);
        let result = self.connect(now, agent.clone(), max_concurrent_tasks);
        if result.is_ok() {
            self.resume_on_reconnect(now, &agent);
        }
        // Only this agent can newly fit (and not before its first telemetry); a reconnecting
        // rack must not cost a full admission pass per agent.
        self.settle_scoped(now, PassScope::Agent(agent));
        result
    }

    fn connect(
        &mut self,
        now: UnixMillis,
        agent: AgentId,
        max_concurrent_tasks: u32,
    ) -> Result<(), AgentRejected> {
        let slots = max_concurrent_tasks.clamp(1, MAX_TASKS_PER_AGENT);
        let fleet_full = self.fleet.len() >= MAX_AGENTS;
        let draining = self.drained.contains(&agent);
        if !fleet_full || self.fleet.contains_key(&agent) {
            self.note_agent_seen(now, &agent);
        }
        let breaker_open_until = self
            .agent_book
            .get(&agent)
            .and_then(|f| f.breaker.open_until(now));
        match self.fleet.get_mut(&agent) {
            Some(record) if record.connected => Err(AgentRejected::AlreadyConnected { agent }),
            Some(record) => {
                tracing::info!(%agent, slots, bound_tasks = record.assignments.len(), "agent reconnected");
                record.connected = true;
                record.disconnected_at = None;
                record.last_heard_at = now;
                record.draining = draining;
                record.leaving = false;
                record.telemetry = None;
                record.max_concurrent_tasks = slots;
                record.breaker_open_until = breaker_open_until;
                Ok(())
            }
            None if fleet_full => Err(AgentRejected::FleetFull { max: MAX_AGENTS }),
            None => {
                tracing::info!(%agent, slots, "agent connected");
                // The ledger's copy of the operator id, so that admission's comparisons of
                // operators (per agent, per task) see one shared id.
                let agent = match self
                    .ledger
                    .operators()
                    .find(|(op, _)| **op == agent.operator)
                {
                    Some((op, _)) => AgentId::new(op.clone(), agent.name),
                    None => agent,
                };
                let record = AgentRecord {
                    id: agent.clone(),
                    connected: true,
                    disconnected_at: None,
                    last_heard_at: now,
                    draining,
                    leaving: false,
                    max_concurrent_tasks: slots,
                    telemetry: None,
                    assignments: Vec::new(),
                    assignments_memory_bytes: 0,
                    speed_factor_permille: self.learned.factor(&agent),
                    breaker_open_until,
                };
                self.fleet.insert(agent, record);
                Ok(())
            }
        }
    }

    /// An agent's connection closed. Offers outstanding to it are withdrawn with no penalty
    /// and their tasks go to the next fit; tasks it accepted stay bound (it may reconnect and
    /// deliver before their due time, or be slashed at it).
    pub fn handle_agent_disconnected(&mut self, now: UnixMillis, agent: &AgentId) {
        self.expire(now);
        if let Some(record) = self.fleet.get_mut(agent) {
            tracing::info!(%agent, "agent disconnected");
            record.connected = false;
            record.disconnected_at = Some(now);
            record.telemetry = None;
            // Its assignments are exactly its offered and proving tasks (an invariant), so
            // only they are looked at, not every task.
            let assigned: Vec<TaskId> = record.assignments.iter().map(|a| a.task).collect();
            let offered: Vec<TaskId> = assigned
                .into_iter()
                .filter(|id| matches!(&self.tasks[id].state, TaskState::Offered { placement, .. } if &placement.agent == agent))
                .collect();
            self.lower_agent_loss_bound(agent);
            for task in offered {
                self.withdraw_offer(
                    now,
                    task,
                    TaskEvent::OfferWithdrawn {
                        agent: agent.clone(),
                        reason: "agent disconnected".into(),
                    },
                );
            }
            self.forget_if_idle(agent);
        }
        // Withdrawn offers ask for a full pass themselves; otherwise nothing was freed.
        self.settle_scoped(now, PassScope::OnlyIfNeeded);
    }

    /// A connected agent says it is shutting down: it takes no new offers and finishes what
    /// it holds (its bound tasks stay bound; if it leaves before delivering them, the usual
    /// grace and handover apply).
    pub fn handle_agent_leaving(&mut self, now: UnixMillis, agent: &AgentId) {
        self.expire(now);
        if let Some(record) = self.fleet.get_mut(agent).filter(|r| r.connected) {
            if !record.leaving {
                tracing::info!(%agent, holds = record.assignments.len(), "agent withdrawing: no new offers");
                record.leaving = true;
                self.needs_full_pass = true;
            }
        }
        self.settle(now);
    }

    /// Whether `operator`'s agents can be offered tasks at all: known to the ledger, with
    /// stake delegated.
    pub fn operator_standing(&self, operator: &OperatorId) -> OperatorStanding {
        match self.ledger.account(operator) {
            None => OperatorStanding::Unknown,
            Some(a) if a.delegated() == StakeUnits::ZERO => OperatorStanding::NoStake,
            Some(_) => OperatorStanding::Staked,
        }
    }

    /// A telemetry report from a connected agent.
    pub fn handle_telemetry(
        &mut self,
        now: UnixMillis,
        agent: &AgentId,
        report: Telemetry,
    ) -> Result<(), TelemetryRejected> {
        self.expire(now);
        let result = match self.fleet.get_mut(agent) {
            Some(record) if record.connected => match &record.telemetry {
                Some(previous) if report.seq <= previous.report.seq => {
                    Err(TelemetryRejected::OutOfOrder {
                        agent: agent.clone(),
                        seq: report.seq,
                        last: previous.report.seq,
                    })
                }
                _ => {
                    record.telemetry =
                        Some(AgentTelemetry::update(record.telemetry.take(), report, now));
                    record.last_heard_at = now;
                    Ok(())
                }
            },
            _ => Err(TelemetryRejected::NotConnected {
                agent: agent.clone(),
            }),
        };
        if result.is_ok() {
            self.hand_over_if_unhealthy(now, agent);
        }
        let scope = if result.is_ok() {
            PassScope::Agent(agent.clone())
        } else {
            PassScope::OnlyIfNeeded
        };
        self.settle_scoped(now, scope);
        result
    }

    /// Removes `task` from `agent`'s assignments (it must be there).
    pub(crate) fn unassign(&mut self, agent: &AgentId, task: TaskId) {
        let record = self
            .fleet
            .get_mut(agent)
            .expect("an assigned task's agent is in the fleet");
        assert!(
            record.unassign_task(task),
            "{task} was assigned to {agent} exactly once"
        );
        self.needs_full_pass = true;
        self.forget_if_idle(agent);
    }

    /// Drops a disconnected agent with nothing assigned, keeping the fleet bounded by the
    /// agents that matter.
    fn forget_if_idle(&mut self, agent: &AgentId) {
        if self
            .fleet
            .get(agent)
            .is_some_and(|r| !r.connected && r.assignments.is_empty())
        {
            self.fleet.remove(agent);
        }
    }
}
