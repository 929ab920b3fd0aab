//! The chain as the source of truth for delegated stake and the place where slashes land.
//!
//! All chain access is behind this module (alloy; ethers is deprecated in favour of it): the
//! core and the ledger see only `OutsideStake` figures, `handle_stake_frozen` and their own
//! `Effect::StakeSlashed`. The config-file stake source stays the default.
//!
//! # Layout
//! - [`bindings`]: `sol!` bindings generated from the checked-in `contracts/build/*.json`.
//! - `config`: the `[chain]` section and its resolved [`ChainSettings`].
//! - `store`: the boundary's own redb file (cursor with block hashes, operators, slash outbox).
//! - `follower`: events after the last processed block up to the confirmed one, reorg
//!   detection by block hash, figures read at the confirmed block.
//! - `slasher`: the outbox; slashes sent until final, never twice.
//! - `source`: [`ChainStakeSource`], both driven against a running server through its
//!   `crate::handle::CoreDriver`.
//! - [`deploy`]: deploying and funding the contracts (devnet and tests).

pub mod bindings;
mod config;
pub mod deploy;
mod follower;
mod slasher;
mod source;
mod store;

pub use config::{ChainConfig, ChainSettings, STORE_FILE};
pub use slasher::slash_id;
pub use source::ChainStakeSource;
pub use store::SlashState;

/// Why the chain stake source failed. Each message names what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("chain configuration: {0}")]
    Config(String),
    #[error("chain node: {0}")]
    Rpc(String),
    #[error("stake registry: {0}")]
    Contract(String),
    #[error("chain store: {0}")]
    Store(String),
}

/// alloy, re-exported so the command line and the tests name the same types (addresses,
/// keys, providers) without a second dependency line.
pub use alloy;
