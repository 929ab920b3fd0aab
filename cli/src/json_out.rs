//! `--json`: what the client commands print for programs. The schema is documented in
//! docs/json.md and is this module's types, not the wire's: field elements are decimal
//! strings (snarkjs' convention), hashes, keys and proofs lowercase hex, instants RFC 3339
//! UTC strings, stake amounts decimal strings (u128 base units do not fit a JSON number
//! exactly), task ids `task-N`, agents `OPERATOR/NAME`. Durations are integer milliseconds in
//! fields named `*_ms`.

use proofrack_common::protocol::{
    AgentRow, AgentsView, CircuitRow, CircuitsView, LedgerView, OperatorStanding, TaskState,
    TaskStatusView,
};
use proofrack_common::timefmt::{rfc3339_option_serde, rfc3339_serde};
use proofrack_common::UnixMillis;
use proofrack_kernels::circuits::fr_to_decimal;
use proofrack_kernels::field_bytes::fr_from_le_bytes;
use serde::Serialize;

/// A public signal as snarkjs writes it (`public.json`): a decimal string. A value that is
/// not a canonical field element (never sent by a coordinator) is shown as `0x…` hex so that
/// nothing is hidden.
pub fn field_decimal(bytes: &[u8; 32]) -> String {
    fr_from_le_bytes(bytes)
        .map(|f| fr_to_decimal(&f))
        .unwrap_or_else(|| format!("0x{}", hex::encode(bytes)))
}

/// `proofrack status --json` (and `submit --wait --json`): one task.
#[derive(Serialize)]
pub struct TaskJson {
    pub task: String,
    pub circuit: String,
    /// The proving key's SHA-256, hex.
    pub key: String,
    /// The submitting client's name (its certificate's `client/NAME`).
    pub client: String,
    /// The submission's idempotency id, a decimal string (it is a random u64).
    pub request_id: String,
    pub collateral: String,
    #[serde(with = "rfc3339_serde")]
    pub submitted: UnixMillis,
    /// The client's limit for a verified proof.
    #[serde(with = "rfc3339_serde")]
    pub deadline: UnixMillis,
    /// queued, offered, proving, verifying, reassigning, verified or failed.
    pub state: &'static str,
    /// The agent offered, proving, verifying or (verified) that proved it; for
    /// `reassigning`, the agent that was lost.
    pub agent: Option<String>,
    /// The time the proving agent committed to (predicted finish plus the safety margin,
    /// never after the deadline); missing it slashes.
    #[serde(with = "rfc3339_option_serde")]
    pub due: Option<UnixMillis>,
    #[serde(with = "rfc3339_option_serde")]
    pub predicted_done: Option<UnixMillis>,
    #[serde(with = "rfc3339_option_serde")]
    pub offer_expires: Option<UnixMillis>,
    /// Why it is queued, reassigning or failed.
    pub reason: Option<String>,
    pub proving_ms: Option<u64>,
    /// The proof, arkworks-compressed (128 bytes), hex. `--out-dir` writes snarkjs files.
    pub proof: Option<String>,
    /// The public signals, decimal strings, as in snarkjs' public.json.
    pub public_signals: Option<Vec<String>>,
    pub slashed: Option<SlashJson>,
    pub history: Vec<HistoryJson>,
}

#[derive(Serialize)]
pub struct SlashJson {
    pub operator: String,
    pub amount: String,
}

#[derive(Serialize)]
pub struct HistoryJson {
    #[serde(with = "rfc3339_serde")]
    pub at: UnixMillis,
    pub what: String,
}

impl From<&TaskStatusView> for TaskJson {
    fn from(v: &TaskStatusView) -> Self {
        let mut t = TaskJson {
            task: v.task.to_string(),
            circuit: v.circuit.clone(),
            key: v.key.to_hex(),
            client: v.client.clone(),
            request_id: v.request_id.to_string(),
            collateral: v.collateral.to_string(),
            submitted: v.submitted,
            deadline: v.deadline,
            state: v.state.name(),
            agent: None,
            due: None,
            predicted_done: None,
            offer_expires: None,
            reason: None,
            proving_ms: None,
            proof: None,
            public_signals: None,
            slashed: None,
            history: v
                .history
                .iter()
                .map(|h| HistoryJson {
                    at: h.at,
                    what: h.what.clone(),
                })
                .collect(),
        };
        match &v.state {
            TaskState::Queued { reason } => t.reason = Some(reason.clone()),
            TaskState::Offered {
                agent,
                offer_expires,
            } => {
                t.agent = Some(agent.to_string());
                t.offer_expires = Some(*offer_expires);
            }
            TaskState::Proving {
                agent,
                predicted_done_at,
                due_at,
            } => {
                t.agent = Some(agent.to_string());
                t.predicted_done = Some(*predicted_done_at);
                t.due = Some(*due_at);
            }
            TaskState::Verifying { agent } => t.agent = Some(agent.to_string()),
            TaskState::Reassigning {
                lost_agent,
                due_at,
                reason,
            } => {
                t.agent = Some(lost_agent.to_string());
                t.due = Some(*due_at);
                t.reason = Some(reason.clone());
            }
            TaskState::Verified {
                agent,
                proving_ms,
                proof,
                public_outputs,
            } => {
                t.agent = Some(agent.to_string());
                t.proving_ms = Some(*proving_ms);
                t.proof = Some(hex::encode(proof));
                t.public_signals = Some(public_outputs.iter().map(field_decimal).collect());
            }
            TaskState::Failed { reason, slashed } => {
                t.reason = Some(reason.clone());
                t.slashed = slashed.as_ref().map(|s| SlashJson {
                    operator: s.operator.to_string(),
                    amount: s.amount.to_string(),
                });
            }
        }
        t
    }
}

