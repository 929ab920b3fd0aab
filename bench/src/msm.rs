//! `proofrack-bench msm` and `proofrack-bench check-msm`: MSM timing with data on the device,
//! and the MSM correctness matrix on the GPU against arkworks, one JSON line per result.
//!
//! References stay cheap at large sizes: bases P_i = a_i·P0 + b_i·Q are built by chunked
//! parallel additions (no per-point scalar multiplication), so the exact MSM is
//! (Σ s_i a_i)·P0 + (Σ s_i b_i)·Q, two sums in Fr and two scalar multiplications. Up to
//! `--random-max-log` the bases are fully random and the reference is arkworks'
//! `VariableBaseMSM`.

use std::time::Instant;

use anyhow::{bail, Context};
use ark_bn254::Fr;
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ec::{CurveGroup, PrimeGroup, VariableBaseMSM};
use ark_ff::{Field, UniformRand, Zero};
use ark_std::rand::{rngs::StdRng, SeedableRng};
use proofrack_kernels::cpu::CpuBackend;
use proofrack_kernels::cuda::{CudaBackend, MsmProfile, MsmTuning};
use proofrack_kernels::Backend;
use rayon::prelude::*;

use crate::groth16::{ms, round3, BackendChoice};

#[derive(Clone, Debug, clap::Args)]
pub struct MsmArgs {
    /// log2 of each MSM size.
    #[arg(long, value_delimiter = ',', default_value = "16,20,24")]
    pub sizes: Vec<u32>,
    /// Benchmark G2 instead of G1.
    #[arg(long)]
    pub g2: bool,
    #[arg(long, value_enum, default_value = "cuda")]
    pub backend: BackendChoice,
    /// Measured MSMs per size after one warm-up; the median is reported (at least 5).
    #[arg(long, default_value_t = 7)]
    pub reps: usize,
    /// Largest log2 size at which the CPU (arkworks) MSM is timed; above it the CPU is timed
    /// at this size and `cpu_size` in the JSON says so.
    #[arg(long, default_value_t = 22)]
    pub cpu_max_log: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
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
    if args.reps < 5 {
        bail!("--reps must be at least 5 (the median of at least five runs is reported)");
    }
    for &log in &args.sizes {
        if !(1..=26).contains(&log) {
            bail!("MSM sizes are 2^1..=2^26, got 2^{log}");
        }
    }
    match args.backend {
        BackendChoice::Cpu => {
            let b = CpuBackend::new();
            for &log in &args.sizes {
                if args.g2 {
                    bench_one::<_, ark_bn254::g2::Config>(
                        &b,
                        log,
                        args,
                        "msm_g2",
                        &[MsmTuning::default()],
                        |b, p, _| b.load_bases_g2(p),
                        |b, x, s| b.msm_g2(x, s),
                        |_| serde_json::Value::Null,
                        |_, _, _| Ok(None),
                    )?;
                } else {
                    bench_one::<_, ark_bn254::g1::Config>(
                        &b,
                        log,
                        args,
                        "msm_g1",
                        &[MsmTuning::default()],
                        |b, p, _| b.load_bases_g1(p),
                        |b, x, s| b.msm_g1(x, s),
                        |_| serde_json::Value::Null,
                        |_, _, _| Ok(None),
                    )?;
                }
            }
        }
        BackendChoice::Cuda => {
            let b = CudaBackend::new(0).context("opening the CUDA backend (GPU 0)")?;
            let tunings: Vec<MsmTuning> = if args.window_bits.is_empty() {
                vec![MsmTuning {
                    window_bits: None,
                    max_copies: args.max_copies,
                }]
            } else {
                args.window_bits
                    .iter()
                    .map(|&c| MsmTuning {
                        window_bits: Some(c),
                        max_copies: args.max_copies,
                    })
                    .collect()
            };
            for &log in &args.sizes {
                if args.g2 {
                    bench_one::<_, ark_bn254::g2::Config>(
                        &b,
                        log,
                        args,
                        "msm_g2",
                        &tunings,
                        |b, p, t| b.load_bases_g2_tuned(p, t),
                        |b, x, s| b.msm_g2(x, s),
                        |x| shape_json(x.window_bits_and_copies(), x.device_bytes()),
                        |b, x, s| {
                            if args.profile {
                                b.msm_g2_profiled(x, s).map(|(_, p)| Some(p))
                            } else {
                                Ok(None)
                            }
                        },
                    )?;
                } else {
                    bench_one::<_, ark_bn254::g1::Config>(
                        &b,
                        log,
                        args,
                        "msm_g1",
                        &tunings,
                        |b, p, t| b.load_bases_g1_tuned(p, t),
                        |b, x, s| b.msm_g1(x, s),
                        |x| shape_json(x.window_bits_and_copies(), x.device_bytes()),
                        |b, x, s| {
                            if args.profile {
                                b.msm_g1_profiled(x, s).map(|(_, p)| Some(p))
                            } else {
                                Ok(None)
                            }
                        },
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn shape_json((c, copies): (u32, u32), bytes: usize) -> serde_json::Value {
    serde_json::json!({ "window_bits": c, "copies": copies, "bases_bytes": bytes })
}

#[allow(clippy::too_many_arguments)]
fn bench_one<B, P>(
    backend: &B,
    log: u32,
    args: &MsmArgs,
    op: &str,
    tunings: &[MsmTuning],
    load: impl Fn(&B, &[Affine<P>], MsmTuning) -> Result<BasesOf<B, P>, proofrack_kernels::BackendError>,
    msm: impl Fn(
        &B,
        &BasesOf<B, P>,
        &B::Scalars,
    ) -> Result<Projective<P>, proofrack_kernels::BackendError>,
    describe: impl Fn(&BasesOf<B, P>) -> serde_json::Value,
    profile: impl Fn(
        &B,
        &BasesOf<B, P>,
        &B::Scalars,
    ) -> Result<Option<MsmProfile>, proofrack_kernels::BackendError>,
) -> anyhow::Result<()>
where
    B: Backend,
    P: SWCurveConfig<ScalarField = Fr> + BackendBases<B>,
{
    let n = 1usize << log;
    let t = Instant::now();
    let p0 = Projective::<P>::generator() * Fr::from(args.seed + 2);
    let q = Projective::<P>::generator() * Fr::from(args.seed + 3);
    let bases = structured_bases(n, p0, q);
    let scalars = random_scalars(n, args.seed ^ u64::from(log));
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
    cpu_times.sort_by(f64::total_cmp);
    let cpu_ms = cpu_times[cpu_times.len() / 2];
    // compare at equal size: the CPU time is scaled linearly when it ran smaller (MSM cost
    // is close to linear at these sizes; `cpu_scaled_linearly` says when this happened)
    let cpu_ms_scaled = cpu_ms * (n as f64 / cpu_n as f64);

    let t = Instant::now();
    let dev_scalars = backend.upload_scalars(&scalars)?;
    let upload_ms = ms(t);
    for &tuning in tunings {
        let t = Instant::now();
        let resident = load(backend, &bases, tuning)?;
        let load_ms = ms(t);
        let first = msm(backend, &resident, &dev_scalars)?;
        if first.into_affine() != want {
            bail!(
                "{op} 2^{log} {tuning:?}: {} result differs from the exact reference",
                backend.info().name
            );
        }
        let mut times = Vec::with_capacity(args.reps);
        for _ in 0..args.reps {
            let t = Instant::now();
            let r = msm(backend, &resident, &dev_scalars)?;
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
            "reps": args.reps,
            "points_per_s": (n as f64 / (median / 1e3)).round(),
            "cpu_ms": round3(cpu_ms_scaled),
            "cpu_size": cpu_n,
            "cpu_ms_measured": round3(cpu_ms),
            "cpu_scaled_linearly": cpu_n != n,
            "ratio": round3(cpu_ms_scaled / median),
            "shape": describe(&resident),
            "load_bases_ms": round3(load_ms),
            "upload_scalars_ms": round3(upload_ms),
            "gen_inputs_ms": round3(gen_ms),
            "cpu_threads": rayon::current_num_threads(),
        });
        println!("{line}");
        if let Some(p) = profile(backend, &resident, &dev_scalars)? {
            let phases: serde_json::Map<String, serde_json::Value> = p
                .phases_ms
                .iter()
                .map(|(n, ms)| (n.to_string(), serde_json::json!(round3(*ms))))
                .collect();
            let total: f64 = p.phases_ms.iter().map(|(_, ms)| ms).sum();
            let line = serde_json::json!({
                "op": format!("{op}_profile"),
                "log2": log,
                "size": n,
                "shape": describe(&resident),
                "phases_ms": phases,
                "total_ms": round3(total),
            });
            println!("{line}");
        }
    }
    Ok(())
}

/// The backend's resident-bases type for a curve (G1 or G2).
pub trait BackendBases<B: Backend> {
    type Bases;
}
impl<B: Backend> BackendBases<B> for ark_bn254::g1::Config {
    type Bases = B::BasesG1;
}
impl<B: Backend> BackendBases<B> for ark_bn254::g2::Config {
    type Bases = B::BasesG2;
}
type BasesOf<B, P> = <P as BackendBases<B>>::Bases;

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
    match args.backend {
        BackendChoice::Cpu => check_all(&CpuBackend::new(), args),
        BackendChoice::Cuda => {
            let b = CudaBackend::new(0).context("opening the CUDA backend (GPU 0)")?;
            check_all(&b, args)
        }
    }
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
        failures += check_curve::<B, ark_bn254::g1::Config>(
            backend,
            n,
            random,
            args,
            "g1",
            &mut cases,
            |b, p| b.load_bases_g1(p),
            |b, x, s| b.msm_g1(x, s),
        )?;
    }
    for &n in &check_sizes(args.g2_max_log.min(args.max_log)) {
        let random = n <= 1usize << args.random_max_log.min(16);
        failures += check_curve::<B, ark_bn254::g2::Config>(
            backend,
            n,
            random,
            args,
            "g2",
            &mut cases,
            |b, p| b.load_bases_g2(p),
            |b, x, s| b.msm_g2(x, s),
        )?;
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

#[allow(clippy::too_many_arguments)]
fn check_curve<B, P>(
    backend: &B,
    n: usize,
    random: bool,
    args: &CheckMsmArgs,
    curve: &str,
    cases: &mut usize,
    load: impl Fn(&B, &[Affine<P>]) -> Result<BasesOf<B, P>, proofrack_kernels::BackendError>,
    msm: impl Fn(
        &B,
        &BasesOf<B, P>,
        &B::Scalars,
    ) -> Result<Projective<P>, proofrack_kernels::BackendError>,
) -> anyhow::Result<usize>
where
    B: Backend,
    P: SWCurveConfig<ScalarField = Fr> + BackendBases<B>,
{
    let t = Instant::now();
    let bases = case_bases::<P>(n, random, args.seed ^ n as u64);
    let gen_ms = ms(t);
    let t = Instant::now();
    let resident = load(backend, &bases.points)?;
    let load_ms = ms(t);
    let mut failures = 0;
    for (k, dist) in Dist::ALL.iter().enumerate() {
        let scalars = dist.scalars(n, args.seed.wrapping_add(k as u64 * 1000 + n as u64));
        let dev = backend.upload_scalars(&scalars)?;
        let t = Instant::now();
        let got = msm(backend, &resident, &dev);
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
            "curve": curve,
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
