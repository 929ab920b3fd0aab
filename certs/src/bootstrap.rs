//! A whole PKI on one machine, set up in one call: a CA in a directory, the coordinator's
//! leaf for the host its clients dial, and any other identity's leaf issued on demand with
//! one more call. The devnet, the benchmarks' load generators and the end-to-end tests all
//! start this way; an operator's deployment uses `proofrack certs` instead, so that `ca.key`
//! stays on the issuing machine.

use crate::{CertsDir, CertsError, InitOptions, IssueOptions, DEFAULT_CA_DAYS, DEFAULT_LEAF_DAYS};
use proofrack_common::identity::{Identity, TrustDomain, DEFAULT_TRUST_DOMAIN};
use proofrack_common::tls::TlsMaterial;
use proofrack_common::UnixMillis;

/// How a [`LocalPki`] is set up.
#[derive(Clone, Debug)]
pub struct LocalPkiOptions {
    pub trust_domain: TrustDomain,
    /// Keep a CA the directory already holds (the devnet's data directory outlives its runs,
    /// and agents' caches stay valid); without it the directory must not hold one yet.
    pub keep_ca: bool,
    /// Lifetime of every leaf issued.
    pub leaf_days: u32,
}

impl Default for LocalPkiOptions {
    fn default() -> Self {
        LocalPkiOptions {
            trust_domain: TrustDomain::new(DEFAULT_TRUST_DOMAIN)
                .expect("the default trust domain is valid"),
            keep_ca: false,
            leaf_days: DEFAULT_LEAF_DAYS,
        }
    }
}

/// A CA with the coordinator's leaf issued; [`LocalPki::issue`] adds any other identity.
#[derive(Clone, Debug)]
pub struct LocalPki {
    dir: CertsDir,
    coordinator: Identity,
    leaf_days: u32,
}

impl LocalPki {
    /// Makes the CA in `dir` (or keeps the one there, with [`LocalPkiOptions::keep_ca`]) and
    /// issues a fresh leaf for the coordinator at `coordinator_host`.
    pub fn bootstrap(
        dir: CertsDir,
        coordinator_host: &str,
        opts: &LocalPkiOptions,
        now: UnixMillis,
    ) -> Result<LocalPki, CertsError> {
        let coordinator = Identity::coordinator(coordinator_host).map_err(|e| {
            CertsError::Usage(format!("coordinator host {coordinator_host:?}: {e}"))
        })?;
        if !(opts.keep_ca && dir.ca_cert_path().exists()) {
            let ca = InitOptions {
                trust_domain: opts.trust_domain.clone(),
                days: DEFAULT_CA_DAYS,
                force: false,
            };
            dir.init(&ca, now)?;
        }
        let pki = LocalPki {
            dir,
            coordinator,
            leaf_days: opts.leaf_days,
        };
        pki.issue(&pki.coordinator, now)?;
        Ok(pki)
    }

    pub fn dir(&self) -> &CertsDir {
        &self.dir
    }

    /// The coordinator's identity, whose leaf [`LocalPki::bootstrap`] issued.
    pub fn coordinator(&self) -> &Identity {
        &self.coordinator
    }

    /// The coordinator's TLS material.
    pub fn coordinator_material(&self) -> Result<TlsMaterial, CertsError> {
        self.dir.tls_material(&self.coordinator)
    }

    /// Issues `identity` a fresh leaf and key, replacing any it had (a leaf left by an earlier
    /// run is never reused, so none is ever expired), and returns its TLS material.
    pub fn issue(&self, identity: &Identity, now: UnixMillis) -> Result<TlsMaterial, CertsError> {
        let leaf = IssueOptions {
            days: self.leaf_days,
            force: true,
        };
        self.dir.issue(identity, &leaf, now)?;
        self.dir.tls_material(identity)
    }

