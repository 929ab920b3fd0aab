//! proofrack's PKI: one CA per deployment, and leaf certificates whose only identity is a
//! SPIFFE ID in their single URI SAN (see `proofrack_common::identity`).
//!
//! The library is the primary interface; [`cli`] is the `proofrack certs` command on top,
//! and [`LocalPki`] sets a whole PKI up on one machine in one call (the devnet, the
//! benchmarks' load generators and the end-to-end tests).
//!
//! # Layout of a certs directory
//! | file | what | mode |
//! |---|---|---|
//! | `ca.pem` | CA certificate; its URI SAN is `spiffe://TRUST_DOMAIN` | 0644 |
//! | `ca.key` | CA private key | 0600 |
//! | `trust-domain` | the trust domain, one line | 0644 |
//! | `revoked.json` | revoked serials (`proofrack_common::revocation`) | 0644 |
//! | `coordinator-HOST.pem` / `.key` | coordinator at HOST (also a DNS/IP SAN), EKU ServerAuth | 0644 / 0600 |
//! | `agent-NAME@OPERATOR.pem` / `.key` | agent NAME of OPERATOR, EKU ClientAuth | 0644 / 0600 |
//! | `client-NAME.pem` / `.key` | client NAME (a requester), EKU ClientAuth | 0644 / 0600 |
//! | `operator-admin-NAME@OPERATOR.pem` / `.key` | admin NAME of OPERATOR, EKU ClientAuth | 0644 / 0600 |
//! | `admin-NAME.pem` / `.key` | deployment admin NAME, EKU ClientAuth | 0644 / 0600 |
//!
//! A box needs `ca.pem` and its own pair only; `ca.key` stays on the machine that issues.
//!
//! # Modules
//! - `layout`: the paths above ([`CertsDir`]). `files`: 0600 keys, no overwrite without
//!   `--force`, atomic replacement.
//! - `ca`: `init` and loading the CA. `issue`: issue and renew leaves. `revoke`: revoke,
//!   list, the reloadable revocation handle.
//! - `bootstrap`: [`LocalPki`], a CA, the coordinator's leaf and any other leaf on demand.
//! - [`cli`]: `proofrack certs init | issue | renew | revoke | list`.
//!
//! Keys are ECDSA P-256 (rcgen with `ring`, the one crypto provider of the workspace). A
//! certificate's serial is the first 20 bytes of the SHA-256 of its public key (rcgen's
//! default), so every fresh key, including each renewal's, gets a fresh serial.

mod bootstrap;
mod ca;
pub mod cli;
mod files;
mod issue;
mod layout;
mod revoke;

pub use bootstrap::{LocalPki, LocalPkiOptions};
pub use ca::{CaInfo, InitOptions};
pub use issue::{IssueOptions, IssuedCert};
pub use layout::{file_stem, CertsDir, REVOKED_FILE};
pub use revoke::{CertListing, RevokeOutcome, RevokeTarget};

use proofrack_common::identity::{Identity, DEFAULT_TRUST_DOMAIN};
use proofrack_common::revocation::RevocationError;
use proofrack_common::tls::{TlsError, TlsMaterial};
use proofrack_common::UnixMillis;
use std::path::PathBuf;
use std::time::Duration;

/// Leaves live 30 days: a stolen agent or client key is useful for at most a month even if
/// nobody revokes it, and `certs renew` is one command (or a cron line).
pub const DEFAULT_LEAF_DAYS: u32 = 30;
/// The CA lives a year: long enough not to disturb a rack, short enough that rotating it is
/// a practised yearly routine and a leaked `ca.key` eventually dies.
pub const DEFAULT_CA_DAYS: u32 = 365;
/// Longest leaf `--days` accepted: the public web's 397-day ceiling.
pub const MAX_LEAF_DAYS: u32 = 397;
/// Longest CA `--days` accepted: ten years.
pub const MAX_CA_DAYS: u32 = 3650;
/// `not_before` is set this far in the past so a peer whose clock is a little behind the
/// issuer's accepts a certificate issued just now.
pub const NOT_BEFORE_SKEW: Duration = Duration::from_secs(5 * 60);

/// Default trust domain (re-exported from common).
pub const TRUST_DOMAIN_DEFAULT: &str = DEFAULT_TRUST_DOMAIN;

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("{} already exists; pass --force to overwrite it", path.display())]
    Exists { path: PathBuf },
    #[error("{}: {source}{}", path.display(), hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    Io {
        path: PathBuf,
        source: std::io::Error,
        hint: Option<String>,
    },
    #[error("{} is not usable: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
    #[error("cannot {what}: {detail}")]
    Rcgen { what: &'static str, detail: String },
    #[error("--days {days} for a {what} is out of range; use 1 to {max}")]
    BadDays { what: String, days: u32, max: u32 },
    #[error("a {days}-day certificate would outlive the CA (expires at {ca_not_after}); use a smaller --days or a new CA")]
    OutlivesCa { days: u32, ca_not_after: UnixMillis },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Revocation(#[from] RevocationError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl CertsError {
    pub(crate) fn rcgen(what: &'static str) -> impl Fn(rcgen::Error) -> CertsError {
        move |e| CertsError::Rcgen {
            what,
            detail: e.to_string(),
        }
    }

    pub(crate) fn with_hint(self, h: &str) -> CertsError {
        match self {
            CertsError::Io { path, source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                CertsError::Io {
                    path,
                    source,
                    hint: Some(h.to_string()),
                }
            }
            other => other,
        }
    }
}

impl CertsDir {
    /// `ca.pem` plus the certificate and key of `identity`, ready for
    /// `proofrack_common::tls::{server_config, client_config}`.
    pub fn tls_material(&self, identity: &Identity) -> Result<TlsMaterial, CertsError> {
        Ok(TlsMaterial::load(
            &self.ca_cert_path(),
            &self.cert_path(identity),
            &self.key_path(identity),
        )?)
    }
}

pub(crate) fn to_offset(t: UnixMillis) -> Result<time::OffsetDateTime, CertsError> {
    time::OffsetDateTime::from_unix_timestamp_nanos(t.0 as i128 * 1_000_000)
        .map_err(|e| CertsError::Usage(format!("time {t} cannot be put in a certificate: {e}")))
}

/// `2026-12-01 14:03 UTC`, for certificate lifetimes in messages and listings (minutes are
/// enough for a lifetime of days); the one time formatter, `common::timefmt`, underneath.
pub fn format_utc(t: UnixMillis) -> String {
    let p = proofrack_common::timefmt::utc_parts(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        p.year, p.month, p.day, p.hour, p.minute
    )
}

#[cfg(test)]
mod tests;
