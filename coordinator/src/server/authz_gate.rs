//! Where the server applies the authorization table (`tasks::authz`): once when a stream is
//! opened, and at the top of every client request, before any of its upload is read. A
//! refusal is logged at INFO with the identity, the action and the role needed, counted for
//! `/metrics`, recorded in the audit log when the action is an administrator's, and changes
//! nothing else. A task the asker may not read is answered exactly like an unknown task.

use super::shared::Shared;
use crate::admission::AgentId;
use crate::tasks::authz::{self, Action, Owner, Refusal};
use proofrack_common::identity::{Identity, PeerCertInfo};
use proofrack_common::protocol::{
    AuditOutcome, ClientRequest, ClientResponse, ProtocolError, StreamKind,
};
use proofrack_common::{OperatorId, TaskId};
use std::collections::BTreeSet;

/// Whether `peer` may open a stream of `kind`.
pub(super) fn may_open(
    shared: &Shared,
    peer: &PeerCertInfo,
    kind: StreamKind,
) -> Result<(), Refusal> {
    let decision = authz::authorize(
        &shared.stake_authority(),
        &peer.identity,
        Action::OpenStream(kind),
        Owner::Nobody,
    );
    if let Err(r) = &decision {
        log_refusal(shared, r, Action::OpenStream(kind));
    }
    decision
}

/// What a client request asks, and of whose resource, as the table sees it. Task reads
/// need the task's owner from the core.
enum Asked {
    Plain(Action, OwnerKey),
    TaskRead(TaskId),
}

/// An [`Owner`] that owns its data (the request outlives the borrow).
enum OwnerKey {
    Nobody,
    Operator(OperatorId),
    Deployment,
}

impl OwnerKey {
    fn owner(&self) -> Owner<'_> {
        match self {
            OwnerKey::Nobody => Owner::Nobody,
            OwnerKey::Operator(op) => Owner::Operator(op),
            OwnerKey::Deployment => Owner::Deployment,
        }
    }
}

fn asked(who: &Identity, req: &ClientRequest) -> Asked {
    use OwnerKey::*;
    let plain = Asked::Plain;
    match req {
        ClientRequest::Submit(_)
        | ClientRequest::SubmitBatch(_)
        | ClientRequest::SubmitWitness(_) => plain(Action::Submit, Nobody),
        ClientRequest::Status { task }
        | ClientRequest::Watch { task }
        | ClientRequest::Explain { task } => Asked::TaskRead(*task),
        // The rows are cut to the tasks the asker may read (`may_read_task`).
        ClientRequest::Tasks { .. } => plain(Action::ListTasks, Nobody),
        ClientRequest::Ledger => plain(Action::ReadLedger, Nobody),
        ClientRequest::Agents => plain(Action::ListAgents, Nobody),
        // A verification key is as public as the circuit list: anyone who may see a proof
        // may check it without trusting the coordinator.
        ClientRequest::Circuits | ClientRequest::VerificationKey { .. } => {
            plain(Action::ListCircuits, Nobody)
        }
        ClientRequest::Drain { agent, drain, .. } => plain(
            if *drain {
                Action::Drain
            } else {
                Action::Undrain
            },
            Operator(agent.operator.clone()),
        ),
        ClientRequest::Withdraw { operator, .. } => {
            plain(Action::Withdraw, Operator(operator.clone()))
        }
        ClientRequest::ResetBreaker { agent, .. } => {
            plain(Action::ResetBreaker, Operator(agent.operator.clone()))
        }
        ClientRequest::RegisterCircuit(_) => plain(Action::RegisterCircuit, Deployment),
        ClientRequest::UnregisterCircuit { .. } => plain(Action::UnregisterCircuit, Deployment),
        ClientRequest::Audit { operator, .. } => match (operator, who) {
            (Some(op), _) => plain(Action::ReadAudit, Operator(op.clone())),
            // An operator admin's log is its operator's lines.
            (None, Identity::OperatorAdmin { operator, .. }) => {
                plain(Action::ReadAudit, Operator(operator.clone()))
            }
            (None, _) => plain(Action::ReadAudit, Deployment),
        },
    }
}

