//! Who may connect: certificates from the deployment's CA only, of the right kind, not
//! revoked (and a revocation takes effect on live connections without a restart).

use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::scripted::{attempt_hello, ScriptOptions, ScriptedAgent};
use crate::support::wire::REFUSAL_ATTEMPTS;
use proofrack_certs::{CertsDir, InitOptions, IssueOptions, RevokeTarget};
use proofrack_common::identity::{Identity, TrustDomain, DEFAULT_TRUST_DOMAIN};
use proofrack_common::tls::{self, TlsMaterial, ALPN_PROOFRACK};
use proofrack_common::{Clock, SystemClock};
use std::sync::Arc;

/// A rustls client config that trusts our CA and presents no certificate.
fn config_without_certificate(certs: &CertsDir) -> quinn::ClientConfig {
    let ca = tls::load_certs(&certs.ca_cert_path(), "CA certificate").expect("CA certificate");
    let mut roots = rustls::RootCertStore::empty();
    for c in ca {
        roots.add(c).expect("CA into the root store");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_PROOFRACK.to_vec()];
    quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(config).expect("QUIC client config"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_without_a_valid_agent_certificate_are_refused() {
    let cluster = Cluster::start("refused", ClusterSpec::default()).await;

    // No certificate at all: refused in the TLS handshake.
    let err = attempt_hello(cluster.addr, config_without_certificate(&cluster.certs))
        .await
        .expect_err("an agent without a certificate is refused");
    eprintln!("no certificate: {err}");
    assert!(
        err.contains("refused the TLS handshake") && err.contains("no certificates"),
        "no certificate: {err}"
    );

    // A well-formed agent identity in our trust domain, signed by another CA.
    let rogue = CertsDir::new(cluster.dir.path().join("rogue-ca"));
    let td = TrustDomain::new(DEFAULT_TRUST_DOMAIN).expect("trust domain");
    rogue
        .init(&InitOptions::new(td.clone()), SystemClock.now())
        .expect("rogue CA");
    let impostor = Identity::agent("op-a", "box-1").expect("identity");
    rogue
        .issue(&impostor, &IssueOptions::default(), SystemClock.now())
        .expect("rogue leaf");
    let theirs = rogue.tls_material(&impostor).expect("rogue material");
    let material = TlsMaterial {
        ca_roots: tls::load_certs(&cluster.certs.ca_cert_path(), "CA certificate").expect("our CA"),
        chain: theirs.chain,
        key: theirs.key,
        trust_domain: td,
    };
    let err = attempt_hello(cluster.addr, tls::client_config(&material).expect("config"))
        .await
        .expect_err("a certificate from another CA is refused");
    eprintln!("other CA: {err}");
    // Both CAs have the same subject (same trust domain), so webpki tries ours and the
    // signature check fails; with differing names it would be UnknownIssuer.
    assert!(
        err.contains("refused the TLS handshake")
            && (err.contains("BadSignature") || err.contains("UnknownIssuer")),
        "other CA: {err}"
    );

    // A valid client certificate opening an agent control stream: the refusal names the
    // identity, and the peer reads it whenever it looks (tried a few times, since a reply that
    // races the connection's close would lose the reason only now and then).
    let mallory = Identity::client("mallory").expect("identity");
    let config = tls::client_config(&cluster.material(&mallory)).expect("config");
    for _ in 0..REFUSAL_ATTEMPTS {
        let err = attempt_hello(cluster.addr, config.clone())
            .await
            .expect_err("a client certificate cannot act as an agent");
        assert!(
            err.contains("client/mallory may not open an agent control stream"),
            "client certificate as an agent: {err}"
        );
    }

    // None of them became an agent; a properly certified agent is welcomed.
    let client = cluster.client("observer").await;
    assert!(
        client.agents().await.rows.is_empty(),
        "refused peers are not in the fleet"
    );
    let agent = ScriptedAgent::connect(&cluster, "op-a", "box-1", ScriptOptions::default()).await;
    assert_eq!(
        agent.welcome.agent,
        "spiffe://proofrack.local/operator/op-a/agent/box-1"
    );
    let row = client.wait_agent_ready("op-a", "box-1").await;
    assert!(row.connected);
    assert_eq!(client.agents().await.rows.len(), 1);
    agent.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_agent_is_cut_off_without_a_restart() {
    let cluster = Cluster::start("revoked", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    // A client configuration that has completed a handshake holds a session ticket, as a
    // real agent's does when it reconnects; a resumed session must not bring a revoked
    // certificate back in.
    let box_1 = Identity::agent("op-a", "box-1").unwrap();
    let resuming = tls::client_config(&cluster.material(&box_1)).expect("config");
    attempt_hello(cluster.addr, resuming.clone())
        .await
        .expect("a first connection before the revocation");
    let mut agent =
        ScriptedAgent::connect(&cluster, "op-a", "box-1", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "box-1").await;

    cluster
        .certs
        .revoke(
            &RevokeTarget::Identity(agent.identity.clone()),
            "key stolen",
            SystemClock.now(),
        )
        .expect("revoke");
    let said = agent.refusal().await;
    eprintln!("{}: {said}", agent.identity);
    assert!(said.contains("certificate revoked"), "{said}");
    client.wait_agent_gone("op-a", "box-1").await;

    // Reconnecting with the revoked certificate is refused in the handshake.
    let config = tls::client_config(&cluster.material(&agent.identity)).expect("config");
    let err = attempt_hello(cluster.addr, config)
        .await
        .expect_err("revoked certificate refused");
    assert!(err.contains("Revoked"), "{err}");
    let err = attempt_hello(cluster.addr, resuming)
        .await
        .expect_err("revoked certificate refused on a resumed session too");
    assert!(err.to_lowercase().contains("revoked"), "{err}");
    assert!(
        client.agent_row("op-a", "box-1").await.is_none(),
        "the revoked agent is not back"
    );
    // Other agents are unaffected.
    let other = ScriptedAgent::connect(&cluster, "op-a", "box-2", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "box-2").await;
    agent.close().await;
    other.close().await;
    cluster.shutdown().await;
}

/// An agent whose operator cannot back a task is let in, told why in its Welcome, and shown
/// as such; an agent of a staked operator is told nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_of_an_unknown_or_stakeless_operator_is_told_so() {
    let cluster = Cluster::start(
        "standing",
        ClusterSpec {
            operators: vec![("op-a", 100), ("op-empty", 0)],
            ..ClusterSpec::default()
        },
    )
    .await;
    let client = cluster.client("alice").await;
    let staked = ScriptedAgent::connect(&cluster, "op-a", "box-1", ScriptOptions::default()).await;
    assert!(staked.welcome.notices.is_empty(), "{:?}", staked.welcome);
    let stranger =
        ScriptedAgent::connect(&cluster, "op-nobody", "box-1", ScriptOptions::default()).await;
    let notice = stranger.welcome.notices.join("\n");
    assert!(
        notice.contains("op-nobody is not in this coordinator's ledger")
            && notice.contains("never be offered a task"),
        "{notice}"
    );
    let stakeless =
        ScriptedAgent::connect(&cluster, "op-empty", "box-1", ScriptOptions::default()).await;
    let notice = stakeless.welcome.notices.join("\n");
    assert!(notice.contains("op-empty has no stake"), "{notice}");
    let row = client.wait_agent_ready("op-nobody", "box-1").await;
    assert_eq!(row.state(), "up, unknown operator");
    let row = client.wait_agent_ready("op-empty", "box-1").await;
    assert_eq!(row.state(), "up, operator has no stake");
    staked.close().await;
    stranger.close().await;
    stakeless.close().await;
    cluster.shutdown().await;
}
