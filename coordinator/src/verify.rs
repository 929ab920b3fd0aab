//! Proof verification for a delivered task: the public inputs the client fixed must be the
//! ones proven, and the pairing check must pass. Runs on a blocking thread (a pairing is a
//! few milliseconds of CPU).

use crate::registry::{CircuitSource, RegisteredCircuit};
use proofrack_common::protocol::{FieldBytes, TaskInputs};
use proofrack_kernels::field_bytes::fr_from_le_bytes;
use proofrack_kernels::groth16::{proof_from_bytes, verify};

/// Why a delivered proof is not accepted. Every one of these slashes: the agent had the
/// inputs and the key, so a wrong proof is its fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofRejected {
    #[error("the proof bytes are malformed: {0}")]
    Malformed(String),
    #[error("the proof carries {got} public inputs; {circuit} has {expected}")]
    PublicInputCount {
        circuit: String,
        expected: usize,
        got: usize,
    },
    #[error("public input {index} is not a canonical field element")]
    NonCanonicalInput { index: usize },
    #[error("public input {index} ({name}) differs from the task's input")]
    InputMismatch { index: usize, name: &'static str },
    #[error("the task's inputs no longer parse: {0}")]
    TaskInputs(String),
    #[error("the proof does not verify against {circuit}'s verifying key")]
    PairingFailed { circuit: String },
}

/// Checks `proof` proves `circuit` on the task's `inputs` (JSON, as submitted) with
/// `public_inputs` as delivered (outputs first, then inputs, in key order).
pub fn verify_delivery(
    circuit: &RegisteredCircuit,
    inputs_json: &[u8],
    public_inputs: &[FieldBytes],
    proof: &[u8],
) -> Result<(), ProofRejected> {
    let proof = proof_from_bytes(proof).map_err(|e| ProofRejected::Malformed(e.to_string()))?;
    if public_inputs.len() != circuit.num_public {
        return Err(ProofRejected::PublicInputCount {
            circuit: circuit.name.clone(),
            expected: circuit.num_public,
            got: public_inputs.len(),
        });
    }
    let public = public_inputs
        .iter()
        .enumerate()
        .map(|(index, b)| fr_from_le_bytes(b).ok_or(ProofRejected::NonCanonicalInput { index }))
        .collect::<Result<Vec<_>, _>>()?;
    match &circuit.source {
        CircuitSource::BuiltIn(builtin) => {
            let text = std::str::from_utf8(inputs_json)
                .map_err(|e| ProofRejected::TaskInputs(e.to_string()))?;
            let inputs = builtin
                .parse_inputs(text)
                .map_err(|e| ProofRejected::TaskInputs(e.to_string()))?;
            // The MiMC chain's public inputs are [y, x, key]: y is the agent's output (the
            // proof shows it is right), x and key are what the client asked about.
            for (index, name, expected) in [(1usize, "x", inputs.x), (2, "key", inputs.key)] {
                if public[index] != expected {
                    return Err(ProofRejected::InputMismatch { index, name });
                }
            }
        }
        CircuitSource::Circom(_) => {
            // Every public signal (outputs included) is fixed by the client's witness, which
            // the coordinator checked against the constraints: the proof must be of exactly
            // witness[1..=nPublic].
            let Ok(TaskInputs::Witness(w)) = TaskInputs::decode(inputs_json) else {
                return Err(ProofRejected::TaskInputs(
                    "a circom task without a witness reference".to_string(),
                ));
            };
            if let Some(index) =
                (0..public_inputs.len()).find(|&i| w.public.get(i) != Some(&public_inputs[i]))
            {
                return Err(ProofRejected::InputMismatch {
                    index,
                    name: "a public signal of the submitted witness",
                });
            }
        }
    }
    match verify(&circuit.pvk, &public, &proof) {
        Ok(true) => Ok(()),
        Ok(false) => Err(ProofRejected::PairingFailed {
            circuit: circuit.name.clone(),
        }),
        Err(e) => Err(ProofRejected::Malformed(e.to_string())),
    }
}
