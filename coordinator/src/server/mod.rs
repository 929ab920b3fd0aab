//! The coordinator's shell: a quinn server around [`CoordinatorCore`].
//!
//! Every connection is authenticated in the TLS handshake (client certificate from our CA,
//! one SPIFFE URI SAN, serial not revoked); the identity in that certificate is the only thing
//! trusted about the peer. Each stream starts with a [`StreamOpen`] frame naming what it is:
//! an agent's control stream, a key fetch, a proof delivery, or a client request. A stream a
//! peer's kind may not open, or a malformed frame, gets a clear error and only that peer's
//! stream or connection is closed; everyone else is served on.
//!
//! The core sits behind one mutex: every event is `handle_*(now, ..)`, then the effects are
//! drained and dispatched outside the lock ([`Shared::apply`]). One timer task sleeps until
//! `poll_timeout` and calls `handle_timeout`.

mod agent_session;
mod authz_gate;
mod circom_session;
mod circuit_admin;
mod client_session;
mod delivery;
mod duplicates;
mod handles;
mod input_stream;
mod key_stream;
mod limits;
mod settings;
mod shared;
mod trust;
mod upload;
mod views;

pub use settings::KEYS_DIR;
pub use shared::Shared;

use crate::config::Policy;
use crate::ledger::source::reconcile_static_stake;
use crate::registry::CircuitRegistry;
use crate::store::{Store, STORE_FILE};
use crate::tasks::CoordinatorCore;
use limits::{Limit, ServerLimits, CLOSE_LIMIT};
use proofrack_common::identity::identity_from_connection;
use proofrack_common::protocol::{read_stream_open_with, OpenError, ProtocolError, StreamOpen};
use proofrack_common::revocation::RevocationHandle;
use proofrack_common::tls::{self, TlsMaterial};
use proofrack_common::{Clock, OperatorId, StakeUnits};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the revocation list is re-read; a revoked agent is cut off within this time.
pub const REVOCATION_RELOAD_INTERVAL: Duration = Duration::from_secs(2);
/// Longest a graceful shutdown waits for connections to close.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Bytes quinn buffers for one connection attempt before it is accepted (a client's first
/// flight is a few KiB; quinn's default is 10 MiB).
pub const INCOMING_BUFFER_BYTES: u64 = 64 << 10;
/// The same, all attempts together (quinn's default is 100 MiB).
pub const INCOMING_BUFFER_TOTAL_BYTES: u64 = 16 << 20;

/// Everything the server needs; [`ServerSettings::from_config`] builds it from a
/// `coordinator.toml`.
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub tls: TlsMaterial,
    pub revocation: RevocationHandle,
    pub policy: Policy,
    pub delegations: Vec<(OperatorId, StakeUnits)>,
    pub registry: CircuitRegistry,
    pub clock: Arc<dyn Clock>,
    /// Sent to agents in `Welcome`.
    pub telemetry_interval_ms: u64,
    /// Where the coordinator's state lives.
    pub state: StateLocation,
    /// What peers may make the coordinator hold (`[limits]`).
    pub limits: crate::limits::Limits,
}

/// Where the durable state is kept.
#[derive(Clone, Debug)]
pub enum StateLocation {
    /// `<dir>/state.redb`, created if missing; what a real coordinator uses.
    Dir(std::path::PathBuf),
    /// Nothing on disk (tests and throwaway runs); same code path otherwise.
    Memory,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("TLS configuration: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("policy: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("stake source: {0}")]
    Stake(String),
    #[error("circuit registry: {0}")]
    Circuit(String),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Revocation(#[from] proofrack_common::revocation::RevocationError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(
        "refusing to start from the stored state: {0}. Restore state.redb from a backup, or move \
         it away to start empty (stake state is then lost)"
    )]
    Restore(#[from] crate::tasks::RestoreError),
}

/// A started server. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    pub local_addr: SocketAddr,
    pub shared: Arc<Shared>,
    store: Store,
    endpoint: quinn::Endpoint,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting, closes every connection and waits briefly for them to go.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.endpoint
            .close(0u32.into(), b"coordinator shutting down");
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.endpoint.wait_idle()).await;
        for t in self.tasks {
            t.abort();
        }
        drop(self.shared);
        self.store.close();
    }

    /// Resolves if the state store fails; the coordinator must then stop.
    pub async fn store_failed(&self) -> String {
        self.store.failed().await
    }
}

