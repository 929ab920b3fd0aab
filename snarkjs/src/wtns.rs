//! circom witness files (`.wtns`): section 1 = u32 n8, the prime r (n8 bytes), u32 count;
//! section 2 = count × n8-byte canonical little-endian values, in circom's signal order.

use ark_ff::{BigInteger, PrimeField};
use proofrack_kernels::curve::Fr;
use rayon::prelude::*;

use crate::binfile::{self, BinFile};
use crate::encoding;
use crate::{Result, SnarkjsError};

const MAGIC: &[u8; 4] = b"wtns";
/// circom and snarkjs write version 2.
const MAX_VERSION: u32 = 2;
const FR_BYTES: usize = 32;

fn section_name(id: u32) -> String {
    match id {
        1 => "section 1 (header)".to_string(),
        2 => "section 2 (values)".to_string(),
        _ => format!("section {id} (unknown)"),
    }
}

/// Checks a `.wtns`'s header and section table from a reader of its `len` bytes without
/// reading its sections (see [`binfile::check_layout`]): refuses garbage before the file is
/// read into memory.
pub fn check_wtns_layout<R: std::io::Read + std::io::Seek>(r: &mut R, len: u64) -> Result<()> {
    binfile::check_layout(r, len, "wtns", MAGIC, MAX_VERSION, section_name)
}

/// Reads a BN254 witness. Refuses a witness over another prime (another curve's circuit).
pub fn read_wtns(bytes: &[u8]) -> Result<Vec<Fr>> {
    let file = BinFile::parse(bytes, "wtns", MAGIC, MAX_VERSION, section_name)?;
    let mut h = file.section(1)?;
    let n8 = h.u32()? as usize;
    let prime = h.take(n8)?;
    if prime != Fr::MODULUS.to_bytes_le().as_slice() {
        return Err(SnarkjsError::WrongCurve {
            file: "wtns",
            what: "the prime",
            bits: (n8 * 8) as u32,
            value: encoding::le_bytes_to_decimal(prime),
        });
    }
    let count = h.u32()? as usize;
    let mut s = file.section(2)?;
    s.expect_len((count * FR_BYTES) as u64)?;
    let values = s.take(count * FR_BYTES)?;
    values
        .par_chunks_exact(FR_BYTES)
        .enumerate()
        .map(|(index, c)| {
            encoding::fr_from_le(c).ok_or(SnarkjsError::BadScalar {
                file: "wtns",
                section: "values",
                index,
            })
        })
        .collect()
}

/// Writes a version-2 witness file as circom's witness calculator does.
pub fn write_wtns(witness: &[Fr]) -> Vec<u8> {
    let mut header = Vec::with_capacity(40);
    header.extend_from_slice(&(FR_BYTES as u32).to_le_bytes());
    header.extend_from_slice(&Fr::MODULUS.to_bytes_le());
    header.extend_from_slice(&(witness.len() as u32).to_le_bytes());
    let mut values = Vec::with_capacity(witness.len() * FR_BYTES);
    witness
        .iter()
        .for_each(|f| encoding::fr_to_le(f, &mut values));
    binfile::write(MAGIC, 2, &[(1, header), (2, values)])
}

/// Fails unless the witness has exactly the key's variable count.
pub fn check_witness_length(witness: &[Fr], num_variables: usize) -> Result<()> {
    if witness.len() != num_variables {
        return Err(SnarkjsError::WitnessLength {
            expected: num_variables,
            got: witness.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let w: Vec<Fr> = (1..20u64).map(Fr::from).collect();
        let bytes = write_wtns(&w);
        assert_eq!(read_wtns(&bytes).unwrap(), w);
        let err = read_wtns(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.to_string().contains("section 2 (values)"), "{err}");
        let mut other = bytes.clone();
        other[12 + 12 + 4] ^= 1; // the prime's low byte
        assert!(matches!(
            read_wtns(&other),
            Err(SnarkjsError::WrongCurve { .. })
        ));
        assert!(matches!(
            check_witness_length(&w, 20),
            Err(SnarkjsError::WitnessLength {
                expected: 20,
                got: 19
            })
        ));
    }
}
