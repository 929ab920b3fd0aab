//! Groth16 over BN254 with the circom/snarkjs QAP reduction, on any [`crate::Backend`].
//!
//! # Layout
//! - `r1cs`: [`SparseMatrix`] (compressed rows) and [`R1cs`] (the constraint system).
//! - `key`: [`ProvingKey`] (checked parts) and [`PreparedKey`] (bases loaded into a backend).
//! - `key_bytes`: the canonical byte form and content address ([`key_id`]).
//! - `setup`: key generation from [`ToxicWaste`].
//! - `reduction`: the witness map (a, b, c → p on the odd coset); why no division by Z.
//! - `prover`: [`prove`], generic over the backend.
//! - `verify`: proof/verifying-key bytes and [`verify()`].
//! - `ark_compat`: [`CircomReduction`] for ark-groth16, to cross-check against arkworks.
//!
//! One reduction for every key: keys we generate and snarkjs zkeys have the same H query
//! (`[L⁽²ⁿ⁾₂ᵢ₊₁(τ)/δ]₁`), so one prover serves both. arkworks' default reduction
//! (`LibsnarkReduction`) is never used: its proofs do not verify against these keys.

pub mod ark_compat;
pub mod key;
pub mod key_bytes;
pub mod points;
pub mod prover;
pub mod r1cs;
pub mod reduction;
pub mod setup;
pub mod verify;

pub use ark_compat::CircomReduction;
pub use key::{KeyError, PointCheck, PreparedKey, ProvingKey, ProvingKeyParts};
pub use key_bytes::{key_id, KEY_FORMAT_VERSION, KEY_MAGIC};
pub use prover::{prove, prove_with_rng, prove_with_timings, ProveError, ProveTimings};
pub use r1cs::{domain_size_for, R1cs, R1csError, SparseMatrix, MAX_DOMAIN_LOG2};
pub use setup::{generate_key, generate_key_with_rng, SetupError, ToxicWaste};
pub use verify::{
    prepare_verifying_key, proof_from_bytes, proof_to_bytes, verify, verify_with_vk, vk_from_bytes,
    vk_to_bytes, PreparedVerifyingKey, Proof, ProofError, VerifyError, VerifyingKey, PROOF_BYTES,
};