    /// `identity`'s TLS material, issuing its leaf first if it has none yet.
    pub fn material(
        &self,
        identity: &Identity,
        now: UnixMillis,
    ) -> Result<TlsMaterial, CertsError> {
        if self.dir.cert_path(identity).exists() {
            self.dir.tls_material(identity)
        } else {
            self.issue(identity, now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::TempDir;
    use proofrack_common::identity::PeerCertInfo;

    const NOW: UnixMillis = UnixMillis(1_780_000_000_000);

    fn read(dir: &CertsDir, id: &Identity) -> PeerCertInfo {
        dir.read_cert(id).expect("the leaf reads back")
    }

    #[test]
    fn bootstrap_makes_the_ca_and_the_coordinators_leaf_and_issues_others_on_demand() {
        let t = TempDir::new("bootstrap");
        let pki = LocalPki::bootstrap(
            CertsDir::new(t.0.join("certs")),
            "127.0.0.1",
            &LocalPkiOptions::default(),
            NOW,
        )
        .unwrap();
        assert_eq!(
            pki.coordinator(),
            &Identity::coordinator("127.0.0.1").unwrap()
        );
        assert!(pki.dir().ca_key_path().exists());
        assert_eq!(
            read(pki.dir(), pki.coordinator()).identity,
            *pki.coordinator()
        );
        let own = pki.coordinator_material().unwrap().own_identity().unwrap();
        assert_eq!(own.identity, *pki.coordinator());

        let agent = Identity::agent("op-a", "gpu-1").unwrap();
        assert!(!pki.dir().cert_path(&agent).exists());
        let first = pki.material(&agent, NOW).unwrap().own_identity().unwrap();
        assert_eq!(first.identity, agent);
        // Issued once: asking again reads the same leaf; `issue` replaces it.
        let again = pki.material(&agent, NOW).unwrap().own_identity().unwrap();
        assert_eq!(again.serial_hex, first.serial_hex);
        let fresh = pki.issue(&agent, NOW).unwrap().own_identity().unwrap();
        assert_ne!(fresh.serial_hex, first.serial_hex);
    }

    #[test]
    fn a_kept_ca_survives_a_second_bootstrap_and_leaves_are_reissued() {
        let t = TempDir::new("bootstrap-keep");
        let opts = LocalPkiOptions {
            keep_ca: true,
            leaf_days: 7,
            ..LocalPkiOptions::default()
        };
        let first =
            LocalPki::bootstrap(CertsDir::new(t.0.join("c")), "127.0.0.1", &opts, NOW).unwrap();
        let ca = std::fs::read(first.dir().ca_cert_path()).unwrap();
        let leaf = read(first.dir(), first.coordinator());
        assert_eq!(
            leaf.not_after,
            NOW.saturating_add(std::time::Duration::from_secs(7 * 86_400))
        );
        let second =
            LocalPki::bootstrap(CertsDir::new(t.0.join("c")), "127.0.0.1", &opts, NOW).unwrap();
        assert_eq!(std::fs::read(second.dir().ca_cert_path()).unwrap(), ca);
        assert_ne!(
            read(second.dir(), second.coordinator()).serial_hex,
            leaf.serial_hex
        );
    }

    #[test]
    fn without_keep_ca_an_existing_ca_is_refused_and_a_bad_host_is_named() {
        let t = TempDir::new("bootstrap-refuse");
        let dir = CertsDir::new(t.0.join("c"));
        LocalPki::bootstrap(dir.clone(), "127.0.0.1", &LocalPkiOptions::default(), NOW).unwrap();
        let e =
            LocalPki::bootstrap(dir, "127.0.0.1", &LocalPkiOptions::default(), NOW).unwrap_err();
        assert!(matches!(e, CertsError::Exists { .. }), "{e}");
        let e = LocalPki::bootstrap(
            CertsDir::new(t.0.join("d")),
            "not a host",
            &LocalPkiOptions::default(),
            NOW,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("coordinator host \"not a host\""),
            "{e}"
        );
    }
}
