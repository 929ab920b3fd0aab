//! Real QUIC on loopback with certificates from this crate: mutual TLS works, and the
//! coordinator refuses a client without a certificate, one from another CA, one whose serial
//! was revoked (after a reload, without restarting), and a coordinator certificate used as a
//! client. A refused client still sees its connect succeed; the refusal shows at its first
//! stream operation and in the server's `incoming.await`.

use proofrack_certs::{CertsDir, InitOptions, IssueOptions, RevokeTarget};
use proofrack_common::identity::{identity_from_connection, Identity, TrustDomain};
use proofrack_common::protocol::{
    read_message, read_stream_open, write_message, write_stream_open, AgentHello, ClientRequest,
    ClientResponse, CoordinatorToAgent, LedgerView, StreamOpen, Welcome, PROTOCOL_VERSION,
};
use proofrack_common::revocation::ReloadOutcome;
use proofrack_common::tls::{
    client_config, close_reason_text, server_config, TlsMaterial, ALPN_PROOFRACK,
};
use proofrack_common::{Clock, SystemClock, UnixMillis};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Every network step of a test finishes well within this on loopback.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("proofrack-quic-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn td() -> TrustDomain {
    TrustDomain::new("proofrack.local").unwrap()
}

fn now() -> UnixMillis {
    SystemClock.now()
}

fn ca(root: &std::path::Path) -> CertsDir {
    let dir = CertsDir::new(root);
    dir.init(&InitOptions::new(td()), now()).unwrap();
    dir
}

fn coordinator_id() -> Identity {
    Identity::coordinator("127.0.0.1").unwrap()
}
fn agent_id() -> Identity {
    Identity::agent("op-a", "gpu-1").unwrap()
}

fn hello() -> AgentHello {
    proofrack_common::testkit::hello(&proofrack_common::testkit::cpu_calibration(), 1)
}

/// A minimal coordinator: accepts connections, reads each stream's open frame, answers an
/// agent hello with `Welcome` and a client request with an empty ledger. Reports every
/// accepted identity or handshake failure on `events`.
fn spawn_server(
    endpoint: quinn::Endpoint,
    events: tokio::sync::mpsc::UnboundedSender<Result<Identity, String>>,
) {
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            let events = events.clone();
            tokio::spawn(async move {
                let conn = match incoming.await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = events.send(Err(e.to_string()));
                        return;
                    }
                };
                assert_eq!(
                    conn.handshake_data()
                        .unwrap()
                        .downcast::<quinn::crypto::rustls::HandshakeData>()
                        .unwrap()
                        .protocol
                        .unwrap(),
                    ALPN_PROOFRACK
                );
                let peer = identity_from_connection(&conn, &td())
                    .expect("the verifier already checked the identity");
                let _ = events.send(Ok(peer.identity.clone()));
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    let peer = peer.clone();
                    tokio::spawn(async move {
                        let open = read_stream_open(&mut recv, peer.identity.kind())
                            .await
                            .unwrap();
                        match open {
                            StreamOpen::Control(_) => {
                                let welcome = CoordinatorToAgent::Welcome(Welcome {
                                    protocol_version: PROTOCOL_VERSION,
                                    coordinator_build: "test".into(),
                                    agent: peer.identity.to_spiffe_uri(&td()),
                                    telemetry_interval_ms: 1000,
                                    notices: vec![],
                                });
                                write_message(&mut send, &welcome).await.unwrap();
                            }
                            StreamOpen::Client(ClientRequest::Ledger) => {
                                let view = ClientResponse::Ledger(LedgerView {
                                    as_of: UnixMillis(1),
                                    operators: vec![],
                                });
                                write_message(&mut send, &view).await.unwrap();
                            }
                            other => panic!("unexpected stream {other:?}"),
                        }
                        let _ = send.finish();
                        let _ = send.stopped().await;
                    });
                }
            });
        }
    });
}

struct Server {
    addr: SocketAddr,
    events: tokio::sync::mpsc::UnboundedReceiver<Result<Identity, String>>,
    _endpoint: quinn::Endpoint,
}

impl Server {
    async fn next_event(&mut self) -> Result<Identity, String> {
        tokio::time::timeout(STEP_TIMEOUT, self.events.recv())
            .await
            .expect("server event in time")
            .expect("server running")
    }
}

