//! Submitted witnesses: checked against the circuit's constraints before the task exists (so
//! no stake is ever bound to a witness that cannot be proven), then kept content-addressed
//! under `<data>/keys/circom/witnesses/` until their task is verified (or, for failed tasks,
//! until the next start sweeps the witnesses no unfinished task refers to).

use super::{write_atomic, CircomCircuit, CircomError};
use proofrack_common::protocol::WitnessRef;
use proofrack_kernels::field_bytes::fr_to_le_bytes;
use proofrack_snarkjs as snarkjs;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const WITNESS_DIR: &str = "witnesses";
/// A `.wtns` as circom writes it: the container header (12 bytes), section 1 (12 + n8, the
/// prime, the count: 12 + 4 + 32 + 4) and section 2's header (12), then 32 bytes per signal.
const WTNS_FIXED_BYTES: u64 = 12 + 12 + 40 + 12;
/// Room for a writer that adds a small section of its own.
const WTNS_SLACK_BYTES: u64 = 4 << 10;

/// The largest witness a circuit of `num_variables` signals (constant 1 included) can have;
/// an upload announcing more is refused before a byte of it is read.
pub fn max_wtns_bytes(num_variables: usize) -> u64 {
    WTNS_FIXED_BYTES + 32 * num_variables as u64 + WTNS_SLACK_BYTES
}

/// Why a witness is refused. Each message says what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum WitnessRejected {
    #[error("the witness is not a valid .wtns: {0}")]
    Unreadable(snarkjs::SnarkjsError),
    #[error("the witness has {got} values but {circuit} has {expected} signals (constant 1 included); it belongs to another circuit: compute it with {circuit}'s .wasm")]
    WrongLength {
        circuit: String,
        expected: usize,
        got: usize,
    },
    #[error("the witness does not satisfy constraint {constraint} of {circuit}'s {total} constraints: the inputs are not a valid assignment; recompute the witness from valid inputs with the circuit's .wasm (`snarkjs wtns calculate`)")]
    Unsatisfied {
        circuit: String,
        constraint: usize,
        total: usize,
    },
    #[error("storing the witness: {0}")]
    Store(#[from] CircomError),
}

/// Checks `wtns` against `circuit`; returns the reference the task carries. CPU work
/// proportional to the circuit: call off the async threads.
pub fn check(
    name: &str,
    circuit: &CircomCircuit,
    wtns: &[u8],
) -> Result<WitnessRef, WitnessRejected> {
    let witness = snarkjs::read_wtns(wtns).map_err(WitnessRejected::Unreadable)?;
    let r1cs = &circuit.r1cs;
    if witness.len() != r1cs.num_variables() {
        return Err(WitnessRejected::WrongLength {
            circuit: name.to_string(),
            expected: r1cs.num_variables(),
            got: witness.len(),
        });
    }
    if let Some(constraint) = r1cs.first_unsatisfied(&witness) {
        return Err(WitnessRejected::Unsatisfied {
            circuit: name.to_string(),
            constraint,
            total: r1cs.num_constraints(),
        });
    }
    let sha256: [u8; 32] = Sha256::digest(wtns).into();
    Ok(WitnessRef {
        sha256,
        len: wtns.len() as u64,
        public: witness[1..=r1cs.num_public()]
            .iter()
            .map(fr_to_le_bytes)
            .collect(),
    })
}

/// Keeps a checked witness under its hash (durably, before its task is acknowledged).
pub fn store(dir: &Path, r: &WitnessRef, wtns: &[u8]) -> Result<(), CircomError> {
    let path = path_of(dir, &r.sha256);
    if path.exists() {
        return Ok(());
    }
    let parent = path.parent().expect("under dir");
    std::fs::create_dir_all(parent).map_err(|source| CircomError::Io {
        path: parent.to_path_buf(),
        source,
    })?;
    write_atomic(&path, wtns)
}

/// Removes the stored witnesses not in `keep` (those of unfinished tasks); returns how many.
pub fn sweep(dir: &Path, keep: &std::collections::BTreeSet<[u8; 32]>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir.join(WITNESS_DIR)) else {
        return 0;
    };
    let mut removed = 0;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let hash: Option<[u8; 32]> = hex::decode(name).ok().and_then(|b| b.try_into().ok());
        if hash.is_some_and(|h| !keep.contains(&h)) && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Where the witness with this hash is kept.
pub fn path_of(dir: &Path, sha256: &[u8; 32]) -> PathBuf {
    dir.join(WITNESS_DIR)
        .join(format!("{}.wtns", hex::encode(sha256)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofrack_kernels::circuits::circuit_by_name;
    use proofrack_kernels::curve::Fr;
    use std::sync::Arc;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("proofrack-wtns-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn good_witnesses_are_stored_and_bad_ones_refused() {
        let builtin = circuit_by_name("mimc-4").unwrap();
        let circuit = CircomCircuit {
            r1cs: Arc::new(builtin.r1cs()),
        };
        let witness = builtin
            .witness_from_json(r#"{"x": "3", "key": "5"}"#)
            .unwrap();
        let dir = temp_dir("check");
        let bytes = snarkjs::write_wtns(&witness.full);
        assert_eq!(
            max_wtns_bytes(witness.full.len()),
            bytes.len() as u64 + WTNS_SLACK_BYTES,
            "the size bound is circom's exact layout plus the slack"
        );
        let r = check("m", &circuit, &bytes).unwrap();
        store(&dir, &r, &bytes).unwrap();
        assert_eq!(std::fs::read(path_of(&dir, &r.sha256)).unwrap(), bytes);
        assert_eq!(sweep(&dir, &[r.sha256].into()), 0);
        assert_eq!(sweep(&dir, &Default::default()), 1);
        assert!(!path_of(&dir, &r.sha256).exists());
        let public: Vec<[u8; 32]> = witness.public.iter().map(fr_to_le_bytes).collect();
        assert_eq!(r.public, public);

        let short = snarkjs::write_wtns(&witness.full[..witness.full.len() - 1]);
        let err = check("m", &circuit, &short).unwrap_err();
        assert!(
            matches!(err, WitnessRejected::WrongLength { expected, got, .. } if got + 1 == expected),
            "{err}"
        );
        let mut tampered = witness.full.clone();
        let last = tampered.len() - 1;
        tampered[last] += Fr::from(1u64);
        let err = check("m", &circuit, &snarkjs::write_wtns(&tampered)).unwrap_err();
        assert!(matches!(err, WitnessRejected::Unsatisfied { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
