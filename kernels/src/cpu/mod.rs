//! `CpuBackend`: the [`Backend`] on arkworks, the reference every other backend is tested
//! against (see [`crate::conformance`]).
//!
//! Scalars are host vectors, bases are shared immutable slices (`Arc<[_]>`), so "loading" a
//! proving key's bases costs one copy and a prepared key can be shared between threads.
//! MSM is arkworks' signed-digit Pippenger (`VariableBaseMSM`), NTT is the in-order radix-2
//! transform of `Radix2EvaluationDomain`; both run on the global rayon pool.

use std::sync::Arc;

use ark_ec::VariableBaseMSM;
use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};
use rayon::prelude::*;

use crate::backend::{Backend, BackendError, BackendInfo, BackendKind, NttDirection};
use crate::curve::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};

/// Largest NTT the CPU backend accepts: the trait's documented maximum (2^26 elements,
/// 2 GiB of scalars); larger transforms are refused rather than chunked.
pub const MAX_NTT_LOG2: u32 = 26;

/// The arkworks backend. Stateless: cheap to create, `Clone`, shareable.
#[derive(Clone, Debug, Default)]
pub struct CpuBackend;

impl CpuBackend {
    pub fn new() -> Self {
        CpuBackend
    }

    fn domain(len: usize) -> Result<Radix2EvaluationDomain<Fr>, BackendError> {
        if len < 2 || !len.is_power_of_two() || len.trailing_zeros() > MAX_NTT_LOG2 {
            return Err(BackendError::InvalidInput(format!(
                "ntt length must be a power of two from 2 to 2^{MAX_NTT_LOG2}, got {len}"
            )));
        }
        Radix2EvaluationDomain::new(len).ok_or_else(|| {
            BackendError::InvalidInput(format!("no radix-2 domain of size {len} in BN254 Fr"))
        })
    }
}

fn check_msm_lengths(bases: usize, scalars: usize) -> Result<(), BackendError> {
    if bases != scalars {
        return Err(BackendError::InvalidInput(format!(
            "msm needs one scalar per base: {bases} bases, {scalars} scalars"
        )));
    }
    Ok(())
}

