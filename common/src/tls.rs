//! Mutual-TLS configuration for quinn: TLS 1.3 only, ALPN [`ALPN_PROOFRACK`], the `ring`
//! provider, certificates from one CA.
//!
//! The coordinator's verifier requires a client certificate that chains to the CA, has the
//! ClientAuth EKU, is not revoked, and carries exactly one URI SAN that is a SPIFFE ID in our
//! trust domain; all of that is checked in the handshake, so a refused peer never gets a
//! connection. Clients check the coordinator's chain, its DNS/IP SAN against the host they
//! dialled, and that its one URI SAN is a coordinator identity.
//!
//! A refused client still sees `connecting.await` succeed (TLS 1.3 finishes the client side
//! first); the refusal shows at its first stream operation. Never treat a completed connect
//! as authorised.

use crate::identity::{Identity, IdentityError, IdentityKind, PeerCertInfo, TrustDomain};
use crate::revocation::RevocationHandle;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The ALPN protocol both sides offer; QUIC requires one, and it names our wire protocol so
/// a stray HTTP/3 client fails the handshake instead of sending garbage.
pub const ALPN_PROOFRACK: &[u8] = b"proofrack/1";

/// A connection with no traffic for this long is dead. Agent liveness drives admission: an
/// agent that vanished must stop receiving offers within seconds, but a few lost keep-alives
/// (one every [`KEEP_ALIVE_INTERVAL`]) on a busy rack network must not drop it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(12);

/// Keep-alive ping interval: four pings fit in one idle timeout.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(3);

/// Streams a peer may have open at once: an agent's control stream plus key fetches and
/// deliveries for its in-flight tasks, or a client's concurrent requests and watches.
pub const MAX_CONCURRENT_BIDI_STREAMS: u32 = 128;

const _: () = assert!(KEEP_ALIVE_INTERVAL.as_millis() * 3 < IDLE_TIMEOUT.as_millis());

/// QUIC application close codes the coordinator ends a connection with; the reason text says
/// more. Agents act on the code, not the text.
pub mod close_code {
    /// A refused stream or malformed frame.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// The peer's certificate is revoked: it will not be let back in with it.
    pub const REVOKED: u32 = 2;
    /// The same agent (same process) opened a newer control stream.
    pub const REPLACED: u32 = 3;
    /// Another live process holds this agent identity's session; this one is held off.
    pub const DUPLICATE_AGENT: u32 = 4;
}

/// TLS alert `certificate_revoked` (RFC 8446 §6.2) as a QUIC transport error code (QUIC
/// carries alerts as 0x100 + alert).
const CRYPTO_ERROR_CERTIFICATE_REVOKED: u64 = 0x100 + 44;

/// Why the coordinator ended a connection, as an agent acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordinatorClose {
    /// This side's certificate is revoked (cut while connected, or refused in the handshake).
    Revoked,
    /// Another process with this identity holds the session.
    DuplicateAgent,
    /// Anything else (a restart, a protocol error, the network).
    Other,
}

/// How `conn` ended, if it did.
pub fn coordinator_close(conn: &quinn::Connection) -> Option<CoordinatorClose> {
    Some(match conn.close_reason()? {
        quinn::ConnectionError::ApplicationClosed(c) => {
            match u32::try_from(c.error_code.into_inner()) {
                Ok(close_code::REVOKED) => CoordinatorClose::Revoked,
                Ok(close_code::DUPLICATE_AGENT) => CoordinatorClose::DuplicateAgent,
                _ => CoordinatorClose::Other,
            }
        }
        quinn::ConnectionError::ConnectionClosed(c)
            if u64::from(c.error_code) == CRYPTO_ERROR_CERTIFICATE_REVOKED =>
        {
            CoordinatorClose::Revoked
        }
        _ => CoordinatorClose::Other,
    })
}

