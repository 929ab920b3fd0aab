//! The CA: `init` makes it, `load_issuer` reads it back to sign leaves.

use crate::files::{
    check_absent, ensure_dir, read_to_string, write_file, PRIVATE_KEY_MODE, PUBLIC_FILE_MODE,
};
use crate::layout::CertsDir;
use crate::{to_offset, CertsError, DEFAULT_CA_DAYS, MAX_CA_DAYS, NOT_BEFORE_SKEW};
use proofrack_common::identity::{serial_hex, TrustDomain};
use proofrack_common::revocation::RevocationList;
use proofrack_common::UnixMillis;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::time::Duration;

/// What `certs init` does.
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub trust_domain: TrustDomain,
    /// CA lifetime, default [`DEFAULT_CA_DAYS`].
    pub days: u32,
    /// Replace an existing CA (every certificate it issued stops being trusted).
    pub force: bool,
}

impl InitOptions {
    pub fn new(trust_domain: TrustDomain) -> InitOptions {
        InitOptions {
            trust_domain,
            days: DEFAULT_CA_DAYS,
            force: false,
        }
    }
}

/// The CA `init` made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaInfo {
    pub trust_domain: TrustDomain,
    pub serial_hex: String,
    pub not_after: UnixMillis,
}

impl CertsDir {
    /// Makes a CA: `ca.pem`, `ca.key` (0600), `trust-domain`, an empty `revoked.json`.
    pub fn init(&self, opts: &InitOptions, now: UnixMillis) -> Result<CaInfo, CertsError> {
        check_days("CA", opts.days, MAX_CA_DAYS)?;
        ensure_dir(self.root())?;
        let (cert_path, key_path) = (self.ca_cert_path(), self.ca_key_path());
        let (td_path, revoked_path) = (self.trust_domain_path(), self.revoked_path());
        check_absent(
            &[&cert_path, &key_path, &td_path, &revoked_path],
            opts.force,
        )?;

        let key = KeyPair::generate().map_err(CertsError::rcgen("generate the CA key"))?;
        let params = ca_params(&opts.trust_domain, opts.days, now)?;
        let cert = params
            .self_signed(&key)
            .map_err(CertsError::rcgen("sign the CA certificate"))?;

        write_file(
            &key_path,
            key.serialize_pem().as_bytes(),
            PRIVATE_KEY_MODE,
            opts.force,
        )?;
        write_file(
            &cert_path,
            cert.pem().as_bytes(),
            PUBLIC_FILE_MODE,
            opts.force,
        )?;
        write_file(
            &td_path,
            format!("{}\n", opts.trust_domain).as_bytes(),
            PUBLIC_FILE_MODE,
            opts.force,
        )?;
        // A new CA starts with nothing revoked; serials of a replaced CA no longer matter.
        write_file(
            &revoked_path,
            RevocationList::new().to_json().as_bytes(),
            PUBLIC_FILE_MODE,
            opts.force,
        )?;

        let (_, parsed) =
            x509_parser::parse_x509_certificate(cert.der()).map_err(|e| CertsError::Invalid {
                path: cert_path.clone(),
                detail: e.to_string(),
            })?;
        let info = CaInfo {
            trust_domain: opts.trust_domain.clone(),
            serial_hex: serial_hex(parsed.raw_serial()),
            not_after: UnixMillis(parsed.validity().not_after.timestamp().max(0) as u64 * 1000),
        };
        tracing::info!(dir = %self.root().display(), trust_domain = %info.trust_domain, "CA created");
        Ok(info)
    }

    /// The trust domain stored by `init`.
    pub fn trust_domain(&self) -> Result<TrustDomain, CertsError> {
        let path = self.trust_domain_path();
        let text =
            read_to_string(&path).map_err(|e| e.with_hint("run `proofrack certs init` first"))?;
        TrustDomain::new(text.trim()).map_err(|e| CertsError::Invalid {
            path,
            detail: e.to_string(),
        })
    }

    /// The CA as an issuer, and its expiry (leaves must not outlive it).
    pub(crate) fn load_issuer(&self) -> Result<(Issuer<'static, KeyPair>, UnixMillis), CertsError> {
        let (cert_path, key_path) = (self.ca_cert_path(), self.ca_key_path());
        let hint = "run `proofrack certs init` first, or pass --dir";
        let cert_pem = read_to_string(&cert_path).map_err(|e| e.with_hint(hint))?;
        let key_pem = read_to_string(&key_path).map_err(|e| e.with_hint(hint))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| CertsError::Invalid {
            path: key_path.clone(),
            detail: e.to_string(),
        })?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| CertsError::Invalid {
            path: cert_path.clone(),
            detail: e.to_string(),
        })?;
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map(|d: rustls_pki_types::CertificateDer<'static>| d)
            .map_err(|e| CertsError::Invalid {
                path: cert_path.clone(),
                detail: e.to_string(),
            })?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| CertsError::Invalid {
                path: cert_path.clone(),
                detail: e.to_string(),
            })?;
        let not_after = UnixMillis(parsed.validity().not_after.timestamp().max(0) as u64 * 1000);
        Ok((issuer, not_after))
    }
}

fn ca_params(
    td: &TrustDomain,
    days: u32,
    now: UnixMillis,
) -> Result<CertificateParams, CertsError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, format!("proofrack CA {td}"));
    p.distinguished_name
        .push(DnType::OrganizationName, "proofrack");
    // Path length 0: the CA signs leaves only, never another CA.
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // The trust domain's own SPIFFE ID, so whoever holds ca.pem knows the trust domain.
    let uri = td
        .to_uri()
        .try_into()
        .map_err(CertsError::rcgen("encode the trust domain URI"))?;
    p.subject_alt_names = vec![SanType::URI(uri)];
    p.not_before = to_offset(UnixMillis(
        now.0.saturating_sub(NOT_BEFORE_SKEW.as_millis() as u64),
    ))?;
    p.not_after = to_offset(now.saturating_add(Duration::from_secs(days as u64 * 86_400)))?;
    Ok(p)
}

pub(crate) fn check_days(what: &str, days: u32, max: u32) -> Result<(), CertsError> {
    if days == 0 || days > max {
        return Err(CertsError::BadDays {
            what: what.to_string(),
            days,
            max,
        });
    }
    Ok(())
}
