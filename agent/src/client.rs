//! The agent's connection to the coordinator: one QUIC connection, mutually authenticated,
//! re-established with exponential backoff and jitter. On it: the control stream (hello,
//! telemetry, offers and replies) and, per task, key fetches and proof deliveries.
//!
//! Tasks outlive connections: a task accepted before a disconnect is proven anyway and
//! delivered on the next connection, as long as its due time has not passed.

use crate::backoff::{Backoff, BackoffLimits};
use crate::intake::{Intake, TaskBook};
use crate::key_cache::KeyCache;
use crate::metrics::AgentMetrics;
use crate::prover::Prover;
use crate::telemetry::TelemetryCollector;
use crate::worker::{self, Start, TaskHandle, Worker};
use proofrack_common::framing::FrameError;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{
    read_message, write_message, write_stream_open, AgentCapabilities, AgentHello,
    AgentToCoordinator, CoordinatorToAgent, OfferDecision, OfferReply, ProtocolError, StreamOpen,
    TaskOffer, MIN_TELEMETRY_INTERVAL_MS, PROTOCOL_VERSION,
};
use proofrack_common::telemetry::{Calibration, Telemetry};
use proofrack_common::tls::{self, TlsMaterial};
use proofrack_common::KeyId;
use proofrack_common::{Clock, TaskId};
use proofrack_kernels::groth16::PreparedVerifyingKey;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How long a graceful shutdown waits for tasks in flight to be delivered.
pub const DRAIN_GRACE: Duration = Duration::from_secs(60);

/// What the agent runs with; the binary builds it from `agent.toml`.
pub struct AgentSettings {
    pub coordinator: SocketAddr,
    /// The name the coordinator's certificate must carry (host of the configured address).
    pub server_name: String,
    pub tls: TlsMaterial,
    /// Where `tls` was loaded from: read again before every connection attempt, so a renewed
    /// certificate is used without a restart. `None`: `tls` is fixed.
    pub identity_files: Option<crate::identity_files::IdentityFiles>,
    pub prover: Arc<Prover>,
    pub calibration: Calibration,
    pub key_cache: KeyCache,
    pub max_concurrent_tasks: u32,
    pub clock: Arc<dyn Clock>,
    pub agent_build: String,
    /// Counters and the latest telemetry for `/metrics`.
    pub metrics: Arc<AgentMetrics>,
    /// How a lost coordinator is noticed and dialled again.
    pub connection: ConnectionSettings,
}

/// Liveness of the connection and the reconnect backoff. The defaults suit a rack; tests of
/// partitions and coordinator crashes shorten them so that many cuts fit in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionSettings {
    pub liveness: tls::Liveness,
    pub backoff: BackoffLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error(
        "this certificate is not an agent's ({0}); issue one with `proofrack certs issue agent`"
    )]
    NotAnAgent(String),
    #[error("cannot open a UDP socket: {0}")]
    Socket(std::io::Error),
}

/// Shared by the control loop and the task workers.
pub(crate) struct AgentContext {
    pub(crate) prover: Arc<Prover>,
    pub(crate) key_cache: Mutex<KeyCache>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The live connection, `None` between connections.
    pub(crate) conn: watch::Receiver<Option<quinn::Connection>>,
    pub(crate) tasks: Mutex<HeldTasks>,
    /// Woken whenever a task ends (drain waits on it).
    pub(crate) idle: Notify,
    /// Verifying keys of the keys loaded, prepared once (the pairing e(α, β) is not
    /// recomputed per proof), to check own proofs before delivering.
    pub(crate) verifying_keys: Mutex<HashMap<KeyId, Arc<PreparedVerifyingKey>>>,
    pub(crate) identity: String,
    pub(crate) metrics: Arc<AgentMetrics>,
}

/// The tasks this agent holds: the pure book that decides, and a worker for each task the
/// book took (a worker outlives its entry only while it ends).
pub(crate) struct HeldTasks {
    pub(crate) book: TaskBook,
    pub(crate) workers: HashMap<TaskId, TaskHandle>,
}

