//! Key generation from toxic waste (a trusted setup by one party: for the devnet, tests and
//! benchmarks; production keys come from an MPC ceremony as snarkjs zkeys).
//!
//! Computes the circom-shaped key directly from the R1CS and (τ, α, β, γ, δ):
//! Lagrange values over the n-domain give Aᵢ(τ), Bᵢ(τ), Cᵢ(τ) (plus the input rows
//! `a[m + j] = w_j`); the H query is the odd-indexed Lagrange values of the 2n domain over δ
//! (closed form, one batch inversion). Fixed-base scalar multiplication uses arkworks'
//! windowed `BatchMulPreprocessing` (parallel, one table per group), the same as
//! ark-groth16's generator, so the key equals what ark-groth16 generates with
//! [`crate::groth16::CircomReduction`] for the same toxic waste (tested).

use ark_ec::{scalar_mul::BatchMulPreprocessing, CurveGroup, PrimeGroup};
use ark_ff::{batch_inversion, FftField, Field, UniformRand, Zero};
use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};
use ark_std::rand::Rng;
use rayon::prelude::*;

use crate::curve::{Fr, G1Projective, G2Projective};
use crate::groth16::key::{KeyError, ProvingKey, ProvingKeyParts};
use crate::groth16::r1cs::{R1cs, SparseMatrix};

/// The secret values of a single-party setup. Whoever knows them can forge proofs: generate,
/// use once, drop. `Debug` does not print them.
#[derive(Clone)]
pub struct ToxicWaste {
    pub tau: Fr,
    pub alpha: Fr,
    pub beta: Fr,
    pub gamma: Fr,
    pub delta: Fr,
}

impl std::fmt::Debug for ToxicWaste {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToxicWaste(..)")
    }
}

impl ToxicWaste {
    /// Samples all five values (τ first, then α, β, γ, δ).
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        ToxicWaste {
            tau: Fr::rand(rng),
            alpha: Fr::rand(rng),
            beta: Fr::rand(rng),
            gamma: Fr::rand(rng),
            delta: Fr::rand(rng),
        }
    }
}

/// Setup failures.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("toxic waste is degenerate ({0}); sample it again")]
    DegenerateToxicWaste(&'static str),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// `scale · L⁽²ⁿ⁾_{2i+1}(τ)` for `i in 0..n`: the odd-indexed Lagrange basis polynomials of
/// the 2n-th roots of unity, at τ. Uses `L_j(τ) = ω^j·(τ^{2n} − 1) / (2n·(τ − ω^j))`.
/// `None` when τ is itself a 2n-th root of unity (the formula divides by zero there).
pub fn odd_lagrange_at<F: FftField>(tau: F, n: usize, scale: F) -> Option<Vec<F>> {
    assert!(n.is_power_of_two(), "domain size must be a power of two");
    let big_n = 2 * n as u64;
    let z = tau.pow([big_n]) - F::ONE;
    if z.is_zero() {
        return None;
    }
    let omega = F::get_root_of_unity(big_n)?;
    let omega_n = omega.square();
    let k = z * F::from(big_n).inverse()? * scale;
    const CHUNK: usize = 1 << 12;
    let mut xs = vec![F::zero(); n];
    xs.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(ci, chunk)| {
            let mut x = omega * omega_n.pow([(ci * CHUNK) as u64]);
            for v in chunk {
                *v = x;
                x *= omega_n;
            }
        });
    let mut den: Vec<F> = xs.par_iter().map(|x| tau - x).collect();
    batch_inversion(&mut den);
    Some(
        xs.par_iter()
            .zip(den.par_iter())
            .map(|(x, d)| k * x * d)
            .collect(),
    )
}

/// `Σ_rows M[row][j]·u[row]` per variable j: the variable polynomials at τ.
fn column_sums(m: &SparseMatrix, u: &[Fr], num_variables: usize) -> Vec<Fr> {
    let mut out = vec![Fr::zero(); num_variables];
    for (row, ui) in u.iter().enumerate().take(m.num_rows()) {
        for (coeff, col) in m.row(row) {
            out[col as usize] += coeff * ui;
        }
    }
    out
}

