//! `proofrack-bench check`: the GPU box's correctness run for the NTT side of the backend and
//! the whole prover. One JSON line per check,
//! `{"check":…,"size":n,"ok":true,"ms":…,"cpu_ms":…,"detail":…}`, then a summary line; every
//! check runs even after a failure (device time is scarce: report everything), and the exit
//! status is nonzero when any failed.
//!
//! - NTTs at 2, 2^10, 2^16, 2^20, 2^24 (up to `--max-log`; 2^26 too on a device with
//!   ≥ 100 GB): forward, inverse, forward on the odd coset ω_2n, inverse on the coset 7, all
//!   compared with the CPU backend (arkworks); round trips on the device; the prover's batched
//!   iNTT + coset NTT of three vectors against the CPU (first vector) and against two
//!   standalone device transforms (the others). At 2^26 only forward and the batched
//!   transform are compared with the CPU (each CPU transform takes seconds there).
//! - `mul_sub_assign` at each size from 2^10.
//! - The conformance suite (`ConformanceConfig::gpu()`: MSM edge cases to 2^20, NTTs to 2^20,
//!   a 2^12 proof).
//! - Groth16 proofs at each `--groth16-log` size: proved on the backend and on the CPU with the
//!   same key, witness, r and s; the bytes must be equal and the proof must verify.
//!
//! `ms` is the backend's time for the checked operation including uploads and downloads;
//! `cpu_ms` the CPU reference's.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use anyhow::{anyhow, bail};
use ark_bn254::Fr;
use ark_ff::{FftField, Field, UniformRand, Zero};
use ark_std::rand::{rngs::StdRng, SeedableRng};
use proofrack_kernels::circuits::{Circuit, MimcInputs};
use proofrack_kernels::conformance::{check_backend_matches_cpu_with, ConformanceConfig};
use proofrack_kernels::cpu::CpuBackend;
use proofrack_kernels::groth16::{
    generate_key_with_rng, prepare_verifying_key, proof_to_bytes, prove, verify, PreparedKey,
};
use proofrack_kernels::{Backend, NttDirection};
use rayon::prelude::*;

use crate::kernel_bench::{ms, open_cuda, round3, BackendChoice};
use crate::ntt::random_fr;

#[derive(Clone, Debug, clap::Args)]
pub struct CheckArgs {
    /// Largest log2 of the NTT ladder 1, 10, 16, 20, 24 (26 is added on devices with at least
    /// 100 GB of memory, or when this is 26).
    #[arg(long, default_value_t = 24)]
    pub max_log: u32,
    /// Domain log2 of each Groth16 proof checked against the CPU (4..=20).
    #[arg(long, value_delimiter = ',', default_value = "10,16")]
    pub groth16_log: Vec<u32>,
    /// Skip the conformance suite (e.g. when check-msm already covered the MSMs).
    #[arg(long)]
    pub skip_conformance: bool,
    #[arg(long, value_enum, default_value = "cuda")]
    pub backend: BackendChoice,
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
}

/// The NTT sizes checked (log2).
const LADDER: [u32; 6] = [1, 10, 16, 20, 24, 26];
/// Device memory from which 2^26 is checked without asking (an H200 has 141 GB).
const BIG_DEVICE_BYTES: u64 = 100_000_000_000;
/// Above this size only some transforms are compared with the CPU.
const FULL_CPU_COMPARE_MAX_LOG: u32 = 24;

/// What one check found (ok or not), printed as one JSON line.
struct Outcome {
    ok: bool,
    ms: f64,
    cpu_ms: f64,
    detail: String,
}

impl Outcome {
    fn pass(ms: f64, cpu_ms: f64, detail: impl Into<String>) -> Outcome {
        Outcome {
            ok: true,
            ms,
            cpu_ms,
            detail: detail.into(),
        }
    }
}

struct Report {
    total: usize,
    failed: usize,
}

