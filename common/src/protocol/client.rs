//! Client ↔ coordinator messages: submissions, task status, and the ledger, agents and
//! circuits tables. The views mirror the coordinator core's state for display; the core
//! owns the authoritative state.

use super::agent::FieldBytes;
use super::{check_circuit_name, check_len, check_text, Bounded, ProtocolError};
use super::{MAX_HARDWARE_SUMMARY_BYTES, MAX_HEALTH_ENTRIES, MAX_HEALTH_ENTRY_BYTES};
use super::{MAX_HISTORY_ENTRIES, MAX_IN_FLIGHT_PER_AGENT, MAX_PROOF_BYTES, MAX_PUBLIC_INPUTS};
use super::{MAX_TASK_INPUTS_BYTES, MAX_VIEW_ROWS};
use crate::amount::StakeUnits;
use crate::identity::Identity;
use crate::ids::{KeyId, OperatorId, TaskId};
use crate::telemetry::{ProofShape, ProverBackend};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// Submit a proof task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitRequest {
    pub circuit: String,
    pub inputs: Vec<u8>,
    /// Stake the proving operator must bind; slashed if the proof is late.
    pub collateral: StakeUnits,
    /// Time allowed from acceptance of the submission to a verified proof.
    pub deadline_ms: u64,
    /// Chosen by the client; a repeated (client identity, request_id) returns the task of the
    /// first submission instead of creating another, so a retry after a lost reply is safe.
    pub request_id: u64,
}

/// First frame of a client stream (inside `StreamOpen::Client`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    Submit(SubmitRequest),
    Status {
        task: TaskId,
    },
    /// `Status` replies on every change until the task is terminal, then the stream finishes.
    Watch {
        task: TaskId,
    },
    Ledger,
    Agents,
    Circuits,
    /// Operator command: `drain = true` stops new tasks to `agent` (it finishes what it
    /// holds); `false` lets it take tasks again. A repeated `request_id` gets the first reply.
    Drain {
        request_id: u64,
        agent: AgentRef,
        drain: bool,
    },
    /// Operator command: withdraw `amount` of `operator`'s free stake after the coordinator's
    /// withdrawal delay. A repeated `request_id` gets the first reply.
    Withdraw {
        request_id: u64,
        operator: crate::OperatorId,
        amount: crate::StakeUnits,
    },
    /// Register a circom circuit: the zkey and `.r1cs` follow as payloads. Answered with
    /// `Registered` or `Rejected`.
    RegisterCircuit(super::RegisterCircuit),
    /// Submit a circom task: the `.wtns` follows as a payload. Answered like `Submit`.
    SubmitWitness(super::SubmitWitness),
    /// Several submissions in one request (at most [`MAX_SUBMIT_BATCH`]), committed together;
    /// answered by one [`ClientResponse::Batch`] with one answer per submission, in order.
    SubmitBatch(Vec<SubmitRequest>),
    /// Deployment admins: remove a registered circom circuit (refused while an unfinished
    /// task uses it). Answered with `Admin`.
    UnregisterCircuit {
        name: String,
    },
    /// Operator admins: close an agent's circuit breaker so it is offered tasks again. A
    /// repeated `request_id` gets the first reply. Answered with `Admin`.
    ResetBreaker {
        request_id: u64,
        agent: AgentRef,
    },
    /// The audit log of administrators' actions, oldest first: the newest `limit` lines (at
    /// most [`super::MAX_AUDIT_VIEW_ROWS`]) older than `before` (all if `None`), of
    /// `operator` if given. Deployment admins read every line, operator admins their
    /// operator's. Answered with `Audit`.
    Audit {
        before: Option<u64>,
        operator: Option<OperatorId>,
        limit: u32,
    },
    /// A circuit's Groth16 verifying key (built-in or registered), answered with
    /// [`ClientResponse::VerificationKey`]: anyone can check the proofs of that circuit
    /// without trusting the coordinator (`proofrack circuits vk NAME` writes snarkjs'
    /// `verification_key.json`).
    VerificationKey {
        circuit: String,
    },
    /// The tasks the caller may read, newest first: at most `limit` rows (and at most
    /// [`MAX_VIEW_ROWS`]) with ids below `before` (all if `None`), in state `state` if given
    /// (a name [`TaskState::name`] gives). A requester sees its own tasks, an operator admin
    /// the tasks its operator's agents were offered or ran, a deployment admin all. Answered
    /// with `Tasks`.
    Tasks {
        state: Option<String>,
        before: Option<TaskId>,
        limit: u32,
    },
    /// A task's full record (`proofrack explain`): every admission decision with the agents
    /// rejected and why, stake bound, predicted against actual proving time, failures and
    /// their causes. Read like `Status` (someone else's task answers like an unknown one).
    /// Answered with `Explanation`.
    Explain {
        task: TaskId,
    },
}

