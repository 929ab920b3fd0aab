//! A chain of MiMC-7 rounds over BN254 Fr: the devnet's and the benchmarks' circuit.
//!
//! Round i maps `x ↦ (x + k + c_{i mod 91})⁷` (the MiMC-7 round function with key k); after
//! the last round the key is added once more, `y = x_R + k`, as MiMC encryption does. 91 is
//! MiMC-7's round count for BN254 (⌈log₇ r⌉), so R rounds are ⌊R/91⌋ MiMC-7 permutations
//! chained output to input (without the per-permutation final key addition) and a partial
//! one. The circuit is a proving *load* with the shape of real hash circuits (one x⁷ per
//! round: 4 multiplication constraints); we claim no cryptographic property of the chain.
//!
//! Round constants: `c_j = SHA-256("proofrack/mimc7-bn254/c/" ‖ decimal j)` read as a
//! little-endian integer mod r, for j in 0..91 (deterministic, nothing-up-my-sleeve).
//!
//! Public inputs, in circom order (outputs first): `[y, x, k]`. Variables: 0 = 1, 1 = y,
//! 2 = x, 3 = k, then per round t² , t⁴, t⁶ and the round output (the last round's output is
//! `y − k`, not a new variable). With `R = 2^(d−2) − 1` rounds the circuit has
//! `4R = 2^d − 4` constraints, and with the 4 input rows (constant, y, x, k) it fills the
//! 2^d domain exactly.

use std::sync::OnceLock;

use ark_ff::{AdditiveGroup, Field, PrimeField};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable,
};
use ark_relations::lc;
use sha2::{Digest, Sha256};

use crate::curve::Fr;
use crate::groth16::{R1cs, SparseMatrix};

/// MiMC-7 rounds per permutation over BN254 (⌈log₇ r⌉): the period of the round constants.
pub const MIMC_ROUNDS_PER_PERMUTATION: usize = 91;
/// Public inputs: y, x, k.
pub const MIMC_NUM_PUBLIC: usize = 3;
const CONSTANT_LABEL: &str = "proofrack/mimc7-bn254/c/";

/// The 91 round constants (see the module docs).
pub fn round_constants() -> &'static [Fr] {
    static CONSTANTS: OnceLock<Vec<Fr>> = OnceLock::new();
    CONSTANTS.get_or_init(|| {
        (0..MIMC_ROUNDS_PER_PERMUTATION)
            .map(|j| {
                let digest = Sha256::digest(format!("{CONSTANT_LABEL}{j}").as_bytes());
                Fr::from_le_bytes_mod_order(&digest)
            })
            .collect()
    })
}

fn constant(round: usize) -> Fr {
    round_constants()[round % MIMC_ROUNDS_PER_PERMUTATION]
}

/// The inputs of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MimcInputs {
    pub x: Fr,
    pub key: Fr,
}

/// A MiMC-7 chain of a fixed number of rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MimcChain {
    rounds: usize,
}

// Variable indices (see the module docs).
const Y: u32 = 1;
const X: u32 = 2;
const K: u32 = 3;
const FIRST_ROUND_VAR: u32 = 4;

impl MimcChain {
    /// A chain of `rounds ≥ 1` rounds.
    pub fn new(rounds: usize) -> Self {
        assert!(rounds >= 1, "a MiMC chain needs at least one round");
        MimcChain { rounds }
    }

    /// The chain that fills a domain of 2^`log2` exactly (`log2 ≥ 3`).
    pub fn filling_domain(log2: u32) -> Self {
        assert!(
            (3..usize::BITS).contains(&log2),
            "domain 2^{log2} out of range"
        );
        Self::new((1usize << (log2 - 2)) - 1)
    }

    pub fn rounds(&self) -> usize {
        self.rounds
    }

    pub fn num_constraints(&self) -> usize {
        4 * self.rounds
    }

    pub fn num_variables(&self) -> usize {
        4 * self.rounds + 3
    }

    /// Variable holding the input of round i.
    fn round_input_var(i: usize) -> u32 {
        if i == 0 {
            X
        } else {
            FIRST_ROUND_VAR + 4 * (i as u32 - 1) + 3
        }
    }

    /// y for the given inputs.
    pub fn evaluate(&self, inputs: &MimcInputs) -> Fr {
        let mut x = inputs.x;
        for i in 0..self.rounds {
            let t = x + inputs.key + constant(i);
            let t2 = t.square();
            x = t2.square() * t2 * t;
        }
        x + inputs.key
    }