fn start_server(dir: &CertsDir) -> (Server, proofrack_common::revocation::RevocationHandle) {
    dir.issue(&coordinator_id(), &IssueOptions::default(), now())
        .unwrap();
    let material = dir.tls_material(&coordinator_id()).unwrap();
    let revocation = dir.revocation_handle().unwrap();
    let config = server_config(&material, revocation.clone()).unwrap();
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    spawn_server(endpoint.clone(), tx);
    (
        Server {
            addr,
            events: rx,
            _endpoint: endpoint,
        },
        revocation,
    )
}

/// Connects, opens a control stream, sends a hello and reads the reply.
async fn agent_handshake(
    config: quinn::ClientConfig,
    addr: SocketAddr,
    server_name: &str,
) -> Result<CoordinatorToAgent, String> {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(config);
    let attempt = async {
        let conn = endpoint
            .connect(addr, server_name)
            .map_err(|e| format!("connect: {e}"))?
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        // The refusal surfaces at the first stream operation; the connection's close reason
        // carries the TLS alert the coordinator sent.
        let why = |step: &str, e: &dyn std::fmt::Display| {
            format!("{step}: {e} (close reason: {:?})", close_reason_text(&conn))
        };
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| why("open_bi", &e))?;
        write_stream_open(&mut send, StreamOpen::Control(hello()))
            .await
            .map_err(|e| why("write", &e))?;
        let reply: CoordinatorToAgent =
            read_message(&mut recv).await.map_err(|e| why("read", &e))?;
        Ok(reply)
    };
    let out = tokio::time::timeout(STEP_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
    endpoint.close(0u32.into(), b"done");
    out
}

#[tokio::test]
async fn mutual_tls_identifies_the_agent_and_client_by_their_uri_san() {
    let t = TempDir::new("ok");
    let dir = ca(&t.0);
    let (mut server, _rev) = start_server(&dir);
    dir.issue(&agent_id(), &IssueOptions::default(), now())
        .unwrap();
    let cfg = client_config(&dir.tls_material(&agent_id()).unwrap()).unwrap();

    let reply = agent_handshake(cfg, server.addr, "127.0.0.1")
        .await
        .unwrap();
    match reply {
        CoordinatorToAgent::Welcome(w) => assert_eq!(
            w.agent,
            "spiffe://proofrack.local/operator/op-a/agent/gpu-1"
        ),
        other => panic!("expected Welcome, got {other:?}"),
    }
    assert_eq!(server.next_event().await.unwrap(), agent_id());

    // A client request on its own stream.
    let client = Identity::client("alice").unwrap();
    dir.issue(&client, &IssueOptions::default(), now()).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(client_config(&dir.tls_material(&client).unwrap()).unwrap());
    let conn = endpoint
        .connect(server.addr, "127.0.0.1")
        .unwrap()
        .await
        .unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    write_stream_open(&mut send, StreamOpen::Client(ClientRequest::Ledger))
        .await
        .unwrap();
    let reply: ClientResponse = tokio::time::timeout(STEP_TIMEOUT, read_message(&mut recv))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(reply, ClientResponse::Ledger(_)));
    assert_eq!(server.next_event().await.unwrap(), client);
}

#[tokio::test]
async fn client_without_a_certificate_is_refused() {
    let t = TempDir::new("nocert");
    let dir = ca(&t.0);
    let (mut server, _rev) = start_server(&dir);
    // Trusts the CA, presents nothing.
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_file_iter(dir.ca_cert_path()).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN_PROOFRACK.to_vec()];
    let cfg = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap(),
    ));

    let err = agent_handshake(cfg, server.addr, "127.0.0.1")
        .await
        .unwrap_err();
    let server_err = server.next_event().await.unwrap_err();
    eprintln!("client saw: {err}\nserver saw: {server_err}");
    assert!(
        server_err.to_lowercase().contains("certificate"),
        "{server_err}"
    );
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    let t = TempDir::new("otherca");
    let dir = ca(&t.0.join("ours"));
    let rogue = ca(&t.0.join("rogue"));
    let (mut server, _rev) = start_server(&dir);
    rogue
        .issue(&agent_id(), &IssueOptions::default(), now())
        .unwrap();
    // Trusts our CA (so the client side of the handshake succeeds) but presents a rogue leaf
    // with a perfectly well-formed identity in our trust domain.
    let ours = dir.tls_material(&coordinator_id()).unwrap();
    let theirs = rogue.tls_material(&agent_id()).unwrap();
    let material = TlsMaterial {
        ca_roots: ours.ca_roots,
        chain: theirs.chain,
        key: theirs.key,
        trust_domain: td(),
    };
    let err = agent_handshake(client_config(&material).unwrap(), server.addr, "127.0.0.1")
        .await
        .unwrap_err();
    let server_err = server.next_event().await.unwrap_err();
    eprintln!("client saw: {err}\nserver saw: {server_err}");
    // Both CAs have the same subject (same trust domain), so webpki finds "our" CA by name
    // and the signature check fails; with differing names it would be UnknownIssuer.
    assert!(
        server_err.contains("BadSignature") || server_err.contains("UnknownIssuer"),
        "{server_err}"
    );
}

