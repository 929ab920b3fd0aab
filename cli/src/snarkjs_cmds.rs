//! circom/snarkjs commands that need no coordinator: `proofrack verify` (snarkjs JSON or our
//! binary proof against a `verification_key.json`) and `proofrack prove` (a zkey and a
//! witness, proved on this machine with our own prover, written as snarkjs JSON).

use anyhow::{bail, Context};
use clap::Args;
use proofrack_agent::{BackendChoice, Prover, ProverBackendImpl};
use proofrack_common::KeyId;
use proofrack_kernels::curve::Fr;
use proofrack_kernels::groth16::{self, PreparedKey, Proof, ProvingKey};
use proofrack_snarkjs as snarkjs;
use std::path::{Path, PathBuf};

/// `proofrack verify`.
#[derive(Args, Clone, Debug)]
pub struct VerifyArgs {
    /// verification_key.json (from `snarkjs zkey export verificationkey`).
    #[arg(long)]
    pub vk: PathBuf,
    /// proof.json (snarkjs/rapidsnark) or a 128-byte proofrack binary proof.
    #[arg(long)]
    pub proof: PathBuf,
    /// public.json: the public signals, outputs first.
    #[arg(long)]
    pub public: PathBuf,
}

/// `proofrack prove`.
#[derive(Args, Clone, Debug)]
pub struct ProveArgs {
    /// The circuit's Groth16 zkey (BN254).
    #[arg(long)]
    pub zkey: PathBuf,
    /// The witness (`snarkjs wtns calculate circuit.wasm input.json witness.wtns`).
    #[arg(long, required_unless_present = "input", conflicts_with = "input")]
    pub wtns: Option<PathBuf>,
    /// The circuit inputs instead of a witness; needs --wasm. The witness is computed here by
    /// `snarkjs wtns calculate` (circom's own witness generator).
    #[arg(long, requires = "wasm")]
    pub input: Option<PathBuf>,
    /// The circuit's witness generator (`circom --wasm` output, `<name>_js/<name>.wasm`).
    #[arg(long)]
    pub wasm: Option<PathBuf>,
    /// The snarkjs command used for --input.
    #[arg(long, env = "PROOFRACK_SNARKJS", default_value = "snarkjs")]
    pub snarkjs: PathBuf,
    /// auto (CUDA if a usable GPU is found), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub backend: BackendChoice,
    /// Where proof.json, public.json and proof.bin go.
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A proof file: snarkjs JSON when it starts with `{`, else our 128-byte binary form.
pub fn load_proof(path: &Path) -> anyhow::Result<Proof> {
    let bytes = read(path)?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let text = String::from_utf8(bytes).context("proof.json is not UTF-8")?;
        Ok(snarkjs::proof_from_json(&text)?)
    } else {
        groth16::proof_from_bytes(&bytes).with_context(|| {
            format!(
                "{} is neither snarkjs proof.json nor a {}-byte proofrack proof",
                path.display(),
                groth16::PROOF_BYTES
            )
        })
    }
}

/// Verifies; `Ok(true)` when valid, `Ok(false)` when the proof does not verify for these
/// public values, `Err` when the files are unreadable or do not fit each other.
pub fn verify_files(args: &VerifyArgs) -> anyhow::Result<bool> {
    let vk = snarkjs::vk_from_json(&read_text(&args.vk)?)
        .with_context(|| format!("reading {}", args.vk.display()))?;
    let proof = load_proof(&args.proof)?;
    let public = snarkjs::public_from_json(&read_text(&args.public)?)
        .with_context(|| format!("reading {}", args.public.display()))?;
    snarkjs::check_public_count(&vk, &public)?;
    Ok(groth16::verify_with_vk(&vk, &public, &proof)?)
}

/// `proofrack verify`: prints OK or fails with the reason.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    if verify_files(args)? {
        println!("OK: the proof verifies");
        Ok(())
    } else {
        bail!(
            "INVALID: the proof does not verify against {} for the public values in {}; \
             check that the public signals are the ones proved (outputs first) and that the key is the circuit's",
            args.vk.display(),
            args.public.display()
        )
    }
}

/// Reads a zkey file into a checked proving key.
pub fn load_zkey(path: &Path) -> anyhow::Result<ProvingKey> {
    snarkjs::read_zkey(&read(path)?).with_context(|| format!("reading zkey {}", path.display()))
}

/// Reads a witness and checks it fits the key.
pub fn load_witness(path: &Path, key: &ProvingKey) -> anyhow::Result<Vec<Fr>> {
    let w = snarkjs::read_wtns(&read(path)?)
        .with_context(|| format!("reading witness {}", path.display()))?;
    snarkjs::check_witness_length(&w, key.num_variables())?;
    Ok(w)
}

