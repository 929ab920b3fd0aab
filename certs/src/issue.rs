//! Leaf certificates: issue and renew.

use crate::ca::check_days;
use crate::files::{check_absent, read_to_string, write_file, PRIVATE_KEY_MODE, PUBLIC_FILE_MODE};
use crate::layout::CertsDir;
use crate::{to_offset, CertsError, DEFAULT_LEAF_DAYS, MAX_LEAF_DAYS, NOT_BEFORE_SKEW};
use proofrack_common::identity::{Identity, PeerCertInfo};
use proofrack_common::UnixMillis;
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What `certs issue` does.
#[derive(Clone, Copy, Debug)]
pub struct IssueOptions {
    /// Leaf lifetime, default [`DEFAULT_LEAF_DAYS`].
    pub days: u32,
    /// Replace existing certificate and key files.
    pub force: bool,
}

impl Default for IssueOptions {
    fn default() -> Self {
        IssueOptions {
            days: DEFAULT_LEAF_DAYS,
            force: false,
        }
    }
}

/// A certificate written to the certs directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCert {
    pub identity: Identity,
    /// The SPIFFE ID in the certificate's URI SAN.
    pub spiffe_id: String,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub serial_hex: String,
    pub not_after: UnixMillis,
}

impl CertsDir {
    /// Issues a certificate and a fresh key for `identity`.
    pub fn issue(
        &self,
        identity: &Identity,
        opts: &IssueOptions,
        now: UnixMillis,
    ) -> Result<IssuedCert, CertsError> {
        let (cert_path, key_path) = (self.cert_path(identity), self.key_path(identity));
        check_absent(&[&cert_path, &key_path], opts.force)?;
        self.write_leaf(identity, opts.days, now, opts.force)
    }

    /// Re-issues the certificate of `identity` with a fresh key and serial, replacing both
    /// files. The old certificate keeps working until it expires or is revoked; revoke it
    /// if its key may have leaked.
    pub fn renew(
        &self,
        identity: &Identity,
        days: u32,
        now: UnixMillis,
    ) -> Result<IssuedCert, CertsError> {
        let current = self.read_cert(identity)?;
        if &current.identity != identity {
            return Err(CertsError::Invalid {
                path: self.cert_path(identity),
                detail: format!(
                    "it carries {} instead of {identity}; reissue it with --force",
                    current.identity
                ),
            });
        }
        self.write_leaf(identity, days, now, true)
    }

    /// Reads the identity, serial and expiry of the certificate stored for `identity`.
    pub fn read_cert(&self, identity: &Identity) -> Result<PeerCertInfo, CertsError> {
        let path = self.cert_path(identity);
        let pem = read_to_string(&path).map_err(|e| {
            e.with_hint(&format!(
                "issue it first with `proofrack certs issue {}`",
                identity.kind()
            ))
        })?;
        self.parse_cert_pem(&path, &pem)
    }

    pub(crate) fn parse_cert_pem(
        &self,
        path: &std::path::Path,
        pem: &str,
    ) -> Result<PeerCertInfo, CertsError> {
        let invalid = |detail: String| CertsError::Invalid {
            path: path.to_path_buf(),
            detail,
        };
        let der: rustls_pki_types::CertificateDer<'static> =
            rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
                .map_err(|e| invalid(e.to_string()))?;
        let td = self.trust_domain()?;
        Identity::from_certificate_der(&der, &td).map_err(|e| invalid(e.to_string()))
    }

    fn write_leaf(
        &self,
        identity: &Identity,
        days: u32,
        now: UnixMillis,
        replace: bool,
    ) -> Result<IssuedCert, CertsError> {
        check_days("certificate", days, MAX_LEAF_DAYS)?;
        let td = self.trust_domain()?;
        let (issuer, ca_not_after) = self.load_issuer()?;
        let not_after = now.saturating_add(Duration::from_secs(days as u64 * 86_400));
        if not_after > ca_not_after {
            return Err(CertsError::OutlivesCa { days, ca_not_after });
        }
        let spiffe_id = identity.to_spiffe_uri(&td);
        let params = leaf_params(identity, &spiffe_id, now, not_after)?;
        let key = KeyPair::generate().map_err(CertsError::rcgen("generate a key"))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(CertsError::rcgen("sign the certificate"))?;

        // Check what we made the way the coordinator will read it.
        let (cert_path, key_path) = (self.cert_path(identity), self.key_path(identity));
        let info =
            Identity::from_certificate_der(cert.der(), &td).map_err(|e| CertsError::Invalid {
                path: cert_path.clone(),
                detail: e.to_string(),
            })?;
        assert_eq!(
            &info.identity, identity,
            "issued certificate must carry the requested identity"
        );

        write_file(
            &key_path,
            key.serialize_pem().as_bytes(),
            PRIVATE_KEY_MODE,
            replace,
        )?;
        write_file(&cert_path, cert.pem().as_bytes(), PUBLIC_FILE_MODE, replace)?;
        tracing::info!(identity = %identity, serial = %info.serial_hex, path = %cert_path.display(), "certificate issued");
        Ok(IssuedCert {
            identity: identity.clone(),
            spiffe_id,
            cert_path,
            key_path,
            serial_hex: info.serial_hex,
            not_after: info.not_after,
        })
    }
}

fn leaf_params(
    identity: &Identity,
    spiffe_id: &str,
    now: UnixMillis,
    not_after: UnixMillis,
) -> Result<CertificateParams, CertsError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    // For people reading the certificate only; the URI SAN is the identity.
    p.distinguished_name
        .push(DnType::CommonName, identity.to_string());
    p.distinguished_name
        .push(DnType::OrganizationName, "proofrack");
    let uri = spiffe_id
        .try_into()
        .map_err(CertsError::rcgen("encode the SPIFFE ID"))?;
    p.subject_alt_names = vec![SanType::URI(uri)];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    match identity {
        Identity::Coordinator { host } => {
            // Clients verify the server name against this; the URI SAN stays the identity.
            let san = match host.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    host.as_str()
                        .try_into()
                        .map_err(CertsError::rcgen("encode the host"))?,
                ),
            };
            p.subject_alt_names.push(san);
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
        Identity::Agent { .. }
        | Identity::Client { .. }
        | Identity::OperatorAdmin { .. }
        | Identity::Admin { .. } => {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
    }
    p.not_before = to_offset(UnixMillis(
        now.0.saturating_sub(NOT_BEFORE_SKEW.as_millis() as u64),
    ))?;
    p.not_after = to_offset(not_after)?;
    Ok(p)
}
