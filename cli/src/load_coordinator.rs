//! The coordinator a load run measures: in this process on its own runtime (the fleet test
//! and `proofrack-bench fleet`: the core can be read directly), or as its own `proofrack
//! coordinator` process started from a generated `coordinator.toml` (`proofrack-bench
//! coordinator`: its memory and CPU are then the coordinator's alone, as an operator's host
//! would see them).

use crate::fleet_load::{coordinator_cpu_time, process_rss_bytes, OwnRuntime};
use anyhow::{bail, Context};
use proofrack_certs::CertsDir;
use proofrack_common::client::CoordinatorClient;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{ClientRequest, ClientResponse};
use proofrack_common::{Clock, SystemClock};
use proofrack_coordinator::config::{CoordinatorConfig, OperatorStake, TlsPaths};
use proofrack_coordinator::server::{self, RunningServer, ServerSettings};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the coordinator under load runs.
#[derive(Clone, Debug, Default)]
pub enum Placement {
    /// In this process, on its own runtime ([`crate::fleet_load::COORDINATOR_THREAD_NAME`]).
    #[default]
    InProcess,
    /// `binary coordinator --config <dir>/coordinator.toml`; its stderr goes to
    /// `<dir>/coordinator.log`.
    Process { binary: PathBuf },
}

/// How long the child coordinator may take to answer its first request (it generates the
/// circuit's keys on first start).
const CHILD_START_TIMEOUT: Duration = Duration::from_secs(120);
/// Between connection attempts while the child starts.
const CHILD_START_POLL: Duration = Duration::from_millis(50);

/// A running coordinator under load.
pub enum CoordinatorUnderLoad {
    InProcess {
        runtime: OwnRuntime,
        server: RunningServer,
    },
    Process {
        child: std::process::Child,
        addr: SocketAddr,
        /// Queries (listing, bound count) on their own connection.
        observer: CoordinatorClient,
    },
}

impl CoordinatorUnderLoad {
    /// Starts one serving `config` (its `listen`, `tls` and `data_dir` are filled in here).
    /// `certs` holds the coordinator's and `client`'s certificates.
    pub async fn start(
        placement: &Placement,
        mut config: CoordinatorConfig,
        certs: &CertsDir,
        coordinator: &Identity,
        client: &Identity,
        dir: &Path,
    ) -> anyhow::Result<CoordinatorUnderLoad> {
        let data_dir = dir.join("coordinator-state");
        match placement {
            Placement::InProcess => {
                let runtime = OwnRuntime::new(crate::fleet_load::COORDINATOR_THREAD_NAME)?;
                let keys_dir = data_dir.join("keys");
                let names = config.circuits.clone();
                let registry = tokio::task::spawn_blocking(move || {
                    proofrack_coordinator::registry::CircuitRegistry::load_or_generate(
                        &keys_dir, &names,
                    )
                })
                .await??;
                let settings = ServerSettings {
                    listen: "127.0.0.1:0".parse().expect("literal address"),
                    tls: certs.tls_material(coordinator)?,
                    revocation: certs.revocation_handle()?,
                    policy: config.policy.clone(),
                    delegations: config.delegations(),
                    registry,
                    clock: std::sync::Arc::new(SystemClock),
                    telemetry_interval_ms: config.telemetry_interval_ms,
                    state: server::StateLocation::Dir(data_dir),
                    limits: config.limits.clone(),
                };
                let server = runtime
                    .spawn(server::start(settings))
                    .await
                    .context("coordinator runtime")??;
                Ok(CoordinatorUnderLoad::InProcess { runtime, server })
            }
            Placement::Process { binary } => {
                // A free port: bound and released (the child binds it a moment later).
                let port = std::net::UdpSocket::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port();
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                config.listen = addr;
                config.data_dir = data_dir;
                config.http.enabled = false;
                config.tls = TlsPaths {
                    ca_cert: certs.ca_cert_path(),
                    cert: certs.cert_path(coordinator),
                    key: certs.key_path(coordinator),
                };
                let config_path = dir.join("coordinator.toml");
                std::fs::write(&config_path, toml::to_string(&config)?)
                    .with_context(|| format!("writing {}", config_path.display()))?;
                let log_path = dir.join("coordinator.log");
                let log = std::fs::File::create(&log_path)
                    .with_context(|| format!("creating {}", log_path.display()))?;
                let mut child = std::process::Command::new(binary)
                    .arg("coordinator")
                    .arg("--config")
                    .arg(&config_path)
                    .stdout(std::process::Stdio::null())
                    .stderr(log)
                    .spawn()
                    .with_context(|| format!("starting {}", binary.display()))?;
                let started = Instant::now();
                let material = certs.tls_material(client)?;
                let observer = loop {
                    if let Some(status) = child.try_wait()? {
                        bail!(
                            "the coordinator exited at start ({status}); see {}",
                            log_path.display()
                        );
                    }
                    match CoordinatorClient::connect(addr, "127.0.0.1", &material).await {
                        Ok(c) => match c.request(ClientRequest::Circuits).await {
                            Ok(_) => break c,
                            Err(_) => c.close().await,
                        },
                        Err(_) if started.elapsed() < CHILD_START_TIMEOUT => {}
                        Err(e) => {
                            let _ = child.kill();
                            bail!("the coordinator did not answer within {CHILD_START_TIMEOUT:?}: {e:#}")
                        }
                    }
                    tokio::time::sleep(CHILD_START_POLL).await;
                };
                Ok(CoordinatorUnderLoad::Process {
                    child,
                    addr,
                    observer,
                })
            }
        }
    }

