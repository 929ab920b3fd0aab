//! Fr as it crosses the wire: 32 bytes, little-endian, canonical (below r). Parsing refuses
//! non-canonical encodings, since the bytes come from other machines.

use crate::curve::Fr;
use ark_ff::{BigInteger, PrimeField};

/// Canonical little-endian bytes of `f`.
pub fn fr_to_le_bytes(f: &Fr) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&f.into_bigint().to_bytes_le());
    out
}

/// Parses canonical little-endian bytes; `None` for a value ≥ r.
pub fn fr_from_le_bytes(bytes: &[u8; 32]) -> Option<Fr> {
    let f = Fr::from_le_bytes_mod_order(bytes);
    (fr_to_le_bytes(&f) == *bytes).then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{Field, UniformRand};

    #[test]
    fn round_trips_and_refuses_values_at_or_above_r() {
        let mut rng = ark_std::test_rng();
        for _ in 0..100 {
            let f = Fr::rand(&mut rng);
            assert_eq!(fr_from_le_bytes(&fr_to_le_bytes(&f)), Some(f));
        }
        let minus_one = -Fr::ONE;
        let mut r = fr_to_le_bytes(&minus_one);
        assert_eq!(fr_from_le_bytes(&r), Some(minus_one));
        r[0] += 1; // r itself
        assert_eq!(fr_from_le_bytes(&r), None);
        assert_eq!(fr_from_le_bytes(&[0xff; 32]), None);
    }
}
