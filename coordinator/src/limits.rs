//! `[limits]` of `coordinator.toml`: what one peer, and all peers together, may make the
//! coordinator hold. Every buffer and every piece of state a peer can grow has a limit here
//! (or, for the core's queue and stored request ids, in [`crate::Policy`]); each one hit is
//! counted in `proofrack_limit_hits_total{limit=...}` and logged (see
//! `server::limits::ServerLimits`).
//!
//! The defaults hold on a 2-core, 24 GiB control host serving a rack of 1,000 agents, with
//! room to spare: the worst a set of hostile peers can pin with them is
//! `max_connections × QUIC receive window` (2,048 × 2 MiB) of transport buffers, plus
//! `frame_bytes_total` of partial frames, plus `max_concurrent_uploads` chunk buffers
//! (256 KiB each); uploads go to disk, at most `upload_bytes_in_flight` of it.
//!
//! ```toml
//! [limits]
//! max_connections = 2048
//! max_client_connections = 256
//! max_connections_per_identity = 8
//! frame_bytes_per_connection = 2_097_152
//! frame_bytes_total = 67_108_864
//! request_timeout_ms = 10000
//! max_concurrent_uploads = 2
//! upload_bytes_in_flight = 4_294_967_296
//! max_upload_bytes = 2_147_483_648
//! ```

use proofrack_common::framing::MAX_FRAME_BYTES;
use proofrack_common::protocol::MAX_ZKEY_BYTES;
// The policy's error and range check come from the core, not from `config`: `config` holds
// `[limits]`, and importing from it would make the two modules import each other.
use proofrack_core::policy::{check_range, ConfigError, MAX_DURATION_SETTING_MS};
use serde::{Deserialize, Serialize};

/// Most connections any setting may allow: quinn keeps per-connection state, and the core
/// tracks at most [`crate::tasks::MAX_AGENTS`] agents anyway.
pub const MAX_CONNECTIONS_SETTING: usize = 65_536;
/// Shortest request deadline: a 1 MiB frame over a slow but honest link needs a few seconds.
pub const MIN_REQUEST_TIMEOUT_MS: u64 = 1_000;
/// Most concurrent uploads a setting may allow (each holds a 256 KiB chunk buffer and a file).
pub const MAX_CONCURRENT_UPLOADS_SETTING: usize = 64;
/// Smallest frame budget: one whole frame and its length prefix.
pub const MIN_FRAME_BUDGET_BYTES: u64 = MAX_FRAME_BYTES as u64 + 4;
/// Largest total frame budget (1 GiB): more is not a limit on a control host.
pub const MAX_FRAME_BUDGET_BYTES: u64 = 1 << 30;

/// The `[limits]` section. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connections open or in their handshake at once, all peers together. Past it a new
    /// connection attempt is refused before its handshake (quinn's `Incoming::refuse`): no
    /// TLS work is spent on it. 2,048 serves a 1,000-agent rack and its clients twice over.
    pub max_connections: usize,
    /// Connections of every identity but agents (requesters, administrators) at once: people
    /// and dashboards. The rest of `max_connections` stays for agents, so a flood of client connections never
    /// keeps the rack from reconnecting. Checked right after the handshake (the kind is in
    /// the certificate); the refused client reads the reason.
    pub max_client_connections: usize,
    /// Connections of one certificate at once. A client (any identity but an agent) past it is
    /// refused with the reason;
    /// an agent past it has its oldest connection closed instead, so an agent restarted many
    /// times in a row is never locked out by its own dead connections.
    pub max_connections_per_identity: usize,
    /// Bytes one connection may hold in frames that have begun but not arrived whole, all its
    /// streams together. A stream that would go over waits (QUIC flow control slows the
    /// peer) until the connection's other frames complete or are cut off by
    /// `request_timeout_ms`. At least one whole frame (1 MiB + 4).
    pub frame_bytes_per_connection: u64,
    /// The same, all connections together.
    pub frame_bytes_total: u64,
    /// A request (a stream's first frame), and every later frame once its first byte came,
    /// must arrive whole within this; a chunk of an upload too. A peer that trickles bytes
    /// has its connection closed with this reason.
    pub request_timeout_ms: u64,
    /// Uploads (zkeys with their `.r1cs`, witnesses) received at once; one more is refused
    /// with "busy, retry" before its first payload byte.
    pub max_concurrent_uploads: usize,
    /// Bytes announced by the uploads in progress, together (their temporary files under
    /// `<data_dir>/uploads/`). An upload that would go over is refused from its header.
    pub upload_bytes_in_flight: u64,
    /// Largest single upload (a zkey; a `.r1cs` is also held to its own protocol limit, and
    /// a witness to the size its circuit's signals need).
    pub max_upload_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 2_048,
            max_client_connections: 256,
            max_connections_per_identity: 8,
            frame_bytes_per_connection: 2 << 20,
            frame_bytes_total: 64 << 20,
            request_timeout_ms: 10_000,
            max_concurrent_uploads: 2,
            upload_bytes_in_flight: 4 << 30,
            max_upload_bytes: MAX_ZKEY_BYTES,
        }
    }
}