/// The state names a task can be listed by ([`TaskState::name`]).
pub const TASK_STATE_NAMES: [&str; 7] = [
    "queued",
    "offered",
    "proving",
    "verifying",
    "verified",
    "failed",
    "reassigning",
];

/// `Ok` if `name` is one of [`TASK_STATE_NAMES`]; otherwise what is wrong and what to write
/// (the name cut to 64 bytes).
pub fn check_task_state(name: &str) -> Result<(), String> {
    if TASK_STATE_NAMES.contains(&name) {
        return Ok(());
    }
    let mut shown = name.to_string();
    super::truncate_utf8(&mut shown, 64);
    Err(format!(
        "{shown:?} is not a task state; use one of {}",
        TASK_STATE_NAMES.join(", ")
    ))
}

/// Largest explanation sent, in each of its two forms: a task's record with every agent's
/// verdict for each admission decision is tens of KiB at rack scale; both forms together stay
/// well inside one frame ([`crate::framing::MAX_FRAME_BYTES`], 1 MiB).
pub const MAX_EXPLANATION_BYTES: usize = 384 << 10;

/// One task in a [`TaskListView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskListRow {
    pub task: TaskId,
    pub circuit: String,
    /// Who submitted it (the client's name, or an admin's identity path).
    pub client: String,
    /// [`TaskState::name`].
    pub state: String,
    pub submitted_at: UnixMillis,
    pub deadline: UnixMillis,
}

/// The answer to [`ClientRequest::Tasks`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskListView {
    pub rows: Vec<TaskListRow>,
    /// More tasks may match: ask again with `before` = `next_before`.
    pub more: bool,
    /// Where the next page starts (exclusive): the last row's id, or where the coordinator
    /// stopped looking (it looks at a bounded number of tasks per request, so a page can hold
    /// fewer rows than asked, even none). `None` when nothing is left.
    pub next_before: Option<TaskId>,
}

/// Most submissions in one [`ClientRequest::SubmitBatch`]: enough that a busy client's
/// stream and commit costs are shared by hundreds of tasks, few enough that the batch's
/// reply (one answer each) stays far below the frame limit.
pub const MAX_SUBMIT_BATCH: usize = 256;

/// Coordinator → client.
// Each response is built once and serialised; boxing the status view would only make the
// lead's code noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientResponse {
    Submitted {
        task: TaskId,
    },
    /// The submission was refused (e.g. no operator could ever cover the collateral).
    Rejected {
        reason: String,
    },
    Status(TaskStatusView),
    Ledger(LedgerView),
    Agents(AgentsView),
    Circuits(CircuitsView),
    Error(ProtocolError),
    /// The answer to an operator command (`Drain`, `Withdraw`).
    Admin {
        ok: bool,
        message: String,
    },
    /// A circom circuit is registered (or was already, with the same key).
    Registered(CircuitRow),
    /// The answers to a [`ClientRequest::SubmitBatch`], one per submission, in order
    /// (`Submitted`, `Rejected` or `Error`).
    Batch(Vec<ClientResponse>),
    Audit(super::AuditView),
    VerificationKey(VerificationKeyView),
    Tasks(TaskListView),
    /// `text`: the record for people; `json`: the same as JSON (docs/json.md).
    Explanation {
        text: String,
        json: String,
    },
}

/// A circuit's verifying key as the coordinator verifies its proofs with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationKeyView {
    pub circuit: String,
    /// The proving key it belongs to (the SHA-256 of the key agents prove with).
    pub key: KeyId,
    /// arkworks' compressed `VerifyingKey<Bn254>` (at most [`MAX_VERIFYING_KEY_BYTES`]).
    pub vk: Vec<u8>,
}

/// A compressed BN254 verifying key: α (32), β, γ, δ (64 each) and one G1 point (32) per
/// public input plus one, with an 8-byte length; bounded by [`MAX_PUBLIC_INPUTS`].
pub const MAX_VERIFYING_KEY_BYTES: usize = 32 + 3 * 64 + 8 + (MAX_PUBLIC_INPUTS + 1) * 32;

/// An agent on the wire: the same type as the coordinator core's agent identity.
pub use crate::ids::AgentId as AgentRef;

