//! Typed rejections of ledger operations. These are operating errors (a caller asked for
//! something the stake does not allow); broken invariants panic instead.

use proofrack_common::{OperatorId, StakeUnits, TaskId};
use thiserror::Error;

/// Why a delegation was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DelegateRejected {
    #[error("delegation to {operator} of 0 units: delegate a positive amount")]
    ZeroAmount { operator: OperatorId },
    #[error(
        "delegation of {amount} to {operator} would overflow its stake ({delegated_ever} already \
         delegated): amounts are u128 base units, check the amount's unit"
    )]
    Overflow {
        operator: OperatorId,
        amount: StakeUnits,
        delegated_ever: StakeUnits,
    },
}

/// Why a withdrawal request or completion was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WithdrawalRejected {
    #[error("operator {operator} is not in the ledger; delegate to it first")]
    UnknownOperator { operator: OperatorId },
    #[error("withdrawal of 0 units from {operator}: withdraw a positive amount")]
    ZeroAmount { operator: OperatorId },
    #[error("{}", insufficient_for_withdrawal(operator, *requested, *free, *delegated, *active, *withdrawing))]
    InsufficientFreeStake {
        operator: OperatorId,
        free: StakeUnits,
        requested: StakeUnits,
        /// The figures free stake comes from (free = delegated - active - withdrawing), so the
        /// refusal can say which of them is in the way.
        delegated: StakeUnits,
        active: StakeUnits,
        withdrawing: StakeUnits,
    },
    #[error(
        "operator {operator} has {withdrawing} pending withdrawal, cannot complete {requested}: \
         request the withdrawal first"
    )]
    NotRequested {
        operator: OperatorId,
        withdrawing: StakeUnits,
        requested: StakeUnits,
    },
}

/// The refusal of a withdrawal above free stake, with the figures and what is in the way:
/// stake bound to tasks (wait for them) or stake that is not there at all.
fn insufficient_for_withdrawal(
    operator: &OperatorId,
    requested: StakeUnits,
    free: StakeUnits,
    delegated: StakeUnits,
    active: StakeUnits,
    withdrawing: StakeUnits,
) -> String {
    let figures = format!(
        "{delegated} delegated, {active} bound to tasks, {withdrawing} already withdrawing"
    );
    let without_tasks = delegated.saturating_sub(withdrawing);
    if requested > without_tasks {
        format!(
            "operator {operator} cannot withdraw {requested}: it has {free} free stake ({figures}), \
             so even with no task running at most {without_tasks} can be withdrawn; withdraw at most {free} now"
        )
    } else {
        format!(
            "operator {operator} cannot withdraw {requested} now: it has {free} free stake ({figures}); \
             {} more becomes free as its tasks finish. Withdraw at most {free} now, or wait for its tasks to end",
            requested.saturating_sub(free)
        )
    }
}

/// Why stake could not be bound to a task.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BindRejected {
    #[error("operator {operator} is not in the ledger and has no stake to bind")]
    UnknownOperator { operator: OperatorId },
    #[error(
        "{task} already has stake bound (operator {operator}); release it before binding again"
    )]
    TaskAlreadyBound { task: TaskId, operator: OperatorId },
    #[error("binding 0 units to {task}: a task's collateral must be positive")]
    ZeroAmount { task: TaskId },
    #[error("operator {operator} has {free} free stake, {task} needs {needed}")]
    InsufficientFreeStake {
        task: TaskId,
        operator: OperatorId,
        free: StakeUnits,
        needed: StakeUnits,
    },
}

/// Why a release or slash was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum UnbindRejected {
    #[error("{task} has no stake bound; nothing to release or slash")]
    NotBound { task: TaskId },
}
