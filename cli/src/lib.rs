//! The `proofrack` command line, as a library so tests can run the devnet and the client
//! commands in-process.
//!
//! # Layout
//! - [`devnet`]: one command that makes certificates, starts a coordinator and agents of two
//!   operators on loopback, submits a stream of tasks and shows them move.
//! - [`devnet_chain`]: `devnet --chain`: anvil, the contracts and on-chain stake.
//! - [`serve`]: `proofrack coordinator` and `proofrack agent` from their TOML files.
//! - [`client_cmds`]: `submit`, `status`, `ledger`, `agents`, `circuits`.
//! - [`admin_cmds`]: the operator's `drain` and `operator withdraw`, retried idempotently.
//! - [`snarkjs_cmds`]: `verify` and `prove` for circom/snarkjs files, no coordinator.
//! - [`tables`]: human-readable tables and status lines.
//! - [`duration`]: `30s`, `500ms`, `2m` as command-line durations.

pub mod admin_cmds;
pub mod client_cmds;
pub mod devnet;
pub mod devnet_chain;
pub mod duration;
pub mod serve;
pub mod snarkjs_cmds;
pub mod tables;
