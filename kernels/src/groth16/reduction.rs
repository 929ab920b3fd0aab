//! The circom-style R1CS-to-QAP witness map, run on a [`Backend`].
//!
//! # What it computes
//! With n the domain size, ω_n a primitive n-th root and ω_2n a primitive 2n-th root
//! (ω_2n² = ω_n), let A(X), B(X), C(X) be the polynomials of degree < n that take the
//! values a_i = ⟨A_i, w⟩, b_i = ⟨B_i, w⟩, c_i = a_i·b_i at X = ω_n^i. The map returns
//!
//! ```text
//!     p_i = P(ω_2n^{2i+1}) for i in 0..n, where P = A·B − C,
//! ```
//! the values of P on the *odd* 2n-th roots, i.e. the coset ω_2n·⟨ω_n⟩. Each of a, b, c takes
//! an inverse NTT over ⟨ω_n⟩ (values → coefficients) and a forward NTT on the coset with
//! offset ω_2n (coefficients → values there); then one pointwise `p = a·b − c`. The vector
//! stays in the backend's memory and is fed straight into the H MSM.
//!
//! # Why there is no division by Z
//! The Groth16 C element needs `[h(τ)·Z(τ)/δ]₁` where `h = P/Z` and `Z(X) = Xⁿ − 1`.
//! libsnark (and arkworks' default `LibsnarkReduction`, the flow described in our issue
//! text) computes the *coefficients* of h: evaluate P on a coset of the field generator g,
//! multiply by the constant `1/Z(g·ω^i) = 1/(gⁿ − 1)`, run a 7th NTT back to coefficients,
//! and take an MSM against `[τ^i·Z(τ)/δ]₁`.
//!
//! The circom flow uses the key instead: P has degree ≤ 2n − 2 < 2n, so it equals its
//! interpolation on the 2n-th roots, `P(τ) = Σ_j P(ω_2n^j)·L⁽²ⁿ⁾_j(τ)`. For a satisfying
//! witness P vanishes on the even roots (the n-domain: every constraint row has a·b = c by
//! construction of c and of the witness, and the public-input rows have b = c = 0), so
//! `h(τ)Z(τ) = P(τ) = Σ_i p_i·L⁽²ⁿ⁾_{2i+1}(τ)`. With the key's
//! `h_query[i] = [L⁽²ⁿ⁾_{2i+1}(τ)/δ]₁` the MSM `Σ p_i·h_query[i]` is exactly the term the
//! libsnark flow computes. Same result, one NTT fewer, no division pass, and neither the C
//! matrix nor C·w is needed (c = a·b). Odd 2n-th roots never hit Z's zeros
//! (Z(ω_2n^{2i+1}) = −2), which is why this coset is a valid evaluation set.
//!
//! For a non-satisfying witness the even-root values are not zero, the sum is not h(τ)Z(τ),
//! and the proof fails verification, exactly as with snarkjs and rapidsnark.

use ark_ff::{FftField, Zero};
use rayon::prelude::*;

use crate::backend::{Backend, BackendError};
use crate::curve::Fr;
use crate::groth16::r1cs::SparseMatrix;

/// ω_2n, the primitive 2n-th root of unity of BN254 Fr that arkworks' radix-2 domain of size
/// 2n uses (snarkjs' `Fr.w[log2(n)+1]` is the same element). `n` must be a power of two
/// ≤ 2^27.
pub fn odd_coset_offset(domain_size: usize) -> Fr {
    assert!(
        domain_size.is_power_of_two(),
        "domain size must be a power of two"
    );
    Fr::get_root_of_unity(2 * domain_size as u64).expect("BN254 Fr has 2-adicity 28")
}

