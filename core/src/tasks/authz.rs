//! Who may do what: the coordinator's one authorization table.
//!
//! [`authorize`] is a pure function of who asks (the identity in its certificate), what it
//! asks ([`Action`]), whose resource it touches ([`Owner`]) and how the deployment keeps
//! stake ([`StakeAuthority`]). The server calls it in two places only, both before anything
//! else of a stream is acted on: when a stream is opened (its kind) and at the top of a
//! client request (before any upload byte is read); views call it per row to decide what a
//! reader sees. Nothing here does I/O.
//!
//! | action | requester `client/N` | operator admin `operator/OP/admin/N` | deployment admin `admin/N` | agent |
//! |---|---|---|---|---|
//! | open an agent stream (control, key, witness, delivery) | no | no | no | yes |
//! | open a client request stream | yes | yes | yes | no |
//! | submit a task | yes | no | no | no |
//! | read or watch a task | its own | tasks offered to or held by OP's agents | all | no |
//! | ledger, circuits list, agents table | yes | yes | yes | no |
//! | an agent's hardware details | no | OP's agents | all | no |
//! | drain or undrain an agent | no | OP's agents | no | no |
//! | withdraw stake | no | OP's (not in chain mode) | no | no |
//! | reset an agent's circuit breaker | no | OP's agents | no | no |
//! | register or unregister a circuit | no | no | yes | no |
//! | read the audit log | no | OP's lines | all | no |
//!
//! A refused read of a task answers exactly like an unknown task (the server's job), so a
//! task's existence does not leak. Deployment admins do not drain or withdraw: stake and
//! agents are the operators'; a deployment stops a rogue agent by revoking its certificate.

use crate::admission::AgentId;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::StreamKind;
use proofrack_common::OperatorId;
use std::collections::BTreeSet;
use std::fmt;

/// What an identity asks to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    OpenStream(StreamKind),
    Submit,
    ReadTask,
    /// List tasks; the rows are then only those the asker may `ReadTask`.
    ListTasks,
    ReadLedger,
    ListAgents,
    ReadAgentHardware,
    ListCircuits,
    Drain,
    Undrain,
    Withdraw,
    ResetBreaker,
    RegisterCircuit,
    UnregisterCircuit,
    ReadAudit,
}

impl Action {
    /// Actions that change what operators or the deployment own; each attempt, allowed or
    /// not, goes into the audit log.
    pub fn is_audited(self) -> bool {
        matches!(
            self,
            Action::Drain
                | Action::Undrain
                | Action::Withdraw
                | Action::ResetBreaker
                | Action::RegisterCircuit
                | Action::UnregisterCircuit
        )
    }

    /// A short name, for log fields and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Action::OpenStream(_) => "open_stream",
            Action::Submit => "submit",
            Action::ReadTask => "read_task",
            Action::ListTasks => "list_tasks",
            Action::ReadLedger => "read_ledger",
            Action::ListAgents => "list_agents",
            Action::ReadAgentHardware => "read_agent_hardware",
            Action::ListCircuits => "list_circuits",
            Action::Drain => "drain",
            Action::Undrain => "undrain",
            Action::Withdraw => "withdraw",
            Action::ResetBreaker => "reset_breaker",
            Action::RegisterCircuit => "register_circuit",
            Action::UnregisterCircuit => "unregister_circuit",
            Action::ReadAudit => "read_audit",
        }
    }

    /// What was asked, in words, for refusals ("withdraw op-b's stake").
    fn describe(self, owner: &Owner<'_>) -> String {
        let of = |what: &str| match owner {
            Owner::Operator(op) => format!("{what} of {op}"),
            _ => what.to_string(),
        };
        match self {
            Action::OpenStream(kind) => format!("open {}", kind.describe()),
            Action::Submit => "submit tasks".into(),
            Action::ReadTask => "read this task".into(),
            Action::ListTasks => "list tasks".into(),
            Action::ReadLedger => "read the ledger".into(),
            Action::ListAgents => "list agents".into(),
            Action::ReadAgentHardware => of("read the hardware details of the agents"),
            Action::ListCircuits => "list circuits".into(),
            Action::Drain => of("drain the agents"),
            Action::Undrain => of("undrain the agents"),
            Action::Withdraw => of("withdraw the stake"),
            Action::ResetBreaker => of("reset the circuit breakers of the agents"),
            Action::RegisterCircuit => "register circuits".into(),
            Action::UnregisterCircuit => "unregister circuits".into(),
            Action::ReadAudit => match owner {
                Owner::Operator(op) => format!("read the audit log of {op}"),
                _ => "read the whole audit log".into(),
            },
        }
    }
}

/// Whose resource an action touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner<'a> {
    /// Nobody's in particular: a new submission, the ledger, the circuits list, the agents
    /// table, a stream.
    Nobody,
    /// An operator's: its agents, its stake, its audit lines.
    Operator(&'a OperatorId),
    /// A task: submitted by the requester whose key is `client` (see [`requester_key`]),
    /// offered to or held by agents of `operators`.
    Task {
        client: &'a str,
        operators: &'a BTreeSet<OperatorId>,
    },
    /// The deployment's: the circuit registry, the whole audit log.
    Deployment,
}

/// Where stake comes from, which decides who handles withdrawals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StakeAuthority {
    /// The coordinator's configuration: operator admins withdraw through the coordinator.
    Coordinator,
    /// A chain contract: withdrawals are its business. `registry` names it for the message.
    Chain { registry: String },
}

