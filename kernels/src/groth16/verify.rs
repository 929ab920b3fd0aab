//! Proofs, verifying keys and verification: arkworks' types, our byte forms and errors.
//!
//! A proof is 128 bytes: A (G1) ‖ B (G2) ‖ C (G1), each arkworks-compressed. Parsing checks
//! every point is on the curve and in the prime-order subgroup: proofs come from outside.

use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};

use crate::curve::{Bn254, Fr};
use crate::groth16::key::KeyError;

/// A Groth16 proof over BN254 (A ∈ G1, B ∈ G2, C ∈ G1).
pub type Proof = ark_groth16::Proof<Bn254>;
/// The verifying key (α₁, β₂, γ₂, δ₂, IC).
pub type VerifyingKey = ark_groth16::VerifyingKey<Bn254>;
/// A verifying key with e(α, β) and the negated G2 points precomputed for pairing.
pub type PreparedVerifyingKey = ark_groth16::PreparedVerifyingKey<Bn254>;

/// Size of a compressed proof: 32 (A) + 64 (B) + 32 (C).
pub const PROOF_BYTES: usize = 128;

/// A proof's bytes are malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("a proof is {PROOF_BYTES} bytes, got {0}")]
    Length(usize),
    #[error("proof element {0} is not a valid compressed point in the prime-order subgroup")]
    BadPoint(&'static str),
}

/// Verification could not be run (as opposed to running and rejecting).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the verifying key takes {expected} public inputs, got {got}")]
    PublicInputCount { expected: usize, got: usize },
    #[error("pairing check failed to run: {0}")]
    Pairing(String),
}

/// The canonical compressed bytes of a proof.
pub fn proof_to_bytes(proof: &Proof) -> [u8; PROOF_BYTES] {
    let mut out = [0u8; PROOF_BYTES];
    let mut w = &mut out[..];
    proof.a.serialize_compressed(&mut w).expect("32 bytes fit");
    proof.b.serialize_compressed(&mut w).expect("64 bytes fit");
    proof.c.serialize_compressed(&mut w).expect("32 bytes fit");
    debug_assert!(w.is_empty());
    out
}

/// Parses and fully checks a compressed proof.
pub fn proof_from_bytes(bytes: &[u8]) -> Result<Proof, ProofError> {
    if bytes.len() != PROOF_BYTES {
        return Err(ProofError::Length(bytes.len()));
    }
    let (a, rest) = bytes.split_at(32);
    let (b, c) = rest.split_at(64);
    fn de<P: CanonicalDeserialize>(mut s: &[u8], name: &'static str) -> Result<P, ProofError> {
        P::deserialize_with_mode(&mut s, Compress::Yes, Validate::Yes)
            .map_err(|_| ProofError::BadPoint(name))
    }
    Ok(Proof {
        a: de(a, "A")?,
        b: de(b, "B")?,
        c: de(c, "C")?,
    })
}

/// Verifying key bytes: arkworks' compressed `VerifyingKey` serialisation.
pub fn vk_to_bytes(vk: &VerifyingKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(vk.compressed_size());
    vk.serialize_compressed(&mut out)
        .expect("writing to a Vec cannot fail");
    out
}

/// Parses and fully checks verifying key bytes.
pub fn vk_from_bytes(bytes: &[u8]) -> Result<VerifyingKey, KeyError> {
    let mut r = bytes;
    let vk = VerifyingKey::deserialize_with_mode(&mut r, Compress::Yes, Validate::Yes)
        .map_err(|e| KeyError::VerifyingKeyEncoding(e.to_string()))?;
    if !r.is_empty() {
        return Err(KeyError::TrailingBytes { count: r.len() });
    }
    if vk.gamma_abc_g1.is_empty() {
        return Err(KeyError::VerifyingKeyEncoding(
            "IC is empty; it needs num_public + 1 points".into(),
        ));
    }
    Ok(vk)
}

/// Precomputes the pairing parts of a verifying key. Do it once per key.
pub fn prepare_verifying_key(vk: &VerifyingKey) -> PreparedVerifyingKey {
    ark_groth16::prepare_verifying_key(vk)
}

/// Checks `proof` for `public_inputs` (in key order: outputs first for circom circuits).
/// `Ok(false)` is a proof that does not verify; `Err` means the inputs do not fit the key.
pub fn verify(
    pvk: &PreparedVerifyingKey,
    public_inputs: &[Fr],
    proof: &Proof,
) -> Result<bool, VerifyError> {
    let expected = pvk.vk.gamma_abc_g1.len().saturating_sub(1);
    if public_inputs.len() != expected {
        return Err(VerifyError::PublicInputCount {
            expected,
            got: public_inputs.len(),
        });
    }
    ark_groth16::Groth16::<Bn254>::verify_proof(pvk, proof, public_inputs)
        .map_err(|e| VerifyError::Pairing(e.to_string()))
}

/// [`verify`] with an unprepared key (prepares it each call).
pub fn verify_with_vk(
    vk: &VerifyingKey,
    public_inputs: &[Fr],
    proof: &Proof,
) -> Result<bool, VerifyError> {
    verify(&prepare_verifying_key(vk), public_inputs, proof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::{G1Affine, G2Affine};
    use ark_ec::AffineRepr;

    #[test]
    fn proof_bytes_round_trip_and_reject_garbage() {
        let p = Proof {
            a: G1Affine::generator(),
            b: G2Affine::generator(),
            c: G1Affine::zero(),
        };
        let bytes = proof_to_bytes(&p);
        assert_eq!(proof_from_bytes(&bytes).unwrap(), p);
        assert_eq!(
            proof_from_bytes(&bytes[..127]),
            Err(ProofError::Length(127))
        );
        // x ≥ p (flags in the top two bits of byte 31 kept): not a field element.
        let mut bad = bytes;
        bad[..31].fill(0xff);
        bad[31] |= 0x3f;
        assert_eq!(proof_from_bytes(&bad), Err(ProofError::BadPoint("A")));
        let mut bad = bytes;
        bad[32..64].fill(0xff); // B's x.c0 ≥ p
        assert_eq!(proof_from_bytes(&bad), Err(ProofError::BadPoint("B")));
        let mut bad = bytes;
        bad[96..127].fill(0xff);
        bad[127] |= 0x3f;
        assert_eq!(proof_from_bytes(&bad), Err(ProofError::BadPoint("C")));
    }

    #[test]
    fn random_bytes_never_panic() {
        use ark_std::rand::{rngs::StdRng, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..2000 {
            let mut b = [0u8; PROOF_BYTES];
            rng.fill(&mut b[..]);
            let _ = proof_from_bytes(&b);
            let len = rng.gen_range(0..700);
            let v: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let _ = vk_from_bytes(&v);
        }
    }
}
