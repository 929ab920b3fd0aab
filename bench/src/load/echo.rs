//! The reference for the coordinator benchmark: a bare quinn echo over the same stack (mutual
//! TLS with the deployment's certificates, the coordinator's transport settings), `connections`
//! clients each doing request/response round trips of a small frame on one stream, with the
//! server on its own two-thread runtime as the coordinator is. What the coordinator reaches
//! per second is read against what the transport alone reaches in the same run.

use super::runtime::OwnRuntime;
use super::{percentile, CONNECT_CONCURRENCY, LOOPBACK_HOST};
use anyhow::Context;
use proofrack_certs::{CertsDir, LocalPki, LocalPkiOptions};
use proofrack_common::identity::Identity;
use proofrack_common::tls;
use proofrack_common::{Clock, SystemClock};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Bytes per echoed frame: about an offer reply's size on the wire.
pub const ECHO_FRAME_BYTES: usize = 64;
/// Name of the echo server's runtime threads.
pub const ECHO_THREAD_NAME: &str = "proofrack-echo";
/// Round trips before the window opens, so it measures the steady state.
const WARM_UP: Duration = Duration::from_millis(500);
/// One round trip in this many is timed, per connection.
const SAMPLE_EVERY: u64 = 16;

#[derive(Clone, Debug)]
pub struct EchoLoad {
    pub connections: usize,
    /// Round trips are counted for this long after every connection is up.
    pub window: Duration,
    pub dir: PathBuf,
}

#[derive(Clone, Debug)]
pub struct EchoReport {
    pub connections: usize,
    pub round_trips: u64,
    pub window: Duration,
    /// One sampled round trip per connection per [`SAMPLE_EVERY`], sorted.
    pub latencies: Vec<Duration>,
}

impl EchoReport {
    pub fn round_trips_per_sec(&self) -> f64 {
        self.round_trips as f64 / self.window.as_secs_f64()
    }

    pub fn latency_percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
}

/// Runs the echo. Call from outside any runtime's worker (it builds the server's own).
pub async fn run(opts: EchoLoad) -> anyhow::Result<EchoReport> {
    std::fs::create_dir_all(&opts.dir)?;
    let (server_config, client_config) = configs(&opts)?;
    let server_rt = OwnRuntime::new(ECHO_THREAD_NAME)?;
    let server = serve(&server_rt, server_config).await?;
    let addr = server.local_addr()?;
    let client = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let conns = connect(&client, &client_config, addr, opts.connections).await?;
    let (round_trips, window, latencies) = measure(conns, opts.window).await?;
    client.close(0u32.into(), b"echo done");
    server.close(0u32.into(), b"echo done");
    Ok(EchoReport {
        connections: opts.connections,
        round_trips,
        window,
        latencies,
    })
}

/// The server's and clients' TLS configurations. One client certificate serves every
/// connection: each handshake still verifies it, and issuing a thousand would only slow the
/// set-up.
fn configs(opts: &EchoLoad) -> anyhow::Result<(quinn::ServerConfig, quinn::ClientConfig)> {
    let now = SystemClock.now();
    let pki = LocalPki::bootstrap(
        CertsDir::new(opts.dir.join("certs")),
        LOOPBACK_HOST,
        &LocalPkiOptions::default(),
        now,
    )?;
    let client = pki.issue(&Identity::agent("op-echo", "echo")?, now)?;
    let server = tls::server_config(&pki.coordinator_material()?, pki.dir().revocation_handle()?)?;
    Ok((server, tls::client_config(&client)?))
}

/// An endpoint on `runtime` that echoes every frame of every stream back.
async fn serve(
    runtime: &OwnRuntime,
    config: quinn::ServerConfig,
) -> anyhow::Result<quinn::Endpoint> {
    let endpoint = runtime
        .spawn(
            async move { quinn::Endpoint::server(config, SocketAddr::from(([127, 0, 0, 1], 0))) },
        )
        .await??;
    let accepting = endpoint.clone();
    runtime.spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    tokio::spawn(async move {
                        let mut buf = [0u8; ECHO_FRAME_BYTES];
                        while recv.read_exact(&mut buf).await.is_ok() {
                            if send.write_all(&buf).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
        }
    });
    Ok(endpoint)
}

type EchoStream = (quinn::Connection, (quinn::SendStream, quinn::RecvStream));

/// `connections` connections with one stream each, [`CONNECT_CONCURRENCY`] handshakes at once.
async fn connect(
    client: &quinn::Endpoint,
    config: &quinn::ClientConfig,
    addr: SocketAddr,
    connections: usize,
) -> anyhow::Result<Vec<EchoStream>> {
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let mut pending = JoinSet::new();
    for _ in 0..connections {
        let (client, config, gate) = (client.clone(), config.clone(), gate.clone());
        pending.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("gate never closed");
            let conn = client.connect_with(config, addr, LOOPBACK_HOST)?.await?;
            let streams = conn.open_bi().await?;
            anyhow::Ok((conn, streams))
        });
    }
    let mut conns = Vec::with_capacity(connections);
    while let Some(joined) = pending.join_next().await {
        conns.push(joined?.context("echo connection")?);
    }
    Ok(conns)
}

/// Every connection echoes as fast as it can; round trips are counted over `window` after a
/// warm-up. Returns the count, the window as it ran, and the sampled latencies, sorted.
async fn measure(
    conns: Vec<EchoStream>,
    window: Duration,
) -> anyhow::Result<(u64, Duration, Vec<Duration>)> {
    let running = Arc::new(AtomicBool::new(true));
    let counting = Arc::new(AtomicBool::new(false));
    let round_trips = Arc::new(AtomicU64::new(0));
    let mut clients = JoinSet::new();
    let mut handles = Vec::with_capacity(conns.len());
    for (conn, (mut send, mut recv)) in conns {
        handles.push(conn);
        let (running, counting, round_trips) =
            (running.clone(), counting.clone(), round_trips.clone());
        clients.spawn(async move {
            let frame = [7u8; ECHO_FRAME_BYTES];
            let mut back = [0u8; ECHO_FRAME_BYTES];
            let mut samples = Vec::new();
            let mut n: u64 = 0;
            while running.load(Ordering::Relaxed) {
                let sent = Instant::now();
                send.write_all(&frame).await?;
                recv.read_exact(&mut back).await?;
                if counting.load(Ordering::Relaxed) {
                    round_trips.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                    if n.is_multiple_of(SAMPLE_EVERY) {
                        samples.push(sent.elapsed());
                    }
                }
            }
            send.finish()?;
            anyhow::Ok(samples)
        });
    }
    tokio::time::sleep(WARM_UP).await;
    counting.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    counting.store(false, Ordering::Relaxed);
    let window = t0.elapsed();
    let total = round_trips.load(Ordering::Relaxed);
    running.store(false, Ordering::Relaxed);
    let mut latencies = Vec::new();
    while let Some(joined) = clients.join_next().await {
        if let Ok(samples) = joined? {
            latencies.extend(samples);
        }
    }
    latencies.sort();
    for conn in &handles {
        conn.close(0u32.into(), b"echo done");
    }
    Ok((total, window, latencies))
}
