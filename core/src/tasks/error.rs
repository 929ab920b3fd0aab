//! Typed rejections of the core's events: operating errors a client, agent or stake source
//! can cause. Each message says what is wrong and what to do.

use crate::admission::AgentId;
use crate::ledger::{BindRejected, DelegateRejected, WithdrawalRejected};
use proofrack_common::{timefmt, StakeUnits, TaskId, UnixMillis};
use thiserror::Error;

/// Why a submission was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SubmitRejected {
    #[error("unknown circuit {circuit:?}; registered circuits: {known}")]
    UnknownCircuit { circuit: String, known: String },
    #[error("collateral is 0: a task must put stake at risk; submit a positive collateral")]
    ZeroCollateral,
    #[error("deadline {deadline} has already passed (now {now}); submit a later deadline")]
    DeadlinePassed {
        deadline: UnixMillis,
        now: UnixMillis,
    },
    #[error(
        "deadline is {} away but the fastest possible proof needs {} including the safety \
         margin{}; submit a later deadline",
        timefmt::span_ms(*available_ms),
        timefmt::span_ms(*needed_ms),
        fastest.as_ref().map(|a| format!(" (fastest agent: {a})")).unwrap_or_default()
    )]
    DeadlineTooShort {
        available_ms: u64,
        needed_ms: u64,
        fastest: Option<AgentId>,
    },
    #[error(
        "collateral {collateral} exceeds every operator's delegated stake (largest {largest_delegated}); \
         submit at most {largest_delegated}"
    )]
    CollateralAboveAllStake {
        collateral: StakeUnits,
        largest_delegated: StakeUnits,
    },
    #[error(
        "deadline is {} away, beyond the longest this coordinator takes ({}, \
         policy.max_deadline_ms = {max_ms}); submit a deadline of at most {}",
        timefmt::span_ms(*available_ms),
        timefmt::span_ms(*max_ms),
        timefmt::span_ms(*max_ms)
    )]
    DeadlineTooFar { available_ms: u64, max_ms: u64 },
    #[error("queue full: {capacity} tasks are unfinished; retry when some finish")]
    QueueFull { capacity: usize },
    #[error("{client} already has {held} unfinished tasks, its share of the queue (policy.max_unfinished_per_client or its entry in policy.client_unfinished_caps: {cap}); retry when some of them finish")]
    ClientShareFull {
        client: String,
        held: usize,
        cap: usize,
    },
}

/// Why a circuit could not be registered.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CircuitRejected {
    #[error("circuit name {name:?} must be 1 to {max} characters")]
    BadName { name: String, max: usize },
    #[error("{max} circuits are registered already; this limit bounds the registry")]
    TooMany { max: usize },
    #[error("unknown circuit {name:?}; list registered circuits with `proofrack circuits`")]
    Unknown { name: String },
    #[error("circuit {name} is still used by {tasks} unfinished tasks; unregister it once they are verified or failed")]
    InUse { name: String, tasks: usize },
}

/// Why an agent's connection was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AgentRejected {
    #[error("agent {agent} is already connected; close its old connection first")]
    AlreadyConnected { agent: AgentId },
    #[error("the fleet is full ({max} agents); this limit bounds the coordinator's state")]
    FleetFull { max: usize },
}

/// Why a telemetry report was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TelemetryRejected {
    #[error("agent {agent} is not connected; telemetry is only taken from connected agents")]
    NotConnected { agent: AgentId },
    #[error("telemetry seq {seq} from {agent} is not after the last one ({last}); stale or replayed report")]
    OutOfOrder { agent: AgentId, seq: u64, last: u64 },
}

/// Why an offer reply was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum OfferReplyRejected {
    #[error("{task} is unknown to the coordinator")]
    UnknownTask { task: TaskId },
    #[error(
        "{task} has no outstanding offer to {agent} (it is {state}); the offer may have expired"
    )]
    NoOutstandingOffer {
        task: TaskId,
        agent: AgentId,
        state: &'static str,
    },
    #[error("{task}: accepted by {agent} but its stake could not be bound ({source}); do not prove it, it went back to the queue")]
    BindFailed {
        task: TaskId,
        agent: AgentId,
        source: BindRejected,
    },
}

/// Why a proof delivery or verification result was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DeliveryRejected {
    #[error("{task} is unknown to the coordinator")]
    UnknownTask { task: TaskId },
    #[error("{task} is not bound to {agent}; it is bound to {}", bound_to.as_ref().map_or("no agent".to_string(), |a| a.to_string()))]
    NotYourTask {
        task: TaskId,
        agent: AgentId,
        bound_to: Option<AgentId>,
    },
    #[error("{task} is {state}, not proving; nothing to deliver")]
    NotProving { task: TaskId, state: &'static str },
    #[error("{task}: a proof from {agent} was already delivered and is being verified")]
    AlreadyDelivered { task: TaskId, agent: AgentId },
    #[error("{task}: proof from {agent} refused: {why}; the task is no longer yours")]
    TooLate {
        task: TaskId,
        agent: AgentId,
        why: String,
    },
}

/// Why an operator command (drain, withdraw) was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AdminRejected {
    #[error(transparent)]
    Withdrawal(#[from] crate::ledger::WithdrawalRejected),
    #[error(
        "withdrawals of {operator} come from the chain's StakeRegistry, not the coordinator; \
         request the unbonding there"
    )]
    WithdrawalsOnChain {
        operator: proofrack_common::OperatorId,
    },
}

/// Why a stake event was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StakeEventRejected {
    #[error(transparent)]
    Delegate(#[from] DelegateRejected),
    #[error(transparent)]
    Withdrawal(#[from] WithdrawalRejected),
}
