//! An agent's control stream: hello, then telemetry and offer replies in, offers and
//! cancellations out, until the stream or connection ends.

use super::shared::{refuse, Shared};
use crate::admission::AgentId;
use crate::tasks::{OfferReply, OfferReplyRejected};
use proofrack_common::framing::{FrameError, FrameReader};
use proofrack_common::identity::{Identity, PeerCertInfo};
use proofrack_common::protocol::{
    encode_message_into, read_message_with, write_message, AgentHello, AgentToCoordinator,
    CoordinatorToAgent, OfferDecision, ProtocolError, Welcome, PROTOCOL_VERSION,
};
use std::sync::Arc;

/// Queued messages coalesced into one control-stream write, at most about this many bytes
/// (an offer is ~200 bytes; QUIC packs the write into as few packets as it needs).
const OUTBOX_WRITE_BYTES: usize = 64 * 1024;

#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    shared: Arc<Shared>,
    conn: quinn::Connection,
    conn_id: u64,
    peer: PeerCertInfo,
    hello: AgentHello,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    mut reader: FrameReader,
) {
    let Identity::Agent { operator, name } = &peer.identity else {
        unreachable!("dispatch only routes agent identities here");
    };
    let agent = AgentId::new(operator.clone(), name.clone());
    // The holder of a live session keeps it: a second process with the same certificate is
    // held off instead of the two taking turns. A holder silent past the window (a process
    // that died or restarted, a connection that is gone) is replaced by the newer one at once.
    if super::duplicates::hold_off(&shared, &conn, &agent, &mut send).await {
        return;
    }
    shared.drop_previous_link(&agent).await;
    // Attached before the core hears of the agent, so the resume messages its connect
    // produces reach this stream (after the Welcome, which is written first below).
    let mut outbox = shared.attach_agent(&agent, conn_id);
    let connected = shared
        .apply(|core, now| {
            core.handle_agent_connected(now, agent.clone(), hello.capabilities.max_concurrent_tasks)
        })
        .await;
    if let Err(e) = connected {
        tracing::warn!(%agent, error = %e, "agent refused");
        let err = ProtocolError::AlreadyConnected {
            agent: agent.to_string(),
        };
        shared.detach_agent(&agent, conn_id);
        let _ = write_message(&mut send, &CoordinatorToAgent::Error(err.clone())).await;
        let _ = send.finish();
        refuse(&conn, &err);
        return;
    }
    tracing::info!(
        %agent,
        build = %hello.agent_build,
        backend = %hello.calibration.backend_name,
        msm_points_per_s = hello.calibration.msm_g1_points_per_sec,
        "agent connected"
    );
    // An agent whose operator cannot back a task is let in (stake may be delegated later)
    // but told so, and the coordinator's log says it too.
    let standing = shared.read(|core, _| core.operator_standing(operator));
    let notices: Vec<String> = standing.notice(operator).into_iter().collect();
    for notice in &notices {
        tracing::warn!(%agent, %notice, "agent connected but cannot be offered tasks");
    }
    let welcome = CoordinatorToAgent::Welcome(Welcome {
        protocol_version: PROTOCOL_VERSION,
        coordinator_build: env!("CARGO_PKG_VERSION").to_string(),
        agent: peer.identity.to_spiffe_uri(shared.trust_domain()),
        telemetry_interval_ms: shared.telemetry_interval_ms(),
        notices,
    });
    if write_message(&mut send, &welcome).await.is_err() {
        finish(&shared, &agent, conn_id).await;
        return;
    }

    loop {
        tokio::select! {
            // Cancel-safe: a frame half read when an offer goes out is kept in `reader`.
            msg = read_message_with::<_, AgentToCoordinator>(&mut reader, &mut recv) => match msg {
                // A newer connection of this agent replaced this one: its messages are stale.
                Ok(_) if !shared.is_current_link(&agent, conn_id) => break,
                Ok(msg) => handle(&shared, &agent, msg).await,
                // The agent went away (closed, reset or connection lost): not a protocol error.
                Err(FrameError::Closed) | Err(FrameError::Io(_)) => break,
                Err(e) => {
                    if matches!(e, FrameError::TimedOut { .. }) {
                        shared.limits().hit(super::Limit::RequestTimeout, &agent.to_string());
                    }
                    // Oversized, malformed or trickled: tell the agent why, drop only this agent.
                    let err = ProtocolError::for_frame_error(&e).unwrap_or(ProtocolError::Malformed {
                        detail: e.to_string(),
                    });
                    tracing::warn!(%agent, error = %err, "bad frame on control stream; closing the agent's connection");
                    let _ = write_message(&mut send, &CoordinatorToAgent::Error(err.clone().truncated())).await;
                    let _ = send.finish();
                    refuse(&conn, &err);
                    break;
                }
            },
            out = outbox.recv() => match out {
                Some(msg) => {
                    // Whatever else is queued goes out in the same write: a burst of offers
                    // to one agent is one stream write (and as few packets), not one each.
                    let mut buf = Vec::new();
                    let mut queued = Some(msg);
                    let mut encoded = Ok(());
                    while let Some(msg) = queued.take() {
                        encoded = encode_message_into(&mut buf, &msg);
                        if encoded.is_err() || buf.len() >= OUTBOX_WRITE_BYTES {
                            break;
                        }
                        queued = outbox.try_recv().ok();
                    }
                    let written = match encoded {
                        Ok(()) => send
                            .write_all(&buf)
                            .await
                            .map_err(|e| FrameError::Io(std::io::Error::from(e))),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = written {
                        tracing::info!(%agent, error = %e, "control stream write failed");
                        break;
                    }
                }
                None => break,
            },
            _ = conn.closed() => break,
        }
    }
    finish(&shared, &agent, conn_id).await;
}

async fn finish(shared: &Shared, agent: &AgentId, conn_id: u64) {
    if shared.detach_agent(agent, conn_id) {
        shared
            .apply(|core, now| core.handle_agent_disconnected(now, agent))
            .await;
    }
}

/// Hands the replies to the core as one event batch (one lock, one group commit).
async fn offer_replies(
    shared: &Shared,
    agent: &AgentId,
    replies: Vec<proofrack_common::protocol::OfferReply>,
) {
    let replies: Vec<_> = replies
        .into_iter()
        .map(|reply| {
            let r = match reply.decision {
                OfferDecision::Accept => OfferReply::Accept,
                OfferDecision::Decline { reason } => OfferReply::Decline { reason },
            };
            (reply.task, r)
        })
        .collect();
    let results = shared
        .apply(|core, now| {
            replies
                .iter()
                .map(|(task, r)| core.handle_offer_reply(now, agent, *task, r.clone()))
                .collect::<Vec<_>>()
        })
        .await;
    for ((task, r), result) in replies.into_iter().zip(results) {
        let accepted = matches!(r, OfferReply::Accept);
        match result {
            // The core logs the outcome ("offer accepted; stake bound" or "offer declined").
            Ok(()) => tracing::debug!(%agent, %task, accepted, "offer answered"),
            Err(e) => {
                tracing::info!(%agent, %task, error = %e, "offer reply refused");
                if accepted {
                    // The agent must not prove a task whose stake was not bound to it.
                    let reason = match &e {
                        OfferReplyRejected::BindFailed { .. } => e.to_string(),
                        _ => format!("offer no longer stands: {e}"),
                    };
                    shared.cancel_on_agent(agent, task, reason);
                }
            }
        }
    }
}

async fn handle(shared: &Shared, agent: &AgentId, msg: AgentToCoordinator) {
    match msg {
        AgentToCoordinator::Telemetry(t) => {
            if let Err(e) = shared
                .apply(|core, now| core.handle_telemetry(now, agent, t))
                .await
            {
                tracing::debug!(%agent, error = %e, "telemetry not taken");
            }
        }
        AgentToCoordinator::OfferReply(reply) => offer_replies(shared, agent, vec![reply]).await,
        AgentToCoordinator::OfferReplies(replies) => offer_replies(shared, agent, replies).await,
        AgentToCoordinator::TaskFailed { task, reason } => {
            // Believed (and logged as fact) only once the core has checked the agent holds
            // the task. The stake stays bound; the task is handed to another agent of the
            // operator (slashed at its due time only if none takes it).
            match shared
                .apply(|core, now| core.handle_task_abandoned(now, agent, task, &reason))
                .await
            {
                Ok(()) => {
                    tracing::warn!(%agent, %task, %reason, "agent gave up a task it held; handing it to another agent of its operator")
                }
                Err(e) => {
                    tracing::info!(%agent, %task, error = %e, "task failure report refused: the agent does not hold that task")
                }
            }
        }
        AgentToCoordinator::Draining { reason } => {
            tracing::info!(%agent, %reason, "agent draining");
            shared
                .apply(|core, now| core.handle_agent_leaving(now, agent))
                .await;
        }
    }
}
