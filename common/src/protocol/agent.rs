//! Agent ↔ coordinator messages: the control stream, key fetches and proof deliveries.

use super::{check_circuit_name, check_len, check_text, Bounded, ProtocolError};
use super::{MAX_CACHED_KEYS, MAX_PROOF_BYTES, MAX_PUBLIC_INPUTS, MAX_TASK_INPUTS_BYTES};
use crate::amount::StakeUnits;
use crate::ids::{KeyId, TaskId};
use crate::telemetry::{Calibration, ProofShape, ProverBackend, Telemetry};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// A BN254 scalar field element: 32 bytes, little-endian canonical form (arkworks
/// `serialize_compressed` of `Fr`).
pub type FieldBytes = [u8; 32];

/// What an agent can do, sent once in its hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCapabilities {
    pub backend: ProverBackend,
    pub gpus: u32,
    /// Tasks the agent proves at once (at most [`super::MAX_IN_FLIGHT_PER_AGENT`]).
    pub max_concurrent_tasks: u32,
    /// Proving keys already on the agent's disk, so the coordinator can prefer it for them.
    pub cached_keys: Vec<KeyId>,
}

/// First frame of the control stream (inside `StreamOpen::Control`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHello {
    /// Must equal the `OpenFrame`'s version.
    pub protocol_version: u32,
    /// e.g. `proofrack-agent 0.1.0 (git abc123)`.
    pub agent_build: String,
    pub capabilities: AgentCapabilities,
    /// Throughput measured at start-up with the real kernels.
    pub calibration: Calibration,
}

/// The coordinator accepts an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol_version: u32,
    pub coordinator_build: String,
    /// The agent's SPIFFE ID as the coordinator read it from the certificate.
    pub agent: String,
    /// How often the agent should send `Telemetry`. Offers go to agents whose telemetry is
    /// recent, so a silent agent stops getting work.
    pub telemetry_interval_ms: u64,
    /// What the agent should know and log (at most [`MAX_WELCOME_NOTICES`]), e.g. that its
    /// operator is unknown to the ledger or has no stake, so it will not be offered tasks.
    pub notices: Vec<String>,
}

/// Notices in one [`Welcome`]: one per condition the coordinator checks at connect.
pub const MAX_WELCOME_NOTICES: usize = 4;

/// A task offered to an agent. The agent answers with `OfferReply` before `offer_expires`;
/// accepting binds `collateral` of its operator's stake until the proof is verified or
/// `deadline` passes (then the stake is slashed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOffer {
    pub task: TaskId,
    /// Fetch with a `FetchKey` stream unless cached; its bytes hash to this id.
    pub key: KeyId,
    pub circuit: String,
    pub shape: ProofShape,
    /// The task's inputs (at most [`MAX_TASK_INPUTS_BYTES`]).
    pub inputs: Vec<u8>,
    pub collateral: StakeUnits,
    pub deadline: UnixMillis,
    pub offer_expires: UnixMillis,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OfferDecision {
    Accept,
    Decline { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferReply {
    pub task: TaskId,
    pub decision: OfferDecision,
}

/// Coordinator → agent on the control stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CoordinatorToAgent {
    /// First message after a good hello.
    Welcome(Welcome),
    Offer(TaskOffer),
    /// Stop working on `task` (deadline passed, offer withdrawn, task failed elsewhere).
    Cancelled {
        task: TaskId,
        reason: String,
    },
    /// The hello was refused (then the stream is finished) or a later message was bad.
    Error(ProtocolError),
    /// After a (re)connect: this task is bound to you (its stake is active). Prove and
    /// deliver it unless you already are; no reply. An agent that restarted has forgotten
    /// it; one that only lost its connection is still on it.
    Resume(TaskOffer),
}

/// Agent → coordinator on the control stream, after the hello.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AgentToCoordinator {
    Telemetry(Telemetry),
    OfferReply(OfferReply),
    /// The agent gives up on an accepted task (proving failed, out of memory); the
    /// coordinator decides what that costs the operator.
    TaskFailed {
        task: TaskId,
        reason: String,
    },
    /// The agent is shutting down: finish what is in flight, offer nothing new.
    Draining {
        reason: String,
    },
    /// Several offer replies at once (at most [`MAX_OFFER_REPLIES`]), e.g. an agent that
    /// found several offers waiting; handled as one event batch and committed together.
    OfferReplies(Vec<OfferReply>),
}

/// Most replies in one [`AgentToCoordinator::OfferReplies`]: an agent holds at most 128
/// tasks (the coordinator's per-agent limit), so more would answer offers never made.
pub const MAX_OFFER_REPLIES: usize = 128;

/// First frame of a key fetch stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchKey {
    pub key: KeyId,
}

/// Coordinator's answer to `FetchKey`. After `Found` the key follows as a payload
/// (`framing::recv_payload_to`); its SHA-256 is the key id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyReply {
    Found { key: KeyId, total_len: u64 },
    Error(ProtocolError),
}

