//! The NTT driver and kernels on the SIMT emulator against the CPU backend (arkworks):
//! every direction, coset and the fused prover transform, at every size to 2^12 with the
//! production tiles and with tiles small enough that 2^5..2^12 take 2 to 5 passes; then the
//! whole Groth16 prover and the conformance suite on an emulated device backend.

use std::sync::Arc;

use ark_ff::{FftField, Field, UniformRand, Zero};
use ark_std::rand::{rngs::StdRng, SeedableRng};

use super::exec::{DevBuf, Exec};
use super::ffi::{fr_slice_as_bytes, fr_slice_as_bytes_mut};
use super::layout::{G1, G2};
use super::msm::{MsmEngine, ResidentBases};
use super::ntt::{plan_passes, NttEngine, MAX_TILE_LOG};
use crate::backend::{Backend, BackendError, BackendInfo, BackendKind, NttDirection};
use crate::conformance::{check_backend_matches_cpu_with, ConformanceConfig};
use crate::cpu::CpuBackend;
use crate::curve::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use crate::host_kernels::EmulatedDevice;

fn device() -> Arc<dyn Exec> {
    Arc::new(EmulatedDevice::new())
}

fn upload(dev: &Arc<dyn Exec>, v: &[Fr]) -> DevBuf {
    let buf = DevBuf::new(dev, v.len() * 32).expect("alloc");
    dev.upload(buf.ptr(), fr_slice_as_bytes(v)).expect("upload");
    buf
}

fn download(dev: &Arc<dyn Exec>, buf: &DevBuf, len: usize) -> Vec<Fr> {
    let mut out = vec![Fr::zero(); len];
    dev.download(buf.ptr(), fr_slice_as_bytes_mut(&mut out))
        .expect("download");
    out
}

/// Random values with 0, 1 and −1 mixed in.
fn values(n: usize, rng: &mut StdRng) -> Vec<Fr> {
    (0..n)
        .map(|i| match i % 13 {
            3 => Fr::zero(),
            5 => Fr::ONE,
            7 => -Fr::ONE,
            _ => Fr::rand(rng),
        })
        .collect()
}

fn cpu_ntt(v: &[Fr], dir: NttDirection, coset: Option<Fr>) -> Vec<Fr> {
    let mut out = v.to_vec();
    CpuBackend::new()
        .ntt_host(&mut out, dir, coset)
        .expect("cpu ntt");
    out
}

fn first_difference(got: &[Fr], want: &[Fr]) -> Option<usize> {
    (0..want.len()).find(|&i| got[i] != want[i])
}

/// Every standalone transform and the fused one at 2^log_n against the CPU backend.
fn check_size(engine: &NttEngine, dev: &Arc<dyn Exec>, log_n: u32, rng: &mut StdRng) {
    let n = 1usize << log_n;
    let data = values(n, rng);
    let w2n = Fr::get_root_of_unity(2 * n as u64).expect("2-adicity 28");
    let plan = engine.plan(log_n);
    for (dir, coset) in [
        (NttDirection::Forward, None),
        (NttDirection::Inverse, None),
        (NttDirection::Forward, Some(w2n)),
        (NttDirection::Inverse, Some(w2n)),
        (NttDirection::Forward, Some(Fr::from(7u64))),
        (NttDirection::Inverse, Some(Fr::from(7u64))),
    ] {
        let buf = upload(dev, &data);
        engine
            .ntt(buf.ptr(), n, dir, coset)
            .unwrap_or_else(|e| panic!("2^{log_n} {dir:?} {coset:?}: {e}"));
        let got = download(dev, &buf, n);
        let want = cpu_ntt(&data, dir, coset);
        assert_eq!(
            first_difference(&got, &want),
            None,
            "2^{log_n} {dir:?} coset {coset:?} plan {plan:?}"
        );
    }
    // fused, batched: three vectors in one launch per pass, and a fourth in a second batch
    let vectors: Vec<Vec<Fr>> = (0..4)
        .map(|i| if i == 0 { data.clone() } else { values(n, rng) })
        .collect();
    let bufs: Vec<DevBuf> = vectors.iter().map(|v| upload(dev, v)).collect();
    let ptrs: Vec<u64> = bufs.iter().map(DevBuf::ptr).collect();
    engine
        .interpolate_then_evaluate_on_coset(&ptrs, n, w2n)
        .unwrap_or_else(|e| panic!("2^{log_n} fused: {e}"));
    for (v, buf) in vectors.iter().zip(&bufs) {
        let want = cpu_ntt(
            &cpu_ntt(v, NttDirection::Inverse, None),
            NttDirection::Forward,
            Some(w2n),
        );
        assert_eq!(
            first_difference(&download(dev, buf, n), &want),
            None,
            "2^{log_n} fused plan {plan:?}"
        );
    }
}

