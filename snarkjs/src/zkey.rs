//! snarkjs Groth16 `.zkey` files (BN254) to and from our [`ProvingKey`].
//!
//! Sections: 1 protocol, 2 header (q, r, nVars, nPublic, domainSize, α₁ β₁ β₂ γ₂ δ₁ δ₂),
//! 3 IC, 4 A/B coefficients, 5 A, 6 B1, 7 B2, 8 C (our `l_query`), 9 H, 10 contributions.
//! The points are used as they are: snarkjs' H section is the odd-Lagrange query our
//! circom-style prover expects. Only A and B are stored; C is never needed (c = a·b).

use proofrack_kernels::curve::{Fq, Fr, G1Affine, G2Affine};
use proofrack_kernels::groth16::points::{decode_points, CheckedPoint};
use proofrack_kernels::groth16::{PointCheck, ProvingKey, ProvingKeyParts, SparseMatrix};

use ark_ff::{BigInt, BigInteger, PrimeField};

use crate::binfile::{self, BinFile, Reader};
use crate::encoding::{self, Check, G1_BYTES, G2_BYTES};
use crate::{Result, SnarkjsError};

const MAGIC: &[u8; 4] = b"zkey";
/// snarkjs writes version 1 and its prover accepts up to 2.
const MAX_VERSION: u32 = 2;
const PROTOCOL_GROTH16: u32 = 1;
/// Bytes per coefficient record: u32 matrix, u32 constraint, u32 signal, 32-byte value.
const COEF_RECORD_BYTES: usize = 44;

fn section_name(id: u32) -> String {
    let what = match id {
        1 => "protocol",
        2 => "Groth16 header",
        3 => "IC points",
        4 => "A/B coefficients",
        5 => "A points",
        6 => "B1 points",
        7 => "B2 points",
        8 => "C points",
        9 => "H points",
        10 => "contributions",
        _ => "unknown",
    };
    format!("section {id} ({what})")
}

/// Checks a `.zkey`'s header and section table from a reader of its `len` bytes without
/// reading its sections (see [`binfile::check_layout`]): refuses garbage before the file is
/// read into memory.
pub fn check_zkey_layout<R: std::io::Read + std::io::Seek>(r: &mut R, len: u64) -> Result<()> {
    binfile::check_layout(r, len, "zkey", MAGIC, MAX_VERSION, section_name)
}

/// Reads a Groth16 BN254 zkey and converts it into a checked proving key (points on the
/// curve, G2 points of the verifying key in the subgroup, matrices within the variables).
pub fn read_zkey(bytes: &[u8]) -> Result<ProvingKey> {
    let file = BinFile::parse(bytes, "zkey", MAGIC, MAX_VERSION, section_name)?;
    let protocol = file.section(1)?.u32()?;
    if protocol != PROTOCOL_GROTH16 {
        return Err(SnarkjsError::NotGroth16(protocol));
    }

    let mut h = file.section(2)?;
    check_prime(&mut h, "q (the base field)", &Fq::MODULUS)?;
    check_prime(&mut h, "r (the scalar field)", &Fr::MODULUS)?;
    let num_variables = h.u32()? as usize;
    let num_public = h.u32()? as usize;
    let domain_size = h.u32()? as usize;
    let g1 = |h: &mut Reader, name| point_g1(h.take(G1_BYTES)?, name, 0);
    let g2 = |h: &mut Reader, name| point_g2(h.take(G2_BYTES)?, name, 0, Check::Subgroup);
    let alpha_g1 = g1(&mut h, "alpha1")?;
    let beta_g1 = g1(&mut h, "beta1")?;
    let beta_g2 = g2(&mut h, "beta2")?;
    let gamma_g2 = g2(&mut h, "gamma2")?;
    let delta_g1 = g1(&mut h, "delta1")?;
    let delta_g2 = g2(&mut h, "delta2")?;
    if num_variables < num_public + 1 {
        return Err(SnarkjsError::SectionLength {
            file: "zkey",
            section: section_name(2),
            found: num_variables as u64,
            expected: num_public as u64 + 1,
        });
    }

    let ic = g1_section(&file, 3, "IC", num_public + 1)?;
    let (a, b) = read_coefficients(file.section(4)?, num_variables, num_public)?;
    let a_query = g1_section(&file, 5, "A", num_variables)?;
    let b_g1_query = g1_section(&file, 6, "B1", num_variables)?;
    let b_g2_query = g2_section(&file, 7, "B2", num_variables)?;
    let l_query = g1_section(&file, 8, "C", num_variables - num_public - 1)?;
    let h_query = g1_section(&file, 9, "H", domain_size)?;

    let key = ProvingKey::from_parts(ProvingKeyParts {
        num_public,
        num_variables,
        alpha_g1,
        beta_g1,
        beta_g2,
        gamma_g2,
        delta_g1,
        delta_g2,
        ic,
        a_query,
        b_g1_query,
        b_g2_query,
        h_query,
        l_query,
        a,
        b,
    })?;
    Ok(key)
}