/// The kind of certificate an action needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Agent,
    Requester,
    /// An admin of this operator (any operator's when `None`).
    OperatorAdmin(Option<OperatorId>),
    DeploymentAdmin,
    /// The requester that submitted the task, or an admin who may see it.
    TaskReader,
    /// Not a role: the stake source, not the coordinator, decides (chain mode).
    StakeSource,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Agent => f.write_str("an agent certificate (operator/OPERATOR/agent/NAME)"),
            Role::Requester => f.write_str("a requester client certificate (client/NAME)"),
            Role::OperatorAdmin(Some(op)) => {
                write!(f, "an operator admin of {op} (operator/{op}/admin/NAME)")
            }
            Role::OperatorAdmin(None) => {
                f.write_str("an operator admin (operator/OPERATOR/admin/NAME)")
            }
            Role::DeploymentAdmin => f.write_str("a deployment admin (admin/NAME)"),
            Role::TaskReader => f.write_str(
                "the client that submitted it, an operator admin whose agents ran it, or a deployment admin",
            ),
            Role::StakeSource => f.write_str("the stake source"),
        }
    }
}

/// A refusal: who asked, what, and what it would take. Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub identity: String,
    pub action: String,
    pub role_needed: Role,
    /// The whole reason after "may not …": the role needed, or where to go instead.
    pub needs: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} may not {}: {}",
            self.identity, self.action, self.needs
        )
    }
}

/// The key under which a requester's tasks and request ids are kept: a client's name (as
/// before admins existed), any other identity's path (which contains `/`, so the two never
/// collide).
pub fn requester_key(identity: &Identity) -> String {
    match identity {
        Identity::Client { name } => name.clone(),
        other => other.to_string(),
    }
}

/// The table. `Ok(())`: allowed.
pub fn authorize(
    stake: &StakeAuthority,
    who: &Identity,
    action: Action,
    owner: Owner<'_>,
) -> Result<(), Refusal> {
    let refuse = |role: Role| -> Result<(), Refusal> {
        Err(Refusal {
            identity: who.to_string(),
            action: action.describe(&owner),
            needs: format!("that needs {role}"),
            role_needed: role,
        })
    };
    let admin_of =
        |op: &OperatorId| matches!(who, Identity::OperatorAdmin { operator, .. } if operator == op);
    let is = |kind: fn(&Identity) -> bool| kind(who);
    let requester = |i: &Identity| matches!(i, Identity::Client { .. });
    let deployment_admin = |i: &Identity| matches!(i, Identity::Admin { .. });
    let agent = |i: &Identity| matches!(i, Identity::Agent { .. });
    let any_admin =
        |i: &Identity| matches!(i, Identity::Admin { .. } | Identity::OperatorAdmin { .. });
    // Operator-owned actions need an admin of the owner; the owner is always given.
    let operator_admin_only = |role_op: Option<&OperatorId>| match role_op {
        Some(op) if admin_of(op) => Ok(()),
        op => refuse(Role::OperatorAdmin(op.cloned())),
    };
    let owner_operator = match owner {
        Owner::Operator(op) => Some(op),
        _ => None,
    };
    match action {
        Action::OpenStream(StreamKind::ClientRequest) => {
            if is(requester) || is(any_admin) {
                Ok(())
            } else {
                refuse(Role::Requester)
            }
        }
        Action::OpenStream(_) => {
            if is(agent) {
                Ok(())
            } else {
                refuse(Role::Agent)
            }
        }
        Action::Submit => {
            if is(requester) {
                Ok(())
            } else {
                refuse(Role::Requester)
            }
        }
        Action::ReadTask => {
            let allowed = match (who, owner) {
                (Identity::Admin { .. }, _) => true,
                (Identity::Client { name }, Owner::Task { client, .. }) => name == client,
                (Identity::OperatorAdmin { operator, .. }, Owner::Task { operators, .. }) => {
                    operators.contains(operator)
                }
                _ => false,
            };
            if allowed {
                Ok(())
            } else {
                refuse(Role::TaskReader)
            }
        }
        Action::ReadLedger | Action::ListAgents | Action::ListCircuits | Action::ListTasks => {
            if is(requester) || is(any_admin) {
                Ok(())
            } else {
                refuse(Role::Requester)
            }
        }
        Action::ReadAgentHardware => match owner_operator {
            _ if is(deployment_admin) => Ok(()),
            Some(op) if admin_of(op) => Ok(()),
            op => refuse(Role::OperatorAdmin(op.cloned())),
        },
        Action::Drain | Action::Undrain | Action::ResetBreaker => {
            operator_admin_only(owner_operator)
        }
        Action::Withdraw => {
            operator_admin_only(owner_operator)?;
            match stake {
                StakeAuthority::Coordinator => Ok(()),
                StakeAuthority::Chain { registry } => Err(Refusal {
                    identity: who.to_string(),
                    action: action.describe(&owner),
                    role_needed: Role::StakeSource,
                    needs: format!(
                        "stake comes from the chain, so withdrawals are the StakeRegistry \
                         contract's business: call requestWithdrawal(operator, amount) on \
                         {registry} from the operator's address, then completeWithdrawal after \
                         the unbonding delay; the coordinator follows the chain"
                    ),
                }),
            }
        }
        Action::RegisterCircuit | Action::UnregisterCircuit => {
            if is(deployment_admin) {
                Ok(())
            } else {
                refuse(Role::DeploymentAdmin)
            }
        }
        Action::ReadAudit => match owner_operator {
            _ if is(deployment_admin) => Ok(()),
            Some(op) if admin_of(op) => Ok(()),
            Some(op) => refuse(Role::OperatorAdmin(Some(op.clone()))),
            None => refuse(Role::DeploymentAdmin),
        },
    }
}

/// The operator whose agent `agent` is: the owner of every per-agent action.
pub fn agent_owner(agent: &AgentId) -> Owner<'_> {
    Owner::Operator(&agent.operator)
}

#[cfg(test)]
mod tests;