#[test]
fn production_tiles_sizes_2_to_2_12() {
    let dev = device();
    let engine = NttEngine::new(dev.clone());
    let mut rng = StdRng::seed_from_u64(21);
    for log_n in 1..=12 {
        check_size(&engine, &dev, log_n, &mut rng);
    }
}

/// Tiles of 2^4: 2^5..2^12 take 2 to 5 passes, so every pass kind (first, middle, last,
/// single, with and without twists, fused) runs with partial and full column groups.
#[test]
fn small_tiles_reach_every_pass_count() {
    let dev = device();
    let engine = NttEngine::with_tile_log(dev.clone(), 4);
    let counts: Vec<usize> = (1..=12).map(|k| plan_passes(k, 4).len()).collect();
    assert_eq!(counts, [1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    let mut rng = StdRng::seed_from_u64(22);
    for log_n in 1..=12 {
        check_size(&engine, &dev, log_n, &mut rng);
    }
}

/// Tiles of 2^3 leave one stage to non-final passes (sub-blocks of two rows).
#[test]
fn tiniest_tiles() {
    let dev = device();
    let engine = NttEngine::with_tile_log(dev.clone(), 3);
    let mut rng = StdRng::seed_from_u64(23);
    for log_n in [4, 5, 9] {
        check_size(&engine, &dev, log_n, &mut rng);
    }
}

/// Three passes with 2^7 tiles at 2^14 (4 + 5 + 5 stages, 8 and 4 columns per tile): the
/// production shape of 2^19..2^26 (non-final tiles of 4+ columns, a contiguous final pass) at
/// a size the emulator runs in a second (2^19 with the production tiles takes 25 s).
#[test]
fn three_pass_shape_round_trip() {
    let dev = device();
    let engine = NttEngine::with_tile_log(dev.clone(), 7);
    let log_n = 14;
    assert_eq!(
        engine
            .plan(log_n)
            .iter()
            .map(|p| p.stages)
            .collect::<Vec<_>>(),
        [4, 5, 5]
    );
    let n = 1usize << log_n;
    let mut rng = StdRng::seed_from_u64(24);
    let data = values(n, &mut rng);
    let w2n = Fr::get_root_of_unity(2 * n as u64).expect("2-adicity");
    let buf = upload(&dev, &data);
    engine
        .interpolate_then_evaluate_on_coset(&[buf.ptr()], n, w2n)
        .expect("fused");
    let want = cpu_ntt(
        &cpu_ntt(&data, NttDirection::Inverse, None),
        NttDirection::Forward,
        Some(w2n),
    );
    assert_eq!(first_difference(&download(&dev, &buf, n), &want), None);
    engine
        .ntt(buf.ptr(), n, NttDirection::Inverse, Some(w2n))
        .expect("inverse coset");
    let back = cpu_ntt(&data, NttDirection::Inverse, None);
    assert_eq!(first_difference(&download(&dev, &buf, n), &back), None);
    engine
        .ntt(buf.ptr(), n, NttDirection::Forward, None)
        .expect("forward");
    assert_eq!(first_difference(&download(&dev, &buf, n), &data), None);
}

#[test]
fn mul_sub_matches_the_cpu() {
    let dev = device();
    let engine = NttEngine::new(dev.clone());
    let mut rng = StdRng::seed_from_u64(25);
    for n in [1usize, 2, 255, 256, 257, 5000] {
        let (a, b, c) = (
            values(n, &mut rng),
            values(n, &mut rng),
            values(n, &mut rng),
        );
        let (da, db, dc) = (upload(&dev, &a), upload(&dev, &b), upload(&dev, &c));
        engine
            .mul_sub(da.ptr(), db.ptr(), dc.ptr(), n)
            .expect("mul_sub");
        let want: Vec<Fr> = (0..n).map(|i| a[i] * b[i] - c[i]).collect();
        assert_eq!(download(&dev, &da, n), want, "n={n}");
    }
}

#[test]
fn bad_inputs_are_refused() {
    let dev = device();
    let engine = NttEngine::new(dev.clone());
    let buf = upload(&dev, &[Fr::ONE; 8]);
    for len in [0usize, 1, 6] {
        assert!(matches!(
            engine.ntt(buf.ptr(), len, NttDirection::Forward, None),
            Err(BackendError::InvalidInput(_))
        ));
    }
    assert!(engine
        .ntt(buf.ptr(), 1 << 29, NttDirection::Forward, None)
        .is_err());
    assert!(engine
        .ntt(buf.ptr(), 8, NttDirection::Forward, Some(Fr::zero()))
        .is_err());
    assert!(engine
        .interpolate_then_evaluate_on_coset(&[buf.ptr()], 8, Fr::zero())
        .is_err());
}

/// The CUDA backend's operations with the emulated device: the MSM and NTT engines behind
/// the `Backend` trait exactly as `CudaBackend` wires them, so the generic prover and the
/// conformance suite run on the emulated kernels.
struct EmulatedBackend {
    exec: Arc<dyn Exec>,
    msm: MsmEngine,
    ntt: NttEngine,
}

struct EmulatedScalars {
    buf: DevBuf,
    len: usize,
}

impl EmulatedBackend {
    fn new(tile_log: u32) -> EmulatedBackend {
        let exec = device();
        EmulatedBackend {
            msm: MsmEngine::new(exec.clone()),
            ntt: NttEngine::with_tile_log(exec.clone(), tile_log),
            exec,
        }
    }
}

impl Backend for EmulatedBackend {
    type Scalars = EmulatedScalars;
    type BasesG1 = ResidentBases;
    type BasesG2 = ResidentBases;

    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: BackendKind::Cuda,
            name: "emulated cuda".into(),
            device_memory_total_bytes: None,
        }
    }
    fn upload_scalars(&self, s: &[Fr]) -> Result<EmulatedScalars, BackendError> {
        Ok(EmulatedScalars {
            buf: upload(&self.exec, s),
            len: s.len(),
        })
    }
    fn download_scalars(&self, s: &EmulatedScalars) -> Result<Vec<Fr>, BackendError> {
        Ok(download(&self.exec, &s.buf, s.len))
    }
    fn scalars_len(&self, s: &EmulatedScalars) -> usize {
        s.len
    }
    fn load_bases_g1(&self, bases: &[G1Affine]) -> Result<ResidentBases, BackendError> {
        self.msm.load_bases::<G1>(bases)
    }
    fn load_bases_g2(&self, bases: &[G2Affine]) -> Result<ResidentBases, BackendError> {
        self.msm.load_bases::<G2>(bases)
    }
    fn msm_g1(
        &self,
        bases: &ResidentBases,
        s: &EmulatedScalars,
    ) -> Result<G1Projective, BackendError> {
        self.msm.msm::<G1>(bases, s.buf.ptr(), s.len)
    }
    fn msm_g2(
        &self,
        bases: &ResidentBases,
        s: &EmulatedScalars,
    ) -> Result<G2Projective, BackendError> {
        self.msm.msm::<G2>(bases, s.buf.ptr(), s.len)
    }
    fn ntt(
        &self,
        d: &mut EmulatedScalars,
        dir: NttDirection,
        coset: Option<Fr>,
    ) -> Result<(), BackendError> {
        self.ntt.ntt(d.buf.ptr(), d.len, dir, coset)
    }
    fn interpolate_then_evaluate_on_coset(
        &self,
        v: &mut [&mut EmulatedScalars],
        coset: Fr,
    ) -> Result<(), BackendError> {
        let len = v.first().map_or(0, |d| d.len);
        assert!(v.iter().all(|d| d.len == len));
        let ptrs: Vec<u64> = v.iter().map(|d| d.buf.ptr()).collect();
        self.ntt
            .interpolate_then_evaluate_on_coset(&ptrs, len, coset)
    }
    fn mul_sub_assign(
        &self,
        a: &mut EmulatedScalars,
        b: &EmulatedScalars,
        c: &EmulatedScalars,
    ) -> Result<(), BackendError> {
        assert!(a.len == b.len && a.len == c.len);
        self.ntt
            .mul_sub(a.buf.ptr(), b.buf.ptr(), c.buf.ptr(), a.len)
    }
}

