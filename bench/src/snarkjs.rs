//! `proofrack-bench snarkjs`: our CPU prover against `snarkjs groth16 prove` on the same
//! zkey and witness, in one run, for the built-in MiMC circuits of 2^min..2^max constraints.
//!
//! The zkey is made by our own setup (`generate_key`) and written in snarkjs' zkey format,
//! so no powers of tau is needed (snarkjs' prover reads only the zkey and the witness). Per
//! size, one JSON line:
//! `{"op":"snarkjs","constraints_log2":k,"constraints":m,"ours_ms":…,"ours_prove_ms":…,
//!   "snarkjs_ms":…,"ratio":…,"ratio_prove_only":…,"zkey_bytes":…,"setup_ms":…}`
//! - `ours_ms`: `proofrack prove`'s work in-process: read and convert the zkey, read the
//!   witness, load the key into the backend, prove, write proof.json/public.json (median).
//! - `ours_prove_ms`: the proof alone, key already loaded (what an agent with a cached key
//!   pays; median).
//! - `snarkjs_ms`: wall time of the `snarkjs groth16 prove` process (it too reads the zkey
//!   and the witness and writes the JSON files; median).
//! - `ratio` = snarkjs_ms / ours_ms; `ratio_prove_only` = snarkjs_ms / ours_prove_ms.
//! - `register_ms`: what the coordinator does once per `proofrack circuits register`: read and
//!   convert the zkey, read the `.r1cs`, check they are the same circuit.
//! - `witness_check_ms`: what it does per circom submission before a task exists: read the
//!   `.wtns` and check every constraint (median); `check_over_prove` = that / ours_prove_ms.
//!
//! Both proofs are verified by our verifier, so a wrong key or witness cannot give a figure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use ark_bn254::Fr;
use ark_std::rand::{rngs::StdRng, SeedableRng};
use proofrack_kernels::circuits::{Circuit, MimcInputs};
use proofrack_kernels::cpu::CpuBackend;
use proofrack_kernels::groth16::{
    generate_key_with_rng, prove_with_rng, verify_with_vk, PreparedKey,
};
use proofrack_snarkjs as snarkjs;

use crate::kernel_bench::median;

#[derive(clap::Args)]
pub struct SnarkjsArgs {
    /// Smallest circuit, as log2 of its domain (MiMC chains fill it exactly).
    #[arg(long, default_value_t = 12)]
    pub min_log2: u32,
    /// Largest circuit.
    #[arg(long, default_value_t = 18)]
    pub max_log2: u32,
    /// Measured runs per prover (median reported), after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// The repository root holding node_modules/.bin/snarkjs (scripts/setup-tools.sh).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Where the zkeys and witnesses go (large at 2^18: ~100 MB).
    #[arg(long, default_value = "target/bench-snarkjs")]
    pub work_dir: PathBuf,
}

fn snarkjs_prove(repo: &Path, zkey: &Path, wtns: &Path, out: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = Command::new(repo.join("node_modules/.bin/snarkjs"))
        .args(["groth16", "prove"])
        .arg(zkey)
        .arg(wtns)
        .arg(out.join("proof.json"))
        .arg(out.join("public.json"))
        .status()
        .context(
            "running node_modules/.bin/snarkjs (run ./scripts/setup-tools.sh, or pass --repo)",
        )?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if !status.success() {
        bail!("snarkjs groth16 prove failed with {status}");
    }
    Ok(ms)
}

fn ours_end_to_end(zkey: &Path, wtns: &Path, out: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let key = snarkjs::read_zkey(&std::fs::read(zkey)?)?;
    let witness = snarkjs::read_wtns(&std::fs::read(wtns)?)?;
    snarkjs::check_witness_length(&witness, key.num_variables())?;
    let backend = CpuBackend::new();
    let prepared = PreparedKey::new(&backend, &key)?;
    let proof = prove_with_rng(&backend, &prepared, &witness, &mut rand::rngs::OsRng)?;
    let public = &witness[1..=key.num_public()];
    std::fs::write(
        out.join("ours-proof.json"),
        snarkjs::proof_to_json(&proof).to_string(),
    )?;
    std::fs::write(
        out.join("ours-public.json"),
        snarkjs::public_to_json(public).to_string(),
    )?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if !verify_with_vk(&key.verifying_key(), public, &proof)? {
        bail!("our proof from the zkey does not verify");
    }
    Ok(ms)
}

