//! The agent's certificate and key, read again from disk before every connection attempt, so
//! a certificate renewed on disk (`proofrack certs renew agent …`, copied to the box) is used
//! from the next (re)connect without a restart. A revoked agent keeps retrying with backoff
//! and comes back as soon as its renewed files are in place.
//!
//! The files are re-read only when their bytes changed. A new pair is taken only if it is
//! whole and names the same agent: a certificate and key that do not match (a copy half
//! done) or a certificate of another identity is refused with a warning, and the current
//! pair stays in use until the next attempt finds better files.

use proofrack_common::identity::Identity;
use proofrack_common::tls::{self, Liveness, TlsMaterial};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Where the agent's CA certificate, own certificate and key live (`agent.toml`'s `[tls]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityFiles {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl IdentityFiles {
    fn fingerprint(&self) -> Option<[u8; 32]> {
        let mut h = Sha256::new();
        for p in [&self.ca_cert, &self.cert, &self.key] {
            h.update(std::fs::read(p).ok()?);
            h.update([0u8]);
        }
        Some(h.finalize().into())
    }
}

/// The certificate in use and how to connect with it.
pub struct AgentIdentity {
    files: Option<IdentityFiles>,
    liveness: Liveness,
    identity: Identity,
    serial_hex: String,
    config: quinn::ClientConfig,
    /// The files' contents last looked at (taken or refused), so unchanged files are not
    /// parsed again.
    seen: Option<[u8; 32]>,
}

impl AgentIdentity {
    /// Starts with `material` (already loaded from `files`, if given).
    pub fn new(
        material: &TlsMaterial,
        files: Option<IdentityFiles>,
        liveness: Liveness,
    ) -> Result<AgentIdentity, tls::TlsError> {
        let info = material.own_identity()?;
        let config = tls::client_config_with(material, liveness)?;
        let seen = files.as_ref().and_then(IdentityFiles::fingerprint);
        Ok(AgentIdentity {
            files,
            liveness,
            identity: info.identity,
            serial_hex: info.serial_hex,
            config,
            seen,
        })
    }

    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }

    pub fn files(&self) -> Option<&IdentityFiles> {
        self.files.as_ref()
    }

    /// The configuration for the next connection attempt, after looking at the files again.
    pub fn config_for_attempt(&mut self) -> quinn::ClientConfig {
        if let Some(files) = self.files.clone() {
            let now = files.fingerprint();
            if now.is_some() && now != self.seen {
                self.seen = now;
                self.take_renewed(&files);
            }
        }
        self.config.clone()
    }

    fn take_renewed(&mut self, files: &IdentityFiles) {
        let material = TlsMaterial::load(&files.ca_cert, &files.cert, &files.key)
            .and_then(|m| Ok((m.own_identity()?, m)));
        let (info, material) = match material {
            Ok(loaded) => loaded,
            Err(e) => return self.keep_current(files, &e),
        };
        if info.identity != self.identity {
            tracing::warn!(
                cert = %files.cert.display(),
                names = %info.identity,
                agent = %self.identity,
                "the certificate file now names another identity; keeping this agent's current certificate"
            );
            return;
        }
        if info.serial_hex == self.serial_hex {
            return;
        }
        match tls::client_config_with(&material, self.liveness) {
            Ok(config) => {
                tracing::info!(
                    agent = %self.identity,
                    serial = %info.serial_hex,
                    previous_serial = %self.serial_hex,
                    cert = %files.cert.display(),
                    "renewed certificate found on disk; connecting with it from now on"
                );
                self.serial_hex = info.serial_hex;
                self.config = config;
            }
            Err(e) => self.keep_current(files, &e),
        }
    }

    fn keep_current(&self, files: &IdentityFiles, e: &tls::TlsError) {
        tracing::warn!(
            cert = %files.cert.display(),
            key = %files.key.display(),
            error = %e,
            "the certificate or key on disk changed but cannot be used (a copy half done, or a key that does not match); keeping the current ones and looking again at the next attempt"
        );
    }
}
