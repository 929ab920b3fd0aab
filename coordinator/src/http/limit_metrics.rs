//! The `[limits]` families of `/metrics`: how often each limit was hit, and the gauges each
//! limit bounds (connections, partial-frame bytes, uploads).

use crate::handle::CoreView;
use proofrack_common::metrics::{Exposition, Kind};
use std::collections::BTreeMap;

/// Writes the families. `refusals` are the core's submission refusals by reason.
pub(super) fn limit_families(
    e: &mut Exposition,
    view: &dyn CoreView,
    refusals: &BTreeMap<String, u64>,
) {
    let limits = view.limit_counters();
    e.family(
        "proofrack_limit_hits_total",
        "Times a limit of [limits] (or the policy's per-client share of the queue) was reached, by limit.",
        Kind::Counter,
    );
    for (limit, n) in limits.hits {
        e.sample("proofrack_limit_hits_total", &[("limit", limit)], n);
    }
    e.family(
        "proofrack_submissions_refused_total",
        "Submissions refused for room: queue_full (policy.queue_capacity) or client_share (the client's share of it).",
        Kind::Counter,
    );
    for reason in ["queue_full", "client_share"] {
        let n = refusals.get(reason).copied().unwrap_or(0);
        e.sample(
            "proofrack_submissions_refused_total",
            &[("reason", reason)],
            n,
        );
    }
    let (connections, clients) = limits.connections;
    e.single(
        "proofrack_connections",
        "Connections open or in their handshake (limits.max_connections).",
        Kind::Gauge,
        connections,
    );
    e.single(
        "proofrack_client_connections",
        "Connections of every identity but agents open (limits.max_client_connections).",
        Kind::Gauge,
        clients,
    );
    e.single(
        "proofrack_partial_frame_bytes",
        "Bytes held in frames that have begun but not arrived whole, all connections (limits.frame_bytes_total).",
        Kind::Gauge,
        limits.frame_bytes_held,
    );
    let (uploads, upload_bytes) = limits.uploads;
    e.single(
        "proofrack_uploads_in_progress",
        "Uploads being received (limits.max_concurrent_uploads).",
        Kind::Gauge,
        uploads,
    );
    e.single(
        "proofrack_upload_bytes_in_flight",
        "Bytes announced by the uploads in progress (limits.upload_bytes_in_flight).",
        Kind::Gauge,
        upload_bytes,
    );
}
