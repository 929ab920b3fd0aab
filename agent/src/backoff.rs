//! Reconnect backoff: exponential with full jitter ("Exponential Backoff and Jitter", AWS
//! Architecture Blog, 2015): the n-th retry waits a uniformly random time in
//! `[0, min(cap, base·2^n)]`, so a rack of agents that lost the coordinator at the same
//! moment does not reconnect in lock-step.
//!
//! Pure: no clock, no sleeping; the caller passes `now` and the random source and sleeps
//! for the returned delay. The attempt count resets once a connection has stayed up for
//! [`HEALTHY_CONNECTION_MS`], so one drop after a long healthy session retries quickly while
//! a connection that flaps keeps backing off.

use proofrack_common::UnixMillis;
use rand::RngCore;
use std::time::Duration;

/// First retry ceiling: long enough not to spin on a refused connection, short enough that a
/// coordinator restart costs the rack well under a second.
pub const RECONNECT_BASE_MS: u64 = 200;
/// Largest ceiling: a coordinator down for a long time sees each agent about twice a minute
/// at most, and an agent notices its return within 30 s.
pub const RECONNECT_CAP_MS: u64 = 30_000;
/// A connection up this long counts as healthy: its loss starts the backoff from the base
/// again. Twelve telemetry intervals, so a session that exchanged reports is well past the
/// handshake and a flapping link (drops within a minute) does not reset.
pub const HEALTHY_CONNECTION_MS: u64 = 60_000;

const _: () = assert!(0 < RECONNECT_BASE_MS && RECONNECT_BASE_MS <= RECONNECT_CAP_MS);

/// The limits of one [`Backoff`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffLimits {
    pub base_ms: u64,
    pub cap_ms: u64,
    pub healthy_after_ms: u64,
}

impl Default for BackoffLimits {
    fn default() -> Self {
        BackoffLimits {
            base_ms: RECONNECT_BASE_MS,
            cap_ms: RECONNECT_CAP_MS,
            healthy_after_ms: HEALTHY_CONNECTION_MS,
        }
    }
}

/// Backoff state for one reconnecting client.
#[derive(Clone, Debug)]
pub struct Backoff {
    limits: BackoffLimits,
    /// Failed attempts (connect failures and short-lived connections) since the last reset.
    failures: u32,
    /// When the current connection was established; `None` while disconnected.
    connected_since: Option<UnixMillis>,
}

impl Backoff {
    pub fn new(limits: BackoffLimits) -> Self {
        assert!(
            0 < limits.base_ms && limits.base_ms <= limits.cap_ms,
            "backoff limits need 0 < base ≤ cap: {limits:?}"
        );
        Backoff {
            limits,
            failures: 0,
            connected_since: None,
        }
    }

    /// Failed attempts counted since the last reset.
    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The upper bound of the next delay: `min(cap, base·2^failures)`.
    pub fn ceiling_ms(&self) -> u64 {
        // The shift stops at 63 and an overflowing product means "above any cap".
        let factor = 1u64 << self.failures.min(63);
        match self.limits.base_ms.checked_mul(factor) {
            Some(ceiling) => ceiling.min(self.limits.cap_ms),
            None => self.limits.cap_ms,
        }
    }

    /// A connection was established at `now`.
    pub fn handle_connected(&mut self, now: UnixMillis) {
        self.connected_since = Some(now);
    }

    /// The connection established earlier was lost at `now`. If it had stayed up for the
    /// healthy period, the backoff starts over from the base.
    pub fn handle_disconnected(&mut self, now: UnixMillis) {
        if let Some(since) = self.connected_since.take() {
            let up_ms = now.saturating_since(since).as_millis();
            if up_ms >= u128::from(self.limits.healthy_after_ms) {
                self.failures = 0;
            }
        }
    }

    /// The delay before the next connection attempt (after a failed attempt or a lost
    /// connection); counts one more failure. Uniform in `[0, ceiling_ms()]`.
    pub fn next_delay(&mut self, rng: &mut impl RngCore) -> Duration {
        debug_assert!(self.connected_since.is_none(), "next_delay while connected");
        let ceiling = self.ceiling_ms();
        // Full jitter: a 32-bit random fraction of the ceiling (resolution ceiling/2^32,
        // far below a millisecond), computed without overflow.
        let fraction = u128::from(rng.next_u32()) + 1;
        let delay_ms = ((u128::from(ceiling) * fraction) >> 32) as u64;
        debug_assert!(delay_ms <= ceiling);
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(delay_ms)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(BackoffLimits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert, prop_assert_eq};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// A random source that always returns the same 32 bits.
    struct Fixed(u32);
    impl RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            self.0
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.0)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(self.0 as u8)
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    fn runner() -> TestRunner {
        let seed = [7u8; 32];
        TestRunner::new_with_rng(
            Config::with_cases(256),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
        )
    }