/// Proves with our CPU prover and self-verifies: a witness that does not satisfy the circuit
/// yields a proof that fails verification, reported here as such.
pub fn prove_witness(key: &ProvingKey, witness: &[Fr]) -> anyhow::Result<(Proof, Vec<Fr>)> {
    snarkjs::check_witness_length(witness, key.num_variables())?;
    let backend = proofrack_kernels::cpu::CpuBackend::new();
    let prepared = PreparedKey::new(&backend, key)?;
    let proof = groth16::prove_with_rng(&backend, &prepared, witness, &mut rand::rngs::OsRng)?;
    self_check(key, witness, proof)
}

/// [`prove_witness`] on the backend an agent would pick (`auto`: CUDA where a GPU is usable).
pub fn prove_witness_on(
    choice: BackendChoice,
    key: &ProvingKey,
    witness: &[Fr],
) -> anyhow::Result<(Proof, Vec<Fr>)> {
    snarkjs::check_witness_length(witness, key.num_variables())?;
    let prover = Prover::new(ProverBackendImpl::select(choice, 0)?);
    let id = KeyId(key.id());
    prover.prepare(id, key)?;
    let proof = prover
        .prove(&id, witness)
        .context("the key was prepared just before")??;
    self_check(key, witness, proof)
}

fn self_check(key: &ProvingKey, witness: &[Fr], proof: Proof) -> anyhow::Result<(Proof, Vec<Fr>)> {
    let public = witness[1..=key.num_public()].to_vec();
    if !groth16::verify_with_vk(&key.verifying_key(), &public, &proof)? {
        bail!("the witness does not satisfy the circuit's constraints (the proof made from it does not verify); recompute it from valid inputs with the circuit's .wasm");
    }
    Ok((proof, public))
}

/// Writes proof.json, public.json (snarkjs) and proof.bin (ours) into `dir`.
pub fn write_outputs(dir: &Path, proof: &Proof, public: &[Fr]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
    };
    write(
        "proof.json",
        serde_json::to_string_pretty(&snarkjs::proof_to_json(proof))?.as_bytes(),
    )?;
    write(
        "public.json",
        serde_json::to_string_pretty(&snarkjs::public_to_json(public))?.as_bytes(),
    )?;
    write("proof.bin", &groth16::proof_to_bytes(proof))
}

/// Computes `out` (a .wtns) from circuit inputs with `snarkjs wtns calculate`. Inputs that
/// violate a constraint the generator checks (`===`, asserts) fail here, with circom's message.
pub fn calculate_witness(
    snarkjs_cmd: &Path,
    wasm: &Path,
    input: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let output = std::process::Command::new(snarkjs_cmd)
        .args(["wtns", "calculate"])
        .args([wasm, input, out])
        .output()
        .with_context(|| {
            format!(
                "running {} (install snarkjs, or pass --snarkjs / PROOFRACK_SNARKJS)",
                snarkjs_cmd.display()
            )
        })?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr).to_string()
            + &String::from_utf8_lossy(&output.stdout);
        let reason = text
            .lines()
            .find(|l| l.contains("Error") || l.contains("Assert"))
            .unwrap_or("no message")
            .trim()
            .to_string();
        bail!(
            "the inputs in {} do not satisfy the circuit {} (witness generation failed: {reason}); fix the inputs",
            input.display(),
            wasm.display()
        );
    }
    Ok(())
}

/// `proofrack prove`.
pub fn prove(args: &ProveArgs) -> anyhow::Result<()> {
    let key = load_zkey(&args.zkey)?;
    let wtns = match (&args.wtns, &args.input, &args.wasm) {
        (Some(w), _, _) => w.clone(),
        (None, Some(input), Some(wasm)) => {
            std::fs::create_dir_all(&args.out_dir)?;
            let w = args.out_dir.join("witness.wtns");
            calculate_witness(&args.snarkjs, wasm, input, &w)?;
            w
        }
        _ => bail!("give --wtns, or --input with --wasm"),
    };
    let witness = load_witness(&wtns, &key)?;
    let (proof, public) = prove_witness_on(args.backend, &key, &witness)?;
    write_outputs(&args.out_dir, &proof, &public)?;
    println!(
        "proof.json, public.json and proof.bin written to {} ({} constraints, {} public signals)",
        args.out_dir.display(),
        key.num_constraints(),
        key.num_public()
    );
    Ok(())
}
