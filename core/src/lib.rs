//! proofrack's coordinator core: every decision the coordinator makes, as pure state
//! machines that take inputs (with `now`) and return decisions and effects. Networking, disk,
//! the chain and clocks live in the coordinator crate's shells (the quinn-proto / quinn split).
//!
//! # Layout
//! - [`policy`]: the admission and slashing [`Policy`], its limits and its validation.
//! - [`ledger`]: the stake ledger, a pure state machine with asserted conservation;
//!   [`ledger::source`] is the boundary to where delegations come from (config or chain).
//! - [`admission`]: a pure function deciding which agent a task is offered to, or why none
//!   fits.
//! - [`tasks`]: [`CoordinatorCore`], the task life cycle (`handle_*` events with `now`,
//!   `poll_effect`, `poll_timeout`), the authorization table (`tasks::authz`), the audit
//!   log, circuit breakers, remembered command replies and fair admission order; its read
//!   models (the getters and `explain`, views that change nothing) are grouped in
//!   `tasks/read/`.
//! - `testkit` (feature `testkit`, for tests only): agents and telemetry to build scenarios
//!   with.
//!
//! [`AgentId`] is `proofrack_common::AgentId`, re-exported here and by [`admission`] for
//! convenience; it has no other definition.
//!
//! Architecture invariant, checked: this crate depends on `proofrack-common`, serde, postcard,
//! thiserror and tracing only (`tests/no_io.rs` reads `cargo tree`); it does no I/O, reads
//! no clock and uses no randomness.

pub mod admission;
pub mod ledger;
pub mod policy;
pub mod tasks;

#[cfg(feature = "testkit")]
pub use admission::testkit;
pub use ledger::Ledger;
pub use policy::Policy;
pub use proofrack_common::AgentId;
pub use tasks::{CoordinatorCore, Effect, Offer, OfferReply, TaskSpec, TaskStatus};
