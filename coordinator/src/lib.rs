//! The proofrack coordinator: holds every operator's stake ledger and hands out Groth16 proof
//! tasks only to agents whose operator has the free stake and whose reported hardware has the
//! capacity to finish before the deadline.
//!
//! # Layout
//! - [`config`]: `coordinator.toml` types, defaults and validation (including the [`Policy`]).
//! - [`ledger`]: the stake ledger, a pure state machine with asserted conservation;
//!   [`ledger::source`] is the boundary to where delegations come from (config now, chain later).
//! - [`admission`]: a pure function deciding which agent a task is offered to, or why none fits.
//! - [`chain`]: the chain stake source (alloy, behind one boundary): contract bindings, the
//!   event follower, the slash outbox.
//! - [`tasks`]: [`CoordinatorCore`], the task life cycle as a quinn-proto-style state machine
//!   (`handle_*` events with `now`, `poll_effect`, `poll_timeout`, getters).
//! - [`circom`]: circom circuits registered by clients (zkey + `.r1cs`) and their submitted
//!   witnesses, checked against the constraints before a task exists.
//! - [`http`]: `/metrics`, the live fleet page and its token-protected JSON API.
//! - [`limits`]: `[limits]`, what peers may make the coordinator hold (connections, partial
//!   frames, uploads); the queue's per-client share and request-id retention are in [`Policy`].
//!
//! Architecture invariant: `config`, `ledger`, `admission` and `tasks` do no I/O, read no
//! clock and use no randomness; the QUIC server shell around them does, and translates
//! protocol messages into core events and effects into messages.

pub mod admission;
pub mod config;
pub mod http;
pub mod ledger;
pub mod limits;
pub mod tasks;

#[cfg(feature = "testkit")]
pub use admission::testkit;
pub use admission::AgentId;
pub use config::{CoordinatorConfig, Policy};
pub use ledger::Ledger;
pub use tasks::{CoordinatorCore, Effect, Offer, OfferReply, TaskSpec, TaskStatus};
pub mod chain;
pub mod circom;
pub mod registry;
pub mod server;
pub mod store;
pub mod verify;
