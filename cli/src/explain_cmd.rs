//! `proofrack explain TASK`: the task's full record (every admission decision with the
//! agents rejected and why, stake bound, predicted against actual proving time, failures and
//! their causes), asked over QUIC with the client's certificate like every other client
//! command, under the same authorization as `status` (someone else's task answers like an
//! unknown one). The fleet token is only for the browser page.

use crate::client_cmds::ClientArgs;
use anyhow::{bail, Context};
use clap::Args;
use proofrack_common::protocol::{ClientRequest, ClientResponse};
use proofrack_common::TaskId;

#[derive(Args, Clone, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub task: TaskId,
}

pub async fn explain(a: &ExplainArgs) -> anyhow::Result<()> {
    let client = a.client.connect().await?;
    let reply = client
        .request(ClientRequest::Explain { task: a.task })
        .await;
    client.close().await;
    match reply? {
        ClientResponse::Explanation { json, .. } if a.client.json => {
            let v: serde_json::Value =
                serde_json::from_str(&json).context("the coordinator's explanation is not JSON")?;
            crate::stdout::line(serde_json::to_string_pretty(&v)?);
        }
        ClientResponse::Explanation { text, .. } => crate::stdout::print(&text),
        ClientResponse::Error(e) => bail!("{e}"),
        other => bail!("unexpected reply {other:?}"),
    }
    Ok(())
}
