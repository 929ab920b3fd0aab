//! Operators' commands: `proofrack drain` and `proofrack operator withdraw`.
//!
//! Each carries a request id (random unless given) and is retried with the same id when the
//! connection fails before the reply: the coordinator answers a repeated id with its first
//! reply, so a retry never drains or withdraws twice.

use crate::client_cmds::ClientArgs;
use anyhow::bail;
use proofrack_common::protocol::{ClientRequest, ClientResponse};
use std::time::Duration;

/// Attempts before giving up on an unreachable coordinator.
const ATTEMPTS: u32 = 3;
/// Pause between attempts; a restarting coordinator is back within seconds.
const RETRY_PAUSE: Duration = Duration::from_secs(2);

pub async fn run(c: &ClientArgs, req: ClientRequest) -> anyhow::Result<()> {
    let mut last_error = None;
    for attempt in 1..=ATTEMPTS {
        let reply = async {
            let client = c.connect().await?;
            let reply = client.request(req.clone()).await?;
            client.close().await;
            anyhow::Ok(reply)
        }
        .await;
        match reply {
            Ok(ClientResponse::Admin { ok, message }) => {
                // A refusal is the command's error, printed once (by main, to stderr); with
                // --json it is also the document on stdout, so programs get it either way.
                if c.json {
                    crate::stdout::line(serde_json::json!({ "ok": ok, "message": message }));
                } else if ok {
                    crate::stdout::line(&message);
                }
                if !ok {
                    bail!("refused: {message}");
                }
                return Ok(());
            }
            Ok(ClientResponse::Error(e)) => bail!("{e}"),
            Ok(other) => bail!("unexpected reply {other:?}"),
            Err(e) => {
                eprintln!("attempt {attempt} of {ATTEMPTS} failed: {e:#}");
                last_error = Some(e);
                if attempt < ATTEMPTS {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
    Err(last_error
        .expect("at least one attempt")
        .context("the coordinator did not answer; retrying with the same --request-id is safe"))
}