impl Limits {
    /// Checks every field against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let range = |key: &str, value: u64, min: u64, max: u64| {
            check_range(&format!("limits.{key}"), value, min, max)
        };
        let max_conns = MAX_CONNECTIONS_SETTING as u64;
        range("max_connections", self.max_connections as u64, 1, max_conns)?;
        range(
            "max_client_connections",
            self.max_client_connections as u64,
            1,
            self.max_connections as u64,
        )?;
        range(
            "max_connections_per_identity",
            self.max_connections_per_identity as u64,
            // Two: a restarted agent's new connection beside its dying one.
            2,
            self.max_connections as u64,
        )?;
        range(
            "frame_bytes_total",
            self.frame_bytes_total,
            MIN_FRAME_BUDGET_BYTES,
            MAX_FRAME_BUDGET_BYTES,
        )?;
        range(
            "frame_bytes_per_connection",
            self.frame_bytes_per_connection,
            MIN_FRAME_BUDGET_BYTES,
            self.frame_bytes_total,
        )?;
        range(
            "request_timeout_ms",
            self.request_timeout_ms,
            MIN_REQUEST_TIMEOUT_MS,
            MAX_DURATION_SETTING_MS,
        )?;
        range(
            "max_concurrent_uploads",
            self.max_concurrent_uploads as u64,
            1,
            MAX_CONCURRENT_UPLOADS_SETTING as u64,
        )?;
        range("max_upload_bytes", self.max_upload_bytes, 1, MAX_ZKEY_BYTES)?;
        range(
            "upload_bytes_in_flight",
            self.upload_bytes_in_flight,
            self.max_upload_bytes,
            u64::MAX,
        )?;
        Ok(())
    }

    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CoordinatorConfig;

    #[test]
    fn defaults_are_valid_and_hold_a_rack() {
        let l = Limits::default();
        l.validate().unwrap();
        assert!(l.max_connections >= 1_000 + l.max_client_connections);
        // Partial frames and transport buffers of every connection stay well inside a 24 GiB
        // host next to the core's own 500 MiB at 100,000 tasks.
        assert!(l.frame_bytes_total <= 64 << 20);
    }

    #[test]
    fn limits_parse_and_bad_ones_name_the_key() {
        let c = CoordinatorConfig::from_toml_str(
            "[limits]\nmax_connections = 100\nmax_client_connections = 10\nrequest_timeout_ms = 2000",
        )
        .unwrap();
        assert_eq!(c.limits.max_connections, 100);
        assert_eq!(c.limits.request_timeout_ms, 2_000);
        let err = CoordinatorConfig::from_toml_str(
            "[limits]\nmax_connections = 100\nmax_client_connections = 200",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "coordinator.toml: limits.max_client_connections = 200 is not allowed (allowed: 1 to 100)"
        );
        let err = CoordinatorConfig::from_toml_str("[limits]\nframe_bytes_per_connection = 1000")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("limits.frame_bytes_per_connection = 1000"),
            "{err}"
        );
        let err = CoordinatorConfig::from_toml_str("[limits]\nmax_connections_per_identity = 1")
            .unwrap_err();
        assert!(err.to_string().contains("allowed: 2 to 2048"), "{err}");
        let err = CoordinatorConfig::from_toml_str("[limits]\nrequest_timeout = 5").unwrap_err();
        assert!(err.to_string().contains("request_timeout"), "{err}");
    }
}
