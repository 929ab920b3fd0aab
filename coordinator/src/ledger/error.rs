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
    #[error(
        "operator {operator} has {free} free stake, cannot withdraw {requested}: only stake not \
         bound to tasks can be withdrawn; wait for tasks to finish"
    )]
    InsufficientFreeStake {
        operator: OperatorId,
        free: StakeUnits,
        requested: StakeUnits,
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