impl Backend for CpuBackend {
    type Scalars = Vec<Fr>;
    type BasesG1 = Arc<[G1Affine]>;
    type BasesG2 = Arc<[G2Affine]>;

    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: BackendKind::Cpu,
            name: format!("cpu (arkworks, {} threads)", rayon::current_num_threads()),
            device_memory_total_bytes: None,
        }
    }

    fn upload_scalars(&self, scalars: &[Fr]) -> Result<Vec<Fr>, BackendError> {
        Ok(scalars.to_vec())
    }

    fn download_scalars(&self, scalars: &Vec<Fr>) -> Result<Vec<Fr>, BackendError> {
        Ok(scalars.clone())
    }

    fn scalars_len(&self, scalars: &Vec<Fr>) -> usize {
        scalars.len()
    }

    fn load_bases_g1(&self, bases: &[G1Affine]) -> Result<Arc<[G1Affine]>, BackendError> {
        Ok(Arc::from(bases))
    }

    fn load_bases_g2(&self, bases: &[G2Affine]) -> Result<Arc<[G2Affine]>, BackendError> {
        Ok(Arc::from(bases))
    }

    fn msm_g1(
        &self,
        bases: &Arc<[G1Affine]>,
        scalars: &Vec<Fr>,
    ) -> Result<G1Projective, BackendError> {
        check_msm_lengths(bases.len(), scalars.len())?;
        Ok(G1Projective::msm_unchecked(bases, scalars))
    }

    fn msm_g2(
        &self,
        bases: &Arc<[G2Affine]>,
        scalars: &Vec<Fr>,
    ) -> Result<G2Projective, BackendError> {
        check_msm_lengths(bases.len(), scalars.len())?;
        Ok(G2Projective::msm_unchecked(bases, scalars))
    }

    fn ntt(
        &self,
        data: &mut Vec<Fr>,
        direction: NttDirection,
        coset: Option<Fr>,
    ) -> Result<(), BackendError> {
        let mut domain = Self::domain(data.len())?;
        if let Some(offset) = coset {
            domain = domain.get_coset(offset).ok_or_else(|| {
                BackendError::InvalidInput("coset offset must be non-zero".to_string())
            })?;
        }
        match direction {
            NttDirection::Forward => domain.fft_in_place(data),
            NttDirection::Inverse => domain.ifft_in_place(data),
        }
        debug_assert_eq!(data.len(), domain.size());
        Ok(())
    }

    fn mul_sub_assign(
        &self,
        a: &mut Vec<Fr>,
        b: &Vec<Fr>,
        c: &Vec<Fr>,
    ) -> Result<(), BackendError> {
        if a.len() != b.len() || a.len() != c.len() {
            return Err(BackendError::InvalidInput(format!(
                "mul_sub_assign needs equal lengths: a {}, b {}, c {}",
                a.len(),
                b.len(),
                c.len()
            )));
        }
        a.par_iter_mut()
            .zip(b.par_iter())
            .zip(c.par_iter())
            .for_each(|((a, b), c)| {
                *a *= b;
                *a -= c;
            });
        Ok(())
    }

    /// Host MSM without the copy the default implementation makes when "loading" bases.
    fn msm_g1_host(
        &self,
        bases: &[G1Affine],
        scalars: &[Fr],
    ) -> Result<G1Projective, BackendError> {
        check_msm_lengths(bases.len(), scalars.len())?;
        Ok(G1Projective::msm_unchecked(bases, scalars))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
    use ark_ff::{FftField, Field, UniformRand, Zero};
    use ark_std::rand::{rngs::StdRng, SeedableRng};

    fn naive_eval(coeffs: &[Fr], x: Fr) -> Fr {
        coeffs.iter().rev().fold(Fr::zero(), |acc, c| acc * x + c)
    }

    #[test]
    fn forward_ntt_evaluates_at_roots_and_coset() {
        let mut rng = StdRng::seed_from_u64(1);
        let b = CpuBackend::new();
        for log in 1..=6u32 {
            let n = 1usize << log;
            let coeffs: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let omega = Fr::get_root_of_unity(n as u64).unwrap();
            let g = Fr::from(7u64);
            for coset in [None, Some(g)] {
                let mut evals = coeffs.clone();
                b.ntt_host(&mut evals, NttDirection::Forward, coset)
                    .unwrap();
                for (i, e) in evals.iter().enumerate() {
                    let x = coset.unwrap_or(Fr::ONE) * omega.pow([i as u64]);
                    assert_eq!(*e, naive_eval(&coeffs, x), "n={n} i={i} coset={coset:?}");
                }
                b.ntt_host(&mut evals, NttDirection::Inverse, coset)
                    .unwrap();
                assert_eq!(evals, coeffs);
            }
        }
    }

    #[test]
    fn ntt_rejects_bad_lengths_and_zero_offset() {
        let b = CpuBackend::new();
        for len in [0usize, 1, 3, 6, 12] {
            let mut v = vec![Fr::ONE; len];
            assert!(matches!(
                b.ntt(&mut v, NttDirection::Forward, None),
                Err(BackendError::InvalidInput(_))
            ));
        }
        let mut v = vec![Fr::ONE; 8];
        assert!(b
            .ntt(&mut v, NttDirection::Forward, Some(Fr::zero()))
            .is_err());
    }

    #[test]
    fn msm_matches_naive_sum_and_checks_lengths() {
        let mut rng = StdRng::seed_from_u64(2);
        let b = CpuBackend::new();
        let bases: Vec<G1Affine> = (0..9)
            .map(|_| G1Projective::rand(&mut rng).into_affine())
            .collect();
        let scalars: Vec<Fr> = (0..9).map(|_| Fr::rand(&mut rng)).collect();
        let naive: G1Projective = bases.iter().zip(&scalars).map(|(p, s)| *p * s).sum();
        assert_eq!(b.msm_g1_host(&bases, &scalars).unwrap(), naive);
        let loaded = b.load_bases_g1(&bases).unwrap();
        let short = b.upload_scalars(&scalars[..8]).unwrap();
        assert!(b.msm_g1(&loaded, &short).is_err());
        let g2 = b.load_bases_g2(&[G2Affine::generator()]).unwrap();
        let s = b.upload_scalars(&[Fr::from(5u64)]).unwrap();
        assert_eq!(
            b.msm_g2(&g2, &s).unwrap(),
            G2Projective::generator() * Fr::from(5u64)
        );
    }

    #[test]
    fn mul_sub_assign_is_pointwise_and_checks_lengths() {
        let b = CpuBackend::new();
        let mut a = vec![Fr::from(3u64), Fr::from(4u64)];
        let x = vec![Fr::from(5u64), Fr::from(6u64)];
        let c = vec![Fr::from(1u64), Fr::from(30u64)];
        b.mul_sub_assign(&mut a, &x, &c).unwrap();
        assert_eq!(a, vec![Fr::from(14u64), Fr::from(-6i64)]);
        assert!(b.mul_sub_assign(&mut a, &x, &c[..1].to_vec()).is_err());
    }
}
