//! The `proofrack` command line, as a library so tests can run the devnet, the services and
//! the client commands in-process.
//!
//! # Layout
//! - [`devnet`]: one command that makes certificates, starts a coordinator and agents of two
//!   operators on loopback, submits a stream of tasks and shows them move.
//! - [`devnet_chain`]: `devnet --chain`: anvil, the contracts and on-chain stake.
//! - [`serve`]: `proofrack coordinator` and `proofrack agent` from their TOML files.
//! - `config_env`: environment overrides of those files (`PROOFRACK_COORDINATOR_*`,
//!   `PROOFRACK_AGENT_*`).
//! - `signals`: Ctrl-C or SIGTERM ends the services gracefully.
//! - [`client_cmds`]: `submit`, `status`, `tasks`, `ledger`, `agents`, `circuits`.
//! - [`circom_cmds`]: `circuits register` and circom submissions (witness or inputs + wasm).
//! - [`admin_cmds`]: the operator admin's `drain`, `operator withdraw` and `breaker reset`,
//!   retried idempotently, and the deployment admin's `circuits unregister`.
//! - [`audit_cmd`]: `audit`, the coordinator's log of administrators' actions.
//! - [`snarkjs_cmds`]: `verify` and `prove` for circom/snarkjs files, no coordinator.
//! - [`explain_cmd`]: `explain TASK`, the task's full record, over QUIC like `status`.
//! - [`command_line`]: every command and flag as clap parses them (the binary dispatches on
//!   it; the documented-commands test parses the docs' command lines with it).
//! - [`json_out`]: `--json` output, the schema of docs/json.md.
//! - `tables`: human-readable tables and status lines.
//! - [`stdout`]: output that ends quietly when its reader closes the pipe.
//! - `duration`: `30s`, `500ms`, `2m` as command-line durations.
//!
//! Benchmarks and load generators are not here: they live in `proofrack-bench`.

pub mod admin_cmds;
pub mod audit_cmd;
pub mod circom_cmds;
pub mod client_cmds;
pub mod command_line;
pub mod config_env;
pub mod devnet;
pub mod devnet_chain;
mod duration;
pub mod explain_cmd;
pub mod json_out;
pub mod serve;
mod signals;
pub mod snarkjs_cmds;
pub mod stdout;
mod tables;

#[cfg(test)]
mod doc_commands;
