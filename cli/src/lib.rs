//! The `proofrack` command line, as a library so tests can run the devnet and the client
//! commands in-process.
//!
//! # Layout
//! - [`devnet`]: one command that makes certificates, starts a coordinator and agents of two
//!   operators on loopback, submits a stream of tasks and shows them move.
//! - [`devnet_chain`]: `devnet --chain`: anvil, the contracts and on-chain stake.
//! - [`serve`]: `proofrack coordinator` and `proofrack agent` from their TOML files.
//! - [`config_env`]: environment overrides of those files (`PROOFRACK_COORDINATOR_*`,
//!   `PROOFRACK_AGENT_*`).
//! - [`signals`]: Ctrl-C or SIGTERM ends the services gracefully.
//! - [`client_cmds`]: `submit`, `status`, `ledger`, `agents`, `circuits`.
//! - [`admin_cmds`]: the operator's `drain` and `operator withdraw`, retried idempotently.
//! - [`snarkjs_cmds`]: `verify` and `prove` for circom/snarkjs files, no coordinator.
//! - [`explain_cmd`]: `explain TASK`, the task's full record from the HTTP API.
//! - [`fleet_load`]: a coordinator under a large fleet of protocol agents (benchmark, test).
//! - [`echo_load`]: a bare quinn mutual-TLS echo, the reference of the coordinator benchmark.
//! - [`attack_load`]: attacks by peers holding valid certificates (connection floods,
//!   half-open frames, large uploads, unknown drains, trickled requests), the coordinator's
//!   RSS while they run, and an honest client's latency beside them.
//! - [`tables`]: human-readable tables and status lines.
//! - [`duration`]: `30s`, `500ms`, `2m` as command-line durations.

pub mod admin_cmds;
pub mod attack_load;
pub mod circom_cmds;
pub mod client_cmds;
pub mod config_env;
pub mod devnet;
pub mod devnet_chain;
pub mod duration;
pub mod echo_load;
pub mod explain_cmd;
pub mod fleet_load;
pub mod load_coordinator;
pub mod serve;
pub mod signals;
pub mod snarkjs_cmds;
pub mod tables;
