//! Who is talking: a SPIFFE ID in the certificate's one URI SAN.
//!
//! Architecture invariant: the coordinator trusts nothing else about a peer. Common names,
//! DNS SANs and anything a peer says in a message are not identities; a certificate with no
//! URI SAN or with several is refused, so there is never a choice of which one counts.
//!
//! URI shapes (strict: lowercase `spiffe` scheme, no port, query, fragment, percent-escapes,
//! empty or extra segments; every name passes [`crate::ids::validate_name`]):
//! - `spiffe://TRUST_DOMAIN/coordinator/HOST`
//! - `spiffe://TRUST_DOMAIN/operator/OPERATOR/agent/NAME`
//! - `spiffe://TRUST_DOMAIN/client/NAME` (a requester: submits tasks, sees its own)
//! - `spiffe://TRUST_DOMAIN/operator/OPERATOR/admin/NAME` (an operator's admin: drains its
//!   agents, withdraws its stake)
//! - `spiffe://TRUST_DOMAIN/admin/NAME` (a deployment admin: circuits, sees everything)
//!
//! What each may do is the coordinator's authorization table (`core/src/tasks/authz.rs`);
//! an identity only names who is talking.

use crate::ids::{validate_name, AgentName, OperatorId};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::fmt;
use x509_parser::extensions::GeneralName;

const SCHEME_PREFIX: &str = "spiffe://";

/// The path shapes an identity may have, for error messages.
const PATH_SHAPES: &str = "its path must be coordinator/HOST, operator/OPERATOR/agent/NAME, \
                           client/NAME, operator/OPERATOR/admin/NAME or admin/NAME";

/// Longest trust domain; the SPIFFE standard's limit for the host part of an ID.
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// The trust domain used when `certs init` is not told another.
pub const DEFAULT_TRUST_DOMAIN: &str = "proofrack.local";

/// A SPIFFE trust domain: lowercase letters, digits, `.`, `-` and `_`, 1 to 255 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrustDomain(String);

impl TrustDomain {
    pub fn new(name: impl Into<String>) -> Result<Self, IdentityError> {
        let name = name.into();
        let bad = |why: &str| IdentityError::BadTrustDomain {
            trust_domain: name.clone(),
            why: why.into(),
        };
        if name.is_empty() || name.len() > MAX_TRUST_DOMAIN_LEN {
            return Err(bad(&format!(
                "it must be 1 to {MAX_TRUST_DOMAIN_LEN} characters"
            )));
        }
        if name.starts_with('.') || name.starts_with('-') || name.ends_with('.') {
            return Err(bad("it must not start with '.' or '-' or end with '.'"));
        }
        if let Some(c) = name.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
        }) {
            return Err(bad(&format!(
                "it has {c:?}; use lowercase letters, digits, '.', '-' and '_'"
            )));
        }
        Ok(TrustDomain(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trust domain's own SPIFFE ID (`spiffe://TD`), which `certs init` puts in the CA
    /// certificate's URI SAN so holders of `ca.pem` alone know the trust domain.
    pub fn to_uri(&self) -> String {
        format!("{SCHEME_PREFIX}{}", self.0)
    }

    /// Reads the trust domain from a CA certificate made by `certs init` (its one URI SAN is
    /// `spiffe://TD` with no path).
    pub fn from_ca_certificate_der(der: &[u8]) -> Result<TrustDomain, IdentityError> {
        let uri = single_uri_san(der)?;
        let rest = uri
            .strip_prefix(SCHEME_PREFIX)
            .ok_or_else(|| IdentityError::BadUri {
                uri: uri.clone(),
                why: "scheme is not spiffe://".into(),
            })?;
        if rest.contains('/') {
            return Err(IdentityError::BadUri {
                uri: uri.clone(),
                why: "a CA's SPIFFE ID names only the trust domain, with no path".into(),
            });
        }
        TrustDomain::new(rest)
    }
}

impl TryFrom<String> for TrustDomain {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, IdentityError> {
        TrustDomain::new(s)
    }
}
impl From<TrustDomain> for String {
    fn from(t: TrustDomain) -> String {
        t.0
    }
}
impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::str::FromStr for TrustDomain {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, IdentityError> {
        TrustDomain::new(s)
    }
}

/// A peer's identity within a trust domain. Serialises as its path form, validated on the
/// way in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Identity {
    /// The coordinator at `host` (also a DNS/IP SAN, so clients can verify the server name).
    Coordinator { host: String },
    /// An agent run by an operator.
    Agent {
        operator: OperatorId,
        name: AgentName,
    },
    /// A client that submits tasks and reads status.
    Client { name: String },
    /// An administrator of one operator: its agents and its stake.
    OperatorAdmin { operator: OperatorId, name: String },
    /// An administrator of the deployment (the coordinator's owner): circuits, every view.
    Admin { name: String },
}

