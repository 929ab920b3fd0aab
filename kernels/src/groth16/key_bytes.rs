//! The canonical byte form of a [`ProvingKey`] and its content address.
//!
//! Points are stored **uncompressed** (arkworks' uncompressed encoding: 64 bytes per G1,
//! 128 per G2). A compressed key is half the size, but loading it costs a square root per
//! point (about 4M for a 2^20 key), seconds of CPU on every agent start; uncompressed points
//! load at memory speed and are checked on the curve in parallel (or not at all when the
//! bytes matched a trusted key id). Disk and the one-time download are the cheaper resource.
//!
//! Layout (integers little-endian):
//! ```text
//! magic "PRGRTH16" | version u32 = 1
//! num_public u64 | num_variables u64 | num_constraints u64 | domain_size u64
//! alpha_g1 beta_g1 delta_g1 (G1) | beta_g2 gamma_g2 delta_g2 (G2)
//! ic, a_query, b_g1_query (G1) | b_g2_query (G2) | h_query, l_query (G1): each u64 count + points
//! matrix A, matrix B: u64 entries | (num_constraints+1) u32 row offsets | entries u32 cols |
//!                     entries × 32-byte Fr (canonical, little-endian)
//! ```
//! Every count is redundant with the header and checked, so a corrupt file fails with the
//! section named; counts are checked against the bytes left before anything is allocated.

use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::curve::{Fr, G1Affine, G2Affine};
use crate::groth16::key::{KeyError, PointCheck, ProvingKey, ProvingKeyParts};
use crate::groth16::points::{decode_points, BadPoint, CheckedPoint};
use crate::groth16::r1cs::{domain_size_for, SparseMatrix};

/// First bytes of every key file.
pub const KEY_MAGIC: [u8; 8] = *b"PRGRTH16";
/// Current (and only) format version.
pub const KEY_FORMAT_VERSION: u32 = 1;

const G1_BYTES: usize = 64;
const G2_BYTES: usize = 128;
const FR_BYTES: usize = 32;

/// SHA-256 of a key's canonical bytes: the key's content address. Callers wrap it in their
/// own id type.
pub fn key_id(canonical_bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(canonical_bytes).into()
}

impl ProvingKey {
    /// Exact length of [`ProvingKey::to_bytes`].
    pub fn byte_len(&self) -> usize {
        let p = self.parts();
        let header = 8 + 4 + 4 * 8 + 3 * G1_BYTES + 3 * G2_BYTES;
        let g1s =
            p.ic.len() + p.a_query.len() + p.b_g1_query.len() + p.h_query.len() + p.l_query.len();
        let matrix =
            |m: &SparseMatrix| 8 + 4 * (m.num_rows() + 1) + m.num_entries() * (4 + FR_BYTES);
        header
            + 6 * 8
            + g1s * G1_BYTES
            + p.b_g2_query.len() * G2_BYTES
            + matrix(&p.a)
            + matrix(&p.b)
    }

