//! Stake amounts. Integers in base units, never floats.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of stake in base units. Arithmetic is explicit and checked: callers use
/// `checked_*` / `saturating_sub` and decide what an overflow means at their boundary.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct StakeUnits(pub u128);

impl StakeUnits {
    pub const ZERO: StakeUnits = StakeUnits(0);

    pub const fn new(units: u128) -> Self {
        StakeUnits(units)
    }
    pub const fn get(self) -> u128 {
        self.0
    }
    pub fn checked_add(self, other: StakeUnits) -> Option<StakeUnits> {
        self.0.checked_add(other.0).map(StakeUnits)
    }
    pub fn checked_sub(self, other: StakeUnits) -> Option<StakeUnits> {
        self.0.checked_sub(other.0).map(StakeUnits)
    }
    pub fn saturating_sub(self, other: StakeUnits) -> StakeUnits {
        StakeUnits(self.0.saturating_sub(other.0))
    }
    /// `self · bps / 10_000`, rounded down. `bps` is at most 10_000.
    pub fn mul_bps(self, bps: u16) -> StakeUnits {
        assert!(bps <= 10_000, "basis points above 10000: {bps}");
        // self.0 * bps cannot overflow for amounts below u128::MAX / 10_000; split to be safe.
        let q = self.0 / 10_000;
        let r = self.0 % 10_000;
        StakeUnits(q * bps as u128 + r * bps as u128 / 10_000)
    }
}

impl fmt::Display for StakeUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for StakeUnits {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .replace('_', "")
            .parse::<u128>()
            .map(StakeUnits)
            .map_err(|e| {
                format!("stake amount {s:?} is not a non-negative integer of base units: {e}")
            })
    }
}

/// `#[serde(with = "proofrack_common::decimal_serde")]` on a [`StakeUnits`] field of a
/// JSON output type: a decimal string (JSON numbers lose precision above 2^53 in most
/// readers); read from a string or a number.
pub mod decimal_serde {
    use super::StakeUnits;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &StakeUnits, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.0.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<StakeUnits, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::Number(n) => Ok(StakeUnits(u128::from(n))),
        }
    }
}

/// [`decimal_serde`] for `Option<StakeUnits>`.
pub mod decimal_option_serde {
    use super::StakeUnits;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<StakeUnits>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&v.0.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<StakeUnits>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_bps_rounds_down_and_never_overflows() {
        assert_eq!(StakeUnits(100).mul_bps(2_500), StakeUnits(25));
        assert_eq!(StakeUnits(3).mul_bps(5_000), StakeUnits(1));
        assert_eq!(StakeUnits(u128::MAX).mul_bps(10_000), StakeUnits(u128::MAX));
        assert_eq!(StakeUnits(7).mul_bps(0), StakeUnits(0));
    }

    #[test]
    fn parses_underscored_integers_and_refuses_decimals() {
        assert_eq!("1_000".parse::<StakeUnits>().unwrap(), StakeUnits(1000));
        assert!("1.5".parse::<StakeUnits>().is_err());
        assert!("-3".parse::<StakeUnits>().is_err());
    }
}
