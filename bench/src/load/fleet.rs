//! A coordinator under a large fleet: `agents` lightweight protocol agents (real QUIC, one
//! real certificate each) connect to one coordinator, report telemetry at the configured
//! interval and accept every offer; a client submits `tasks` tasks. Measures certificate
//! issuance, connection, assignment latency (submission to the offer arriving at the agent),
//! throughput (first submission to the last task's stake bound) and the coordinator's CPU
//! and memory.
//!
//! [`run`] is its phases in order: certificates, the coordinator, the fleet connecting, an
//! idle window of telemetry only, submissions until every task is bound, the report.

use super::coordinator::{CoordinatorSite, CoordinatorUnderLoad};
use super::fleet_agent::FleetAgent;
use super::submitters::{self, SentAt, Submissions};
use super::{percentile, CONNECT_CONCURRENCY, LOOPBACK_HOST};
use anyhow::bail;
use proofrack_certs::{CertsDir, LocalPki, LocalPkiOptions};
use proofrack_common::client::CoordinatorClient;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::MAX_SUBMIT_BATCH;
use proofrack_common::tls::{self, TlsMaterial};
use proofrack_common::{Clock, OperatorId, StakeUnits, SystemClock, TaskId};
use proofrack_coordinator::{CoordinatorConfig, OperatorStake, Policy};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

/// Operators the fleet's agents are spread over, unless the load says otherwise.
pub const OPERATORS: usize = 10;
/// Tasks each load agent takes at once (the policy's default per-agent limit).
pub const AGENT_SLOTS: u32 = 4;
/// How long any one phase may take before the run is declared stuck.
pub const PHASE_TIMEOUT: Duration = Duration::from_secs(300);
/// Between looks at the coordinator's listing while the fleet reports in.
const LISTED_POLL: Duration = Duration::from_millis(100);
/// Between looks at the coordinator's bound tasks (the agents cannot see their accepts land).
const BOUND_POLL: Duration = Duration::from_millis(2);
/// The circuit every load task names (the smallest built-in: only assignment is measured).
const CIRCUIT: &str = "mimc-4";
/// Tasks' deadline and safety margin: far beyond the run, so no due time passes during it.
const TASK_DEADLINE_MS: u64 = 3_000_000;
const MARGIN_MS: u64 = 2_000_000;
/// Each operator's delegated stake: never the limit (tasks bind one unit each).
const OPERATOR_STAKE: StakeUnits = StakeUnits(1 << 60);

/// What to run.
#[derive(Clone, Debug)]
pub struct FleetLoad {
    pub agents: usize,
    pub tasks: usize,
    pub telemetry_interval_ms: u64,
    /// Steady state (telemetry only) measured for this long.
    pub idle_window: Duration,
    pub dir: PathBuf,
    /// Operators the agents are spread over (agent i belongs to operator i mod this).
    pub operators: usize,
    /// Tasks each agent holds at once (the policy's per-agent limit and the agent's slots).
    pub agent_slots: u32,
    /// Submission requests in flight at once (1: one after the other).
    pub submitters: usize,
    /// Tasks per submission request (1: `Submit`; more: `SubmitBatch`).
    pub batch: usize,
    /// Where the coordinator runs.
    pub site: CoordinatorSite,
    /// Tasks per second offered on a fixed schedule (each batch sent at its scheduled time and
    /// its latency counted from then, so a late send counts against the coordinator); `None`:
    /// as fast as the submitters' requests are answered (throughput).
    pub offered_per_sec: Option<f64>,
}

impl FleetLoad {
    /// The fleet benchmark's and test's shape: [`OPERATORS`], [`AGENT_SLOTS`], one submitter.
    pub fn new(agents: usize, tasks: usize, dir: PathBuf) -> FleetLoad {
        FleetLoad {
            agents,
            tasks,
            telemetry_interval_ms: 1_000,
            idle_window: Duration::from_secs(10),
            dir,
            operators: OPERATORS,
            agent_slots: AGENT_SLOTS,
            submitters: 1,
            batch: 1,
            site: CoordinatorSite::InProcess,
            offered_per_sec: None,
        }
    }

