//! The attacker's suite: every certificate the CA issued may be in hostile hands. Each test
//! holds valid certificates and plays one attack over real QUIC on loopback against a real
//! coordinator, and checks it is refused or bounded with a clear reason while honest peers
//! are served on.
//!
//! The resource attacks run against a coordinator PROCESS (this binary, re-run as the
//! coordinator, see `support::process`), while the suite reads that process's RSS from
//! `/proc` and an honest client's submissions keep being proved by a real agent. Each prints
//! a JSON line (`"bench": "attack"`): the coordinator's RSS before, at peak and after, and the
//! honest client's submit → verified latency during the attack beside the same figure with no
//! attack, measured in the same run.
//!
//! # Layout (one module per file; keep one line each)
//! - `logs`: the in-process agents' own log lines, captured.
//! - `roles`: the identities of the table (requesters, operator admins, a deployment admin)
//!   and small helpers shared by the files below.
//! - `authorization`: the authorization table row by row, with the refusals' exact words.
//! - `revocation`: a revoked peer stays out, resumption or not; renewal is picked up.
//! - `duplicates`: two processes with one agent certificate.
//! - `breaker`: an agent that inflates its calibration and never delivers.
//! - `child`: the coordinator process this binary becomes.
//! - `resources`: resource bounds (connections, half-open frames, uploads, drains of unknown
//!   agents, a trickled request), with default limits.

mod attack {
    mod authorization;
    mod breaker;
    mod child;
    mod duplicates;
    mod logs;
    mod resources;
    mod revocation;
    mod roles;
}

// The e2e harness; this binary uses a part of it.
#[allow(dead_code, unused_imports)]
#[path = "support/mod.rs"]
mod support;
