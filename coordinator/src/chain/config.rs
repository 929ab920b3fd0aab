//! The `[chain]` section of `coordinator.toml`: which node and contract are the stake source,
//! how deep a block must be before it counts, and how long the coordinator serves from the
//! last known state when the node cannot be reached.
//!
//! ```toml
//! [chain]
//! rpc_url = "http://127.0.0.1:8545"
//! registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
//! start_block = 0
//! confirmations = 2
//! poll_interval_ms = 1000
//! stale_after_ms = 60000
//! slasher_key_file = "chain/slasher.key"   # hex private key of the contract's slasher
//! ```

use super::ChainError;
use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most confirmations: deeper than this only delays every stake change for no safety a
/// proof-of-stake chain's finality does not already give.
pub const MAX_CONFIRMATIONS: u64 = 64;
const _: () = assert!(MAX_CONFIRMATIONS < super::store::REORG_WINDOW as u64);
/// Shortest poll interval: faster only loads the node.
pub const MIN_POLL_INTERVAL_MS: u64 = 50;
/// Longest the coordinator may serve offers from a chain state it could not refresh: past
/// this, stake may have been withdrawn or slashed elsewhere without the ledger knowing.
pub const MAX_STALE_AFTER_MS: u64 = 3_600_000;
/// File name of the chain boundary's store in the coordinator's data dir.
pub const STORE_FILE: &str = "chain.redb";

/// The `[chain]` section as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// HTTP JSON-RPC endpoint of the node.
    pub rpc_url: String,
    /// Address of the deployed `StakeRegistry`.
    pub registry: Address,
    /// Block the registry was deployed at; events before it are not scanned.
    #[serde(default)]
    pub start_block: u64,
    /// Blocks on top of a block before its events count.
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// After this long without a successful poll, no new offers are made.
    #[serde(default = "default_stale_after_ms")]
    pub stale_after_ms: u64,
    /// File holding the slasher's private key (hex), the key the contract names as slasher.
    pub slasher_key_file: PathBuf,
}

fn default_confirmations() -> u64 {
    2
}
fn default_poll_interval_ms() -> u64 {
    1_000
}
fn default_stale_after_ms() -> u64 {
    60_000
}

/// Everything the chain stake source needs, resolved (key read, URL parsed).
#[derive(Clone, Debug)]
pub struct ChainSettings {
    pub rpc_url: reqwest_url::Url,
    pub registry: Address,
    pub start_block: u64,
    pub confirmations: u64,
    pub poll_interval: Duration,
    pub stale_after_ms: u64,
    pub slasher: PrivateKeySigner,
    /// The store file (`<data_dir>/chain.redb`).
    pub store_path: PathBuf,
}

/// The URL type alloy's HTTP transport takes.
pub mod reqwest_url {
    pub use alloy::transports::http::reqwest::Url;
}

impl ChainConfig {
    /// Checks the values and reads the slasher key (relative paths from the working dir).
    pub fn resolve(&self, data_dir: &Path) -> Result<ChainSettings, ChainError> {
        let key = std::fs::read_to_string(&self.slasher_key_file).map_err(|e| {
            ChainError::Config(format!(
                "chain.slasher_key_file {}: {e}; write the slasher's hex private key there",
                self.slasher_key_file.display()
            ))
        })?;
        let slasher: PrivateKeySigner = key.trim().parse().map_err(|e| {
            ChainError::Config(format!(
                "chain.slasher_key_file {}: not a hex private key ({e})",
                self.slasher_key_file.display()
            ))
        })?;
        ChainSettings::new(
            &self.rpc_url,
            self.registry,
            self.start_block,
            self.confirmations,
            self.poll_interval_ms,
            self.stale_after_ms,
            slasher,
            data_dir.join(STORE_FILE),
        )
    }
}

impl ChainSettings {
    /// Validated settings.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rpc_url: &str,
        registry: Address,
        start_block: u64,
        confirmations: u64,
        poll_interval_ms: u64,
        stale_after_ms: u64,
        slasher: PrivateKeySigner,
        store_path: PathBuf,
    ) -> Result<ChainSettings, ChainError> {
        let rpc_url = rpc_url.parse().map_err(|e| {
            ChainError::Config(format!(
                "chain.rpc_url {rpc_url:?} is not a URL ({e}); e.g. http://127.0.0.1:8545"
            ))
        })?;
        if confirmations > MAX_CONFIRMATIONS {
            return Err(ChainError::Config(format!(
                "chain.confirmations = {confirmations}; at most {MAX_CONFIRMATIONS}"
            )));
        }
        if poll_interval_ms < MIN_POLL_INTERVAL_MS {
            return Err(ChainError::Config(format!(
                "chain.poll_interval_ms = {poll_interval_ms}; at least {MIN_POLL_INTERVAL_MS}"
            )));
        }
        if stale_after_ms <= poll_interval_ms || stale_after_ms > MAX_STALE_AFTER_MS {
            return Err(ChainError::Config(format!(
                "chain.stale_after_ms = {stale_after_ms}; more than poll_interval_ms \
                 ({poll_interval_ms}) and at most {MAX_STALE_AFTER_MS}"
            )));
        }
        Ok(ChainSettings {
            rpc_url,
            registry,
            start_block,
            confirmations,
            poll_interval: Duration::from_millis(poll_interval_ms),
            stale_after_ms,
            slasher,
            store_path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// anvil's first well-known development key.
    const ANVIL_KEY_0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn parses_and_validates() {
        let c: ChainConfig = toml::from_str(
            r#"
            rpc_url = "http://127.0.0.1:8545"
            registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
            slasher_key_file = "k"
            "#,
        )
        .unwrap();
        assert_eq!(c.confirmations, 2);
        let key: PrivateKeySigner = ANVIL_KEY_0.parse().unwrap();
        let s = |conf, poll, stale| {
            ChainSettings::new(
                &c.rpc_url,
                c.registry,
                0,
                conf,
                poll,
                stale,
                key.clone(),
                "x".into(),
            )
        };
        assert!(s(2, 1_000, 60_000).is_ok());
        let err = s(MAX_CONFIRMATIONS + 1, 1_000, 60_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("chain.confirmations"), "{err}");
        assert!(s(2, 1_000, 1_000).is_err());
        assert!(s(2, 10, 60_000).is_err());
        assert!(toml::from_str::<ChainConfig>(
            "rpc_url = \"x\"\nregistry = \"0x1\"\nslasher_key_file = \"k\""
        )
        .is_err());
    }
}
