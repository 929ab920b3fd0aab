//! The reference for the coordinator benchmark: a bare quinn echo over the same stack (mutual
//! TLS with the deployment's certificates, the coordinator's transport settings), `connections`
//! clients each doing request/response round trips of a small frame on one stream, with the
//! server on its own two-thread runtime as the coordinator is. What the coordinator reaches
//! per second is read against what the transport alone reaches in the same run.

use anyhow::Context;
use proofrack_certs::{CertsDir, InitOptions, IssueOptions};
use proofrack_common::identity::{Identity, TrustDomain, DEFAULT_TRUST_DOMAIN};
use proofrack_common::tls;
use proofrack_common::{Clock, SystemClock};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes per echoed frame: about an offer reply's size on the wire.
pub const ECHO_FRAME_BYTES: usize = 64;
/// Name of the echo server's runtime threads.
pub const ECHO_THREAD_NAME: &str = "proofrack-echo";

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
    /// One sampled round trip per connection per 16, sorted.
    pub latencies: Vec<Duration>,
}

impl EchoReport {
    pub fn round_trips_per_sec(&self) -> f64 {
        self.round_trips as f64 / self.window.as_secs_f64()
    }

    pub fn latency_percentile(&self, p: f64) -> Duration {
        crate::fleet_load::percentile(&self.latencies, p)
    }
}

/// Runs the echo. Call from outside any runtime's worker (it builds the server's own).
pub async fn run(opts: EchoLoad) -> anyhow::Result<EchoReport> {
    std::fs::create_dir_all(&opts.dir)?;
    let certs = CertsDir::new(opts.dir.join("certs"));
    let now = SystemClock.now();
    certs.init(
        &InitOptions::new(TrustDomain::new(DEFAULT_TRUST_DOMAIN)?),
        now,
    )?;
    let server_id = Identity::coordinator("127.0.0.1")?;
    certs.issue(&server_id, &IssueOptions::default(), now)?;
    // One client certificate for every connection: each handshake still verifies it, and
    // issuing a thousand would only slow the set-up.
    let client_id = Identity::agent("op-echo", "echo")?;
    certs.issue(&client_id, &IssueOptions::default(), now)?;
    let server_config =
        tls::server_config(&certs.tls_material(&server_id)?, certs.revocation_handle()?)?;
    let client_config = tls::client_config(&certs.tls_material(&client_id)?)?;

    let server_rt = crate::fleet_load::OwnRuntime::new(ECHO_THREAD_NAME)?;
    let endpoint = server_rt
        .spawn(async move {
            quinn::Endpoint::server(server_config, "127.0.0.1:0".parse().expect("literal"))
        })
        .await??;
    let addr = endpoint.local_addr()?;
    let server_endpoint = endpoint.clone();
    server_rt.spawn(async move {
        while let Some(incoming) = server_endpoint.accept().await {
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

    let client = quinn::Endpoint::client("127.0.0.1:0".parse().expect("literal"))?;
    let gate = Arc::new(tokio::sync::Semaphore::new(
        crate::fleet_load::CONNECT_CONCURRENCY,
    ));
    let mut conns = Vec::with_capacity(opts.connections);
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..opts.connections {
        let (client, config, gate) = (client.clone(), client_config.clone(), gate.clone());
        pending.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("gate never closed");
            let conn = client.connect_with(config, addr, "127.0.0.1")?.await?;
            let streams = conn.open_bi().await?;
            anyhow::Ok((conn, streams))
        });
    }
    while let Some(joined) = pending.join_next().await {
        conns.push(joined?.context("echo connection")?);
    }

    let running = Arc::new(AtomicBool::new(true));
    let counting = Arc::new(AtomicBool::new(false));
    let round_trips = Arc::new(AtomicU64::new(0));
    let mut clients = tokio::task::JoinSet::new();
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
                    if n.is_multiple_of(16) {
                        samples.push(sent.elapsed());
                    }
                }
            }
            send.finish()?;
            anyhow::Ok(samples)
        });
    }
    // A short warm-up, so the window measures the steady state.
    tokio::time::sleep(Duration::from_millis(500)).await;
    counting.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(opts.window).await;
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
    client.close(0u32.into(), b"echo done");
    endpoint.close(0u32.into(), b"echo done");
    Ok(EchoReport {
        connections: opts.connections,
        round_trips: total,
        window,
        latencies,
    })
}
