//! Groth16 proving keys: the structure, its checks, and `PreparedKey<B>` (the bases loaded
//! into a backend once). The byte format lives in `key_bytes.rs`.
//!
//! All keys use the circom-style reduction: `h_query[i] = [L⁽²ⁿ⁾₂ᵢ₊₁(τ)/δ]₁`, the odd-indexed
//! Lagrange points of the 2n domain (see `reduction.rs`). Keys we generate (`setup.rs`) and
//! keys imported from snarkjs `.zkey` files have the same shape.

use crate::backend::{Backend, BackendError};
use crate::curve::{Bn254, G1Affine, G2Affine};
use crate::groth16::r1cs::{domain_size_for, R1csError, SparseMatrix};

/// The parts of a proving key, as plain data. Build a [`ProvingKey`] from it with
/// [`ProvingKey::from_parts`], which checks every length against the others.
///
/// Variables: 0 is the constant 1, `1..=num_public` the public inputs (outputs first, as in
/// circom), the rest private.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvingKeyParts {
    pub num_public: usize,
    pub num_variables: usize,
    pub alpha_g1: G1Affine,
    pub beta_g1: G1Affine,
    pub beta_g2: G2Affine,
    pub gamma_g2: G2Affine,
    pub delta_g1: G1Affine,
    pub delta_g2: G2Affine,
    /// `[(β·Aᵢ(τ) + α·Bᵢ(τ) + Cᵢ(τ))/γ]₁` for the constant and the public inputs
    /// (`num_public + 1` points; arkworks' `gamma_abc_g1`, snarkjs' `IC`).
    pub ic: Vec<G1Affine>,
    /// `[Aᵢ(τ)]₁` per variable.
    pub a_query: Vec<G1Affine>,
    /// `[Bᵢ(τ)]₁` per variable.
    pub b_g1_query: Vec<G1Affine>,
    /// `[Bᵢ(τ)]₂` per variable.
    pub b_g2_query: Vec<G2Affine>,
    /// `[L⁽²ⁿ⁾₂ᵢ₊₁(τ)/δ]₁`, `domain_size` points.
    pub h_query: Vec<G1Affine>,
    /// `[(β·Aᵢ(τ) + α·Bᵢ(τ) + Cᵢ(τ))/δ]₁` for the private variables
    /// (`num_variables − num_public − 1` points; snarkjs' `C` section).
    pub l_query: Vec<G1Affine>,
    /// Constraint matrix A (one row per constraint, without the public-input rows).
    pub a: SparseMatrix,
    /// Constraint matrix B (same rows as A). C is not needed to prove: c = a·b pointwise.
    pub b: SparseMatrix,
}

/// A checked proving key: every length agrees with the variable count and domain size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvingKey {
    parts: ProvingKeyParts,
    domain_size: usize,
}

/// Errors building, reading or checking a proving or verifying key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key bytes end early in {section}: need {needed} more bytes, {available} left; the file is truncated, fetch it again")]
    Truncated {
        section: &'static str,
        needed: u64,
        available: usize,
    },
    #[error("not a proofrack Groth16 proving key (bad magic bytes); check the file path")]
    BadMagic,
    #[error("proving key format version {found} is not supported (this build reads {supported}); regenerate the key or upgrade")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("{count} bytes after the end of the key; the file is corrupt or not a key")]
    TrailingBytes { count: usize },
    #[error("{section} has {found} entries, expected {expected}; the key is inconsistent")]
    CountMismatch {
        section: &'static str,
        found: u64,
        expected: u64,
    },
    #[error("{section}[{index}] is not a valid point ({reason}); the key is corrupt")]
    BadPoint {
        section: &'static str,
        index: usize,
        reason: &'static str,
    },
    #[error("{section}[{index}] is not a canonical field element; the key is corrupt")]
    BadScalar { section: &'static str, index: usize },
    #[error("key header says domain size {found}, but {num_constraints} constraints and {num_public} public inputs need {expected}")]
    DomainMismatch {
        found: u64,
        expected: usize,
        num_constraints: usize,
        num_public: usize,
    },
    #[error("key id mismatch: expected {expected}, the bytes hash to {actual}; the download is corrupt or the wrong key")]
    IdMismatch { expected: String, actual: String },
    #[error("key constraint system: {0}")]
    Shape(#[from] R1csError),
    #[error("verifying key bytes are invalid: {0}")]
    VerifyingKeyEncoding(String),
}

/// How much to check points read from bytes. Field elements and lengths are always checked;
/// `Full` and `OnCurve` also require the canonical encoding of each point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointCheck {
    /// On the curve and in the prime-order subgroup. For keys from outside.
    Full,
    /// On the curve only (G1 on BN254 has cofactor 1, so this fully checks G1; G2 points
    /// are not checked for the subgroup, which is the slow part).
    OnCurve,
    /// No point checks: for bytes whose SHA-256 already matched a trusted key id.
    None,
}

