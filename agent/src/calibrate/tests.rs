use super::*;
use ark_ff::Zero;
use proofrack_kernels::curve::{G2Affine, G2Projective};
use proofrack_kernels::BackendInfo;
use std::sync::atomic::{AtomicU32, Ordering};

/// How the fake misbehaves.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Fault {
    #[default]
    None,
    /// Every MSM result is off by the generator.
    WrongMsm,
    /// MSMs after the first three calls return a different point each time.
    FlakyMsm,
    /// The inverse NTT forgets its 1/n scaling.
    UnscaledInverse,
    /// Loading more bases than the check MSM's fails as if the device were out of memory.
    OutOfMemory,
}

/// A backend on arkworks with a fixed delay per kernel call, so throughput is known.
struct FakeBackend {
    kind: BackendKind,
    device_memory_total_bytes: Option<u64>,
    msm_delay: Duration,
    ntt_delay: Duration,
    fault: Fault,
    msm_calls: AtomicU32,
}

impl FakeBackend {
    fn new(kind: BackendKind) -> Self {
        FakeBackend {
            kind,
            device_memory_total_bytes: None,
            msm_delay: Duration::ZERO,
            ntt_delay: Duration::ZERO,
            fault: Fault::None,
            msm_calls: AtomicU32::new(0),
        }
    }
    fn with_fault(fault: Fault) -> Self {
        FakeBackend {
            fault,
            ..Self::new(BackendKind::Cpu)
        }
    }
}

impl Backend for FakeBackend {
    type Scalars = Vec<Fr>;
    type BasesG1 = Vec<G1Affine>;
    type BasesG2 = Vec<G2Affine>;

    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: self.kind,
            name: format!("fake-{}", self.kind),
            device_memory_total_bytes: self.device_memory_total_bytes,
        }
    }
    fn upload_scalars(&self, scalars: &[Fr]) -> Result<Vec<Fr>, BackendError> {
        Ok(scalars.to_vec())
    }
    fn download_scalars(&self, scalars: &Vec<Fr>) -> Result<Vec<Fr>, BackendError> {
        Ok(scalars.clone())
    }
    fn scalars_len(&self, scalars: &Vec<Fr>) -> usize {
        scalars.len()
    }
    fn load_bases_g1(&self, bases: &[G1Affine]) -> Result<Vec<G1Affine>, BackendError> {
        if self.fault == Fault::OutOfMemory && bases.len() > 1 << CHECK_LOG_SIZE {
            return Err(BackendError::OutOfMemory {
                needed_bytes: 64 * bases.len() as u64,
                free_bytes: 0,
            });
        }
        Ok(bases.to_vec())
    }
    fn load_bases_g2(&self, bases: &[G2Affine]) -> Result<Vec<G2Affine>, BackendError> {
        Ok(bases.to_vec())
    }
    fn msm_g1(
        &self,
        bases: &Vec<G1Affine>,
        scalars: &Vec<Fr>,
    ) -> Result<G1Projective, BackendError> {
        std::thread::sleep(self.msm_delay);
        let call = self.msm_calls.fetch_add(1, Ordering::Relaxed);
        let mut r = G1Projective::msm(bases, scalars)
            .map_err(|n| BackendError::InvalidInput(format!("length mismatch at {n}")))?;
        match self.fault {
            Fault::WrongMsm => r += G1Projective::generator(),
            Fault::FlakyMsm if call >= 3 => r += G1Projective::generator() * Fr::from(call),
            _ => {}
        }
        Ok(r)
    }
    fn msm_g2(
        &self,
        bases: &Vec<G2Affine>,
        scalars: &Vec<Fr>,
    ) -> Result<G2Projective, BackendError> {
        G2Projective::msm(bases, scalars)
            .map_err(|n| BackendError::InvalidInput(format!("length mismatch at {n}")))
    }
    fn ntt(
        &self,
        data: &mut Vec<Fr>,
        direction: NttDirection,
        coset: Option<Fr>,
    ) -> Result<(), BackendError> {
        assert!(coset.is_none(), "calibration uses plain NTTs");
        std::thread::sleep(self.ntt_delay);
        let domain = Radix2EvaluationDomain::<Fr>::new(data.len())
            .ok_or_else(|| BackendError::InvalidInput("bad length".into()))?;
        match direction {
            NttDirection::Forward => domain.fft_in_place(data),
            NttDirection::Inverse => {
                domain.ifft_in_place(data);
                if self.fault == Fault::UnscaledInverse {
                    let n = Fr::from(data.len() as u64);
                    data.iter_mut().for_each(|x| *x *= n);
                }
            }
        }
        Ok(())
    }
    fn mul_sub_assign(
        &self,
        a: &mut Vec<Fr>,
        b: &Vec<Fr>,
        c: &Vec<Fr>,
    ) -> Result<(), BackendError> {
        for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
            *a = *a * b - c;
        }
        Ok(())
    }
}

