//! Attacks on a coordinator by peers that hold valid certificates (issued by the deployment's
//! own CA), the coordinator process's memory read from `/proc` while each runs, and an honest
//! client's submit → verified latency beside them. The attacker's suite
//! (`tests/tests/attack.rs`) checks the bounds; `proofrack-bench attack` prints the figures.
//!
//! Every attack is bounded in count and time and talks only to the coordinator given (a
//! loopback address in the suite and the bench).

use anyhow::{bail, Context};
use proofrack_certs::{CertsDir, IssueOptions};
use proofrack_common::client::CoordinatorClient;
use proofrack_common::framing::{self, PayloadHeader};
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{
    read_message, write_stream_open, AgentRef, ClientRequest, ClientResponse, RegisterCircuit,
    StreamOpen, SubmitRequest, TaskState,
};
use proofrack_common::{Clock, StakeUnits, SystemClock};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// The host name in the coordinator's certificate that attackers dial.
pub const COORDINATOR_HOST: &str = "127.0.0.1";
/// The circuit the honest client proves (a real Groth16 proof on a CPU agent, milliseconds).
pub const HONEST_CIRCUIT: &str = "mimc-4";
/// How often the memory sampler reads `/proc/PID/status` during an attack.
pub const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(25);

/// The coordinator under attack.
pub struct Target {
    pub addr: SocketAddr,
    pub pid: u32,
    pub certs: CertsDir,
}

impl Target {
    /// QUIC client configuration for `identity`, issuing its certificate on first use.
    pub fn client_config(&self, identity: &Identity) -> anyhow::Result<quinn::ClientConfig> {
        if !self.certs.cert_path(identity).exists() {
            self.certs
                .issue(identity, &IssueOptions::default(), SystemClock.now())?;
        }
        let material = self.certs.tls_material(identity)?;
        Ok(proofrack_common::tls::client_config(&material)?)
    }

    /// A protocol client with `identity`'s certificate.
    pub async fn client(&self, identity: &Identity) -> anyhow::Result<CoordinatorClient> {
        if !self.certs.cert_path(identity).exists() {
            self.certs
                .issue(identity, &IssueOptions::default(), SystemClock.now())?;
        }
        let material = self.certs.tls_material(identity)?;
        Ok(CoordinatorClient::connect(self.addr, COORDINATOR_HOST, &material).await?)
    }

    /// The coordinator process's resident memory now, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        super::proc_stats::memory(&super::proc_stats::status_path(self.pid))
            .map_or(0, |m| m.rss_bytes)
    }
}

/// A client endpoint for many attacking connections.
pub fn endpoint() -> anyhow::Result<quinn::Endpoint> {
    Ok(quinn::Endpoint::client(
        "127.0.0.1:0".parse().expect("literal address"),
    )?)
}

/// Opens a connection with `config`; the handshake's result.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    target: &Target,
    config: quinn::ClientConfig,
) -> anyhow::Result<quinn::Connection> {
    Ok(endpoint
        .connect_with(config, target.addr, COORDINATOR_HOST)?
        .await?)
}

/// Samples the coordinator's RSS until stopped; the peak it saw.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                let path = super::proc_stats::status_path(pid);
                while !stop.load(Ordering::Relaxed) {
                    let rss = super::proc_stats::memory(&path).map_or(0, |m| m.rss_bytes);
                    peak.fetch_max(rss, Ordering::Relaxed);
                    std::thread::sleep(RSS_SAMPLE_EVERY);
                }
            })
        };
        RssSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the highest RSS seen.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// An honest client's latency: one task at a time, submit → verified, while `until` is not
/// set (at least `min_tasks`, at most `max_tasks`). Request ids start at `first_request_id`.
pub async fn honest_latencies(
    client: &CoordinatorClient,
    first_request_id: u64,
    min_tasks: usize,
    max_tasks: usize,
    until: &AtomicBool,
) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::new();
    for i in 0..max_tasks as u64 {
        if out.len() >= min_tasks && until.load(Ordering::Relaxed) {
            break;
        }
        let started = Instant::now();
        let reply = client
            .request(ClientRequest::Submit(SubmitRequest {
                circuit: HONEST_CIRCUIT.to_string(),
                inputs: format!(r#"{{"x":"{}"}}"#, first_request_id + i).into_bytes(),
                collateral: StakeUnits(1),
                deadline_ms: 120_000,
                request_id: first_request_id + i,
            }))
            .await
            .context("the honest client's submission")?;
        let ClientResponse::Submitted { task } = reply else {
            bail!("the honest client's submission was refused: {reply:?}");
        };
        let last = client.watch(task, |_| {}).await?;
        if !matches!(last.state, TaskState::Verified { .. }) {
            bail!("the honest client's {task} ended {:?}", last.state);
        }
        out.push(started.elapsed());
    }
    Ok(out)
}

