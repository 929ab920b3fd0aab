//! `proofrack-bench msm` and `proofrack-bench check-msm`: MSM timing with data on the device,
//! and the MSM correctness matrix on the GPU against arkworks, one JSON line per result.
//!
//! References stay cheap at large sizes: bases P_i = a_i·P0 + b_i·Q are built by chunked
//! parallel additions (no per-point scalar multiplication), so the exact MSM is
//! (Σ s_i a_i)·P0 + (Σ s_i b_i)·Q, two sums in Fr and two scalar multiplications. Up to
//! `--random-max-log` the bases are fully random and the reference is arkworks'
//! `VariableBaseMSM`.

use std::time::Instant;

use anyhow::bail;
use ark_bn254::Fr;
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ec::{CurveGroup, PrimeGroup, VariableBaseMSM};
use ark_ff::{Field, UniformRand, Zero};
use ark_std::rand::{rngs::StdRng, SeedableRng};
use proofrack_kernels::cpu::CpuBackend;
use proofrack_kernels::cuda::{CudaBackend, CudaScalars, MsmProfile, MsmTuning};
use proofrack_kernels::{Backend, BackendError};
use rayon::prelude::*;

use crate::kernel_bench::{default, median, ms, round3, with_backend, BackendChoice, KernelArgs};

#[derive(Clone, Debug, clap::Args)]
#[command(
    mut_arg("sizes", default("16,20,24")),
    mut_arg("backend", default("cuda")),
    mut_arg("seed", default("1")),
    mut_arg("reps", default("7"))
)]
pub struct MsmArgs {
    // `--sizes`: log2 of each MSM size; `--reps`: at least 5.
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Benchmark G2 instead of G1.
    #[arg(long)]
    pub g2: bool,
    /// Largest log2 size at which the CPU (arkworks) MSM is timed; above it the CPU is timed
    /// at this size and `cpu_size` in the JSON says so.
    #[arg(long, default_value_t = 22)]
    pub cpu_max_log: u32,
    /// CUDA only: force these window sizes (one line each) instead of the cost model's.
    #[arg(long, value_delimiter = ',')]
    pub window_bits: Vec<u32>,
    /// CUDA only: at most this many precomputed base copies (1 = none).
    #[arg(long)]
    pub max_copies: Option<u32>,
    /// CUDA only: also print the time of each MSM phase (one extra synchronised run).
    #[arg(long)]
    pub profile: bool,
}

