//! The host build of field.cuh / fq2.cuh / curve.cuh against arkworks, and the SIMT
//! emulator against kernels whose results are known.

use super::*;
use crate::cuda::layout::{
    affine_to_words, xyzz_to_projective, xyzz_words_from_jacobian, DeviceField, G1, G2,
};
use crate::curve::{Fq, Fq2, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::short_weierstrass::{Affine, Projective};
use ark_ec::{AdditiveGroup, AffineRepr, CurveGroup, PrimeGroup};
use ark_ff::{BigInt, Field, PrimeField, UniformRand, Zero};
use ark_std::rand::{rngs::StdRng, SeedableRng};

fn words<F: DeviceField>(values: &[F]) -> Vec<u32> {
    let mut out = vec![0u32; values.len() * F::WORDS];
    for (v, o) in values.iter().zip(out.chunks_mut(F::WORDS)) {
        v.write_words(o);
    }
    out
}

fn from_words<F: DeviceField>(w: &[u32]) -> Vec<F> {
    w.chunks(F::WORDS).map(F::read_words).collect()
}

/// Random values plus the edges: 0, 1, -1, 2, (p-1)/2, (p+1)/2, and values near 2^254.
fn fq_samples(rng: &mut StdRng, random: usize) -> Vec<Fq> {
    let half = Fq::from_bigint(Fq::MODULUS_MINUS_ONE_DIV_TWO).expect("below p");
    let mut v = vec![
        Fq::zero(),
        Fq::ONE,
        -Fq::ONE,
        Fq::from(2u64),
        half,
        half + Fq::ONE,
        -half,
    ];
    // Montgomery representations with every high limb set (largest reduced values)
    v.push(Fq::new_unchecked(BigInt([u64::MAX, u64::MAX, u64::MAX, Fq::MODULUS.0[3]])) - Fq::ONE);
    v.extend((0..random).map(|_| Fq::rand(rng)));
    v
}

fn fr_samples(rng: &mut StdRng, random: usize) -> Vec<Fr> {
    let half = Fr::from_bigint(Fr::MODULUS_MINUS_ONE_DIV_TWO).expect("below r");
    let mut v = vec![
        Fr::zero(),
        Fr::ONE,
        -Fr::ONE,
        Fr::from(2u64),
        half,
        half + Fr::ONE,
        -half,
    ];
    v.extend((0..random).map(|_| Fr::rand(rng)));
    v
}

/// Every pair of samples, as two aligned vectors.
fn pairs<F: Copy>(s: &[F]) -> (Vec<F>, Vec<F>) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for x in s {
        for y in s {
            a.push(*x);
            b.push(*y);
        }
    }
    (a, b)
}

fn check_field<F: DeviceField + PrimeFieldOrExt>(field: HostField, samples: &[F]) {
    let (a, b) = pairs(samples);
    let (wa, wb) = (words(&a), words(&b));
    let run = |op| from_words::<F>(&field_op(field, op, &wa, &wb));
    let (add, sub, mul, sqr, neg, inv, dbl) = (
        run(FieldOp::Add),
        run(FieldOp::Sub),
        run(FieldOp::Mul),
        run(FieldOp::Sqr),
        run(FieldOp::Neg),
        run(FieldOp::Inv),
        run(FieldOp::Dbl),
    );
    for i in 0..a.len() {
        let (x, y) = (a[i], b[i]);
        assert_eq!(add[i], x + y, "{field:?} add {i}");
        assert_eq!(sub[i], x - y, "{field:?} sub {i}");
        assert_eq!(mul[i], x * y, "{field:?} mul {i}");
        assert_eq!(sqr[i], x.square(), "{field:?} sqr {i}");
        assert_eq!(neg[i], -x, "{field:?} neg {i}");
        assert_eq!(
            inv[i],
            x.inverse().unwrap_or(F::zero()),
            "{field:?} inv {i}"
        );
        assert_eq!(dbl[i], x.double(), "{field:?} dbl {i}");
        assert!(F::canonical(&add[i]) && F::canonical(&mul[i]) && F::canonical(&sub[i]));
    }
    // Montgomery conversions: from_mont(x) has the integer's limbs; to_mont inverts it.
    let from = from_words::<F>(&field_op(field, FieldOp::FromMont, &wa, &wb));
    let to = from_words::<F>(&field_op(field, FieldOp::ToMont, &words(&from), &wb));
    for i in 0..a.len() {
        assert_eq!(
            F::integer_words(&a[i]),
            F::raw_words(&from[i]),
            "{field:?} from_mont {i}"
        );
        assert_eq!(to[i], a[i], "{field:?} to_mont {i}");
    }
}