impl crate::ids::AgentId {
    /// The agent behind an identity, if it is one.
    pub fn from_identity(identity: &Identity) -> Option<AgentRef> {
        match identity {
            Identity::Agent { operator, name } => Some(AgentRef {
                operator: operator.clone(),
                name: name.clone(),
            }),
            _ => None,
        }
    }
    pub fn to_identity(&self) -> Identity {
        Identity::Agent {
            operator: self.operator.clone(),
            name: self.name.clone(),
        }
    }
}

/// Stake slashed when a task failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashRecord {
    pub operator: OperatorId,
    pub amount: StakeUnits,
}

/// Where a task is (mirrors the coordinator core's `TaskStatus`, plus the proof).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Waiting for an agent whose capacity and operator stake fit; `reason` says what is
    /// missing (e.g. "no agent with 12 GiB free", "free stake 40 < collateral 100").
    Queued { reason: String },
    Offered {
        agent: AgentRef,
        offer_expires: UnixMillis,
    },
    /// Accepted: `agent.operator`'s collateral is bound until the proof is verified; missing
    /// `due_at` slashes it.
    Proving {
        agent: AgentRef,
        predicted_done_at: UnixMillis,
        due_at: UnixMillis,
    },
    /// Delivered; the coordinator is checking the proof.
    Verifying { agent: AgentRef },
    Verified {
        agent: AgentRef,
        proving_ms: u64,
        proof: Vec<u8>,
        public_outputs: Vec<FieldBytes>,
    },
    Failed {
        reason: String,
        slashed: Option<SlashRecord>,
    },
    /// `lost_agent` was lost (gone past its grace period, stale or unhealthy); its
    /// operator's collateral stays bound while another of its agents is sought, until
    /// `due_at`.
    Reassigning {
        lost_agent: AgentRef,
        due_at: UnixMillis,
        reason: String,
    },
}

impl TaskState {
    /// No further change will happen.
    pub fn is_terminal(&self) -> bool {
        matches!(self, TaskState::Verified { .. } | TaskState::Failed { .. })
    }
    pub fn name(&self) -> &'static str {
        match self {
            TaskState::Queued { .. } => "queued",
            TaskState::Offered { .. } => "offered",
            TaskState::Proving { .. } => "proving",
            TaskState::Verifying { .. } => "verifying",
            TaskState::Verified { .. } => "verified",
            TaskState::Failed { .. } => "failed",
            TaskState::Reassigning { .. } => "reassigning",
        }
    }
}

/// One line of a task's history (the core's `HistoryEntry`, rendered with `Display`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryLine {
    pub at: UnixMillis,
    pub what: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatusView {
    pub task: TaskId,
    /// The submitting client's identity (`client/NAME`) and its request id.
    pub client: String,
    pub request_id: u64,
    pub circuit: String,
    pub key: KeyId,
    pub state: TaskState,
    pub collateral: StakeUnits,
    /// Absolute deadline for a verified proof.
    pub deadline: UnixMillis,
    pub submitted: UnixMillis,
    /// Oldest first, at most [`MAX_HISTORY_ENTRIES`] (the first and the latest are kept).
    pub history: Vec<HistoryLine>,
}

/// One operator's stake (the core's `OperatorRow`). `free = delegated - active -
/// withdrawing`; `promised_to_offers` is the part of `free` held for outstanding offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorLedgerRow {
    pub operator: OperatorId,
    pub delegated: StakeUnits,
    pub active: StakeUnits,
    pub withdrawing: StakeUnits,
    pub free: StakeUnits,
    pub promised_to_offers: StakeUnits,
    pub withdrawn: StakeUnits,
    pub slashed: StakeUnits,
    pub bound_tasks: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerView {
    pub as_of: UnixMillis,
    pub operators: Vec<OperatorLedgerRow>,
}

/// Whether an agent's operator can back tasks, as the coordinator's ledger says. Only an
/// agent of a `Staked` operator can ever be offered a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorStanding {
    /// In the ledger with stake delegated (some of it may be bound or withdrawing).
    Staked,
    /// In the ledger with nothing delegated (registered with 0, or everything withdrawn or
    /// slashed): no task can be offered until stake is delegated.
    NoStake,
    /// Not in the ledger: its agents can never be offered a task until the operator is added
    /// (`[[operators]]` in coordinator.toml, or registered on the chain).
    Unknown,
}

