//! `proofrack devnet`: the whole system on one machine. Certificates in a data directory, a
//! coordinator on loopback with the stake of two operators, two agents per operator (each
//! its own QUIC connection, certificate and key cache), and a stream of tasks of mixed sizes
//! submitted by a client, followed until every proof is verified.

use crate::tables;
use anyhow::{bail, Context};
use proofrack_agent::{AgentConfig, AgentTls, BackendChoice};
use proofrack_certs::{CertsDir, LocalPki, LocalPkiOptions, DEFAULT_LEAF_DAYS};
use proofrack_common::client::CoordinatorClient;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{
    ClientRequest, ClientResponse, LedgerView, SubmitRequest, TaskState,
};
use proofrack_common::{Clock, OperatorId, StakeUnits, SystemClock, TaskId};
use proofrack_coordinator::{CoordinatorConfig, OperatorStake, Policy, TlsPaths};
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The devnet's operators and their delegated stake: enough for a few tasks each at once,
/// so the ledger visibly binds and frees, and a 40-collateral task can wait for stake.
pub const DEVNET_OPERATORS: [(&str, u128); 2] = [("op-a", 100), ("op-b", 80)];
/// Collaterals drawn for devnet tasks.
pub const DEVNET_COLLATERALS: [u128; 3] = [20, 30, 40];
/// Deadline of devnet tasks: generous for a 2-core CPU box proving 2^14 circuits.
pub const DEVNET_DEADLINE: Duration = Duration::from_secs(120);
/// Where the devnet's coordinator listens; its certificate names it.
const COORDINATOR_HOST: &str = "127.0.0.1";

#[derive(Clone, Debug)]
pub struct DevnetOptions {
    pub data_dir: PathBuf,
    /// Stop after this many tasks; `None` runs until Ctrl-C.
    pub tasks: Option<usize>,
    pub circuits: Vec<String>,
    pub agents_per_operator: usize,
    /// Tasks submitted and not yet finished, at most.
    pub in_flight: usize,
    pub seed: u64,
    pub backend: BackendChoice,
    /// Print status lines and tables (off in tests).
    pub verbose: bool,
    /// Stake on a local anvil chain instead of the config file (`devnet_chain`).
    pub chain: bool,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        DevnetOptions {
            data_dir: PathBuf::from("devnet-data"),
            tasks: Some(24),
            circuits: vec!["mimc-10".into(), "mimc-12".into(), "mimc-14".into()],
            agents_per_operator: 2,
            in_flight: 6,
            seed: 1,
            backend: BackendChoice::Auto,
            verbose: true,
            chain: false,
        }
    }
}

/// What a devnet run did.
#[derive(Debug)]
pub struct DevnetReport {
    pub submitted: usize,
    pub verified: usize,
    pub failed: Vec<(TaskId, String)>,
    pub ledger: LedgerView,
    pub elapsed: Duration,
}

