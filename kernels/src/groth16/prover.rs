//! The Groth16 prover, written once over any [`Backend`].
//!
//! Flow (circom/snarkjs, see `reduction.rs` for why it needs no division by Z):
//! 1. the witness is uploaded once; the G2 MSM `Σ wᵢ·B2ᵢ` starts on a second thread, beside
//!    all the G1 work (on a GPU it overlaps the NTTs; on the CPU both share the rayon pool);
//! 2. host: a, b from the sparse A, B matrices (plus the input rows), c = a·b;
//! 3. backend: per vector an inverse NTT and a coset NTT at ω_2n, then p = a·b − c, which
//!    stays in backend memory and goes straight into the H MSM;
//! 4. G1 MSMs: H (p), A and B1 (the uploaded witness), L (the private part, uploaded once);
//! 5. assembly with the key's constants and the blinding r, s (snarkjs' step 5).

use std::time::{Duration, Instant};

use ark_ec::CurveGroup;
use ark_ff::{Field, UniformRand};
use ark_std::rand::Rng;

use crate::backend::{Backend, BackendError};
use crate::curve::{Fr, G1Projective};
use crate::groth16::key::PreparedKey;
use crate::groth16::reduction::{evaluate_abc, odd_coset_quotient};
use crate::groth16::verify::Proof;

/// Proving failed. Bad input from outside gives a typed error, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error("witness has {got} values but the key needs {expected} (constant 1, public inputs, private values); the witness belongs to another circuit")]
    WitnessLength { expected: usize, got: usize },
    #[error("witness[0] must be the constant 1, got {got}; the witness is not in circom/arkworks variable order")]
    WitnessConstant { got: Fr },
    #[error("backend failed: {0}")]
    Backend(#[from] BackendError),
}

/// Where a proof's time went (wall clock; the G2 MSM runs beside the rest).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProveTimings {
    /// Sparse A·w, B·w and c = a·b on the host.
    pub witness_map: Duration,
    /// Uploads, six NTTs and p = a·b − c.
    pub quotient: Duration,
    /// The four G1 MSMs (H, A, B1, L).
    pub msm_g1: Duration,
    /// The G2 MSM, on its own thread.
    pub msm_g2: Duration,
    pub total: Duration,
}

/// Proves with blinding factors `r`, `s`. The same (key, witness, r, s) always gives the same
/// proof, on every backend.
///
/// `witness` is the full assignment: `witness[0] = 1`, then the public inputs, then the
/// private values. A witness that does not satisfy the constraints still yields a proof,
/// which then fails verification; verify before submitting when the witness is untrusted.
pub fn prove<B: Backend>(
    backend: &B,
    key: &PreparedKey<B>,
    witness: &[Fr],
    r: Fr,
    s: Fr,
) -> Result<Proof, ProveError> {
    prove_with_timings(backend, key, witness, r, s).map(|(proof, _)| proof)
}

/// [`prove`] with `r`, `s` drawn from `rng` (use a cryptographic RNG: they hide the witness).
pub fn prove_with_rng<B: Backend, R: Rng + ?Sized>(
    backend: &B,
    key: &PreparedKey<B>,
    witness: &[Fr],
    rng: &mut R,
) -> Result<Proof, ProveError> {
    let r = Fr::rand(rng);
    let s = Fr::rand(rng);
    prove(backend, key, witness, r, s)
}

/// [`prove`], also returning where the time went.
pub fn prove_with_timings<B: Backend>(
    backend: &B,
    key: &PreparedKey<B>,
    witness: &[Fr],
    r: Fr,
    s: Fr,
) -> Result<(Proof, ProveTimings), ProveError> {
    if witness.len() != key.num_variables {
        return Err(ProveError::WitnessLength {
            expected: key.num_variables,
            got: witness.len(),
        });
    }
    if witness[0] != Fr::ONE {
        return Err(ProveError::WitnessConstant { got: witness[0] });
    }
    let start = Instant::now();
    let np = key.num_public;
    let w = backend.upload_scalars(witness)?;

    let (g2, g1) = std::thread::scope(|scope| {
        let g2 = scope.spawn(|| {
            let t = Instant::now();
            backend
                .msm_g2(&key.b_g2_query, &w)
                .map(|acc| (acc, t.elapsed()))
        });
        let g1 = (|| -> Result<_, ProveError> {
            let t = Instant::now();
            let (a, b, c) = evaluate_abc(&key.a, &key.b, witness, np, key.domain_size);
            let witness_map = t.elapsed();
            let t = Instant::now();
            let p = odd_coset_quotient(backend, &a, &b, &c)?;
            drop((a, b, c));
            let quotient = t.elapsed();
            let t = Instant::now();
            let h = backend.msm_g1(&key.h_query, &p)?;
            drop(p);
            let a = backend.msm_g1(&key.a_query, &w)?;
            let b1 = backend.msm_g1(&key.b_g1_query, &w)?;
            let l = if witness.len() > np + 1 {
                let private = backend.upload_scalars(&witness[np + 1..])?;
                backend.msm_g1(&key.l_query, &private)?
            } else {
                G1Projective::default()
            };
            Ok(([h, a, b1, l], witness_map, quotient, t.elapsed()))
        })();
        let g2 = g2
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (g2, g1)
    });
    let ([h, a_acc, b1_acc, l], witness_map, quotient, msm_g1) = g1?;
    let (b2_acc, msm_g2) = g2?;

    let k = &key.constants;
    let pi_a = a_acc + k.alpha_g1 + k.delta_g1 * r;
    let pi_b = b2_acc + k.beta_g2 + k.delta_g2 * s;
    let b1 = b1_acc + k.beta_g1 + k.delta_g1 * s;
    let pi_c = l + h + pi_a * s + b1 * r - k.delta_g1 * (r * s);
    let proof = Proof {
        a: pi_a.into_affine(),
        b: pi_b.into_affine(),
        c: pi_c.into_affine(),
    };
    let timings = ProveTimings {
        witness_map,
        quotient,
        msm_g1,
        msm_g2,
        total: start.elapsed(),
    };
    tracing::debug!(
        domain_size = key.domain_size,
        witness_map_ms = timings.witness_map.as_secs_f64() * 1e3,
        quotient_ms = timings.quotient.as_secs_f64() * 1e3,
        msm_g1_ms = timings.msm_g1.as_secs_f64() * 1e3,
        msm_g2_ms = timings.msm_g2.as_secs_f64() * 1e3,
        total_ms = timings.total.as_secs_f64() * 1e3,
        "groth16 proof"
    );
    Ok((proof, timings))
}