#[derive(Clone, Debug, clap::Args)]
pub struct CheckMsmArgs {
    /// Largest log2 size of the matrix (1, 2, 31..33, 511..513, 1000, 2^16, 2^20, 2^20+7, 2^24,
    /// 2^26).
    #[arg(long, default_value_t = 24)]
    pub max_log: u32,
    /// Up to this log2 size bases are random points and arkworks computes the reference.
    #[arg(long, default_value_t = 20)]
    pub random_max_log: u32,
    /// Largest log2 size of the G2 part of the matrix.
    #[arg(long, default_value_t = 20)]
    pub g2_max_log: u32,
    #[arg(long, value_enum, default_value = "cuda")]
    pub backend: BackendChoice,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Rayon chunk of the structured-base builder: one scalar multiplication per chunk start.
const BASES_CHUNK: usize = 1 << 14;

/// Bases P_i = P0 + i·Q (plus the coefficients (a_i, b_i) = (1, i) the reference needs).
fn structured_bases<P: SWCurveConfig>(
    n: usize,
    p0: Projective<P>,
    q: Projective<P>,
) -> Vec<Affine<P>> {
    let chunks: Vec<Vec<Affine<P>>> = (0..n.div_ceil(BASES_CHUNK))
        .into_par_iter()
        .map(|c| {
            let start = c * BASES_CHUNK;
            let end = (start + BASES_CHUNK).min(n);
            let mut acc = p0 + q * P::ScalarField::from(start as u64);
            let mut out = Vec::with_capacity(end - start);
            for _ in start..end {
                out.push(acc);
                acc += q;
            }
            Projective::normalize_batch(&out)
        })
        .collect();
    chunks.concat()
}

fn random_bases<P: SWCurveConfig>(n: usize, seed: u64) -> Vec<Affine<P>> {
    let chunks: Vec<Vec<Affine<P>>> = (0..n.div_ceil(BASES_CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut rng =
                StdRng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let len = BASES_CHUNK.min(n - c * BASES_CHUNK);
            let pts: Vec<Projective<P>> =
                (0..len).map(|_| Projective::<P>::rand(&mut rng)).collect();
            Projective::normalize_batch(&pts)
        })
        .collect();
    chunks.concat()
}

fn random_scalars(n: usize, seed: u64) -> Vec<Fr> {
    (0..n.div_ceil(BASES_CHUNK))
        .into_par_iter()
        .flat_map_iter(|c| {
            let mut rng = StdRng::seed_from_u64(
                seed.wrapping_add(c as u64)
                    .wrapping_mul(0x2545_f491_4f6c_dd1d),
            );
            let len = BASES_CHUNK.min(n - c * BASES_CHUNK);
            (0..len)
                .map(move |_| Fr::rand(&mut rng))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn run_bench(args: &MsmArgs) -> anyhow::Result<()> {
    if args.kernel.reps < 5 {
        bail!("--reps must be at least 5 (the median of at least five runs is reported)");
    }
    for &log in &args.kernel.sizes {
        if !(1..=26).contains(&log) {
            bail!("MSM sizes are 2^1..=2^26, got 2^{log}");
        }
    }
    with_backend!(args.kernel.backend, b => bench_sizes(b, args))
}

/// Every size on `backend`, over G2 with `--g2`, else G1.
fn bench_sizes<B: MsmBackend>(backend: &B, args: &MsmArgs) -> anyhow::Result<()> {
    let tunings = B::tunings(args);
    for &log in &args.kernel.sizes {
        if args.g2 {
            bench_one::<B, ark_bn254::g2::Config>(backend, log, args, &tunings)?;
        } else {
            bench_one::<B, ark_bn254::g1::Config>(backend, log, args, &tunings)?;
        }
    }
    Ok(())
}

/// One size: exact reference, the CPU timed, then each tuning timed on `backend`.
fn bench_one<B: MsmBackend, P: MsmCurve>(
    backend: &B,
    log: u32,
    args: &MsmArgs,
    tunings: &[MsmTuning],
) -> anyhow::Result<()> {
    let op = format!("msm_{}", P::NAME);
    let n = 1usize << log;
    let seed = args.kernel.seed;
    let t = Instant::now();
    let p0 = Projective::<P>::generator() * Fr::from(seed + 2);
    let q = Projective::<P>::generator() * Fr::from(seed + 3);
    let bases = structured_bases(n, p0, q);
    let scalars = random_scalars(n, seed ^ u64::from(log));
    // exact reference: (Σ s_i)·P0 + (Σ i·s_i)·Q
    let (sum, weighted) = scalars
        .par_iter()
        .enumerate()
        .map(|(i, s)| (*s, *s * Fr::from(i as u64)))
        .reduce(|| (Fr::zero(), Fr::zero()), |a, b| (a.0 + b.0, a.1 + b.1));
    let want = (p0 * sum + q * weighted).into_affine();
    let gen_ms = ms(t);

    let cpu_log = log.min(args.cpu_max_log);
    let cpu_n = 1usize << cpu_log;
    let cpu_reps = if cpu_log >= 20 { 1 } else { 3 };
    let mut cpu_times = Vec::new();
    for _ in 0..cpu_reps {
        let t = Instant::now();
        let r = Projective::<P>::msm(&bases[..cpu_n], &scalars[..cpu_n]).expect("equal lengths");
        cpu_times.push(ms(t));
        let _ = std::hint::black_box(r);
    }
    let cpu_ms = median(cpu_times);
    // compare at equal size: the CPU time is scaled linearly when it ran smaller (MSM cost
    // is close to linear at these sizes; `cpu_scaled_linearly` says when this happened)
    let cpu_ms_scaled = cpu_ms * (n as f64 / cpu_n as f64);

    let t = Instant::now();
    let dev_scalars = backend.upload_scalars(&scalars)?;
    let upload_ms = ms(t);
    for &tuning in tunings {
        let t = Instant::now();
        let resident = backend.load_tuned::<P>(&bases, tuning)?;
        let load_ms = ms(t);
        let first = P::backend_msm(backend, &resident, &dev_scalars)?;
        if first.into_affine() != want {
            bail!(
                "{op} 2^{log} {tuning:?}: {} result differs from the exact reference",
                backend.info().name
            );
        }
        let mut times = Vec::with_capacity(args.kernel.reps);
        for _ in 0..args.kernel.reps {
            let t = Instant::now();
            let r = P::backend_msm(backend, &resident, &dev_scalars)?;
            times.push(ms(t));
            let _ = std::hint::black_box(r);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let line = serde_json::json!({
            "op": op,
            "log2": log,
            "size": n,
            "backend": backend.info().name,
            "card": backend.info().name,
            "ms_median": round3(median),
            "ms_min": round3(times[0]),
            "ms_max": round3(times[times.len() - 1]),
            "reps": args.kernel.reps,
            "points_per_s": (n as f64 / (median / 1e3)).round(),
            "cpu_ms": round3(cpu_ms_scaled),
            "cpu_size": cpu_n,
            "cpu_ms_measured": round3(cpu_ms),
            "cpu_scaled_linearly": cpu_n != n,
            "ratio": round3(cpu_ms_scaled / median),
            "shape": B::describe::<P>(&resident),
            "load_bases_ms": round3(load_ms),
            "upload_scalars_ms": round3(upload_ms),
            "gen_inputs_ms": round3(gen_ms),
            "cpu_threads": rayon::current_num_threads(),
        });
        println!("{line}");
        if args.profile {
            if let Some(p) = backend.profile::<P>(&resident, &dev_scalars)? {
                print_profile(&op, log, &p, B::describe::<P>(&resident));
            }
        }
    }
    Ok(())
}

fn print_profile(op: &str, log: u32, p: &MsmProfile, shape: serde_json::Value) {
    let phases: serde_json::Map<String, serde_json::Value> = p
        .phases_ms
        .iter()
        .map(|(n, ms)| (n.to_string(), serde_json::json!(round3(*ms))))
        .collect();
    let total: f64 = p.phases_ms.iter().map(|(_, ms)| ms).sum();
    let line = serde_json::json!({
        "op": format!("{op}_profile"),
        "log2": log,
        "size": 1usize << log,
        "shape": shape,
        "phases_ms": phases,
        "total_ms": round3(total),
    });
    println!("{line}");
}

/// A curve the MSM benchmark and check run on: its name and the backend's MSM calls for it
/// (G1 and G2 differ only in these).
pub trait MsmCurve: SWCurveConfig<ScalarField = Fr> {
    /// `g1` or `g2`, as the JSON lines name the curve.
    const NAME: &'static str;
    /// The backend's resident bases of this curve.
    type Bases<B: Backend>: Send + Sync;

    fn load_bases<B: Backend>(
        backend: &B,
        bases: &[Affine<Self>],
    ) -> Result<Self::Bases<B>, BackendError>;
    fn backend_msm<B: Backend>(
        backend: &B,
        bases: &Self::Bases<B>,
        scalars: &B::Scalars,
    ) -> Result<Projective<Self>, BackendError>;
    /// CUDA: bases loaded with the window size and copy count forced.
    fn load_tuned(
        backend: &CudaBackend,
        bases: &[Affine<Self>],
        tuning: MsmTuning,
    ) -> Result<Self::Bases<CudaBackend>, BackendError>;
    /// CUDA: the MSM with the time of each phase.
    fn msm_profiled(
        backend: &CudaBackend,
        bases: &Self::Bases<CudaBackend>,
        scalars: &CudaScalars,
    ) -> Result<MsmProfile, BackendError>;
    /// CUDA: ((window bits, copies), device bytes) of loaded bases.
    fn cuda_shape(bases: &Self::Bases<CudaBackend>) -> ((u32, u32), usize);
}

/// [`MsmCurve`] for a curve: its name, its bases' associated type in [`Backend`] and the
/// backend calls of that curve (the only differences between G1 and G2).
macro_rules! msm_curve {
    ($curve:ty, $name:literal, $bases:ident, $load:ident, $msm:ident, $load_tuned:ident, $profiled:ident) => {
        impl MsmCurve for $curve {
            const NAME: &'static str = $name;
            type Bases<B: Backend> = B::$bases;

            fn load_bases<B: Backend>(
                backend: &B,
                bases: &[Affine<Self>],
            ) -> Result<Self::Bases<B>, BackendError> {
                backend.$load(bases)
            }
            fn backend_msm<B: Backend>(
                backend: &B,
                bases: &Self::Bases<B>,
                scalars: &B::Scalars,
            ) -> Result<Projective<Self>, BackendError> {
                backend.$msm(bases, scalars)
            }
            fn load_tuned(
                backend: &CudaBackend,
                bases: &[Affine<Self>],
                tuning: MsmTuning,
            ) -> Result<Self::Bases<CudaBackend>, BackendError> {
                backend.$load_tuned(bases, tuning)
            }
            fn msm_profiled(
                backend: &CudaBackend,
                bases: &Self::Bases<CudaBackend>,
                scalars: &CudaScalars,
            ) -> Result<MsmProfile, BackendError> {
                backend.$profiled(bases, scalars).map(|(_, p)| p)
            }
            fn cuda_shape(bases: &Self::Bases<CudaBackend>) -> ((u32, u32), usize) {
                (bases.window_bits_and_copies(), bases.device_bytes())
            }
        }
    };
}

msm_curve!(
    ark_bn254::g1::Config,
    "g1",
    BasesG1,
    load_bases_g1,
    msm_g1,
    load_bases_g1_tuned,
    msm_g1_profiled
);
msm_curve!(
    ark_bn254::g2::Config,
    "g2",
    BasesG2,
    load_bases_g2,
    msm_g2,
    load_bases_g2_tuned,
    msm_g2_profiled
);

/// What the MSM benchmark does differently per backend: the CPU has no tuning, shape or
/// profile; CUDA forces window sizes and copies, and reports both.
pub trait MsmBackend: Backend + Sized {
    /// The tunings each size is timed with.
    fn tunings(args: &MsmArgs) -> Vec<MsmTuning>;
    fn load_tuned<P: MsmCurve>(
        &self,
        bases: &[Affine<P>],
        tuning: MsmTuning,
    ) -> Result<P::Bases<Self>, BackendError>;
    /// The loaded bases' shape for the JSON line (null where there is none).
    fn describe<P: MsmCurve>(bases: &P::Bases<Self>) -> serde_json::Value;
    /// Each phase's time, where the backend can tell.
    fn profile<P: MsmCurve>(
        &self,
        bases: &P::Bases<Self>,
        scalars: &Self::Scalars,
    ) -> Result<Option<MsmProfile>, BackendError>;
}

impl MsmBackend for CpuBackend {
    fn tunings(_: &MsmArgs) -> Vec<MsmTuning> {
        vec![MsmTuning::default()]
    }
    fn load_tuned<P: MsmCurve>(
        &self,
        bases: &[Affine<P>],
        _: MsmTuning,
    ) -> Result<P::Bases<Self>, BackendError> {
        P::load_bases(self, bases)
    }
    fn describe<P: MsmCurve>(_: &P::Bases<Self>) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn profile<P: MsmCurve>(
        &self,
        _: &P::Bases<Self>,
        _: &Self::Scalars,
    ) -> Result<Option<MsmProfile>, BackendError> {
        Ok(None)
    }
}

impl MsmBackend for CudaBackend {
    fn tunings(args: &MsmArgs) -> Vec<MsmTuning> {
        if args.window_bits.is_empty() {
            return vec![MsmTuning {
                window_bits: None,
                max_copies: args.max_copies,
            }];
        }
        args.window_bits
            .iter()
            .map(|&c| MsmTuning {
                window_bits: Some(c),
                max_copies: args.max_copies,
            })
            .collect()
    }
    fn load_tuned<P: MsmCurve>(
        &self,
        bases: &[Affine<P>],
        tuning: MsmTuning,
    ) -> Result<P::Bases<Self>, BackendError> {
        P::load_tuned(self, bases, tuning)
    }
    fn describe<P: MsmCurve>(bases: &P::Bases<Self>) -> serde_json::Value {
        let ((c, copies), bytes) = P::cuda_shape(bases);
        serde_json::json!({ "window_bits": c, "copies": copies, "bases_bytes": bytes })
    }
    fn profile<P: MsmCurve>(
        &self,
        bases: &P::Bases<Self>,
        scalars: &Self::Scalars,
    ) -> Result<Option<MsmProfile>, BackendError> {
        P::msm_profiled(self, bases, scalars).map(Some)
    }
}

#[derive(Clone, Copy, Debug)]
enum Dist {
    Random,
    Zero,
    MinusOne,
    AllEqual,
    Small,
}

impl Dist {
    const ALL: [Dist; 5] = [
        Dist::Random,
        Dist::Zero,
        Dist::MinusOne,
        Dist::AllEqual,
        Dist::Small,
    ];

    fn name(self) -> &'static str {
        match self {
            Dist::Random => "random",
            Dist::Zero => "zero",
            Dist::MinusOne => "r-1",
            Dist::AllEqual => "all-equal",
            Dist::Small => "small<2^16",
        }
    }

    fn scalars(self, n: usize, seed: u64) -> Vec<Fr> {
        match self {
            Dist::Random => random_scalars(n, seed),
            Dist::Zero => vec![Fr::zero(); n],
            Dist::MinusOne => vec![-Fr::ONE; n],
            Dist::AllEqual => vec![Fr::rand(&mut StdRng::seed_from_u64(seed)); n],
            Dist::Small => (0..n)
                .into_par_iter()
                .map(|i| {
                    Fr::from((i as u64).wrapping_mul(0x9e37_79b9).wrapping_add(seed) % (1 << 16))
                })
                .collect(),
        }
    }
}

/// Structured bases: base i = a_i·P0 + b_i·Q, with P0, Q and the (a_i, b_i).
struct Structured<P: SWCurveConfig> {
    p0: Projective<P>,
    q: Projective<P>,
    coeffs: Vec<(Fr, Fr)>,
}

/// Bases of a check case, with what the reference needs.
struct CaseBases<P: SWCurveConfig> {
    points: Vec<Affine<P>>,
    kind: &'static str,
    structured: Option<Structured<P>>,
}

/// Repeats, negations and infinity at fixed positions: every 97th base repeats base 3,
/// every 101st is the negation of base 5, every 103rd is the point at infinity (below 8
/// bases: the last repeats the first).
fn inject_edges<P: SWCurveConfig>(points: &mut [Affine<P>], coeffs: Option<&mut Vec<(Fr, Fr)>>) {
    let mut coeffs = coeffs;
    if points.len() < 8 {
        // tiny sets: the last base repeats the first
        if points.len() >= 2 {
            let last = points.len() - 1;
            points[last] = points[0];
            if let Some(c) = coeffs.as_deref_mut() {
                c[last] = c[0];
            }
        }
        return;
    }
    let (p3, p5) = (points[3], points[5]);
    for i in 8..points.len() {
        let kind = if i % 103 == 0 {
            2
        } else if i % 101 == 0 {
            1
        } else if i % 97 == 0 {
            0
        } else {
            continue;
        };
        points[i] = match kind {
            0 => p3,
            1 => -p5,
            _ => Affine::identity(),
        };
        if let Some(c) = coeffs.as_deref_mut() {
            c[i] = match kind {
                0 => c[3],
                1 => (-c[5].0, -c[5].1),
                _ => (Fr::zero(), Fr::zero()),
            };
        }
    }
}

fn case_bases<P: SWCurveConfig<ScalarField = Fr>>(
    n: usize,
    random: bool,
    seed: u64,
) -> CaseBases<P> {
    if random {
        let mut points = random_bases::<P>(n, seed);
        inject_edges(&mut points, None);
        CaseBases {
            points,
            kind: "random+edges",
            structured: None,
        }
    } else {
        let p0 = Projective::<P>::generator() * Fr::from(seed + 11);
        let q = Projective::<P>::generator() * Fr::from(seed + 13);
        let mut points = structured_bases(n, p0, q);
        let mut coeffs: Vec<(Fr, Fr)> = (0..n)
            .into_par_iter()
            .map(|i| (Fr::ONE, Fr::from(i as u64)))
            .collect();
        inject_edges(&mut points, Some(&mut coeffs));
        CaseBases {
            points,
            kind: "structured+edges",
            structured: Some(Structured { p0, q, coeffs }),
        }
    }
}

fn reference<P: SWCurveConfig<ScalarField = Fr>>(
    bases: &CaseBases<P>,
    scalars: &[Fr],
) -> Projective<P> {
    match &bases.structured {
        None => Projective::<P>::msm(&bases.points, scalars).expect("equal lengths"),
        Some(Structured { p0, q, coeffs }) => {
            let (a, b) = coeffs
                .par_iter()
                .zip(scalars.par_iter())
                .map(|((a, b), s)| (*a * s, *b * s))
                .reduce(|| (Fr::zero(), Fr::zero()), |x, y| (x.0 + y.0, x.1 + y.1));
            *p0 * a + *q * b
        }
    }
}

pub fn run_check(args: &CheckMsmArgs) -> anyhow::Result<()> {
    with_backend!(args.backend, b => check_all(b, args))
}

fn check_sizes(max_log: u32) -> Vec<usize> {
    let mut v = vec![1usize, 2, 31, 32, 33, 511, 512, 513, 1000];
    // 2^26 only when asked (--max-log 26): its bases and precomputed copies need ~60 GB.
    for (log, extra) in [(16u32, 0usize), (20, 0), (20, 7), (24, 0), (26, 0)] {
        if log <= max_log {
            v.push((1 << log) + extra);
        }
    }
    v
}

fn check_all<B: Backend>(backend: &B, args: &CheckMsmArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut failures = 0usize;
    let mut cases = 0usize;
    for &n in &check_sizes(args.max_log) {
        let random = n <= 1usize << args.random_max_log;
        failures += check_curve::<B, ark_bn254::g1::Config>(backend, n, random, args, &mut cases)?;
    }
    for &n in &check_sizes(args.g2_max_log.min(args.max_log)) {
        let random = n <= 1usize << args.random_max_log.min(16);
        failures += check_curve::<B, ark_bn254::g2::Config>(backend, n, random, args, &mut cases)?;
    }
    let summary = serde_json::json!({
        "op": "check-msm-summary",
        "backend": backend.info().name,
        "cases": cases,
        "failures": failures,
        "total_s": round3(started.elapsed().as_secs_f64()),
    });
    println!("{summary}");
    if failures > 0 {
        bail!("{failures} of {cases} MSM checks failed");
    }
    Ok(())
}

/// Every scalar distribution against bases of size `n` on curve `P`; the failures.
fn check_curve<B: Backend, P: MsmCurve>(
    backend: &B,
    n: usize,
    random: bool,
    args: &CheckMsmArgs,
    cases: &mut usize,
) -> anyhow::Result<usize> {
    let t = Instant::now();
    let bases = case_bases::<P>(n, random, args.seed ^ n as u64);
    let gen_ms = ms(t);
    let t = Instant::now();
    let resident = P::load_bases(backend, &bases.points)?;
    let load_ms = ms(t);
    let mut failures = 0;
    for (k, dist) in Dist::ALL.iter().enumerate() {
        let scalars = dist.scalars(n, args.seed.wrapping_add(k as u64 * 1000 + n as u64));
        let dev = backend.upload_scalars(&scalars)?;
        let t = Instant::now();
        let got = P::backend_msm(backend, &resident, &dev);
        let gpu_ms = ms(t);
        let t = Instant::now();
        let want = reference(&bases, &scalars);
        let ref_ms = ms(t);
        let (ok, error) = match &got {
            Ok(g) => (g.into_affine() == want.into_affine(), None),
            Err(e) => (false, Some(e.to_string())),
        };
        *cases += 1;
        if !ok {
            failures += 1;
        }
        let line = serde_json::json!({
            "op": "check-msm",
            "curve": P::NAME,
            "size": n,
            "dist": dist.name(),
            "bases": bases.kind,
            "ok": ok,
            "error": error,
            "ms": round3(gpu_ms),
            "ref_ms": round3(ref_ms),
            "bases_gen_ms": round3(gen_ms),
            "load_bases_ms": round3(load_ms),
        });
        println!("{line}");
    }
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::{G1Projective, G2Projective};

    /// The cheap reference equals arkworks' MSM on structured bases with injected edges.
    #[test]
    fn structured_reference_is_exact() {
        for n in [1usize, 7, 300] {
            let bases = case_bases::<ark_bn254::g1::Config>(n, false, 3);
            for d in Dist::ALL {
                let s = d.scalars(n, 9);
                let want = G1Projective::msm(&bases.points, &s).expect("lengths");
                assert_eq!(
                    reference(&bases, &s).into_affine(),
                    want.into_affine(),
                    "n={n} {d:?}"
                );
            }
        }
        let g2 = case_bases::<ark_bn254::g2::Config>(220, false, 4);
        let s = Dist::Random.scalars(220, 1);
        assert_eq!(
            reference(&g2, &s),
            G2Projective::msm(&g2.points, &s).expect("lengths")
        );
    }

    #[test]
    fn cpu_backend_passes_the_small_check_matrix() {
        let args = CheckMsmArgs {
            max_log: 10,
            random_max_log: 10,
            g2_max_log: 8,
            backend: BackendChoice::Cpu,
            seed: 1,
        };
        check_all(&CpuBackend::new(), &args).expect("CPU backend is the reference");
    }
}
