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

use crate::kernel_bench::{default, ms, round3, with_backend, KernelArgs};
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

#[derive(Clone, Debug, clap::Args)]
#[command(
    mut_arg("sizes", default("10,12,14")),
    mut_arg("backend", default("cpu")),
    mut_arg("seed", default("1")),
    mut_arg("reps", default("3"))
)]
pub struct Groth16Args {
    // `--sizes`: log2 of the constraint domain of each MiMC circuit (4..=20).
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Measured CPU proofs per size for the baseline (after one warm-up).
    #[arg(long, default_value_t = 3)]
    pub cpu_reps: usize,
}

pub fn run(args: &Groth16Args) -> anyhow::Result<()> {
    if args.kernel.reps == 0 || args.cpu_reps == 0 {
        bail!("--reps and --cpu-reps must be at least 1");
    }
    let circuits = args
        .kernel
        .sizes
        .iter()
        .map(|&log2| {
            Circuit::mimc(log2)
                .with_context(|| format!("no built-in circuit for 2^{log2}; sizes are 4..=20"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    with_backend!(args.kernel.backend, b => {
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
    let mut rng = StdRng::seed_from_u64(args.kernel.seed ^ u64::from(circuit.log2_domain()));
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
        args.kernel.reps,
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
        "reps": args.kernel.reps,
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
