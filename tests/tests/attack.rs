//! The attacker's suite: peers holding valid certificates from the deployment's own CA play
//! each case of issue 15 against a real coordinator PROCESS (this binary, re-run as the
//! coordinator, see `support::process`), while the suite reads that process's RSS from
//! `/proc` and an honest client's submissions keep being proved by a real agent.
//!
//! Each attack prints a JSON line (`"bench": "attack"`): the coordinator's RSS before,
//! at peak and after, and the honest client's submit → verified latency during the attack
//! beside the same figure with no attack, measured in the same run.
//!
//! # Layout (one module per file; keep one line each)
//! - `child`: the coordinator process this binary becomes.
//! - `resources`: resource bounds (connections, half-open frames, uploads, drains of unknown
//!   agents, a trickled request), with default limits.

mod attack {
    mod child;
    mod resources;
}

// The e2e harness; this binary uses a part of it.
#[allow(dead_code, unused_imports)]
#[path = "support/mod.rs"]
mod support;