/// Bytes the coordinator lets one peer send ahead of what it has read, per stream and per
/// connection (quinn's defaults are 1.25 MB per stream and no connection limit, so a peer
/// that stops being read could park 128 × 1.25 MB). 2 MiB per connection still moves an
/// upload at 2 GB/s on a 1 ms rack network.
pub const SERVER_STREAM_RECEIVE_WINDOW: u32 = 1 << 20;
pub const SERVER_CONNECTION_RECEIVE_WINDOW: u32 = 2 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {}: {detail}", path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("{what} {} holds no {expected}", path.display())]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{0}")]
    Identity(#[from] IdentityError),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS configuration: {0}")]
    Verifier(String),
}

/// Everything one side needs: the CA to trust, its own chain and key, the trust domain.
#[derive(Debug)]
pub struct TlsMaterial {
    pub ca_roots: Vec<CertificateDer<'static>>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub trust_domain: TrustDomain,
}

impl Clone for TlsMaterial {
    fn clone(&self) -> Self {
        TlsMaterial {
            ca_roots: self.ca_roots.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            trust_domain: self.trust_domain.clone(),
        }
    }
}

impl TlsMaterial {
    /// Loads `ca.pem`, a certificate chain and its key. The trust domain is read from the CA
    /// certificate's URI SAN (`spiffe://TD`, written by `certs init`), and the own
    /// certificate must carry an identity in it.
    pub fn load(ca_pem: &Path, cert_pem: &Path, key_pem: &Path) -> Result<TlsMaterial, TlsError> {
        let ca_roots = load_certs(ca_pem, "CA certificate")?;
        let trust_domain =
            TrustDomain::from_ca_certificate_der(&ca_roots[0]).map_err(|e| TlsError::Pem {
                what: "CA certificate",
                path: ca_pem.to_path_buf(),
                detail: format!("{e}; was it made by `proofrack certs init`?"),
            })?;
        let m = TlsMaterial {
            ca_roots,
            chain: load_certs(cert_pem, "certificate")?,
            key: load_private_key(key_pem)?,
            trust_domain,
        };
        m.own_identity().map_err(|e| TlsError::Pem {
            what: "certificate",
            path: cert_pem.to_path_buf(),
            detail: e.to_string(),
        })?;
        Ok(m)
    }

    /// The identity in this side's own certificate.
    pub fn own_identity(&self) -> Result<PeerCertInfo, IdentityError> {
        Identity::from_certificate_der(&self.chain[0], &self.trust_domain)
    }

    fn root_store(&self) -> Result<Arc<RootCertStore>, TlsError> {
        let mut roots = RootCertStore::empty();
        for ca in &self.ca_roots {
            roots.add(ca.clone())?;
        }
        Ok(Arc::new(roots))
    }
}

/// Reads every certificate in a PEM file; at least one.
pub fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |detail: String| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        detail,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
            expected: "CERTIFICATE block",
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, SEC1 or PKCS#1) in a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            what: "private key",
            path: path.to_path_buf(),
            expected: "PRIVATE KEY block",
        },
        e => TlsError::Pem {
            what: "private key",
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// How soon a silent peer counts as gone. A connection uses the smaller of both sides' idle
/// timeouts, so an agent that shortens its own (a test of partitions does) shortens the
/// coordinator's view of it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    pub idle_timeout: Duration,
    pub keep_alive: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            idle_timeout: IDLE_TIMEOUT,
            keep_alive: KEEP_ALIVE_INTERVAL,
        }
    }
}

/// QUIC's idle timeout is a VarInt of milliseconds (below 2^62); anything longer than a day
/// is a configuration mistake, so it is clamped there rather than refused.
const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(86_400);

fn transport(max_bidi_streams: u32, liveness: Liveness) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    let idle = liveness.idle_timeout.min(MAX_IDLE_TIMEOUT);
    t.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(idle).expect("a day in milliseconds fits QUIC's VarInt"),
    ));
    t.keep_alive_interval(Some(liveness.keep_alive));
    t.max_concurrent_bidi_streams(max_bidi_streams.into());
    t.max_concurrent_uni_streams(0u32.into());
    Arc::new(t)
}