/// `proofrack ledger --json`.
#[derive(Serialize)]
pub struct LedgerJson {
    #[serde(with = "rfc3339_serde")]
    pub as_of: UnixMillis,
    pub operators: Vec<OperatorJson>,
}

#[derive(Serialize)]
pub struct OperatorJson {
    pub operator: String,
    pub delegated: String,
    pub active: String,
    pub withdrawing: String,
    pub free: String,
    /// The part of `free` held for outstanding offers.
    pub promised_to_offers: String,
    pub withdrawn: String,
    pub slashed: String,
    pub bound_tasks: u64,
}

impl From<&LedgerView> for LedgerJson {
    fn from(v: &LedgerView) -> Self {
        LedgerJson {
            as_of: v.as_of,
            operators: v
                .operators
                .iter()
                .map(|o| OperatorJson {
                    operator: o.operator.to_string(),
                    delegated: o.delegated.to_string(),
                    active: o.active.to_string(),
                    withdrawing: o.withdrawing.to_string(),
                    free: o.free.to_string(),
                    promised_to_offers: o.promised_to_offers.to_string(),
                    withdrawn: o.withdrawn.to_string(),
                    slashed: o.slashed.to_string(),
                    bound_tasks: o.bound_tasks,
                })
                .collect(),
        }
    }
}

/// `proofrack agents --json`.
#[derive(Serialize)]
pub struct AgentsJson {
    #[serde(with = "rfc3339_serde")]
    pub as_of: UnixMillis,
    /// Agents the coordinator knows; `agents` lists at most 256 of them.
    pub agents_known: u64,
    pub agents_reporting: u64,
    pub agents: Vec<AgentJson>,
}

#[derive(Serialize)]
pub struct AgentJson {
    pub agent: String,
    pub operator: String,
    pub name: String,
    /// The conditions in words, as the table shows them (`up, drained`).
    pub state: String,
    pub connected: bool,
    pub drained: bool,
    /// Shutting down: finishes what it holds, takes nothing new.
    pub withdrawing: bool,
    /// staked, no_stake or unknown.
    pub operator_standing: OperatorStanding,
    pub backend: Option<String>,
    pub hardware: String,
    pub telemetry_age_ms: Option<u64>,
    /// Problems that keep it from new tasks; empty when healthy.
    pub health: Vec<String>,
    pub tasks: Vec<String>,
    pub max_concurrent_tasks: u32,
    pub msm_g1_points_per_sec: Option<u64>,
    pub ntt_elements_per_sec: Option<u64>,
    pub compute_memory_free_bytes: Option<u64>,
    pub reserved_memory_bytes: u64,
}

impl From<&AgentRow> for AgentJson {
    fn from(a: &AgentRow) -> Self {
        AgentJson {
            agent: a.agent.to_string(),
            operator: a.agent.operator.to_string(),
            name: a.agent.name.to_string(),
            state: a.state(),
            connected: a.connected,
            drained: a.drained,
            withdrawing: a.leaving,
            operator_standing: a.operator_standing,
            backend: a.backend.map(|b| b.to_string()),
            hardware: a.hardware.clone(),
            telemetry_age_ms: a.telemetry_age_ms,
            health: a.health.clone(),
            tasks: a.in_flight.iter().map(ToString::to_string).collect(),
            max_concurrent_tasks: a.max_concurrent_tasks,
            msm_g1_points_per_sec: a.msm_g1_points_per_sec,
            ntt_elements_per_sec: a.ntt_elements_per_sec,
            compute_memory_free_bytes: a.compute_memory_free_bytes,
            reserved_memory_bytes: a.reserved_memory_bytes,
        }
    }
}

impl From<&AgentsView> for AgentsJson {
    fn from(v: &AgentsView) -> Self {
        AgentsJson {
            as_of: v.as_of,
            agents_known: v.agents_known,
            agents_reporting: v.agents_reporting,
            agents: v.rows.iter().map(AgentJson::from).collect(),
        }
    }
}

