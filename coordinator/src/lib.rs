//! The proofrack coordinator: holds every operator's stake ledger and hands out Groth16 proof
//! tasks only to agents whose operator has the free stake and whose reported hardware has the
//! capacity to finish before the deadline.
//!
//! # Layout
//! - The core, [`proofrack_core`], re-exported here as [`ledger`], [`admission`], [`tasks`]
//!   and [`policy`] (with the [`Policy`]): every decision, pure.
//! - [`server`]: the QUIC shell around the core: authenticated connections, agents' control
//!   streams, key fetches, proof deliveries and client requests turned into core events, the
//!   effects sent back; `server::views` translates the core's read models into protocol views.
//! - [`store`]: the durable state (redb): each event's changes committed before anyone is
//!   told, restored at start.
//! - [`registry`]: the circuits served: proving keys on disk, shapes for admission,
//!   verifying keys.
//! - [`verify`]: a delivered proof checked against the client's public inputs.
//! - [`config`]: `coordinator.toml`, the file format (the policy's settings and validation
//!   are the core's `policy`).
//! - [`chain`]: the chain stake source (alloy, behind one boundary): contract bindings, the
//!   event follower, the slash outbox.
//! - [`circom`]: circom circuits registered by clients (zkey + `.r1cs`) and their submitted
//!   witnesses, checked against the constraints before a task exists.
//! - [`http`]: `/metrics`, the live fleet page and its token-protected JSON API.
//! - [`handle`]: what `http` and `chain` take of a running server ([`handle::CoreView`],
//!   [`handle::CoreDriver`]), which the server implements and passes in: neither imports
//!   [`server`], so [`config`] naming their sections (`[http]`, `[chain]`) closes no cycle.
//! - [`limits`]: `[limits]`, what peers may make the coordinator hold (connections, partial
//!   frames, uploads); the queue's per-client share and request-id retention are in [`Policy`].
//!
//! Architecture invariant: the core crate does no I/O, reads no clock and uses no randomness
//! (its dependencies are checked by `core/tests/no_io.rs`); the shells here (server, store,
//! http, chain, circom, registry, verify) do, and translate protocol messages into core
//! events and effects into messages.

pub mod config;
pub mod handle;
pub mod http;
pub mod limits;
pub use proofrack_core::{admission, ledger, policy, tasks};

pub use config::CoordinatorConfig;
#[cfg(feature = "testkit")]
pub use proofrack_core::testkit;
pub use proofrack_core::{
    AgentId, CoordinatorCore, Effect, Ledger, Offer, OfferReply, Policy, TaskSpec, TaskStatus,
};
pub mod chain;
pub mod circom;
pub mod registry;
pub mod server;
pub mod store;
pub mod verify;