fn tiny_plan() -> CalibrationPlan {
    CalibrationPlan {
        msm_log_size: 8,
        ntt_log_size: 8,
        // Generous, so a loaded test machine still gets all three runs; the budget has its
        // own test.
        budget_per_operation: Duration::from_secs(10),
        max_timed_runs: 3,
    }
}

#[test]
fn plans_follow_the_backend_kind() {
    let cpu = CalibrationPlan::for_backend(BackendKind::Cpu);
    let cuda = CalibrationPlan::for_backend(BackendKind::Cuda);
    assert_eq!((cpu.msm_log_size, cpu.ntt_log_size), (12, 14));
    assert_eq!((cuda.msm_log_size, cuda.ntt_log_size), (20, 22));
}

#[test]
fn throughput_follows_the_kernel_time() {
    let mut fake = FakeBackend::new(BackendKind::Cpu);
    fake.msm_delay = Duration::from_millis(20);
    fake.ntt_delay = Duration::from_millis(10);
    let cal = calibrate(&fake, &tiny_plan(), 8 << 30).unwrap();
    // 256 points in ≥ 20 ms: at most 12,800 points/s, and not far below (tiny compute).
    assert!(cal.msm_g1_points_per_sec <= 12_800, "{cal:?}");
    assert!(cal.msm_g1_points_per_sec >= 12_800 / 3, "{cal:?}");
    // Each timed NTT run is two 256-element transforms of ≥ 10 ms each.
    assert!(cal.ntt_elements_per_sec <= 25_600, "{cal:?}");
    assert!(cal.ntt_elements_per_sec >= 25_600 / 3, "{cal:?}");
    assert_eq!((cal.msm_size, cal.ntt_size), (256, 256));
    assert_eq!(cal.backend, ProverBackend::Cpu);
    assert_eq!(cal.backend_name, "fake-cpu");
    assert_eq!(
        cal.compute_memory_total_bytes,
        8 << 30,
        "the CPU computes in host memory"
    );
    // check MSM + warm-up + 3 timed runs
    assert_eq!(fake.msm_calls.load(Ordering::Relaxed), 5);
}

#[test]
fn device_memory_is_reported_where_the_backend_has_one() {
    let mut fake = FakeBackend::new(BackendKind::Cuda);
    fake.device_memory_total_bytes = Some(80 << 30);
    let cal = calibrate(&fake, &tiny_plan(), 8 << 30).unwrap();
    assert_eq!(cal.backend, ProverBackend::Cuda);
    assert_eq!(cal.compute_memory_total_bytes, 80 << 30);
}

#[test]
fn the_budget_limits_the_timed_runs() {
    let mut fake = FakeBackend::new(BackendKind::Cpu);
    fake.msm_delay = Duration::from_millis(30);
    let plan = CalibrationPlan {
        budget_per_operation: Duration::from_millis(50),
        max_timed_runs: 5,
        ..tiny_plan()
    };
    calibrate(&fake, &plan, 1).unwrap();
    // check + warm-up + one timed run (a second would pass 50 ms).
    assert_eq!(fake.msm_calls.load(Ordering::Relaxed), 3);
}

