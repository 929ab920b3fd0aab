//! The proofrack coordinator: holds every operator's stake ledger and hands out Groth16 proof
//! tasks only to agents whose operator has the free stake and whose reported hardware has the
//! capacity to finish before the deadline.
//!
//! Other crates (the `proofrack` binary, the bench, the tests) use what the root re-exports;
//! the modules are private except [`chain`], kept whole for its alloy re-export, contract
//! bindings and deploy helpers.
//!
//! # Layout
//! - The core, [`proofrack_core`], re-exported here as [`ledger`], [`admission`], [`tasks`]
//!   and [`policy`] (with the [`Policy`]): every decision, pure.
//! - `server`: the QUIC shell around the core: authenticated connections, agents' control
//!   streams, key fetches, proof deliveries and client requests turned into core events, the
//!   effects sent back; `server::views` translates the core's read models into protocol views.
//! - `store`: the durable state (redb): each event's changes committed before anyone is
//!   told, restored at start.
//! - `registry`: the circuits served: proving keys on disk, shapes for admission,
//!   verifying keys.
//! - `verify`: a delivered proof checked against the client's public inputs.
//! - `config`: `coordinator.toml`, the file format (the policy's settings and validation
//!   are the core's `policy`).
//! - [`chain`]: the chain stake source (alloy, behind one boundary): contract bindings, the
//!   event follower, the slash outbox.
//! - `circom`: circom circuits registered by clients (zkey + `.r1cs`) and their submitted
//!   witnesses, checked against the constraints before a task exists.
//! - `http`: `/metrics`, the live fleet page and its token-protected JSON API.
//! - `handle`: what `http` and `chain` take of a running server (`handle::CoreView`,
//!   `handle::CoreDriver`), which the server implements and passes in: neither imports
//!   `server`, so `config` naming their sections (`[http]`, `[chain]`) closes no cycle.
//! - `limits`: `[limits]`, what peers may make the coordinator hold (connections, partial
//!   frames, uploads); the queue's per-client share and request-id retention are in [`Policy`].
//!
//! Architecture invariant: the core crate does no I/O, reads no clock and uses no randomness
//! (its dependencies are checked by `core/tests/no_io.rs`); the shells here (server, store,
//! http, chain, circom, registry, verify) do, and translate protocol messages into core
//! events and effects into messages.

mod circom;
mod config;
mod handle;
mod http;
mod limits;
mod registry;
mod server;
mod store;
mod verify;

// Grouped rather than flattened: the devnet and the chain tests use its alloy re-export,
// contract bindings and deploy helpers together; its own modules are private.
pub mod chain;

#[cfg(feature = "testkit")]
pub use proofrack_core::testkit;
pub use proofrack_core::{admission, ledger, policy, tasks};
pub use proofrack_core::{
    AgentId, CoordinatorCore, Effect, Ledger, Offer, OfferReply, Policy, TaskSpec, TaskStatus,
};

// The curated surface: what the binary (cli), the bench and the tests need, nothing else.
// Everything else in the modules above is the coordinator's own.
pub use circom::{
    convert as convert_circom, witness::check as check_circom_witness, CircomCircuit,
};
pub use config::{CoordinatorConfig, OperatorStake, TlsPaths, MAX_QUEUE_CAPACITY};
pub use http::{
    fleet_view, metrics::render as render_metrics, start as start_http,
    start_from_config as start_http_from_config, HttpConfig,
};
pub use limits::Limits;
pub use registry::{CircuitRegistry, CircuitSource};
pub use server::{start as start_server, RunningServer, ServerSettings, Shared, KEYS_DIR};
pub use store::{ExtraWrite, Store, StoredDelivery, StoredProof, STORE_FILE, STORE_THREAD_NAME};
