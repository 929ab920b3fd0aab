//! A coordinator under a large fleet: `agents` lightweight protocol agents (real QUIC, one
//! real certificate each) connect to one in-process coordinator, report telemetry at the
//! configured interval and accept every offer; a client submits `tasks` tasks. Measures
//! certificate issuance, connection, assignment latency (submission to the offer arriving at
//! the agent) and the coordinator's CPU time, which runs on its own named runtime threads so
//! its share of the process is counted apart from the agents'.
//!
//! Used by `proofrack-bench fleet` and, with a smaller fleet, by the end-to-end tests.

use crate::load_coordinator::{self, CoordinatorUnderLoad, Placement};
use anyhow::bail;
use proofrack_certs::{CertsDir, InitOptions, IssueOptions};
use proofrack_common::client::CoordinatorClient;
use proofrack_common::identity::{Identity, TrustDomain, DEFAULT_TRUST_DOMAIN};
use proofrack_common::protocol::{
    read_message, write_message, write_stream_open, AgentCapabilities, AgentHello,
    AgentToCoordinator, ClientRequest, ClientResponse, CoordinatorToAgent, OfferDecision,
    OfferReply, StreamOpen, SubmitRequest, MAX_OFFER_REPLIES, MAX_SUBMIT_BATCH, PROTOCOL_VERSION,
};
use proofrack_common::telemetry::{
    Calibration, HostTelemetry, NvmlStatus, ProverBackend, Telemetry,
};
use proofrack_common::tls;
use proofrack_common::{Clock, OperatorId, StakeUnits, SystemClock, TaskId};
use proofrack_coordinator::{CoordinatorConfig, Policy};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};

/// Name of the coordinator's runtime threads (15 bytes: Linux truncates thread names there).
pub const COORDINATOR_THREAD_NAME: &str = "proofrack-coord";
/// Handshakes in flight at once while the fleet connects (a real rack's agents start
/// staggered too; thousands at once only measures the UDP receive buffer).
pub const CONNECT_CONCURRENCY: usize = 64;
/// Operators the fleet's agents are spread over, unless the load says otherwise.
pub const OPERATORS: usize = 10;
/// Name of the state store's committer thread (its CPU is the coordinator's too).
pub const STORE_THREAD_NAME: &str = "proofrack-store";
/// How long any one phase may take before the run is declared stuck.
pub const PHASE_TIMEOUT: Duration = Duration::from_secs(300);
/// Tasks each load agent takes at once (the policy's default per-agent limit).
pub const AGENT_SLOTS: u32 = 4;
/// Longest wait for the coordinator's state to catch up with what agents saw (polled).
const SETTLE_POLL: Duration = Duration::from_millis(2);
/// Tasks' deadline and safety margin: far beyond the run, so no due time passes during it.
const TASK_DEADLINE_MS: u64 = 3_000_000;
const MARGIN_MS: u64 = 2_000_000;

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
    pub placement: Placement,
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
            placement: Placement::InProcess,
            offered_per_sec: None,
        }
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

/// The `p` quantile (0..=1) of sorted durations; zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

/// (VmRSS, VmHWM) of this process in bytes, from /proc/self/status.
pub fn process_rss_bytes() -> (u64, u64) {
    rss_from_status("/proc/self/status")
}

/// (VmRSS, VmHWM) in bytes from a `/proc/PID/status` file; zeros if it cannot be read.
pub fn rss_from_status(path: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn calibration() -> Calibration {
    Calibration {
        backend: ProverBackend::Cpu,
        backend_name: "fleet-load agent".into(),
        msm_g1_points_per_sec: 1_000_000,
        msm_size: 1 << 12,
        ntt_elements_per_sec: 20_000_000,
        ntt_size: 1 << 12,
        compute_memory_total_bytes: 8 << 30,
    }
}

fn telemetry(seq: u64) -> Telemetry {
    Telemetry {
        seq,
        nvml: NvmlStatus::Missing {
            reason: "fleet-load agent".into(),
        },
        gpus: vec![],
        host: HostTelemetry {
            hostname: "fleet-load".into(),
            cpu_cores: 2,
            load_1m_milli: 0,
            memory_total_bytes: 8 << 30,
            memory_available_bytes: 8 << 30,
        },
        calibration: calibration(),
    }
}

/// CPU time (user + system) of this process's threads named [`COORDINATOR_THREAD_NAME`] or
/// [`STORE_THREAD_NAME`].
pub fn coordinator_cpu_time() -> Duration {
    let Ok(threads) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    threads
        .flatten()
        .filter(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            comm.trim() == COORDINATOR_THREAD_NAME || comm.trim() == STORE_THREAD_NAME
        })
        .map(|t| crate::load_coordinator::process_cpu_time(&t.path().join("stat")))
        .sum()
}

