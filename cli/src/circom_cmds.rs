//! circom circuits through the coordinator: `proofrack circuits register` (zkey + `.r1cs`),
//! the witness a `proofrack submit` sends for a circom circuit, and the proof a finished task
//! gives back as snarkjs `proof.json` + `public.json` (and our `proof.bin`).

use crate::client_cmds::{ClientArgs, SubmitArgs};
use crate::snarkjs_cmds::{calculate_witness, write_outputs};
use anyhow::{bail, Context};
use clap::Args;
use proofrack_common::protocol::{
    CircuitRow, ClientRequest, ClientResponse, RegisterCircuit, SubmitWitness, TaskState,
    TaskStatusView,
};
use proofrack_common::TaskId;
use proofrack_kernels::field_bytes::fr_from_le_bytes;
use proofrack_kernels::groth16::proof_from_bytes;
use std::path::{Path, PathBuf};

/// `proofrack circuits register`.
#[derive(Args, Clone, Debug)]
pub struct RegisterArgs {
    /// The name tasks will use (lowercase letters, digits, '-', '_', '.').
    #[arg(long)]
    pub name: String,
    /// The circuit's Groth16 zkey (BN254), after its phase-2 contributions.
    #[arg(long)]
    pub zkey: PathBuf,
    /// The circuit's constraints (`circom --r1cs`): the coordinator checks every submitted
    /// witness against them before any operator's stake is bound.
    #[arg(long)]
    pub r1cs: PathBuf,
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Uploads the zkey and `.r1cs`; the coordinator converts and checks them.
pub async fn register(c: &ClientArgs, a: &RegisterArgs) -> anyhow::Result<CircuitRow> {
    let zkey = read(&a.zkey)?;
    let r1cs = read(&a.r1cs)?;
    let client = c.connect().await?;
    let reply = client
        .request_with_payloads(
            ClientRequest::RegisterCircuit(RegisterCircuit {
                name: a.name.clone(),
            }),
            &[&zkey, &r1cs],
        )
        .await;
    client.close().await;
    match reply? {
        ClientResponse::Registered(row) => Ok(row),
        ClientResponse::Rejected { reason } => bail!("registration refused: {reason}"),
        ClientResponse::Error(e) => bail!("{e}"),
        other => bail!("unexpected reply {other:?}"),
    }
}

/// `proofrack circuits register`, printed.
pub async fn register_cmd(c: &ClientArgs, a: &RegisterArgs) -> anyhow::Result<()> {
    let row = register(c, a).await?;
    if c.json {
        crate::stdout::line(crate::json_out::to_text(
            &crate::json_out::CircuitJson::from(&row),
        )?);
    } else {
        crate::stdout::line(format!(
            "registered {}: key {}, domain 2^{}, {} signals, {} public",
            row.name,
            row.key.short(),
            row.shape.domain_size.trailing_zeros(),
            row.shape.num_variables,
            row.num_public_inputs
        ));
    }
    Ok(())
}

/// The `.wtns` a circom submission sends: `--wtns` as is, or computed here from `--input`
/// with `--wasm` (circom's own witness generator, run by `snarkjs wtns calculate`).
/// `None` for a built-in circuit's JSON submission.
pub fn witness_for(s: &SubmitArgs) -> anyhow::Result<Option<Vec<u8>>> {
    match (&s.wtns, &s.input, &s.wasm) {
        (Some(w), _, _) => Ok(Some(read(w)?)),
        (None, Some(input), Some(wasm)) => {
            let scratch = std::env::temp_dir().join(format!(
                "proofrack-submit-{}-{}.wtns",
                std::process::id(),
                rand::random::<u32>()
            ));
            let made = calculate_witness(&s.snarkjs, wasm, input, &scratch);
            let bytes = made.and_then(|()| read(&scratch));
            let _ = std::fs::remove_file(&scratch);
            Ok(Some(bytes?))
        }
        _ => Ok(None),
    }
}

/// The request for a circom submission.
pub fn submit_request(s: &SubmitArgs, request_id: u64) -> ClientRequest {
    ClientRequest::SubmitWitness(SubmitWitness {
        circuit: s.circuit.clone(),
        collateral: s.collateral,
        deadline_ms: s.deadline.as_millis() as u64,
        request_id,
    })
}

/// Writes a verified task's proof into `dir` as snarkjs `proof.json` and `public.json`, and
/// our 128-byte `proof.bin`.
pub fn write_task_proof(dir: &Path, view: &TaskStatusView) -> anyhow::Result<()> {
    let TaskState::Verified {
        proof,
        public_outputs,
        ..
    } = &view.state
    else {
        bail!(
            "{} is {}, not verified: there is no proof to write yet",
            view.task,
            view.state.name()
        );
    };
    let proof = proof_from_bytes(proof).context("the coordinator's proof bytes")?;
    let public = public_outputs
        .iter()
        .enumerate()
        .map(|(i, b)| {
            fr_from_le_bytes(b)
                .with_context(|| format!("public signal {i} is not a canonical field element"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    write_outputs(dir, &proof, &public)
}

/// `--out-dir` after a task finished: the proof files, or why there are none.
pub fn finish_out_dir(
    task: TaskId,
    dir: Option<&Path>,
    last: &TaskStatusView,
) -> anyhow::Result<()> {
    let Some(dir) = dir else { return Ok(()) };
    write_task_proof(dir, last)?;
    eprintln!(
        "{task}: proof.json, public.json and proof.bin written to {}; check them with the circuit's key from `proofrack circuits vk {}`: `snarkjs groth16 verify verification_key.json {}/public.json {}/proof.json`",
        dir.display(),
        last.circuit,
        dir.display(),
        dir.display()
    );
    Ok(())
}
