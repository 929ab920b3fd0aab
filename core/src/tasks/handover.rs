//! Lost agents: an agent gone past the grace period, silent past its telemetry age plus the
//! grace, unhealthy enough that its work cannot be trusted, or one that gave a task up. Its
//! bound tasks become `Orphaned`: the stake stays bound while another agent of the same
//! operator is offered the task (a handover). If none takes it by the lost agent's due time,
//! the operator is slashed as for any missed due time and the task goes back to the queue for
//! any operator. If the lost agent comes back first, it gets its tasks back.

use super::effect::Effect;
use super::error::DeliveryRejected;
use super::history::TaskEvent;
use super::model::TaskState;
use super::CoordinatorCore;
use crate::admission::{admit, health_problems, AgentId, AgentSnapshot, Assignment, Outcome};
use proofrack_common::{timefmt, OperatorId, StakeUnits, TaskId, UnixMillis};
use std::collections::BTreeMap;

impl CoordinatorCore {
    /// When an agent holding proving tasks may next be declared lost, if any may: a lower
    /// bound (exact right after a scan; telemetry since then may have moved agents' loss
    /// later, and the timer then wakes early, scans and finds the next one).
    pub(crate) fn next_agent_loss(&self) -> Option<UnixMillis> {
        match self.index.any_proving() {
            // Nothing proving: nobody's loss matters (and the timer need not wake for it).
            Some(false) => None,
            Some(true) => (self.agent_loss_bound.0 != u64::MAX).then_some(self.agent_loss_bound),
            // Mid-event: the exact answer by a scan.
            None => self.scan_next_agent_loss(),
        }
    }

    /// The exact time the next agent holding proving tasks is lost, by a scan of the fleet.
    fn scan_next_agent_loss(&self) -> Option<UnixMillis> {
        // Whether an agent holds a proving task costs task lookups, so it is asked only of
        // agents that would lower the minimum found so far.
        let mut next: Option<UnixMillis> = None;
        for r in self.fleet.values() {
            let at = self.lost_at(r);
            if next.is_none_or(|n| at < n) && self.record_holds_proving_task(r) {
                next = Some(at);
            }
        }
        next
    }

    /// Keeps [`CoordinatorCore::next_agent_loss`] a lower bound when `agent`'s loss may have
    /// moved earlier or it took a proving task (disconnect, bind, handover, give-back).
    pub(crate) fn lower_agent_loss_bound(&mut self, agent: &AgentId) {
        if let Some(r) = self.fleet.get(agent) {
            let at = self.lost_at(r);
            self.agent_loss_bound = self.agent_loss_bound.min(at);
        }
    }

    fn lost_at(&self, r: &super::fleet::AgentRecord) -> UnixMillis {
        let grace = self.policy.agent_grace_ms;
        match r.disconnected_at {
            Some(at) => UnixMillis(at.0.saturating_add(grace)),
            None => UnixMillis(
                r.last_heard_at
                    .0
                    .saturating_add(self.policy.telemetry_max_age_ms)
                    .saturating_add(grace),
            ),
        }
    }

    fn holds_proving_task(&self, agent: &AgentId) -> bool {
        self.fleet
            .get(agent)
            .is_some_and(|r| self.record_holds_proving_task(r))
    }

    fn record_holds_proving_task(&self, r: &super::fleet::AgentRecord) -> bool {
        r.assignments
            .iter()
            .any(|a| matches!(&self.tasks[&a.task].state, TaskState::Proving { .. }))
    }