    #[test]
    fn ceilings_double_from_base_to_cap() {
        let mut b = Backoff::default();
        let mut rng = Fixed(u32::MAX);
        let delays: Vec<u64> = (0..12)
            .map(|_| b.next_delay(&mut rng).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            vec![200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000, 30_000, 30_000]
        );
        let mut zero = Fixed(0);
        assert_eq!(Backoff::default().next_delay(&mut zero), Duration::ZERO);
    }

    #[test]
    fn delays_stay_within_bounds_and_ceilings_grow() {
        runner()
            .run(
                &(any::<u64>(), 1u64..5_000, 1u64..100_000, 1usize..200),
                |(seed, base, extra, n)| {
                    let limits = BackoffLimits {
                        base_ms: base,
                        cap_ms: base + extra,
                        healthy_after_ms: 1,
                    };
                    let mut b = Backoff::new(limits);
                    let mut rng = StdRng::seed_from_u64(seed);
                    let mut last_ceiling = 0;
                    for _ in 0..n {
                        let ceiling = b.ceiling_ms();
                        prop_assert!(ceiling >= last_ceiling, "ceiling shrank");
                        prop_assert!(base <= ceiling && ceiling <= limits.cap_ms);
                        let d = b.next_delay(&mut rng).as_millis() as u64;
                        prop_assert!(d <= ceiling, "delay {d} above ceiling {ceiling}");
                        last_ceiling = ceiling;
                    }
                    prop_assert_eq!(b.failures() as usize, n);
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn mean_delay_grows_until_the_cap() {
        // Full jitter averages half the ceiling: check the means of successive attempts
        // over many seeded runs rise towards cap/2.
        let mut rng = StdRng::seed_from_u64(42);
        let runs = 2_000u64;
        let mut means = Vec::new();
        for attempt in 0..10 {
            let mut total = 0u64;
            for _ in 0..runs {
                let mut b = Backoff {
                    failures: attempt,
                    ..Backoff::default()
                };
                total += b.next_delay(&mut rng).as_millis() as u64;
            }
            means.push(total / runs);
        }
        for w in means.windows(2).take(7) {
            assert!(w[1] > w[0], "{means:?}");
        }
        let half_cap = RECONNECT_CAP_MS / 2;
        assert!(means[9].abs_diff(half_cap) < half_cap / 10, "{means:?}");
    }

    #[test]
    fn a_healthy_connection_resets_and_a_flapping_one_does_not() {
        let mut rng = Fixed(u32::MAX);
        let mut b = Backoff::default();
        for _ in 0..5 {
            b.next_delay(&mut rng);
        }
        assert_eq!(b.ceiling_ms(), 6_400);
        // Up for 10 s only: still backing off.
        b.handle_connected(UnixMillis(1_000));
        b.handle_disconnected(UnixMillis(11_000));
        assert_eq!(b.next_delay(&mut rng), Duration::from_millis(6_400));
        // Up for the healthy period: starts over.
        b.handle_connected(UnixMillis(20_000));
        b.handle_disconnected(UnixMillis(20_000 + HEALTHY_CONNECTION_MS));
        assert_eq!(b.failures(), 0);
        assert_eq!(
            b.next_delay(&mut rng),
            Duration::from_millis(RECONNECT_BASE_MS)
        );
        // A clock that went backwards counts as not healthy, and does not panic.
        b.handle_connected(UnixMillis(100_000));
        b.handle_disconnected(UnixMillis(50));
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn huge_failure_counts_saturate_at_the_cap() {
        let mut b = Backoff {
            failures: u32::MAX - 1,
            ..Backoff::default()
        };
        assert_eq!(b.ceiling_ms(), RECONNECT_CAP_MS);
        let mut rng = Fixed(u32::MAX);
        assert_eq!(
            b.next_delay(&mut rng),
            Duration::from_millis(RECONNECT_CAP_MS)
        );
        assert_eq!(
            b.next_delay(&mut rng),
            Duration::from_millis(RECONNECT_CAP_MS)
        );
        assert_eq!(b.failures(), u32::MAX);
    }

    #[test]
    #[should_panic(expected = "0 < base")]
    fn zero_base_is_a_programming_error() {
        Backoff::new(BackoffLimits {
            base_ms: 0,
            cap_ms: 1,
            healthy_after_ms: 1,
        });
    }
}