impl Report {
    /// Runs one check, catching errors and panics, and prints its line.
    fn run(&mut self, check: &str, size: usize, f: impl FnOnce() -> anyhow::Result<Outcome>) {
        let outcome = match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => Outcome {
                ok: false,
                ms: 0.0,
                cpu_ms: 0.0,
                detail: format!("{e:#}"),
            },
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                Outcome {
                    ok: false,
                    ms: 0.0,
                    cpu_ms: 0.0,
                    detail: format!("panicked: {msg}"),
                }
            }
        };
        self.total += 1;
        if !outcome.ok {
            self.failed += 1;
        }
        let line = serde_json::json!({
            "check": check,
            "size": size,
            "ok": outcome.ok,
            "ms": round3(outcome.ms),
            "cpu_ms": round3(outcome.cpu_ms),
            "detail": outcome.detail,
        });
        println!("{line}");
    }
}

pub fn run(args: &CheckArgs) -> anyhow::Result<()> {
    for &log in &args.groth16_log {
        if Circuit::mimc(log).is_none() {
            bail!("no built-in circuit for 2^{log}; --groth16-log sizes are 4..=20");
        }
    }
    let mut report = Report {
        total: 0,
        failed: 0,
    };
    match args.backend {
        BackendChoice::Cpu => run_checks(&CpuBackend::new(), args, &mut report),
        BackendChoice::Cuda => match open_cuda() {
            Ok(b) => run_checks(&b, args, &mut report),
            Err(e) => report.run("device", 0, || Err(e)),
        },
    }
    let summary = serde_json::json!({
        "check": "summary", "ok": report.failed == 0, "total": report.total, "failed": report.failed,
    });
    println!("{summary}");
    if report.failed > 0 {
        return Err(anyhow!(
            "{} of {} checks failed (see the lines with \"ok\":false)",
            report.failed,
            report.total
        ));
    }
    Ok(())
}

fn run_checks<B: Backend>(backend: &B, args: &CheckArgs, report: &mut Report) {
    let info = backend.info();
    report.run("device", 0, || {
        Ok(Outcome::pass(
            0.0,
            0.0,
            format!("{} ({:?} bytes)", info.name, info.device_memory_total_bytes),
        ))
    });
    let big = info
        .device_memory_total_bytes
        .is_some_and(|b| b >= BIG_DEVICE_BYTES);
    for &log in LADDER
        .iter()
        .filter(|&&k| k <= args.max_log || (k == 26 && big))
    {
        ntt_checks(backend, log, args.seed, report);
    }
    if !args.skip_conformance {
        conformance(backend, report);
    }
    for &log in &args.groth16_log {
        report.run("groth16_proof", 1 << log, || {
            groth16(backend, log, args.seed)
        });
    }
}

/// Random values with 0, 1, −1 at a few places.
fn test_vector(n: usize, seed: u64) -> Vec<Fr> {
    let mut v = random_fr(n, seed);
    for (i, e) in [Fr::zero(), Fr::ONE, -Fr::ONE].into_iter().enumerate() {
        if i < n {
            v[(i * 7919) % n] = e;
        }
    }
    v
}

fn first_difference(got: &[Fr], want: &[Fr]) -> Option<usize> {
    if got.len() != want.len() {
        return Some(got.len().min(want.len()));
    }
    got.par_iter()
        .zip(want.par_iter())
        .position_first(|(a, b)| a != b)
}

fn compare(got: &[Fr], want: &[Fr], what: &str) -> anyhow::Result<()> {
    match first_difference(got, want) {
        None => Ok(()),
        Some(i) => bail!("{what}: first difference at index {i} of {}", want.len()),
    }
}

/// Upload, transform, download on `backend`; returns (result, ms).
fn transform<B: Backend>(
    backend: &B,
    data: &[Fr],
    dir: NttDirection,
    coset: Option<Fr>,
) -> anyhow::Result<(Vec<Fr>, f64)> {
    let t = Instant::now();
    let mut d = backend.upload_scalars(data)?;
    backend.ntt(&mut d, dir, coset)?;
    let out = backend.download_scalars(&d)?;
    Ok((out, ms(t)))
}

