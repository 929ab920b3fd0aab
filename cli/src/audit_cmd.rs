//! `proofrack audit`: the coordinator's audit log of administrators' actions (drain, undrain,
//! withdraw, breaker reset, circuit registration and removal), allowed and refused. A
//! deployment admin reads every line, an operator admin its operator's.

use crate::client_cmds::ClientArgs;
use anyhow::bail;
use clap::Args;
use proofrack_common::protocol::{AuditView, ClientRequest, ClientResponse, MAX_AUDIT_VIEW_ROWS};
use proofrack_common::OperatorId;

#[derive(Args, Clone, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only this operator's lines (an operator admin sees only its own anyway).
    #[arg(long)]
    pub operator: Option<String>,
    /// The newest this many lines (at most 128 per request; page with --before).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Only lines older than this sequence number (the SEQ column), to page back.
    #[arg(long)]
    pub before: Option<u64>,
}

pub async fn audit(a: &AuditArgs) -> anyhow::Result<()> {
    let operator = a
        .operator
        .as_deref()
        .map(|op| OperatorId::new(op).map_err(|e| anyhow::anyhow!("--operator {op:?}: {e}")))
        .transpose()?;
    let client = a.client.connect().await?;
    let reply = client
        .request(ClientRequest::Audit {
            before: a.before,
            operator,
            limit: a.limit.min(MAX_AUDIT_VIEW_ROWS as u32),
        })
        .await?;
    client.close().await;
    match reply {
        ClientResponse::Audit(v) if a.client.json => {
            println!("{}", serde_json::to_string_pretty(&v)?)
        }
        ClientResponse::Audit(v) => print!("{}", table(&v)),
        ClientResponse::Error(e) => bail!("{e}"),
        other => bail!("unexpected reply {other:?}"),
    }
    Ok(())
}

/// The lines as a table, oldest first, with how many are kept.
pub fn table(v: &AuditView) -> String {
    let mut out = format!(
        "{:>6}  {:<24} {:<32} {:<8} {:<36} MESSAGE\n",
        "SEQ", "AT", "WHO", "RESULT", "ACTION"
    );
    for l in &v.lines {
        out.push_str(&format!(
            "{:>6}  {:<24} {:<32} {:<8} {:<36} {}\n",
            l.seq,
            l.at.to_string(),
            l.who,
            l.outcome.name(),
            l.action,
            l.message
        ));
    }
    out.push_str(&format!(
        "{} shown of {} kept (the coordinator keeps the newest {})\n",
        v.lines.len(),
        v.kept,
        v.cap
    ));
    out
}
