//! One client request per stream: submit, status, watch, the ledger, agents and circuits
//! tables, operators' and the deployment's commands, and the audit log. Every request passes
//! the authorization table first (`authz_gate`).

use super::authz_gate;
use super::shared::Shared;
use super::views;
use crate::tasks::authz::requester_key;
use crate::tasks::{AdminReply, TaskSpec};
use proofrack_common::identity::{Identity, PeerCertInfo};
use proofrack_common::protocol::{
    write_message, AuditOutcome, ClientRequest, ClientResponse, ProtocolError, SubmitRequest,
    MAX_AUDIT_VIEW_ROWS,
};
use proofrack_common::timefmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub(super) async fn serve(
    shared: Arc<Shared>,
    peer: PeerCertInfo,
    req: ClientRequest,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    // The authorization table first: a refused request is answered before a byte of its
    // upload is read, and changes nothing.
    if let Err(reply) = authz_gate::admit_request(&shared, &peer, &req).await {
        let _ = recv.stop(0u32.into());
        if write_message(&mut send, &reply).await.is_ok() {
            let _ = send.finish();
            let _ = tokio::time::timeout(Duration::from_secs(5), send.stopped()).await;
        }
        return;
    }
    let who = &peer.identity;
    // Tasks and request ids are kept under this key (a client's name, as before admins).
    let client = requester_key(who);
    let result = match req {
        ClientRequest::Submit(s) => {
            let mut replies = submit_all(&shared, &client, vec![s]).await;
            write_message(&mut send, &replies.remove(0)).await
        }
        ClientRequest::SubmitBatch(batch) => {
            let replies = submit_all(&shared, &client, batch).await;
            write_message(&mut send, &ClientResponse::Batch(replies)).await
        }
        ClientRequest::Status { task } => {
            let reply = match views::task_status(&shared, task).await {
                Some(v) => ClientResponse::Status(v),
                None => ClientResponse::Error(ProtocolError::UnknownTask { task }),
            };
            write_message(&mut send, &reply).await
        }
        ClientRequest::Watch { task } => watch(&shared, task, &mut send).await,
        ClientRequest::Explain { task } => {
            // The gate already answered an unknown or someone else's task.
            let reply = match shared.read_acknowledged(|core, _| core.task(task)).await {
                Some(view) => views::explanation(&view),
                None => ClientResponse::Error(ProtocolError::UnknownTask { task }),
            };
            write_message(&mut send, &reply).await
        }
        ClientRequest::Tasks {
            state,
            before,
            limit,
        } => {
            let stake = shared.stake_authority();
            let view = shared
                .read_acknowledged(|core, _| {
                    views::tasks_for(core, who, &stake, state.as_deref(), before, limit as usize)
                })
                .await;
            write_message(&mut send, &ClientResponse::Tasks(view)).await
        }
        ClientRequest::Ledger => {
            let view = shared
                .read_acknowledged(|core, now| views::ledger(core.ledger_rows(), now))
                .await;
            write_message(&mut send, &ClientResponse::Ledger(view)).await
        }
        ClientRequest::Agents => {
            let stake = shared.stake_authority();
            let view = shared
                .read_acknowledged(|core, now| views::agents_for(core, now, who, &stake))
                .await;
            write_message(&mut send, &ClientResponse::Agents(view)).await
        }
        ClientRequest::Circuits => {
            write_message(
                &mut send,
                &ClientResponse::Circuits(views::circuits(&shared)),
            )
            .await
        }
        ref command @ ClientRequest::Drain {
            request_id,
            ref agent,
            drain,
        } => {
            let reply = audited(&shared, who, command, |core, now| {
                core.handle_drain(now, &client, request_id, agent, drain)
            })
            .await;
            write_message(&mut send, &admin(reply)).await
        }
        ref command @ ClientRequest::Withdraw {
            request_id,
            ref operator,
            amount,
        } => {
            let reply = audited(&shared, who, command, |core, now| {
                core.handle_withdrawal_request(now, &client, request_id, operator, amount)
            })
            .await;
            write_message(&mut send, &admin(reply)).await
        }
        ref command @ ClientRequest::ResetBreaker {
            request_id,
            ref agent,
        } => {
            let reply = audited(&shared, who, command, |core, now| {
                core.handle_breaker_reset(now, &client, request_id, agent)
            })
            .await;
            write_message(&mut send, &admin(reply)).await
        }
        ClientRequest::VerificationKey { circuit } => {
            let reply = match shared.registry().by_name(&circuit) {
                Some(c) => ClientResponse::VerificationKey(views::verification_key(&c)),
                None => ClientResponse::Error(ProtocolError::UnknownCircuit { circuit }),
            };
            write_message(&mut send, &reply).await
        }
        ClientRequest::RegisterCircuit(r) => {
            let what = authz_gate::audit_subject(&ClientRequest::RegisterCircuit(r.clone()));
            let reply = super::circom_session::register(&shared, &client, r, &mut recv).await;
            let _ = recv.stop(0u32.into());
            if let Some((action, operator)) = what {
                let (outcome, message) = match &reply {
                    ClientResponse::Registered(row) => (
                        AuditOutcome::Done,
                        format!("registered {} (key {})", row.name, row.key.short()),
                    ),
                    ClientResponse::Rejected { reason } => (AuditOutcome::Failed, reason.clone()),
                    other => (AuditOutcome::Failed, format!("{other:?}")),
                };
                shared
                    .apply(|core, now| {
                        core.record_audit(now, who, action, operator, outcome, message)
                    })
                    .await;
            }
            write_message(&mut send, &reply).await
        }
        ClientRequest::UnregisterCircuit { name } => {
            let reply = super::circuit_admin::unregister(&shared, who, &name).await;
            write_message(&mut send, &admin(reply)).await
        }
        ClientRequest::SubmitWitness(s) => {
            let reply = super::circom_session::submit(&shared, &client, s, &mut recv).await;
            let _ = recv.stop(0u32.into());
            write_message(&mut send, &reply).await
        }
        ClientRequest::Audit {
            before,
            operator,
            limit,
        } => {
            // The gate let an operator admin through only for its own operator's lines.
            let operator = match (operator, who) {
                (None, Identity::OperatorAdmin { operator, .. }) => Some(operator.clone()),
                (op, _) => op,
            };
            let limit = (limit as usize).min(MAX_AUDIT_VIEW_ROWS);
            let view = shared
                .read_acknowledged(|core, _| views::audit(core, operator.as_ref(), before, limit))
                .await;
            write_message(&mut send, &ClientResponse::Audit(view)).await
        }
    };
    if let Err(e) = result {
        tracing::info!(%client, error = %e, "client stream ended early");
        return;
    }
    let _ = send.finish();
    let _ = tokio::time::timeout(Duration::from_secs(5), send.stopped()).await;
}