/// Runs the load. Call from outside any runtime's worker (it builds the coordinator's own).
pub async fn run(mut opts: FleetLoad) -> anyhow::Result<FleetReport> {
    // Agents accept and never deliver: each holds at most its slots, so more tasks than the
    // fleet's slots would wait for due times to pass and measure the policy, not the
    // coordinator.
    opts.tasks = opts.tasks.min(opts.agents * opts.agent_slots as usize);
    let operators = opts.operators.max(1);
    let slots = opts.agent_slots.max(1);
    std::fs::create_dir_all(&opts.dir)?;
    let certs = CertsDir::new(opts.dir.join("certs"));
    let now = SystemClock.now();
    certs.init(
        &InitOptions::new(TrustDomain::new(DEFAULT_TRUST_DOMAIN)?),
        now,
    )?;
    let coordinator_id = Identity::coordinator("127.0.0.1")?;
    certs.issue(&coordinator_id, &IssueOptions::default(), now)?;
    let client_id = Identity::client("fleet-load")?;
    certs.issue(&client_id, &IssueOptions::default(), now)?;
    let started = Instant::now();
    let mut agent_ids = Vec::with_capacity(opts.agents);
    for i in 0..opts.agents {
        let id = Identity::agent(&format!("op-{}", i % operators), &format!("a{i:05}"))?;
        certs.issue(&id, &IssueOptions::default(), now)?;
        agent_ids.push(id);
    }
    let issue_certs = started.elapsed();
    tracing::info!(
        agents = opts.agents,
        ms = issue_certs.as_millis() as u64,
        "fleet load: certificates issued"
    );

    // The coordinator on its own runtime (its CPU time told apart by thread name) or as its
    // own process.
    let config = CoordinatorConfig {
        circuits: vec!["mimc-4".to_string()],
        policy: Policy {
            queue_capacity: opts.tasks.max(1),
            // One client submits every task: its share is the whole queue.
            max_unfinished_per_client: opts.tasks.max(1),
            max_tasks_per_agent: slots,
            deadline_margin_ms: MARGIN_MS,
            max_deadline_ms: TASK_DEADLINE_MS,
            withdrawal_delay_ms: TASK_DEADLINE_MS + 1,
            ..Policy::default()
        },
        operators: load_coordinator::operators(
            (0..operators)
                .map(|i| {
                    Ok((
                        OperatorId::new(format!("op-{i}")).map_err(anyhow::Error::msg)?,
                        StakeUnits(1 << 60),
                    ))
                })
                .collect::<anyhow::Result<_>>()?,
        ),
        telemetry_interval_ms: opts.telemetry_interval_ms,
        ..CoordinatorConfig::default()
    };
    let coordinator = CoordinatorUnderLoad::start(
        &opts.placement,
        config,
        &certs,
        &coordinator_id,
        &client_id,
        &opts.dir,
    )
    .await?;
    let addr = coordinator.addr();
    tracing::info!(%addr, "fleet load: coordinator up");

    // The fleet: one client endpoint, a client configuration per agent certificate.
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("literal address"))?;
    let submitted: Arc<Mutex<HashMap<TaskId, Instant>>> = Arc::default();
    let (offer_tx, mut offer_rx) = mpsc::unbounded_channel::<(TaskId, Instant)>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<anyhow::Result<()>>();
    let started = Instant::now();
    let mut agents = Vec::with_capacity(opts.agents);
    for id in &agent_ids {
        let config = tls::client_config(&certs.tls_material(id)?)?;
        let agent = FleetAgent {
            endpoint: endpoint.clone(),
            config,
            addr,
            interval: Duration::from_millis(opts.telemetry_interval_ms),
            offers: offer_tx.clone(),
            slots,
            stop: stop_rx.clone(),
        };
        let gate = gate.clone();
        let ready = ready_tx.clone();
        agents.push(tokio::spawn(async move { agent.run(gate, ready).await }));
    }
    for _ in 0..opts.agents {
        match tokio::time::timeout(PHASE_TIMEOUT, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => bail!("an agent could not connect: {e:#}"),
            _ => bail!("the fleet did not connect within {PHASE_TIMEOUT:?}"),
        }
    }
    let connect = started.elapsed();
    tracing::info!(
        ms = connect.as_millis() as u64,
        "fleet load: agents connected"
    );
    // Listed: connected and reporting (the first report follows the welcome at once).
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let agents_listed = loop {
        let listed = coordinator.agents_listed().await?;
        if listed >= opts.agents || Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let cpu0 = coordinator.cpu_time();
    let t0 = Instant::now();
    tokio::time::sleep(opts.idle_window).await;
    let idle_cpu_cores = (coordinator.cpu_time() - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();

    let client = Arc::new(
        CoordinatorClient::connect(addr, "127.0.0.1", &certs.tls_material(&client_id)?).await?,
    );
    let cpu0 = coordinator.cpu_time();
    let t0 = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut submitters = tokio::task::JoinSet::new();
    for _ in 0..opts.submitters.max(1) {
        let (client, next, submitted) = (client.clone(), next.clone(), submitted.clone());
        let (tasks, batch) = (opts.tasks, opts.batch.clamp(1, MAX_SUBMIT_BATCH));
        let rate = opts.offered_per_sec.filter(|r| *r > 0.0);
        submitters.spawn(async move {
            loop {
                let first = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                if first >= tasks {
                    return anyhow::Ok(());
                }
                let scheduled = match rate {
                    Some(rate) => {
                        let at = t0 + Duration::from_secs_f64(first as f64 / rate);
                        tokio::time::sleep_until(at.into()).await;
                        Some(at)
                    }
                    None => None,
                };
                let requests: Vec<SubmitRequest> = (first..tasks.min(first + batch))
                    .map(|i| SubmitRequest {
                        circuit: "mimc-4".into(),
                        inputs: format!(r#"{{"x":"{i}"}}"#).into_bytes(),
                        collateral: StakeUnits(1),
                        deadline_ms: TASK_DEADLINE_MS,
                        request_id: i as u64 + 1,
                    })
                    .collect();
                let sent = scheduled.unwrap_or_else(Instant::now);
                let answers = if batch == 1 {
                    let r = requests.into_iter().next().expect("one request");
                    vec![client.request(ClientRequest::Submit(r)).await?]
                } else {
                    match client.request(ClientRequest::SubmitBatch(requests)).await? {
                        ClientResponse::Batch(answers) => answers,
                        other => bail!("batch from task {first} refused: {other:?}"),
                    }
                };
                let mut submitted = submitted.lock().expect("submitted map");
                for (n, answer) in answers.into_iter().enumerate() {
                    match answer {
                        ClientResponse::Submitted { task } => {
                            submitted.insert(task, sent);
                        }
                        other => bail!("task {} refused: {other:?}", first + n),
                    }
                }
            }
        });
    }
    let mut first_offer: HashMap<TaskId, Instant> = HashMap::with_capacity(opts.tasks);
    while first_offer.len() < opts.tasks {
        match tokio::time::timeout(PHASE_TIMEOUT, offer_rx.recv()).await {
            Ok(Some((task, at))) => {
                first_offer.entry(task).or_insert(at);
            }
            _ => bail!(
                "only {} of {} tasks were offered within {PHASE_TIMEOUT:?}",
                first_offer.len(),
                opts.tasks
            ),
        }
    }
    while let Some(joined) = submitters.join_next().await {
        joined??;
    }
    let submit_phase = t0.elapsed();
    // Bound: every agent's accept reached the core (polled; the agents cannot see it).
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let bound = coordinator.bound_tasks().await?;
        if bound >= opts.tasks {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {bound} of {} tasks bound within {PHASE_TIMEOUT:?}",
                opts.tasks
            );
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
    let all_bound = t0.elapsed();
    let submit_cpu_cores = (coordinator.cpu_time() - cpu0).as_secs_f64() / all_bound.as_secs_f64();
    let (rss_bytes, rss_peak_bytes) = coordinator.rss_bytes();
    let coordinator_alone = coordinator.measured_alone();
    let sent_at = submitted.lock().expect("submitted map").clone();
    let mut assignment_latencies: Vec<Duration> = first_offer
        .iter()
        .map(|(task, at)| at.saturating_duration_since(sent_at[task]))
        .collect();
    assignment_latencies.sort();

    if let Ok(client) = Arc::try_unwrap(client) {
        client.close().await;
    }
    let _ = stop_tx.send(true);
    for a in agents {
        let _ = a.await;
    }
    endpoint.close(0u32.into(), b"fleet load done");
    coordinator.shutdown().await?;
    Ok(FleetReport {
        agents: opts.agents,
        tasks: opts.tasks,
        issue_certs,
        connect,
        agents_listed,
        assignment_latencies,
        submit_phase,
        all_bound,
        idle_cpu_cores,
        submit_cpu_cores,
        rss_bytes,
        rss_peak_bytes,
        coordinator_alone,
    })
}

/// A runtime owned by async code: dropping a runtime blocks, which an async context forbids,
/// so it is shut down in the background instead (also on early returns).
pub struct OwnRuntime(Option<tokio::runtime::Runtime>);

/// Worker threads of a server's own runtime: the machine's two cores.
pub const SERVER_WORKER_THREADS: usize = 2;

impl OwnRuntime {
    /// A multi-threaded runtime of [`SERVER_WORKER_THREADS`] threads named `thread_name`.
    pub fn new(thread_name: &str) -> std::io::Result<OwnRuntime> {
        Ok(OwnRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(SERVER_WORKER_THREADS)
                .thread_name(thread_name)
                .enable_all()
                .build()?,
        )))
    }
}

