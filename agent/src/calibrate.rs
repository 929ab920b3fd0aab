//! Start-up calibration: run the backend's real MSM and NTT kernels on random data and report
//! their throughput, which the coordinator uses to predict proving times.
//!
//! Sizes follow the backend ([`CalibrationPlan::for_backend`]): big enough that the kernels
//! run at their steady rate, small enough for start-up (well under a few seconds on a 2-core
//! CPU box). Inputs are loaded into the backend first and only the kernels are timed, as in
//! production where a proving key's bases stay resident. One warm-up run, then the median of
//! up to [`MAX_TIMED_RUNS`] runs within the plan's budget.
//!
//! A throughput of a wrong kernel means nothing, so calibration also checks the results: a
//! small MSM and NTT against arkworks, every timed MSM equal to the warm-up's, and the timed
//! forward/inverse NTT pairs returning the input.

use std::time::{Duration, Instant};

use ark_ec::{CurveGroup, PrimeGroup, VariableBaseMSM};
use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};
use ark_std::UniformRand;
use proofrack_common::telemetry::{Calibration, ProverBackend};
use proofrack_kernels::curve::{Fr, G1Affine, G1Projective};
use proofrack_kernels::{Backend, BackendError, BackendKind, NttDirection};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

/// MSM size on the CPU: 2^12 points take ~10-40 ms on 2 cores, past Pippenger's small-size
/// regime.
pub const CPU_MSM_LOG_SIZE: u32 = 12;
/// NTT size on the CPU: 2^14 elements, a few milliseconds.
pub const CPU_NTT_LOG_SIZE: u32 = 14;
/// MSM size on a GPU: 2^20 points fill an H100's SMs (smaller MSMs are launch-bound and
/// understate throughput); 64 MiB of bases.
pub const CUDA_MSM_LOG_SIZE: u32 = 20;
/// NTT size on a GPU: 2^22 elements (128 MiB), past the sizes that fit in L2.
pub const CUDA_NTT_LOG_SIZE: u32 = 22;
/// Timed runs per operation at most; the median of 5 shrugs off one outlier either way.
pub const MAX_TIMED_RUNS: u32 = 5;
/// Default wall-clock budget for the timed runs of each operation (warm-up and input
/// generation not included): keeps agent start-up within a few seconds.
pub const DEFAULT_BUDGET_PER_OPERATION: Duration = Duration::from_millis(1_500);
/// Size of the MSM and NTT checked against arkworks before timing (microseconds on a CPU).
pub const CHECK_LOG_SIZE: u32 = 6;
/// Inputs are random but reproducible, so runs on different boxes time the same work.
const CALIBRATION_SEED: u64 = 0x70726f_6f667261; // "proofra"

/// What to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CalibrationPlan {
    pub msm_log_size: u32,
    pub ntt_log_size: u32,
    /// Stop adding timed runs of an operation once they would exceed this (at least one
    /// timed run always happens).
    pub budget_per_operation: Duration,
    pub max_timed_runs: u32,
}