    /// The coordinator's process id when it runs as its own process.
    pub fn pid(&self) -> Option<u32> {
        match self {
            CoordinatorUnderLoad::InProcess { .. } => None,
            CoordinatorUnderLoad::Process { child, .. } => Some(child.id()),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            CoordinatorUnderLoad::InProcess { server, .. } => server.local_addr,
            CoordinatorUnderLoad::Process { addr, .. } => *addr,
        }
    }

    /// Agents connected with telemetry.
    pub async fn agents_listed(&self) -> anyhow::Result<usize> {
        match self {
            CoordinatorUnderLoad::InProcess { server, .. } => Ok(server.shared.read(|core, _| {
                core.agent_rows(SystemClock.now())
                    .iter()
                    .filter(|r| r.connected && r.telemetry_age_ms.is_some())
                    .count()
            })),
            CoordinatorUnderLoad::Process { observer, .. } => {
                match observer.request(ClientRequest::Agents).await? {
                    // The listing holds at most MAX_VIEW_ROWS rows; the count covers all.
                    ClientResponse::Agents(view) => Ok(view.agents_reporting as usize),
                    other => bail!("agents listing refused: {other:?}"),
                }
            }
        }
    }

    /// Tasks whose stake is bound.
    pub async fn bound_tasks(&self) -> anyhow::Result<usize> {
        match self {
            CoordinatorUnderLoad::InProcess { server, .. } => Ok(server
                .shared
                .read(|core, _| core.ledger().bindings().count())),
            CoordinatorUnderLoad::Process { observer, .. } => {
                match observer.request(ClientRequest::Ledger).await? {
                    ClientResponse::Ledger(view) => {
                        Ok(view.operators.iter().map(|o| o.bound_tasks as usize).sum())
                    }
                    other => bail!("ledger refused: {other:?}"),
                }
            }
        }
    }

    /// CPU time the coordinator used so far: its runtime's and store's threads in process,
    /// the whole child otherwise.
    pub fn cpu_time(&self) -> Duration {
        match self {
            CoordinatorUnderLoad::InProcess { .. } => coordinator_cpu_time(),
            CoordinatorUnderLoad::Process { child, .. } => {
                process_cpu_time(Path::new(&format!("/proc/{}/stat", child.id())))
            }
        }
    }

    /// (VmRSS, VmHWM): the whole process's in process (agents and client included), the
    /// coordinator's alone otherwise.
    pub fn rss_bytes(&self) -> (u64, u64) {
        match self {
            CoordinatorUnderLoad::InProcess { .. } => process_rss_bytes(),
            CoordinatorUnderLoad::Process { child, .. } => {
                crate::fleet_load::rss_from_status(&format!("/proc/{}/status", child.id()))
            }
        }
    }

    /// Whether [`CoordinatorUnderLoad::rss_bytes`] is the coordinator's alone.
    pub fn measured_alone(&self) -> bool {
        matches!(self, CoordinatorUnderLoad::Process { .. })
    }

    pub async fn shutdown(self) -> anyhow::Result<()> {
        match self {
            CoordinatorUnderLoad::InProcess { runtime, server } => {
                runtime.spawn(server.shutdown()).await?;
                drop(runtime);
            }
            CoordinatorUnderLoad::Process {
                mut child,
                observer,
                ..
            } => {
                observer.close().await;
                // SIGTERM: the coordinator's graceful stop (commits, closes connections).
                let _ = std::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status();
                let status = tokio::task::spawn_blocking(move || child.wait()).await??;
                if !status.success() {
                    bail!("the coordinator exited with {status} after SIGTERM");
                }
            }
        }
        Ok(())
    }
}

/// utime + stime of a process or thread from its `/proc/.../stat`; zero if it cannot be read.
pub fn process_cpu_time(stat_path: &Path) -> Duration {
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the parenthesised name: state is field 3; utime 14, stime 15.
    let ticks = stat.rsplit_once(')').map_or(0, |(_, rest)| {
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        field(11) + field(12)
    });
    Duration::from_secs_f64(ticks as f64 / ticks_per_sec)
}

/// Builds the `[[operators]]` list of a load's coordinator.
pub fn operators(
    delegations: Vec<(proofrack_common::OperatorId, proofrack_common::StakeUnits)>,
) -> Vec<OperatorStake> {
    delegations
        .into_iter()
        .map(|(id, delegated)| OperatorStake { id, delegated })
        .collect()
}
