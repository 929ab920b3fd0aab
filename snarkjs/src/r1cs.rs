//! circom constraint files (`.r1cs`, iden3 r1csfile): section 1 = the header (u32 n8, the
//! prime, u32 nWires, nPubOut, nPubIn, nPrvIn, u64 nLabels, u32 nConstraints); section 2 =
//! per constraint three linear combinations A, B, C, each u32 nTerms then nTerms × (u32
//! wire, n8-byte canonical little-endian coefficient); section 3 = wire → label (not needed).
//!
//! The zkey keeps only A and B (snarkjs' prover never reads C), so the `.r1cs` is what lets
//! the coordinator check a witness against the constraints before any stake is bound.
//! [`check_matches_key`] makes sure the `.r1cs` is the zkey's circuit.

use ark_ff::{BigInteger, PrimeField};
use proofrack_kernels::curve::Fr;
use proofrack_kernels::groth16::{ProvingKey, R1cs, SparseMatrix};

use crate::binfile::{self, BinFile, Reader};
use crate::encoding;
use crate::{Result, SnarkjsError};

const MAGIC: &[u8; 4] = b"r1cs";
/// circom 2 writes version 1.
const MAX_VERSION: u32 = 1;
const FR_BYTES: usize = 32;
/// The smallest encoded constraint: three empty linear combinations (three u32 counts).
const MIN_CONSTRAINT_BYTES: usize = 12;
/// The smallest encoded term: a u32 wire and a 32-byte coefficient.
const TERM_BYTES: usize = 4 + FR_BYTES;

fn section_name(id: u32) -> String {
    match id {
        1 => "section 1 (header)".to_string(),
        2 => "section 2 (constraints)".to_string(),
        3 => "section 3 (wire labels)".to_string(),
        _ => format!("section {id} (unknown)"),
    }
}

/// Checks a `.r1cs`'s header and section table from a reader of its `len` bytes without
/// reading its sections (see [`binfile::check_layout`]): refuses garbage before the file is
/// read into memory.
pub fn check_r1cs_layout<R: std::io::Read + std::io::Seek>(r: &mut R, len: u64) -> Result<()> {
    binfile::check_layout(r, len, "r1cs", MAGIC, MAX_VERSION, section_name)
}

/// Reads a BN254 `.r1cs` into our constraint system (circom's wire order: 0 = the constant
/// one, then outputs, public inputs, private signals).
pub fn read_r1cs(bytes: &[u8]) -> Result<R1cs> {
    let file = BinFile::parse(bytes, "r1cs", MAGIC, MAX_VERSION, section_name)?;
    let mut h = file.section(1)?;
    let n8 = h.u32()? as usize;
    let prime = h.take(n8)?;
    if prime != Fr::MODULUS.to_bytes_le().as_slice() {
        return Err(SnarkjsError::WrongCurve {
            file: "r1cs",
            what: "the prime",
            bits: (n8 * 8) as u32,
            value: encoding::le_bytes_to_decimal(prime),
        });
    }
    let num_wires = h.u32()? as usize;
    let num_outputs = h.u32()? as usize;
    let num_public_inputs = h.u32()? as usize;
    let _num_private_inputs = h.u32()?;
    let _num_labels = h.u64()?;
    let num_constraints = h.u32()? as usize;
    let mut s = file.section(2)?;
    // A hostile count must not size an allocation: each constraint takes at least 12 bytes.
    if num_constraints > s.remaining() / MIN_CONSTRAINT_BYTES {
        return Err(SnarkjsError::Truncated {
            file: "r1cs",
            section: section_name(2),
            needed: (num_constraints * MIN_CONSTRAINT_BYTES) as u64,
            available: s.remaining() as u64,
        });
    }
    let mut matrices = [
        SparseMatrix::with_capacity(num_constraints, 0),
        SparseMatrix::with_capacity(num_constraints, 0),
        SparseMatrix::with_capacity(num_constraints, 0),
    ];
    let mut terms = Vec::new();
    for constraint in 0..num_constraints {
        for (which, m) in matrices.iter_mut().enumerate() {
            read_combination(&mut s, constraint, which, num_wires, &mut terms)?;
            m.push_row(terms.drain(..));
        }
    }
    let [a, b, c] = matrices;
    R1cs::new(num_outputs + num_public_inputs, num_wires, a, b, c).map_err(|e| {
        SnarkjsError::BadCoefficient {
            index: 0,
            reason: format!("the constraint system is inconsistent: {e}"),
        }
    })
}

fn read_combination(
    s: &mut Reader<'_>,
    constraint: usize,
    which: usize,
    num_wires: usize,
    out: &mut Vec<(Fr, u32)>,
) -> Result<()> {
    let count = s.u32()? as usize;
    if count > s.remaining() / TERM_BYTES {
        return Err(SnarkjsError::Truncated {
            file: "r1cs",
            section: section_name(2),
            needed: (count * TERM_BYTES) as u64,
            available: s.remaining() as u64,
        });
    }
    let bad = |reason: String| SnarkjsError::BadCoefficient {
        index: constraint,
        reason: format!(
            "r1cs constraint {constraint}, {}: {reason}",
            ["A", "B", "C"][which]
        ),
    };
    for _ in 0..count {
        let wire = s.u32()?;
        if wire as usize >= num_wires {
            return Err(bad(format!(
                "wire {wire} is not below the {num_wires} wires"
            )));
        }
        let value = encoding::fr_from_le(s.take(FR_BYTES)?)
            .ok_or_else(|| bad("a coefficient is not below r".to_string()))?;
        out.push((value, wire));
    }
    Ok(())
}

