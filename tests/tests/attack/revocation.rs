//! A revoked certificate stays out: cut while connected, refused on every reconnect whether
//! the peer tries to resume its TLS session or not, and a real agent revoked while connected
//! keeps trying, says plainly in its log that it was revoked, and is back as soon as a renewed
//! certificate is on its disk, without a restart.

use super::logs;
use super::roles::id;
use crate::support::cluster::{Cluster, ClusterSpec, COORDINATOR_HOST};
use crate::support::real_agent::{cpu_prover, AgentTarget, RealAgent};
use crate::support::wait::{poll_until, within};
use crate::support::STEP_TIMEOUT;
use proofrack_agent::BackoffLimits;
use proofrack_agent::ConnectionSettings;
use proofrack_agent::IdentityFiles;
use proofrack_certs::RevokeTarget;
use proofrack_common::protocol::{
    read_message, write_stream_open, ClientRequest, ClientResponse, StreamOpen,
};
use proofrack_common::tls::{self, CoordinatorClose, Liveness};
use proofrack_common::{Clock, SystemClock};
use rustls::client::{ClientSessionMemoryCache, ClientSessionStore, Resumption};
use rustls::client::{Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;
use rustls::NamedGroup;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A client's TLS session store that counts what the server gave it and what it tried to
/// resume with.
#[derive(Debug)]
struct CountingStore {
    inner: ClientSessionMemoryCache,
    tickets_received: AtomicU64,
    resumptions_tried: AtomicU64,
}

impl ClientSessionStore for CountingStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.inner.set_kx_hint(server_name, group)
    }
    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.inner.kx_hint(server_name)
    }
    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.inner.set_tls12_session(server_name, value)
    }
    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.inner.tls12_session(server_name)
    }
    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name)
    }
    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.tickets_received.fetch_add(1, Ordering::SeqCst);
        self.inner.insert_tls13_ticket(server_name, value)
    }
    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        let ticket = self.inner.take_tls13_ticket(server_name);
        if ticket.is_some() {
            self.resumptions_tried.fetch_add(1, Ordering::SeqCst);
        }
        ticket
    }
}