    /// Agents accept and never deliver, so each holds at most its slots: more tasks than the
    /// fleet's slots would wait for due times to pass and measure the policy, not the
    /// coordinator.
    fn within_slots(mut self) -> FleetLoad {
        self.operators = self.operators.max(1);
        self.agent_slots = self.agent_slots.max(1);
        self.batch = self.batch.clamp(1, MAX_SUBMIT_BATCH);
        self.tasks = self.tasks.min(self.agents * self.agent_slots as usize);
        self
    }

    fn coordinator_config(&self) -> anyhow::Result<CoordinatorConfig> {
        let operators = (0..self.operators)
            .map(|i| {
                Ok(OperatorStake {
                    id: OperatorId::new(format!("op-{i}")).map_err(anyhow::Error::msg)?,
                    delegated: OPERATOR_STAKE,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(CoordinatorConfig {
            circuits: vec![CIRCUIT.to_string()],
            policy: Policy {
                queue_capacity: self.tasks.max(1),
                // One client submits every task: its share is the whole queue.
                max_unfinished_per_client: self.tasks.max(1),
                max_tasks_per_agent: self.agent_slots,
                deadline_margin_ms: MARGIN_MS,
                max_deadline_ms: TASK_DEADLINE_MS,
                withdrawal_delay_ms: TASK_DEADLINE_MS + 1,
                ..Policy::default()
            },
            operators,
            telemetry_interval_ms: self.telemetry_interval_ms,
            ..CoordinatorConfig::default()
        })
    }
}

/// What it measured.
#[derive(Clone, Debug)]
pub struct FleetReport {
    pub agents: usize,
    pub tasks: usize,
    pub issue_certs: Duration,
    pub connect: Duration,
    /// Agents the coordinator listed as connected with telemetry.
    pub agents_listed: usize,
    /// Submission to offer at the agent, sorted.
    pub assignment_latencies: Vec<Duration>,
    pub submit_phase: Duration,
    /// First submission to the last task's stake bound (its accept committed).
    pub all_bound: Duration,
    /// Coordinator CPU seconds per wall second in the telemetry-only window.
    pub idle_cpu_cores: f64,
    /// ... while the tasks were being submitted and assigned.
    pub submit_cpu_cores: f64,
    /// Resident memory at the end, and its peak: of the coordinator's own process when it
    /// ran as one (`coordinator_alone`), else of the whole process (coordinator, agents and
    /// client).
    pub rss_bytes: u64,
    pub rss_peak_bytes: u64,
    pub coordinator_alone: bool,
}

impl FleetReport {
    pub fn latency_percentile(&self, p: f64) -> Duration {
        percentile(&self.assignment_latencies, p)
    }

    /// Tasks bound per second, first submission to last binding.
    pub fn assignments_per_sec(&self) -> f64 {
        self.tasks as f64 / self.all_bound.as_secs_f64().max(1e-9)
    }
}

/// Runs the load. Call from outside any runtime's worker (an in-process coordinator gets its
/// own runtime).
pub async fn run(opts: FleetLoad) -> anyhow::Result<FleetReport> {
    let opts = opts.within_slots();
    std::fs::create_dir_all(&opts.dir)?;
    let certs = issue_certificates(&opts)?;
    let coordinator = CoordinatorUnderLoad::start(
        &opts.site,
        opts.coordinator_config()?,
        &certs.pki,
        &certs.client,
        &opts.dir,
    )
    .await?;
    tracing::info!(addr = %coordinator.addr(), "fleet load: coordinator up");
    let measured = measure(&opts, &certs, &coordinator).await;
    coordinator.shutdown().await?;
    measured
}

/// The load's certificates: the PKI, the client's material and each agent's.
struct Certificates {
    pki: LocalPki,
    client: TlsMaterial,
    agents: Vec<TlsMaterial>,
    /// Issuing the agents' certificates took this long.
    issue_agents: Duration,
}

fn issue_certificates(opts: &FleetLoad) -> anyhow::Result<Certificates> {
    let now = SystemClock.now();
    let certs = CertsDir::new(opts.dir.join("certs"));
    let pki = LocalPki::bootstrap(certs, LOOPBACK_HOST, &LocalPkiOptions::default(), now)?;
    let client = pki.issue(&Identity::client("fleet-load")?, now)?;
    let started = Instant::now();
    let agents = (0..opts.agents)
        .map(|i| {
            let id = Identity::agent(&format!("op-{}", i % opts.operators), &format!("a{i:05}"))?;
            Ok(pki.issue(&id, now)?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let issue_agents = started.elapsed();
    tracing::info!(
        agents = opts.agents,
        ms = issue_agents.as_millis() as u64,
        "fleet load: certificates issued"
    );
    Ok(Certificates {
        pki,
        client,
        agents,
        issue_agents,
    })
}

/// Everything after the coordinator is up: connect, idle window, submissions, report.
async fn measure(
    opts: &FleetLoad,
    certs: &Certificates,
    coordinator: &CoordinatorUnderLoad,
) -> anyhow::Result<FleetReport> {
    let started = Instant::now();
    let mut fleet = Fleet::connect(opts, &certs.agents, coordinator).await?;
    let connect = started.elapsed();
    tracing::info!(
        ms = connect.as_millis() as u64,
        "fleet load: agents connected"
    );
    let agents_listed = wait_listed(coordinator, opts.agents).await?;
    let idle_cpu_cores = idle_cpu_cores(coordinator, opts.idle_window).await?;

    let client = Arc::new(
        CoordinatorClient::connect(coordinator.addr(), LOOPBACK_HOST, &certs.client).await?,
    );
    let cpu0 = coordinator.cpu_time()?;
    let t0 = Instant::now();
    let sent_at = SentAt::default();
    let what = Submissions {
        circuit: CIRCUIT,
        tasks: opts.tasks,
        batch: opts.batch,
        deadline_ms: TASK_DEADLINE_MS,
        rate: opts.offered_per_sec.filter(|r| *r > 0.0),
        t0,
    };
    let mut submitting = submitters::spawn(opts.submitters, &client, &what, &sent_at);
    let first_offer = fleet.first_offers(opts.tasks).await?;
    while let Some(joined) = submitting.join_next().await {
        joined??;
    }
    let submit_phase = t0.elapsed();
    wait_bound(coordinator, opts.tasks).await?;
    let all_bound = t0.elapsed();
    let submit_cpu_cores = (coordinator.cpu_time()? - cpu0).as_secs_f64() / all_bound.as_secs_f64();
    let memory = coordinator.memory()?;

    if let Ok(client) = Arc::try_unwrap(client) {
        client.close().await;
    }
    fleet.stop().await;
    let sent_at = sent_at.lock().expect("submission times");
    Ok(FleetReport {
        agents: opts.agents,
        tasks: opts.tasks,
        issue_certs: certs.issue_agents,
        connect,
        agents_listed,
        assignment_latencies: latencies(&first_offer, &sent_at),
        submit_phase,
        all_bound,
        idle_cpu_cores,
        submit_cpu_cores,
        rss_bytes: memory.rss_bytes,
        rss_peak_bytes: memory.peak_rss_bytes,
        coordinator_alone: coordinator.measured_alone(),
    })
}

/// The connected fleet: one client endpoint, an agent task per certificate.
struct Fleet {
    endpoint: quinn::Endpoint,
    agents: Vec<JoinHandle<()>>,
    offers: mpsc::UnboundedReceiver<(TaskId, Instant)>,
    stop: watch::Sender<bool>,
}

impl Fleet {
    /// Starts every agent and waits until each has connected (or one could not).
    async fn connect(
        opts: &FleetLoad,
        agents: &[TlsMaterial],
        coordinator: &CoordinatorUnderLoad,
    ) -> anyhow::Result<Fleet> {
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("literal address"))?;
        let (offer_tx, offers) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let (ready_tx, mut ready) = mpsc::unbounded_channel();
        let mut running = Vec::with_capacity(agents.len());
        for material in agents {
            let agent = FleetAgent {
                endpoint: endpoint.clone(),
                config: tls::client_config(material)?,
                addr: coordinator.addr(),
                interval: Duration::from_millis(opts.telemetry_interval_ms),
                offers: offer_tx.clone(),
                slots: opts.agent_slots,
                stop: stop_rx.clone(),
            };
            running.push(tokio::spawn(agent.run(gate.clone(), ready_tx.clone())));
        }
        let fleet = Fleet {
            endpoint,
            agents: running,
            offers,
            stop,
        };
        for _ in 0..agents.len() {
            match tokio::time::timeout(PHASE_TIMEOUT, ready.recv()).await {
                Ok(Some(Ok(()))) => {}
                Ok(Some(Err(e))) => {
                    fleet.abort();
                    bail!("an agent could not connect: {e:#}")
                }
                _ => {
                    fleet.abort();
                    bail!("the fleet did not connect within {PHASE_TIMEOUT:?}")
                }
            }
        }
        Ok(fleet)
    }

    /// When each of `tasks` tasks was first offered to an agent.
    async fn first_offers(&mut self, tasks: usize) -> anyhow::Result<HashMap<TaskId, Instant>> {
        let mut first = HashMap::with_capacity(tasks);
        while first.len() < tasks {
            match tokio::time::timeout(PHASE_TIMEOUT, self.offers.recv()).await {
                Ok(Some((task, at))) => {
                    first.entry(task).or_insert(at);
                }
                _ => bail!(
                    "only {} of {tasks} tasks were offered within {PHASE_TIMEOUT:?}",
                    first.len(),
                ),
            }
        }
        Ok(first)
    }

    /// Ends every agent at once, connected or still connecting.
    fn abort(self) {
        for agent in &self.agents {
            agent.abort();
        }
        self.endpoint.close(0u32.into(), b"fleet load failed");
    }

    /// Disconnects every agent and waits for them.
    async fn stop(self) {
        let _ = self.stop.send(true);
        for agent in self.agents {
            let _ = agent.await;
        }
        self.endpoint.close(0u32.into(), b"fleet load done");
    }
}

/// Waits until the coordinator lists `agents` agents as connected and reporting (the first
/// report follows the welcome at once); how many it lists when [`PHASE_TIMEOUT`] passes.
async fn wait_listed(coordinator: &CoordinatorUnderLoad, agents: usize) -> anyhow::Result<usize> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let listed = coordinator.agents_listed().await?;
        if listed >= agents || Instant::now() > deadline {
            return Ok(listed);
        }
        tokio::time::sleep(LISTED_POLL).await;
    }
}

/// The coordinator's CPU, in cores, over `window` of telemetry only.
async fn idle_cpu_cores(
    coordinator: &CoordinatorUnderLoad,
    window: Duration,
) -> anyhow::Result<f64> {
    let cpu0 = coordinator.cpu_time()?;
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    Ok((coordinator.cpu_time()? - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64())
}

/// Waits until every agent's accept reached the core: `tasks` tasks bound.
async fn wait_bound(coordinator: &CoordinatorUnderLoad, tasks: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let bound = coordinator.bound_tasks().await?;
        if bound >= tasks {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {bound} of {tasks} tasks bound within {PHASE_TIMEOUT:?}");
        }
        tokio::time::sleep(BOUND_POLL).await;
    }
}

/// Submission to first offer of every task, sorted.
fn latencies(
    first_offer: &HashMap<TaskId, Instant>,
    sent_at: &HashMap<TaskId, Instant>,
) -> Vec<Duration> {
    let mut latencies: Vec<Duration> = first_offer
        .iter()
        .filter_map(|(task, at)| Some(at.saturating_duration_since(*sent_at.get(task)?)))
        .collect();
    latencies.sort();
    latencies
}