/// Binds, loads the stake source and circuits into a fresh core, and serves.
pub async fn start(settings: ServerSettings) -> Result<RunningServer, ServerError> {
    let store = match &settings.state {
        StateLocation::Dir(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| crate::store::StoreError::Open {
                path: dir.clone(),
                detail: e.to_string(),
            })?;
            Store::open(&dir.join(STORE_FILE))?
        }
        StateLocation::Memory => Store::in_memory()?,
    };
    let loaded = store.load()?;
    let now = settings.clock.now();
    let mut core = match loaded.core {
        None => CoordinatorCore::new(settings.policy.clone())?,
        Some(state) => CoordinatorCore::restore(settings.policy.clone(), state, now)?,
    };
    for event in reconcile_static_stake(core.ledger(), &settings.delegations) {
        core.handle_stake_event(now, event)
            .map_err(|e| ServerError::Stake(e.to_string()))?;
    }
    for c in settings.registry.iter() {
        core.register_circuit(c.name.clone(), c.key_id, c.shape)
            .map_err(|e| ServerError::Circuit(e.to_string()))?;
    }
    store.commit_now(core.full_changes())?;
    circom_session::sweep_witnesses(&core, &settings.registry.circom_dir());
    upload::sweep(&settings.registry.circom_dir());
    let to_reverify: Vec<_> = core
        .verifying_tasks()
        .into_iter()
        .filter_map(|(task, agent)| match loaded.deliveries.get(&task) {
            Some(d) => Some((task, agent, d.clone())),
            None => {
                tracing::error!(%task, %agent, "task is verifying but its delivered proof is not in the store");
                None
            }
        })
        .collect();
    while core.poll_effect().is_some() {}
    settings.limits.validate()?;
    let mut server_config = tls::server_config(&settings.tls, settings.revocation.clone())?;
    // Connection attempts quinn holds before the accept loop decides on them, and the bytes
    // it buffers for them: a handshake flood costs at most these.
    server_config
        .max_incoming(settings.limits.max_connections)
        .incoming_buffer_size(INCOMING_BUFFER_BYTES)
        .incoming_buffer_size_total(INCOMING_BUFFER_TOTAL_BYTES);
    let bind_error = |source| ServerError::Bind {
        addr: settings.listen,
        source,
    };
    let socket = std::net::UdpSocket::bind(settings.listen).map_err(bind_error)?;
    let endpoint = quinn::Endpoint::new(
        tls::server_endpoint_config(&settings.tls),
        Some(server_config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(bind_error)?;
    let local_addr = endpoint.local_addr().map_err(|source| ServerError::Bind {
        addr: settings.listen,
        source,
    })?;
    let shared = Arc::new(Shared::new(
        core,
        store.clone(),
        loaded.proofs.into_iter().collect(),
        settings.registry,
        settings.clock,
        settings.tls.trust_domain.clone(),
        settings.revocation.clone(),
        settings.telemetry_interval_ms,
        ServerLimits::new(settings.limits.clone()),
    ));
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(shared.clone().run_timers(stop_rx.clone())));
    {
        let shared = shared.clone();
        tasks.push(tokio::spawn(
            settings
                .revocation
                .clone()
                .reload_every(REVOCATION_RELOAD_INTERVAL, move |handle| {
                    shared.cut_revoked(handle)
                }),
        ));
    }
    {
        let shared = shared.clone();
        let stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            shared.limits().trim_after_floods(stop).await
        }));
    }
    tasks.push(tokio::spawn(accept_loop(
        endpoint.clone(),
        shared.clone(),
        stop_rx,
    )));
    for (task, agent, delivery) in to_reverify {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            tracing::info!(%task, %agent, "re-verifying a proof delivered before the restart");
            delivery::verify_and_settle(&shared, &agent, task, delivery).await;
        }));
    }
    tracing::info!(%local_addr, "coordinator listening");
    Ok(RunningServer {
        local_addr,
        shared,
        store,
        endpoint,
        stop,
        tasks,
    })
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => match i { Some(i) => i, None => return },
            _ = stop.changed() => return,
        };
        // Past `max_connections` an attempt is refused before any TLS work is spent on it.
        let Some(slot) = shared.limits().admit_connection() else {
            incoming.refuse();
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(conn) => serve_connection(conn, shared).await,
                // A refused certificate lands here; the peer sees it at its first stream.
                Err(e) => tracing::info!(%remote, error = %e, "handshake refused"),
            }
        });
    }
}

