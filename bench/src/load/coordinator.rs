//! The coordinator a load run measures: in this process on its own runtime (the fleet test
//! and `proofrack-bench fleet`: the core can be read directly), or as its own `proofrack
//! coordinator` process started from a generated `coordinator.toml` (`proofrack-bench
//! coordinator`: its memory and CPU are then the coordinator's alone, as an operator's host
//! would see them).

use super::proc_stats::{self, Memory};
use super::runtime::OwnRuntime;
use super::LOOPBACK_HOST;
use anyhow::{bail, Context};
use proofrack_certs::LocalPki;
use proofrack_common::client::CoordinatorClient;
use proofrack_common::protocol::{ClientRequest, ClientResponse};
use proofrack_common::tls::TlsMaterial;
use proofrack_common::{Clock, SystemClock};
use proofrack_coordinator::{
    start_server, CoordinatorConfig, RunningServer, ServerSettings, TlsPaths, STORE_THREAD_NAME,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// Name of an in-process coordinator's runtime threads (15 bytes: Linux truncates thread
/// names there); its CPU time is theirs and the store's committer's.
pub const COORDINATOR_THREAD_NAME: &str = "proofrack-coord";
/// How long a child coordinator may take to answer its first request (it generates the
/// circuits' keys on first start).
const CHILD_START_TIMEOUT: Duration = Duration::from_secs(120);
/// Between connection attempts while the child starts.
const CHILD_START_POLL: Duration = Duration::from_millis(50);

/// Where the coordinator under load runs.
#[derive(Clone, Debug, Default)]
pub enum CoordinatorSite {
    /// In this process, on its own runtime ([`COORDINATOR_THREAD_NAME`]).
    #[default]
    InProcess,
    /// `binary coordinator --config <dir>/coordinator.toml`; its stderr goes to
    /// `<dir>/coordinator.log`.
    OwnProcess { binary: PathBuf },
}

/// A running coordinator under load.
pub enum CoordinatorUnderLoad {
    InProcess {
        runtime: OwnRuntime,
        server: RunningServer,
    },
    OwnProcess {
        child: Child,
        addr: SocketAddr,
        /// Queries (listing, bound count) on their own connection.
        observer: CoordinatorClient,
    },
}

impl CoordinatorUnderLoad {
    /// Starts one serving `config` at `site`, with the certificates of `pki` and its state
    /// under `dir` (`config`'s `listen`, `tls` and `data_dir` are filled in here). `client`
    /// is the material the child's observer connects with.
    pub async fn start(
        site: &CoordinatorSite,
        mut config: CoordinatorConfig,
        pki: &LocalPki,
        client: &TlsMaterial,
        dir: &Path,
    ) -> anyhow::Result<CoordinatorUnderLoad> {
        config.data_dir = dir.join("coordinator-state");
        config.tls = TlsPaths {
            ca_cert: pki.dir().ca_cert_path(),
            cert: pki.dir().cert_path(pki.coordinator()),
            key: pki.dir().key_path(pki.coordinator()),
        };
        match site {
            CoordinatorSite::InProcess => start_in_process(config).await,
            CoordinatorSite::OwnProcess { binary } => {
                start_process(binary, config, client, dir).await
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            CoordinatorUnderLoad::InProcess { server, .. } => server.local_addr,
            CoordinatorUnderLoad::OwnProcess { addr, .. } => *addr,
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
            CoordinatorUnderLoad::OwnProcess { observer, .. } => {
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
            CoordinatorUnderLoad::OwnProcess { observer, .. } => {
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
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        match self {
            CoordinatorUnderLoad::InProcess { .. } => Ok(proc_stats::threads_cpu_time(&[
                COORDINATOR_THREAD_NAME,
                STORE_THREAD_NAME,
            ])),
            CoordinatorUnderLoad::OwnProcess { child, .. } => {
                Ok(proc_stats::cpu_time(&proc_stats::stat_path(child.id()))?)
            }
        }
    }

    /// The coordinator's process id when it runs as its own process.
    pub fn pid(&self) -> Option<u32> {
        match self {
            CoordinatorUnderLoad::InProcess { .. } => None,
            CoordinatorUnderLoad::OwnProcess { child, .. } => Some(child.id()),
        }
    }

    /// Resident memory: the whole process's in process (agents and client included), the
    /// coordinator's alone otherwise.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let pid = self.pid().unwrap_or_else(std::process::id);
        Ok(proc_stats::memory(&proc_stats::status_path(pid))?)
    }

    /// Whether [`CoordinatorUnderLoad::memory`] is the coordinator's alone.
    pub fn measured_alone(&self) -> bool {
        matches!(self, CoordinatorUnderLoad::OwnProcess { .. })
    }

    pub async fn shutdown(self) -> anyhow::Result<()> {
        match self {
            CoordinatorUnderLoad::InProcess { runtime, server } => {
                runtime.spawn(server.shutdown()).await?;
                drop(runtime);
            }
            CoordinatorUnderLoad::OwnProcess {
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

/// The server on its own runtime, on a free loopback port.
async fn start_in_process(mut config: CoordinatorConfig) -> anyhow::Result<CoordinatorUnderLoad> {
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let runtime = OwnRuntime::new(COORDINATOR_THREAD_NAME)?;
    let settings = ServerSettings::from_config(&config).await?;
    let server = runtime
        .spawn(start_server(settings))
        .await
        .context("coordinator runtime")??;
    Ok(CoordinatorUnderLoad::InProcess { runtime, server })
}

/// `binary coordinator` from a `coordinator.toml` written under `dir`, once it answers.
async fn start_process(
    binary: &Path,
    mut config: CoordinatorConfig,
    client: &TlsMaterial,
    dir: &Path,
) -> anyhow::Result<CoordinatorUnderLoad> {
    // A free port: bound and released (the child binds it a moment later).
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    config.listen = addr;
    config.http.enabled = false;
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
    match wait_answering(&mut child, addr, client, &log_path).await {
        Ok(observer) => Ok(CoordinatorUnderLoad::OwnProcess {
            child,
            addr,
            observer,
        }),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// A client connection to the child once it answers a request.
async fn wait_answering(
    child: &mut Child,
    addr: SocketAddr,
    client: &TlsMaterial,
    log_path: &Path,
) -> anyhow::Result<CoordinatorClient> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the coordinator exited at start ({status}); see {}",
                log_path.display()
            );
        }
        let failed = match CoordinatorClient::connect(addr, LOOPBACK_HOST, client).await {
            Ok(c) => match c.request(ClientRequest::Circuits).await {
                Ok(_) => return Ok(c),
                Err(e) => {
                    c.close().await;
                    anyhow::Error::from(e)
                }
            },
            Err(e) => anyhow::Error::from(e),
        };
        if started.elapsed() > CHILD_START_TIMEOUT {
            bail!("the coordinator did not answer within {CHILD_START_TIMEOUT:?}: {failed:#}");
        }
        tokio::time::sleep(CHILD_START_POLL).await;
    }
}