/// Runs the devnet until `opts.tasks` tasks finished or `stop` resolves.
pub async fn run(
    opts: DevnetOptions,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<DevnetReport> {
    let started = Instant::now();
    let say = |s: String| {
        if opts.verbose {
            println!("{s}");
        }
    };
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("creating {}", opts.data_dir.display()))?;
    let agents = agent_identities(opts.agents_per_operator)?;
    let client_id = Identity::client("devnet")?;
    let pki = make_certs(&opts.data_dir, &agents, &client_id)?;
    let certs = pki.dir();
    say(format!(
        "devnet: certificates in {}",
        certs.root().display()
    ));

    // Kept until the end: dropping it stops anvil.
    let mut _anvil = None;
    let mut chain = None;
    if opts.chain {
        let (anvil, config) = crate::devnet_chain::start_devnet_chain(
            &opts.data_dir,
            &opts.data_dir.join("coordinator"),
            &DEVNET_OPERATORS,
        )
        .await?;
        say(format!(
            "devnet: anvil on {}, StakeRegistry at {}, stake delegated on chain",
            anvil.url, config.registry
        ));
        _anvil = Some(anvil);
        chain = Some(config);
    }
    let coordinator_id = pki.coordinator();
    let config = CoordinatorConfig {
        listen: "127.0.0.1:0".parse().expect("literal address"),
        tls: TlsPaths {
            ca_cert: certs.ca_cert_path(),
            cert: certs.cert_path(coordinator_id),
            key: certs.key_path(coordinator_id),
        },
        operators: DEVNET_OPERATORS
            .iter()
            .filter(|_| chain.is_none())
            .map(|(id, stake)| {
                Ok(OperatorStake {
                    id: OperatorId::new(*id).map_err(anyhow::Error::msg)?,
                    delegated: StakeUnits(*stake),
                })
            })
            .collect::<anyhow::Result<_>>()?,
        policy: Policy::default(),
        data_dir: opts.data_dir.join("coordinator"),
        circuits: opts.circuits.clone(),
        telemetry_interval_ms: 1_000,
        chain,
        // Started below on a free port with a fresh token.
        http: proofrack_coordinator::HttpConfig {
            enabled: false,
            ..Default::default()
        },
        limits: Default::default(),
    };
    config.validate()?;
    say(format!(
        "devnet: loading proving keys for {} (generated on first run)",
        opts.circuits.join(", ")
    ));
    // Every devnet run starts from an empty ledger (keys are kept: they take a while).
    let state_file = config.data_dir.join(proofrack_coordinator::STORE_FILE);
    if state_file.exists() {
        std::fs::remove_file(&state_file).with_context(|| {
            format!("removing the last devnet's state {}", state_file.display())
        })?;
    }
    let coordinator = crate::serve::start_coordinator(&config).await?;
    let addr = coordinator.local_addr;
    say(format!("devnet: coordinator on {addr}"));
    // The fleet page on a free loopback port with a fresh token, for watching the run.
    let token = hex::encode(rand::random::<[u8; 32]>());
    let http = proofrack_coordinator::start_http(
        "127.0.0.1:0".parse().expect("literal address"),
        Some(token.clone()),
        coordinator.shared.clone(),
    )
    .await?;
    say(format!(
        "devnet: fleet page at http://{}/#token={token} (metrics at /metrics)",
        http.local_addr
    ));

    // One backend and one calibration for every agent: they share this machine, so each
    // reports its share of the measured throughput (admission predicts proving times from
    // it; the whole machine's figure would make every prediction N times too optimistic).
    let template = agent_config(&opts, certs, &agents[0], addr);
    let (prover, mut calibration) = crate::serve::prepare_prover(&template).await?;
    let sharing = agents.len() as u64;
    calibration.msm_g1_points_per_sec = (calibration.msm_g1_points_per_sec / sharing).max(1);
    calibration.ntt_elements_per_sec = (calibration.ntt_elements_per_sec / sharing).max(1);
    say(format!(
        "devnet: backend {} calibrated: MSM {}, NTT {} per agent ({} agents share this machine)",
        prover.backend().info().name,
        tables::rate(calibration.msm_g1_points_per_sec),
        tables::rate(calibration.ntt_elements_per_sec),
        sharing
    ));
    let (agents_stop, agents_stop_rx) = watch::channel(false);
    let mut agent_tasks = JoinSet::new();
    for id in &agents {
        let config = agent_config(&opts, certs, id, addr);
        let settings = crate::serve::agent_settings(&config, prover.clone(), calibration.clone())?;
        let mut rx = agents_stop_rx.clone();
        agent_tasks.spawn(async move {
            proofrack_agent::run(settings, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
        });
    }
    say(format!(
        "devnet: {} agents started for operators {}",
        agents.len(),
        DEVNET_OPERATORS.map(|o| o.0).join(", ")
    ));

    let client = Arc::new(
        CoordinatorClient::connect(addr, COORDINATOR_HOST, &certs.tls_material(&client_id)?)
            .await?,
    );
    if opts.verbose {
        print_ledger(&client).await?;
    }

    let result = drive(&opts, client.clone(), stop).await;
    let ledger = match client.request(ClientRequest::Ledger).await? {
        ClientResponse::Ledger(l) => l,
        other => bail!("unexpected reply {other:?}"),
    };
    if opts.verbose {
        println!("\nfinal ledger:\n{}", tables::ledger(&ledger));
    }
    let _ = agents_stop.send(true);
    while let Some(r) = agent_tasks.join_next().await {
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "agent ended with an error");
        }
    }
    if let Ok(c) = Arc::try_unwrap(client) {
        c.close().await;
    }
    http.shutdown().await;
    coordinator.shutdown().await;
    let (submitted, verified, failed) = result?;
    let report = DevnetReport {
        submitted,
        verified,
        failed,
        ledger,
        elapsed: started.elapsed(),
    };
    if opts.verbose {
        println!(
            "devnet: {} tasks submitted, {} proofs verified, {} failed, in {:.1} s",
            report.submitted,
            report.verified,
            report.failed.len(),
            report.elapsed.as_secs_f64()
        );
    }
    Ok(report)
}

