//! Proofs coming back: delivery (ownership checked before the shell spends time verifying)
//! and the verification result.

use super::error::DeliveryRejected;
use super::history::TaskEvent;
use super::model::TaskState;
use super::CoordinatorCore;
use crate::admission::{AgentId, Placement};
use proofrack_common::{TaskId, UnixMillis};

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

    /// Checks `task` is bound to `agent`: returns its placement and whether it is already
    /// delivered.
    fn bound_placement(
        &self,
        agent: &AgentId,
        id: TaskId,
    ) -> Result<(Placement, bool), DeliveryRejected> {
        let task = self
            .tasks
            .get(&id)
            .ok_or(DeliveryRejected::UnknownTask { task: id })?;
        let (placement, delivered) = match &task.state {
            TaskState::Proving { placement, .. } => (placement, false),
            TaskState::Verifying { placement, .. } => (placement, true),
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
            return Err(DeliveryRejected::NotYourTask {
                task: id,
                agent: agent.clone(),
                bound_to: Some(placement.agent.clone()),
            });
        }
        Ok((placement.clone(), delivered))
    }

    fn deliver(
        &mut self,
        now: UnixMillis,
        agent: &AgentId,
        id: TaskId,
    ) -> Result<(), DeliveryRejected> {
        let (placement, delivered) = self.bound_placement(agent, id)?;
        if delivered {
            return Err(DeliveryRejected::AlreadyDelivered {
                task: id,
                agent: agent.clone(),
            });
        }
        self.unassign(agent, id);
        let task = self.tasks.get_mut(&id).expect("task exists");
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
        let (placement, delivered) = self.bound_placement(agent, id)?;
        if !delivered {
            self.unassign(agent, id);
        }
        if valid {
            let binding = self
                .ledger
                .release(id)
                .expect("a proving or verifying task has stake bound");
            tracing::info!(task = %id, %agent, proving_ms, predicted_ms = placement.predicted_proving_ms, released = %binding.amount, "proof verified");
            self.learn_speed(now, agent, id, proving_ms);
            let task = self.tasks.get_mut(&id).expect("task exists");
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
            let outcome = self
                .ledger
                .slash(id, self.policy.invalid_proof_slash_bps)
                .expect("a proving or verifying task has stake bound");
            tracing::warn!(task = %id, %agent, slashed = %outcome.slashed, "invalid proof; operator slashed");
            let task = self.tasks.get_mut(&id).expect("task exists");
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