/// Builds a proving key for `r1cs` from the given toxic waste.
pub fn generate_key(r1cs: &R1cs, tw: &ToxicWaste) -> Result<ProvingKey, SetupError> {
    let n = r1cs.domain_size();
    let (m, np, nv) = (
        r1cs.num_constraints(),
        r1cs.num_public(),
        r1cs.num_variables(),
    );
    for (v, name) in [
        (tw.alpha, "alpha is zero"),
        (tw.beta, "beta is zero"),
        (tw.gamma, "gamma is zero"),
        (tw.delta, "delta is zero"),
    ] {
        if v.is_zero() {
            return Err(SetupError::DegenerateToxicWaste(name));
        }
    }
    let gamma_inv = tw.gamma.inverse().expect("checked non-zero");
    let delta_inv = tw.delta.inverse().expect("checked non-zero");
    let h_scalars = odd_lagrange_at(tw.tau, n, delta_inv).ok_or(
        SetupError::DegenerateToxicWaste("tau is a 2n-th root of unity"),
    )?;

    let domain = Radix2EvaluationDomain::<Fr>::new(n).expect("domain size was checked");
    let u = domain.evaluate_all_lagrange_coefficients(tw.tau);
    let (mut at, (bt, ct)) = rayon::join(
        || column_sums(r1cs.a(), &u, nv),
        || {
            rayon::join(
                || column_sums(r1cs.b(), &u, nv),
                || column_sums(r1cs.c(), &u, nv),
            )
        },
    );
    for j in 0..=np {
        at[j] += u[m + j];
    }
    drop(u);

    let combined = |j: usize, inv: Fr| (tw.beta * at[j] + tw.alpha * bt[j] + ct[j]) * inv;
    let ic_scalars: Vec<Fr> = (0..=np)
        .into_par_iter()
        .map(|j| combined(j, gamma_inv))
        .collect();
    let l_scalars: Vec<Fr> = (np + 1..nv)
        .into_par_iter()
        .map(|j| combined(j, delta_inv))
        .collect();

    let g1 = G1Projective::generator();
    let g2 = G2Projective::generator();
    let g1_count = ic_scalars.len() + 2 * nv + n + l_scalars.len();
    let g1_table = BatchMulPreprocessing::new(g1, g1_count);
    let a_query = g1_table.batch_mul(&at);
    let b_g1_query = g1_table.batch_mul(&bt);
    let h_query = g1_table.batch_mul(&h_scalars);
    let l_query = g1_table.batch_mul(&l_scalars);
    let ic = g1_table.batch_mul(&ic_scalars);
    drop(g1_table);
    let b_g2_query = BatchMulPreprocessing::new(g2, nv).batch_mul(&bt);

    let parts = ProvingKeyParts {
        num_public: np,
        num_variables: nv,
        alpha_g1: (g1 * tw.alpha).into_affine(),
        beta_g1: (g1 * tw.beta).into_affine(),
        beta_g2: (g2 * tw.beta).into_affine(),
        gamma_g2: (g2 * tw.gamma).into_affine(),
        delta_g1: (g1 * tw.delta).into_affine(),
        delta_g2: (g2 * tw.delta).into_affine(),
        ic,
        a_query,
        b_g1_query,
        b_g2_query,
        h_query,
        l_query,
        a: r1cs.a().clone(),
        b: r1cs.b().clone(),
    };
    Ok(ProvingKey::from_parts(parts)?)
}

/// Samples toxic waste from `rng` and builds a key (resampling the negligible degenerate
/// cases).
pub fn generate_key_with_rng<R: Rng + ?Sized>(
    r1cs: &R1cs,
    rng: &mut R,
) -> Result<ProvingKey, SetupError> {
    loop {
        match generate_key(r1cs, &ToxicWaste::random(rng)) {
            Err(SetupError::DegenerateToxicWaste(_)) => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_lagrange_matches_inverse_ntt_of_powers() {
        // L_j(τ) = (1/N) Σ_k τ^k ω^{-jk}: the inverse DFT of (τ^k).
        let tau = Fr::from(123456789u64);
        for n in [1usize, 2, 8, 64] {
            let d = Radix2EvaluationDomain::<Fr>::new(2 * n).unwrap();
            let powers: Vec<Fr> = (0..2 * n).map(|k| tau.pow([k as u64])).collect();
            let all = d.ifft(&powers);
            let scale = Fr::from(7u64);
            let odd: Vec<Fr> = all.iter().skip(1).step_by(2).map(|v| *v * scale).collect();
            assert_eq!(odd_lagrange_at(tau, n, scale).unwrap(), odd, "n={n}");
        }
        let root = Fr::get_root_of_unity(16).unwrap();
        assert!(odd_lagrange_at(root, 8, Fr::ONE).is_none());
    }
}
