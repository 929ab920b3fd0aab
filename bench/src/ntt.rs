//! `proofrack-bench ntt`: NTTs of resident data (uploaded once, transformed in place, not
//! downloaded while timed) on a chosen backend, with the CPU backend timed in the same run.
//!
//! One JSON line per size and kind:
//! `{"op":"ntt","log2":k,"size":n,"kind":"forward","backend":…,"ms":…,"wall_ms":…,
//!   "cpu_log2":k',"cpu_ms":…,"ratio":…,"matches_cpu":true,"reps":…}`
//! Kinds: `forward`, `inverse`, `forward_coset` (the odd coset ω_2n), and `prover_batch3`:
//! the prover's iNTT + coset NTT of three vectors in one backend call (`ms` is per call).
//! `ms` is the median of `--reps` runs after one warm-up: on CUDA the device time between two
//! events on the stream (synchronised at the end), on the CPU the wall time. `wall_ms` is the
//! host's median including synchronisation.
//!
//! The CPU is timed at `cpu_log2 = min(log2, --cpu-max-log)`. When that is below `log2`,
//! `cpu_ms_scaled` scales it by n·log n to the measured size (an estimate, and `ratio` is
//! then computed against it; `ratio_basis` says which) and `matches_cpu` is null.

use std::time::Instant;

use anyhow::bail;
use ark_bn254::Fr;
use ark_ff::FftField;
use ark_std::rand::{rngs::StdRng, SeedableRng};
use ark_std::UniformRand;
use proofrack_kernels::cpu::CpuBackend;
use proofrack_kernels::cuda::CudaBackend;
use proofrack_kernels::{Backend, BackendError, NttDirection};
use rayon::prelude::*;

use crate::kernel_bench::{default, median, ms, round3, with_backend, KernelArgs};

#[derive(Clone, Debug, clap::Args)]
#[command(
    mut_arg("sizes", default("10,12,14,16,18,20")),
    mut_arg("backend", default("cpu")),
    mut_arg("seed", default("0")),
    mut_arg("reps", default("5"))
)]
pub struct NttArgs {
    // `--sizes`: log2 of each transform size (1..=28).
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Largest log2 at which the CPU backend is timed (2^24 takes seconds per transform on
    /// 16 cores; above this the CPU is timed at this size and the JSON says so).
    #[arg(long, default_value_t = 22)]
    pub cpu_max_log: u32,
    /// Measured CPU runs per size and kind.
    #[arg(long, default_value_t = 3)]
    pub cpu_reps: usize,
    /// Comma-separated kinds to run (forward, inverse, forward_coset, prover_batch3).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "forward,inverse,forward_coset,prover_batch3"
    )]
    pub kinds: Vec<String>,
}

/// Times one operation on a backend: the device's own clock where there is one.
pub(crate) trait OpTimer: Backend {
    /// (timed ms, wall ms) of `f`, synchronised.
    fn time_op(
        &self,
        f: &mut dyn FnMut() -> Result<(), BackendError>,
    ) -> anyhow::Result<(f64, f64)>;
}

impl OpTimer for CpuBackend {
    fn time_op(
        &self,
        f: &mut dyn FnMut() -> Result<(), BackendError>,
    ) -> anyhow::Result<(f64, f64)> {
        let t = Instant::now();
        f()?;
        let wall = ms(t);
        Ok((wall, wall))
    }
}

impl OpTimer for CudaBackend {
    fn time_op(
        &self,
        f: &mut dyn FnMut() -> Result<(), BackendError>,
    ) -> anyhow::Result<(f64, f64)> {
        let t = Instant::now();
        let ((), device_ms) = self.time_device_ms(f)?;
        Ok((device_ms, ms(t)))
    }
}

const KINDS: [&str; 4] = ["forward", "inverse", "forward_coset", "prover_batch3"];

pub fn run(args: &NttArgs) -> anyhow::Result<()> {
    if args.kernel.reps == 0 || args.cpu_reps == 0 {
        bail!("--reps and --cpu-reps must be at least 1");
    }
    for &log2 in &args.kernel.sizes {
        if !(1..=28).contains(&log2) {
            bail!("NTT sizes are 2^1..=2^28 (BN254 Fr has 2-adicity 28), got 2^{log2}");
        }
    }
    if let Some(k) = args.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
        bail!("unknown kind {k}; kinds are {KINDS:?}");
    }
    with_backend!(args.kernel.backend, b => {
        for &log2 in &args.kernel.sizes {
            bench_size(b, log2, args)?;
        }
    });
    Ok(())
}

