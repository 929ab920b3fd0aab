//! Device memory layouts (kernels/cuda/field.cuh, curve.cuh) and their arkworks equivalents.
//!
//! - Fq, Fr: 8 little-endian u32 words of the Montgomery form, R = 2^256: the same bytes as
//!   arkworks' `Fp256` (`[u64; 4]` little-endian Montgomery), so scalars are uploaded as-is.
//! - Fq2: c0 then c1.
//! - Affine point: x then y; the point at infinity is x = y = 0 (never on these curves).
//! - XYZZ point: X, Y, ZZ, ZZZ; infinity has ZZ = 0.

use ark_bn254::{Fq, Fq2};
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ec::AffineRepr;
use ark_ff::{BigInt, Field, Zero};
use rayon::prelude::*;

/// A base field whose elements cross to the device as u32 words.
pub(crate) trait DeviceField: Field {
    const WORDS: usize;
    fn write_words(&self, out: &mut [u32]);
    fn read_words(words: &[u32]) -> Self;
}

fn fp_write(f: &Fq, out: &mut [u32]) {
    for (i, limb) in f.0 .0.iter().enumerate() {
        out[2 * i] = *limb as u32;
        out[2 * i + 1] = (*limb >> 32) as u32;
    }
}

fn fp_read(words: &[u32]) -> Fq {
    let mut limbs = [0u64; 4];
    for (i, l) in limbs.iter_mut().enumerate() {
        *l = u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
    }
    Fq::new_unchecked(BigInt(limbs))
}

impl DeviceField for Fq {
    const WORDS: usize = 8;
    fn write_words(&self, out: &mut [u32]) {
        fp_write(self, out)
    }
    fn read_words(words: &[u32]) -> Fq {
        fp_read(words)
    }
}

impl DeviceField for Fq2 {
    const WORDS: usize = 16;
    fn write_words(&self, out: &mut [u32]) {
        fp_write(&self.c0, &mut out[..8]);
        fp_write(&self.c1, &mut out[8..16]);
    }
    fn read_words(words: &[u32]) -> Fq2 {
        Fq2::new(fp_read(&words[..8]), fp_read(&words[8..16]))
    }
}

/// A curve the MSM kernels are instantiated for (kernel names end in `_<SUFFIX>`).
pub(crate) trait DeviceCurve: 'static + Send + Sync {
    type Base: DeviceField;
    type Config: SWCurveConfig<BaseField = Self::Base>;
    const SUFFIX: &'static str;
    const AFFINE_WORDS: usize = 2 * Self::Base::WORDS;
    const XYZZ_WORDS: usize = 4 * Self::Base::WORDS;
    const AFFINE_BYTES: usize = 4 * Self::AFFINE_WORDS;
    const XYZZ_BYTES: usize = 4 * Self::XYZZ_WORDS;
}

pub(crate) struct G1;
pub(crate) struct G2;

impl DeviceCurve for G1 {
    type Base = Fq;
    type Config = ark_bn254::g1::Config;
    const SUFFIX: &'static str = "g1";
}

impl DeviceCurve for G2 {
    type Base = Fq2;
    type Config = ark_bn254::g2::Config;
    const SUFFIX: &'static str = "g2";
}

/// Points below this count are converted on the calling thread.
const PARALLEL_CONVERSION_MIN: usize = 1 << 14;

/// Device words of affine points (infinity as x = y = 0).
pub(crate) fn affine_to_words<C: DeviceCurve>(points: &[Affine<C::Config>]) -> Vec<u32> {
    let w = C::AFFINE_WORDS;
    let half = C::Base::WORDS;
    let mut out = vec![0u32; points.len() * w];
    let convert = |(p, o): (&Affine<C::Config>, &mut [u32])| {
        if !p.is_zero() {
            p.x.write_words(&mut o[..half]);
            p.y.write_words(&mut o[half..]);
        }
    };
    if points.len() < PARALLEL_CONVERSION_MIN {
        points.iter().zip(out.chunks_mut(w)).for_each(convert);
    } else {
        points
            .par_iter()
            .zip(out.par_chunks_mut(w))
            .for_each(convert);
    }
    out
}