/// The coordinator's server configuration: mutual TLS, revocation checked in the handshake.
///
/// No TLS session resumption: a resumed TLS 1.3 session restores the client certificate
/// from the first handshake without running the client-certificate verifier, so a peer
/// revoked since then would be let back in on its next reconnect (an agent reuses its
/// endpoint and resumes). With no session storage and no tickets every connection is a full
/// handshake and meets the current revocation list; one ECDSA verification per reconnect is
/// nothing next to a proof, and a restarted coordinator has no sessions to resume anyway.
/// The server re-checks the serial once more before serving any stream (defence in depth).
pub fn server_config(
    material: &TlsMaterial,
    revocation: RevocationHandle,
) -> Result<quinn::ServerConfig, TlsError> {
    let provider = provider();
    let webpki =
        WebPkiClientVerifier::builder_with_provider(material.root_store()?, provider.clone())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let verifier = ProofrackClientVerifier {
        inner: webpki,
        trust_domain: material.trust_domain.clone(),
        revocation,
    };
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(material.chain.clone(), material.key.clone_key())?;
    tls.alpn_protocols = vec![ALPN_PROOFRACK.to_vec()];
    // No session resumption: a resumed handshake skips the client verifier, so a certificate
    // revoked after its first connection would get back in on its ticket. A full handshake
    // per connection costs a rack of long-lived connections nothing.
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    tls.send_tls13_tickets = 0;
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let mut transport = transport(MAX_CONCURRENT_BIDI_STREAMS, Liveness::default());
    Arc::get_mut(&mut transport)
        .expect("a fresh transport config")
        .stream_receive_window(SERVER_STREAM_RECEIVE_WINDOW.into())
        .receive_window(SERVER_CONNECTION_RECEIVE_WINDOW.into())
        // The protocol has no datagrams; unread ones would otherwise be buffered (1.25 MB).
        .datagram_receive_buffer_size(None);
    config.transport_config(transport);
    Ok(config)
}

/// Domain separation for the stateless-reset key derived from the coordinator's TLS key.
const RESET_KEY_LABEL: &[u8] = b"proofrack/1 QUIC stateless reset key";

/// The coordinator's endpoint configuration. Its stateless-reset key is derived from its TLS
/// private key, so a coordinator restarted after a crash answers the agents' packets for
/// connections it no longer knows with resets they accept: the rack notices the restart
/// within one keep-alive instead of waiting out [`IDLE_TIMEOUT`], and only the holder of the
/// coordinator's key can reset its connections.
pub fn server_endpoint_config(material: &TlsMaterial) -> quinn::EndpointConfig {
    let label = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, RESET_KEY_LABEL);
    let derived = ring::hmac::sign(&label, material.key.secret_der());
    let mut config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        derived.as_ref(),
    )));
    config.cid_generator(|| Box::new(RestartableCids));
    config
}

/// Length of the coordinator's connection IDs: quinn's default, enough to be unguessable.
const CID_BYTES: usize = 8;

/// Random connection IDs that a restarted coordinator still answers with a stateless reset.
/// quinn's default generator signs its IDs with a key drawn at start, so after a restart it
/// drops the rack's packets as foreign instead of resetting them, and every agent waits out
/// its idle timeout. Resets stay rate-limited by quinn and smaller than the packet that
/// caused them, so answering any unknown ID amplifies nothing.
struct RestartableCids;