/// Which kind of identity, for messages and file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IdentityKind {
    Coordinator,
    Agent,
    Client,
    // Appended: the kind travels in `ProtocolError::VersionMismatch`.
    OperatorAdmin,
    Admin,
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdentityKind::Coordinator => "coordinator",
            IdentityKind::Agent => "agent",
            IdentityKind::Client => "client",
            IdentityKind::OperatorAdmin => "operator admin",
            IdentityKind::Admin => "deployment admin",
        })
    }
}

impl Identity {
    pub fn coordinator(host: &str) -> Result<Identity, IdentityError> {
        validate_name("coordinator host", host).map_err(IdentityError::BadName)?;
        Ok(Identity::Coordinator {
            host: host.to_string(),
        })
    }
    pub fn agent(operator: &str, name: &str) -> Result<Identity, IdentityError> {
        Ok(Identity::Agent {
            operator: OperatorId::new(operator).map_err(IdentityError::BadName)?,
            name: AgentName::new(name).map_err(IdentityError::BadName)?,
        })
    }
    pub fn client(name: &str) -> Result<Identity, IdentityError> {
        validate_name("client", name).map_err(IdentityError::BadName)?;
        Ok(Identity::Client {
            name: name.to_string(),
        })
    }
    pub fn operator_admin(operator: &str, name: &str) -> Result<Identity, IdentityError> {
        validate_name("operator admin", name).map_err(IdentityError::BadName)?;
        Ok(Identity::OperatorAdmin {
            operator: OperatorId::new(operator).map_err(IdentityError::BadName)?,
            name: name.to_string(),
        })
    }
    pub fn admin(name: &str) -> Result<Identity, IdentityError> {
        validate_name("admin", name).map_err(IdentityError::BadName)?;
        Ok(Identity::Admin {
            name: name.to_string(),
        })
    }

    pub fn kind(&self) -> IdentityKind {
        match self {
            Identity::Coordinator { .. } => IdentityKind::Coordinator,
            Identity::Agent { .. } => IdentityKind::Agent,
            Identity::Client { .. } => IdentityKind::Client,
            Identity::OperatorAdmin { .. } => IdentityKind::OperatorAdmin,
            Identity::Admin { .. } => IdentityKind::Admin,
        }
    }

    /// The path part of the SPIFFE ID, without the leading `/`.
    pub fn spiffe_path(&self) -> String {
        match self {
            Identity::Coordinator { host } => format!("coordinator/{host}"),
            Identity::Agent { operator, name } => format!("operator/{operator}/agent/{name}"),
            Identity::Client { name } => format!("client/{name}"),
            Identity::OperatorAdmin { operator, name } => {
                format!("operator/{operator}/admin/{name}")
            }
            Identity::Admin { name } => format!("admin/{name}"),
        }
    }

    /// `spiffe://TD/PATH`.
    pub fn to_spiffe_uri(&self, trust_domain: &TrustDomain) -> String {
        format!("{SCHEME_PREFIX}{trust_domain}/{}", self.spiffe_path())
    }

    /// Parses a SPIFFE URI strictly and checks it belongs to `expected`.
    pub fn parse_spiffe_uri(uri: &str, expected: &TrustDomain) -> Result<Identity, IdentityError> {
        let bad = |why: &str| IdentityError::BadUri {
            uri: uri.to_string(),
            why: why.to_string(),
        };
        let rest = uri
            .strip_prefix(SCHEME_PREFIX)
            .ok_or_else(|| bad("it must start with spiffe://"))?;
        if let Some(c) = rest
            .chars()
            .find(|c| matches!(c, '?' | '#' | '%' | '@' | ':'))
        {
            return Err(bad(&format!(
                "it has {c:?}; ports, queries, fragments, user info and escapes are not allowed"
            )));
        }
        let (domain, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("it has no path after the trust domain"))?;
        let domain = TrustDomain::new(domain)?;
        if &domain != expected {
            return Err(IdentityError::WrongTrustDomain {
                uri: uri.to_string(),
                expected: expected.clone(),
            });
        }
        Identity::from_spiffe_path(path).map_err(|e| match e {
            IdentityError::BadName(_) => e,
            _ => bad(PATH_SHAPES),
        })
    }