/// An affine point from device words.
#[cfg(test)]
pub(crate) fn affine_from_words<C: DeviceCurve>(words: &[u32]) -> Affine<C::Config> {
    let half = C::Base::WORDS;
    let x = C::Base::read_words(&words[..half]);
    let y = C::Base::read_words(&words[half..2 * half]);
    if x.is_zero() && y.is_zero() {
        Affine::identity()
    } else {
        Affine::new_unchecked(x, y)
    }
}

/// Device words of an XYZZ point (tests).
#[cfg(test)]
pub(crate) fn xyzz_words_from_jacobian<C: DeviceCurve>(p: &Projective<C::Config>) -> Vec<u32> {
    // Jacobian (X, Y, Z) is XYZZ (X, Y, Z^2, Z^3)
    let n = C::Base::WORDS;
    let mut out = vec![0u32; 4 * n];
    if p.z.is_zero() {
        return out;
    }
    let zz = p.z.square();
    let zzz = zz * p.z;
    p.x.write_words(&mut out[..n]);
    p.y.write_words(&mut out[n..2 * n]);
    zz.write_words(&mut out[2 * n..3 * n]);
    zzz.write_words(&mut out[3 * n..]);
    out
}

/// An XYZZ point from device words, as arkworks' Jacobian point: with x = X/ZZ, y = Y/ZZZ,
/// take Z = ZZ*ZZZ, then X' = X*ZZ*ZZZ^2 and Y' = Y*ZZ^3*ZZZ^2 (no inversion).
pub(crate) fn xyzz_to_projective<C: DeviceCurve>(words: &[u32]) -> Projective<C::Config> {
    let n = C::Base::WORDS;
    let x = C::Base::read_words(&words[..n]);
    let y = C::Base::read_words(&words[n..2 * n]);
    let zz = C::Base::read_words(&words[2 * n..3 * n]);
    let zzz = C::Base::read_words(&words[3 * n..4 * n]);
    if zz.is_zero() {
        return Projective::zero();
    }
    let zzz2 = zzz.square();
    let z = zz * zzz;
    Projective::new_unchecked(x * zz * zzz2, y * zz.square() * zz * zzz2, z)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::{G1Affine, G1Projective, G2Projective};
    use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
    use ark_ff::UniformRand;

    #[test]
    fn ark_field_bytes_are_the_device_words() {
        // The device layout is arkworks' Montgomery limbs split into u32 halves.
        let mut rng = ark_std::test_rng();
        for _ in 0..32 {
            let f = Fq::rand(&mut rng);
            let mut w = [0u32; 8];
            f.write_words(&mut w);
            assert_eq!(Fq::read_words(&w), f);
            let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
            let limbs: Vec<u8> = f.0 .0.iter().flat_map(|x| x.to_le_bytes()).collect();
            assert_eq!(bytes, limbs);
        }
        // 1 in Montgomery form is R mod p (field.cuh BN254_FQ_ONE)
        let mut w = [0u32; 8];
        Fq::ONE.write_words(&mut w);
        assert_eq!(w[0], 0xc58f0d9d);
        assert_eq!(w[7], 0x0e0a77c1);
    }

    #[test]
    fn xyzz_round_trips_through_projective() {
        let mut rng = ark_std::test_rng();
        for _ in 0..8 {
            let p = G1Projective::rand(&mut rng);
            let w = xyzz_words_from_jacobian::<G1>(&p);
            assert_eq!(xyzz_to_projective::<G1>(&w), p);
            let q = G2Projective::rand(&mut rng);
            let w = xyzz_words_from_jacobian::<G2>(&q);
            assert_eq!(xyzz_to_projective::<G2>(&w), q);
        }
        assert!(xyzz_to_projective::<G1>(&[0u32; 32]).is_zero());
        let g = G1Affine::generator();
        let w = affine_to_words::<G1>(&[g, G1Affine::identity()]);
        assert_eq!(affine_from_words::<G1>(&w[..16]), g);
        assert!(w[16..].iter().all(|&x| x == 0));
        assert_eq!(affine_from_words::<G1>(&w[16..]), G1Affine::identity());
        assert_eq!(G1Projective::generator().into_affine(), g);
    }
}
