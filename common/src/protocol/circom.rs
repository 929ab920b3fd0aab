//! circom circuits through the coordinator: registering one (its zkey and `.r1cs` as payloads
//! after the request frame), submitting a witness (a `.wtns` payload after the request
//! frame), and the small [`WitnessRef`] that stands for the witness in task inputs and offers.
//! An agent fetches the witness itself on a `FetchInput` stream, so a witness of any size
//! never rides in a control message.
//!
//! Task inputs stay opaque bytes to the coordinator's core: a built-in circuit's are JSON
//! text, a circom task's are [`WITNESS_REF_MAGIC`] followed by a postcard [`WitnessRef`]
//! ([`TaskInputs::decode`] tells them apart; JSON never starts with a NUL byte).

use super::agent::FieldBytes;
use super::{check_circuit_name, check_len, Bounded, ProtocolError, MAX_PUBLIC_INPUTS};
use crate::amount::StakeUnits;
use crate::ids::TaskId;
use serde::{Deserialize, Serialize};

/// Largest zkey a client may register. A 2^21-constraint circuit's zkey is ~1 GiB; the
/// coordinator parses it in memory once (at registration and at start), so this bounds what
/// one registration can make it allocate.
pub const MAX_ZKEY_BYTES: u64 = 2 << 30;
/// Largest `.r1cs`: ~100 B per constraint for circomlib circuits, so 1 GiB is far above any
/// circuit a zkey under [`MAX_ZKEY_BYTES`] holds.
pub const MAX_R1CS_BYTES: u64 = 1 << 30;
/// Largest `.wtns`: 32 B per signal, so 1 GiB is 2^25 signals, beyond the largest domain
/// (2^24 constraints) circuits prove here. Witnesses are kept on the coordinator's disk until
/// their task ends.
pub const MAX_WITNESS_BYTES: u64 = 1 << 30;

/// Prefix of a circom task's inputs; JSON inputs never start with a NUL byte.
pub const WITNESS_REF_MAGIC: &[u8; 8] = b"\0wtnsref";

/// A client registers a circom circuit; the stream then carries two payloads
/// ([`crate::framing::send_payload`]): the zkey, then the `.r1cs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterCircuit {
    pub name: String,
}

/// A client submits a circom task; the stream then carries the `.wtns` as one payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitWitness {
    pub circuit: String,
    pub collateral: StakeUnits,
    pub deadline_ms: u64,
    /// As in `SubmitRequest`: a repeated (client, request_id) returns the first task.
    pub request_id: u64,
}

/// The witness of a circom task, as offers and the coordinator's task rows carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessRef {
    /// SHA-256 of the `.wtns` bytes: what the agent fetches and checks.
    pub sha256: [u8; 32],
    pub len: u64,
    /// witness[1..=nPublic] (outputs first), which the delivered proof's public inputs must
    /// equal.
    pub public: Vec<FieldBytes>,
}

/// A task's inputs, told apart by their first bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskInputs<'a> {
    /// A built-in circuit's JSON inputs.
    Json(&'a [u8]),
    /// A circom task: the witness to fetch.
    Witness(WitnessRef),
}

impl<'a> TaskInputs<'a> {
    pub fn decode(bytes: &'a [u8]) -> Result<Self, String> {
        match bytes.strip_prefix(WITNESS_REF_MAGIC.as_slice()) {
            None => Ok(TaskInputs::Json(bytes)),
            Some(rest) => {
                let r: WitnessRef = crate::framing::decode(rest)
                    .map_err(|e| format!("a circom task's witness reference: {e}"))?;
                check_len("witness public signals", r.public.len(), MAX_PUBLIC_INPUTS)?;
                Ok(TaskInputs::Witness(r))
            }
        }
    }
}

impl WitnessRef {
    /// The task inputs standing for this witness.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_extend(self, WITNESS_REF_MAGIC.to_vec()).expect("a Vec grows as needed")
    }

    pub fn hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// First frame of an agent's witness fetch: the witness of `task`, which must be offered or
/// bound to the agent (a witness holds the client's private signals).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchInput {
    pub task: TaskId,
    pub sha256: [u8; 32],
}

/// The coordinator's answer to `FetchInput`; after `Found` the witness follows as a payload
/// whose SHA-256 is the one asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputReply {
    Found { total_len: u64 },
    Error(ProtocolError),
}

impl Bounded for RegisterCircuit {
    fn check_bounds(&self) -> Result<(), String> {
        check_circuit_name(&self.name)
    }
}

impl Bounded for SubmitWitness {
    fn check_bounds(&self) -> Result<(), String> {
        check_circuit_name(&self.circuit)
    }
}

impl Bounded for FetchInput {
    fn check_bounds(&self) -> Result<(), String> {
        Ok(())
    }
}

impl Bounded for InputReply {
    fn check_bounds(&self) -> Result<(), String> {
        match self {
            InputReply::Found { total_len } => {
                if *total_len > MAX_WITNESS_BYTES {
                    return Err(format!(
                        "witness of {total_len} bytes is above the {MAX_WITNESS_BYTES}-byte limit"
                    ));
                }
                Ok(())
            }
            InputReply::Error(e) => e.check_bounds(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witness_refs_and_json_inputs_are_told_apart() {
        let r = WitnessRef {
            sha256: [7; 32],
            len: 96,
            public: vec![[1; 32], [2; 32]],
        };
        let bytes = r.encode();
        assert_eq!(TaskInputs::decode(&bytes), Ok(TaskInputs::Witness(r)));
        let json = br#"{"x": "1"}"#;
        assert_eq!(TaskInputs::decode(json), Ok(TaskInputs::Json(json)));
        assert!(TaskInputs::decode(&bytes[..bytes.len() - 3]).is_err());
    }
}
