//! Serves a circom task's witness to the agent it is offered or bound to, streamed from disk
//! as a hash-checked payload. A witness holds the client's private signals: no other agent
//! gets it.

use super::shared::Shared;
use crate::admission::AgentId;
use crate::circom::witness;
use crate::tasks::TaskStatus;
use proofrack_common::framing::send_payload_from;
use proofrack_common::identity::{Identity, PeerCertInfo};
use proofrack_common::protocol::{
    write_message, FetchInput, InputReply, ProtocolError, TaskInputs,
};
use std::sync::Arc;

pub(super) async fn serve(
    shared: Arc<Shared>,
    peer: PeerCertInfo,
    req: FetchInput,
    mut send: quinn::SendStream,
) {
    let Identity::Agent { operator, name } = &peer.identity else {
        unreachable!("dispatch only routes agent identities here");
    };
    let agent = AgentId::new(operator.clone(), name.clone());
    let reply = match allowed(&shared, &agent, &req).await {
        Ok(len) => InputReply::Found { total_len: len },
        Err(e) => InputReply::Error(e),
    };
    let InputReply::Found { total_len } = reply else {
        tracing::info!(%agent, task = %req.task, ?reply, "witness fetch refused");
        let _ = write_message(&mut send, &reply).await;
        let _ = send.finish();
        return;
    };
    let path = witness::path_of(&shared.registry().circom_dir(), &req.sha256);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "stored witness unreadable");
            let _ = write_message(
                &mut send,
                &InputReply::Error(ProtocolError::Unavailable {
                    detail: format!("the coordinator cannot read the witness of {}", req.task),
                }),
            )
            .await;
            let _ = send.finish();
            return;
        }
    };
    let mut reader = tokio::io::BufReader::with_capacity(1 << 20, file);
    let sent = async {
        write_message(&mut send, &reply).await?;
        send_payload_from(&mut send, &mut reader, total_len, req.sha256).await
    }
    .await;
    match sent {
        Ok(()) => {
            let _ = send.finish();
            tracing::debug!(%agent, task = %req.task, bytes = total_len, "witness sent");
        }
        Err(e) => {
            tracing::info!(%agent, task = %req.task, error = %e, "witness transfer broke off")
        }
    }
}

/// The witness length if `agent` may fetch this witness: the task is a circom task with this
/// witness, offered or bound to `agent`.
async fn allowed(shared: &Shared, agent: &AgentId, req: &FetchInput) -> Result<u64, ProtocolError> {
    let task = req.task;
    let (inputs, status) = shared
        .read_acknowledged(|core, _| {
            let inputs = core.task_inputs(task).map(|(_, i)| i);
            let status = core.task(task).map(|v| v.status);
            inputs.zip(status)
        })
        .await
        .ok_or(ProtocolError::UnknownTask { task })?;
    let holder = match &status {
        TaskStatus::Offered { agent, .. }
        | TaskStatus::Proving { agent, .. }
        | TaskStatus::Verifying { agent } => Some(agent),
        _ => None,
    };
    if holder != Some(agent) {
        return Err(ProtocolError::Unavailable {
            detail: format!(
                "{task} is not offered or bound to {agent}, so its witness is not served to it"
            ),
        });
    }
    match TaskInputs::decode(&inputs) {
        Ok(TaskInputs::Witness(w)) if w.sha256 == req.sha256 => Ok(w.len),
        _ => Err(ProtocolError::Unavailable {
            detail: format!("{task} has no witness with that hash"),
        }),
    }
}