/// What the field checks need beyond `DeviceField`.
trait PrimeFieldOrExt: DeviceField {
    fn canonical(x: &Self) -> bool;
    fn integer_words(x: &Self) -> Vec<u32>;
    fn raw_words(x: &Self) -> Vec<u32> {
        let mut w = vec![0u32; Self::WORDS];
        x.write_words(&mut w);
        w
    }
}

fn limbs_to_words(limbs: &[u64]) -> Vec<u32> {
    limbs
        .iter()
        .flat_map(|l| [*l as u32, (*l >> 32) as u32])
        .collect()
}

impl PrimeFieldOrExt for Fq {
    fn canonical(x: &Fq) -> bool {
        x.0 < Fq::MODULUS
    }
    fn integer_words(x: &Fq) -> Vec<u32> {
        limbs_to_words(&x.into_bigint().0)
    }
}

impl PrimeFieldOrExt for Fr {
    fn canonical(x: &Fr) -> bool {
        x.0 < Fr::MODULUS
    }
    fn integer_words(x: &Fr) -> Vec<u32> {
        limbs_to_words(&x.into_bigint().0)
    }
}

impl DeviceField for Fr {
    const WORDS: usize = 8;
    fn write_words(&self, out: &mut [u32]) {
        out.copy_from_slice(&limbs_to_words(&self.0 .0));
    }
    fn read_words(w: &[u32]) -> Fr {
        let mut limbs = [0u64; 4];
        for (i, l) in limbs.iter_mut().enumerate() {
            *l = u64::from(w[2 * i]) | (u64::from(w[2 * i + 1]) << 32);
        }
        Fr::new_unchecked(BigInt(limbs))
    }
}

impl PrimeFieldOrExt for Fq2 {
    fn canonical(x: &Fq2) -> bool {
        Fq::canonical(&x.c0) && Fq::canonical(&x.c1)
    }
    fn integer_words(x: &Fq2) -> Vec<u32> {
        [Fq::integer_words(&x.c0), Fq::integer_words(&x.c1)].concat()
    }
}

#[test]
fn fq_matches_arkworks() {
    let mut rng = StdRng::seed_from_u64(1);
    check_field(HostField::Fq, &fq_samples(&mut rng, 24));
}

#[test]
fn fr_matches_arkworks() {
    let mut rng = StdRng::seed_from_u64(2);
    check_field(HostField::Fr, &fr_samples(&mut rng, 24));
}

/// The dedicated squaring over many values, including limb patterns that stress its carry
/// handling (all-ones limbs, single high bits).
#[test]
fn squaring_matches_arkworks_on_many_values() {
    let mut rng = StdRng::seed_from_u64(21);
    let mut fq: Vec<Fq> = (0..4000).map(|_| Fq::rand(&mut rng)).collect();
    let mut fr: Vec<Fr> = (0..4000).map(|_| Fr::rand(&mut rng)).collect();
    for k in 0..254u32 {
        let mut limbs = [0u64; 4];
        limbs[(k / 64) as usize] = 1u64 << (k % 64);
        fq.push(Fq::new_unchecked(BigInt(limbs)));
        fr.push(Fr::new_unchecked(BigInt(limbs)));
        // all ones below bit k (still below both moduli)
        let mut ones = [0u64; 4];
        for b in 0..k {
            ones[(b / 64) as usize] |= 1u64 << (b % 64);
        }
        fq.push(Fq::new_unchecked(BigInt(ones)));
        fr.push(Fr::new_unchecked(BigInt(ones)));
    }
    fq.extend([-Fq::ONE, -Fq::from(2u64), Fq::zero(), Fq::ONE]);
    fr.extend([-Fr::ONE, -Fr::from(2u64), Fr::zero(), Fr::ONE]);
    let w = words(&fq);
    let got = from_words::<Fq>(&field_op(HostField::Fq, FieldOp::Sqr, &w, &w));
    for (x, s) in fq.iter().zip(&got) {
        assert_eq!(*s, x.square(), "Fq sqr of {:?}", x.0);
    }
    let w = words(&fr);
    let got = from_words::<Fr>(&field_op(HostField::Fr, FieldOp::Sqr, &w, &w));
    for (x, s) in fr.iter().zip(&got) {
        assert_eq!(*s, x.square(), "Fr sqr of {:?}", x.0);
    }
}

