//! Types shared by the coordinator, agents and clients of proofrack.
//!
//! Two halves: the pure one (messages, their bounded encoding, identities, telemetry) builds
//! with no I/O crate, so the coordinator's core depends on it without tokio, quinn or rustls
//! (`core/tests/no_io.rs` checks); the transport is behind the `net` feature (on by default;
//! every crate that talks to a peer asks for it by name).
//!
//! # Layout
//! - `amount`: [`StakeUnits`], stake in integer base units.
//! - `ids`: operator, agent, task and proving-key identifiers ([`OperatorId`], [`AgentName`],
//!   [`AgentId`], [`TaskId`], [`KeyId`]).
//! - `time`: [`UnixMillis`] and the injected [`Clock`].
//! - [`identity`]: the SPIFFE identity carried in a certificate's single URI SAN (reading it
//!   off a quinn connection: `net`).
//! - [`telemetry`]: what an agent reports about its hardware and calibrated throughput.
//! - [`protocol`]: versioned messages (postcard) and the stream flows between agents,
//!   clients and the coordinator; reading and writing them on a stream: `net`.
//! - [`framing`]: length-prefixed frames with an explicit maximum size (encoding, decoding);
//!   with `net`, reading and writing them, and chunked, hash-checked streaming of large
//!   payloads (proving keys).
//! - `tls` (`net`): rustls mutual-TLS configuration for quinn (TLS 1.3, ALPN, ring).
//! - `client` (`net`): `CoordinatorClient`, one connection with a client certificate, for
//!   the CLI and tests.
//! - `revocation` (`net`): the revoked-serials file and the shared, reloadable handle the
//!   TLS verifier consults.
//! - [`metrics`]: Prometheus text exposition and a duration histogram.
//! - `http` (`net`): a small GET-only HTTP/1.1 server for `/metrics` and the fleet page.
//! - [`config_env`]: environment-variable overrides of a TOML configuration.
//! - `testkit` (feature `testkit`, for tests, benchmarks and simulations only): an agent's
//!   hello, telemetry and calibration as scripted agents send them.
//! - [`timefmt`]: times for people (relative and absolute) and for JSON (RFC 3339).

mod amount;
#[cfg(feature = "net")]
pub mod client;
pub mod config_env;
pub mod framing;
#[cfg(feature = "net")]
pub mod http;
pub mod identity;
mod ids;
pub mod metrics;
pub mod protocol;
#[cfg(feature = "net")]
pub mod revocation;
pub mod telemetry;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;
pub mod timefmt;
#[cfg(feature = "net")]
pub mod tls;

pub use amount::{decimal_option_serde, decimal_serde, StakeUnits};
pub use ids::{validate_name, AgentId, AgentName, KeyId, OperatorId, TaskId};
pub use time::{Clock, SystemClock, UnixMillis};
