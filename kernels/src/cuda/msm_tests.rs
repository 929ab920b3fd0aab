//! The MSM driver and kernels on the SIMT emulator against arkworks: the size and scalar
//! matrix of notes/gpu-msm-ntt.md §4 at sizes the emulator runs in seconds.

use std::sync::Arc;

use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::{Field, PrimeField, UniformRand, Zero};
use ark_std::rand::{rngs::StdRng, Rng, SeedableRng};

use super::exec::{DevBuf, DeviceLimits, Exec};
use super::ffi::fr_slice_as_bytes;
use super::layout::DeviceCurve;
use super::layout::{G1, G2};
use super::msm::{MsmEngine, WORKING_MEMORY_FRACTION};
use super::msm_plan::chunk_len;
use crate::curve::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use crate::host_kernels::EmulatedDevice;

fn engine_with(limits: Option<DeviceLimits>) -> (MsmEngine, Arc<dyn Exec>) {
    let dev: Arc<dyn Exec> = match limits {
        Some(l) => Arc::new(EmulatedDevice::with_limits(l)),
        None => Arc::new(EmulatedDevice::new()),
    };
    (MsmEngine::new(dev.clone()), dev)
}

fn upload(dev: &Arc<dyn Exec>, scalars: &[Fr]) -> DevBuf {
    let bytes = fr_slice_as_bytes(scalars);
    let buf = DevBuf::new(dev, bytes.len()).expect("alloc scalars");
    dev.upload(buf.ptr(), bytes).expect("upload scalars");
    buf
}

#[derive(Clone, Copy, Debug)]
enum Dist {
    Random,
    Zero,
    MinusOne,
    AllEqual,
    Small,
    /// 1, r-1, (r-1)/2, (r+1)/2 and neighbours of the negation threshold, cycled.
    Edges,
}

fn scalars(dist: Dist, n: usize, rng: &mut StdRng) -> Vec<Fr> {
    let half = Fr::from_bigint(Fr::MODULUS_MINUS_ONE_DIV_TWO).expect("below r");
    let edges = [
        Fr::ONE,
        -Fr::ONE,
        half,
        half + Fr::ONE,
        half - Fr::ONE,
        Fr::from(2u64),
        Fr::zero(),
    ];
    let equal = Fr::rand(rng);
    (0..n)
        .map(|i| match dist {
            Dist::Random => Fr::rand(rng),
            Dist::Zero => Fr::zero(),
            Dist::MinusOne => -Fr::ONE,
            Dist::AllEqual => equal,
            Dist::Small => Fr::from(rng.gen_range(0u64..1 << 16)),
            Dist::Edges => edges[i % edges.len()],
        })
        .collect()
}

/// Random bases with repeats (the same point several times, and its negation) and the
/// point at infinity mixed in.
fn g1_bases(n: usize, rng: &mut StdRng) -> Vec<G1Affine> {
    let fresh: Vec<G1Projective> = (0..n.div_ceil(2).max(1))
        .map(|_| G1Projective::rand(rng))
        .collect();
    let mut v: Vec<G1Affine> = G1Projective::normalize_batch(&fresh);
    while v.len() < n {
        let i = rng.gen_range(0..v.len());
        let p = v[i];
        v.push(match v.len() % 5 {
            0 => G1Affine::identity(),
            1 => -p,
            _ => p,
        });
    }
    v.truncate(n);
    v
}

fn check_g1(
    engine: &MsmEngine,
    dev: &Arc<dyn Exec>,
    bases: &[G1Affine],
    dists: &[Dist],
    rng: &mut StdRng,
) {
    let resident = engine.load_bases::<G1>(bases).expect("load bases");
    for &d in dists {
        let s = scalars(d, bases.len(), rng);
        let buf = upload(dev, &s);
        let got = engine
            .msm::<G1>(&resident, buf.ptr(), s.len())
            .expect("emulated msm");
        let want = G1Projective::msm(bases, &s).expect("same lengths");
        assert_eq!(
            got.into_affine(),
            want.into_affine(),
            "G1 n={} {d:?} shape={:?}",
            bases.len(),
            resident.shape()
        );
    }
}

#[test]
fn g1_msm_small_sizes_all_distributions() {
    let mut rng = StdRng::seed_from_u64(11);
    let (engine, dev) = engine_with(None);
    let all = [
        Dist::Random,
        Dist::Zero,
        Dist::MinusOne,
        Dist::AllEqual,
        Dist::Small,
        Dist::Edges,
    ];
    for n in [1usize, 2, 3, 31, 32, 33] {
        let bases = g1_bases(n, &mut rng);
        check_g1(&engine, &dev, &bases, &all, &mut rng);
    }
}

#[test]
fn g1_msm_around_block_sizes() {
    let mut rng = StdRng::seed_from_u64(12);
    let (engine, dev) = engine_with(None);
    for n in [511usize, 512, 513] {
        let bases = g1_bases(n, &mut rng);
        check_g1(
            &engine,
            &dev,
            &bases,
            &[Dist::Random, Dist::AllEqual],
            &mut rng,
        );
    }
}

