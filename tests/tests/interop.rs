//! circom/snarkjs interop with the real tools (npm circom2, snarkjs, circomlib, pinned in
//! package.json and installed by scripts/setup-tools.sh --node): circuits from circomlib parts are
//! compiled by circom2 and set up by snarkjs (a small powers of tau made once per run, a
//! contributed zkey so δ ≠ 1); proofs from our prover pass `snarkjs groth16 verify`, snarkjs'
//! proofs pass ours, and bad files and inputs get clear errors.
//!
//! # Layout
//! - `tools`: running circom2 and snarkjs, the shared powers of tau, built circuits.
//! - `both_ways`: Poseidon, MiMC7 and a Poseidon Merkle proof verified in both directions.
//! - `errors`: wrong public inputs, truncated zkey, a BLS12-381 zkey, wrong-length and
//!   unsatisfying witnesses.
//! - `network`: a circom circuit registered with a real coordinator, tasks proved by a real
//!   agent over QUIC and verified by snarkjs; bad witnesses and inputs refused before any
//!   stake is bound. Uses the end-to-end harness (`support`, shared with `e2e.rs`).

mod interop {
    pub mod both_ways;
    pub mod errors;
    pub mod network;
    pub mod tools;
}

// The e2e harness; this binary uses a part of it.
#[allow(dead_code, unused_imports)]
#[path = "support/mod.rs"]
mod support;