/// One ledger request on `conn`: what a client reads, or why it could not.
async fn ledger_on(conn: &quinn::Connection) -> Result<(), String> {
    within(STEP_TIMEOUT, "a ledger request", async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        write_stream_open(&mut send, StreamOpen::Client(ClientRequest::Ledger))
            .await
            .map_err(|e| e.to_string())?;
        let _ = send.finish();
        match read_message::<_, ClientResponse>(&mut recv).await {
            Ok(ClientResponse::Ledger(_)) => Ok(()),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(tls::close_reason_text(conn).unwrap_or(e.to_string())),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_peer_is_not_let_back_in_by_resuming_its_tls_session() {
    let cluster = Cluster::start("revoked-resume", ClusterSpec::default()).await;
    let eve = id("client/eve");
    // One endpoint and one configuration for every attempt, as an agent reconnects: a client
    // that holds a session ticket from the first connection offers it on the next.
    let store = Arc::new(CountingStore {
        inner: ClientSessionMemoryCache::new(16),
        tickets_received: AtomicU64::new(0),
        resumptions_tried: AtomicU64::new(0),
    });
    let mut rustls_config = tls::client_tls_config(&cluster.material(&eve)).unwrap();
    rustls_config.resumption = Resumption::store(store.clone());
    let config = tls::quic_client_config(rustls_config, Liveness::default()).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).expect("UDP socket");
    endpoint.set_default_client_config(config);
    let connect = || async {
        within(
            STEP_TIMEOUT,
            "QUIC handshake",
            endpoint.connect(cluster.addr, COORDINATOR_HOST).unwrap(),
        )
        .await
        .expect("the client side of the handshake completes")
    };

    let first = connect().await;
    ledger_on(&first)
        .await
        .expect("served before the revocation");
    ledger_on(&first)
        .await
        .expect("served again (tickets had time to arrive)");

    cluster
        .certs
        .revoke(
            &RevokeTarget::Identity(eve.clone()),
            "key stolen",
            SystemClock.now(),
        )
        .expect("revoke");
    within(
        STEP_TIMEOUT,
        "the revoked connection to be cut",
        first.closed(),
    )
    .await;
    assert_eq!(
        tls::coordinator_close(&first),
        Some(CoordinatorClose::Revoked),
        "{:?}",
        tls::close_reason_text(&first)
    );

    // Back with the same endpoint and session store: refused, every time.
    for attempt in 0..3 {
        let again = connect().await;
        let refused = ledger_on(&again)
            .await
            .expect_err("a revoked certificate is not served again");
        assert!(
            refused.to_lowercase().contains("revoked"),
            "attempt {attempt}: {refused}"
        );
        assert_eq!(
            tls::coordinator_close(&again),
            Some(CoordinatorClose::Revoked),
            "the agent recognises the refusal as a revocation"
        );
    }
    // The coordinator hands out no session tickets, so there is nothing to resume with.
    assert_eq!(store.tickets_received.load(Ordering::SeqCst), 0);
    assert_eq!(store.resumptions_tried.load(Ordering::SeqCst), 0);
    assert!(cluster.shared().revoked_handshakes_refused() >= 3);
    endpoint.close(0u32.into(), b"done");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_agent_revoked_while_connected_stays_out_until_its_renewed_certificate_is_on_disk() {
    logs::capture();
    let cluster = Cluster::start("revoked-agent", ClusterSpec::default()).await;
    let observer = cluster.connect_as(&id("admin/root")).await;
    let agent_id = id("operator/op-a/agent/box-1");
    let files = IdentityFiles {
        ca_cert: cluster.certs.ca_cert_path(),
        cert: cluster.certs.cert_path(&agent_id),
        key: cluster.certs.key_path(&agent_id),
    };
    let target = AgentTarget {
        coordinator: cluster.addr,
        tls: cluster.material(&agent_id),
        identity_files: Some(files),
        cache_dir: cluster.dir.path().join("agents"),
        // Quick retries, so several refused reconnects fit in the test.
        connection: ConnectionSettings {
            backoff: BackoffLimits {
                base_ms: 50,
                cap_ms: 300,
                healthy_after_ms: 60_000,
            },
            ..ConnectionSettings::default()
        },
    };
    let agent = RealAgent::start_at(target, "op-a", "box-1", cpu_prover());
    observer.wait_agent_ready("op-a", "box-1").await;
    let revoked = cluster.certs.read_cert(&agent_id).unwrap().serial_hex;

    let refused_before = cluster.shared().revoked_handshakes_refused();
    cluster
        .certs
        .revoke(
            &RevokeTarget::Identity(agent_id.clone()),
            "box stolen",
            SystemClock.now(),
        )
        .expect("revoke");
    observer.wait_agent_gone("op-a", "box-1").await;
    // It tries again and again (resuming where it can) and is refused each time; it is
    // never served in between.
    poll_until(
        STEP_TIMEOUT,
        "three refused reconnects of the revoked agent",
        || async {
            let row = observer.agent_row("op-a", "box-1").await;
            assert!(
                !row.is_some_and(|r| r.connected),
                "the revoked agent got back in"
            );
            (cluster.shared().revoked_handshakes_refused() >= refused_before + 3).then_some(())
        },
    )
    .await;
    // Its own log says so, with what to do.
    poll_until(STEP_TIMEOUT, "the agent to log its revocation", || async {
        let said = logs::lines_with(&["ERROR", "revoked this agent's certificate", &revoked]);
        said.into_iter().next()
    })
    .await;
    let said = logs::lines_with(&["ERROR", &revoked]).remove(0);
    assert!(
        said.contains("certs renew agent") && said.contains("no restart needed"),
        "{said}"
    );

    // Someone copies another agent's certificate into its place: not taken (it names another
    // identity), the agent says so and stays out.
    let other = id("operator/op-a/agent/box-2");
    cluster.material(&other);
    let own = std::fs::read(cluster.certs.cert_path(&agent_id)).unwrap();
    std::fs::copy(
        cluster.certs.cert_path(&other),
        cluster.certs.cert_path(&agent_id),
    )
    .unwrap();
    poll_until(
        STEP_TIMEOUT,
        "the agent to refuse the wrong certificate",
        || async {
            logs::lines_with(&[
                "WARN",
                "names another identity",
                "operator/op-a/agent/box-2",
            ])
            .into_iter()
            .next()
        },
    )
    .await;
    assert!(!observer
        .agent_row("op-a", "box-1")
        .await
        .is_some_and(|r| r.connected));

    // (Put back, so the CA host's `renew` below finds this agent's certificate.)
    std::fs::write(cluster.certs.cert_path(&agent_id), own).unwrap();

    // A renewed certificate and key appear on its disk: it is back without a restart.
    cluster
        .certs
        .renew(&agent_id, 30, SystemClock.now())
        .expect("renew");
    let renewed = cluster.certs.read_cert(&agent_id).unwrap().serial_hex;
    assert_ne!(renewed, revoked);
    observer.wait_agent_ready("op-a", "box-1").await;
    let task = observer_submit(&cluster).await;
    let alice = cluster.client("alice").await;
    let mut watch = crate::support::wait::TaskWatch::start(&alice, task);
    watch.verified().await;
    agent.stop().await;
    cluster.shutdown().await;
}

/// A task for the agent to prove, from a requester.
async fn observer_submit(cluster: &Cluster) -> proofrack_common::TaskId {
    cluster.client("alice").await.submit("mimc-4", 5, 10).await
}
