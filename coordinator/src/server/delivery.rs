//! A proof delivery: ownership checked by the core before any verification work, then the
//! proof verified off the async threads, then the verdict applied (release or slash).

use super::shared::{ProofResult, Shared};
use crate::admission::AgentId;
use crate::store::{ExtraWrite, StoredDelivery};
use crate::verify::verify_delivery;
use proofrack_common::identity::{Identity, PeerCertInfo};
use proofrack_common::protocol::{
    write_message, DeliverProof, DeliveryOutcome, DeliveryReply, DeliveryVerdict, ProtocolError,
};
use proofrack_common::TaskId;
use std::sync::Arc;

pub(super) async fn serve(
    shared: Arc<Shared>,
    peer: PeerCertInfo,
    d: DeliverProof,
    mut send: quinn::SendStream,
) {
    let Identity::Agent { operator, name } = &peer.identity else {
        unreachable!("dispatch only routes agent identities here");
    };
    let agent = AgentId::new(operator.clone(), name.clone());
    let task = d.task;
    let outcome = judge(&shared, &agent, d).await;
    match &outcome {
        DeliveryOutcome::Accepted => {
            tracing::info!(%agent, %task, "proof verified; stake released")
        }
        DeliveryOutcome::Rejected { reason } => {
            tracing::warn!(%agent, %task, %reason, "delivery rejected")
        }
    }
    let reply = DeliveryReply::Verdict(DeliveryVerdict { task, outcome });
    let _ = write_message(&mut send, &reply).await;
    let _ = send.finish();
    // Let the reply reach the agent before the stream is dropped.
    let _ = send.stopped().await;
}

async fn judge(shared: &Arc<Shared>, agent: &AgentId, d: DeliverProof) -> DeliveryOutcome {
    let task = d.task;
    // The same delivery again (its verdict was lost on the way): the same answer.
    if shared
        .read_acknowledged(|core, _| core.verified_by(task) == Some(agent))
        .await
    {
        return DeliveryOutcome::Accepted;
    }
    let delivery = StoredDelivery {
        proof: d.proof,
        public_inputs: d.public_inputs,
        proving_ms: d.proving_ms,
    };
    // Durable with the task's move to Verifying: a restart re-verifies these bytes.
    let delivered = shared
        .apply_with(
            vec![ExtraWrite::Delivery(task, delivery.clone())],
            |core, now| core.handle_proof_delivered(now, agent, task),
        )
        .await;
    if let Err(e) = delivered {
        return DeliveryOutcome::Rejected {
            reason: e.to_string(),
        };
    }
    verify_and_settle(shared, agent, task, delivery).await
}

/// Verifies a delivered proof off the async threads and applies the verdict (release or
/// slash), with the proof kept for clients in the same commit. Also run at start for proofs
/// delivered before a restart.
pub(super) async fn verify_and_settle(
    shared: &Arc<Shared>,
    agent: &AgentId,
    task: TaskId,
    delivery: StoredDelivery,
) -> DeliveryOutcome {
    let Some((circuit_name, inputs)) = shared.read(|core, _| core.task_inputs(task)) else {
        return DeliveryOutcome::Rejected {
            reason: ProtocolError::UnknownTask { task }.to_string(),
        };
    };
    let Some(circuit) = shared.registry().by_name(&circuit_name) else {
        return DeliveryOutcome::Rejected {
            reason: format!("circuit {circuit_name} is no longer registered"),
        };
    };
    let proof = delivery.proof.clone();
    let public = delivery.public_inputs.clone();
    let started = std::time::Instant::now();
    let verdict =
        tokio::task::spawn_blocking(move || verify_delivery(&circuit, &inputs, &public, &proof))
            .await
            .unwrap_or_else(|e| {
                Err(crate::verify::ProofRejected::Malformed(format!(
                    "verifier crashed: {e}"
                )))
            });
    let verify_ms = started.elapsed().as_millis() as u64;
    shared.observe_verification_ms(verify_ms);
    let valid = verdict.is_ok();
    let mut extra = vec![ExtraWrite::DeliveryDone(task)];
    let result = ProofResult {
        proof: delivery.proof,
        public_inputs: delivery.public_inputs,
    };
    if valid {
        extra.push(ExtraWrite::Proof(task, result.clone()));
    }
    let proving_ms = delivery.proving_ms;
    let applied = shared
        .apply_with(extra, |core, now| {
            let applied = core.handle_proof_verified(now, agent, task, valid, proving_ms);
            // Kept in memory under the core's lock, before any client can see "verified".
            if valid && applied.is_ok() {
                shared.record_result(task, result);
            }
            applied
        })
        .await;
    tracing::debug!(%task, verify_ms, valid, "proof checked");
    if valid && applied.is_ok() {
        super::circom_session::forget_witness(shared, task).await;
    }
    match (verdict, applied) {
        (Ok(()), Ok(())) => DeliveryOutcome::Accepted,
        (Err(why), Ok(())) => DeliveryOutcome::Rejected {
            reason: format!("{why}; the operator was slashed and the task goes to another agent"),
        },
        (_, Err(e)) => DeliveryOutcome::Rejected {
            reason: e.to_string(),
        },
    }
}