    /// Declares lost every agent whose grace ran out by `now`, orphaning its proving tasks.
    pub(crate) fn expire_lost_agents(&mut self, now: UnixMillis) {
        // Every event asks; a scan of a thousand agents per event would be most of an
        // assignment's cost, and nobody can be lost before the bound.
        if now < self.agent_loss_bound {
            return;
        }
        let lost: Vec<(AgentId, String)> = self
            .fleet
            .values()
            // The cheap test first: with a healthy fleet nobody is past its grace.
            .filter(|r| self.lost_at(r) <= now && self.record_holds_proving_task(r))
            .map(|r| {
                let why = match r.disconnected_at {
                    Some(at) => format!(
                        "disconnected at {} and not back within the {} grace period",
                        timefmt::utc(at),
                        timefmt::span_ms(self.policy.agent_grace_ms)
                    ),
                    None => format!(
                        "no telemetry since {} (limit {} plus {} grace)",
                        timefmt::utc(r.last_heard_at),
                        timefmt::span_ms(self.policy.telemetry_max_age_ms),
                        timefmt::span_ms(self.policy.agent_grace_ms)
                    ),
                };
                (r.id.clone(), why)
            })
            .collect();
        for (agent, why) in lost {
            tracing::warn!(%agent, %why, "agent lost; handing its tasks to its operator's other agents");
            self.orphan_tasks_of(now, &agent, &why);
        }
        self.agent_loss_bound = self.scan_next_agent_loss().unwrap_or(UnixMillis(u64::MAX));
    }

    /// After a telemetry report: an agent whose GPU is lost, has new ECC errors or is at its
    /// temperature limit hands its proving tasks over at once.
    pub(crate) fn hand_over_if_unhealthy(&mut self, now: UnixMillis, agent: &AgentId) {
        let Some(t) = self.fleet.get(agent).and_then(|r| r.telemetry.as_ref()) else {
            return;
        };
        let Some(problem) = health_problems(t, &self.policy)
            .into_iter()
            .find(|m| m.hands_over_tasks())
        else {
            return;
        };
        if self.holds_proving_task(agent) {
            let why = format!("unhealthy: {problem}");
            tracing::warn!(%agent, %why, "agent unhealthy; handing its tasks to its operator's other agents");
            self.orphan_tasks_of(now, agent, &why);
        }
    }

    fn orphan_tasks_of(&mut self, now: UnixMillis, agent: &AgentId, why: &str) {
        let proving: Vec<TaskId> = self.fleet[agent]
            .assignments
            .iter()
            .map(|a| a.task)
            .filter(|t| matches!(self.tasks[t].state, TaskState::Proving { .. }))
            .collect();
        for id in proving {
            self.orphan(now, id, why.to_string());
        }
    }

    /// A proving task loses its agent; the stake stays bound.
    fn orphan(&mut self, now: UnixMillis, id: TaskId, why: String) {
        let TaskState::Proving { placement, .. } = self.tasks[&id].state.clone() else {
            panic!("orphan on a {} task", self.tasks[&id].state.name());
        };
        let agent = placement.agent.clone();
        self.unassign(&agent, id);
        let task = self.task_mut(id);
        task.history.push(
            now,
            TaskEvent::AgentLost {
                agent: agent.clone(),
                why: why.clone(),
            },
        );
        task.waiting_reason = format!(
            "{agent} lost ({why}); looking for another agent of {}",
            agent.operator
        );
        task.state = TaskState::Orphaned {
            placement,
            since: now,
            why: why.clone(),
        };
        self.needs_full_pass = true;
        self.emit(Effect::CancelTask {
            agent,
            task: id,
            reason: format!("{id} handed to another agent: {why}"),
        });
        self.emit_status(id);
    }

    /// `agent` says it cannot finish `task` (out of memory, GPU error): the task is handed
    /// over at once, with no slash unless nobody takes it before its due time.
    pub fn handle_task_abandoned(
        &mut self,
        now: UnixMillis,
        agent: &AgentId,
        task: TaskId,
        reason: &str,
    ) -> Result<(), DeliveryRejected> {
        self.expire(now);
        let result = match self.tasks.get(&task).map(|t| &t.state) {
            Some(TaskState::Proving { placement, .. }) if &placement.agent == agent => {
                let until = UnixMillis(now.0.saturating_add(self.policy.decline_backoff_ms));
                self.task_mut(task)
                    .declined_until
                    .insert(agent.clone(), until);
                self.orphan(now, task, format!("the agent gave it up: {reason}"));
                self.note_agent_failure(now, agent, &format!("gave up {task}: {reason}"));
                Ok(())
            }
            Some(_) => Err(DeliveryRejected::NotYourTask {
                task,
                agent: agent.clone(),
                bound_to: self.tasks[&task].bound_placement().map(|p| p.agent.clone()),
            }),
            None => Err(DeliveryRejected::UnknownTask { task }),
        };
        self.settle(now);
        result
    }