/// The median of `samples`, in milliseconds.
pub fn median_ms(samples: &[Duration]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Connections an attack holds open, and how many the coordinator took or refused.
pub struct Held {
    pub conns: Vec<quinn::Connection>,
    pub accepted: usize,
    pub refused: usize,
    /// The distinct reasons the coordinator gave, for the report.
    pub reasons: std::collections::BTreeSet<String>,
    /// Writers still pushing bytes (aborted when dropped).
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for c in &self.conns {
            c.close(0u32.into(), b"attack over");
        }
    }
}

/// Opens `total` idle connections, `per_identity` per client certificate (`client/idle-N`),
/// 64 handshakes at a time, and holds the ones the coordinator keeps. A connection counts
/// as refused if its handshake fails or the coordinator closes it within `settle`.
pub async fn idle_connections(
    endpoint: &quinn::Endpoint,
    target: &Target,
    total: usize,
    per_identity: usize,
    settle: Duration,
) -> anyhow::Result<Held> {
    let identities = total.div_ceil(per_identity.max(1));
    let mut configs = Vec::with_capacity(identities);
    for i in 0..identities {
        configs.push(target.client_config(&Identity::client(&format!("idle-{i}"))?)?);
    }
    let mut held = Held {
        conns: Vec::new(),
        accepted: 0,
        refused: 0,
        reasons: Default::default(),
        tasks: Vec::new(),
    };
    let mut pending = tokio::task::JoinSet::new();
    for n in 0..total {
        if pending.len() >= 64 {
            collect(&mut held, pending.join_next().await);
        }
        let config = configs[n / per_identity.max(1)].clone();
        let endpoint = endpoint.clone();
        let addr = target.addr;
        pending.spawn(async move {
            endpoint
                .connect_with(config, addr, COORDINATOR_HOST)
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        });
    }
    while let Some(r) = pending.join_next().await {
        collect(&mut held, Some(r));
    }
    // Refusals after the handshake arrive as a close with the reason.
    tokio::time::sleep(settle).await;
    let mut reasons = std::mem::take(&mut held.reasons);
    held.conns
        .retain(|c| match proofrack_common::tls::close_reason_text(c) {
            None => true,
            Some(reason) => {
                reasons.insert(reason);
                false
            }
        });
    held.reasons = reasons;
    held.accepted = held.conns.len();
    held.refused = total - held.accepted;
    Ok(held)
}

fn collect(
    held: &mut Held,
    r: Option<Result<Result<quinn::Connection, String>, tokio::task::JoinError>>,
) {
    match r {
        Some(Ok(Ok(c))) => held.conns.push(c),
        Some(Ok(Err(e))) => {
            held.reasons.insert(e);
        }
        _ => {}
    }
}

/// `conns` connections of one client certificate, each opening `streams` streams that
/// announce a `frame_bytes` first frame and send `sent_bytes` of it, then stop: frames that
/// never complete. Held until dropped (the coordinator cuts them off at its request
/// timeout).
pub async fn half_open_frames(
    endpoint: &quinn::Endpoint,
    target: &Target,
    conns: usize,
    streams: usize,
    frame_bytes: u32,
    sent_bytes: usize,
) -> anyhow::Result<Held> {
    let config = target.client_config(&Identity::client("half-open")?)?;
    let mut held = Held {
        conns: Vec::new(),
        accepted: 0,
        refused: 0,
        reasons: Default::default(),
        tasks: Vec::new(),
    };
    for _ in 0..conns {
        let conn = connect(endpoint, target, config.clone()).await?;
        for _ in 0..streams {
            let conn = conn.clone();
            held.tasks.push(tokio::spawn(async move {
                let Ok((mut send, _recv)) = conn.open_bi().await else {
                    return;
                };
                let mut bytes = frame_bytes.to_le_bytes().to_vec();
                bytes.resize(4 + sent_bytes, 0xa5);
                // Blocks once flow control stops it: the coordinator reads no further than
                // its budget lets it.
                let _ = send.write_all(&bytes).await;
                // Hold the stream open (the receive half too) until aborted.
                std::future::pending::<()>().await;
                drop(_recv);
            }));
        }
        held.conns.push(conn);
    }
    held.accepted = held.conns.len();
    Ok(held)
}

