//! `proofrack explain TASK`: the task's full record (every admission decision with the
//! agents rejected and why, stake bound, predicted against actual proving time, failures and
//! their causes), read from the coordinator's token-protected HTTP API.

use anyhow::{bail, Context};
use clap::Args;
use proofrack_common::TaskId;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Longest wait for the coordinator's HTTP answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read (a task's record with its verdicts is far smaller).
const MAX_RESPONSE_BYTES: u64 = 16 << 20;

#[derive(Args, Clone, Debug)]
pub struct ExplainArgs {
    pub task: TaskId,
    /// The coordinator's HTTP address (`[http] listen`), host:port.
    #[arg(long, env = "PROOFRACK_HTTP", default_value = "127.0.0.1:9464")]
    pub http: String,
    /// The fleet token file (`[http] token_file`).
    #[arg(
        long,
        env = "PROOFRACK_FLEET_TOKEN_FILE",
        default_value = "/etc/proofrack/fleet.token"
    )]
    pub token_file: PathBuf,
    /// Print the record as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn explain(a: &ExplainArgs) -> anyhow::Result<()> {
    let token = proofrack_coordinator::http::load_token(&a.token_file)?;
    let host = a.http.trim_start_matches("http://").trim_end_matches('/');
    let addr = host
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host:?}"))?
        .next()
        .with_context(|| format!("{host:?} resolves to no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).with_context(|| {
        format!("connecting to the coordinator's HTTP side at {addr} ([http] listen)")
    })?;
    s.set_read_timeout(Some(HTTP_TIMEOUT))?;
    write!(
        s,
        "GET /api/tasks/{}/explain HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n",
        a.task
    )?;
    let mut raw = Vec::new();
    s.take(MAX_RESPONSE_BYTES).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("the coordinator's HTTP answer has no head")?;
    let status = head.get(9..12).unwrap_or("???");
    if status != "200" {
        bail!("the coordinator answered {status}: {}", body.trim());
    }
    let v: serde_json::Value = serde_json::from_str(body).context("the answer is not JSON")?;
    if a.json {
        crate::stdout::line(serde_json::to_string_pretty(&v["explanation"])?);
    } else {
        crate::stdout::print(v["text"].as_str().unwrap_or_default());
    }
    Ok(())
}
