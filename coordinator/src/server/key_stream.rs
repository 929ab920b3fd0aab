//! Serves a proving key to an agent, streamed from disk in bounded chunks. The payload's
//! SHA-256 is the key id, which the agent checks before caching it.

use super::shared::Shared;
use proofrack_common::framing::send_payload_from;
use proofrack_common::identity::PeerCertInfo;
use proofrack_common::protocol::{write_message, FetchKey, KeyReply, ProtocolError};
use std::sync::Arc;

pub(super) async fn serve(
    shared: Arc<Shared>,
    peer: PeerCertInfo,
    req: FetchKey,
    mut send: quinn::SendStream,
) {
    let Some(circuit) = shared.registry().by_key(&req.key) else {
        tracing::info!(peer = %peer.identity, key = %req.key.short(), "unknown key requested");
        let _ = write_message(
            &mut send,
            &KeyReply::Error(ProtocolError::UnknownKey { key: req.key }),
        )
        .await;
        let _ = send.finish();
        return;
    };
    let file = match tokio::fs::File::open(&circuit.key_path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(path = %circuit.key_path.display(), error = %e, "proving key unreadable");
            let _ = write_message(
                &mut send,
                &KeyReply::Error(ProtocolError::Unavailable {
                    detail: format!("the coordinator cannot read the key for {}", circuit.name),
                }),
            )
            .await;
            let _ = send.finish();
            return;
        }
    };
    let started = std::time::Instant::now();
    let found = KeyReply::Found {
        key: circuit.key_id,
        total_len: circuit.key_len,
    };
    let mut reader = tokio::io::BufReader::with_capacity(1 << 20, file);
    let sent = async {
        write_message(&mut send, &found).await?;
        send_payload_from(&mut send, &mut reader, circuit.key_len, circuit.key_id.0).await
    }
    .await;
    match sent {
        Ok(()) => {
            let _ = send.finish();
            tracing::info!(
                peer = %peer.identity,
                circuit = %circuit.name,
                bytes = circuit.key_len,
                ms = started.elapsed().as_millis() as u64,
                "proving key sent"
            );
        }
        Err(e) => {
            tracing::info!(peer = %peer.identity, circuit = %circuit.name, error = %e, "key transfer broke off")
        }
    }
}
