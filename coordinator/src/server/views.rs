//! The core's views translated into the wire's views, cut to the protocol's bounds.

use super::authz_gate;
use super::shared::Shared;
use crate::tasks::authz::StakeAuthority;
use crate::tasks::{
    AgentRow, CoordinatorCore, OperatorRow, TaskEvent, TaskStatus, TaskView, MAX_AUDIT_ENTRIES,
};
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{
    self as wire, truncate_utf8, AgentsView, AuditLine, AuditView, CircuitRow, CircuitsView,
    HistoryLine, LedgerView, OperatorLedgerRow, SlashRecord, TaskStatusView, VerificationKeyView,
    MAX_HARDWARE_SUMMARY_BYTES, MAX_HEALTH_ENTRIES, MAX_HEALTH_ENTRY_BYTES, MAX_HISTORY_ENTRIES,
    MAX_IN_FLIGHT_PER_AGENT, MAX_TEXT_BYTES, MAX_VIEW_ROWS,
};
use proofrack_common::{OperatorId, TaskId, UnixMillis};

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

/// The agents table as `who` may see it: every agent, its hardware details (backend,
/// hardware, memory, throughput, health) only to its operator's admins and deployment admins,
/// and of its tasks only those `who` may read.
pub(super) fn agents_for(
    core: &CoordinatorCore,
    now: UnixMillis,
    who: &Identity,
    stake: &StakeAuthority,
) -> AgentsView {
    let rows = core.agent_rows(now);
    // A task in flight on an agent of operator OP is offered to or held by OP's agent, so OP
    // is among its operators: asked with that alone first (cheap: no history walk), and with
    // every operator it ever went to only if that was not enough.
    let may_read = |task: &TaskId, on: &OperatorId| {
        let Some(client) = core.task_client(*task) else {
            return false;
        };
        let on: std::collections::BTreeSet<OperatorId> = [on.clone()].into();
        authz_gate::may_read_task(stake, who, client, &on).is_ok()
            || (matches!(who, Identity::OperatorAdmin { .. })
                && core.task_owner(*task).is_some_and(|(client, operators)| {
                    authz_gate::may_read_task(stake, who, &client, &operators).is_ok()
                }))
    };
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
                let hardware = authz_gate::sees_hardware(stake, who, &r.agent);
                let breaker = r.breaker.clone();
                let in_flight = r
                    .tasks
                    .iter()
                    .filter(|t| may_read(t, &r.agent.operator))
                    .take(MAX_IN_FLIGHT_PER_AGENT)
                    .copied()
                    .collect();
                let row = wire_agent_row(r, in_flight);
                if hardware {
                    row
                } else {
                    without_hardware(row, breaker)
                }
            })
            .collect(),
    }
}

fn wire_agent_row(r: AgentRow, in_flight: Vec<TaskId>) -> wire::AgentRow {
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
            .breaker
            .into_iter()
            .chain(r.health)
            .take(MAX_HEALTH_ENTRIES)
            .map(|mut h| {
                truncate_utf8(&mut h, MAX_HEALTH_ENTRY_BYTES);
                h
            })
            .collect(),
        in_flight,
        max_concurrent_tasks: r.max_concurrent_tasks,
        msm_g1_points_per_sec: r.msm_g1_points_per_sec,
        ntt_elements_per_sec: r.ntt_elements_per_sec,
        compute_memory_free_bytes: r.compute_memory_free_bytes,
        reserved_memory_bytes: r.reserved_memory_bytes,
    }
}

/// A row with its hardware details left out; the breaker, which is about the agent's conduct
/// rather than its hardware, stays.
fn without_hardware(row: wire::AgentRow, breaker: Option<String>) -> wire::AgentRow {
    let operator = row.agent.operator.clone();
    wire::AgentRow {
        backend: None,
        hardware: format!("(hidden: {operator}'s admins and deployment admins see it)"),
        health: breaker
            .into_iter()
            .map(|mut h| {
                truncate_utf8(&mut h, MAX_HEALTH_ENTRY_BYTES);
                h
            })
            .collect(),
        msm_g1_points_per_sec: None,
        ntt_elements_per_sec: None,
        compute_memory_free_bytes: None,
        reserved_memory_bytes: 0,
        ..row
    }
}

/// The tasks `who` may read, as [`ClientRequest::Tasks`](wire::ClientRequest::Tasks) asks.
pub(super) fn tasks_for(
    core: &CoordinatorCore,
    who: &Identity,
    stake: &StakeAuthority,
    state: Option<&str>,
    before: Option<TaskId>,
    limit: usize,
) -> wire::TaskListView {
    let (rows, next_before) =
        core.task_list(state, before, limit.min(MAX_VIEW_ROWS), |client, ops| {
            authz_gate::may_read_task(stake, who, client, ops).is_ok()
        });
    wire::TaskListView {
        rows: rows
            .into_iter()
            .map(|r| wire::TaskListRow {
                task: r.id,
                circuit: r.circuit,
                client: text(r.client),
                state: r.state.to_string(),
                submitted_at: r.submitted_at,
                deadline: r.deadline,
            })
            .collect(),
        more: next_before.is_some(),
        next_before,
    }
}

/// A task's explanation in both forms, each cut to the protocol's bound.
pub(super) fn explanation(view: &TaskView) -> wire::ClientResponse {
    let explanation = crate::tasks::explain(view);
    let mut text = explanation.to_string();
    let mut json = serde_json::to_string(&explanation).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("serialising the explanation: {e}") }).to_string()
    });
    if json.len() > wire::MAX_EXPLANATION_BYTES {
        json = serde_json::json!({
            "error": "the explanation is larger than the protocol carries; read it from the fleet API (/api/tasks/<id>/explain)",
            "bytes": json.len(),
        })
        .to_string();
    }
    truncate_utf8(&mut text, wire::MAX_EXPLANATION_BYTES);
    wire::ClientResponse::Explanation { text, json }
}

/// The audit log as asked (the gate already checked who may read which lines).
pub(super) fn audit(
    core: &CoordinatorCore,
    operator: Option<&OperatorId>,
    before: Option<u64>,
    limit: usize,
) -> AuditView {
    let (lines, kept) = core.audit_lines(operator, before, limit);
    AuditView {
        lines: lines
            .into_iter()
            .map(|e| AuditLine {
                seq: e.seq,
                at: e.at,
                who: e.who,
                action: e.action,
                operator: e.operator,
                outcome: e.outcome,
                message: e.message,
            })
            .collect(),
        kept: kept as u64,
        cap: MAX_AUDIT_ENTRIES as u64,
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