impl OperatorStanding {
    /// What an agent of an operator in this standing is told when it connects (and logs),
    /// `None` when nothing is wrong.
    pub fn notice(self, operator: &OperatorId) -> Option<String> {
        match self {
            OperatorStanding::Staked => None,
            OperatorStanding::NoStake => Some(format!(
                "operator {operator} has no stake delegated on this coordinator: this agent gets no task until stake is delegated to {operator}"
            )),
            OperatorStanding::Unknown => Some(format!(
                "operator {operator} is not in this coordinator's ledger: this agent can never be offered a task until {operator} is added ([[operators]] in coordinator.toml, or registered on the chain)"
            )),
        }
    }
}

/// One agent (the core's `AgentRow`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRow {
    pub agent: AgentRef,
    pub connected: bool,
    /// Drained by its operator (`proofrack drain`): no new tasks; it finishes what it holds.
    pub drained: bool,
    /// The agent said it is shutting down (withdrawing from the fleet): no new tasks; it
    /// finishes and delivers what it holds, then leaves.
    pub leaving: bool,
    /// Whether its operator can back tasks at all.
    pub operator_standing: OperatorStanding,
    /// `None` until the agent's hello.
    pub backend: Option<ProverBackend>,
    /// e.g. `cuda: NVIDIA H100 (sm_90); GPU 0 NVIDIA H100 78.1 GiB free of 79.6 GiB, 41 °C`
    /// (at most [`MAX_HARDWARE_SUMMARY_BYTES`]).
    pub hardware: String,
    /// `None` before the first report.
    pub telemetry_age_ms: Option<u64>,
    /// Problems that exclude it from admission; empty when healthy (at most
    /// [`MAX_HEALTH_ENTRIES`] of [`MAX_HEALTH_ENTRY_BYTES`]).
    pub health: Vec<String>,
    /// Its offered and proving tasks.
    pub in_flight: Vec<TaskId>,
    pub max_concurrent_tasks: u32,
    pub msm_g1_points_per_sec: Option<u64>,
    pub ntt_elements_per_sec: Option<u64>,
    pub compute_memory_free_bytes: Option<u64>,
    /// Memory set aside for its in-flight tasks.
    pub reserved_memory_bytes: u64,
}

impl AgentRow {
    /// Its state in words; see [`agent_state_words`].
    pub fn state(&self) -> String {
        agent_state_words(
            self.connected,
            self.drained,
            self.leaving,
            self.operator_standing,
        )
    }
}