/// Reads `u32 n8, n8 bytes` and requires the BN254 prime, so a zkey for another curve
/// (BLS12-381 has a 48-byte q) is refused before anything else is read.
fn check_prime(h: &mut Reader, what: &'static str, expected: &BigInt<4>) -> Result<()> {
    let n8 = h.u32()? as usize;
    let bytes = h.take(n8)?;
    if bytes != expected.to_bytes_le().as_slice() {
        let significant = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let bits = (significant as u32 * 8).saturating_sub(
            bytes
                .get(significant.wrapping_sub(1))
                .map_or(8, |b| b.leading_zeros()),
        );
        return Err(SnarkjsError::WrongCurve {
            file: "zkey",
            what,
            bits,
            value: encoding::le_bytes_to_decimal(bytes),
        });
    }
    Ok(())
}

fn point_g1(bytes: &[u8], section: &'static str, index: usize) -> Result<G1Affine> {
    encoding::g1_from_bytes(bytes).map_err(|reason| SnarkjsError::BadPoint {
        file: "zkey",
        section,
        index,
        reason,
    })
}

fn point_g2(bytes: &[u8], section: &'static str, index: usize, check: Check) -> Result<G2Affine> {
    encoding::g2_from_bytes(bytes, check).map_err(|reason| SnarkjsError::BadPoint {
        file: "zkey",
        section,
        index,
        reason,
    })
}

fn g1_section(file: &BinFile, id: u32, name: &'static str, count: usize) -> Result<Vec<G1Affine>> {
    points_section(file, id, name, count, G1_BYTES, encoding::g1_coords)
}

fn g2_section(file: &BinFile, id: u32, name: &'static str, count: usize) -> Result<Vec<G2Affine>> {
    // On-curve only: the subgroup check per point is the slow part, and a bad B2 point can
    // only make this key's own proofs fail verification.
    points_section(file, id, name, count, G2_BYTES, encoding::g2_coords)
}

/// A section of `count` points, decoded and checked on the curve by the kernels' shared
/// point decoder (the one our own key files use).
fn points_section<P: CheckedPoint>(
    file: &BinFile,
    id: u32,
    name: &'static str,
    count: usize,
    size: usize,
    coords: fn(&[u8]) -> std::result::Result<P, &'static str>,
) -> Result<Vec<P>> {
    let mut s = file.section(id)?;
    s.expect_len((count * size) as u64)?;
    let bytes = s.take(count * size)?;
    decode_points(bytes, size, PointCheck::OnCurve, coords).map_err(|bad| SnarkjsError::BadPoint {
        file: "zkey",
        section: name,
        index: bad.index,
        reason: bad.reason,
    })
}