impl CalibrationPlan {
    pub fn for_backend(kind: BackendKind) -> Self {
        let (msm_log_size, ntt_log_size) = match kind {
            BackendKind::Cpu => (CPU_MSM_LOG_SIZE, CPU_NTT_LOG_SIZE),
            BackendKind::Cuda => (CUDA_MSM_LOG_SIZE, CUDA_NTT_LOG_SIZE),
        };
        CalibrationPlan {
            msm_log_size,
            ntt_log_size,
            budget_per_operation: DEFAULT_BUDGET_PER_OPERATION,
            max_timed_runs: MAX_TIMED_RUNS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("calibration could not {stage} on backend {backend}: {source}")]
    Backend {
        stage: &'static str,
        backend: String,
        #[source]
        source: BackendError,
    },
    #[error("backend {backend} computed a wrong {operation} during calibration ({detail}); do not prove with it: check the driver and GPU health, or start the agent on the CPU backend")]
    WrongResult {
        backend: String,
        operation: &'static str,
        detail: String,
    },
}

/// Measures `backend`'s MSM and NTT throughput. `host_memory_total_bytes` is reported as the
/// compute memory of a backend without device memory (the CPU).
pub fn calibrate<B: Backend>(
    backend: &B,
    plan: &CalibrationPlan,
    host_memory_total_bytes: u64,
) -> Result<Calibration, CalibrationError> {
    assert!(
        plan.max_timed_runs >= 1,
        "a calibration plan needs at least one timed run"
    );
    assert!(plan.ntt_log_size >= 1, "NTT lengths start at 2");
    let started = Instant::now();
    let info = backend.info();
    let name = info.name.as_str();
    let fail = |stage| backend_error(name, stage);
    let wrong = |operation, detail| wrong_result(name, operation, detail);
    let mut rng = StdRng::seed_from_u64(CALIBRATION_SEED);

    check_against_arkworks(backend, name, &mut rng)?;

    // MSM: inputs resident, kernel timed.
    let msm_size = 1usize << plan.msm_log_size;
    let bases = random_bases(msm_size, &mut rng);
    let scalars: Vec<Fr> = (0..msm_size).map(|_| Fr::rand(&mut rng)).collect();
    let bases = backend
        .load_bases_g1(&bases)
        .map_err(fail("load MSM bases"))?;
    let scalars = backend
        .upload_scalars(&scalars)
        .map_err(fail("upload MSM scalars"))?;
    let expected = backend
        .msm_g1(&bases, &scalars)
        .map_err(fail("run the warm-up MSM"))?;
    let msm_times = time_runs(plan, || {
        let got = backend
            .msm_g1(&bases, &scalars)
            .map_err(fail("run an MSM"))?;
        if got != expected {
            return Err(wrong(
                "MSM",
                "two runs on the same input gave different points".into(),
            ));
        }
        Ok(())
    })?;
    drop((bases, scalars));

    // NTT: each timed run is a forward and an inverse transform, so the data returns to the
    // input and is checked at the end.
    let ntt_size = 1usize << plan.ntt_log_size;
    let input: Vec<Fr> = (0..ntt_size).map(|_| Fr::rand(&mut rng)).collect();
    let mut data = backend
        .upload_scalars(&input)
        .map_err(fail("upload NTT data"))?;
    let mut round_trip = || {
        backend
            .ntt(&mut data, NttDirection::Forward, None)
            .map_err(fail("run a forward NTT"))?;
        backend
            .ntt(&mut data, NttDirection::Inverse, None)
            .map_err(fail("run an inverse NTT"))
    };
    round_trip()?; // warm-up
    let ntt_times = time_runs(plan, round_trip)?;
    let output = backend
        .download_scalars(&data)
        .map_err(fail("download NTT data"))?;
    if output != input {
        return Err(wrong(
            "NTT",
            "forward then inverse transforms did not return the input".into(),
        ));
    }

    let msm_median = median(msm_times);
    let ntt_median = median(ntt_times);
    let calibration = Calibration {
        backend: match info.kind {
            BackendKind::Cpu => ProverBackend::Cpu,
            BackendKind::Cuda => ProverBackend::Cuda,
        },
        backend_name: info.name.clone(),
        msm_g1_points_per_sec: per_second(msm_size as u64, msm_median),
        msm_size: msm_size as u64,
        ntt_elements_per_sec: per_second(2 * ntt_size as u64, ntt_median),
        ntt_size: ntt_size as u64,
        compute_memory_total_bytes: info
            .device_memory_total_bytes
            .unwrap_or(host_memory_total_bytes),
    };
    tracing::info!(
        backend = %calibration.backend_name,
        msm_size,
        msm_median_us = msm_median.as_micros() as u64,
        msm_g1_points_per_sec = calibration.msm_g1_points_per_sec,
        ntt_size,
        ntt_median_us = ntt_median.as_micros() as u64,
        ntt_elements_per_sec = calibration.ntt_elements_per_sec,
        compute_memory_total_bytes = calibration.compute_memory_total_bytes,
        took_ms = started.elapsed().as_millis() as u64,
        "calibrated"
    );
    Ok(calibration)
}

/// A small MSM and forward NTT on the backend against arkworks, before any timing.
fn check_against_arkworks<B: Backend>(
    backend: &B,
    name: &str,
    rng: &mut StdRng,
) -> Result<(), CalibrationError> {
    let fail = |stage| backend_error(name, stage);
    let wrong = |operation, detail| wrong_result(name, operation, detail);
    let n = 1usize << CHECK_LOG_SIZE;
    let bases = random_bases(n, rng);
    let scalars: Vec<Fr> = (0..n).map(|_| Fr::rand(rng)).collect();
    let got = backend
        .msm_g1_host(&bases, &scalars)
        .map_err(fail("run the check MSM"))?;
    let want = G1Projective::msm(&bases, &scalars).expect("equal lengths");
    if got != want {
        return Err(wrong(
            "MSM",
            format!("a 2^{CHECK_LOG_SIZE}-point MSM differs from arkworks"),
        ));
    }
    let mut data: Vec<Fr> = (0..n).map(|_| Fr::rand(rng)).collect();
    let domain = Radix2EvaluationDomain::<Fr>::new(n).expect("2^6 divides the BN254 Fr 2-adicity");
    let want = domain.fft(&data);
    backend
        .ntt_host(&mut data, NttDirection::Forward, None)
        .map_err(fail("run the check NTT"))?;
    if data != want {
        return Err(wrong(
            "NTT",
            format!("a 2^{CHECK_LOG_SIZE}-element NTT differs from arkworks"),
        ));
    }
    Ok(())
}

fn backend_error<'a>(
    backend: &'a str,
    stage: &'static str,
) -> impl FnOnce(BackendError) -> CalibrationError + 'a {
    move |source| CalibrationError::Backend {
        stage,
        backend: backend.to_owned(),
        source,
    }
}