    /// The canonical bytes (deterministic: equal keys give equal bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = self.parts();
        let mut out = Vec::with_capacity(self.byte_len());
        out.extend_from_slice(&KEY_MAGIC);
        out.extend_from_slice(&KEY_FORMAT_VERSION.to_le_bytes());
        for v in [
            p.num_public,
            p.num_variables,
            self.num_constraints(),
            self.domain_size(),
        ] {
            out.extend_from_slice(&(v as u64).to_le_bytes());
        }
        for g in [p.alpha_g1, p.beta_g1, p.delta_g1] {
            put_point(&mut out, &g);
        }
        for g in [p.beta_g2, p.gamma_g2, p.delta_g2] {
            put_point(&mut out, &g);
        }
        put_points(&mut out, &p.ic);
        put_points(&mut out, &p.a_query);
        put_points(&mut out, &p.b_g1_query);
        put_points(&mut out, &p.b_g2_query);
        put_points(&mut out, &p.h_query);
        put_points(&mut out, &p.l_query);
        put_matrix(&mut out, &p.a);
        put_matrix(&mut out, &p.b);
        debug_assert_eq!(out.len(), self.byte_len());
        out
    }

    /// The key's content address: SHA-256 of [`ProvingKey::to_bytes`].
    pub fn id(&self) -> [u8; 32] {
        key_id(&self.to_bytes())
    }

    /// Parses and checks canonical key bytes. `points` chooses how much to check curve points.
    pub fn from_bytes(bytes: &[u8], points: PointCheck) -> Result<Self, KeyError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take("magic", 8)? != KEY_MAGIC {
            return Err(KeyError::BadMagic);
        }
        let version = r.u32("version")?;
        if version != KEY_FORMAT_VERSION {
            return Err(KeyError::UnsupportedVersion {
                found: version,
                supported: KEY_FORMAT_VERSION,
            });
        }
        let num_public = r.usize("header")?;
        let num_variables = r.usize("header")?;
        let num_constraints = r.usize("header")?;
        let domain_size = r.u64("header")?;
        let expected = domain_size_for(num_constraints, num_public)?;
        if domain_size != expected as u64 {
            return Err(KeyError::DomainMismatch {
                found: domain_size,
                expected,
                num_constraints,
                num_public,
            });
        }
        let alpha_g1 = r.g1_vec("alpha_g1", 1, points)?[0];
        let beta_g1 = r.g1_vec("beta_g1", 1, points)?[0];
        let delta_g1 = r.g1_vec("delta_g1", 1, points)?[0];
        let beta_g2 = r.g2_vec("beta_g2", 1, points)?[0];
        let gamma_g2 = r.g2_vec("gamma_g2", 1, points)?[0];
        let delta_g2 = r.g2_vec("delta_g2", 1, points)?[0];
        let n = r.count("ic", num_public.saturating_add(1))?;
        let ic = r.g1_vec("ic", n, points)?;
        let n = r.count("a_query", num_variables)?;
        let a_query = r.g1_vec("a_query", n, points)?;
        let n = r.count("b_g1_query", num_variables)?;
        let b_g1_query = r.g1_vec("b_g1_query", n, points)?;
        let n = r.count("b_g2_query", num_variables)?;
        let b_g2_query = r.g2_vec("b_g2_query", n, points)?;
        let n = r.count("h_query", expected)?;
        let h_query = r.g1_vec("h_query", n, points)?;
        let n = r.count("l_query", num_variables.saturating_sub(num_public + 1))?;
        let l_query = r.g1_vec("l_query", n, points)?;
        let a = r.matrix("matrix A", num_constraints)?;
        let b = r.matrix("matrix B", num_constraints)?;
        if r.pos != bytes.len() {
            return Err(KeyError::TrailingBytes {
                count: bytes.len() - r.pos,
            });
        }
        ProvingKey::from_parts(ProvingKeyParts {
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
        })
    }

    /// Checks the bytes hash to `expected_id`, then parses them without point checks (the
    /// id vouches for them). For keys fetched from our own coordinator.
    pub fn from_bytes_with_id(bytes: &[u8], expected_id: &[u8; 32]) -> Result<Self, KeyError> {
        let actual = key_id(bytes);
        if &actual != expected_id {
            return Err(KeyError::IdMismatch {
                expected: hex::encode(expected_id),
                actual: hex::encode(actual),
            });
        }
        Self::from_bytes(bytes, PointCheck::None)
    }
}

fn put_point<P: CanonicalSerialize>(out: &mut Vec<u8>, p: &P) {
    p.serialize_uncompressed(&mut *out)
        .expect("writing to a Vec cannot fail");
}

fn put_points<P: CanonicalSerialize>(out: &mut Vec<u8>, ps: &[P]) {
    out.extend_from_slice(&(ps.len() as u64).to_le_bytes());
    for p in ps {
        put_point(out, p);
    }
}