/// Runs an operator command and records it in the audit log in the same event (one commit).
async fn audited(
    shared: &Shared,
    who: &Identity,
    command: &ClientRequest,
    run: impl FnOnce(&mut crate::tasks::CoordinatorCore, proofrack_common::UnixMillis) -> AdminReply,
) -> AdminReply {
    let (action, operator) =
        authz_gate::audit_subject(command).expect("operator commands are audited");
    shared
        .apply(|core, now| {
            let reply = run(core, now);
            let outcome = if reply.ok {
                AuditOutcome::Done
            } else {
                AuditOutcome::Failed
            };
            core.record_audit(now, who, action, operator, outcome, reply.message.clone());
            reply
        })
        .await
}

fn admin(reply: AdminReply) -> ClientResponse {
    let mut message = reply.message;
    proofrack_common::protocol::truncate_utf8(
        &mut message,
        proofrack_common::protocol::MAX_TEXT_BYTES,
    );
    ClientResponse::Admin {
        ok: reply.ok,
        message,
    }
}

/// Checks each submission, then submits every valid one to the core as one event batch (one
/// lock, one group commit); one answer per submission, in order.
async fn submit_all(
    shared: &Shared,
    client: &str,
    batch: Vec<SubmitRequest>,
) -> Vec<ClientResponse> {
    let checked: Vec<Result<(String, SubmitRequest), Box<ClientResponse>>> =
        batch.into_iter().map(|s| check(shared, s)).collect();
    let results = shared
        .apply(|core, now| {
            checked
                .iter()
                .map(|c| {
                    c.as_ref().ok().map(|(circuit, s)| {
                        core.handle_submit(
                            now,
                            TaskSpec {
                                circuit: circuit.clone(),
                                inputs: s.inputs.as_slice().into(),
                                collateral: s.collateral,
                                deadline: now.saturating_add(Duration::from_millis(s.deadline_ms)),
                                client: client.to_string(),
                                request_id: s.request_id,
                            },
                        )
                    })
                })
                .collect::<Vec<_>>()
        })
        .await;
    checked
        .into_iter()
        .zip(results)
        .map(|(c, result)| match (c, result) {
            (Err(refused), _) => *refused,
            (Ok((circuit, s)), Some(Ok(task))) => {
                // The core logged "task submitted" at info; this is its acknowledgement.
                tracing::debug!(%client, %task, %circuit, collateral = %s.collateral, "submission acknowledged");
                ClientResponse::Submitted { task }
            }
            (Ok(_), Some(Err(e))) => {
                note_share_refusal(shared, client, &e);
                ClientResponse::Rejected {
                    reason: e.to_string(),
                }
            }
            (Ok(_), None) => unreachable!("every checked submission went to the core"),
        })
        .collect()
}

