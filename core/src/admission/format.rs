//! Human-readable quantities for rejection messages: `3.2 GiB`, `41 s`, `350 ms`.
//! Integer arithmetic only (rounded down), so messages are deterministic.

const KIB: u128 = 1 << 10;
const MIB: u128 = 1 << 20;
const GIB: u128 = 1 << 30;

/// Bytes with a binary unit and one decimal, e.g. `3.2 GiB`.
pub fn bytes(n: u64) -> String {
    let n = n as u128;
    for (unit, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if n >= unit {
            let tenths = n * 10 / unit;
            return format!("{}.{} {name}", tenths / 10, tenths % 10);
        }
    }
    format!("{n} B")
}

/// A duration as every message says one (`350 ms`, `2.5 s`, `41 s`, `4 m 12 s`): the common
/// helper, so admission's reasons read like the rest.
pub fn millis(ms: u64) -> String {
    proofrack_common::timefmt::span_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes_and_durations() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3_435_973_836), "3.1 GiB");
        assert_eq!(bytes(u64::MAX), "17179869183.9 GiB");
        assert_eq!(millis(350), "350 ms");
        assert_eq!(millis(2_549), "2.5 s");
        assert_eq!(millis(41_900), "41 s");
        assert_eq!(millis(252_000), "4 m 12 s");
    }
}
