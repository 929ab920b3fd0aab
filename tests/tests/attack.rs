//! The attacker's suite: every certificate the CA issued may be in hostile hands. Each test
//! holds valid certificates and plays one attack over real QUIC on loopback against a real
//! coordinator, and checks it is refused or bounded with a clear reason while honest peers
//! are served on.
//!
//! # Layout (one module per file; keep one line each)
//! - `logs`: the in-process agents' own log lines, captured.
//! - `roles`: the identities of the table (requesters, operator admins, a deployment admin)
//!   and small helpers shared by the files below.
//! - `authorization`: the authorization table row by row, with the refusals' exact words.
//! - `revocation`: a revoked peer stays out, resumption or not; renewal is picked up.
//! - `duplicates`: two processes with one agent certificate.
//! - `breaker`: an agent that inflates its calibration and never delivers.

mod attack {
    mod authorization;
    mod breaker;
    mod duplicates;
    mod logs;
    mod revocation;
    mod roles;
}

// The e2e harness; this binary uses a part of it.
#[allow(dead_code, unused_imports)]
#[path = "support/mod.rs"]
mod support;