fn ntt_checks<B: Backend>(backend: &B, log: u32, seed: u64, report: &mut Report) {
    let n = 1usize << log;
    let cpu = CpuBackend::new();
    let data = test_vector(n, seed ^ u64::from(log));
    let w2n = Fr::get_root_of_unity(2 * n as u64).expect("2-adicity 28");
    let seven = Fr::from(7u64);
    let full = log <= FULL_CPU_COMPARE_MAX_LOG;
    let cases = [
        ("ntt_forward", NttDirection::Forward, None, true),
        ("ntt_inverse", NttDirection::Inverse, None, full),
        (
            "ntt_forward_coset_w2n",
            NttDirection::Forward,
            Some(w2n),
            full,
        ),
        (
            "ntt_inverse_coset_7",
            NttDirection::Inverse,
            Some(seven),
            full,
        ),
    ];
    for (check, dir, coset, with_cpu) in cases {
        if !with_cpu {
            continue;
        }
        report.run(check, n, || {
            let (got, gpu_ms) = transform(backend, &data, dir, coset)?;
            let (want, cpu_ms) = transform(&cpu, &data, dir, coset)?;
            compare(&got, &want, "backend vs CPU")?;
            Ok(Outcome::pass(gpu_ms, cpu_ms, "equal to the CPU backend"))
        });
    }
    report.run("ntt_round_trips", n, || {
        let t = Instant::now();
        let mut d = backend.upload_scalars(&data)?;
        backend.ntt(&mut d, NttDirection::Forward, None)?;
        backend.ntt(&mut d, NttDirection::Inverse, None)?;
        compare(&backend.download_scalars(&d)?, &data, "inverse(forward(x))")?;
        backend.ntt(&mut d, NttDirection::Forward, Some(seven))?;
        backend.ntt(&mut d, NttDirection::Inverse, Some(seven))?;
        compare(
            &backend.download_scalars(&d)?,
            &data,
            "inverse_coset(forward_coset(x))",
        )?;
        backend.ntt(&mut d, NttDirection::Inverse, Some(w2n))?;
        backend.ntt(&mut d, NttDirection::Forward, Some(w2n))?;
        compare(
            &backend.download_scalars(&d)?,
            &data,
            "forward_coset(inverse_coset(x))",
        )?;
        Ok(Outcome::pass(
            ms(t),
            0.0,
            "device-resident, no CPU involved",
        ))
    });
    report.run("ntt_prover_batch3", n, || {
        let vectors = [
            data.clone(),
            test_vector(n, seed ^ 0x11 ^ u64::from(log)),
            test_vector(n, seed ^ 0x22 ^ u64::from(log)),
        ];
        let t = Instant::now();
        let mut ds = vectors
            .iter()
            .map(|v| backend.upload_scalars(v))
            .collect::<Result<Vec<_>, _>>()?;
        {
            let mut refs: Vec<&mut B::Scalars> = ds.iter_mut().collect();
            backend.interpolate_then_evaluate_on_coset(&mut refs, w2n)?;
        }
        let got = ds
            .iter()
            .map(|d| backend.download_scalars(d))
            .collect::<Result<Vec<_>, _>>()?;
        let gpu_ms = ms(t);
        let t = Instant::now();
        let coeffs = transform(&cpu, &vectors[0], NttDirection::Inverse, None)?.0;
        let want = transform(&cpu, &coeffs, NttDirection::Forward, Some(w2n))?.0;
        let cpu_ms = ms(t);
        compare(&got[0], &want, "vector 0 vs CPU iNTT + coset NTT")?;
        for (i, v) in vectors.iter().enumerate().skip(1) {
            let coeffs = transform(backend, v, NttDirection::Inverse, None)?.0;
            let want = transform(backend, &coeffs, NttDirection::Forward, Some(w2n))?.0;
            compare(
                &got[i],
                &want,
                &format!("vector {i} vs two standalone backend transforms"),
            )?;
        }
        Ok(Outcome::pass(
            gpu_ms,
            cpu_ms,
            "fused and batched = CPU (vector 0) = standalone backend transforms (1, 2)",
        ))
    });
    if log >= 10 {
        report.run("mul_sub_assign", n, || {
            let (b, c) = (test_vector(n, seed ^ 0x33), test_vector(n, seed ^ 0x44));
            let t = Instant::now();
            let mut da = backend.upload_scalars(&data)?;
            let db = backend.upload_scalars(&b)?;
            let dc = backend.upload_scalars(&c)?;
            backend.mul_sub_assign(&mut da, &db, &dc)?;
            let got = backend.download_scalars(&da)?;
            let gpu_ms = ms(t);
            let t = Instant::now();
            let mut want = data.clone();
            cpu.mul_sub_assign(&mut want, &b, &c)?;
            let cpu_ms = ms(t);
            compare(&got, &want, "a·b − c")?;
            Ok(Outcome::pass(gpu_ms, cpu_ms, "equal to the CPU backend"))
        });
    }
}

