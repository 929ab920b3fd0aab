//! Time as the product stores and sends it: milliseconds since the Unix epoch. Cores never
//! read a clock; the shells pass `now` in (see `Clock`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A wall-clock instant, milliseconds since 1970-01-01 UTC. Absolute, so deadlines survive
/// restarts and cross the wire unchanged.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    pub fn saturating_add(self, d: Duration) -> UnixMillis {
        UnixMillis(
            self.0
                .saturating_add(d.as_millis().min(u64::MAX as u128) as u64),
        )
    }
    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: UnixMillis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// `2026-12-03 10:14:05 UTC`: never a raw count of milliseconds in front of a person. Where
/// the reader also wants how far away it is, use [`crate::timefmt::when`].
impl fmt::Display for UnixMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::timefmt::utc(*self))
    }
}

/// The injected clock. Production uses [`SystemClock`]; tests use a manual one.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixMillis;
}

/// Reads the system's real-time clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        UnixMillis(d.as_millis() as u64)
    }
}