/// First frame of a proof delivery stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverProof {
    pub task: TaskId,
    /// Compressed Groth16 proof (arkworks `serialize_compressed`, 128 B for BN254).
    pub proof: Vec<u8>,
    pub public_inputs: Vec<FieldBytes>,
    /// Wall time the agent spent proving, for calibration drift and the status view.
    pub proving_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryOutcome {
    /// Verified; the collateral is released.
    Accepted,
    /// Not verified, late, or not this agent's task.
    Rejected { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryVerdict {
    pub task: TaskId,
    pub outcome: DeliveryOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryReply {
    Verdict(DeliveryVerdict),
    Error(ProtocolError),
}

impl Bounded for AgentHello {
    fn check_bounds(&self) -> Result<(), String> {
        check_text("agent_build", &self.agent_build)?;
        check_text("calibration.backend_name", &self.calibration.backend_name)?;
        check_len(
            "capabilities.cached_keys",
            self.capabilities.cached_keys.len(),
            MAX_CACHED_KEYS,
        )?;
        check_len(
            "capabilities.max_concurrent_tasks",
            self.capabilities.max_concurrent_tasks as usize,
            super::MAX_IN_FLIGHT_PER_AGENT,
        )?;
        check_len(
            "capabilities.gpus",
            self.capabilities.gpus as usize,
            super::MAX_GPUS_PER_AGENT,
        )
    }
}

impl Bounded for TaskOffer {
    fn check_bounds(&self) -> Result<(), String> {
        check_circuit_name(&self.circuit)?;
        check_len("offer.inputs", self.inputs.len(), MAX_TASK_INPUTS_BYTES)
    }
}

impl Bounded for CoordinatorToAgent {
    fn check_bounds(&self) -> Result<(), String> {
        match self {
            CoordinatorToAgent::Welcome(w) => {
                check_text("welcome.coordinator_build", &w.coordinator_build)?;
                check_text("welcome.agent", &w.agent)?;
                check_len("welcome.notices", w.notices.len(), MAX_WELCOME_NOTICES)?;
                w.notices
                    .iter()
                    .try_for_each(|n| check_text("welcome.notice", n))
            }
            CoordinatorToAgent::Offer(o) | CoordinatorToAgent::Resume(o) => o.check_bounds(),
            CoordinatorToAgent::Cancelled { reason, .. } => check_text("cancelled.reason", reason),
            CoordinatorToAgent::Error(e) => e.check_bounds(),
        }
    }
}

impl Bounded for AgentToCoordinator {
    fn check_bounds(&self) -> Result<(), String> {
        match self {
            AgentToCoordinator::Telemetry(t) => t.check_bounds(),
            AgentToCoordinator::OfferReply(OfferReply {
                decision: OfferDecision::Decline { reason },
                ..
            }) => check_text("offer_reply.reason", reason),
            AgentToCoordinator::OfferReply(_) => Ok(()),
            AgentToCoordinator::OfferReplies(replies) => {
                check_len("offer_replies", replies.len(), MAX_OFFER_REPLIES)?;
                for r in replies {
                    if let OfferDecision::Decline { reason } = &r.decision {
                        check_text("offer_reply.reason", reason)?;
                    }
                }
                Ok(())
            }
            AgentToCoordinator::TaskFailed { reason, .. }
            | AgentToCoordinator::Draining { reason } => check_text("reason", reason),
        }
    }
}

impl Bounded for FetchKey {
    fn check_bounds(&self) -> Result<(), String> {
        Ok(())
    }
}

impl Bounded for KeyReply {
    fn check_bounds(&self) -> Result<(), String> {
        match self {
            KeyReply::Found { total_len, .. } => {
                if *total_len > super::MAX_PROVING_KEY_BYTES {
                    return Err(format!(
                        "key of {total_len} bytes is above the {}-byte limit",
                        super::MAX_PROVING_KEY_BYTES
                    ));
                }
                Ok(())
            }
            KeyReply::Error(e) => e.check_bounds(),
        }
    }
}

impl Bounded for DeliverProof {
    fn check_bounds(&self) -> Result<(), String> {
        check_len("proof", self.proof.len(), MAX_PROOF_BYTES)?;
        check_len("public_inputs", self.public_inputs.len(), MAX_PUBLIC_INPUTS)
    }
}

impl Bounded for DeliveryReply {
    fn check_bounds(&self) -> Result<(), String> {
        match self {
            DeliveryReply::Verdict(DeliveryVerdict {
                outcome: DeliveryOutcome::Rejected { reason },
                ..
            }) => check_text("verdict.reason", reason),
            DeliveryReply::Verdict(_) => Ok(()),
            DeliveryReply::Error(e) => e.check_bounds(),
        }
    }
}