/// An agent's state in words, every condition that matters: `up` or `down`, then any of
/// `drained`, `withdrawing`, `unknown operator`, `operator has no stake`. The agents table,
/// its JSON and the fleet page all say it this way.
pub fn agent_state_words(
    connected: bool,
    drained: bool,
    leaving: bool,
    standing: OperatorStanding,
) -> String {
    let mut words = vec![if connected { "up" } else { "down" }];
    if drained {
        words.push("drained");
    }
    if leaving {
        words.push("withdrawing");
    }
    match standing {
        OperatorStanding::Staked => {}
        OperatorStanding::NoStake => words.push("operator has no stake"),
        OperatorStanding::Unknown => words.push("unknown operator"),
    }
    words.join(", ")
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentsView {
    pub as_of: UnixMillis,
    /// At most [`MAX_VIEW_ROWS`], in agent id order.
    pub rows: Vec<AgentRow>,
    /// Agents the coordinator knows, listed or not (a rack can hold more than one response
    /// lists; the fleet page and `/metrics` show them all).
    pub agents_known: u64,
    /// Of those, connected with telemetry.
    pub agents_reporting: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitRow {
    pub name: String,
    pub key: KeyId,
    pub shape: ProofShape,
    pub num_public_inputs: u32,
    pub key_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitsView {
    pub circuits: Vec<CircuitRow>,
}

impl Bounded for ClientRequest {
    fn check_bounds(&self) -> Result<(), String> {
        match self {
            ClientRequest::Submit(s) => {
                check_circuit_name(&s.circuit)?;
                check_len("submit.inputs", s.inputs.len(), MAX_TASK_INPUTS_BYTES)
            }
            ClientRequest::SubmitBatch(batch) => {
                check_len("submit_batch", batch.len(), MAX_SUBMIT_BATCH)?;
                for s in batch {
                    check_circuit_name(&s.circuit)?;
                    check_len("submit.inputs", s.inputs.len(), MAX_TASK_INPUTS_BYTES)?;
                }
                Ok(())
            }
            ClientRequest::Status { .. }
            | ClientRequest::Watch { .. }
            | ClientRequest::Ledger
            | ClientRequest::Agents
            | ClientRequest::Circuits
            | ClientRequest::Drain { .. }
            | ClientRequest::Withdraw { .. }
            | ClientRequest::ResetBreaker { .. }
            | ClientRequest::Audit { .. } => Ok(()),
            ClientRequest::UnregisterCircuit { name } => check_circuit_name(name),
            ClientRequest::VerificationKey { circuit } => check_circuit_name(circuit),
            ClientRequest::Tasks { state, .. } => match state {
                Some(name) => check_task_state(name).map_err(|e| format!("tasks.state {e}")),
                None => Ok(()),
            },
            ClientRequest::Explain { .. } => Ok(()),
            ClientRequest::RegisterCircuit(r) => r.check_bounds(),
            ClientRequest::SubmitWitness(s) => s.check_bounds(),
        }
    }
}

impl Bounded for TaskStatusView {
    fn check_bounds(&self) -> Result<(), String> {
        check_text("status.circuit", &self.circuit)?;
        check_text("status.client", &self.client)?;
        check_len("status.history", self.history.len(), MAX_HISTORY_ENTRIES)?;
        for e in &self.history {
            check_text("status.history entry", &e.what)?;
        }
        match &self.state {
            TaskState::Queued { reason }
            | TaskState::Failed { reason, .. }
            | TaskState::Reassigning { reason, .. } => check_text("status.reason", reason),
            TaskState::Verified {
                proof,
                public_outputs,
                ..
            } => {
                check_len("status.proof", proof.len(), MAX_PROOF_BYTES)?;
                check_len(
                    "status.public_outputs",
                    public_outputs.len(),
                    MAX_PUBLIC_INPUTS,
                )
            }
            TaskState::Offered { .. } | TaskState::Proving { .. } | TaskState::Verifying { .. } => {
                Ok(())
            }
        }
    }
}

impl Bounded for ClientResponse {
    fn check_bounds(&self) -> Result<(), String> {
        match self {
            ClientResponse::Submitted { .. } => Ok(()),
            ClientResponse::Rejected { reason } => check_text("rejected.reason", reason),
            ClientResponse::Batch(answers) => {
                check_len("batch", answers.len(), MAX_SUBMIT_BATCH)?;
                for a in answers {
                    match a {
                        ClientResponse::Submitted { .. }
                        | ClientResponse::Rejected { .. }
                        | ClientResponse::Error(_) => a.check_bounds()?,
                        _ => return Err("a batch answers only submissions".into()),
                    }
                }
                Ok(())
            }
            ClientResponse::Status(v) => v.check_bounds(),
            ClientResponse::Ledger(v) => {
                check_len("ledger.operators", v.operators.len(), MAX_VIEW_ROWS)
            }
            ClientResponse::Agents(v) => {
                check_len("agents.rows", v.rows.len(), MAX_VIEW_ROWS)?;
                for r in &v.rows {
                    check_len(
                        "agents.hardware",
                        r.hardware.len(),
                        MAX_HARDWARE_SUMMARY_BYTES,
                    )?;
                    check_len(
                        "agents.in_flight",
                        r.in_flight.len(),
                        MAX_IN_FLIGHT_PER_AGENT,
                    )?;
                    check_len("agents.health", r.health.len(), MAX_HEALTH_ENTRIES)?;
                    for h in &r.health {
                        check_len("agents.health entry", h.len(), MAX_HEALTH_ENTRY_BYTES)?;
                    }
                }
                Ok(())
            }
            ClientResponse::Circuits(v) => {
                check_len("circuits", v.circuits.len(), MAX_VIEW_ROWS)?;
                v.circuits
                    .iter()
                    .try_for_each(|c| check_circuit_name(&c.name))
            }
            ClientResponse::Error(e) => e.check_bounds(),
            ClientResponse::Admin { message, .. } => check_text("admin.message", message),
            ClientResponse::Registered(row) => check_circuit_name(&row.name),
            ClientResponse::Audit(v) => v.check_bounds(),
            ClientResponse::VerificationKey(v) => {
                check_circuit_name(&v.circuit)?;
                check_len("verification_key.vk", v.vk.len(), MAX_VERIFYING_KEY_BYTES)
            }
            ClientResponse::Tasks(v) => {
                check_len("tasks.rows", v.rows.len(), MAX_VIEW_ROWS)?;
                for r in &v.rows {
                    check_circuit_name(&r.circuit)?;
                    check_text("tasks.client", &r.client)?;
                    check_text("tasks.state", &r.state)?;
                }
                Ok(())
            }
            ClientResponse::Explanation { text, json } => {
                check_len("explanation.text", text.len(), MAX_EXPLANATION_BYTES)?;
                check_len("explanation.json", json.len(), MAX_EXPLANATION_BYTES)
            }
        }
    }
}