impl AgentContext {
    /// Acts on the book's answer about `offer`: a worker for a task it took, proving at once
    /// or when a slot frees.
    fn admit(self: &Arc<Self>, tasks: &mut HeldTasks, intake: &Intake, offer: TaskOffer) {
        let start = match intake {
            Intake::Run => Start::Now,
            Intake::Wait => Start::WhenSlotFrees,
            Intake::Held | Intake::Refuse(_) => return,
        };
        let task = offer.task;
        tasks
            .workers
            .insert(task, Worker::spawn(self.clone(), offer, start));
        self.metrics.set_tasks_in_flight(tasks.workers.len());
    }

    pub(crate) fn verifying_key(&self, id: &KeyId) -> Option<Arc<PreparedVerifyingKey>> {
        self.verifying_keys
            .lock()
            .expect("verifying keys poisoned")
            .get(id)
            .cloned()
    }

    pub(crate) fn remember_verifying_key(&self, id: KeyId, vk: PreparedVerifyingKey) {
        self.verifying_keys
            .lock()
            .expect("verifying keys poisoned")
            .insert(id, Arc::new(vk));
    }
}

/// Runs the agent until `shutdown` resolves, then drains: stops taking offers and waits
/// (up to [`DRAIN_GRACE`]) for accepted tasks to be delivered.
pub async fn run(
    settings: AgentSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let me = settings.tls.own_identity().map_err(tls::TlsError::from)?;
    if !matches!(me.identity, Identity::Agent { .. }) {
        return Err(AgentError::NotAnAgent(me.identity.to_string()));
    }
    let mut identity = crate::identity_files::AgentIdentity::new(
        &settings.tls,
        settings.identity_files,
        settings.connection.liveness,
    )?;
    let bind: SocketAddr = if settings.coordinator.is_ipv6() {
        "[::]:0".parse().expect("literal address")
    } else {
        "0.0.0.0:0".parse().expect("literal address")
    };
    let endpoint = quinn::Endpoint::client(bind).map_err(AgentError::Socket)?;

    let (conn_tx, conn_rx) = watch::channel(None);
    let ctx = Arc::new(AgentContext {
        prover: settings.prover,
        key_cache: Mutex::new(settings.key_cache),
        clock: settings.clock,
        conn: conn_rx,
        tasks: Mutex::new(HeldTasks {
            book: TaskBook::new(settings.max_concurrent_tasks),
            workers: HashMap::new(),
        }),
        idle: Notify::new(),
        verifying_keys: Mutex::new(HashMap::new()),
        identity: me.identity.to_string(),
        metrics: settings.metrics,
    });
    let hello_base = HelloBase {
        build: settings.agent_build,
        calibration: settings.calibration,
        max_concurrent_tasks: settings.max_concurrent_tasks,
    };
    let mut telemetry = TelemetryCollector::new();
    let mut backoff = Backoff::new(settings.connection.backoff);
    let mut rng = rand::rngs::OsRng;
    tokio::pin!(shutdown);
    let mut stopping = false;
    while !stopping {
        let mut shut_out = None;
        // The certificate files are read again before every attempt (a renewal is picked up).
        let connecting = endpoint.connect_with(
            identity.config_for_attempt(),
            settings.coordinator,
            &settings.server_name,
        );
        let attempt = async {
            match connecting {
                Ok(c) => c.await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        };
        let conn = tokio::select! {
            c = attempt => c,
            _ = &mut shutdown => { stopping = true; continue; }
        };
        match conn {
            Ok(conn) => {
                backoff.handle_connected(ctx.clock.now());
                let _ = conn_tx.send(Some(conn.clone()));
                ctx.metrics.set_connected(true);
                let ended = session(&ctx, &conn, &hello_base, &mut telemetry, &mut shutdown).await;
                let _ = conn_tx.send(None);
                ctx.metrics.set_connected(false);
                backoff.handle_disconnected(ctx.clock.now());
                match ended {
                    SessionEnd::Shutdown => stopping = true,
                    SessionEnd::Lost(why) => {
                        let why = tls::close_reason_text(&conn).unwrap_or(why);
                        tracing::warn!(coordinator = %settings.coordinator, reason = %why, "connection to the coordinator lost");
                        shut_out = crate::shut_out::ShutOut::of(&conn, None);
                    }
                    SessionEnd::HeldOff(why, held_off_ms) => {
                        let held_off_ms = Some(held_off_ms);
                        let why = tls::close_reason_text(&conn).unwrap_or(why);
                        tracing::warn!(coordinator = %settings.coordinator, reason = %why, "connection to the coordinator lost");
                        shut_out = crate::shut_out::ShutOut::of(&conn, held_off_ms);
                    }
                }
                if stopping {
                    drain(&ctx, &conn_tx, conn).await;
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(coordinator = %settings.coordinator, error = %e, "cannot connect to the coordinator")
            }
        }
        let mut delay = backoff.next_delay(&mut rng);
        if let Some(s) = shut_out {
            s.log(&ctx.identity, &identity);
            delay = delay.max(s.min_wait());
        }
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "reconnecting after a delay"
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = &mut shutdown => stopping = true,
        }
    }
    endpoint.close(0u32.into(), b"agent stopped");
    endpoint.wait_idle().await;
    Ok(())
}

struct HelloBase {
    build: String,
    calibration: Calibration,
    max_concurrent_tasks: u32,
}

enum SessionEnd {
    Shutdown,
    Lost(String),
    /// The coordinator held this connection off (another process holds this agent's
    /// session) and asked to wait this many milliseconds.
    HeldOff(String, u64),
}

async fn session(
    ctx: &Arc<AgentContext>,
    conn: &quinn::Connection,
    base: &HelloBase,
    telemetry: &mut TelemetryCollector,
    shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> SessionEnd {
    let (mut send, mut recv) = match conn.open_bi().await {
        Ok(s) => s,
        Err(e) => return SessionEnd::Lost(e.to_string()),
    };
    let gpus = telemetry.sample(0).1.len() as u32;
    let hello = AgentHello {
        protocol_version: PROTOCOL_VERSION,
        agent_build: base.build.clone(),
        capabilities: AgentCapabilities {
            backend: ctx.prover.backend().kind(),
            gpus,
            max_concurrent_tasks: base.max_concurrent_tasks,
            cached_keys: ctx
                .key_cache
                .lock()
                .expect("key cache poisoned")
                .ids()
                .into_iter()
                .take(proofrack_common::protocol::MAX_CACHED_KEYS)
                .collect(),
        },
        calibration: base.calibration.clone(),
    };
    if let Err(e) = write_stream_open(&mut send, StreamOpen::Control(hello)).await {
        return SessionEnd::Lost(e.to_string());
    }
    let welcome = match read_message::<_, CoordinatorToAgent>(&mut recv).await {
        Ok(CoordinatorToAgent::Welcome(w)) => w,
        Ok(CoordinatorToAgent::Error(ProtocolError::DuplicateAgent {
            retry_after_ms,
            agent,
        })) => {
            let e = ProtocolError::DuplicateAgent {
                agent,
                retry_after_ms,
            };
            return SessionEnd::HeldOff(format!("coordinator refused: {e}"), retry_after_ms);
        }
        Ok(CoordinatorToAgent::Error(e)) => {
            return SessionEnd::Lost(format!("coordinator refused: {e}"))
        }
        Ok(other) => return SessionEnd::Lost(format!("expected Welcome, got {other:?}")),
        Err(e) => return SessionEnd::Lost(e.to_string()),
    };
    tracing::info!(agent = %ctx.identity, coordinator_build = %welcome.coordinator_build, "connected to the coordinator");
    for notice in &welcome.notices {
        tracing::warn!(agent = %ctx.identity, %notice, "the coordinator says");
    }
    let interval_ms = welcome.telemetry_interval_ms.max(MIN_TELEMETRY_INTERVAL_MS);
    let mut tick = tokio::time::interval(Duration::from_millis(interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                seq += 1;
                let (nvml, gpus, host) = telemetry.sample(seq);
                let report = Telemetry { seq, nvml, gpus, host, calibration: base.calibration.clone() };
                ctx.metrics.record_telemetry(&report);
                ctx.metrics.record_xid(telemetry.xid_counts());
                if let Err(e) = write_message(&mut send, &AgentToCoordinator::Telemetry(report)).await {
                    return SessionEnd::Lost(e.to_string());
                }
            }
            msg = read_message::<_, CoordinatorToAgent>(&mut recv) => match msg {
                Ok(CoordinatorToAgent::Offer(offer)) => {
                    let reply = decide(ctx, offer);
                    if let Err(e) = write_message(&mut send, &AgentToCoordinator::OfferReply(reply)).await {
                        return SessionEnd::Lost(e.to_string());
                    }
                }
                Ok(CoordinatorToAgent::Resume(offer)) => resume(ctx, offer),
                Ok(CoordinatorToAgent::Cancelled { task, reason }) => {
                    tracing::info!(%task, %reason, "coordinator cancelled the task");
                    worker::cancel(ctx, task);
                }
                Ok(CoordinatorToAgent::Welcome(_)) => {}
                Ok(CoordinatorToAgent::Error(e)) => return SessionEnd::Lost(format!("coordinator error: {e}")),
                Err(FrameError::Closed) => return SessionEnd::Lost("control stream closed".into()),
                Err(e) => return SessionEnd::Lost(e.to_string()),
            },
            _ = &mut *shutdown => {
                let _ = write_message(&mut send, &AgentToCoordinator::Draining { reason: "agent shutting down".into() }).await;
                let _ = send.finish();
                return SessionEnd::Shutdown;
            }
        }
    }
}

/// Answers an offer as the book decides (see [`crate::intake`]).
fn decide(ctx: &Arc<AgentContext>, offer: TaskOffer) -> OfferReply {
    let task = offer.task;
    // Held across the spawn so a task that ends at once cannot leave the book before its
    // worker is recorded.
    let mut tasks = ctx.tasks.lock().expect("tasks poisoned");
    let intake = tasks.book.handle_offer(ctx.clock.now(), &offer);
    let decision = match &intake {
        Intake::Refuse(refusal) => OfferDecision::Decline {
            reason: refusal.to_string(),
        },
        _ => OfferDecision::Accept,
    };
    ctx.admit(&mut tasks, &intake, offer);
    OfferReply { task, decision }
}

/// A task the coordinator says is bound to this agent: started unless a worker already has
/// it (a reconnect after a network cut), or left to the coordinator's grace period and
/// handover when the book refuses it (this build cannot prove it, or it is past due).
fn resume(ctx: &Arc<AgentContext>, offer: TaskOffer) {
    let task = offer.task;
    let mut tasks = ctx.tasks.lock().expect("tasks poisoned");
    let intake = tasks.book.handle_resume(ctx.clock.now(), &offer);
    match &intake {
        Intake::Held => tracing::debug!(%task, "resume: already on it"),
        Intake::Refuse(refusal) => {
            tracing::warn!(%task, reason = %refusal, "coordinator resumed a task this agent cannot take");
        }
        Intake::Run | Intake::Wait => {
            tracing::info!(%task, "resuming a task bound to this agent (it was lost in a restart)");
        }
    }
    ctx.admit(&mut tasks, &intake, offer);
}

/// After a shutdown request: keep a connection up while accepted tasks finish and deliver.
async fn drain(
    ctx: &Arc<AgentContext>,
    conn_tx: &watch::Sender<Option<quinn::Connection>>,
    conn: quinn::Connection,
) {
    let pending = ctx.tasks.lock().expect("tasks poisoned").workers.len();
    if pending == 0 {
        return;
    }
    tracing::info!(pending, "draining: finishing accepted tasks before exit");
    let _ = conn_tx.send(Some(conn));
    let wait = async {
        loop {
            let idle = ctx.idle.notified();
            if ctx.tasks.lock().expect("tasks poisoned").workers.is_empty() {
                return;
            }
            idle.await;
        }
    };
    if tokio::time::timeout(DRAIN_GRACE, wait).await.is_err() {
        tracing::warn!(
            "drain grace passed with tasks unfinished; their stake is slashed at their due time"
        );
    }
    worker::abort_all(ctx);
}