    /// The full witness by direct evaluation (no constraint system): `[1, y, x, k, …]`.
    pub fn witness(&self, inputs: &MimcInputs) -> Vec<Fr> {
        let mut w = Vec::with_capacity(self.num_variables());
        w.extend_from_slice(&[Fr::ONE, Fr::ZERO, inputs.x, inputs.key]);
        let mut x = inputs.x;
        for i in 0..self.rounds {
            let t = x + inputs.key + constant(i);
            let t2 = t.square();
            let t4 = t2.square();
            let t6 = t4 * t2;
            x = t6 * t;
            w.extend_from_slice(&[t2, t4, t6]);
            if i + 1 < self.rounds {
                w.push(x);
            }
        }
        w[Y as usize] = x + inputs.key;
        debug_assert_eq!(w.len(), self.num_variables());
        w
    }

    /// The public inputs `[y, x, k]` for a full witness.
    pub fn public_inputs(witness: &[Fr]) -> Vec<Fr> {
        witness[1..=MIMC_NUM_PUBLIC].to_vec()
    }

    /// The constraint system, built directly (fast at 2^20; equal to the gr1cs synthesis,
    /// tested).
    pub fn r1cs(&self) -> R1cs {
        let m = self.num_constraints();
        let (mut a, mut b, mut c) = (
            SparseMatrix::with_capacity(m, 5 * m / 4),
            SparseMatrix::with_capacity(m, 5 * m / 4),
            SparseMatrix::with_capacity(m, 5 * m / 4),
        );
        for i in 0..self.rounds {
            let t = [
                (Fr::ONE, Self::round_input_var(i)),
                (Fr::ONE, K),
                (constant(i), 0),
            ];
            let base = FIRST_ROUND_VAR + 4 * i as u32;
            let (t2, t4, t6) = (base, base + 1, base + 2);
            a.push_row(t);
            b.push_row(t);
            c.push_row([(Fr::ONE, t2)]);
            a.push_row([(Fr::ONE, t2)]);
            b.push_row([(Fr::ONE, t2)]);
            c.push_row([(Fr::ONE, t4)]);
            a.push_row([(Fr::ONE, t4)]);
            b.push_row([(Fr::ONE, t2)]);
            c.push_row([(Fr::ONE, t6)]);
            a.push_row([(Fr::ONE, t6)]);
            b.push_row(t);
            if i + 1 < self.rounds {
                c.push_row([(Fr::ONE, base + 3)]);
            } else {
                c.push_row([(Fr::ONE, Y), (-Fr::ONE, K)]);
            }
        }
        R1cs::new(MIMC_NUM_PUBLIC, self.num_variables(), a, b, c)
            .expect("the MiMC chain's matrices are consistent by construction")
    }

    /// The same circuit as an arkworks gr1cs synthesizer, computing its values in-circuit.
    /// For cross-checks with ark-groth16 and to test [`MimcChain::r1cs`] and
    /// [`MimcChain::witness`]. `inputs = None` for setup.
    pub fn synthesizer(&self, inputs: Option<MimcInputs>) -> MimcSynthesizer {
        MimcSynthesizer {
            chain: *self,
            inputs,
        }
    }
}

/// [`MimcChain`] as an arkworks `ConstraintSynthesizer`.
#[derive(Clone, Debug)]
pub struct MimcSynthesizer {
    chain: MimcChain,
    inputs: Option<MimcInputs>,
}