fn wrong_result(backend: &str, operation: &'static str, detail: String) -> CalibrationError {
    CalibrationError::WrongResult {
        backend: backend.to_owned(),
        operation,
        detail,
    }
}

/// Points generated per parallel chunk: each chunk costs one scalar multiplication to find
/// its start, negligible against 4096 additions.
const BASES_PER_CHUNK: usize = 4096;

/// `n` distinct pseudo-random points, cheaply: `start + i·step` by successive mixed additions
/// (one per point, chunks in parallel) and one batch normalisation, instead of `n` scalar
/// multiplications. Distinct because `step` has prime order r > n.
pub fn random_bases(n: usize, rng: &mut StdRng) -> Vec<G1Affine> {
    let g = G1Projective::generator();
    let start = g * Fr::rand(rng);
    let step = g * Fr::rand(rng);
    let step_affine = step.into_affine();
    let mut projective = vec![G1Projective::default(); n];
    projective
        .par_chunks_mut(BASES_PER_CHUNK)
        .enumerate()
        .for_each(|(chunk, out)| {
            let mut acc = start + step * Fr::from((chunk * BASES_PER_CHUNK) as u64);
            for p in out {
                *p = acc;
                acc += &step_affine;
            }
        });
    G1Projective::normalize_batch(&projective)
}

/// Times `run` until `plan` says stop: at least once, at most `max_timed_runs`, and not past
/// the budget (judged by the runs so far).
fn time_runs(
    plan: &CalibrationPlan,
    mut run: impl FnMut() -> Result<(), CalibrationError>,
) -> Result<Vec<Duration>, CalibrationError> {
    let mut times = Vec::with_capacity(plan.max_timed_runs as usize);
    while keep_timing(&times, plan) {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed());
    }
    Ok(times)
}

/// Whether another timed run fits: always a first one; then while under `max_timed_runs`
/// and the runs so far plus one more of their mean stay within the budget.
pub fn keep_timing(times: &[Duration], plan: &CalibrationPlan) -> bool {
    let done = times.len() as u32;
    if done == 0 {
        return true;
    }
    if done >= plan.max_timed_runs {
        return false;
    }
    let spent: Duration = times.iter().sum();
    spent + spent / done <= plan.budget_per_operation
}

/// The median (the lower middle one for an even count). `times` must not be empty.
pub fn median(mut times: Vec<Duration>) -> Duration {
    assert!(!times.is_empty(), "median of no runs");
    times.sort();
    times[(times.len() - 1) / 2]
}

/// `items` per second over `elapsed`, at least 1 (a zero throughput would divide by zero in
/// the coordinator's estimates, and no real kernel is that slow at these sizes).
pub fn per_second(items: u64, elapsed: Duration) -> u64 {
    let nanos = elapsed.as_nanos().max(1);
    (u128::from(items) * 1_000_000_000 / nanos).clamp(1, u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests;