#[test]
fn fq2_matches_arkworks() {
    let mut rng = StdRng::seed_from_u64(3);
    let base = fq_samples(&mut rng, 6);
    let mut s: Vec<Fq2> = base
        .iter()
        .zip(base.iter().rev())
        .map(|(a, b)| Fq2::new(*a, *b))
        .collect();
    s.push(Fq2::zero());
    s.push(Fq2::ONE);
    s.push(Fq2::new(Fq::zero(), Fq::ONE));
    check_field(HostField::Fq2, &s);
}

#[test]
fn ark_fr_slices_are_device_scalars_without_conversion() {
    let mut rng = StdRng::seed_from_u64(4);
    let v: Vec<Fr> = (0..16).map(|_| Fr::rand(&mut rng)).collect();
    let bytes = crate::cuda::ffi::fr_slice_as_bytes(&v);
    let w: Vec<u32> = bytes
        .chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(from_words::<Fr>(&w), v);
    // and the kernels' arithmetic reads them as the same field elements
    let sq = from_words::<Fr>(&field_op(HostField::Fr, FieldOp::Mul, &w, &w));
    for (x, s) in v.iter().zip(&sq) {
        assert_eq!(*s, x.square());
    }
}

fn g1_points(rng: &mut StdRng, n: usize) -> Vec<G1Projective> {
    (0..n).map(|_| G1Projective::rand(rng)).collect()
}

/// P+Q, P+P, P+(-P), inf+P, P+inf, inf+inf for XYZZ+affine and XYZZ+XYZZ, and doublings.
fn curve_cases<C: CurveGroup>(ps: &[C]) -> Vec<(C, C)> {
    let mut cases = Vec::new();
    for w in ps.windows(2) {
        cases.push((w[0], w[1]));
    }
    for p in ps {
        cases.push((*p, *p));
        cases.push((*p, -*p));
        cases.push((C::zero(), *p));
        cases.push((*p, C::zero()));
    }
    cases.push((C::zero(), C::zero()));
    cases
}

#[test]
fn g1_xyzz_formulas_match_arkworks_on_every_edge() {
    let mut rng = StdRng::seed_from_u64(5);
    let ps = g1_points(&mut rng, 6);
    check_curve::<G1>(false, &curve_cases(&ps));
}

#[test]
fn g2_xyzz_formulas_match_arkworks_on_every_edge() {
    let mut rng = StdRng::seed_from_u64(6);
    let ps: Vec<G2Projective> = (0..4).map(|_| G2Projective::rand(&mut rng)).collect();
    check_curve::<G2>(true, &curve_cases(&ps));
}

type PointPair<C> = (
    Projective<<C as crate::cuda::layout::DeviceCurve>::Config>,
    Projective<<C as crate::cuda::layout::DeviceCurve>::Config>,
);

