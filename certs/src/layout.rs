//! Where things live in a certs directory (see the crate doc for the table).

use proofrack_common::identity::Identity;
use std::path::{Path, PathBuf};

pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";
pub const TRUST_DOMAIN_FILE: &str = "trust-domain";
pub const REVOKED_FILE: &str = "revoked.json";

/// A certs directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertsDir {
    root: PathBuf,
}

impl CertsDir {
    pub fn new(root: impl Into<PathBuf>) -> CertsDir {
        CertsDir { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn ca_cert_path(&self) -> PathBuf {
        self.root.join(CA_CERT_FILE)
    }
    pub fn ca_key_path(&self) -> PathBuf {
        self.root.join(CA_KEY_FILE)
    }
    pub fn trust_domain_path(&self) -> PathBuf {
        self.root.join(TRUST_DOMAIN_FILE)
    }
    pub fn revoked_path(&self) -> PathBuf {
        self.root.join(REVOKED_FILE)
    }
    /// `coordinator-HOST.pem`, `agent-NAME@OPERATOR.pem`, `client-NAME.pem`,
    /// `operator-admin-NAME@OPERATOR.pem`, `admin-NAME.pem`.
    pub fn cert_path(&self, identity: &Identity) -> PathBuf {
        self.root.join(format!("{}.pem", file_stem(identity)))
    }
    /// The key beside the certificate: same stem, `.key`.
    pub fn key_path(&self, identity: &Identity) -> PathBuf {
        self.root.join(format!("{}.key", file_stem(identity)))
    }
}

/// The file stem for an identity. Names are `[a-z0-9._-]` (validated in common), so `@`
/// separates an agent's name from its operator unambiguously.
pub fn file_stem(identity: &Identity) -> String {
    match identity {
        Identity::Coordinator { host } => format!("coordinator-{host}"),
        Identity::Agent { operator, name } => format!("agent-{name}@{operator}"),
        Identity::Client { name } => format!("client-{name}"),
        Identity::OperatorAdmin { operator, name } => format!("operator-admin-{name}@{operator}"),
        Identity::Admin { name } => format!("admin-{name}"),
    }
}