/// `n` pseudo-random Fr, generated in parallel chunks (2^26 values in about a second).
pub(crate) fn random_fr(n: usize, seed: u64) -> Vec<Fr> {
    const CHUNK: usize = 1 << 14;
    (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .flat_map_iter(|c| {
            let mut rng =
                StdRng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let len = CHUNK.min(n - c * CHUNK);
            (0..len)
                .map(move |_| Fr::rand(&mut rng))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The result of one kind on one backend: median timed ms, median wall ms, first output.
struct Timed {
    ms: f64,
    wall_ms: f64,
    out: Vec<Fr>,
}

fn run_kind<B: OpTimer>(
    backend: &B,
    kind: &str,
    data: &[Vec<Fr>],
    reps: usize,
) -> anyhow::Result<Timed> {
    let n = data[0].len();
    let w2n = Fr::get_root_of_unity(2 * n as u64).expect("BN254 Fr has 2-adicity 28");
    let mut vs: Vec<B::Scalars> = data
        .iter()
        .map(|d| backend.upload_scalars(d))
        .collect::<Result<_, _>>()?;
    let op = |vs: &mut Vec<B::Scalars>| -> Result<(), BackendError> {
        match kind {
            "forward" => backend.ntt(&mut vs[0], NttDirection::Forward, None),
            "inverse" => backend.ntt(&mut vs[0], NttDirection::Inverse, None),
            "forward_coset" => backend.ntt(&mut vs[0], NttDirection::Forward, Some(w2n)),
            _ => {
                let mut refs: Vec<&mut B::Scalars> = vs.iter_mut().collect();
                backend.interpolate_then_evaluate_on_coset(&mut refs, w2n)
            }
        }
    };
    // warm-up (tables, caches), whose output is the one compared
    backend.time_op(&mut || op(&mut vs))?;
    let out = backend.download_scalars(&vs[0])?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        times.push(backend.time_op(&mut || op(&mut vs))?);
    }
    Ok(Timed {
        ms: median(times.iter().map(|t| t.0).collect()),
        wall_ms: median(times.iter().map(|t| t.1).collect()),
        out,
    })
}

fn bench_size<B: OpTimer>(backend: &B, log2: u32, args: &NttArgs) -> anyhow::Result<()> {
    let n = 1usize << log2;
    let cpu_log2 = log2.min(args.cpu_max_log);
    let is_cpu = backend.info().kind == proofrack_kernels::BackendKind::Cpu;
    for kind in &args.kinds {
        let vectors = if kind == "prover_batch3" { 3 } else { 1 };
        let data: Vec<Vec<Fr>> = (0..vectors)
            .map(|v| random_fr(n, args.kernel.seed ^ (u64::from(log2) * 8 + v)))
            .collect();
        let got = run_kind(backend, kind, &data, args.kernel.reps)?;
        let (cpu_ms, matches) = if is_cpu {
            (got.ms, None)
        } else if cpu_log2 == log2 {
            let cpu = run_kind(&CpuBackend::new(), kind, &data, args.cpu_reps)?;
            (cpu.ms, Some(cpu.out == got.out))
        } else {
            let small: Vec<Vec<Fr>> = data.iter().map(|d| d[..1 << cpu_log2].to_vec()).collect();
            (
                run_kind(&CpuBackend::new(), kind, &small, args.cpu_reps)?.ms,
                None,
            )
        };
        // n log n scaling from the CPU's size to the measured one (an estimate)
        let scale =
            (n as f64 * f64::from(log2)) / ((1u64 << cpu_log2) as f64 * f64::from(cpu_log2));
        let cpu_scaled = cpu_ms * scale;
        let line = serde_json::json!({
            "op": "ntt",
            "log2": log2,
            "size": n,
            "kind": kind,
            "vectors": vectors,
            "backend": backend.info().name,
            "ms": round3(got.ms),
            "wall_ms": round3(got.wall_ms),
            "cpu_log2": cpu_log2,
            "cpu_ms": round3(cpu_ms),
            "cpu_ms_scaled": if cpu_log2 == log2 { serde_json::Value::Null } else { round3(cpu_scaled).into() },
            "ratio": round3(cpu_scaled / got.ms),
            "ratio_basis": if cpu_log2 == log2 { "measured" } else { "cpu_scaled_n_log_n_estimate" },
            "matches_cpu": matches,
            "reps": args.kernel.reps,
            "cpu_reps": args.cpu_reps,
        });
        println!("{line}");
        if matches == Some(false) {
            bail!(
                "2^{log2} {kind}: the {} result differs from the CPU backend's",
                backend.info().name
            );
        }
    }
    Ok(())
}
