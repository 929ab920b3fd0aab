//! The core's views translated into the wire's views, cut to the protocol's bounds.

use super::shared::Shared;
use crate::tasks::{AgentRow, OperatorRow, TaskEvent, TaskStatus, TaskView};
use proofrack_common::protocol::{
    self as wire, truncate_utf8, AgentsView, CircuitRow, CircuitsView, HistoryLine, LedgerView,
    OperatorLedgerRow, SlashRecord, TaskStatusView, VerificationKeyView,
    MAX_HARDWARE_SUMMARY_BYTES, MAX_HEALTH_ENTRIES, MAX_HEALTH_ENTRY_BYTES, MAX_HISTORY_ENTRIES,
    MAX_IN_FLIGHT_PER_AGENT, MAX_TEXT_BYTES, MAX_VIEW_ROWS,
};
use proofrack_common::{TaskId, UnixMillis};

fn text(mut s: String) -> String {
    truncate_utf8(&mut s, MAX_TEXT_BYTES);
    s
}

pub(super) fn ledger(rows: Vec<OperatorRow>, now: UnixMillis) -> LedgerView {
    LedgerView {
        as_of: now,
        operators: rows
            .into_iter()
            .take(MAX_VIEW_ROWS)
            .map(|r| OperatorLedgerRow {
                operator: r.operator,
                delegated: r.delegated,
                active: r.active,
                withdrawing: r.withdrawing,
                free: r.free,
                promised_to_offers: r.promised_to_offers,
                withdrawn: r.withdrawn,
                slashed: r.slashed,
                bound_tasks: r.bound_tasks as u64,
            })
            .collect(),
    }
}

pub(super) fn agents(rows: Vec<AgentRow>, now: UnixMillis) -> AgentsView {
    AgentsView {
        as_of: now,
        agents_known: rows.len() as u64,
        agents_reporting: rows
            .iter()
            .filter(|r| r.connected && r.telemetry_age_ms.is_some())
            .count() as u64,
        rows: rows
            .into_iter()
            .take(MAX_VIEW_ROWS)
            .map(|r| {
                let mut hardware = r.hardware;
                truncate_utf8(&mut hardware, MAX_HARDWARE_SUMMARY_BYTES);
                wire::AgentRow {
                    agent: r.agent.clone(),
                    connected: r.connected,
                    drained: r.drained,
                    leaving: r.leaving,
                    operator_standing: r.operator_standing,
                    backend: r.backend,
                    hardware,
                    telemetry_age_ms: r.telemetry_age_ms,
                    health: r
                        .health
                        .into_iter()
                        .take(MAX_HEALTH_ENTRIES)
                        .map(|mut h| {
                            truncate_utf8(&mut h, MAX_HEALTH_ENTRY_BYTES);
                            h
                        })
                        .collect(),
                    in_flight: r.tasks.into_iter().take(MAX_IN_FLIGHT_PER_AGENT).collect(),
                    max_concurrent_tasks: r.max_concurrent_tasks,
                    msm_g1_points_per_sec: r.msm_g1_points_per_sec,
                    ntt_elements_per_sec: r.ntt_elements_per_sec,
                    compute_memory_free_bytes: r.compute_memory_free_bytes,
                    reserved_memory_bytes: r.reserved_memory_bytes,
                }
            })
            .collect(),
    }
}

pub(super) fn circuits(shared: &Shared) -> CircuitsView {
    CircuitsView {
        circuits: shared
            .registry()
            .iter()
            .iter()
            .take(MAX_VIEW_ROWS)
            .map(|c| circuit_row(c))
            .collect(),
    }
}

pub(super) fn circuit_row(c: &crate::registry::RegisteredCircuit) -> CircuitRow {
    CircuitRow {
        name: c.name.clone(),
        key: c.key_id,
        shape: c.shape,
        num_public_inputs: c.num_public as u32,
        key_bytes: c.key_len,
    }
}

/// The verifying key the coordinator checks `c`'s proofs with.
pub(super) fn verification_key(c: &crate::registry::RegisteredCircuit) -> VerificationKeyView {
    VerificationKeyView {
        circuit: c.name.clone(),
        key: c.key_id,
        vk: proofrack_kernels::groth16::vk_to_bytes(&c.pvk.vk),
    }
}

/// A task's wire status; the proof comes from the shell's results.
pub(super) async fn task_status(shared: &Shared, task: TaskId) -> Option<TaskStatusView> {
    let view: TaskView = shared.read_acknowledged(|core, _| core.task(task)).await?;
    let state = match view.status {
        TaskStatus::Queued { reason } => wire::TaskState::Queued {
            reason: text(reason),
        },
        TaskStatus::Offered {
            agent, expires_at, ..
        } => wire::TaskState::Offered {
            agent: agent.clone(),
            offer_expires: expires_at,
        },
        TaskStatus::Proving {
            agent,
            predicted_done_at,
            due_at,
        } => wire::TaskState::Proving {
            agent: agent.clone(),
            predicted_done_at,
            due_at,
        },
        TaskStatus::Verifying { agent } => wire::TaskState::Verifying {
            agent: agent.clone(),
        },
        TaskStatus::Reassigning {
            lost_agent,
            due_at,
            why,
        } => wire::TaskState::Reassigning {
            lost_agent,
            due_at,
            reason: text(why),
        },
        TaskStatus::Verified { agent, proving_ms } => {
            let result = shared.result(task);
            wire::TaskState::Verified {
                agent: agent.clone(),
                proving_ms,
                proof: result.as_ref().map(|r| r.proof.clone()).unwrap_or_default(),
                public_outputs: result.map(|r| r.public_inputs).unwrap_or_default(),
            }
        }
        TaskStatus::Failed { cause } => {
            let slashed = view.history.iter().rev().find_map(|h| match &h.event {
                TaskEvent::InvalidProof { agent, slashed, .. }
                | TaskEvent::DueTimeMissed { agent, slashed, .. } => Some(SlashRecord {
                    operator: agent.operator.clone(),
                    amount: *slashed,
                }),
                _ => None,
            });
            wire::TaskState::Failed {
                reason: text(cause),
                slashed,
            }
        }
    };
    // Keep the first entry (submission) and the newest ones.
    let mut history: Vec<HistoryLine> = view
        .history
        .iter()
        .map(|h| HistoryLine {
            at: h.at,
            what: text(h.to_string()),
        })
        .collect();
    if history.len() > MAX_HISTORY_ENTRIES {
        let excess = history.len() - MAX_HISTORY_ENTRIES;
        history.drain(1..1 + excess);
    }
    Some(TaskStatusView {
        task: view.id,
        client: text(view.client),
        request_id: view.request_id,
        circuit: text(view.circuit),
        key: view.key_id,
        state,
        collateral: view.collateral,
        deadline: view.deadline,
        submitted: view.submitted_at,
        history,
    })
}