/// `n` concurrent circuit registrations by a client, each announcing `bytes` of zkey and
/// sending them all (garbage with a wrong hash: whatever the coordinator does with it, it
/// must never hold it in memory). The coordinator's answers, in order.
/// Longest an attacking upload waits for the coordinator's answer (a refusal comes at once;
/// a whole 256 MiB upload to disk takes seconds): the suite never hangs on one.
const UPLOAD_ANSWER_WITHIN: Duration = Duration::from_secs(120);

pub async fn large_uploads(
    target: &Target,
    identity: &Identity,
    n: usize,
    bytes: u64,
) -> anyhow::Result<Vec<String>> {
    // One connection per upload: a refused upload's unread bytes stay charged to its own
    // connection's flow-control window (the coordinator stops the stream without reading
    // it), so uploads sharing a connection would wait on each other, not on the coordinator.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let client = target.client(identity).await?;
        tasks.spawn(async move {
            let answer =
                match tokio::time::timeout(UPLOAD_ANSWER_WITHIN, upload_garbage(&client, i, bytes))
                    .await
                {
                    Ok(answer) => answer,
                    Err(_) => format!("no answer within {} s", UPLOAD_ANSWER_WITHIN.as_secs()),
                };
            client.close().await;
            (i, answer)
        });
    }
    let mut answers = vec![String::new(); n];
    while let Some(r) = tasks.join_next().await {
        let (i, answer) = r?;
        answers[i] = answer;
    }
    Ok(answers)
}

async fn upload_garbage(client: &CoordinatorClient, i: usize, bytes: u64) -> String {
    let attempt = async {
        let (mut send, mut recv) = client.connection().open_bi().await?;
        write_stream_open(
            &mut send,
            StreamOpen::Client(ClientRequest::RegisterCircuit(RegisterCircuit {
                name: format!("squat-{i}"),
            })),
        )
        .await?;
        let sending = async {
            framing::write_frame(
                &mut send,
                &PayloadHeader {
                    total_len: bytes,
                    sha256: [0; 32],
                },
            )
            .await?;
            let chunk = vec![0x5au8; framing::PAYLOAD_CHUNK_BYTES];
            let mut sent = 0u64;
            while sent < bytes {
                let n = (bytes - sent).min(chunk.len() as u64) as usize;
                framing::write_frame_bytes(&mut send, &chunk[..n]).await?;
                sent += n as u64;
            }
            send.flush().await?;
            Ok::<_, framing::FrameError>(())
        };
        // The coordinator may answer before it has everything (a refusal).
        let (_, reply) = tokio::join!(sending, read_message::<_, ClientResponse>(&mut recv));
        Ok::<_, anyhow::Error>(reply?)
    };
    match attempt.await {
        Ok(ClientResponse::Rejected { reason }) => format!("refused: {reason}"),
        Ok(ClientResponse::Error(e)) => format!("refused: {e}"),
        Ok(other) => format!("answered: {other:?}"),
        Err(e) => format!("cut off: {e:#}"),
    }
}