fn conformance<B: Backend>(backend: &B, report: &mut Report) {
    let t = Instant::now();
    match catch_unwind(AssertUnwindSafe(|| {
        check_backend_matches_cpu_with(backend, &ConformanceConfig::gpu())
    })) {
        Ok(Ok(r)) => {
            for c in &r.checks {
                report.run(&format!("conformance/{}", c.check), c.size, || {
                    Ok(Outcome::pass(c.backend_ms, c.cpu_ms, ""))
                });
            }
            report.run("conformance", r.checks.len(), || {
                Ok(Outcome::pass(ms(t), 0.0, "every conformance check passed"))
            });
        }
        Ok(Err(e)) => report.run("conformance", 0, || {
            bail!("{e} (the suite stops at its first failure)")
        }),
        Err(_) => report.run("conformance", 0, || bail!("the conformance suite panicked")),
    }
}

fn groth16<B: Backend>(backend: &B, log: u32, seed: u64) -> anyhow::Result<Outcome> {
    let circuit = Circuit::mimc(log).ok_or_else(|| anyhow!("no built-in circuit for 2^{log}"))?;
    let mut rng = StdRng::seed_from_u64(seed ^ u64::from(log));
    let t = Instant::now();
    let key = generate_key_with_rng(&circuit.r1cs(), &mut rng)?;
    let keygen_ms = ms(t);
    let witness = circuit.witness(&MimcInputs {
        x: Fr::rand(&mut rng),
        key: Fr::rand(&mut rng),
    });
    let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
    let t = Instant::now();
    let prepared = PreparedKey::new(backend, &key)?;
    let prepare_ms = ms(t);
    let t = Instant::now();
    let got = prove(backend, &prepared, &witness.full, r, s)?;
    let first_ms = ms(t);
    let t = Instant::now();
    let again = prove(backend, &prepared, &witness.full, r, s)?;
    let gpu_ms = ms(t);
    drop(prepared);
    let cpu = CpuBackend::new();
    let t = Instant::now();
    let cpu_key = PreparedKey::new(&cpu, &key)?;
    let want = prove(&cpu, &cpu_key, &witness.full, r, s)?;
    let cpu_ms = ms(t);
    if proof_to_bytes(&got) != proof_to_bytes(&want) {
        bail!("proof bytes differ from the CPU backend's for the same key, witness, r, s");
    }
    if again != got {
        bail!("two proofs with the same r, s differ on the backend");
    }
    let pvk = prepare_verifying_key(&key.verifying_key());
    if !verify(&pvk, &witness.public, &got)? {
        bail!("the proof does not verify (and equals the CPU's: the harness or key is wrong)");
    }
    Ok(Outcome::pass(
        gpu_ms,
        cpu_ms,
        format!(
            "byte-identical to the CPU proof and verifies; keygen {keygen_ms:.0} ms, key load {prepare_ms:.0} ms, \
             first proof {first_ms:.1} ms"
        ),
    ))
}