/// `proofrack circuits --json` (a list) and `circuits register --json` (one).
#[derive(Serialize)]
pub struct CircuitJson {
    pub name: String,
    /// The proving key's SHA-256, hex: agents fetch and cache it under this id.
    pub key: String,
    pub domain_size: u64,
    pub variables: u64,
    pub public_inputs: u32,
    pub key_bytes: u64,
}

impl From<&CircuitRow> for CircuitJson {
    fn from(c: &CircuitRow) -> Self {
        CircuitJson {
            name: c.name.clone(),
            key: c.key.to_hex(),
            domain_size: c.shape.domain_size,
            variables: c.shape.num_variables,
            public_inputs: c.num_public_inputs,
            key_bytes: c.key_bytes,
        }
    }
}

#[derive(Serialize)]
pub struct CircuitsJson {
    pub circuits: Vec<CircuitJson>,
}

impl From<&CircuitsView> for CircuitsJson {
    fn from(v: &CircuitsView) -> Self {
        CircuitsJson {
            circuits: v.circuits.iter().map(CircuitJson::from).collect(),
        }
    }
}

#[derive(Serialize)]
pub struct TaskListRowJson {
    pub task: String,
    pub circuit: String,
    pub client: String,
    pub state: String,
    /// RFC 3339.
    pub submitted_at: String,
    /// RFC 3339.
    pub deadline: String,
}

#[derive(Serialize)]
pub struct TaskListJson {
    pub tasks: Vec<TaskListRowJson>,
    /// More tasks may match: ask again with `--before` `next_before`.
    pub more: bool,
    /// `task-N` where the next page starts, or null.
    pub next_before: Option<String>,
}

impl From<&proofrack_common::protocol::TaskListView> for TaskListJson {
    fn from(v: &proofrack_common::protocol::TaskListView) -> Self {
        TaskListJson {
            tasks: v
                .rows
                .iter()
                .map(|r| TaskListRowJson {
                    task: r.task.to_string(),
                    circuit: r.circuit.clone(),
                    client: r.client.clone(),
                    state: r.state.clone(),
                    submitted_at: proofrack_common::timefmt::rfc3339(r.submitted_at),
                    deadline: proofrack_common::timefmt::rfc3339(r.deadline),
                })
                .collect(),
            more: v.more,
            next_before: v.next_before.map(|t| t.to_string()),
        }
    }
}

/// Pretty JSON of any of these, for stdout.
pub fn to_text(v: &impl Serialize) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(v)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofrack_common::protocol::{HistoryLine, SlashRecord};
    use proofrack_common::{AgentId, KeyId, OperatorId, StakeUnits, TaskId};

    fn view(state: TaskState) -> TaskStatusView {
        TaskStatusView {
            task: TaskId(7),
            client: "client/cli".into(),
            request_id: u64::MAX,
            circuit: "mimc-12".into(),
            key: KeyId([0xab; 32]),
            state,
            collateral: StakeUnits(1_000_000_000_000_000_000),
            deadline: UnixMillis(1_796_292_845_337),
            submitted: UnixMillis(1_796_292_815_337),
            history: vec![HistoryLine {
                at: UnixMillis(1_796_292_815_337),
                what: "submitted".into(),
            }],
        }
    }

    #[test]
    fn a_verified_task_has_decimal_signals_hex_proof_and_rfc3339_times() {
        let mut seven = [0u8; 32];
        seven[0] = 7;
        let v = view(TaskState::Verified {
            agent: "op-a/gpu-01".parse::<AgentId>().unwrap(),
            proving_ms: 1_896,
            proof: vec![1, 2, 255],
            public_outputs: vec![seven],
        });
        let j: serde_json::Value = serde_json::to_value(TaskJson::from(&v)).unwrap();
        assert_eq!(j["task"], "task-7");
        assert_eq!(j["state"], "verified");
        assert_eq!(j["public_signals"], serde_json::json!(["7"]));
        assert_eq!(j["proof"], "0102ff");
        assert_eq!(j["key"], "ab".repeat(32));
        assert_eq!(j["deadline"], "2026-12-03T10:14:05.337Z");
        assert_eq!(j["history"][0]["at"], "2026-12-03T10:13:35.337Z");
        assert_eq!(j["collateral"], "1000000000000000000");
        assert_eq!(j["request_id"], u64::MAX.to_string());
        assert_eq!(j["agent"], "op-a/gpu-01");
        assert!(j["due"].is_null());
    }

    #[test]
    fn a_failed_task_names_its_slash() {
        let v = view(TaskState::Failed {
            reason: "missed".into(),
            slashed: Some(SlashRecord {
                operator: OperatorId::new("op-a").unwrap(),
                amount: StakeUnits(4),
            }),
        });
        let j = serde_json::to_value(TaskJson::from(&v)).unwrap();
        assert_eq!(
            j["slashed"],
            serde_json::json!({"operator": "op-a", "amount": "4"})
        );
        assert_eq!(j["reason"], "missed");
        assert!(j["public_signals"].is_null());
    }
}