fn agent_identities(per_operator: usize) -> anyhow::Result<Vec<Identity>> {
    let mut v = Vec::new();
    for (op, _) in DEVNET_OPERATORS {
        for i in 1..=per_operator.max(1) {
            v.push(Identity::agent(op, &format!("box-{i}"))?);
        }
    }
    Ok(v)
}

/// A CA on first run (kept, so a devnet's data directory stays usable); fresh week-long
/// leaves every run (cheap, and never expired).
fn make_certs(
    data_dir: &std::path::Path,
    agents: &[Identity],
    client: &Identity,
) -> anyhow::Result<LocalPki> {
    let now = SystemClock.now();
    let opts = LocalPkiOptions {
        keep_ca: true,
        leaf_days: DEFAULT_LEAF_DAYS.min(7),
        ..LocalPkiOptions::default()
    };
    let pki = LocalPki::bootstrap(
        CertsDir::new(data_dir.join("certs")),
        COORDINATOR_HOST,
        &opts,
        now,
    )?;
    for id in agents.iter().chain([client]) {
        pki.issue(id, now)?;
    }
    Ok(pki)
}

fn agent_config(
    opts: &DevnetOptions,
    certs: &CertsDir,
    id: &Identity,
    addr: std::net::SocketAddr,
) -> AgentConfig {
    let stem = proofrack_certs::file_stem(id);
    AgentConfig {
        coordinator: addr.to_string(),
        tls: AgentTls {
            ca_cert: certs.ca_cert_path(),
            cert: certs.cert_path(id),
            key: certs.key_path(id),
        },
        data_dir: opts.data_dir.join("agents").join(stem),
        backend: opts.backend,
        cuda_device: 0,
        max_concurrent_tasks: 1,
        // Several agents share this machine: no per-agent metrics port.
        metrics: proofrack_agent::MetricsConfig {
            enabled: false,
            ..Default::default()
        },
    }
}

async fn print_ledger(client: &CoordinatorClient) -> anyhow::Result<()> {
    if let ClientResponse::Ledger(l) = client.request(ClientRequest::Ledger).await? {
        println!("{}", tables::ledger(&l));
    }
    Ok(())
}

type Outcome = (usize, usize, Vec<(TaskId, String)>);

/// Submits tasks, keeping `in_flight` outstanding, and follows each to its end.
async fn drive(
    opts: &DevnetOptions,
    client: Arc<CoordinatorClient>,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Outcome> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let mut running: JoinSet<anyhow::Result<(TaskId, TaskState)>> = JoinSet::new();
    let (mut submitted, mut verified) = (0usize, 0usize);
    let mut failed = Vec::new();
    let mut stopping = false;
    tokio::pin!(stop);
    loop {
        while !stopping
            && running.len() < opts.in_flight.max(1)
            && opts.tasks.is_none_or(|n| submitted < n)
        {
            let circuit = opts.circuits[rng.gen_range(0..opts.circuits.len())].clone();
            let collateral = DEVNET_COLLATERALS[rng.gen_range(0..DEVNET_COLLATERALS.len())];
            let x: u64 = rng.gen();
            let reply = client
                .request(ClientRequest::Submit(SubmitRequest {
                    circuit: circuit.clone(),
                    inputs: format!(r#"{{"x":"{x}"}}"#).into_bytes(),
                    collateral: StakeUnits(collateral),
                    deadline_ms: DEVNET_DEADLINE.as_millis() as u64,
                    request_id: rng.gen(),
                }))
                .await?;
            let task = match reply {
                ClientResponse::Submitted { task } => task,
                ClientResponse::Rejected { reason } => bail!("devnet task rejected: {reason}"),
                other => bail!("unexpected reply {other:?}"),
            };
            submitted += 1;
            let c = client.clone();
            let verbose = opts.verbose;
            running.spawn(async move {
                let clock = SystemClock;
                let last = c
                    .watch(task, |v| {
                        if verbose {
                            println!("  {}", tables::status_line(v, clock.now()));
                        }
                    })
                    .await?;
                Ok((task, last.state))
            });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            done = running.join_next() => {
                match done.expect("not empty")?? {
                    (_, TaskState::Verified { .. }) => verified += 1,
                    (task, TaskState::Failed { reason, .. }) => failed.push((task, reason)),
                    (task, other) => failed.push((task, format!("ended in state {}", other.name()))),
                }
                if opts.verbose && (verified + failed.len()) % 6 == 0 {
                    print_ledger(&client).await?;
                }
            }
            _ = &mut stop, if !stopping => {
                if opts.verbose {
                    println!("devnet: stopping; waiting for {} tasks in flight", running.len());
                }
                stopping = true;
            }
        }
    }
    Ok((submitted, verified, failed))
}