#[test]
fn a_wrong_msm_is_refused_before_timing() {
    let err = calibrate(&FakeBackend::with_fault(Fault::WrongMsm), &tiny_plan(), 1).unwrap_err();
    assert!(
        matches!(
            err,
            CalibrationError::WrongResult {
                operation: "MSM",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("differs from arkworks"), "{err}");
}

#[test]
fn an_msm_that_changes_between_runs_is_refused() {
    let err = calibrate(&FakeBackend::with_fault(Fault::FlakyMsm), &tiny_plan(), 1).unwrap_err();
    assert!(err.to_string().contains("different points"), "{err}");
}

#[test]
fn an_ntt_that_does_not_round_trip_is_refused() {
    let err = calibrate(
        &FakeBackend::with_fault(Fault::UnscaledInverse),
        &tiny_plan(),
        1,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            CalibrationError::WrongResult {
                operation: "NTT",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn backend_errors_name_the_stage() {
    let err = calibrate(
        &FakeBackend::with_fault(Fault::OutOfMemory),
        &tiny_plan(),
        1,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("load MSM bases") && text.contains("out of device memory"),
        "{text}"
    );
}

#[test]
fn random_bases_are_distinct_valid_points_in_one_progression() {
    let n = 2 * BASES_PER_CHUNK + 5; // crosses chunk boundaries
    let mut rng = StdRng::seed_from_u64(1);
    let bases = random_bases(n, &mut rng);
    assert_eq!(bases.len(), n);
    assert!(bases
        .iter()
        .all(|p| p.is_on_curve() && p.is_in_correct_subgroup_assuming_on_curve()));
    // Consecutive differences all equal the same step, across chunks too.
    let step = G1Projective::from(bases[1]) - bases[0];
    assert!(!step.is_zero());
    for (i, w) in bases.windows(2).enumerate() {
        assert_eq!(G1Projective::from(w[1]) - w[0], step, "at {i}");
    }
    let mut sorted: Vec<_> = bases.iter().map(|p| (p.x, p.y)).collect();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), n);
}

#[test]
fn run_count_decisions() {
    let plan = CalibrationPlan {
        budget_per_operation: Duration::from_millis(100),
        max_timed_runs: 4,
        ..tiny_plan()
    };
    let ms = Duration::from_millis;
    assert!(keep_timing(&[], &plan));
    assert!(keep_timing(&[ms(10)], &plan));
    assert!(
        !keep_timing(&[ms(40), ms(40)], &plan),
        "a third 40 ms run passes 100 ms"
    );
    assert!(!keep_timing(&[ms(500)], &plan));
    assert!(!keep_timing(&[ms(1); 4], &plan), "max_timed_runs reached");
}

#[test]
fn median_and_rates() {
    let ms = Duration::from_millis;
    assert_eq!(median(vec![ms(5), ms(1), ms(3)]), ms(3));
    assert_eq!(median(vec![ms(4), ms(1), ms(3), ms(2)]), ms(2));
    assert_eq!(median(vec![ms(7)]), ms(7));
    assert_eq!(per_second(1000, ms(500)), 2000);
    assert_eq!(per_second(1, Duration::from_secs(10)), 1, "at least 1");
    assert_eq!(per_second(u64::MAX, Duration::ZERO), u64::MAX);
}

/// The real CPU backend, at the production plan: must finish within a few seconds here.
#[test]
fn the_cpu_backend_calibrates_within_seconds() {
    let backend = proofrack_kernels::cpu::CpuBackend::new();
    let plan = CalibrationPlan::for_backend(BackendKind::Cpu);
    let started = Instant::now();
    let cal = calibrate(&backend, &plan, 1 << 30).unwrap();
    let took = started.elapsed();
    eprintln!("cpu calibration: {cal:?} in {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        cal.msm_g1_points_per_sec > 1_000 && cal.ntt_elements_per_sec > 100_000,
        "{cal:?}"
    );
}
