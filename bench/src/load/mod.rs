//! Load generators that drive a real coordinator over real QUIC with real certificates:
//! `proofrack-bench fleet` and `coordinator` print their figures, and the end-to-end tests
//! run them at a size CI affords.
//!
//! - [`fleet`]: a fleet of protocol agents and a client submitting tasks; assignment latency,
//!   throughput and the coordinator's CPU and memory ([`fleet::run`]).
//! - `fleet_agent`: one lightweight protocol agent: hello, telemetry, accepts every offer.
//! - `submitters`: the client side: submissions as fast as they are answered, or at a fixed
//!   offered rate.
//! - [`coordinator`]: the coordinator under load, in this process or as its own
//!   `proofrack coordinator` process ([`coordinator::CoordinatorSite`]).
//! - [`echo`]: a bare quinn mutual-TLS echo, the transport's reference in the same run.
//! - [`attack`]: attacks by peers holding valid certificates (connection floods, half-open
//!   frames, large uploads, unknown drains, trickled requests), the coordinator's RSS while
//!   they run, and an honest client's latency beside them (`proofrack-bench attack` and the
//!   attacker's suite).
//! - [`proc_stats`]: CPU time and memory of processes and threads from `/proc`.
//! - `runtime`: `OwnRuntime`, a server's own named runtime inside async code.

pub mod attack;
pub mod coordinator;
pub mod echo;
pub mod fleet;
mod fleet_agent;
pub mod proc_stats;
mod runtime;
mod submitters;

use std::time::Duration;

/// The host the load's coordinator and echo server certificates name and clients dial.
pub const LOOPBACK_HOST: &str = "127.0.0.1";
/// Handshakes in flight at once while a fleet connects (a real rack's agents start staggered
/// too; thousands at once only measures the UDP receive buffer).
pub const CONNECT_CONCURRENCY: usize = 64;

/// The `p` quantile (0..=1) of sorted durations; zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let sorted: Vec<Duration> = (1..=101).map(ms).collect();
        assert_eq!(percentile(&sorted, 0.0), ms(1));
        assert_eq!(percentile(&sorted, 0.5), ms(51));
        assert_eq!(percentile(&sorted, 0.99), ms(100));
        assert_eq!(percentile(&sorted, 1.0), ms(101));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        assert_eq!(percentile(&[ms(7)], 0.99), ms(7));
    }
}
