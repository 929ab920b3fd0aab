//! Types shared by the coordinator, agents and clients of proofrack.
//!
//! # Layout
//! - [`amount`]: `StakeUnits`, stake in integer base units.
//! - [`ids`]: operator, agent, task and proving-key identifiers.
//! - [`identity`]: the SPIFFE identity carried in a certificate's single URI SAN.
//! - [`telemetry`]: what an agent reports about its hardware and calibrated throughput.
//! - `protocol`: versioned messages (postcard), `framing`: length-prefixed frames with an
//!   explicit maximum size and chunked streaming of large payloads, `tls`: rustls mutual-TLS
//!   configuration for quinn.

pub mod amount;
pub mod ids;
pub mod telemetry;
pub mod time;

pub use amount::StakeUnits;
pub use ids::{AgentName, KeyId, OperatorId, TaskId};
pub use time::{Clock, SystemClock, UnixMillis};