/// An administrator's action in words, for the audit log, and the operator it concerns.
pub(super) fn audit_subject(req: &ClientRequest) -> Option<(String, Option<OperatorId>)> {
    Some(match req {
        ClientRequest::Drain { agent, drain, .. } => (
            format!("{} {agent}", if *drain { "drain" } else { "undrain" }),
            Some(agent.operator.clone()),
        ),
        ClientRequest::Withdraw {
            operator, amount, ..
        } => (
            format!("withdraw {amount} from {operator}"),
            Some(operator.clone()),
        ),
        ClientRequest::ResetBreaker { agent, .. } => (
            format!("reset the circuit breaker of {agent}"),
            Some(agent.operator.clone()),
        ),
        ClientRequest::RegisterCircuit(r) => (format!("register circuit {}", r.name), None),
        ClientRequest::UnregisterCircuit { name } => (format!("unregister circuit {name}"), None),
        _ => return None,
    })
}

/// The table at the top of a client request. `Err` is the reply to send instead (the request
/// is then not read further).
pub(super) async fn admit_request(
    shared: &Shared,
    peer: &PeerCertInfo,
    req: &ClientRequest,
) -> Result<(), ClientResponse> {
    let stake = shared.stake_authority();
    let who = &peer.identity;
    let (action, decision) = match asked(who, req) {
        Asked::Plain(action, owner) => {
            (action, authz::authorize(&stake, who, action, owner.owner()))
        }
        Asked::TaskRead(task) => {
            // Both an unknown task and someone else's take this one path to the same reply.
            let owner = shared
                .read_acknowledged(|core, _| core.task_owner(task))
                .await;
            let unknown = || ClientResponse::Error(ProtocolError::UnknownTask { task });
            let Some((client, operators)) = owner else {
                return Err(unknown());
            };
            let decision = may_read_task(&stake, who, &client, &operators);
            if let Err(r) = &decision {
                log_refusal(shared, r, Action::ReadTask);
                return Err(unknown());
            }
            return Ok(());
        }
    };
    let Err(refusal) = decision else {
        return Ok(());
    };
    log_refusal(shared, &refusal, action);
    if action.is_audited() {
        if let Some((what, operator)) = audit_subject(req) {
            let message = refusal.to_string();
            shared
                .apply(|core, now| {
                    core.record_audit(now, who, what, operator, AuditOutcome::Refused, message)
                })
                .await;
        }
    }
    Err(ClientResponse::Error(forbidden(&refusal)))
}

/// The table's answer for reading a task owned by `client` and run by `operators`.
pub(super) fn may_read_task(
    stake: &authz::StakeAuthority,
    who: &Identity,
    client: &str,
    operators: &BTreeSet<OperatorId>,
) -> Result<(), Refusal> {
    authz::authorize(
        stake,
        who,
        Action::ReadTask,
        Owner::Task { client, operators },
    )
}

/// Whether `who` sees `agent`'s hardware details.
pub(super) fn sees_hardware(
    stake: &authz::StakeAuthority,
    who: &Identity,
    agent: &AgentId,
) -> bool {
    authz::authorize(
        stake,
        who,
        Action::ReadAgentHardware,
        authz::agent_owner(agent),
    )
    .is_ok()
}

pub(super) fn forbidden(r: &Refusal) -> ProtocolError {
    ProtocolError::Forbidden {
        identity: r.identity.clone(),
        action: r.action.clone(),
        needs: r.needs.clone(),
    }
    .truncated()
}

fn log_refusal(shared: &Shared, r: &Refusal, action: Action) {
    shared.count_refusal(action.name());
    tracing::info!(
        identity = %r.identity,
        action = action.name(),
        asked = %r.action,
        role_needed = %r.role_needed,
        "refused by the authorization table"
    );
}