/// Section 4 into our A and B matrices. The `num_public + 1` extra A rows snarkjs appends
/// (constraint `m + s`, signal `s`, coefficient 1) are checked and dropped; they give the
/// constraint count m, which the zkey header does not store.
fn read_coefficients(
    mut s: Reader,
    num_variables: usize,
    num_public: usize,
) -> Result<(SparseMatrix, SparseMatrix)> {
    let count = s.u32()? as usize;
    s.expect_len((count * COEF_RECORD_BYTES) as u64)?;
    let bytes = s.take(count * COEF_RECORD_BYTES)?;
    let bad = |index, reason: String| SnarkjsError::BadCoefficient { index, reason };
    let decode = encoding::coef_decoder();
    let mut records = Vec::with_capacity(count);
    for (i, rec) in bytes.chunks_exact(COEF_RECORD_BYTES).enumerate() {
        let word = |k: usize| u32::from_le_bytes(rec[4 * k..4 * k + 4].try_into().expect("4"));
        let (matrix, constraint, signal) = (word(0), word(1), word(2));
        if matrix > 1 {
            return Err(bad(
                i,
                format!("matrix {matrix} is neither A (0) nor B (1)"),
            ));
        }
        if signal as usize >= num_variables {
            return Err(bad(
                i,
                format!("signal {signal} is not below nVars {num_variables}"),
            ));
        }
        let coef = encoding::coef_from_bytes_with(&rec[12..], decode)
            .ok_or_else(|| bad(i, "the value is not below r".to_string()))?;
        records.push((matrix, constraint, signal, coef));
    }
    let max_a = records
        .iter()
        .filter(|r| r.0 == 0)
        .map(|r| r.1 as usize)
        .max()
        .ok_or_else(|| {
            bad(
                0,
                "there are no A records, not even the public-input rows".into(),
            )
        })?;
    let m = max_a.checked_sub(num_public).ok_or_else(|| {
        bad(
            0,
            format!("the last A row {max_a} is below nPublic {num_public}"),
        )
    })?;
    let mut input_rows = vec![false; num_public + 1];
    let mut rows: [Vec<(u32, u32, Fr)>; 2] = [Vec::new(), Vec::new()];
    for (i, &(matrix, constraint, signal, coef)) in records.iter().enumerate() {
        let c = constraint as usize;
        if c < m {
            rows[matrix as usize].push((constraint, signal, coef));
            continue;
        }
        let s = c - m;
        let is_input_row = matrix == 0 && signal as usize == s && coef == Fr::from(1u64);
        if !is_input_row || input_rows[s] {
            return Err(bad(i, format!("constraint {c} is past the {m} constraints but is not public-input row {s} (A, signal {s}, coefficient 1) or repeats it")));
        }
        input_rows[s] = true;
    }
    if let Some(s) = input_rows.iter().position(|&seen| !seen) {
        return Err(bad(
            count,
            format!("public-input row {s} (constraint {}) is missing", m + s),
        ));
    }
    let [a, b] = rows.map(|r| to_matrix(r, m));
    Ok((a, b))
}

/// Counting sort of `(row, col, coef)` records into compressed rows.
fn to_matrix(records: Vec<(u32, u32, Fr)>, num_rows: usize) -> SparseMatrix {
    let mut offsets = vec![0u32; num_rows + 1];
    for &(row, _, _) in &records {
        offsets[row as usize + 1] += 1;
    }
    for i in 0..num_rows {
        offsets[i + 1] += offsets[i];
    }
    let mut next = offsets.clone();
    let mut cols = vec![0u32; records.len()];
    let mut coeffs = vec![Fr::from(0u64); records.len()];
    for (row, col, coef) in records {
        let at = next[row as usize] as usize;
        cols[at] = col;
        coeffs[at] = coef;
        next[row as usize] += 1;
    }
    SparseMatrix::from_parts(offsets, cols, coeffs).expect("offsets built from the counts")
}

