//! [`CircomReduction`]: the circom/snarkjs QAP reduction as an ark-groth16 `R1CSToQAP`, so
//! `ark_groth16::Groth16::<Bn254, CircomReduction>` generates keys of our shape and proves
//! with them. Used to cross-check our setup and prover against arkworks' code; the same idea
//! as ark-circom's `CircomReduction`, written here against ark 0.6 (ark-circom is not a
//! dependency).
//!
//! It differs from ark-circom in one detail: `h_query_scalars` returns the exact Lagrange
//! values `L⁽²ⁿ⁾_{2i+1}(τ)/δ` (snarkjs' ptau section 12), while ark-circom's inverse FFT of
//! 2n − 1 powers of τ drops the τ^{2n−1} term. Both give the same proofs for satisfying
//! witnesses (that term multiplies P's X^{2n−1} coefficient, which is zero), but only the
//! exact one makes ark's key equal to ours point for point.

use ark_ff::{FftField, PrimeField};
use ark_groth16::r1cs_to_qap::{evaluate_constraint, LibsnarkReduction, R1CSToQAP};
use ark_poly::EvaluationDomain;
use ark_relations::gr1cs::{ConstraintSystemRef, Matrix, SynthesisError};

use crate::groth16::setup::odd_lagrange_at;

/// The circom-style reduction for ark-groth16 (see the module docs).
pub struct CircomReduction;

impl R1CSToQAP for CircomReduction {
    #[allow(clippy::type_complexity)]
    fn instance_map_with_evaluation<F: PrimeField, D: EvaluationDomain<F>>(
        cs: ConstraintSystemRef<F>,
        t: &F,
    ) -> Result<(Vec<F>, Vec<F>, Vec<F>, F, usize, usize), SynthesisError> {
        // Same variable polynomials (with the input rows) as libsnark; only H differs.
        LibsnarkReduction::instance_map_with_evaluation::<F, D>(cs, t)
    }

    /// Written independently of `reduction.rs` (domain FFTs and an explicit power
    /// distribution instead of the backend's coset NTT) so tests comparing the two check
    /// something.
    fn witness_map_from_matrices<F: PrimeField, D: EvaluationDomain<F>>(
        matrices: &[Matrix<F>],
        num_inputs: usize,
        num_constraints: usize,
        full_assignment: &[F],
    ) -> Result<Vec<F>, SynthesisError> {
        let domain =
            D::new(num_constraints + num_inputs).ok_or(SynthesisError::PolynomialDegreeTooLarge)?;
        let n = domain.size();
        let mut a = vec![F::zero(); n];
        let mut b = vec![F::zero(); n];
        for i in 0..num_constraints {
            a[i] = evaluate_constraint(&matrices[0][i], full_assignment);
            b[i] = evaluate_constraint(&matrices[1][i], full_assignment);
        }
        a[num_constraints..num_constraints + num_inputs]
            .copy_from_slice(&full_assignment[..num_inputs]);
        let mut c: Vec<F> = a.iter().zip(&b).map(|(x, y)| *x * y).collect();
        let w2n =
            F::get_root_of_unity(2 * n as u64).ok_or(SynthesisError::PolynomialDegreeTooLarge)?;
        for v in [&mut a, &mut b, &mut c] {
            domain.ifft_in_place(v);
            D::distribute_powers(v, w2n);
            domain.fft_in_place(v);
        }
        Ok(a.iter()
            .zip(&b)
            .zip(&c)
            .map(|((x, y), z)| *x * y - z)
            .collect())
    }

    fn h_query_scalars<F: PrimeField, D: EvaluationDomain<F>>(
        max_power: usize,
        t: F,
        _zt: F,
        delta_inverse: F,
    ) -> Result<Vec<F>, SynthesisError> {
        // ark's generator passes max_power = n − 1.
        let n = max_power + 1;
        if !n.is_power_of_two() || <F as FftField>::get_root_of_unity(2 * n as u64).is_none() {
            return Err(SynthesisError::PolynomialDegreeTooLarge);
        }
        odd_lagrange_at(t, n, delta_inverse).ok_or(SynthesisError::DivisionByZero)
    }
}
