//! Operators' commands: drain an agent (no new tasks) or undrain it, and withdraw free stake
//! after the policy's delay. Each carries the client's request id: a retry after a lost reply
//! gets the stored reply and changes nothing twice.

use super::error::AdminRejected;
use super::CoordinatorCore;
use crate::admission::AgentId;
use proofrack_common::{timefmt, OperatorId, StakeUnits, UnixMillis};
use serde::{Deserialize, Serialize};

/// Operator-command replies remembered for retries; the oldest are forgotten past this (and
/// every one after `policy.request_retention_ms`). A client retries within seconds, so a few
/// thousand commands of history is plenty, and it bounds what a stream of commands (20,000
/// drains, say) can make the coordinator keep and store.
pub const MAX_ADMIN_REQUESTS: usize = 4_096;

/// The answer to an operator command, as stored for retries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminReply {
    pub ok: bool,
    pub message: String,
}

/// A withdrawal requested through the coordinator: `amount` moved from free to withdrawing
/// stake at `requested_at`, paid out (leaves the delegation) at `pays_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWithdrawal {
    pub operator: OperatorId,
    pub amount: StakeUnits,
    pub requested_at: UnixMillis,
    pub pays_at: UnixMillis,
}

impl CoordinatorCore {
    /// Drains `agent` (`drain = true`: it takes no new tasks and finishes what it holds) or
    /// lets it take tasks again. Applies to the agent whether or not it is connected, and
    /// across restarts. An agent the coordinator does not know is refused (with its
    /// operator's known agents) and nothing is stored, so drains cannot grow the state.
    pub fn handle_drain(
        &mut self,
        now: UnixMillis,
        client: &str,
        request_id: u64,
        agent: &AgentId,
        drain: bool,
    ) -> AdminReply {
        self.expire(now);
        let reply = match self.commands.get(client, request_id) {
            Some(stored) => stored.clone(),
            None if !self.knows_agent(agent) => AdminReply {
                ok: false,
                message: self.unknown_agent_message(agent),
            },
            None => {
                let changed = if drain {
                    self.drained.insert(agent.clone())
                } else {
                    self.drained.remove(agent)
                };
                if let Some(record) = self.fleet.get_mut(agent) {
                    record.draining = drain;
                }
                self.needs_full_pass = true;
                let holds = self.fleet.get(agent).map_or(0, |r| r.assignments.len());
                let message = match (drain, changed) {
                    (true, true) => {
                        format!("{agent} drained: no new tasks; it finishes the {holds} it holds")
                    }
                    (true, false) => format!("{agent} was already drained ({holds} tasks left)"),
                    (false, true) => format!("{agent} takes tasks again"),
                    (false, false) => format!("{agent} was not drained"),
                };
                tracing::info!(%agent, drain, %client, "operator command: drain");
                self.remember(now, client, request_id, AdminReply { ok: true, message })
            }
        };
        self.settle(now);
        reply
    }

    /// Moves `amount` of `operator`'s free stake to withdrawing now and pays it out after
    /// `policy.withdrawal_delay_ms` (longer than any deadline, so stake that backed a task
    /// only leaves after that task ended).
    pub fn handle_withdrawal_request(
        &mut self,
        now: UnixMillis,
        client: &str,
        request_id: u64,
        operator: &OperatorId,
        amount: StakeUnits,
    ) -> AdminReply {
        self.expire(now);
        let reply = match self.commands.get(client, request_id) {
            Some(stored) => stored.clone(),
            None => {
                let result = self
                    .ledger_mut()
                    .request_withdrawal(operator, amount)
                    .map_err(AdminRejected::from);
                let reply = match result {
                    Ok(()) => {
                        let pays_at =
                            UnixMillis(now.0.saturating_add(self.policy.withdrawal_delay_ms));
                        let id = self.next_withdrawal;
                        self.next_withdrawal += 1;
                        self.withdrawals.insert(
                            id,
                            PendingWithdrawal {
                                operator: operator.clone(),
                                amount,
                                requested_at: now,
                                pays_at,
                            },
                        );
                        tracing::info!(%operator, %amount, %pays_at, %client, "withdrawal requested");
                        AdminReply {
                            ok: true,
                            message: format!(
                                "withdrawal of {amount} from {operator} requested; it stops backing new tasks now and is paid out {} (policy.withdrawal_delay_ms, longer than any task's deadline)",
                                timefmt::when(pays_at, now)
                            ),
                        }
                    }
                    Err(e) => AdminReply {
                        ok: false,
                        message: e.to_string(),
                    },
                };
                self.remember(now, client, request_id, reply)
            }
        };
        self.settle(now);
        reply
    }

    /// Pays out every withdrawal due by `now`.
    pub(crate) fn pay_out_withdrawals(&mut self, now: UnixMillis) {
        let due: Vec<u64> = self
            .withdrawals
            .iter()
            .filter(|(_, w)| w.pays_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let w = self.withdrawals.remove(&id).expect("due withdrawal exists");
            self.dirty.meta = true;
            match self.ledger_mut().complete_withdrawal(&w.operator, w.amount) {
                Ok(()) => {
                    tracing::info!(operator = %w.operator, amount = %w.amount, "withdrawal paid out")
                }
                // Only the ledger's own checks can refuse it (the stake was set aside at the
                // request); a refusal means something else completed it, so it is dropped.
                Err(e) => {
                    tracing::error!(operator = %w.operator, amount = %w.amount, error = %e, "withdrawal could not be paid out")
                }
            }
        }
    }

    /// Remembers a command's reply for retries (bounded in count and age, see `commands.rs`).
    pub(super) fn remember(
        &mut self,
        now: UnixMillis,
        client: &str,
        request_id: u64,
        reply: AdminReply,
    ) -> AdminReply {
        let key = (client.to_string(), request_id);
        self.commands
            .remember(key, reply.clone(), now, &mut self.dirty.commands);
        reply
    }
}
