//! Decimal strings ↔ BN254 Fr, the encoding of circuit inputs and snarkjs JSON.
//! Only canonical values are accepted: digits only, no sign, below r (a value ≥ r would be
//! silently reduced by a lenient parser and then verify as a different statement).

use ark_ff::{BigInt, PrimeField};

use crate::curve::Fr;

/// Longest accepted decimal string: r has 77 digits; leading zeros beyond that are refused
/// rather than parsed, so a hostile input cannot make us loop over megabytes.
const MAX_DIGITS: usize = 78;

/// Parses a canonical decimal integer `< r`. The error says what is wrong.
pub fn fr_from_decimal(s: &str) -> Result<Fr, String> {
    if s.is_empty() {
        return Err("empty string; expected a decimal integer".to_string());
    }
    if s.len() > MAX_DIGITS {
        return Err(format!(
            "{} characters; a field element has at most 77 digits",
            s.len()
        ));
    }
    let mut limbs = [0u64; 4];
    for ch in s.bytes() {
        if !ch.is_ascii_digit() {
            return Err(format!(
                "{:?} is not a decimal integer (digits 0-9 only, no sign)",
                s
            ));
        }
        // limbs = limbs·10 + digit, refusing overflow past 256 bits.
        let mut carry = u128::from(ch - b'0');
        for limb in limbs.iter_mut() {
            let v = u128::from(*limb) * 10 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry != 0 {
            return Err(
                "value does not fit in 256 bits; it must be below the BN254 scalar field modulus"
                    .to_string(),
            );
        }
    }
    Fr::from_bigint(BigInt::new(limbs)).ok_or_else(|| {
        "value is not below the BN254 scalar field modulus r = 21888242871839275222246405745257275088548364400416034343698204186575808495617".to_string()
    })
}

/// The canonical decimal form.
pub fn fr_to_decimal(f: &Fr) -> String {
    f.into_bigint().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{AdditiveGroup, Field, UniformRand};
    use ark_std::rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn round_trips_random_and_edge_values() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut values: Vec<Fr> = (0..200).map(|_| Fr::rand(&mut rng)).collect();
        values.extend([Fr::ZERO, Fr::ONE, -Fr::ONE]);
        for v in values {
            assert_eq!(fr_from_decimal(&fr_to_decimal(&v)).unwrap(), v);
        }
        assert_eq!(fr_from_decimal("007").unwrap(), Fr::from(7u64));
    }

    #[test]
    fn refuses_non_canonical_input() {
        let r = "21888242871839275222246405745257275088548364400416034343698204186575808495617";
        for bad in [
            "",
            "-1",
            "+1",
            "1.0",
            " 1",
            "0x10",
            r,
            &"9".repeat(78),
            &"1".repeat(100),
        ] {
            assert!(fr_from_decimal(bad).is_err(), "{bad:?}");
        }
    }
}