fn check_curve<C: crate::cuda::layout::DeviceCurve>(g2: bool, cases: &[PointPair<C>]) {
    let count = cases.len();
    // a as XYZZ with Z != 1 (random arkworks points carry a non-trivial Z)
    let a: Vec<u32> = cases
        .iter()
        .flat_map(|(p, _)| xyzz_words_from_jacobian::<C>(p))
        .collect();
    let b_aff: Vec<Affine<C::Config>> = cases.iter().map(|(_, q)| q.into_affine()).collect();
    let b_affine = affine_to_words::<C>(&b_aff);
    let b_xyzz: Vec<u32> = cases
        .iter()
        .flat_map(|(_, q)| xyzz_words_from_jacobian::<C>(q))
        .collect();
    let xw = C::XYZZ_WORDS;
    let read = |w: &[u32], i: usize| xyzz_to_projective::<C>(&w[i * xw..(i + 1) * xw]);
    let madd = curve_op(g2, CurveOp::AddAffine, &a, &b_affine, count);
    let add = curve_op(g2, CurveOp::Add, &a, &b_xyzz, count);
    let dbl = curve_op(g2, CurveOp::Dbl, &a, &b_affine, count);
    let mdbl = curve_op(g2, CurveOp::DblAffine, &a, &b_affine, count);
    for (i, (p, q)) in cases.iter().enumerate() {
        assert_eq!(read(&madd, i), *p + *q, "madd case {i}");
        assert_eq!(read(&add, i), *p + *q, "add case {i}");
        assert_eq!(read(&dbl, i), p.double(), "dbl case {i}");
        assert_eq!(read(&mdbl, i), q.double(), "mdbl case {i}");
    }
}

#[test]
fn affine_infinity_is_all_zero_words() {
    let w = affine_to_words::<G1>(&[G1Affine::identity(), G1Affine::generator()]);
    assert!(w[..16].iter().all(|&x| x == 0));
    let w2 = affine_to_words::<G2>(&[G2Affine::identity()]);
    assert!(w2.iter().all(|&x| x == 0));
    assert!(G1Projective::generator().into_affine() == G1Affine::generator());
}

#[test]
fn emulator_block_reduction_with_shared_memory_and_shuffles() {
    let input: Vec<u32> = (0..1000u32)
        .map(|i| i.wrapping_mul(2654435761) >> 8)
        .collect();
    for block in [32u32, 64, 96, 256] {
        let out = block_sum(&input, block).expect("block sum runs");
        let want: Vec<u32> = input
            .chunks(block as usize)
            .map(|c| c.iter().sum())
            .collect();
        assert_eq!(out, want, "block {block}");
    }
    let input: Vec<u32> = (1..=64u32).collect();
    let (scan, odd) = warp_scan(&input).expect("warp scan runs");
    for w in 0..2 {
        for l in 0..32 {
            let i = w * 32 + l;
            let want: u32 = input[w * 32..=i].iter().sum();
            assert_eq!(scan[i], want);
        }
        assert_eq!(odd[w], 16);
    }
}

#[test]
fn emulator_rejects_races_divergence_early_exit_and_failed_asserts() {
    let race = emulator_rejects(0).expect("missing barrier detected");
    assert!(race.contains("race exposed"), "{race}");
    let exit = emulator_rejects(1).expect("early exit before a barrier detected");
    assert!(exit.contains("exited"), "{exit}");
    let div = emulator_rejects(2).expect("divergent shuffle detected");
    assert!(
        div.contains("divergent") || div.contains("collective"),
        "{div}"
    );
    let assert_msg = emulator_rejects(3).expect("PR_ASSERT failure reported");
    assert!(assert_msg.contains("thread index below n"), "{assert_msg}");
}

#[test]
fn emulated_device_memory_is_poisoned_and_guarded() {
    use crate::cuda::exec::{DevBuf, Exec};
    use std::sync::Arc;
    let dev: Arc<dyn Exec> = Arc::new(EmulatedDevice::new());
    let buf = DevBuf::new(&dev, 64).expect("alloc");
    let mut back = [0u8; 64];
    dev.download(buf.ptr(), &mut back).expect("download");
    assert!(
        back.iter().all(|&b| b == 0xA5),
        "fresh memory is not zeroed, like cudaMalloc"
    );
    dev.zero(buf.ptr(), 64).expect("zero");
    dev.download(buf.ptr(), &mut back).expect("download");
    assert!(back.iter().all(|&b| b == 0));
    let _ = (G1Projective::generator(), Fr::ONE);
}
