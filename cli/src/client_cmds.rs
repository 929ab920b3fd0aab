//! The client commands: they talk to a running coordinator with a client certificate.

use crate::tables;
use anyhow::{bail, Context};
use clap::Args;
use proofrack_certs::CertsDir;
use proofrack_common::client::{ClientError, CoordinatorClient};
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{ClientRequest, ClientResponse, SubmitRequest, TaskState};
use proofrack_common::tls::TlsMaterial;
use proofrack_common::{Clock, StakeUnits, SystemClock, TaskId};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// How to reach the coordinator and who we are.
#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    /// The coordinator, host:port (its certificate must name the host).
    #[arg(long, env = "PROOFRACK_COORDINATOR", default_value = "127.0.0.1:4433")]
    pub coordinator: String,
    /// Directory with ca.pem and the identity's certificate and key (from `proofrack certs`).
    #[arg(long, env = "PROOFRACK_CERTS", default_value = "certs")]
    pub certs: PathBuf,
    /// The client certificate's name (client-NAME.pem in the certs directory): the same as
    /// `--identity client/NAME`.
    #[arg(long, env = "PROOFRACK_CLIENT", default_value = "cli")]
    pub client: String,
    /// Who to act as, by identity, with its certificate from the certs directory:
    /// `client/NAME` (a requester), `operator/OP/admin/NAME` (an operator's admin) or
    /// `admin/NAME` (a deployment admin). Takes precedence over --client.
    #[arg(long, env = "PROOFRACK_IDENTITY")]
    pub identity: Option<String>,
    /// A certificate file to act with instead (its identity is read from it); needs --key.
    /// The CA certificate still comes from the certs directory.
    #[arg(long, requires = "key", conflicts_with = "identity")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Print JSON instead of tables (schema: docs/json.md).
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the coordinator to answer the connection (agents wait longer,
    /// a person at a prompt should not).
    #[arg(
        long,
        env = "PROOFRACK_CONNECT_TIMEOUT",
        default_value = DEFAULT_CONNECT_TIMEOUT,
        value_parser = crate::duration::parse_duration
    )]
    pub connect_timeout: Duration,
}

/// A coordinator on a rack's control network answers a QUIC handshake in milliseconds; three
/// seconds covers a loaded one and a lost first packet (QUIC resends after ~1 s), and is a
/// quarter of the 12 s an agent's connection allows before it counts as dead.
pub const DEFAULT_CONNECT_TIMEOUT: &str = "3s";

impl ClientArgs {
    pub async fn connect(&self) -> anyhow::Result<CoordinatorClient> {
        let (addr, host) = resolve(&self.coordinator)?;
        let material = self.material()?;
        match CoordinatorClient::connect_within(addr, &host, &material, self.connect_timeout).await
        {
            Err(ClientError::NoAnswer { addr, waited }) => Err(anyhow::anyhow!(
                "no answer from a coordinator at {}within {}. Likely causes: no \
                 coordinator listens on UDP port {} there (is `proofrack coordinator` running? \
                 check its `listen`), a firewall drops UDP to that port, or the address is \
                 wrong (--coordinator or PROOFRACK_COORDINATOR). A slow network: raise \
                 --connect-timeout",
                if addr.to_string() == self.coordinator {
                    format!("{addr} ")
                } else {
                    format!("{} ({addr}) ", self.coordinator)
                },
                proofrack_common::timefmt::span(waited),
                addr.port()
            )),
            other => Ok(other?),
        }
    }