/// A submission the core may take, with its circuit's name, or the answer refusing it.
fn check(
    shared: &Shared,
    s: SubmitRequest,
) -> Result<(String, SubmitRequest), Box<ClientResponse>> {
    let Some(circuit) = shared.registry().by_name(&s.circuit) else {
        return Err(Box::new(ClientResponse::Error(
            ProtocolError::UnknownCircuit { circuit: s.circuit },
        )));
    };
    let crate::registry::CircuitSource::BuiltIn(builtin) = &circuit.source else {
        return Err(Box::new(ClientResponse::Rejected {
            reason: format!(
                "{} is a circom circuit: submit a witness (`proofrack submit --circuit {} --wtns W.wtns`, or --input with --wasm)",
                circuit.name, circuit.name
            ),
        }));
    };
    // Inputs that cannot be proven are refused here, not discovered by an agent later.
    let parsed = std::str::from_utf8(&s.inputs)
        .map_err(|e| format!("inputs are not UTF-8 JSON: {e}"))
        .and_then(|t| builtin.parse_inputs(t).map_err(|e| e.to_string()));
    if let Err(reason) = parsed {
        return Err(Box::new(ClientResponse::Rejected {
            reason: format!("inputs for {}: {reason}", circuit.name),
        }));
    }
    if let Some(refusal) = deadline_refusal(shared, s.deadline_ms) {
        return Err(Box::new(refusal));
    }
    Ok((circuit.name.clone(), s))
}

/// A relative deadline of zero or beyond the policy's `max_deadline_ms`, refused before any
/// upload is read. The core applies the same bound (and the one below: the fastest possible
/// proof) at submission; this check is the same question asked early, with the same bound.
pub(super) fn deadline_refusal(shared: &Shared, deadline_ms: u64) -> Option<ClientResponse> {
    let max_ms = shared.read(|core, _| core.policy().max_deadline_ms);
    let reason = if deadline_ms == 0 {
        format!(
            "a deadline of 0 leaves no time to prove; ask for up to {} (policy.max_deadline_ms = {max_ms}), e.g. --deadline 30s",
            timefmt::span_ms(max_ms)
        )
    } else if deadline_ms > max_ms {
        format!(
            "a deadline of {} is beyond the longest this coordinator takes, {} (policy.max_deadline_ms = {max_ms}); ask for at most {}",
            timefmt::span_ms(deadline_ms),
            timefmt::span_ms(max_ms),
            timefmt::span_ms(max_ms)
        )
    } else {
        return None;
    };
    Some(ClientResponse::Rejected { reason })
}

/// Hands a checked submission to the core.
pub(super) async fn submit_task(
    shared: &Shared,
    client: &str,
    circuit: &str,
    inputs: std::sync::Arc<[u8]>,
    collateral: proofrack_common::StakeUnits,
    deadline_ms: u64,
    request_id: u64,
) -> ClientResponse {
    let result = shared
        .apply(|core, now| {
            core.handle_submit(
                now,
                TaskSpec {
                    circuit: circuit.to_string(),
                    inputs,
                    collateral,
                    deadline: now.saturating_add(Duration::from_millis(deadline_ms)),
                    client: client.to_string(),
                    request_id,
                },
            )
        })
        .await;
    match result {
        Ok(task) => {
            // The core logged "task submitted" at info; this is its acknowledgement.
            tracing::debug!(%client, %task, %circuit, %collateral, "submission acknowledged");
            ClientResponse::Submitted { task }
        }
        Err(e) => {
            note_share_refusal(shared, client, &e);
            ClientResponse::Rejected {
                reason: e.to_string(),
            }
        }
    }
}

/// A submission refused for the client's share of the queue is a limit hit (metric, log).
fn note_share_refusal(shared: &Shared, client: &str, e: &crate::tasks::SubmitRejected) {
    if matches!(e, crate::tasks::SubmitRejected::ClientShareFull { .. }) {
        shared
            .limits()
            .hit(super::Limit::ClientShare, &format!("client/{client}"));
    }
}

/// Sends the task's status now and after every change, until it is verified or failed.
async fn watch(
    shared: &Shared,
    task: proofrack_common::TaskId,
    send: &mut quinn::SendStream,
) -> Result<(), proofrack_common::framing::FrameError> {
    let mut events = shared.subscribe_tasks();
    let mut last = None;
    loop {
        let Some(view) = views::task_status(shared, task).await else {
            return write_message(
                send,
                &ClientResponse::Error(ProtocolError::UnknownTask { task }),
            )
            .await;
        };
        let terminal = view.state.is_terminal();
        if last.as_ref() != Some(&view) {
            write_message(send, &ClientResponse::Status(view.clone())).await?;
            last = Some(view);
        }
        if terminal {
            return Ok(());
        }
        loop {
            match events.recv().await {
                Ok(t) if t == task => break,
                Ok(_) => continue,
                // Missed some notifications: re-read the status.
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    }
}
