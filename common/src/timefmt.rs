//! Times for people and programs: the one place that turns a [`UnixMillis`] or a duration
//! into text. Tables and messages say when something happens both ways ("in 4 m 12 s, at
//! 2026-12-03 10:14:05 UTC"); JSON carries RFC 3339 (`2026-12-03T10:14:05.337Z`). Nothing
//! shown to a person is a raw count of epoch milliseconds.
//!
//! Pure functions of their arguments: callers pass `now` (from their injected clock).

use crate::time::UnixMillis;
use std::time::Duration;

/// Calendar date and time of day, UTC, of an instant (proleptic Gregorian; Howard Hinnant's
/// `civil_from_days`, exact for every `u64` millisecond count below year 584,556,019).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcParts {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

pub fn utc_parts(t: UnixMillis) -> UtcParts {
    let millis = (t.0 % 1000) as u32;
    let secs = t.0 / 1000;
    let days = (secs / 86_400) as i64;
    let rem = (secs % 86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    UtcParts {
        year,
        month,
        day,
        hour: rem / 3_600,
        minute: rem % 3_600 / 60,
        second: rem % 60,
        millis,
    }
}

/// `2026-12-03T10:14:05.337Z`: RFC 3339, UTC, millisecond precision (JSON output).
pub fn rfc3339(t: UnixMillis) -> String {
    let p = utc_parts(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.millis
    )
}

/// Reads what [`rfc3339`] writes (and the same without fraction, or with up to 9 fraction
/// digits, and with a `+00:00` offset); other offsets are refused rather than guessed.
pub fn parse_rfc3339(s: &str) -> Result<UnixMillis, String> {
    let bad = || format!("{s:?} is not an RFC 3339 UTC time such as 2026-12-03T10:14:05.337Z");
    let body = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .ok_or_else(bad)?;
    let (date, time) = body.split_once('T').ok_or_else(bad)?;
    let num = |x: &str| x.parse::<u64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let (clock, fraction) = match time.split_once('.') {
        Some((c, f)) => (c, f),
        None => (time, ""),
    };
    let c: Vec<&str> = clock.split(':').collect();
    if d.len() != 3 || c.len() != 3 || fraction.len() > 9 {
        return Err(bad());
    }
    let (year, month, day) = (num(d[0])?, num(d[1])?, num(d[2])?);
    let (hour, minute, second) = (num(c[0])?, num(c[1])?, num(c[2])?);
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad());
    }
    let millis = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
        num(&digits)?
    };
    // days_from_civil, the inverse of utc_parts.
    let y = year as i64 - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t =
        UnixMillis((days as u64 * 86_400 + hour * 3_600 + minute * 60 + second) * 1_000 + millis);
    // A day past the month's end (Feb 30) would land in the next month: refuse it.
    let back = utc_parts(t);
    if back.day as u64 != day || back.month as u64 != month {
        return Err(bad());
    }
    Ok(t)
}

/// `2026-12-03 10:14:05 UTC`: the absolute form in tables and messages.
pub fn utc(t: UnixMillis) -> String {
    let p = utc_parts(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        p.year, p.month, p.day, p.hour, p.minute, p.second
    )
}

/// A span for people: `250 ms`, `1.3 s`, `4 m 12 s`, `2 h 5 m`, `3 d 4 h`. Two units at
/// most: the reader wants the size, not the last millisecond.
pub fn span(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    if ms < 10_000 {
        // One decimal below ten seconds, where tenths still matter (due times, proofs).
        let tenths = ms % 1_000 / 100;
        return if tenths == 0 {
            format!("{} s", ms / 1_000)
        } else {
            format!("{}.{tenths} s", ms / 1_000)
        };
    }
    let s = ms / 1_000;
    if s < 60 {
        return format!("{s} s");
    }
    let (m, s) = (s / 60, s % 60);
    if m < 60 {
        return if s == 0 {
            format!("{m} m")
        } else {
            format!("{m} m {s} s")
        };
    }
    let (h, m) = (m / 60, m % 60);
    if h < 24 {
        return if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m} m")
        };
    }
    let (days, h) = (h / 24, h % 24);
    if h == 0 {
        format!("{days} d")
    } else {
        format!("{days} d {h} h")
    }
}

/// [`span`] of a millisecond count.
pub fn span_ms(ms: u64) -> String {
    span(Duration::from_millis(ms))
}

/// `in 4 m 12 s`, `4 m 12 s ago` or `now`: `t` seen from `now`.
pub fn relative(t: UnixMillis, now: UnixMillis) -> String {
    if t == now {
        "now".to_string()
    } else if t > now {
        format!("in {}", span(t.saturating_since(now)))
    } else {
        format!("{} ago", span(now.saturating_since(t)))
    }
}

/// `in 4 m 12 s, at 2026-12-03 10:14:05 UTC` (or `4 m 12 s ago, at …`): both forms, as
/// tables and messages show a time.
pub fn when(t: UnixMillis, now: UnixMillis) -> String {
    format!("{}, at {}", relative(t, now), utc(t))
}