/// The conformance suite (NTT, mul_sub, MSM edge cases, a whole Groth16 proof that must be
/// byte-identical to the CPU's and verify) with the emulated kernels behind the trait.
#[test]
fn conformance_suite_and_groth16_on_emulated_kernels() {
    for tile_log in [MAX_TILE_LOG, 4] {
        let backend = EmulatedBackend::new(tile_log);
        let config = ConformanceConfig {
            msm_g1_sizes: vec![1, 33],
            msm_g2_sizes: vec![3],
            ntt_log_sizes: vec![1, 3, 6, 9],
            groth16_log2: Some(6),
            seed: 0x6e77 + u64::from(tile_log),
        };
        let report = check_backend_matches_cpu_with(&backend, &config)
            .unwrap_or_else(|e| panic!("tile_log {tile_log}: {e}"));
        assert!(report.checks.iter().any(|c| c.check == "groth16_proof"));
    }
    // and the generic prover's result equals the CPU's through the fused path directly
    let backend = EmulatedBackend::new(MAX_TILE_LOG);
    let mut rng = StdRng::seed_from_u64(26);
    let n = 1 << 7;
    let (a, b, c) = (
        values(n, &mut rng),
        values(n, &mut rng),
        values(n, &mut rng),
    );
    let got = crate::groth16::reduction::odd_coset_quotient(&backend, &a, &b, &c)
        .expect("emulated quotient");
    let want = crate::groth16::reduction::odd_coset_quotient(&CpuBackend::new(), &a, &b, &c)
        .expect("cpu quotient");
    assert_eq!(backend.download_scalars(&got).expect("download"), want);
}
