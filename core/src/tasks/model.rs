//! A task: what the client asked for, where it is in its life cycle, and its history.

use super::history::History;
use crate::admission::{AgentId, Placement, TaskDemand};
use proofrack_common::telemetry::ProofShape;
use proofrack_common::{KeyId, StakeUnits, TaskId, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What a client submits. The shell fills `client` from the client's certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// A circuit registered with [`CoordinatorCore::register_circuit`](super::CoordinatorCore::register_circuit).
    pub circuit: String,
    /// The circuit's inputs as the agent's prover reads them; passed through untouched.
    pub inputs: Arc<[u8]>,
    /// Stake the proving operator binds for this task; slashed in part on failure.
    pub collateral: StakeUnits,
    /// Absolute time by which the client needs the proof.
    pub deadline: UnixMillis,
    /// The submitting client's name (for updates and the record).
    pub client: String,
    /// The client's id for this request; a repeated (client, request id) returns the same task.
    pub request_id: u64,
}

/// Where a task is. Stake is bound (active) in `Proving`, `Verifying`, `Orphaned` and in an
/// `Offered` handover; in `Queued` and a plain `Offered` it is at most promised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TaskState {
    /// Waiting for an agent that fits.
    Queued,
    /// Offered to `placement.agent`; its collateral is promised (counted against the
    /// operator's free stake for admission) but not yet bound.
    Offered {
        placement: Placement,
        expires_at: UnixMillis,
        /// A handover: the stake is already bound (from the same operator) and this is the
        /// lost agent's placement, restored if the offer is declined or expires.
        handover_from: Option<Placement>,
    },
    /// Bound to an agent that was lost (gone past the grace period, stale, unhealthy, or it
    /// gave the task up): the stake stays bound while another agent of the same operator is
    /// sought. Slashed at `placement.due_at` if none takes it; given back if the lost agent
    /// returns first.
    Orphaned {
        placement: Placement,
        since: UnixMillis,
        why: String,
    },
    /// Accepted: the collateral is bound (active stake) until the proof is judged.
    Proving {
        placement: Placement,
        bound_at: UnixMillis,
    },
    /// The proof arrived and the shell is verifying it; stake stays bound, the agent's slot
    /// and memory are free.
    Verifying {
        placement: Placement,
        delivered_at: UnixMillis,
    },
    Verified {
        agent: AgentId,
        proving_ms: u64,
        at: UnixMillis,
    },
    Failed {
        cause: String,
        at: UnixMillis,
    },
}

impl TaskState {
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self, TaskState::Verified { .. } | TaskState::Failed { .. })
    }

    /// When a finished task finished.
    pub(crate) fn finished_at(&self) -> Option<UnixMillis> {
        match self {
            TaskState::Verified { at, .. } | TaskState::Failed { at, .. } => Some(*at),
            _ => None,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Offered { .. } => "offered",
            TaskState::Orphaned { .. } => "reassigning",
            TaskState::Proving { .. } => "proving",
            TaskState::Verifying { .. } => "verifying",
            TaskState::Verified { .. } => "verified",
            TaskState::Failed { .. } => "failed",
        }
    }
}

/// A task's status as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    /// Waiting for an agent; `reason` says why none fits yet.
    Queued {
        reason: String,
    },
    Offered {
        agent: AgentId,
        expires_at: UnixMillis,
        /// A handover: the collateral is already bound from the agent's operator.
        stake_bound: bool,
    },
    /// Bound to `lost_agent`'s operator, being handed to another of its agents.
    Reassigning {
        lost_agent: AgentId,
        due_at: UnixMillis,
        why: String,
    },
    /// Bound: the agent's operator has `collateral` at stake until `due_at`.
    Proving {
        agent: AgentId,
        predicted_done_at: UnixMillis,
        due_at: UnixMillis,
    },
    Verifying {
        agent: AgentId,
    },
    Verified {
        agent: AgentId,
        proving_ms: u64,
    },
    Failed {
        cause: String,
    },
}

/// A task held by the core; also its durable row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Task {
    pub(crate) id: TaskId,
    pub(crate) spec: TaskSpec,
    pub(crate) key_id: KeyId,
    pub(crate) shape: ProofShape,
    pub(crate) submitted_at: UnixMillis,
    pub(crate) state: TaskState,
    /// Agents that declined or let an offer expire, skipped until the given time.
    pub(crate) declined_until: BTreeMap<AgentId, UnixMillis>,
    /// Agents that delivered an invalid proof or missed their due time for this task.
    pub(crate) failed_on: BTreeSet<AgentId>,
    /// Why it is waiting, when queued (the last admission summary).
    pub(crate) waiting_reason: String,
    pub(crate) history: History,
    /// Slashes of this task so far; names the next one (see `Effect::StakeSlashed`).
    pub(crate) slashes: u32,
}

impl Task {
    /// What this task asks of an agent, as admission reads it.
    pub(crate) fn demand(&self) -> TaskDemand<'_> {
        TaskDemand {
            task: self.id,
            shape: self.shape,
            collateral: self.spec.collateral,
            deadline: self.spec.deadline,
            declined_until: &self.declined_until,
            failed_on: &self.failed_on,
        }
    }

    /// The offer (or resume) of this task to `placement.agent`.
    pub(crate) fn offer_to(
        &self,
        placement: &Placement,
        offer_expires: UnixMillis,
    ) -> super::effect::Offer {
        super::effect::Offer {
            agent: placement.agent.clone(),
            task: self.id,
            circuit: self.spec.circuit.clone(),
            key_id: self.key_id,
            shape: self.shape,
            inputs: self.spec.inputs.clone(),
            collateral: self.spec.collateral,
            deadline: self.spec.deadline,
            due_at: placement.due_at,
            offer_expires,
            predicted_proving_ms: placement.predicted_proving_ms,
        }
    }

    /// The stake binding this task's state implies, if any: (agent whose operator is bound,
    /// collateral).
    pub(crate) fn bound_placement(&self) -> Option<&Placement> {
        match &self.state {
            TaskState::Proving { placement, .. }
            | TaskState::Verifying { placement, .. }
            | TaskState::Orphaned { placement, .. } => Some(placement),
            TaskState::Offered {
                handover_from: Some(from),
                ..
            } => Some(from),
            _ => None,
        }
    }

    pub(crate) fn status(&self) -> TaskStatus {
        match &self.state {
            TaskState::Queued => TaskStatus::Queued {
                reason: self.waiting_reason.clone(),
            },
            TaskState::Offered {
                placement,
                expires_at,
                handover_from,
            } => TaskStatus::Offered {
                agent: placement.agent.clone(),
                expires_at: *expires_at,
                stake_bound: handover_from.is_some(),
            },
            TaskState::Orphaned { placement, why, .. } => TaskStatus::Reassigning {
                lost_agent: placement.agent.clone(),
                due_at: placement.due_at,
                why: why.clone(),
            },
            TaskState::Proving { placement, .. } => TaskStatus::Proving {
                agent: placement.agent.clone(),
                predicted_done_at: placement.predicted_done_at,
                due_at: placement.due_at,
            },
            TaskState::Verifying { placement, .. } => TaskStatus::Verifying {
                agent: placement.agent.clone(),
            },
            TaskState::Verified {
                agent, proving_ms, ..
            } => TaskStatus::Verified {
                agent: agent.clone(),
                proving_ms: *proving_ms,
            },
            TaskState::Failed { cause, .. } => TaskStatus::Failed {
                cause: cause.clone(),
            },
        }
    }
}
