//! Agents' answers to offers. Stake is bound at accept time.

use super::effect::OfferReply;
use super::error::OfferReplyRejected;
use super::history::TaskEvent;
use super::model::TaskState;
use super::CoordinatorCore;
use crate::admission::AgentId;
use proofrack_common::{TaskId, UnixMillis};

impl CoordinatorCore {
    /// `agent` accepts or declines its offer of `task`. On accept the collateral is bound
    /// from the agent's operator (active stake) and the task is proving. A decline frees the
    /// promise with no penalty and the task goes to the next fit.
    ///
    /// If the stake can no longer be bound (a withdrawal took it after the offer), the task
    /// goes back to the queue and `BindFailed` tells the agent not to prove it.
    pub fn handle_offer_reply(
        &mut self,
        now: UnixMillis,
        agent: &AgentId,
        task: TaskId,
        reply: OfferReply,
    ) -> Result<(), OfferReplyRejected> {
        self.expire(now);
        let result = self.reply(now, agent, task, reply);
        // An accept frees nothing (the promise becomes a binding, the slot stays taken), so
        // only a withdrawn offer (decline, failed bind) calls for a pass; it asks for one.
        self.settle_scoped(now, super::PassScope::OnlyIfNeeded);
        result
    }

    fn reply(
        &mut self,
        now: UnixMillis,
        agent: &AgentId,
        id: TaskId,
        reply: OfferReply,
    ) -> Result<(), OfferReplyRejected> {
        let task = self
            .tasks
            .get(&id)
            .ok_or(OfferReplyRejected::UnknownTask { task: id })?;
        let (placement, handover_from) = match &task.state {
            TaskState::Offered {
                placement,
                handover_from,
                ..
            } if &placement.agent == agent => (placement.clone(), handover_from.clone()),
            // The same accept again (its reply was lost): same answer, nothing changes twice.
            TaskState::Proving { placement, .. }
                if &placement.agent == agent && reply == OfferReply::Accept =>
            {
                return Ok(());
            }
            other => {
                return Err(OfferReplyRejected::NoOutstandingOffer {
                    task: id,
                    agent: agent.clone(),
                    state: other.name(),
                })
            }
        };
        match reply {
            OfferReply::Decline { reason } => {
                tracing::info!(task = %id, %agent, %reason, "offer declined");
                self.withdraw_offer(
                    now,
                    id,
                    TaskEvent::Declined {
                        agent: agent.clone(),
                        reason,
                    },
                );
                Ok(())
            }
            OfferReply::Accept if handover_from.is_some() => {
                let from = handover_from.expect("checked is_some").agent;
                assert_eq!(
                    self.ledger.binding(id).map(|b| &b.operator),
                    Some(&agent.operator),
                    "a handover keeps the stake bound from the same operator"
                );
                tracing::info!(task = %id, %agent, %from, "handover accepted; stake stays bound");
                let task = self.task_mut(id);
                task.history.push(
                    now,
                    TaskEvent::HandedOver {
                        from,
                        to: agent.clone(),
                    },
                );
                task.state = TaskState::Proving {
                    placement,
                    bound_at: now,
                };
                self.emit_status(id);
                self.lower_agent_loss_bound(agent);
                Ok(())
            }
            OfferReply::Accept => {
                let collateral = task.spec.collateral;
                match self.ledger_mut().bind(id, &agent.operator, collateral) {
                    Ok(()) => {
                        // Debug like the other per-task steps before the outcome: at rack
                        // scale these are tens of thousands of lines a second (the task's
                        // history keeps the step for `proofrack explain`); "proof verified"
                        // and every failure stay at info and above.
                        tracing::debug!(task = %id, %agent, %collateral, "offer accepted; stake bound");
                        let task = self.task_mut(id);
                        task.history.push(
                            now,
                            TaskEvent::StakeBound {
                                agent: agent.clone(),
                                operator: agent.operator.clone(),
                                collateral,
                            },
                        );
                        task.state = TaskState::Proving {
                            placement,
                            bound_at: now,
                        };
                        self.emit_status(id);
                        self.lower_agent_loss_bound(agent);
                        Ok(())
                    }
                    Err(source) => {
                        tracing::warn!(task = %id, %agent, error = %source, "accepted but stake not bound");
                        self.withdraw_offer(
                            now,
                            id,
                            TaskEvent::BindFailed {
                                agent: agent.clone(),
                                reason: source.to_string(),
                            },
                        );
                        Err(OfferReplyRejected::BindFailed {
                            task: id,
                            agent: agent.clone(),
                            source,
                        })
                    }
                }
            }
        }
    }
}