    /// A reconnecting agent gets back its orphaned tasks nobody else took, and is told to
    /// resume every task bound to it (an agent that restarted has forgotten them; one that
    /// only lost its connection ignores the ones it is still proving).
    pub(crate) fn resume_on_reconnect(&mut self, now: UnixMillis, agent: &AgentId) {
        let orphaned: Vec<TaskId> = self
            .tasks
            .values()
            .filter(|t| matches!(&t.state, TaskState::Orphaned { placement, .. } if &placement.agent == agent))
            .map(|t| t.id)
            .collect();
        for id in orphaned {
            let TaskState::Orphaned { placement, .. } = self.tasks[&id].state.clone() else {
                unreachable!("filtered on Orphaned");
            };
            tracing::info!(task = %id, %agent, "lost agent is back; it has its task again");
            self.fleet
                .get_mut(agent)
                .expect("a connecting agent is in the fleet")
                .assignments
                .push(Assignment {
                    task: id,
                    memory_bytes: placement.memory_bytes,
                    predicted_done_at: placement.predicted_done_at,
                });
            let task = self.task_mut(id);
            task.history.push(
                now,
                TaskEvent::GivenBack {
                    agent: agent.clone(),
                },
            );
            task.state = TaskState::Proving {
                placement,
                bound_at: now,
            };
            self.emit_status(id);
            self.lower_agent_loss_bound(agent);
        }
        let bound: Vec<TaskId> = self.fleet[agent]
            .assignments
            .iter()
            .map(|a| a.task)
            .collect();
        for id in bound {
            let task = &self.tasks[&id];
            if let TaskState::Proving { placement, .. } = &task.state {
                let offer = task.offer_to(placement, placement.due_at);
                self.emit(Effect::ResumeTask(offer));
            }
        }
    }

    /// Offers each orphaned task to another agent of its operator, earliest due time first.
    /// The stake is already bound, so only that operator's agents are candidates and its
    /// stake is not counted again.
    pub(crate) fn dispatch_orphans(&mut self, now: UnixMillis) {
        self.index.refresh(&self.tasks);
        // By due time, then id (the index's order).
        let orphans: Vec<TaskId> = self.index.orphaned().collect();
        for id in orphans {
            let task = &self.tasks[&id];
            let TaskState::Orphaned {
                placement: lost, ..
            } = &task.state
            else {
                unreachable!("filtered on Orphaned");
            };
            let operator: OperatorId = lost.agent.operator.clone();
            let fleet: Vec<AgentSnapshot<'_>> = self
                .fleet
                .values()
                .filter(|r| r.id.operator == operator && r.id != lost.agent)
                .map(|r| r.snapshot())
                .collect();
            let already_bound: BTreeMap<OperatorId, StakeUnits> =
                [(operator.clone(), task.spec.collateral)].into();
            let demand = task.demand();
            let decision = admit(&demand, &fleet, &already_bound, now, &self.policy);
            let lost = lost.clone();
            match decision.outcome {
                Outcome::Offer(placement) => {
                    assert_eq!(
                        placement.agent.operator, operator,
                        "handover within the operator"
                    );
                    self.offer(now, id, placement, decision.verdicts, Some(lost));
                }
                Outcome::NoFit(no_fit) => {
                    let reason = format!(
                        "{} lost; no other agent of {operator} can take it yet ({no_fit}); slashed at {} if none does",
                        lost.agent, lost.due_at
                    );
                    // Not a change to store: recomputed on the next pass after a restart.
                    self.tasks
                        .get_mut(&id)
                        .expect("orphan exists")
                        .waiting_reason = reason;
                }
            }
        }
    }
}