    /// Parses the path form (`coordinator/HOST`, `operator/OP/agent/NAME`, `client/NAME`,
    /// `operator/OP/admin/NAME`, `admin/NAME`), which is also how an identity displays.
    pub fn from_spiffe_path(path: &str) -> Result<Identity, IdentityError> {
        match path.split('/').collect::<Vec<&str>>().as_slice() {
            ["coordinator", host] => Identity::coordinator(host),
            ["operator", op, "agent", agent] => Identity::agent(op, agent),
            ["client", client] => Identity::client(client),
            ["operator", op, "admin", name] => Identity::operator_admin(op, name),
            ["admin", name] => Identity::admin(name),
            _ => Err(IdentityError::BadPath(path.to_string())),
        }
    }

    /// Reads and checks the identity of a certificate (DER). The certificate's chain and
    /// validity are NOT checked here; rustls did that in the handshake.
    pub fn from_certificate_der(
        der: &[u8],
        expected_trust_domain: &TrustDomain,
    ) -> Result<PeerCertInfo, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
            IdentityError::BadCertificate(format!("cannot parse the X.509 certificate: {e}"))
        })?;
        let uri = single_uri_san_of(&cert)?;
        let identity = Identity::parse_spiffe_uri(&uri, expected_trust_domain)?;
        let not_after_secs = cert.validity().not_after.timestamp();
        Ok(PeerCertInfo {
            identity,
            serial_hex: serial_hex(cert.raw_serial()),
            not_after: UnixMillis((not_after_secs.max(0) as u64).saturating_mul(1000)),
        })
    }
}

/// `coordinator/HOST`, `operator/OP/agent/NAME`, `client/NAME`, `operator/OP/admin/NAME`,
/// `admin/NAME`: the SPIFFE path, short enough for logs and tables.
impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spiffe_path())
    }
}

impl std::str::FromStr for Identity {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Identity, IdentityError> {
        Identity::from_spiffe_path(s)
    }
}
impl TryFrom<String> for Identity {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Identity, IdentityError> {
        Identity::from_spiffe_path(&s)
    }
}
impl From<Identity> for String {
    fn from(i: Identity) -> String {
        i.spiffe_path()
    }
}

/// What the coordinator learns from a verified peer certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertInfo {
    pub identity: Identity,
    /// The serial as lowercase hex of its unsigned big-endian value, without leading zero
    /// bytes. The revocation list uses the same form.
    pub serial_hex: String,
    pub not_after: UnixMillis,
}

/// Canonical serial form: lowercase hex, leading zero bytes dropped (DER adds one when the
/// top bit is set). A zero serial is `"00"`.
pub fn serial_hex(raw: &[u8]) -> String {
    let first = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    if first == raw.len() {
        return "00".into();
    }
    hex::encode(&raw[first..])
}

/// Normalises a serial someone typed (`0A:1b`, `0x0a1b`, `0a1b`) to the canonical form.
pub fn normalize_serial_hex(s: &str) -> Result<String, IdentityError> {
    let t: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    let t = if t.len() % 2 == 1 { format!("0{t}") } else { t };
    let bytes =
        hex::decode(t.to_ascii_lowercase()).map_err(|_| IdentityError::BadSerial(s.to_string()))?;
    if bytes.is_empty() {
        return Err(IdentityError::BadSerial(s.to_string()));
    }
    Ok(serial_hex(&bytes))
}

fn single_uri_san(der: &[u8]) -> Result<String, IdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
        IdentityError::BadCertificate(format!("cannot parse the X.509 certificate: {e}"))
    })?;
    single_uri_san_of(&cert)
}

fn single_uri_san_of(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<String, IdentityError> {
    let san = cert.subject_alternative_name().map_err(|e| {
        IdentityError::BadCertificate(format!("invalid subject alternative name extension: {e}"))
    })?;
    let uris: Vec<&str> = san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match uris.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(IdentityError::NoUriSan),
        many => Err(IdentityError::SeveralUriSans {
            uris: many.iter().map(|s| s.to_string()).collect(),
        }),
    }
}

