//! [`ServerSettings`] from a [`CoordinatorConfig`]: the TLS material and revocation list its
//! paths name, and the circuit registry under its data directory. One conversion for
//! `proofrack coordinator`, the devnet, the benchmarks and the tests.

use super::{ServerError, ServerSettings, StateLocation};
use crate::config::CoordinatorConfig;
use crate::registry::CircuitRegistry;
use proofrack_common::revocation::RevocationHandle;
use proofrack_common::tls::TlsMaterial;
use proofrack_common::SystemClock;
use std::path::Path;
use std::sync::Arc;

/// The proving keys' directory inside the data directory (built-in keys by name, circom
/// registrations under `circom/`).
pub const KEYS_DIR: &str = "keys";

impl ServerSettings {
    /// What `config` describes, on the system clock, with the durable state in
    /// `config.data_dir`. The revocation list is the `revoked.json` beside the CA certificate
    /// (`proofrack certs revoke` writes it there). The proving keys of `config.circuits` are
    /// loaded, or generated and saved on first start, on a blocking thread (seconds for large
    /// circuits). `config` is taken as it is: [`CoordinatorConfig::validate`] is the caller's.
    pub async fn from_config(config: &CoordinatorConfig) -> Result<ServerSettings, ServerError> {
        let tls = TlsMaterial::load(&config.tls.ca_cert, &config.tls.cert, &config.tls.key)?;
        let revoked = config
            .tls
            .ca_cert
            .parent()
            .unwrap_or(Path::new("."))
            .join(proofrack_certs::REVOKED_FILE);
        let revocation = RevocationHandle::load(&revoked)?;
        let keys_dir = config.data_dir.join(KEYS_DIR);
        let names = config.circuits.clone();
        let registry = tokio::task::spawn_blocking(move || {
            CircuitRegistry::load_or_generate(&keys_dir, &names)
        })
        .await
        .map_err(|e| ServerError::Circuit(format!("the key loading thread failed: {e}")))??;
        Ok(ServerSettings {
            listen: config.listen,
            tls,
            revocation,
            policy: config.policy.clone(),
            delegations: config.delegations(),
            registry,
            clock: Arc::new(SystemClock),
            telemetry_interval_ms: config.telemetry_interval_ms,
            state: StateLocation::Dir(config.data_dir.clone()),
            limits: config.limits.clone(),
        })
    }
}