impl ConstraintSynthesizer<Fr> for MimcSynthesizer {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let missing = || SynthesisError::AssignmentMissing;
        let inputs = self.inputs;
        let y_value = inputs.map(|i| self.chain.evaluate(&i));
        let y = cs.new_input_variable(|| y_value.ok_or_else(missing))?;
        let x = cs.new_input_variable(|| inputs.map(|i| i.x).ok_or_else(missing))?;
        let key = cs.new_input_variable(|| inputs.map(|i| i.key).ok_or_else(missing))?;
        let mut x_var = x;
        let mut x_val = inputs.map(|i| i.x);
        for i in 0..self.chain.rounds {
            let c = constant(i);
            let t_val = x_val.zip(inputs).map(|(xv, inp)| xv + inp.key + c);
            let t_lc =
                move || -> LinearCombination<Fr> { lc!() + x_var + key + (c, Variable::One) };
            let t2_val = t_val.map(|t| t.square());
            let t4_val = t2_val.map(|t2| t2.square());
            let t6_val = t4_val.zip(t2_val).map(|(t4, t2)| t4 * t2);
            let out_val = t6_val.zip(t_val).map(|(t6, t)| t6 * t);
            let t2 = cs.new_witness_variable(|| t2_val.ok_or_else(missing))?;
            let t4 = cs.new_witness_variable(|| t4_val.ok_or_else(missing))?;
            let t6 = cs.new_witness_variable(|| t6_val.ok_or_else(missing))?;
            cs.enforce_r1cs_constraint(t_lc, t_lc, || lc!() + t2)?;
            cs.enforce_r1cs_constraint(|| lc!() + t2, || lc!() + t2, || lc!() + t4)?;
            cs.enforce_r1cs_constraint(|| lc!() + t4, || lc!() + t2, || lc!() + t6)?;
            if i + 1 < self.chain.rounds {
                let next = cs.new_witness_variable(|| out_val.ok_or_else(missing))?;
                cs.enforce_r1cs_constraint(|| lc!() + t6, t_lc, || lc!() + next)?;
                x_var = next;
            } else {
                cs.enforce_r1cs_constraint(|| lc!() + t6, t_lc, || lc!() + y - key)?;
            }
            x_val = out_val;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_relations::gr1cs::{ConstraintSystem, OptimizationGoal, SynthesisMode};

    fn sorted_rows(m: &SparseMatrix) -> Vec<Vec<(Fr, u32)>> {
        (0..m.num_rows())
            .map(|i| {
                let mut r: Vec<_> = m.row(i).collect();
                r.sort_by_key(|&(_, v)| v);
                r
            })
            .collect()
    }

    fn synthesize(chain: MimcChain, inputs: Option<MimcInputs>) -> ConstraintSystemRef<Fr> {
        let cs = ConstraintSystem::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        if inputs.is_none() {
            cs.set_mode(SynthesisMode::Setup);
        }
        chain
            .synthesizer(inputs)
            .generate_constraints(cs.clone())
            .unwrap();
        cs.finalize();
        cs
    }

    #[test]
    fn direct_matrices_equal_gr1cs_synthesis() {
        for log2 in [3u32, 4, 6, 9] {
            let chain = MimcChain::filling_domain(log2);
            let cs = synthesize(chain, None);
            let ark = R1cs::from_constraint_system(&cs).unwrap();
            let direct = chain.r1cs();
            assert_eq!(ark.num_public(), direct.num_public());
            assert_eq!(ark.num_variables(), direct.num_variables());
            assert_eq!(ark.num_constraints(), direct.num_constraints());
            assert_eq!(direct.domain_size(), 1 << log2);
            assert_eq!(direct.num_constraints() + MIMC_NUM_PUBLIC + 1, 1 << log2);
            for (x, y) in [
                (ark.a(), direct.a()),
                (ark.b(), direct.b()),
                (ark.c(), direct.c()),
            ] {
                assert_eq!(sorted_rows(x), sorted_rows(y));
            }
        }
    }

    #[test]
    fn direct_witness_equals_gr1cs_assignment_and_satisfies() {
        let chain = MimcChain::filling_domain(6);
        let r1cs = chain.r1cs();
        for inputs in [
            MimcInputs {
                x: Fr::from(42u64),
                key: Fr::from(7u64),
            },
            MimcInputs {
                x: Fr::ZERO,
                key: Fr::ZERO,
            },
            MimcInputs {
                x: -Fr::ONE,
                key: -Fr::ONE,
            },
        ] {
            let cs = synthesize(chain, Some(inputs));
            assert!(cs.is_satisfied().unwrap());
            let ark_w = [
                cs.instance_assignment().unwrap(),
                cs.witness_assignment().unwrap(),
            ]
            .concat();
            let w = chain.witness(&inputs);
            assert_eq!(ark_w, w);
            assert_eq!(r1cs.first_unsatisfied(&w), None);
            assert_eq!(
                MimcChain::public_inputs(&w),
                vec![chain.evaluate(&inputs), inputs.x, inputs.key]
            );
        }
    }

    #[test]
    fn tampered_witness_breaks_a_constraint() {
        let chain = MimcChain::filling_domain(5);
        let r1cs = chain.r1cs();
        let mut w = chain.witness(&MimcInputs {
            x: Fr::from(1u64),
            key: Fr::from(2u64),
        });
        w[9] += Fr::ONE;
        assert!(r1cs.first_unsatisfied(&w).is_some());
    }

    #[test]
    fn constants_are_fixed() {
        // Pinned so a change to the derivation (which changes every key) is deliberate.
        let c = round_constants();
        assert_eq!(c.len(), 91);
        let digest = Sha256::digest(b"proofrack/mimc7-bn254/c/0");
        assert_eq!(c[0], Fr::from_le_bytes_mod_order(&digest));
        assert!(c.iter().all(|v| *v != Fr::ZERO));
    }
}