fn put_matrix(out: &mut Vec<u8>, m: &SparseMatrix) {
    out.extend_from_slice(&(m.num_entries() as u64).to_le_bytes());
    for o in m.row_offsets() {
        out.extend_from_slice(&o.to_le_bytes());
    }
    for c in m.cols() {
        out.extend_from_slice(&c.to_le_bytes());
    }
    for f in m.coeffs() {
        put_point(out, f);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, section: &'static str, n: u64) -> Result<&'a [u8], KeyError> {
        let available = self.bytes.len() - self.pos;
        if n > available as u64 {
            return Err(KeyError::Truncated {
                section,
                needed: n,
                available,
            });
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn u32(&mut self, section: &'static str) -> Result<u32, KeyError> {
        let b = self.take(section, 4)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, section: &'static str) -> Result<u64, KeyError> {
        let b = self.take(section, 8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A header count; anything above the bytes in the file is caught by the readers.
    fn usize(&mut self, section: &'static str) -> Result<usize, KeyError> {
        let v = self.u64(section)?;
        usize::try_from(v).map_err(|_| KeyError::Truncated {
            section,
            needed: v,
            available: self.bytes.len() - self.pos,
        })
    }

    fn count(&mut self, section: &'static str, expected: usize) -> Result<usize, KeyError> {
        let found = self.u64(section)?;
        if found != expected as u64 {
            return Err(KeyError::CountMismatch {
                section,
                found,
                expected: expected as u64,
            });
        }
        Ok(expected)
    }

    fn g1_vec(
        &mut self,
        section: &'static str,
        n: usize,
        check: PointCheck,
    ) -> Result<Vec<G1Affine>, KeyError> {
        let bytes = self.take(section, (n as u64).saturating_mul(G1_BYTES as u64))?;
        parse_points(section, bytes, G1_BYTES, check)
    }

    fn g2_vec(
        &mut self,
        section: &'static str,
        n: usize,
        check: PointCheck,
    ) -> Result<Vec<G2Affine>, KeyError> {
        let bytes = self.take(section, (n as u64).saturating_mul(G2_BYTES as u64))?;
        parse_points(section, bytes, G2_BYTES, check)
    }

    fn matrix(&mut self, section: &'static str, rows: usize) -> Result<SparseMatrix, KeyError> {
        let entries = self.u64(section)?;
        let offs = self.take(section, (rows as u64 + 1).saturating_mul(4))?;
        let cols = self.take(section, entries.saturating_mul(4))?;
        let coeffs = self.take(section, entries.saturating_mul(FR_BYTES as u64))?;
        let le = |c: &[u8]| u32::from_le_bytes(c.try_into().expect("4 bytes"));
        let offs: Vec<u32> = offs.chunks_exact(4).map(le).collect();
        let cols: Vec<u32> = cols.chunks_exact(4).map(le).collect();
        let coeffs = coeffs
            .par_chunks_exact(FR_BYTES)
            .enumerate()
            .map(|(index, mut c)| {
                Fr::deserialize_with_mode(&mut c, Compress::No, Validate::Yes)
                    .map_err(|_| KeyError::BadScalar { section, index })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SparseMatrix::from_parts(offs, cols, coeffs)?)
    }
}

fn parse_points<P: CheckedPoint + CanonicalSerialize + CanonicalDeserialize>(
    section: &'static str,
    bytes: &[u8],
    size: usize,
    check: PointCheck,
) -> Result<Vec<P>, KeyError> {
    decode_points(bytes, size, check, |chunk| {
        let p = P::deserialize_with_mode(chunk, Compress::No, Validate::No)
            .map_err(|_| "coordinates are not canonical field elements")?;
        if check == PointCheck::None {
            return Ok(p);
        }
        // arkworks ignores the y-sign flag of uncompressed points and the coordinates of
        // infinity; only the canonical form keeps "one key, one byte string, one id".
        let mut canonical = [0u8; G2_BYTES];
        p.serialize_uncompressed(&mut canonical[..size])
            .expect("size is the point size");
        if canonical[..size] != *chunk {
            return Err("non-canonical encoding");
        }
        Ok(p)
    })
    .map_err(|BadPoint { index, reason }| KeyError::BadPoint {
        section,
        index,
        reason,
    })
}