#[test]
fn g1_msm_thousands_with_skew() {
    let mut rng = StdRng::seed_from_u64(13);
    let (engine, dev) = engine_with(None);
    let bases = g1_bases(3000, &mut rng);
    check_g1(
        &engine,
        &dev,
        &bases,
        &[Dist::Random, Dist::Small, Dist::AllEqual, Dist::Edges],
        &mut rng,
    );
}

/// One accumulation thread, and many: the slot levels and the direct-to-bucket path.
#[test]
fn g1_msm_under_other_device_limits() {
    let mut rng = StdRng::seed_from_u64(14);
    let bases = g1_bases(1000, &mut rng);
    for limits in [
        DeviceLimits {
            sm_count: 1,
            resident_threads_per_sm: 1,
            total_memory_bytes: 1 << 32,
        },
        DeviceLimits {
            sm_count: 3,
            resident_threads_per_sm: 100,
            total_memory_bytes: 1 << 32,
        },
    ] {
        let (engine, dev) = engine_with(Some(limits));
        check_g1(
            &engine,
            &dev,
            &bases,
            &[Dist::Random, Dist::AllEqual],
            &mut rng,
        );
    }
}

/// Too little memory for all copies (fewer precomputed copies, several windows per copy)
/// and for one working set (the MSM is split into chunks).
#[test]
fn g1_msm_with_limited_memory() {
    let mut rng = StdRng::seed_from_u64(15);
    let bases = g1_bases(700, &mut rng);
    let limits = DeviceLimits {
        sm_count: 2,
        resident_threads_per_sm: 32,
        total_memory_bytes: 700 * 64 * 8,
    };
    let (engine, dev) = engine_with(Some(limits));
    let resident = engine.load_bases::<G1>(&bases).expect("load");
    assert!(
        resident.shape().copies < resident.shape().windows,
        "{:?}",
        resident.shape()
    );
    assert!(resident.shape().group > 1);
    let budget = (limits.total_memory_bytes as f64 * WORKING_MEMORY_FRACTION) as u64;
    let chunk = chunk_len(700, resident.shape(), 2, 32, budget, G1::XYZZ_BYTES as u64)
        .expect("fits in chunks");
    assert!(
        chunk < 700,
        "the call must be split into chunks, got one of {chunk}"
    );
    let s = scalars(Dist::Random, bases.len(), &mut rng);
    let buf = upload(&dev, &s);
    let got = engine
        .msm::<G1>(&resident, buf.ptr(), s.len())
        .expect("emulated msm");
    assert_eq!(
        got.into_affine(),
        G1Projective::msm(&bases, &s)
            .expect("lengths")
            .into_affine()
    );
}

#[test]
fn g2_msm_matches_arkworks() {
    let mut rng = StdRng::seed_from_u64(16);
    let (engine, dev) = engine_with(None);
    for n in [1usize, 3, 33, 100] {
        let fresh: Vec<G2Projective> = (0..n).map(|_| G2Projective::rand(&mut rng)).collect();
        let mut bases = G2Projective::normalize_batch(&fresh);
        if n > 2 {
            bases[1] = bases[0];
            bases[2] = G2Affine::identity();
        }
        let resident = engine.load_bases::<G2>(&bases).expect("load");
        for d in [Dist::Random, Dist::AllEqual, Dist::Edges] {
            let s = scalars(d, n, &mut rng);
            let buf = upload(&dev, &s);
            let got = engine
                .msm::<G2>(&resident, buf.ptr(), n)
                .expect("emulated msm");
            let want = G2Projective::msm(&bases, &s).expect("lengths");
            assert_eq!(got.into_affine(), want.into_affine(), "G2 n={n} {d:?}");
        }
    }
}

#[test]
fn profiled_msm_reports_every_phase_and_the_same_result() {
    let mut rng = StdRng::seed_from_u64(17);
    let (engine, dev) = engine_with(None);
    let bases = g1_bases(300, &mut rng);
    let resident = engine.load_bases::<G1>(&bases).expect("load");
    let s = scalars(Dist::Random, 300, &mut rng);
    let buf = upload(&dev, &s);
    let mut profile = super::msm::MsmProfile::default();
    let got = engine
        .msm_profiled::<G1>(&resident, buf.ptr(), 300, Some(&mut profile))
        .expect("msm");
    assert_eq!(
        got.into_affine(),
        G1Projective::msm(&bases, &s)
            .expect("lengths")
            .into_affine()
    );
    let names: Vec<&str> = profile.phases_ms.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "digits_and_sort",
            "accumulate",
            "combine_slots",
            "bucket_running_sums",
            "row_sums_and_download",
            "host_finish"
        ]
    );
}

#[test]
fn empty_and_mismatched_inputs() {
    let (engine, dev) = engine_with(None);
    let resident = engine.load_bases::<G1>(&[]).expect("load nothing");
    let buf = upload(&dev, &[]);
    assert!(engine
        .msm::<G1>(&resident, buf.ptr(), 0)
        .expect("empty msm")
        .is_zero());
    let bases = vec![G1Affine::generator(); 4];
    let resident = engine.load_bases::<G1>(&bases).expect("load");
    assert!(engine.msm::<G1>(&resident, buf.ptr(), 3).is_err());
}
