//! End-to-end tests of the Foundation issue: a coordinator, agents and clients in one process,
//! talking real QUIC on loopback with real certificates from `proofrack_certs`.
//!
//! Run with `RUST_LOG=info` to see the coordinator's and agents' logs.
//!
//! # Layout
//! - `support`: the harness (PKI, in-process coordinator, real and scripted agents, clients,
//!   waits with timeouts).
//! - `cases`: the tests, one module per area: `identity` (who may connect), `frames` (bad
//!   frames and messages), `delivery` (ownership of deliveries, slashing and reassignment),
//!   `admission` (stake and memory), `client_api` (refusals and the watch stream), `devnet`.

mod cases;
mod support;