pub fn run(args: &SnarkjsArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.work_dir)?;
    let reps = args.reps.max(1);
    for log2 in args.min_log2..=args.max_log2 {
        let circuit =
            Circuit::mimc(log2).with_context(|| format!("no built-in circuit of 2^{log2}"))?;
        let mut rng = StdRng::seed_from_u64(log2 as u64);
        let t = Instant::now();
        let key = generate_key_with_rng(&circuit.r1cs(), &mut rng)?;
        let setup_ms = t.elapsed().as_secs_f64() * 1e3;
        let witness = circuit.chain().witness(&MimcInputs {
            x: Fr::from(3u64),
            key: Fr::from(5u64),
        });
        let dir = args.work_dir.join(format!("mimc-{log2}"));
        std::fs::create_dir_all(&dir)?;
        let (zkey, wtns) = (dir.join("circuit.zkey"), dir.join("witness.wtns"));
        let zkey_bytes = snarkjs::write_zkey(&key);
        std::fs::write(&zkey, &zkey_bytes)?;
        std::fs::write(&wtns, snarkjs::write_wtns(&witness))?;

        // ours, key loaded (the agent's case)
        let backend = CpuBackend::new();
        let prepared = PreparedKey::new(&backend, &key)?;
        let mut prove_only = Vec::new();
        for i in 0..=reps {
            let t = Instant::now();
            let proof = prove_with_rng(&backend, &prepared, &witness, &mut rng)?;
            if i > 0 {
                prove_only.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let public = &witness[1..=key.num_public()];
            if !verify_with_vk(&key.verifying_key(), public, &proof)? {
                bail!("our proof at 2^{log2} does not verify");
            }
        }
        drop(prepared);

        // the coordinator's side of a circom circuit: registration, then the witness check
        let r1cs_bytes = snarkjs::write_r1cs(&circuit.r1cs(), 1);
        let wtns_bytes = snarkjs::write_wtns(&witness);
        let t = Instant::now();
        let converted = proofrack_coordinator::convert_circom(&zkey_bytes, &r1cs_bytes)?;
        let register_ms = t.elapsed().as_secs_f64() * 1e3;
        let registered = proofrack_coordinator::CircomCircuit {
            r1cs: std::sync::Arc::new(converted.r1cs),
        };
        let mut checks = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            proofrack_coordinator::check_circom_witness("bench", &registered, &wtns_bytes)?;
            checks.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let check_ms = median(checks);

        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for i in 0..=reps {
            let a = ours_end_to_end(&zkey, &wtns, &dir)?;
            let b = snarkjs_prove(&args.repo, &zkey, &wtns, &dir)?;
            if i > 0 {
                ours.push(a);
                theirs.push(b);
            }
        }
        // snarkjs' proof verifies with our verifier against the same key
        let proof = snarkjs::proof_from_json(&std::fs::read_to_string(dir.join("proof.json"))?)?;
        let public = snarkjs::public_from_json(&std::fs::read_to_string(dir.join("public.json"))?)?;
        if !verify_with_vk(&key.verifying_key(), &public, &proof)? {
            bail!("snarkjs' proof at 2^{log2} does not verify with our verifier");
        }
        let (ours_ms, prove_ms, snarkjs_ms) = (median(ours), median(prove_only), median(theirs));
        println!(
            "{}",
            serde_json::json!({
                "op": "snarkjs",
                "constraints_log2": log2,
                "constraints": key.num_constraints(),
                "ours_ms": (ours_ms * 10.0).round() / 10.0,
                "ours_prove_ms": (prove_ms * 10.0).round() / 10.0,
                "snarkjs_ms": (snarkjs_ms * 10.0).round() / 10.0,
                "ratio": ((snarkjs_ms / ours_ms) * 100.0).round() / 100.0,
                "ratio_prove_only": ((snarkjs_ms / prove_ms) * 100.0).round() / 100.0,
                "register_ms": register_ms.round(),
                "witness_check_ms": (check_ms * 10.0).round() / 10.0,
                "check_over_prove": ((check_ms / prove_ms) * 1000.0).round() / 1000.0,
                "zkey_bytes": zkey_bytes.len(),
                "setup_ms": setup_ms.round(),
                "threads": rayon::current_num_threads(),
                "reps": reps,
            })
        );
    }
    Ok(())
}