impl quinn::ConnectionIdGenerator for RestartableCids {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; CID_BYTES];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .expect("the operating system's random source");
        quinn::ConnectionId::new(&bytes)
    }

    fn cid_len(&self) -> usize {
        CID_BYTES
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// An agent's or client's configuration. Dial with the coordinator's host as server name.
pub fn client_config(material: &TlsMaterial) -> Result<quinn::ClientConfig, TlsError> {
    client_config_with(material, Liveness::default())
}

/// [`client_config`] with its own liveness limits.
pub fn client_config_with(
    material: &TlsMaterial,
    liveness: Liveness,
) -> Result<quinn::ClientConfig, TlsError> {
    quic_client_config(client_tls_config(material)?, liveness)
}

/// The rustls side of [`client_config`]: the coordinator's certificate checked, this side's
/// certificate presented, TLS 1.3 and our ALPN. (Tests use it to watch session tickets.)
pub fn client_tls_config(material: &TlsMaterial) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let webpki =
        WebPkiServerVerifier::builder_with_provider(material.root_store()?, provider.clone())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let verifier = CoordinatorVerifier {
        inner: webpki,
        trust_domain: material.trust_domain.clone(),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(material.chain.clone(), material.key.clone_key())?;
    tls.alpn_protocols = vec![ALPN_PROOFRACK.to_vec()];
    Ok(tls)
}

/// A quinn client configuration around a rustls one from [`client_tls_config`].
pub fn quic_client_config(
    tls: rustls::ClientConfig,
    liveness: Liveness,
) -> Result<quinn::ClientConfig, TlsError> {
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    // The coordinator never opens streams towards agents or clients.
    config.transport_config(transport(0, liveness));
    Ok(config)
}

/// Why the peer closed `conn`, in words; `None` while it is open. A client whose certificate
/// the coordinator refused sees its connect succeed and its first stream operation fail with
/// "connection lost": call this then to log the TLS alert (e.g. "Revoked").
pub fn close_reason_text(conn: &quinn::Connection) -> Option<String> {
    Some(match conn.close_reason()? {
        quinn::ConnectionError::ConnectionClosed(c) => {
            let text = String::from_utf8_lossy(&c.reason).into_owned();
            // QUIC carries TLS alerts as transport codes 0x100..=0x1ff.
            if (0x100..=0x1ff).contains(&u64::from(c.error_code)) {
                format!(
                    "the peer refused the TLS handshake: {text}; check this side's certificate \
                     (issued by the deployment's CA, not expired, not revoked: `proofrack certs list`)"
                )
            } else {
                format!("the peer closed the connection: {text} ({})", c.error_code)
            }
        }
        other => other.to_string(),
    })
}

fn refuse(e: impl std::fmt::Display) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        Refusal(e.to_string()),
    ))))
}

/// rustls prints `OtherError` with `Debug`; this makes that the readable message, which
/// reaches the server's log and the refused peer's close reason.
struct Refusal(String);
impl std::fmt::Debug for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Refusal {}

#[derive(Debug, thiserror::Error)]
#[error("the coordinator's certificate names {identity}, not a coordinator")]
struct NotCoordinator {
    identity: Identity,
}

/// WebPKI client verification plus our identity and revocation rules.
#[derive(Debug)]
struct ProofrackClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    trust_domain: TrustDomain,
    revocation: RevocationHandle,
}

impl ClientCertVerifier for ProofrackClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let info =
            Identity::from_certificate_der(end_entity, &self.trust_domain).map_err(refuse)?;
        if info.identity.kind() == IdentityKind::Coordinator {
            // Coordinator certificates have only the ServerAuth EKU, so webpki already refused
            // them; this keeps the rule explicit should the EKU ever be widened.
            return Err(refuse(NotCoordinator {
                identity: info.identity,
            }));
        }
        if self.revocation.is_revoked(&info.serial_hex) {
            self.revocation.count_refused_handshake();
            tracing::warn!(serial = %info.serial_hex, identity = %info.identity, "refused revoked certificate");
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(verified)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// WebPKI server verification plus: the server's identity is a coordinator in our domain.
#[derive(Debug)]
struct CoordinatorVerifier {
    inner: Arc<WebPkiServerVerifier>,
    trust_domain: TrustDomain,
}

impl ServerCertVerifier for CoordinatorVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let info =
            Identity::from_certificate_der(end_entity, &self.trust_domain).map_err(refuse)?;
        if info.identity.kind() != IdentityKind::Coordinator {
            return Err(refuse(NotCoordinator {
                identity: info.identity,
            }));
        }
        Ok(verified)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_pem_files_name_the_file() {
        let dir = std::env::temp_dir().join(format!("proofrack-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = load_certs(&dir.join("nope.pem"), "CA certificate")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CA certificate") && err.contains("nope.pem"),
            "{err}"
        );
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "hello\n").unwrap();
        let err = load_certs(&empty, "certificate").unwrap_err().to_string();
        assert!(
            err.contains("empty.pem") && err.contains("no CERTIFICATE"),
            "{err}"
        );
        let err = load_private_key(&empty).unwrap_err().to_string();
        assert!(
            err.contains("empty.pem") && err.contains("PRIVATE KEY"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