    /// The certificate and key to act with: --cert/--key, else --identity's, else
    /// --client's from the certs directory.
    pub fn material(&self) -> anyhow::Result<TlsMaterial> {
        let dir = CertsDir::new(&self.certs);
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            return TlsMaterial::load(&dir.ca_cert_path(), cert, key)
                .with_context(|| format!("loading {} and {}", cert.display(), key.display()));
        }
        let identity = match &self.identity {
            Some(path) => path.parse::<Identity>().with_context(|| {
                format!(
                    "--identity {path:?}: write client/NAME, operator/OP/admin/NAME or admin/NAME"
                )
            })?,
            None => Identity::client(&self.client)
                .with_context(|| format!("client name {:?}", self.client))?,
        };
        dir.tls_material(&identity).with_context(|| {
            format!(
                "loading the certificate of {identity} from {} (issue it with `proofrack certs issue`)",
                self.certs.display()
            )
        })
    }
}

/// `host:port` → (socket address, host for the certificate check).
pub fn resolve(s: &str) -> anyhow::Result<(SocketAddr, String)> {
    let (host, _) = s
        .rsplit_once(':')
        .with_context(|| format!("{s:?} is not host:port"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addr = s
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {s:?}"))?
        .next()
        .with_context(|| format!("{s:?} resolves to no address"))?;
    Ok((addr, host))
}

#[derive(Args, Clone, Debug)]
pub struct SubmitArgs {
    /// A registered circuit (see `proofrack circuits`).
    #[arg(long)]
    pub circuit: String,
    /// The circuit's inputs, a JSON file (e.g. {"x": "42"}); `-` reads standard input. For a
    /// circom circuit give --wasm too: the witness is computed here and sent.
    #[arg(long, required_unless_present = "wtns", conflicts_with = "wtns")]
    pub input: Option<PathBuf>,
    /// A circom circuit's witness (`snarkjs wtns calculate`), sent as is; the coordinator
    /// checks it against the circuit's constraints before any stake is bound.
    #[arg(long)]
    pub wtns: Option<PathBuf>,
    /// A circom circuit's witness generator (`circom --wasm`, `<name>_js/<name>.wasm`), to
    /// compute the witness from --input on this machine.
    #[arg(long, requires = "input")]
    pub wasm: Option<PathBuf>,
    /// The snarkjs command used with --wasm.
    #[arg(long, env = "PROOFRACK_SNARKJS", default_value = "snarkjs")]
    pub snarkjs: PathBuf,
    /// With --wait: write the proof here as snarkjs proof.json and public.json (and
    /// proof.bin) once verified.
    #[arg(long, requires = "wait")]
    pub out_dir: Option<PathBuf>,
    /// How long the proof may take, e.g. 30s.
    #[arg(long, value_parser = crate::duration::parse_duration)]
    pub deadline: Duration,
    /// Stake (base units) the proving operator binds until the proof is verified.
    #[arg(long)]
    pub collateral: StakeUnits,
    /// Follow the task until it is verified or failed.
    #[arg(long)]
    pub wait: bool,
    /// Idempotency id for this request; a retry with the same id returns the same task.
    #[arg(long)]
    pub request_id: Option<u64>,
}

pub async fn submit(c: &ClientArgs, s: &SubmitArgs) -> anyhow::Result<()> {
    let request_id = s.request_id.unwrap_or_else(rand::random);
    let witness = crate::circom_cmds::witness_for(s)?;
    let client = c.connect().await?;
    let reply = match (&witness, &s.input) {
        (Some(wtns), _) => {
            client
                .request_with_payloads(crate::circom_cmds::submit_request(s, request_id), &[wtns])
                .await?
        }
        (None, Some(input)) => {
            let inputs = if input.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
                b
            } else {
                std::fs::read(input).with_context(|| format!("reading {}", input.display()))?
            };
            client
                .request(ClientRequest::Submit(SubmitRequest {
                    circuit: s.circuit.clone(),
                    inputs,
                    collateral: s.collateral,
                    deadline_ms: s.deadline.as_millis() as u64,
                    request_id,
                }))
                .await?
        }
        (None, None) => bail!("give --input (JSON inputs) or --wtns (a circom witness)"),
    };
    let task = match reply {
        ClientResponse::Submitted { task } => task,
        ClientResponse::Rejected { reason } => bail!("submission rejected: {reason}"),
        ClientResponse::Error(e) => bail!("{e}"),
        other => bail!("unexpected reply {other:?}"),
    };
    if c.json && !s.wait {
        crate::stdout::line(serde_json::json!({ "task": task.to_string() }));
    } else if !c.json {
        crate::stdout::line(format!("submitted {task}"));
    }
    if s.wait {
        let clock = SystemClock;
        let json = c.json;
        let last = client
            .watch(task, |v| {
                if !json {
                    crate::stdout::line(tables::status_line(v, clock.now()));
                }
            })
            .await?;
        if json {
            crate::stdout::line(crate::json_out::to_text(&crate::json_out::TaskJson::from(
                &last,
            ))?);
        }
        client.close().await;
        if let TaskState::Failed { reason, .. } = &last.state {
            bail!("{task} failed: {reason}");
        }
        crate::circom_cmds::finish_out_dir(task, s.out_dir.as_deref(), &last)?;
    } else {
        client.close().await;
    }
    Ok(())
}

/// `proofrack status`: options beyond the task id.
#[derive(Args, Clone, Debug)]
pub struct StatusArgs {
    /// Follow the task until it is verified or failed.
    #[arg(long)]
    pub wait: bool,
    /// Write the verified proof here as snarkjs proof.json and public.json (and proof.bin).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

pub async fn status(c: &ClientArgs, task: TaskId, a: &StatusArgs) -> anyhow::Result<()> {
    let client = c.connect().await?;
    let reply = if a.wait {
        let clock = SystemClock;
        let json = c.json;
        let last = client
            .watch(task, |v| {
                if !json {
                    crate::stdout::line(tables::status_line(v, clock.now()));
                }
            })
            .await?;
        ClientResponse::Status(last)
    } else {
        client.request(ClientRequest::Status { task }).await?
    };
    client.close().await;
    if let (ClientResponse::Status(v), Some(dir)) = (&reply, &a.out_dir) {
        crate::circom_cmds::finish_out_dir(task, Some(dir), v)?;
    }
    match reply {
        ClientResponse::Status(v) if c.json => crate::stdout::line(crate::json_out::to_text(
            &crate::json_out::TaskJson::from(&v),
        )?),
        ClientResponse::Status(v) => crate::stdout::print(tables::status(&v, SystemClock.now())),
        ClientResponse::Error(e) => bail!("{e}"),
        other => bail!("unexpected reply {other:?}"),
    }
    Ok(())
}

#[derive(clap::Args, Clone, Debug)]
pub struct TasksArgs {
    /// Only tasks in this state: queued, offered, proving, verifying, verified, failed or
    /// reassigning.
    #[arg(long)]
    pub state: Option<String>,
    /// Only tasks older than this one (the next page: the last id of the previous one).
    #[arg(long)]
    pub before: Option<TaskId>,
    /// Most tasks listed (the coordinator sends at most 256 at once).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

/// `proofrack tasks`: the caller's tasks, newest first.
pub async fn tasks(c: &ClientArgs, a: &TasksArgs) -> anyhow::Result<()> {
    if let Some(state) = &a.state {
        // Said here, before connecting; the coordinator checks the same.
        proofrack_common::protocol::check_task_state(state)
            .map_err(|e| anyhow::anyhow!("--state {e}"))?;
    }
    let client = c.connect().await?;
    let reply = client
        .request(ClientRequest::Tasks {
            state: a.state.clone(),
            before: a.before,
            limit: a.limit,
        })
        .await;
    client.close().await;
    match reply? {
        ClientResponse::Tasks(v) if c.json => crate::stdout::line(crate::json_out::to_text(
            &crate::json_out::TaskListJson::from(&v),
        )?),
        ClientResponse::Tasks(v) => crate::stdout::print(tables::tasks(&v, SystemClock.now())),
        ClientResponse::Error(e) => bail!("{e}"),
        other => bail!("unexpected reply {other:?}"),
    }
    Ok(())
}

pub async fn table(c: &ClientArgs, req: ClientRequest) -> anyhow::Result<()> {
    let client = c.connect().await?;
    let reply = client.request(req).await?;
    client.close().await;
    use crate::json_out::{to_text, AgentsJson, CircuitsJson, LedgerJson};
    match reply {
        ClientResponse::Ledger(v) if c.json => crate::stdout::line(to_text(&LedgerJson::from(&v))?),
        ClientResponse::Ledger(v) => crate::stdout::print(tables::ledger(&v)),
        ClientResponse::Agents(v) if c.json => crate::stdout::line(to_text(&AgentsJson::from(&v))?),
        ClientResponse::Agents(v) => crate::stdout::print(tables::agents(&v)),
        ClientResponse::Circuits(v) if c.json => {
            crate::stdout::line(to_text(&CircuitsJson::from(&v))?)
        }
        ClientResponse::Circuits(v) => crate::stdout::print(tables::circuits(&v)),
        ClientResponse::Error(e) => bail!("{e}"),
        other => bail!("unexpected reply {other:?}"),
    }
    Ok(())
}

/// `proofrack circuits vk NAME`: the circuit's verifying key from the coordinator, written
/// as snarkjs' `verification_key.json` (`-`: printed).
pub async fn verification_key(
    c: &ClientArgs,
    name: &str,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let client = c.connect().await?;
    let reply = client
        .request(ClientRequest::VerificationKey {
            circuit: name.to_string(),
        })
        .await;
    client.close().await;
    let view = match reply? {
        ClientResponse::VerificationKey(v) => v,
        ClientResponse::Error(e) => bail!("{e}"),
        other => bail!("unexpected reply {other:?}"),
    };
    let vk = proofrack_kernels::groth16::vk_from_bytes(&view.vk)
        .with_context(|| format!("the coordinator's verifying key of {name}"))?;
    let text = serde_json::to_string_pretty(&proofrack_snarkjs::json::vk_to_json(&vk))? + "\n";
    if out.as_os_str() == "-" {
        crate::stdout::print(&text);
        return Ok(());
    }
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "{}: the verification key of {} (proving key {}) written; check a proof with `snarkjs groth16 verify {} public.json proof.json`",
        out.display(),
        view.circuit,
        view.key.short(),
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A coordinator that never answers (a UDP socket that drops everything, as a firewall
    /// does): the client gives up after its connect timeout and says where, how long and why.
    #[tokio::test]
    async fn a_connect_nobody_answers_names_the_address_the_wait_and_the_causes() {
        use proofrack_certs::{CertsDir, InitOptions, IssueOptions};
        use proofrack_common::identity::TrustDomain;
        let dir = std::env::temp_dir().join(format!("proofrack-no-answer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let certs = CertsDir::new(&dir);
        let now = SystemClock.now();
        certs
            .init(
                &InitOptions {
                    trust_domain: TrustDomain::new("rack1.example").unwrap(),
                    days: 30,
                    force: false,
                },
                now,
            )
            .unwrap();
        certs
            .issue(
                &Identity::client("cli").unwrap(),
                &IssueOptions {
                    days: 1,
                    force: false,
                },
                now,
            )
            .unwrap();
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let args = ClientArgs {
            coordinator: addr.to_string(),
            certs: dir.clone(),
            client: "cli".into(),
            identity: None,
            cert: None,
            key: None,
            json: false,
            connect_timeout: Duration::from_millis(300),
        };
        let started = std::time::Instant::now();
        let e = match args.connect().await {
            Ok(_) => panic!("nothing answers there"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "gave up after {:?}",
            started.elapsed()
        );
        assert!(
            e.starts_with(&format!(
                "no answer from a coordinator at {addr} within 300 ms."
            )),
            "{e}"
        );
        for cause in [
            "is `proofrack coordinator` running?",
            "firewall",
            "--connect-timeout",
        ] {
            assert!(e.contains(cause), "{cause}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
