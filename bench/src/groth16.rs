//! `proofrack-bench groth16`: whole Groth16 proofs of the built-in MiMC circuits through the
//! generic prover, on a chosen backend, with the CPU backend as the baseline in the same run.
//!
//! One JSON line per size:
//! `{"op":"groth16","constraints_log2":k,"backend":"cpu (arkworks, 2 threads)","ms":…,
//!   "cpu_ms":…,"ratio":…,"setup_ms":…,"prepare_key_ms":…,"stages_ms":{…},"reps":…}`
//! `ms` is the median of `--reps` proofs after one warm-up proof (`--cpu-reps` for the CPU
//! baseline); `ratio` = cpu_ms / ms. `setup_ms` is key generation (host, all cores),
//! `prepare_key_ms` loading the key's bases into the measured backend (on CUDA: upload and
//! precomputed base copies), neither of which is in `ms`.
//! Every measured proof is verified, and on a non-CPU backend the proof must equal the CPU
//! backend's proof for the same r, s byte for byte.

use std::time::Instant;

use anyhow::{bail, Context};
use ark_bn254::Fr;
use ark_std::rand::{rngs::StdRng, SeedableRng};
use ark_std::UniformRand;
use proofrack_kernels::circuits::{Circuit, MimcInputs};
use proofrack_kernels::cpu::CpuBackend;
use proofrack_kernels::groth16::{
    generate_key_with_rng, prepare_verifying_key, proof_to_bytes, prove_with_timings, verify,
    PreparedKey, ProveTimings, ProvingKey,
};
use proofrack_kernels::Backend;

/// Which backend runs the measured operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    Cpu,
    Cuda,
}

/// Runs `$body` with `$b` bound to the chosen backend (a generic function call per arm, so
/// every op is written once over `B: Backend`).
macro_rules! with_backend {
    ($choice:expr, $b:ident => $body:expr) => {
        match $choice {
            $crate::groth16::BackendChoice::Cpu => {
                let $b = &proofrack_kernels::cpu::CpuBackend::new();
                $body
            }
            $crate::groth16::BackendChoice::Cuda => {
                let $b = &$crate::groth16::open_cuda()?;
                $body
            }
        }
    };
}
pub(crate) use with_backend;

/// GPU 0, with the reason in the error when there is none (no driver, no kernels built in).
pub(crate) fn open_cuda() -> anyhow::Result<proofrack_kernels::cuda::CudaBackend> {
    proofrack_kernels::cuda::CudaBackend::new(0).context("opening the CUDA backend (GPU 0)")
}

#[derive(Clone, Debug, clap::Args)]
pub struct Groth16Args {
    /// log2 of the constraint domain of each MiMC circuit (4..=20).
    #[arg(long, value_delimiter = ',', default_value = "10,12,14")]
    pub log_sizes: Vec<u32>,
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
    /// Measured proofs per size (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Measured CPU proofs per size for the baseline (after one warm-up).
    #[arg(long, default_value_t = 3)]
    pub cpu_reps: usize,
    /// Seed for keys, inputs and blinding.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: &Groth16Args) -> anyhow::Result<()> {
    if args.reps == 0 || args.cpu_reps == 0 {
        bail!("--reps and --cpu-reps must be at least 1");
    }
    let circuits = args
        .log_sizes
        .iter()
        .map(|&log2| {
            Circuit::mimc(log2)
                .with_context(|| format!("no built-in circuit for 2^{log2}; sizes are 4..=20"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    with_backend!(args.backend, b => {
        for circuit in &circuits {
            bench_size(b, circuit, args)?;
        }
    });
    Ok(())
}

struct Measured {
    /// Loading the key's bases into the backend (once per key; not in `ms`).
    prepare_ms: f64,
    median_ms: f64,
    stages: ProveTimings,
    proof_bytes: [u8; 128],
}

fn bench_size<B: Backend>(
    backend: &B,
    circuit: &Circuit,
    args: &Groth16Args,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(args.seed ^ u64::from(circuit.log2_domain()));
    let t = Instant::now();
    let key = generate_key_with_rng(&circuit.r1cs(), &mut rng)?;
    let setup_ms = ms(t);
    let witness = circuit.witness(&MimcInputs {
        x: Fr::rand(&mut rng),
        key: Fr::rand(&mut rng),
    });
    let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));

    let measured = measure(
        backend,
        &key,
        &witness.full,
        &witness.public,
        r,
        s,
        args.reps,
    )?;
    let cpu_ms = if backend.info().kind == proofrack_kernels::BackendKind::Cpu {
        measured.median_ms
    } else {
        let cpu = measure(
            &CpuBackend::new(),
            &key,
            &witness.full,
            &witness.public,
            r,
            s,
            args.cpu_reps,
        )?;
        if cpu.proof_bytes != measured.proof_bytes {
            bail!(
                "2^{}: the {} proof differs from the CPU proof for the same r, s",
                circuit.log2_domain(),
                backend.info().name
            );
        }
        cpu.median_ms
    };
    let st = measured.stages;
    let line = serde_json::json!({
        "op": "groth16",
        "constraints_log2": circuit.log2_domain(),
        "constraints": circuit.num_constraints(),
        "backend": backend.info().name,
        "ms": round3(measured.median_ms),
        "cpu_ms": round3(cpu_ms),
        "ratio": round3(cpu_ms / measured.median_ms),
        "setup_ms": round3(setup_ms),
        "prepare_key_ms": round3(measured.prepare_ms),
        "reps": args.reps,
        "cpu_reps": args.cpu_reps,
        "stages_ms": {
            "witness_map": round3(st.witness_map.as_secs_f64() * 1e3),
            "quotient": round3(st.quotient.as_secs_f64() * 1e3),
            "msm_g1": round3(st.msm_g1.as_secs_f64() * 1e3),
            "msm_g2": round3(st.msm_g2.as_secs_f64() * 1e3),
        },
    });
    println!("{line}");
    Ok(())
}

/// One warm-up proof (also the one verified), then `reps` timed proofs; the median, and the
/// stage times of the median proof.
fn measure<B: Backend>(
    backend: &B,
    key: &ProvingKey,
    witness: &[Fr],
    public: &[Fr],
    r: Fr,
    s: Fr,
    reps: usize,
) -> anyhow::Result<Measured> {
    let t = Instant::now();
    let prepared = PreparedKey::new(backend, key)?;
    let prepare_ms = ms(t);
    let (proof, _) = prove_with_timings(backend, &prepared, witness, r, s)?;
    let pvk = prepare_verifying_key(&key.verifying_key());
    if !verify(&pvk, public, &proof)? {
        bail!("the proof from {} does not verify", backend.info().name);
    }
    let mut runs = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let (p, stages) = prove_with_timings(backend, &prepared, witness, r, s)?;
        runs.push((ms(t), stages));
        if p != proof {
            bail!(
                "{} gave different proofs for the same inputs",
                backend.info().name
            );
        }
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (median_ms, stages) = runs[runs.len() / 2];
    Ok(Measured {
        prepare_ms,
        median_ms,
        stages,
        proof_bytes: proof_to_bytes(&proof),
    })
}

pub(crate) fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

pub(crate) fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}