async fn serve_connection(conn: quinn::Connection, shared: Arc<Shared>) {
    let peer = match identity_from_connection(&conn, shared.trust_domain()) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(remote = %conn.remote_address(), error = %e, "peer identity unreadable");
            conn.close(1u32.into(), e.to_string().as_bytes());
            return;
        }
    };
    let conn_id = shared.track_connection(&conn, &peer);
    // The revocation list as it is now, checked after the connection is tracked (a reload
    // from here on closes it too), before any stream is served. The handshake checked it
    // already; this holds even if a future TLS setting let a session resume without it.
    if shared.is_revoked(&peer.serial_hex) {
        tracing::warn!(peer = %peer.identity, serial = %peer.serial_hex, "revoked certificate on a new connection; closing it");
        conn.close(shared::CLOSE_REVOKED.into(), shared::REVOKED_REASON);
        shared.untrack_connection(conn_id);
        return;
    }
    if let Err(reason) = shared.limits().admit_identity(conn_id, &conn, &peer) {
        tracing::info!(peer = %peer.identity, %reason, "connection refused");
        conn.close(CLOSE_LIMIT.into(), reason.as_bytes());
        shared.untrack_connection(conn_id);
        return;
    }
    tracing::debug!(peer = %peer.identity, serial = %peer.serial_hex, "connection open");
    let budget = shared.limits().frame_budget();
    let request_timeout = shared.limits().settings().request_timeout();
    loop {
        let (send, mut recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(peer = %peer.identity, reason = %e, "connection closed");
                break;
            }
        };
        let shared = shared.clone();
        let conn = conn.clone();
        let peer = peer.clone();
        let mut reader = shared.limits().frame_reader(&budget);
        tokio::spawn(async move {
            // The request must arrive whole within the timeout of the stream's opening: a
            // stream that sends nothing, or trickles, is cut off with the reason.
            let open = tokio::time::timeout(
                request_timeout,
                read_stream_open_with(&mut reader, &mut recv, peer.identity.kind()),
            )
            .await
            .unwrap_or_else(|_| {
                shared
                    .limits()
                    .hit(Limit::RequestTimeout, &peer.identity.to_string());
                Err(OpenError::Refused(ProtocolError::Malformed {
                    detail: format!(
                        "no request arrived whole within {} ms of opening the stream (limits.request_timeout_ms); send each request at once",
                        request_timeout.as_millis()
                    ),
                }))
            });
            match open {
                Ok(open) => {
                    dispatch_stream(open, conn, conn_id, peer, send, recv, reader, shared).await
                }
                Err(OpenError::Refused(err)) => {
                    tracing::info!(peer = %peer.identity, error = %err, "stream refused");
                    // Close before the stream ends: a stream end that reaches the peer first
                    // reads as "the peer closed the stream", without the reason.
                    shared::refuse(&conn, &err);
                    drop(send);
                }
                Err(OpenError::Stream(e)) => {
                    tracing::info!(peer = %peer.identity, error = %e, "stream dropped");
                }
            }
        });
    }
    shared.limits().release_identity(conn_id, &peer);
    shared.untrack_connection(conn_id);
}

#[allow(clippy::too_many_arguments)]
async fn dispatch_stream(
    open: StreamOpen,
    conn: quinn::Connection,
    conn_id: u64,
    peer: proofrack_common::identity::PeerCertInfo,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    reader: proofrack_common::framing::FrameReader,
    shared: Arc<Shared>,
) {
    // Which identity may open which stream: the authorization table (a client certificate
    // used as an agent, say, is refused). Close before the stream ends, as above.
    if authz_gate::may_open(&shared, &peer, open.kind()).is_err() {
        shared::refuse(
            &conn,
            &ProtocolError::NotAllowed {
                identity: peer.identity.to_string(),
                action: open.describe().to_string(),
            },
        );
        drop(send);
        return;
    }
    match open {
        StreamOpen::Control(hello) => {
            agent_session::run(shared, conn, conn_id, peer, hello, send, recv, reader).await
        }
        StreamOpen::FetchKey(req) => key_stream::serve(shared, peer, req, send).await,
        StreamOpen::DeliverProof(d) => delivery::serve(shared, peer, d, send).await,
        StreamOpen::Client(req) => client_session::serve(shared, peer, req, send, recv).await,
        StreamOpen::FetchInput(req) => input_stream::serve(shared, peer, req, send).await,
    }
}