/// `2026-12-03 10:14:05 UTC, 30 s after submission`: a time kept in a message that is read
/// later, relative to a fixed moment of the same record (`anchor`), so the text does not go
/// stale the way "in 30 s" would.
pub fn after(t: UnixMillis, anchor: UnixMillis, anchor_name: &str) -> String {
    if t >= anchor {
        format!(
            "{}, {} after {anchor_name}",
            utc(t),
            span(t.saturating_since(anchor))
        )
    } else {
        format!(
            "{}, {} before {anchor_name}",
            utc(t),
            span(anchor.saturating_since(t))
        )
    }
}

/// `#[serde(with = "proofrack_common::timefmt::rfc3339_serde")]` on a [`UnixMillis`] field of
/// a JSON output type: written as RFC 3339, read from RFC 3339 or a number of milliseconds.
pub mod rfc3339_serde {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &UnixMillis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UnixMillis, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Millis(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => parse_rfc3339(&s).map_err(serde::de::Error::custom),
            Raw::Millis(ms) => Ok(UnixMillis(ms)),
        }
    }
}

/// [`rfc3339_serde`] for `Option<UnixMillis>` (`null` when absent).
pub mod rfc3339_option_serde {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<UnixMillis>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<UnixMillis>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| parse_rfc3339(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_dates_are_right() {
        assert_eq!(rfc3339(UnixMillis(0)), "1970-01-01T00:00:00.000Z");
        // 2026-12-03 10:14:05.337 UTC
        let t = UnixMillis(1_796_292_845_337);
        assert_eq!(rfc3339(t), "2026-12-03T10:14:05.337Z");
        assert_eq!(utc(t), "2026-12-03 10:14:05 UTC");
        // a leap day and the turn of a century
        assert_eq!(
            rfc3339(UnixMillis(951_782_400_000)),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339(UnixMillis(4_107_542_399_999)),
            "2100-02-28T23:59:59.999Z"
        );
    }

    #[test]
    fn rfc3339_round_trips_and_refuses_nonsense() {
        for ms in [
            0u64,
            1,
            999,
            951_782_400_000,
            1_796_292_845_337,
            4_107_542_399_999,
        ] {
            assert_eq!(
                parse_rfc3339(&rfc3339(UnixMillis(ms))).unwrap(),
                UnixMillis(ms)
            );
        }
        assert_eq!(
            parse_rfc3339("2026-12-03T10:14:05Z").unwrap(),
            UnixMillis(1_796_292_845_000)
        );
        assert_eq!(
            parse_rfc3339("2026-12-03T10:14:05.3+00:00").unwrap(),
            UnixMillis(1_796_292_845_300)
        );
        for bad in [
            "2026-12-03 10:14:05Z",
            "2026-02-30T00:00:00Z",
            "2026-12-03T10:14:05+01:00",
            "1796292845337",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spans_read_well() {
        assert_eq!(span_ms(0), "0 ms");
        assert_eq!(span_ms(250), "250 ms");
        assert_eq!(span_ms(1_349), "1.3 s");
        assert_eq!(span_ms(3_000), "3 s");
        assert_eq!(span_ms(3_050), "3 s");
        assert_eq!(span_ms(30_000), "30 s");
        assert_eq!(span_ms(252_000), "4 m 12 s");
        assert_eq!(span_ms(600_000), "10 m");
        assert_eq!(span_ms(7_500_000), "2 h 5 m");
        assert_eq!(span_ms(86_400_000), "1 d");
        assert_eq!(span_ms(273_600_000), "3 d 4 h");
    }

    #[test]
    fn relative_and_absolute_together() {
        let now = UnixMillis(1_796_292_593_337);
        let t = UnixMillis(1_796_292_845_337);
        assert_eq!(when(t, now), "in 4 m 12 s, at 2026-12-03 10:14:05 UTC");
        assert_eq!(relative(now, t), "4 m 12 s ago");
        assert_eq!(relative(t, t), "now");
        assert_eq!(
            after(t, now, "submission"),
            "2026-12-03 10:14:05 UTC, 4 m 12 s after submission"
        );
    }

    #[test]
    fn json_helpers_write_rfc3339_and_read_both_forms() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(with = "rfc3339_serde")]
            at: UnixMillis,
            #[serde(with = "rfc3339_option_serde")]
            due: Option<UnixMillis>,
        }
        let v = T {
            at: UnixMillis(1_796_292_845_337),
            due: None,
        };
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"{"at":"2026-12-03T10:14:05.337Z","due":null}"#);
        assert_eq!(serde_json::from_str::<T>(&text).unwrap(), v);
        let from_number: T = serde_json::from_str(r#"{"at":1796292845337,"due":null}"#).unwrap();
        assert_eq!(from_number, v);
    }
}