/// `n` drains of agents that never existed, `in_flight` at a time on one connection of
/// `identity`. Returns (answered ok, answered refused).
pub async fn unknown_drains(
    target: &Target,
    identity: &Identity,
    n: u64,
    in_flight: usize,
) -> anyhow::Result<(u64, u64)> {
    let client = Arc::new(target.client(identity).await?);
    let mut tasks = tokio::task::JoinSet::new();
    let (mut ok, mut refused) = (0, 0);
    let mut tally =
        |r: Result<Result<bool, String>, tokio::task::JoinError>| -> anyhow::Result<()> {
            match r? {
                Ok(true) => ok += 1,
                Ok(false) => refused += 1,
                Err(e) => bail!("a drain request failed: {e}"),
            }
            Ok(())
        };
    for i in 0..n {
        if tasks.len() >= in_flight {
            tally(tasks.join_next().await.expect("tasks running"))?;
        }
        let client = client.clone();
        tasks.spawn(async move {
            let agent: AgentRef = format!("ghost-{}/gpu-{i}", i % 97)
                .parse()
                .map_err(|e: String| e)?;
            match client
                .request(ClientRequest::Drain {
                    request_id: i,
                    agent,
                    drain: true,
                })
                .await
            {
                Ok(ClientResponse::Admin { ok, .. }) => Ok(ok),
                Ok(ClientResponse::Error(_)) | Ok(ClientResponse::Rejected { .. }) => Ok(false),
                Ok(other) => Err(format!("unexpected reply {other:?}")),
                Err(e) => Err(e.to_string()),
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        tally(r)?;
    }
    Ok((ok, refused))
}

/// Opens a stream and trickles a 1 KiB request one byte per `every`; returns the
/// coordinator's reason once it cuts the connection, and how long that took (or gives up
/// after `give_up`).
pub async fn slow_trickle(
    endpoint: &quinn::Endpoint,
    target: &Target,
    every: Duration,
    give_up: Duration,
) -> anyhow::Result<(Option<String>, Duration)> {
    let config = target.client_config(&Identity::client("trickle")?)?;
    let conn = connect(endpoint, target, config).await?;
    let started = Instant::now();
    let (mut send, _recv) = conn.open_bi().await?;
    let trickle = async {
        let _ = send.write_all(&1024u32.to_le_bytes()).await;
        loop {
            if send.write_all(&[0]).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    };
    tokio::select! {
        _ = trickle => {}
        _ = conn.closed() => {}
        _ = tokio::time::sleep(give_up) => {}
    }
    let reason = proofrack_common::tls::close_reason_text(&conn);
    Ok((reason, started.elapsed()))
}

/// How big each attack is. [`Scale::issue`] is the issue's; counts that only cost time may be
/// scaled down (the sizes that test a bound may not).
#[derive(Clone, Debug)]
pub struct Scale {
    pub idle_connections: usize,
    pub idle_per_identity: usize,
    pub half_open_connections: usize,
    pub half_open_streams: usize,
    pub uploads: usize,
    pub upload_bytes: u64,
    pub drains: u64,
    /// Bytes per trickle step, one step per this long.
    pub trickle_every: Duration,
    /// How long the attacked coordinator may take to come back to its memory before.
    pub recovery: Duration,
}

impl Scale {
    /// The sizes of issue 15: 3,000 idle connections; 4 connections × 128 streams of
    /// half-sent 1 MiB frames; 4 concurrent 256 MiB uploads; 20,000 drains of unknown agents;
    /// a request trickled at 2 bytes a second.
    pub fn issue() -> Scale {
        Scale {
            idle_connections: 3_000,
            // Past `max_connections_per_identity` (8), so that cap is hit as well as the
            // client cap.
            idle_per_identity: 12,
            half_open_connections: 4,
            half_open_streams: 128,
            uploads: 4,
            upload_bytes: 256 << 20,
            drains: 20_000,
            trickle_every: Duration::from_millis(500),
            recovery: Duration::from_secs(20),
        }
    }
}

/// One attack's figures.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AttackReport {
    pub attack: &'static str,
    /// What the attacker got (accepted/refused counts, the coordinator's reasons).
    pub outcome: String,
    pub rss_before_bytes: u64,
    pub rss_peak_bytes: u64,
    pub rss_after_bytes: u64,
    /// The honest client's submit → verified latency during the attack.
    pub honest_tasks: usize,
    pub honest_p50_ms: f64,
    pub honest_max_ms: f64,
    /// The same with no attack, measured in the same run.
    pub baseline_p50_ms: f64,
}

impl AttackReport {
    pub fn growth_bytes(&self) -> u64 {
        self.rss_peak_bytes.saturating_sub(self.rss_before_bytes)
    }

    /// One JSON line, MiB and ms rounded for people.
    pub fn json(&self) -> serde_json::Value {
        let mib = |b: u64| (b as f64 / (1 << 20) as f64 * 10.0).round() / 10.0;
        let ms = |x: f64| (x * 10.0).round() / 10.0;
        serde_json::json!({
            "bench": "attack",
            "attack": self.attack,
            "outcome": self.outcome,
            "rss_before_mib": mib(self.rss_before_bytes),
            "rss_peak_mib": mib(self.rss_peak_bytes),
            "rss_growth_mib": mib(self.growth_bytes()),
            "rss_after_mib": mib(self.rss_after_bytes),
            "honest_tasks": self.honest_tasks,
            "honest_submit_to_verified_p50_ms": ms(self.honest_p50_ms),
            "honest_submit_to_verified_max_ms": ms(self.honest_max_ms),
            "no_attack_p50_ms": ms(self.baseline_p50_ms),
            "ratio_to_no_attack": (self.honest_p50_ms / self.baseline_p50_ms * 100.0).round() / 100.0,
        })
    }
}

/// Runs every attack in turn against `target`, with `honest` (a client whose tasks a
/// connected agent proves) measuring latency during each; calls `report` after each.
pub async fn run_suite(
    target: &Target,
    honest: &CoordinatorClient,
    scale: &Scale,
    mut report: impl FnMut(&AttackReport),
) -> anyhow::Result<Vec<AttackReport>> {
    let endpoint = endpoint()?;
    let never = AtomicBool::new(true);
    let baseline = honest_latencies(honest, 1, 5, 5, &never).await?;
    let baseline_p50 = median_ms(&baseline);
    let mut next_request = 1_000u64;
    let mut reports = Vec::new();
    for attack in [
        "idle_connections",
        "half_open_frames",
        "large_uploads",
        "unknown_drains",
        "slow_trickle",
    ] {
        let before = settle_rss(target).await;
        let sampler = RssSampler::start(target.pid);
        let done = Arc::new(AtomicBool::new(false));
        let probe = {
            let done = done.clone();
            let first = next_request;
            async move { honest_latencies(honest, first, 1, 500, &done).await }
        };
        next_request += 1_000;
        let run = async {
            let outcome = run_attack(attack, &endpoint, target, scale).await;
            done.store(true, Ordering::Relaxed);
            outcome
        };
        let (outcome, latencies) = tokio::join!(run, probe);
        let peak = sampler.finish();
        let outcome = outcome.with_context(|| format!("attack {attack}"))?;
        let latencies = latencies.with_context(|| format!("the honest client during {attack}"))?;
        let after = recover_rss(target, before, scale.recovery).await;
        let r = AttackReport {
            attack,
            outcome,
            rss_before_bytes: before,
            rss_peak_bytes: peak.max(before),
            rss_after_bytes: after,
            honest_tasks: latencies.len(),
            honest_p50_ms: median_ms(&latencies),
            honest_max_ms: latencies
                .iter()
                .map(|d| d.as_secs_f64() * 1e3)
                .fold(0.0, f64::max),
            baseline_p50_ms: baseline_p50,
        };
        report(&r);
        reports.push(r);
    }
    Ok(reports)
}

async fn run_attack(
    attack: &str,
    endpoint: &quinn::Endpoint,
    target: &Target,
    scale: &Scale,
) -> anyhow::Result<String> {
    Ok(match attack {
        "idle_connections" => {
            let held = idle_connections(
                endpoint,
                target,
                scale.idle_connections,
                scale.idle_per_identity,
                Duration::from_secs(2),
            )
            .await?;
            // Held a while, as idle connections are.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let alive = held
                .conns
                .iter()
                .filter(|c| c.close_reason().is_none())
                .count();
            format!(
                "{} of {} accepted ({alive} still open after 3 s), {} refused: {}",
                held.accepted,
                scale.idle_connections,
                held.refused,
                held.reasons.iter().cloned().collect::<Vec<_>>().join(" | ")
            )
        }
        "half_open_frames" => {
            let held = half_open_frames(
                endpoint,
                target,
                scale.half_open_connections,
                scale.half_open_streams,
                framing::MAX_FRAME_BYTES as u32,
                framing::MAX_FRAME_BYTES / 2,
            )
            .await?;
            // Until the coordinator cuts them off (its request timeout), or 30 s.
            let all_closed = async {
                for c in &held.conns {
                    c.closed().await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(30), all_closed).await;
            let closed = held
                .conns
                .iter()
                .filter_map(proofrack_common::tls::close_reason_text)
                .collect::<Vec<_>>();
            format!(
                "{} connections x {} streams; {} cut off by the coordinator: {}",
                scale.half_open_connections,
                scale.half_open_streams,
                closed.len(),
                closed.first().cloned().unwrap_or_default()
            )
        }
        "large_uploads" => {
            let answers = large_uploads(
                target,
                &Identity::client("uploader")?,
                scale.uploads,
                scale.upload_bytes,
            )
            .await?;
            answers.join(" | ")
        }
        "unknown_drains" => {
            let (ok, refused) =
                unknown_drains(target, &Identity::client("drainer")?, scale.drains, 64).await?;
            format!(
                "{} drains: {ok} answered ok, {refused} refused",
                scale.drains
            )
        }
        "slow_trickle" => {
            let (reason, after) = slow_trickle(
                endpoint,
                target,
                scale.trickle_every,
                Duration::from_secs(60),
            )
            .await?;
            format!(
                "cut off after {:.1} s: {}",
                after.as_secs_f64(),
                reason.unwrap_or_else(|| "not cut off".into())
            )
        }
        other => bail!("no attack named {other}"),
    })
}

/// The RSS once it has stopped moving (two reads 1 s apart within 1 MiB, or after 10 s).
async fn settle_rss(target: &Target) -> u64 {
    let mut last = target.rss_bytes();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = target.rss_bytes();
        if now.abs_diff(last) < 1 << 20 {
            return now;
        }
        last = now;
    }
    last
}

/// Waits up to `within` for the RSS to come back near `before`; the lowest seen.
async fn recover_rss(target: &Target, before: u64, within: Duration) -> u64 {
    let started = Instant::now();
    let mut lowest = target.rss_bytes();
    while started.elapsed() < within && lowest > before + (RECOVERED_WITHIN_BYTES / 2) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        lowest = lowest.min(target.rss_bytes());
    }
    lowest
}

/// The most an attack may grow the coordinator's RSS (issue 15: 128 MiB).
pub const MAX_GROWTH_BYTES: u64 = 128 << 20;
/// How close to its RSS before the attack the coordinator must come back afterwards.
pub const RECOVERED_WITHIN_BYTES: u64 = 32 << 20;

/// An agent in this process proving on the CPU with a fixed calibration (the honest fleet
/// of `proofrack-bench attack`); stops when the returned sender is dropped or set.
pub fn start_cpu_agent(
    target: &Target,
    operator: &str,
    name: &str,
    cache_dir: &std::path::Path,
) -> anyhow::Result<tokio::sync::watch::Sender<bool>> {
    use proofrack_agent::{AgentSettings, ConnectionSettings};
    use proofrack_agent::{KeyCache, KeyCacheLimits};
    use proofrack_agent::{Prover, ProverBackendImpl};
    use proofrack_common::telemetry::{Calibration, ProverBackend};
    let identity = Identity::agent(operator, name)?;
    if !target.certs.cert_path(&identity).exists() {
        target
            .certs
            .issue(&identity, &IssueOptions::default(), SystemClock.now())?;
    }
    let calibration = Calibration {
        backend: ProverBackend::Cpu,
        backend_name: "cpu (fixed calibration, attack bench)".into(),
        msm_g1_points_per_sec: 1_000_000,
        msm_size: 1 << 12,
        ntt_elements_per_sec: 20_000_000,
        ntt_size: 1 << 14,
        compute_memory_total_bytes: 8 << 30,
    };
    let settings = AgentSettings {
        coordinator: target.addr,
        server_name: COORDINATOR_HOST.to_string(),
        tls: target.certs.tls_material(&identity)?,
        identity_files: None,
        prover: Arc::new(Prover::new(ProverBackendImpl::Cpu(
            proofrack_kernels::cpu::CpuBackend::new(),
        ))),
        calibration: calibration.clone(),
        key_cache: KeyCache::open(cache_dir.join(name), KeyCacheLimits::default())?,
        max_concurrent_tasks: 1,
        clock: Arc::new(SystemClock),
        agent_build: "proofrack-agent (attack bench)".into(),
        metrics: proofrack_agent::AgentMetrics::new(format!("{operator}/{name}"), calibration),
        connection: ConnectionSettings::default(),
    };
    let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        };
        if let Err(e) = proofrack_agent::run(settings, shutdown).await {
            tracing::warn!(error = %e, "the honest agent stopped");
        }
    });
    Ok(stop)
}