/// Writes `key` as a snarkjs Groth16 zkey (version 1, no contributions) that
/// `snarkjs groth16 prove` accepts. Used by the benchmark, which sets up with our own code
/// (no powers of tau), and by tests.
pub fn write_zkey(key: &ProvingKey) -> Vec<u8> {
    let p = key.parts();
    let mut header = Vec::new();
    for modulus in [Fq::MODULUS, Fr::MODULUS] {
        header.extend_from_slice(&32u32.to_le_bytes());
        header.extend_from_slice(&modulus.to_bytes_le());
    }
    for v in [p.num_variables, p.num_public, key.domain_size()] {
        header.extend_from_slice(&(v as u32).to_le_bytes());
    }
    encoding::g1_to_bytes(&p.alpha_g1, &mut header);
    encoding::g1_to_bytes(&p.beta_g1, &mut header);
    encoding::g2_to_bytes(&p.beta_g2, &mut header);
    encoding::g2_to_bytes(&p.gamma_g2, &mut header);
    encoding::g1_to_bytes(&p.delta_g1, &mut header);
    encoding::g2_to_bytes(&p.delta_g2, &mut header);

    let m = key.num_constraints();
    let mut coefs = Vec::new();
    let mut n = 0u32;
    let mut record = |out: &mut Vec<u8>, matrix: u32, row: usize, col: u32, c: &Fr| {
        for w in [matrix, row as u32, col] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        encoding::coef_to_bytes(c, out);
        n += 1;
    };
    let mut body = Vec::new();
    for (matrix, mat) in [(0u32, &p.a), (1u32, &p.b)] {
        for row in 0..mat.num_rows() {
            for (c, col) in mat.row(row) {
                record(&mut body, matrix, row, col, &c);
            }
        }
    }
    for s in 0..=p.num_public {
        record(&mut body, 0, m + s, s as u32, &Fr::from(1u64));
    }
    coefs.extend_from_slice(&n.to_le_bytes());
    coefs.extend_from_slice(&body);

    let g1s = |pts: &[G1Affine]| {
        let mut out = Vec::with_capacity(pts.len() * G1_BYTES);
        pts.iter().for_each(|q| encoding::g1_to_bytes(q, &mut out));
        out
    };
    let mut b2 = Vec::with_capacity(p.b_g2_query.len() * G2_BYTES);
    p.b_g2_query
        .iter()
        .for_each(|q| encoding::g2_to_bytes(q, &mut b2));
    // section 10: a zero circuit hash (64 bytes) and no contributions
    let mut mpc = vec![0u8; 64];
    mpc.extend_from_slice(&0u32.to_le_bytes());
    binfile::write(
        MAGIC,
        1,
        &[
            (1, PROTOCOL_GROTH16.to_le_bytes().to_vec()),
            (2, header),
            (3, g1s(&p.ic)),
            (4, coefs),
            (5, g1s(&p.a_query)),
            (6, g1s(&p.b_g1_query)),
            (7, b2),
            (8, g1s(&p.l_query)),
            (9, g1s(&p.h_query)),
            (10, mpc),
        ],
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ark_std::rand::{rngs::StdRng, SeedableRng};
    use proofrack_kernels::circuits::mimc::{MimcChain, MimcInputs};
    use proofrack_kernels::groth16::generate_key_with_rng;

    pub(crate) fn small_key() -> (ProvingKey, Vec<Fr>) {
        let chain = MimcChain::new(3);
        let key = generate_key_with_rng(&chain.r1cs(), &mut StdRng::seed_from_u64(1)).unwrap();
        let w = chain.witness(&MimcInputs {
            x: Fr::from(3u64),
            key: Fr::from(7u64),
        });
        (key, w)
    }

    #[test]
    fn write_then_read_gives_the_same_key() {
        let (key, _) = small_key();
        let bytes = write_zkey(&key);
        assert_eq!(read_zkey(&bytes).unwrap(), key);
    }

    #[test]
    fn truncation_names_the_section_and_never_panics() {
        let (key, _) = small_key();
        let bytes = write_zkey(&key);
        let err = read_zkey(&bytes[..bytes.len() - 30]).unwrap_err();
        assert!(
            err.to_string().contains("section 10 (contributions)"),
            "{err}"
        );
        for cut in (0..bytes.len()).step_by(97) {
            assert!(read_zkey(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn another_curve_is_refused_by_its_prime() {
        let (key, _) = small_key();
        let mut bytes = write_zkey(&key);
        // section 2 starts after magic+version+count (12), section 1 (12 + 4), its own
        // id+len (12) and n8q (4): flip q's low byte
        let q_at = 12 + 16 + 12 + 4;
        bytes[q_at] ^= 2;
        let err = read_zkey(&bytes).unwrap_err();
        assert!(matches!(err, SnarkjsError::WrongCurve { .. }), "{err}");
        assert!(err.to_string().contains("BN254"), "{err}");
    }

    #[test]
    fn missing_public_input_row_is_an_error() {
        let (key, _) = small_key();
        let mut bytes = write_zkey(&key);
        // break the last record (the last public-input row) by changing its signal
        let file = BinFile::parse(&bytes, "zkey", MAGIC, MAX_VERSION, section_name).unwrap();
        let sec4_len = file.section(4).unwrap().remaining();
        let start = find_section(&bytes, 4);
        let last_signal = start + sec4_len - COEF_RECORD_BYTES + 8;
        bytes[last_signal] ^= 1;
        assert!(matches!(
            read_zkey(&bytes),
            Err(SnarkjsError::BadCoefficient { .. })
        ));
    }

    fn find_section(bytes: &[u8], id: u32) -> usize {
        let mut pos = 12;
        loop {
            let sid = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap());
            let len = u64::from_le_bytes(bytes[pos + 4..pos + 12].try_into().unwrap()) as usize;
            if sid == id {
                return pos + 12;
            }
            pos += 12 + len;
        }
    }
}
