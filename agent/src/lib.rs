//! The proofrack agent: runs on every prover box, reports the box's measured capacity to the
//! coordinator over mutually authenticated QUIC and proves the tasks it is given.
//!
//! Other crates (the `proofrack` binary, the tests) use what the root re-exports: [`run`]
//! with its [`AgentSettings`], the configuration file, the prover, the key cache and
//! `/metrics`. The modules are private.
//!
//! # Layout
//! - `telemetry`: [`TelemetryCollector`] samples every GPU through NVML (`telemetry::nvml`,
//!   behind the `GpuSource` trait) and the host through sysinfo (`telemetry::host`) every
//!   interval the coordinator asks for. Without an NVIDIA driver it says so once and reports
//!   host capacity only.
//! - `calibrate`: at start-up, runs the backend's real MSM and NTT on random data (checked
//!   against arkworks) and reports their throughput as a `Calibration`.
//! - `prover`: [`Prover`], the backend chosen once ([`ProverBackendImpl`]: CUDA or CPU) with
//!   prepared keys resident.
//! - `backoff`: reconnect delays, exponential with full jitter; pure (caller passes `now`
//!   and the random source).
//! - `key_cache`: [`KeyCache`], proving keys on disk, content-addressed by SHA-256, verified
//!   on every read, written atomically, bounded with least-recently-used eviction.
//! - `config`: [`AgentConfig`], the agent's configuration file.
//! - `metrics`: `/metrics` ([`serve_metrics`]) with GPU telemetry under DCGM exporter names.
//! - `intake`: the pure decisions about tasks: `can_prove` (one answer for new offers and
//!   resumed tasks), which offers are taken, which tasks prove now (one per slot) and which
//!   wait; callers pass `now`.
//! - `client`: [`run`], the QUIC connection to the coordinator (reconnects with `backoff`),
//!   the control stream, and the decisions of `intake` applied.
//! - `identity_files`: [`IdentityFiles`], the certificate and key, read again before every
//!   attempt (a renewal is picked up without a restart); `shut_out`: what the agent says and
//!   waits when the coordinator revokes it or holds it off as a duplicate.
//! - `worker`: one taken task: its slot, key, witness, proof, self-check and delivery across
//!   reconnects.
//!
//! Architecture invariant: the building blocks above `config`, and `intake`, do no network
//! I/O; only `client` and `worker` talk to the coordinator. Nothing panics on a box without a
//! GPU or driver.

mod backoff;
mod calibrate;
mod client;
mod config;
mod identity_files;
mod intake;
mod key_cache;
mod metrics;
mod prover;
mod shut_out;
mod telemetry;
mod worker;

pub use backoff::BackoffLimits;
pub use client::{run, AgentError, AgentSettings, ConnectionSettings};
pub use config::{AgentConfig, AgentConfigError, AgentTls, BackendChoice};
pub use identity_files::IdentityFiles;
pub use key_cache::{KeyCache, KeyCacheError, KeyCacheLimits};
pub use metrics::{serve as serve_metrics, AgentMetrics, MetricsConfig, MetricsServer};
pub use prover::{BackendSelectError, Prover, ProverBackendImpl};
pub use telemetry::TelemetryCollector;

/// Captures tracing events in tests, to check what is logged and how often.
#[cfg(test)]
pub(crate) mod test_log {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<(Level, String)>>>);

    struct Fields(String);
    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, "{}={:?} ", field.name(), value);
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), fields.0));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    /// Runs `f` with a subscriber on this thread; returns its result and every event
    /// (level, `name=value` fields) logged meanwhile.
    pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<(Level, String)>) {
        let capture = Capture::default();
        let result = tracing::subscriber::with_default(capture.clone(), f);
        let events = capture.0.lock().unwrap().clone();
        (result, events)
    }
}
