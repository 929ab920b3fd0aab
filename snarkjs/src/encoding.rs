//! The number encodings snarkjs uses, each in one place:
//! - point coordinates (Fq) in binary files: 32-byte LE **Montgomery form**; G1 = x‖y,
//!   G2 = x.c0‖x.c1‖y.c0‖y.c1; the point at infinity is all-zero bytes;
//! - zkey coefficients: 32-byte LE integers `c·R² mod r` (R = 2²⁵⁶);
//! - witness values: 32-byte LE canonical integers;
//! - JSON: decimal strings of canonical integers.

use ark_ec::AffineRepr;
use ark_ff::{BigInt, BigInteger, Field, PrimeField};
use proofrack_kernels::curve::{Fq, Fq2, Fr, G1Affine, G2Affine};
use proofrack_kernels::groth16::points::check_point;
use proofrack_kernels::groth16::PointCheck;

pub const FQ_BYTES: usize = 32;
pub const G1_BYTES: usize = 64;
pub const G2_BYTES: usize = 128;

fn bigint(bytes: &[u8]) -> BigInt<4> {
    let mut limbs = [0u64; 4];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
        *limb = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    BigInt::new(limbs)
}

/// Fq from 32 Montgomery-form bytes; `None` when the integer is not below q.
pub fn fq_from_montgomery(bytes: &[u8]) -> Option<Fq> {
    let x = bigint(bytes);
    (x < Fq::MODULUS).then(|| Fq::new_unchecked(x))
}

pub fn fq_to_montgomery(f: &Fq, out: &mut Vec<u8>) {
    out.extend_from_slice(&f.0.to_bytes_le());
}

/// How much to check each point read from a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// On the curve (for G1 on BN254, cofactor 1, that is the whole check).
    OnCurve,
    /// On the curve and in the prime-order subgroup (matters for G2; slower).
    Subgroup,
}

impl Check {
    /// The same checks in the kernels' terms, for the shared point decoder.
    pub fn point_check(self) -> PointCheck {
        match self {
            Check::OnCurve => PointCheck::OnCurve,
            Check::Subgroup => PointCheck::Full,
        }
    }
}

/// G1 coordinates from 64 bytes, unchecked; all-zero is the point at infinity.
pub fn g1_coords(bytes: &[u8]) -> Result<G1Affine, &'static str> {
    if bytes.iter().all(|&b| b == 0) {
        return Ok(G1Affine::zero());
    }
    let x = fq_from_montgomery(&bytes[..32]).ok_or("x is not below q")?;
    let y = fq_from_montgomery(&bytes[32..64]).ok_or("y is not below q")?;
    Ok(G1Affine::new_unchecked(x, y))
}

/// G2 coordinates from 128 bytes, unchecked; all-zero is the point at infinity.
pub fn g2_coords(bytes: &[u8]) -> Result<G2Affine, &'static str> {
    if bytes.iter().all(|&b| b == 0) {
        return Ok(G2Affine::zero());
    }
    let c = |i: usize| {
        fq_from_montgomery(&bytes[32 * i..32 * (i + 1)]).ok_or("a coordinate is not below q")
    };
    Ok(G2Affine::new_unchecked(
        Fq2::new(c(0)?, c(1)?),
        Fq2::new(c(2)?, c(3)?),
    ))
}

/// G1 from 64 bytes, on the curve; all-zero is the point at infinity.
pub fn g1_from_bytes(bytes: &[u8]) -> Result<G1Affine, &'static str> {
    let p = g1_coords(bytes)?;
    check_point(&p, PointCheck::OnCurve)?;
    Ok(p)
}

/// G2 from 128 bytes, checked as `check` says; all-zero is the point at infinity.
pub fn g2_from_bytes(bytes: &[u8], check: Check) -> Result<G2Affine, &'static str> {
    let p = g2_coords(bytes)?;
    check_point(&p, check.point_check())?;
    Ok(p)
}

pub fn g1_to_bytes(p: &G1Affine, out: &mut Vec<u8>) {
    match p.xy() {
        None => out.extend_from_slice(&[0u8; G1_BYTES]),
        Some((x, y)) => {
            fq_to_montgomery(&x, out);
            fq_to_montgomery(&y, out);
        }
    }
}

pub fn g2_to_bytes(p: &G2Affine, out: &mut Vec<u8>) {
    match p.xy() {
        None => out.extend_from_slice(&[0u8; G2_BYTES]),
        Some((x, y)) => {
            for f in [x.c0, x.c1, y.c0, y.c1] {
                fq_to_montgomery(&f, out);
            }
        }
    }
}

/// R = 2²⁵⁶ mod r as a field element.
fn r_mont() -> Fr {
    Fr::from(2u64).pow([256u64])
}

/// A zkey coefficient: the stored integer is `c·R² mod r`; `None` when it is not below r.
pub fn coef_from_bytes(bytes: &[u8]) -> Option<Fr> {
    coef_from_bytes_with(bytes, coef_decoder())
}

/// [`coef_from_bytes`] with the constant from [`coef_decoder`] computed once by the caller.
pub fn coef_from_bytes_with(bytes: &[u8], decoder: Fr) -> Option<Fr> {
    let x = bigint(bytes);
    // new_unchecked(x) has the value x·R⁻¹ = c·R; one more division by R gives c.
    (x < Fr::MODULUS).then(|| Fr::new_unchecked(x) * decoder)
}