/// The identity of the peer of an established quinn connection.
#[cfg(feature = "net")]
pub fn identity_from_connection(
    conn: &quinn::Connection,
    expected_trust_domain: &TrustDomain,
) -> Result<PeerCertInfo, IdentityError> {
    let any = conn
        .peer_identity()
        .ok_or(IdentityError::NoPeerCertificate)?;
    let chain = any
        .downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
        .map_err(|_| IdentityError::NoPeerCertificate)?;
    let leaf = chain.first().ok_or(IdentityError::NoPeerCertificate)?;
    Identity::from_certificate_der(leaf.as_ref(), expected_trust_domain)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("trust domain {trust_domain:?} is invalid: {why}")]
    BadTrustDomain { trust_domain: String, why: String },
    #[error("SPIFFE ID {uri:?} is invalid: {why}")]
    BadUri { uri: String, why: String },
    #[error("SPIFFE ID {uri:?} is not in trust domain \"{expected}\"; issue the certificate from this deployment's CA")]
    WrongTrustDomain { uri: String, expected: TrustDomain },
    #[error("{0}")]
    BadName(String),
    #[error("identity {0:?} is not coordinator/HOST, operator/OPERATOR/agent/NAME, client/NAME, operator/OPERATOR/admin/NAME or admin/NAME")]
    BadPath(String),
    #[error("{0}")]
    BadCertificate(String),
    #[error("certificate has no URI SAN; proofrack identities are a SPIFFE ID in exactly one URI SAN (issue it with `proofrack certs issue`)")]
    NoUriSan,
    #[error("certificate has {} URI SANs ({}); proofrack accepts exactly one so the identity is unambiguous", uris.len(), uris.join(", "))]
    SeveralUriSans { uris: Vec<String> },
    #[error("the peer presented no certificate; mutual TLS requires one")]
    NoPeerCertificate,
    #[error("serial {0:?} is not hexadecimal (e.g. 3f9a01 or 3F:9A:01)")]
    BadSerial(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td() -> TrustDomain {
        TrustDomain::new("proofrack.local").unwrap()
    }

    #[test]
    fn spiffe_uris_round_trip() {
        for id in [
            Identity::coordinator("127.0.0.1").unwrap(),
            Identity::agent("op-a", "gpu-1").unwrap(),
            Identity::client("alice").unwrap(),
            Identity::operator_admin("op-a", "ops").unwrap(),
            Identity::admin("root").unwrap(),
        ] {
            let uri = id.to_spiffe_uri(&td());
            assert_eq!(
                Identity::parse_spiffe_uri(&uri, &td()).unwrap(),
                id,
                "{uri}"
            );
        }
        assert_eq!(
            Identity::agent("op-a", "gpu-1")
                .unwrap()
                .to_spiffe_uri(&td()),
            "spiffe://proofrack.local/operator/op-a/agent/gpu-1"
        );
        assert_eq!(
            Identity::operator_admin("op-a", "ops")
                .unwrap()
                .to_spiffe_uri(&td()),
            "spiffe://proofrack.local/operator/op-a/admin/ops"
        );
        assert_eq!(
            Identity::admin("root").unwrap().to_spiffe_uri(&td()),
            "spiffe://proofrack.local/admin/root"
        );
        assert_eq!(Identity::admin("root").unwrap().kind(), IdentityKind::Admin);
    }

    #[test]
    fn bad_spiffe_uris_are_refused_with_a_reason() {
        let cases = [
            ("https://proofrack.local/client/a", "spiffe://"),
            ("SPIFFE://proofrack.local/client/a", "spiffe://"),
            ("spiffe://proofrack.local", "no path"),
            ("spiffe://other.local/client/a", "not in trust domain"),
            ("spiffe://proofrack.local:443/client/a", "ports"),
            ("spiffe://proofrack.local/client/a?x=1", "queries"),
            ("spiffe://proofrack.local/client/a#f", "fragments"),
            ("spiffe://proofrack.local/client/a%2f", "escapes"),
            ("spiffe://proofrack.local/client/a/", "path must be"),
            ("spiffe://proofrack.local//client/a", "path must be"),
            ("spiffe://proofrack.local/client", "path must be"),
            ("spiffe://proofrack.local/operator/op/agent", "path must be"),
            (
                "spiffe://proofrack.local/operator/op/client/x",
                "path must be",
            ),
            ("spiffe://proofrack.local/admin", "path must be"),
            ("spiffe://proofrack.local/admin/root/x", "path must be"),
            ("spiffe://proofrack.local/admin/Root", "lowercase"),
            ("spiffe://proofrack.local/operator/op/admin", "path must be"),
            (
                "spiffe://proofrack.local/operator/op/admin/a/b",
                "path must be",
            ),
            ("spiffe://proofrack.local/operator/Op/admin/a", "lowercase"),
            (
                "spiffe://proofrack.local/operator/op/admin/-a",
                "must not start",
            ),
            (
                "spiffe://proofrack.local/operators/op/admin/a",
                "path must be",
            ),
            ("spiffe://proofrack.local/client/Alice", "lowercase"),
            (
                "spiffe://proofrack.local/operator/op/agent/..",
                "must not start",
            ),
            ("spiffe://Proofrack.local/client/a", "trust domain"),
        ];
        for (uri, needle) in cases {
            let err = Identity::parse_spiffe_uri(uri, &td())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{uri}: {err}");
        }
    }

    #[test]
    fn path_form_parses_and_serde_validates() {
        let id: Identity = "operator/op-a/agent/gpu-1".parse().unwrap();
        assert_eq!(id, Identity::agent("op-a", "gpu-1").unwrap());
        assert_eq!(id.to_string().parse::<Identity>().unwrap(), id);
        assert!("client/Bad".parse::<Identity>().is_err());
        assert_eq!(
            "admin/x".parse::<Identity>().unwrap(),
            Identity::admin("x").unwrap()
        );
        assert_eq!(
            "operator/op-a/admin/ops".parse::<Identity>().unwrap(),
            Identity::operator_admin("op-a", "ops").unwrap()
        );
        assert!("admin/".parse::<Identity>().is_err());
        assert!("operator/op-a/admins/ops".parse::<Identity>().is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"operator/op-a/agent/gpu-1\"");
        assert_eq!(serde_json::from_str::<Identity>(&json).unwrap(), id);
        assert!(serde_json::from_str::<Identity>("\"client/a/b\"").is_err());
    }

    #[test]
    fn trust_domains_are_validated() {
        assert!(TrustDomain::new("prod.example-1").is_ok());
        for bad in [
            "",
            "Upper",
            "a/b",
            ".lead",
            "trail.",
            "a:1",
            &"x".repeat(256),
        ] {
            assert!(TrustDomain::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serials_normalise() {
        assert_eq!(serial_hex(&[0x00, 0x8f, 0x01]), "8f01");
        assert_eq!(serial_hex(&[0, 0]), "00");
        assert_eq!(normalize_serial_hex("00:8F:01").unwrap(), "8f01");
        assert_eq!(normalize_serial_hex("0x8f01").unwrap(), "8f01");
        assert_eq!(normalize_serial_hex("f01").unwrap(), "0f01");
        assert!(normalize_serial_hex("zz").is_err());
        assert!(normalize_serial_hex("").is_err());
    }

    fn cert_with_sans(sans: Vec<rcgen::SanType>) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = sans;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x9a, 0x01]));
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn uri(s: &str) -> rcgen::SanType {
        rcgen::SanType::URI(s.try_into().unwrap())
    }

    #[test]
    fn certificate_identity_needs_exactly_one_uri_san() {
        let good = cert_with_sans(vec![
            rcgen::SanType::DnsName("localhost".try_into().unwrap()),
            uri("spiffe://proofrack.local/operator/op-a/agent/gpu-1"),
        ]);
        let info = Identity::from_certificate_der(&good, &td()).unwrap();
        assert_eq!(info.identity, Identity::agent("op-a", "gpu-1").unwrap());
        assert_eq!(info.serial_hex, "9a01");
        assert!(info.not_after.0 > 0);

        let none = cert_with_sans(vec![rcgen::SanType::DnsName(
            "localhost".try_into().unwrap(),
        )]);
        let err = Identity::from_certificate_der(&none, &td()).unwrap_err();
        assert_eq!(err, IdentityError::NoUriSan);
        assert!(err.to_string().contains("exactly one URI SAN"), "{err}");

        let two = cert_with_sans(vec![
            uri("spiffe://proofrack.local/client/a"),
            uri("spiffe://proofrack.local/client/b"),
        ]);
        let err = Identity::from_certificate_der(&two, &td()).unwrap_err();
        assert!(
            matches!(&err, IdentityError::SeveralUriSans { uris } if uris.len() == 2),
            "{err}"
        );
        assert!(err.to_string().contains("2 URI SANs"), "{err}");

        let foreign = cert_with_sans(vec![uri("spiffe://elsewhere.local/client/a")]);
        assert!(matches!(
            Identity::from_certificate_der(&foreign, &td()),
            Err(IdentityError::WrongTrustDomain { .. })
        ));
    }

    #[test]
    fn trust_domain_from_a_ca_certificate() {
        let ca = cert_with_sans(vec![uri("spiffe://proofrack.local")]);
        assert_eq!(TrustDomain::from_ca_certificate_der(&ca).unwrap(), td());
        let leaf = cert_with_sans(vec![uri("spiffe://proofrack.local/client/a")]);
        assert!(TrustDomain::from_ca_certificate_der(&leaf).is_err());
    }

    #[test]
    fn garbage_certificate_is_a_clear_error() {
        let err = Identity::from_certificate_der(b"not a cert", &td()).unwrap_err();
        assert!(matches!(err, IdentityError::BadCertificate(_)), "{err}");
    }
}