impl ProvingKey {
    /// Checks the parts against each other and builds the key.
    pub fn from_parts(parts: ProvingKeyParts) -> Result<Self, KeyError> {
        let p = &parts;
        if p.num_variables < p.num_public + 1 {
            return Err(R1csError::TooFewVariables {
                num_public: p.num_public,
                num_variables: p.num_variables,
            }
            .into());
        }
        let num_constraints = p.a.num_rows();
        if p.b.num_rows() != num_constraints {
            return Err(R1csError::RowCountMismatch {
                a: num_constraints,
                b: p.b.num_rows(),
                c: num_constraints,
            }
            .into());
        }
        p.a.check_cols(p.num_variables)?;
        p.b.check_cols(p.num_variables)?;
        let domain_size = domain_size_for(num_constraints, p.num_public)?;
        let num_private = p.num_variables - p.num_public - 1;
        let counts: [(&'static str, usize, usize); 6] = [
            ("ic", p.ic.len(), p.num_public + 1),
            ("a_query", p.a_query.len(), p.num_variables),
            ("b_g1_query", p.b_g1_query.len(), p.num_variables),
            ("b_g2_query", p.b_g2_query.len(), p.num_variables),
            ("h_query", p.h_query.len(), domain_size),
            ("l_query", p.l_query.len(), num_private),
        ];
        for (section, found, expected) in counts {
            if found != expected {
                return Err(KeyError::CountMismatch {
                    section,
                    found: found as u64,
                    expected: expected as u64,
                });
            }
        }
        Ok(ProvingKey { parts, domain_size })
    }

    pub fn parts(&self) -> &ProvingKeyParts {
        &self.parts
    }

    pub fn into_parts(self) -> ProvingKeyParts {
        self.parts
    }

    pub fn num_public(&self) -> usize {
        self.parts.num_public
    }

    pub fn num_variables(&self) -> usize {
        self.parts.num_variables
    }

    pub fn num_constraints(&self) -> usize {
        self.parts.a.num_rows()
    }

    /// The evaluation domain size n (a power of two).
    pub fn domain_size(&self) -> usize {
        self.domain_size
    }

    /// The verifying key (arkworks' type, which `verify` takes prepared).
    pub fn verifying_key(&self) -> ark_groth16::VerifyingKey<Bn254> {
        ark_groth16::VerifyingKey {
            alpha_g1: self.parts.alpha_g1,
            beta_g2: self.parts.beta_g2,
            gamma_g2: self.parts.gamma_g2,
            delta_g2: self.parts.delta_g2,
            gamma_abc_g1: self.parts.ic.clone(),
        }
    }

    /// The same key as arkworks' type, for cross-checks with ark-groth16's prover.
    pub fn to_ark(&self) -> ark_groth16::ProvingKey<Bn254> {
        let p = &self.parts;
        ark_groth16::ProvingKey {
            vk: self.verifying_key(),
            beta_g1: p.beta_g1,
            delta_g1: p.delta_g1,
            a_query: p.a_query.clone(),
            b_g1_query: p.b_g1_query.clone(),
            b_g2_query: p.b_g2_query.clone(),
            h_query: p.h_query.clone(),
            l_query: p.l_query.clone(),
        }
    }
}

/// The fixed points of a key that the prover adds in at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyConstants {
    pub alpha_g1: G1Affine,
    pub beta_g1: G1Affine,
    pub beta_g2: G2Affine,
    pub delta_g1: G1Affine,
    pub delta_g2: G2Affine,
}

/// A proving key with its bases loaded into backend `B` once (device memory for a GPU),
/// plus the matrices and constants the prover needs. Does not keep the host copy of the
/// bases: drop the `ProvingKey` after preparing to free it. Cache one per key id.
pub struct PreparedKey<B: Backend> {
    pub(crate) constants: KeyConstants,
    pub(crate) num_public: usize,
    pub(crate) num_variables: usize,
    pub(crate) domain_size: usize,
    pub(crate) a: SparseMatrix,
    pub(crate) b: SparseMatrix,
    pub(crate) a_query: B::BasesG1,
    pub(crate) b_g1_query: B::BasesG1,
    pub(crate) b_g2_query: B::BasesG2,
    pub(crate) h_query: B::BasesG1,
    pub(crate) l_query: B::BasesG1,
}

impl<B: Backend> PreparedKey<B> {
    /// Loads the five query vectors into the backend and copies the matrices.
    pub fn new(backend: &B, key: &ProvingKey) -> Result<Self, BackendError> {
        let p = &key.parts;
        Ok(PreparedKey {
            constants: KeyConstants {
                alpha_g1: p.alpha_g1,
                beta_g1: p.beta_g1,
                beta_g2: p.beta_g2,
                delta_g1: p.delta_g1,
                delta_g2: p.delta_g2,
            },
            num_public: p.num_public,
            num_variables: p.num_variables,
            domain_size: key.domain_size,
            a: p.a.clone(),
            b: p.b.clone(),
            a_query: backend.load_bases_g1(&p.a_query)?,
            b_g1_query: backend.load_bases_g1(&p.b_g1_query)?,
            b_g2_query: backend.load_bases_g2(&p.b_g2_query)?,
            h_query: backend.load_bases_g1(&p.h_query)?,
            l_query: backend.load_bases_g1(&p.l_query)?,
        })
    }

    pub fn num_public(&self) -> usize {
        self.num_public
    }

    /// Length of the full witness the prover expects (constant 1 included).
    pub fn num_variables(&self) -> usize {
        self.num_variables
    }

    pub fn num_constraints(&self) -> usize {
        self.a.num_rows()
    }

    pub fn domain_size(&self) -> usize {
        self.domain_size
    }
}
