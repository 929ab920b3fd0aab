//! Proofs coming back: delivery (ownership checked before the shell spends time verifying)
//! and the verification result.

use super::error::DeliveryRejected;
use super::history::TaskEvent;
use super::model::TaskState;
use super::CoordinatorCore;
use crate::admission::{AgentId, Placement};
use proofrack_common::{timefmt, TaskId, UnixMillis};

/// Where a bound task is when its proof arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Proving,
    Orphaned,
    Verifying,
}

impl CoordinatorCore {
    /// `agent` delivered a proof for `task`; the shell will verify it. Refused unless the task
    /// is bound to this agent. From here the due time no longer runs and the agent's slot and
    /// memory are free; the stake stays bound until the verdict.
    pub fn handle_proof_delivered(
        &mut self,
        now: UnixMillis,
        agent: &AgentId,
        task: TaskId,
    ) -> Result<(), DeliveryRejected> {
        self.expire(now);
        let result = self.deliver(now, agent, task);
        self.settle(now);
        result
    }

    /// The shell's verdict on `agent`'s proof for `task` (`proving_ms` as the agent measured
    /// it). Valid: the stake is released and the task is verified. Invalid: the operator is
    /// slashed `policy.invalid_proof_slash_bps` of the collateral, the rest released, and the
    /// task is offered again, to another agent if one fits. Also accepted straight from
    /// proving (delivery implied).
    pub fn handle_proof_verified(
        &mut self,
        now: UnixMillis,
        agent: &AgentId,
        task: TaskId,
        valid: bool,
        proving_ms: u64,
    ) -> Result<(), DeliveryRejected> {
        self.expire(now);
        let result = self.judge(now, agent, task, valid, proving_ms);
        self.settle(now);
        result
    }

    /// Checks `task` is bound to `agent`: returns its placement and where it is. A proof for
    /// a task the agent lost (slashed, or handed to another agent) is refused with why.
    fn bound_placement(
        &self,
        agent: &AgentId,
        id: TaskId,
    ) -> Result<(Placement, Phase), DeliveryRejected> {
        let task = self
            .tasks
            .get(&id)
            .ok_or(DeliveryRejected::UnknownTask { task: id })?;
        let (placement, phase) = match &task.state {
            TaskState::Proving { placement, .. } => (placement, Phase::Proving),
            // Its agent was declared lost but delivers after all: the stake is still its
            // operator's, so the proof counts.
            TaskState::Orphaned { placement, .. } => (placement, Phase::Orphaned),
            TaskState::Verifying { placement, .. } => (placement, Phase::Verifying),
            _ if self.lost_it(task, agent) => return Err(self.refusal(task, agent, None)),
            TaskState::Queued | TaskState::Offered { .. } => {
                return Err(DeliveryRejected::NotYourTask {
                    task: id,
                    agent: agent.clone(),
                    bound_to: None,
                })
            }
            other => {
                return Err(DeliveryRejected::NotProving {
                    task: id,
                    state: other.name(),
                })
            }
        };
        if &placement.agent != agent {
            return Err(self.refusal(task, agent, Some(placement.agent.clone())));
        }
        Ok((placement.clone(), phase))
    }

    /// Whether `agent` had `task` and lost it (slashed or handed over).
    fn lost_it(&self, task: &super::model::Task, agent: &AgentId) -> bool {
        task.history.entries().iter().any(|e| match &e.event {
            TaskEvent::DueTimeMissed { agent: a, .. }
            | TaskEvent::InvalidProof { agent: a, .. } => a == agent,
            TaskEvent::HandedOver { from, .. } => from == agent,
            _ => false,
        })
    }

    /// Why `agent` may not deliver `task`: the latest way it lost the task, if it did.
    fn refusal(
        &self,
        task: &super::model::Task,
        agent: &AgentId,
        bound_to: Option<AgentId>,
    ) -> DeliveryRejected {
        let why = task
            .history
            .entries()
            .iter()
            .rev()
            .find_map(|e| match &e.event {
                TaskEvent::DueTimeMissed {
                    agent: a,
                    due_at,
                    slashed,
                    ..
                } if a == agent => Some(format!(
                    "its due time ({}) passed and {slashed} of {}'s stake was slashed",
                    timefmt::after(*due_at, task.submitted_at, "submission"),
                    agent.operator
                )),
                TaskEvent::InvalidProof {
                    agent: a, slashed, ..
                } if a == agent => Some(format!(
                    "its earlier proof was invalid and {slashed} was slashed"
                )),
                TaskEvent::HandedOver { from, to } if from == agent => Some(format!(
                    "it was handed over to {to} after the agent was lost"
                )),
                _ => None,
            });
        match why {
            Some(why) => DeliveryRejected::TooLate {
                task: task.id,
                agent: agent.clone(),
                why,
            },
            None => DeliveryRejected::NotYourTask {
                task: task.id,
                agent: agent.clone(),
                bound_to,
            },
        }
    }

    fn deliver(
        &mut self,
        now: UnixMillis,
        agent: &AgentId,
        id: TaskId,
    ) -> Result<(), DeliveryRejected> {
        let (placement, phase) = self.bound_placement(agent, id)?;
        match phase {
            Phase::Verifying => {
                return Err(DeliveryRejected::AlreadyDelivered {
                    task: id,
                    agent: agent.clone(),
                })
            }
            Phase::Proving => self.unassign(agent, id),
            Phase::Orphaned => {}
        }
        let task = self.task_mut(id);
        task.history.push(
            now,
            TaskEvent::Delivered {
                agent: agent.clone(),
            },
        );
        task.state = TaskState::Verifying {
            placement,
            delivered_at: now,
        };
        self.emit_status(id);
        Ok(())
    }

    fn judge(
        &mut self,
        now: UnixMillis,
        agent: &AgentId,
        id: TaskId,
        valid: bool,
        proving_ms: u64,
    ) -> Result<(), DeliveryRejected> {
        let (placement, phase) = self.bound_placement(agent, id)?;
        if phase == Phase::Proving {
            self.unassign(agent, id);
        }
        if valid {
            let binding = self
                .ledger_mut()
                .release(id)
                .expect("a proving or verifying task has stake bound");
            tracing::info!(task = %id, %agent, proving_ms, predicted_ms = placement.predicted_proving_ms, released = %binding.amount, "proof verified");
            self.learn_speed(now, agent, id, proving_ms);
            self.note_agent_success(now, agent);
            let task = self.task_mut(id);
            task.history.push(
                now,
                TaskEvent::Verified {
                    agent: agent.clone(),
                    predicted_proving_ms: placement.predicted_proving_ms,
                    actual_proving_ms: proving_ms,
                },
            );
            task.state = TaskState::Verified {
                agent: agent.clone(),
                proving_ms,
                at: now,
            };
            self.finish(id);
        } else {
            let bps = self.policy.invalid_proof_slash_bps;
            let outcome = self
                .ledger_mut()
                .slash(id, bps)
                .expect("a proving or verifying task has stake bound");
            tracing::warn!(task = %id, %agent, slashed = %outcome.slashed, "invalid proof; operator slashed");
            self.emit_slash(id, &outcome, super::SlashReason::InvalidProof);
            self.note_agent_failure(now, agent, &format!("invalid proof for {id}"));
            let task = self.task_mut(id);
            task.failed_on.insert(agent.clone());
            task.history.push(
                now,
                TaskEvent::InvalidProof {
                    agent: agent.clone(),
                    slashed: outcome.slashed,
                    released: outcome.released,
                },
            );
            self.requeue_or_fail(now, id, format!("invalid proof from {agent}"));
        }
        Ok(())
    }
}
