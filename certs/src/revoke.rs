//! Revocation (adds serials to `revoked.json`) and listing what the directory holds.

use crate::layout::{CertsDir, CA_CERT_FILE};
use crate::CertsError;
use proofrack_common::identity::{normalize_serial_hex, Identity};
use proofrack_common::revocation::{RevocationHandle, RevocationList, RevokedEntry};
use proofrack_common::UnixMillis;

/// What to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeTarget {
    /// The certificate currently stored for this identity.
    Identity(Identity),
    /// Any serial (e.g. of a certificate already replaced by `renew`).
    Serial(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokeOutcome {
    pub serial_hex: String,
    pub identity: Option<Identity>,
    /// False if the serial was already in the list (nothing changed).
    pub newly_revoked: bool,
}

/// One certificate found in the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertListing {
    pub file: String,
    pub identity: Identity,
    pub serial_hex: String,
    pub not_after: UnixMillis,
    pub revoked: bool,
}

impl CertsDir {
    /// Adds a serial to `revoked.json` (atomically). A running coordinator picks it up at its
    /// next `reload_if_changed` and refuses new handshakes with that certificate.
    pub fn revoke(
        &self,
        target: &RevokeTarget,
        reason: &str,
        now: UnixMillis,
    ) -> Result<RevokeOutcome, CertsError> {
        let td = self.trust_domain()?;
        let (serial_hex, identity) = match target {
            RevokeTarget::Identity(id) => {
                let info = self.read_cert(id)?;
                (info.serial_hex, Some(info.identity))
            }
            RevokeTarget::Serial(s) => (
                normalize_serial_hex(s).map_err(|e| CertsError::Usage(e.to_string()))?,
                None,
            ),
        };
        let path = self.revoked_path();
        let mut list = RevocationList::load(&path)?;
        let newly_revoked = list
            .revoke(RevokedEntry {
                serial_hex: serial_hex.clone(),
                identity: identity.as_ref().map(|i| i.to_spiffe_uri(&td)),
                revoked_at: now,
                reason: reason.to_string(),
            })
            .map_err(|e| CertsError::Usage(e.to_string()))?;
        if newly_revoked {
            list.save(&path)?;
            tracing::info!(serial = %serial_hex, identity = ?identity, "certificate revoked");
        }
        Ok(RevokeOutcome {
            serial_hex,
            identity,
            newly_revoked,
        })
    }

    /// The revocation list as it is on disk now (empty when there is no file yet).
    pub fn revocation_list(&self) -> Result<RevocationList, CertsError> {
        Ok(RevocationList::load(&self.revoked_path())?)
    }

    /// The revocation list as a reloadable handle for the coordinator's TLS config.
    pub fn revocation_handle(&self) -> Result<RevocationHandle, CertsError> {
        Ok(RevocationHandle::load(self.revoked_path())?)
    }

    /// Every leaf certificate in the directory, sorted by file name.
    pub fn list(&self) -> Result<Vec<CertListing>, CertsError> {
        let revoked = RevocationList::load(&self.revoked_path())?;
        let io = |e: std::io::Error| CertsError::Io {
            path: self.root().to_path_buf(),
            source: e,
            hint: None,
        };
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.root()).map_err(io)? {
            let entry = entry.map_err(io)?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if !file.ends_with(".pem") || file == CA_CERT_FILE || file.starts_with('.') {
                continue;
            }
            let pem = crate::files::read_to_string(&entry.path())?;
            let info = self.parse_cert_pem(&entry.path(), &pem)?;
            out.push(CertListing {
                revoked: revoked.is_revoked(&info.serial_hex),
                file,
                identity: info.identity,
                serial_hex: info.serial_hex,
                not_after: info.not_after,
            });
        }
        out.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(out)
    }
}