/// R⁻¹, the second division that [`coef_from_bytes_with`] needs.
pub fn coef_decoder() -> Fr {
    r_mont().inverse().expect("R ≠ 0")
}

/// The stored form of a coefficient: the Montgomery limbs of `c·R` are `c·R²`.
pub fn coef_to_bytes(c: &Fr, out: &mut Vec<u8>) {
    out.extend_from_slice(&(*c * r_mont()).0.to_bytes_le());
}

/// A canonical little-endian scalar (witness values); `None` when not below r.
pub fn fr_from_le(bytes: &[u8]) -> Option<Fr> {
    Fr::from_bigint(bigint(bytes))
}

pub fn fr_to_le(f: &Fr, out: &mut Vec<u8>) {
    out.extend_from_slice(&f.into_bigint().to_bytes_le());
}

/// Parses a decimal string of a canonical element of `F` (no sign, no leading `+`, below
/// the modulus). `None` otherwise: snarkjs would reduce or reject such values silently.
pub fn field_from_decimal<F: PrimeField<BigInt = BigInt<4>>>(s: &str) -> Option<F> {
    if s.is_empty() || s.len() > 80 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut limbs = [0u64; 4];
    for d in s.bytes() {
        let mut carry = (d - b'0') as u128;
        for limb in limbs.iter_mut() {
            let v = (*limb as u128) * 10 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry != 0 {
            return None;
        }
    }
    F::from_bigint(BigInt::new(limbs))
}

/// The raw little-endian bytes of a modulus-sized integer as a decimal string (for errors).
pub fn le_bytes_to_decimal(bytes: &[u8]) -> String {
    // repeated division by 10 over base-2^32 digits; only for short header values
    let mut digits: Vec<u32> = bytes
        .chunks(4)
        .map(|c| {
            let mut b = [0u8; 4];
            b[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(b)
        })
        .collect();
    let mut out = Vec::new();
    while digits.iter().any(|&d| d != 0) {
        let mut rem = 0u64;
        for d in digits.iter_mut().rev() {
            let v = (rem << 32) | *d as u64;
            *d = (v / 10) as u32;
            rem = v % 10;
        }
        out.push(b'0' + rem as u8);
    }
    if out.is_empty() {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).expect("digits")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::{AffineRepr, CurveGroup};
    use ark_std::{rand::rngs::StdRng, rand::SeedableRng, UniformRand};

    #[test]
    fn points_round_trip_and_infinity_is_zero_bytes() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..10 {
            let p = (G1Affine::generator() * Fr::rand(&mut rng)).into_affine();
            let q = (G2Affine::generator() * Fr::rand(&mut rng)).into_affine();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            g1_to_bytes(&p, &mut a);
            g2_to_bytes(&q, &mut b);
            assert_eq!(g1_from_bytes(&a), Ok(p));
            assert_eq!(g2_from_bytes(&b, Check::Subgroup), Ok(q));
        }
        let mut z = Vec::new();
        g1_to_bytes(&G1Affine::zero(), &mut z);
        assert_eq!(z, vec![0u8; 64]);
        assert_eq!(g1_from_bytes(&z), Ok(G1Affine::zero()));
        let mut bad = vec![0u8; 64];
        bad[0] = 1;
        assert_eq!(g1_from_bytes(&bad), Err("not on the curve"));
        assert!(g1_from_bytes(&[0xff; 64]).is_err());
    }

    #[test]
    fn montgomery_form_of_one_is_r_mod_q() {
        let mut out = Vec::new();
        fq_to_montgomery(&Fq::from(1u64), &mut out);
        assert_eq!(bigint(&out), Fq::R);
    }

    #[test]
    fn coefficients_are_scaled_by_r_squared() {
        // the stored integer for c = 1 is R² mod r
        let mut out = Vec::new();
        coef_to_bytes(&Fr::from(1u64), &mut out);
        assert_eq!(bigint(&out), Fr::R2);
        let mut rng = StdRng::seed_from_u64(6);
        for _ in 0..20 {
            let c = Fr::rand(&mut rng);
            let mut b = Vec::new();
            coef_to_bytes(&c, &mut b);
            assert_eq!(coef_from_bytes(&b), Some(c));
        }
    }

    #[test]
    fn decimals_are_canonical_only() {
        let m = Fr::MODULUS.to_string();
        let m1 = (-Fr::from(1u64)).to_string();
        assert_eq!(field_from_decimal::<Fr>(&m1), Some(-Fr::from(1u64)));
        assert_eq!(field_from_decimal::<Fr>(&m), None);
        assert_eq!(field_from_decimal::<Fr>("33"), Some(Fr::from(33u64)));
        assert_eq!(field_from_decimal::<Fr>("-1"), None);
        assert_eq!(field_from_decimal::<Fr>(""), None);
        assert_eq!(field_from_decimal::<Fr>(&"9".repeat(78)), None);
        assert_eq!(le_bytes_to_decimal(&Fr::MODULUS.to_bytes_le()), m);
        assert_eq!(Fr::from(33u64).to_string(), "33");
    }
}