impl std::ops::Deref for OwnRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

struct FleetAgent {
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    addr: SocketAddr,
    interval: Duration,
    /// (task, when its offer arrived); matched with submission times at the end, since an
    /// offer can arrive before its submission's reply does.
    offers: mpsc::UnboundedSender<(TaskId, Instant)>,
    /// Tasks it takes at once, as its hello declares.
    slots: u32,

    stop: watch::Receiver<bool>,
}

impl FleetAgent {
    async fn run(mut self, gate: Arc<Semaphore>, ready: mpsc::UnboundedSender<anyhow::Result<()>>) {
        let permit = gate.acquire_owned().await.expect("gate never closed");
        let session = self.connect().await;
        drop(permit);
        let (conn, mut send, recv) = match session {
            Ok(s) => {
                let _ = ready.send(Ok(()));
                s
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        // Offers are read on their own task, so every offer that arrived while the agent was
        // writing is answered in one message.
        let (offer_tx, mut offers) = mpsc::unbounded_channel::<TaskId>();
        let reader = tokio::spawn(async move {
            let mut recv = recv;
            while let Ok(msg) = read_message::<_, CoordinatorToAgent>(&mut recv).await {
                if let CoordinatorToAgent::Offer(offer) = msg {
                    if offer_tx.send(offer.task).is_err() {
                        return;
                    }
                }
            }
        });
        let mut tick = tokio::time::interval(self.interval);
        let mut seq = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    seq += 1;
                    if write_message(&mut send, &AgentToCoordinator::Telemetry(telemetry(seq))).await.is_err() {
                        break;
                    }
                }
                offer = offers.recv() => {
                    let Some(first) = offer else { break };
                    let mut tasks = vec![first];
                    while tasks.len() < MAX_OFFER_REPLIES {
                        match offers.try_recv() {
                            Ok(t) => tasks.push(t),
                            Err(_) => break,
                        }
                    }
                    let at = Instant::now();
                    for t in &tasks {
                        let _ = self.offers.send((*t, at));
                    }
                    let mut replies: Vec<OfferReply> = tasks
                        .into_iter()
                        .map(|task| OfferReply { task, decision: OfferDecision::Accept })
                        .collect();
                    let msg = if replies.len() == 1 {
                        AgentToCoordinator::OfferReply(replies.remove(0))
                    } else {
                        AgentToCoordinator::OfferReplies(replies)
                    };
                    if write_message(&mut send, &msg).await.is_err() {
                        break;
                    }
                }
                _ = self.stop.changed() => {
                    conn.close(0u32.into(), b"done");
                    break;
                }
            }
        }
        reader.abort();
    }

    async fn connect(
        &mut self,
    ) -> anyhow::Result<(quinn::Connection, quinn::SendStream, quinn::RecvStream)> {
        let conn = self
            .endpoint
            .connect_with(self.config.clone(), self.addr, "127.0.0.1")?
            .await?;
        let (mut send, mut recv) = conn.open_bi().await?;
        let hello = AgentHello {
            protocol_version: PROTOCOL_VERSION,
            agent_build: "fleet-load agent".into(),
            capabilities: AgentCapabilities {
                backend: ProverBackend::Cpu,
                gpus: 0,
                max_concurrent_tasks: self.slots,
                cached_keys: vec![],
            },
            calibration: calibration(),
        };
        write_stream_open(&mut send, StreamOpen::Control(hello)).await?;
        match read_message::<_, CoordinatorToAgent>(&mut recv).await? {
            CoordinatorToAgent::Welcome(_) => Ok((conn, send, recv)),
            other => bail!("expected Welcome, got {other:?}"),
        }
    }
}