#[tokio::test]
async fn revoked_serial_is_refused_after_reload_without_restart() {
    let t = TempDir::new("revoked");
    let dir = ca(&t.0);
    let (mut server, revocation) = start_server(&dir);
    dir.issue(&agent_id(), &IssueOptions::default(), now())
        .unwrap();
    let material = dir.tls_material(&agent_id()).unwrap();

    agent_handshake(client_config(&material).unwrap(), server.addr, "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(server.next_event().await.unwrap(), agent_id());

    dir.revoke(&RevokeTarget::Identity(agent_id()), "test", now())
        .unwrap();
    assert_eq!(
        revocation.reload_if_changed().unwrap(),
        ReloadOutcome::Reloaded { revoked: 1 }
    );

    let err = agent_handshake(client_config(&material).unwrap(), server.addr, "127.0.0.1")
        .await
        .unwrap_err();
    let server_err = server.next_event().await.unwrap_err();
    eprintln!("client saw: {err}\nserver saw: {server_err}");
    assert!(
        server_err.to_lowercase().contains("revoked"),
        "{server_err}"
    );
    assert!(
        err.contains("refused the TLS handshake: invalid peer certificate: Revoked"),
        "the client learns why: {err}"
    );

    // A renewed certificate (fresh serial) is accepted again by the same server.
    dir.renew(&agent_id(), 30, now()).unwrap();
    let renewed = dir.tls_material(&agent_id()).unwrap();
    agent_handshake(client_config(&renewed).unwrap(), server.addr, "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(server.next_event().await.unwrap(), agent_id());
}

#[tokio::test]
async fn wrong_certificate_kinds_and_server_names_are_refused() {
    let t = TempDir::new("kinds");
    let dir = ca(&t.0);
    let (mut server, _rev) = start_server(&dir);

    // The coordinator's own certificate (EKU ServerAuth) cannot be used as a client.
    let coord = dir.tls_material(&coordinator_id()).unwrap();
    assert!(
        agent_handshake(client_config(&coord).unwrap(), server.addr, "127.0.0.1")
            .await
            .is_err()
    );
    let server_err = server.next_event().await.unwrap_err();
    eprintln!("server saw: {server_err}");

    // An expired certificate (issued three days ago for one day).
    let old = Identity::client("old").unwrap();
    let three_days_ago = UnixMillis(now().0 - 3 * 86_400_000);
    dir.issue(
        &old,
        &IssueOptions {
            days: 1,
            force: false,
        },
        three_days_ago,
    )
    .unwrap();
    let cfg = client_config(&dir.tls_material(&old).unwrap()).unwrap();
    assert!(agent_handshake(cfg, server.addr, "127.0.0.1")
        .await
        .is_err());
    let server_err = server.next_event().await.unwrap_err();
    assert!(
        server_err.contains("Expired") || server_err.contains("expired"),
        "{server_err}"
    );

    // Dialling a name the coordinator's certificate does not carry fails on the client side.
    dir.issue(&agent_id(), &IssueOptions::default(), now())
        .unwrap();
    let cfg = client_config(&dir.tls_material(&agent_id()).unwrap()).unwrap();
    let err = agent_handshake(cfg, server.addr, "coordinator.example")
        .await
        .unwrap_err();
    assert!(
        err.contains("handshake") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
}

/// A leaf signed by our CA, with the ClientAuth EKU, but with the given URI SANs.
fn leaf_with_uris(dir: &CertsDir, uris: &[&str]) -> TlsMaterial {
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(dir.ca_key_path()).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(dir.ca_cert_path()).unwrap(),
        ca_key,
    )
    .unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = uris
        .iter()
        .map(|u| rcgen::SanType::URI((*u).try_into().unwrap()))
        .collect();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let ours = dir.tls_material(&coordinator_id()).unwrap();
    TlsMaterial {
        ca_roots: ours.ca_roots,
        chain: vec![cert.der().clone()],
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        trust_domain: td(),
    }
}

#[tokio::test]
async fn certificates_without_exactly_one_uri_san_in_our_domain_are_refused_in_the_handshake() {
    let t = TempDir::new("sans");
    let dir = ca(&t.0);
    let (mut server, _rev) = start_server(&dir);
    let cases: [(&[&str], &str); 3] = [
        (&[], "no URI SAN"),
        (
            &[
                "spiffe://proofrack.local/client/a",
                "spiffe://proofrack.local/client/b",
            ],
            "2 URI SANs",
        ),
        (
            &["spiffe://elsewhere.local/client/a"],
            "not in trust domain",
        ),
    ];
    for (uris, needle) in cases {
        let err = agent_handshake(
            client_config(&leaf_with_uris(&dir, uris)).unwrap(),
            server.addr,
            "127.0.0.1",
        )
        .await
        .unwrap_err();
        let server_err = server.next_event().await.unwrap_err();
        eprintln!("client saw: {err}\nserver saw: {server_err}");
        assert!(server_err.contains(needle), "{uris:?}: {server_err}");
    }
    // The same construction with one good URI SAN is accepted, so the refusals above are
    // about the SANs and nothing else.
    let good = leaf_with_uris(&dir, &["spiffe://proofrack.local/client/a"]);
    agent_handshake(client_config(&good).unwrap(), server.addr, "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(
        server.next_event().await.unwrap(),
        Identity::client("a").unwrap()
    );
}

/// A proving-key-sized payload over a real QUIC stream: the chunked payload arrives intact
/// into a sink (as the agent's key cache writes it), and the throughput is printed.
#[tokio::test]
async fn key_payload_streams_over_quic_with_its_hash_checked() {
    use proofrack_common::framing::{recv_payload_to, send_payload};
    use proofrack_common::protocol::{read_stream_open, FetchKey, KeyReply, MAX_PROVING_KEY_BYTES};
    const PAYLOAD_BYTES: usize = 48 << 20;

    let t = TempDir::new("payload");
    let dir = ca(&t.0);
    dir.issue(&coordinator_id(), &IssueOptions::default(), now())
        .unwrap();
    dir.issue(&agent_id(), &IssueOptions::default(), now())
        .unwrap();
    let server_cfg = server_config(
        &dir.tls_material(&coordinator_id()).unwrap(),
        dir.revocation_handle().unwrap(),
    )
    .unwrap();
    let server = quinn::Endpoint::server(server_cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    let key: Vec<u8> = (0..PAYLOAD_BYTES).map(|i| (i % 251) as u8).collect();
    let key_for_server = key.clone();
    tokio::spawn(async move {
        let conn = server.accept().await.unwrap().await.unwrap();
        let (mut send, mut recv) = conn.accept_bi().await.unwrap();
        let StreamOpen::FetchKey(FetchKey { key: id }) =
            read_stream_open(&mut recv, proofrack_common::identity::IdentityKind::Agent)
                .await
                .unwrap()
        else {
            panic!("expected a key fetch")
        };
        write_message(
            &mut send,
            &KeyReply::Found {
                key: id,
                total_len: key_for_server.len() as u64,
            },
        )
        .await
        .unwrap();
        send_payload(&mut send, &key_for_server).await.unwrap();
        send.finish().unwrap();
        let _ = send.stopped().await;
    });

    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint
        .set_default_client_config(client_config(&dir.tls_material(&agent_id()).unwrap()).unwrap());
    let conn = endpoint.connect(addr, "127.0.0.1").unwrap().await.unwrap();
    let started = std::time::Instant::now();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    write_stream_open(
        &mut send,
        StreamOpen::FetchKey(FetchKey {
            key: proofrack_common::KeyId([1; 32]),
        }),
    )
    .await
    .unwrap();
    let reply: KeyReply = read_message(&mut recv).await.unwrap();
    assert!(
        matches!(reply, KeyReply::Found { total_len, .. } if total_len == PAYLOAD_BYTES as u64)
    );
    let mut sink = Vec::with_capacity(PAYLOAD_BYTES);
    let header = tokio::time::timeout(
        Duration::from_secs(60),
        recv_payload_to(&mut recv, &mut sink, MAX_PROVING_KEY_BYTES),
    )
    .await
    .unwrap()
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(header.total_len, PAYLOAD_BYTES as u64);
    assert!(sink == key, "payload differs");
    eprintln!(
        "{} MiB over QUIC loopback in {secs:.2} s: {:.0} MiB/s",
        PAYLOAD_BYTES >> 20,
        (PAYLOAD_BYTES >> 20) as f64 / secs
    );
}