/// Checks that `r1cs` is the circuit `key` was set up for: the same signal counts and the
/// same A and B rows (the zkey's copy of them). Another circuit's `.r1cs` would make the
/// coordinator accept witnesses the key cannot prove, or refuse good ones.
pub fn check_matches_key(r1cs: &R1cs, key: &ProvingKey) -> std::result::Result<(), String> {
    let counts = [
        ("public signals", r1cs.num_public(), key.num_public()),
        ("signals", r1cs.num_variables(), key.num_variables()),
        ("constraints", r1cs.num_constraints(), key.num_constraints()),
    ];
    for (what, in_r1cs, in_zkey) in counts {
        if in_r1cs != in_zkey {
            return Err(format!(
                "the .r1cs has {in_r1cs} {what} but the zkey has {in_zkey}: they are not the same circuit"
            ));
        }
    }
    let parts = key.parts();
    for (name, ours, theirs) in [("A", r1cs.a(), &parts.a), ("B", r1cs.b(), &parts.b)] {
        for row in 0..r1cs.num_constraints() {
            if sorted_row(ours, row) != sorted_row(theirs, row) {
                return Err(format!(
                    "constraint {row} of {name} differs between the .r1cs and the zkey: they are not the same circuit (recompile, or set up the zkey from this .r1cs)"
                ));
            }
        }
    }
    Ok(())
}

fn sorted_row(m: &SparseMatrix, row: usize) -> Vec<(u32, Fr)> {
    let mut terms: Vec<(u32, Fr)> = m.row(row).map(|(c, col)| (col, c)).collect();
    terms.sort_by_key(|(col, _)| *col);
    terms
}

/// Writes a version-1 `.r1cs` as circom does (no wire labels beyond the identity map): for
/// tests and tools that need a constraint file for a key made here.
pub fn write_r1cs(r1cs: &R1cs, num_outputs: usize) -> Vec<u8> {
    let mut header = Vec::with_capacity(64);
    header.extend_from_slice(&(FR_BYTES as u32).to_le_bytes());
    header.extend_from_slice(&Fr::MODULUS.to_bytes_le());
    header.extend_from_slice(&(r1cs.num_variables() as u32).to_le_bytes());
    header.extend_from_slice(&(num_outputs as u32).to_le_bytes());
    header.extend_from_slice(&((r1cs.num_public() - num_outputs) as u32).to_le_bytes());
    let private = r1cs.num_variables() - 1 - r1cs.num_public();
    header.extend_from_slice(&(private as u32).to_le_bytes());
    header.extend_from_slice(&(r1cs.num_variables() as u64).to_le_bytes());
    header.extend_from_slice(&(r1cs.num_constraints() as u32).to_le_bytes());
    let mut constraints = Vec::new();
    for row in 0..r1cs.num_constraints() {
        for m in [r1cs.a(), r1cs.b(), r1cs.c()] {
            let terms = sorted_row(m, row);
            constraints.extend_from_slice(&(terms.len() as u32).to_le_bytes());
            for (col, c) in terms {
                constraints.extend_from_slice(&col.to_le_bytes());
                encoding::fr_to_le(&c, &mut constraints);
            }
        }
    }
    let labels: Vec<u8> = (0..r1cs.num_variables() as u64)
        .flat_map(u64::to_le_bytes)
        .collect();
    crate::binfile::write(MAGIC, 1, &[(1, header), (2, constraints), (3, labels)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofrack_kernels::circuits::circuit_by_name;

    #[test]
    fn round_trips_and_checks_witnesses() {
        let circuit = circuit_by_name("mimc-4").unwrap();
        let r1cs = circuit.r1cs();
        let bytes = write_r1cs(&r1cs, 1);
        let back = read_r1cs(&bytes).unwrap();
        assert_eq!(back.num_public(), r1cs.num_public());
        assert_eq!(back.num_variables(), r1cs.num_variables());
        assert_eq!(back.num_constraints(), r1cs.num_constraints());
        let witness = circuit
            .witness_from_json(r#"{"x": "3", "key": "5"}"#)
            .unwrap();
        assert_eq!(back.first_unsatisfied(&witness.full), None);
        let mut bad = witness.full.clone();
        let last = bad.len() - 1;
        bad[last] += Fr::from(1u64);
        assert!(back.first_unsatisfied(&bad).is_some());
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let r1cs = circuit_by_name("mimc-4").unwrap().r1cs();
        let bytes = write_r1cs(&r1cs, 1);
        let cut = &bytes[..bytes.len() - 200];
        assert!(matches!(
            read_r1cs(cut),
            Err(SnarkjsError::Truncated { .. })
        ));
        let mut wrong_magic = bytes.clone();
        wrong_magic[0] = b'x';
        assert!(matches!(
            read_r1cs(&wrong_magic),
            Err(SnarkjsError::BadMagic { .. })
        ));
    }
}
