//! `proofrack-bench ntt`: forward NTTs of resident data (uploaded once, transformed in
//! place, not downloaded) on a chosen backend, with the CPU backend's time in the same run.
//!
//! One JSON line per size and kind (`plain` or `coset`, the odd coset ω_2n the prover uses):
//! `{"op":"ntt","log2":k,"size":n,"kind":"coset","backend":…,"ms":…,"cpu_ms":…,"ratio":…}`
//! `ms` is the median of `--reps` transforms after one warm-up. Results are compared with
//! the CPU backend's (forward transforms of the same input must be equal).

use std::time::Instant;

use anyhow::bail;
use ark_bn254::Fr;
use ark_ff::FftField;
use ark_std::rand::{rngs::StdRng, SeedableRng};
use ark_std::UniformRand;
use proofrack_kernels::cpu::CpuBackend;
use proofrack_kernels::{Backend, BackendKind, NttDirection};

use crate::groth16::{ms, round3, with_backend, BackendChoice};

#[derive(Clone, Debug, clap::Args)]
pub struct NttArgs {
    /// log2 of each transform size.
    #[arg(long, value_delimiter = ',', default_value = "10,12,14,16,18,20")]
    pub log_sizes: Vec<u32>,
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
    /// Measured transforms per size (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
}

pub fn run(args: &NttArgs) -> anyhow::Result<()> {
    if args.reps == 0 {
        bail!("--reps must be at least 1");
    }
    for &log2 in &args.log_sizes {
        if !(1..=26).contains(&log2) {
            bail!("NTT sizes are 2^1..=2^26, got 2^{log2}");
        }
        with_backend!(args.backend, b => bench_size(b, log2, args.reps)?);
    }
    Ok(())
}

fn bench_size<B: Backend>(backend: &B, log2: u32, reps: usize) -> anyhow::Result<()> {
    let n = 1usize << log2;
    let mut rng = StdRng::seed_from_u64(u64::from(log2));
    let data: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
    let omega_2n = Fr::get_root_of_unity(2 * n as u64).expect("BN254 Fr has 2-adicity 28");
    for (kind, coset) in [("plain", None), ("coset", Some(omega_2n))] {
        let (backend_ms, out) = time_forward(backend, &data, coset, reps)?;
        let cpu_ms = if backend.info().kind == BackendKind::Cpu {
            backend_ms
        } else {
            let (cpu_ms, want) = time_forward(&CpuBackend::new(), &data, coset, reps)?;
            if want != out {
                bail!("2^{log2} {kind}: the {} NTT differs from the CPU NTT", backend.info().name);
            }
            cpu_ms
        };
        let line = serde_json::json!({
            "op": "ntt",
            "log2": log2,
            "size": n,
            "kind": kind,
            "backend": backend.info().name,
            "ms": round3(backend_ms),
            "cpu_ms": round3(cpu_ms),
            "ratio": round3(cpu_ms / backend_ms),
            "reps": reps,
        });
        println!("{line}");
    }
    Ok(())
}

/// Median time of one forward transform on resident data, and the first transform's output.
fn time_forward<B: Backend>(
    backend: &B,
    data: &[Fr],
    coset: Option<Fr>,
    reps: usize,
) -> anyhow::Result<(f64, Vec<Fr>)> {
    let mut d = backend.upload_scalars(data)?;
    backend.ntt(&mut d, NttDirection::Forward, coset)?;
    let out = backend.download_scalars(&d)?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        backend.ntt(&mut d, NttDirection::Forward, coset)?;
        times.push(ms(t));
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], out))
}