/// The circom-style evaluations over the n-domain: `a[i] = ⟨A_i, w⟩` and `b[i] = ⟨B_i, w⟩`
/// for constraint rows, `a[m + j] = w_j` for `j in 0..=num_public` (the input rows), zero
/// elsewhere, and `c = a·b` pointwise. Host-side and parallel.
///
/// Panics if the matrices reference variables beyond `witness` or do not fit the domain
/// (the prover checks both first).
pub fn evaluate_abc(
    a_matrix: &SparseMatrix,
    b_matrix: &SparseMatrix,
    witness: &[Fr],
    num_public: usize,
    domain_size: usize,
) -> (Vec<Fr>, Vec<Fr>, Vec<Fr>) {
    let m = a_matrix.num_rows();
    assert!(
        m + num_public < domain_size,
        "constraints and input rows exceed the domain"
    );
    let mut a = vec![Fr::zero(); domain_size];
    let mut b = vec![Fr::zero(); domain_size];
    rayon::join(
        || a_matrix.mul_vector_into(witness, &mut a),
        || b_matrix.mul_vector_into(witness, &mut b),
    );
    a[m..=m + num_public].copy_from_slice(&witness[..=num_public]);
    let c = a
        .par_iter()
        .zip(b.par_iter())
        .map(|(x, y)| *x * y)
        .collect();
    (a, b, c)
}

/// Uploads a, b, c and returns `p = A·B − C` on the odd coset, in backend memory.
/// Six NTTs and one pointwise pass; see the module docs.
pub fn odd_coset_quotient<B: Backend>(
    backend: &B,
    a: &[Fr],
    b: &[Fr],
    c: &[Fr],
) -> Result<B::Scalars, BackendError> {
    let n = a.len();
    if b.len() != n || c.len() != n {
        return Err(BackendError::InvalidInput(format!(
            "a, b, c must have the domain length: {n}, {}, {}",
            b.len(),
            c.len()
        )));
    }
    let offset = odd_coset_offset(n);
    let mut p = backend.upload_scalars(a)?;
    let mut b = backend.upload_scalars(b)?;
    let mut c = backend.upload_scalars(c)?;
    // iNTT then coset NTT of each vector, in one backend call (fused and batched on a GPU)
    backend.interpolate_then_evaluate_on_coset(&mut [&mut p, &mut b, &mut c], offset)?;
    backend.mul_sub_assign(&mut p, &b, &c)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuBackend;
    use ark_ff::Field;
    use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};
    use ark_std::rand::{rngs::StdRng, SeedableRng};
    use ark_std::UniformRand;

    /// Checklist item: the shifted-NTT output equals naive evaluation at ω_2n^{2i+1}.
    #[test]
    fn quotient_matches_naive_evaluation_on_odd_roots() {
        let mut rng = StdRng::seed_from_u64(3);
        for n in [2usize, 4, 8, 32] {
            let a: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let b: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let c: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let p = odd_coset_quotient(&CpuBackend::new(), &a, &b, &c).unwrap();
            let d = Radix2EvaluationDomain::<Fr>::new(n).unwrap();
            let coeffs = |v: &[Fr]| d.ifft(v);
            let (ca, cb, cc) = (coeffs(&a), coeffs(&b), coeffs(&c));
            let eval = |co: &[Fr], x: Fr| co.iter().rev().fold(Fr::zero(), |acc, k| acc * x + k);
            let w2n = odd_coset_offset(n);
            assert_eq!(w2n.pow([2 * n as u64]), Fr::ONE);
            assert_ne!(w2n.pow([n as u64]), Fr::ONE);
            for (i, pi) in p.iter().enumerate() {
                let x = w2n.pow([2 * i as u64 + 1]);
                assert_eq!(
                    *pi,
                    eval(&ca, x) * eval(&cb, x) - eval(&cc, x),
                    "n={n} i={i}"
                );
            }
        }
    }

    #[test]
    fn abc_adds_input_rows_and_c_is_the_product() {
        let mut a = SparseMatrix::new();
        a.push_row([(Fr::from(2u64), 1)]);
        let mut b = SparseMatrix::new();
        b.push_row([(Fr::ONE, 2)]);
        let w = [Fr::ONE, Fr::from(3u64), Fr::from(5u64)];
        let (ea, eb, ec) = evaluate_abc(&a, &b, &w, 1, 4);
        assert_eq!(
            ea,
            vec![Fr::from(6u64), Fr::ONE, Fr::from(3u64), Fr::zero()]
        );
        assert_eq!(eb, vec![Fr::from(5u64), Fr::zero(), Fr::zero(), Fr::zero()]);
        assert_eq!(
            ec,
            vec![Fr::from(30u64), Fr::zero(), Fr::zero(), Fr::zero()]
        );
    }

    #[test]
    fn quotient_rejects_mismatched_lengths() {
        let v = vec![Fr::ONE; 4];
        assert!(odd_coset_quotient(&CpuBackend::new(), &v, &v[..2], &v).is_err());
    }
}
