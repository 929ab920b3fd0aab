//! What the core asks its shell to do, drained with `poll_effect`.

use super::model::TaskStatus;
use crate::admission::AgentId;
use proofrack_common::telemetry::ProofShape;
use proofrack_common::{KeyId, OperatorId, StakeUnits, TaskId, UnixMillis};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An offer of a task to an agent. The agent answers with
/// [`handle_offer_reply`](super::CoordinatorCore::handle_offer_reply) before `offer_expires`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub agent: AgentId,
    pub task: TaskId,
    pub circuit: String,
    /// The proving key the agent needs (it fetches it by id if not cached).
    pub key_id: KeyId,
    pub shape: ProofShape,
    pub inputs: Arc<[u8]>,
    /// Stake bound from the agent's operator when it accepts.
    pub collateral: StakeUnits,
    /// The client's deadline.
    pub deadline: UnixMillis,
    /// When the proof must be delivered by to avoid a slash (predicted finish plus the
    /// safety margin, never after `deadline`).
    pub due_at: UnixMillis,
    /// Accepting after this is refused; the offer goes to the next fit.
    pub offer_expires: UnixMillis,
    pub predicted_proving_ms: u64,
}

/// An agent's answer to an offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfferReply {
    Accept,
    Decline { reason: String },
}

/// One thing for the shell to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send this offer to its agent.
    SendOffer(Offer),
    /// Tell `agent` to stop working on `task` (its offer expired or its due time passed).
    CancelTask {
        agent: AgentId,
        task: TaskId,
        reason: String,
    },
    /// Tell a (re)connected agent that `task` is bound to it: start proving it unless it
    /// already is. No answer is expected; the stake is bound already.
    ResumeTask(Offer),
    /// Tell clients watching `task` its new status.
    TaskUpdate {
        task: TaskId,
        client: String,
        request_id: u64,
        status: TaskStatus,
    },
    /// The core slashed `operator` for `task`; a chain stake source sends it on chain.
    /// `(task, attempt)` names the slash: the `attempt`-th slash of this task (0 first), so
    /// the same decision replayed is recognised and never sent twice.
    StakeSlashed {
        task: TaskId,
        attempt: u32,
        operator: OperatorId,
        amount: StakeUnits,
        reason: SlashReason,
    },
}

/// Why the core slashed an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlashReason {
    MissedDueTime,
    InvalidProof,
}
