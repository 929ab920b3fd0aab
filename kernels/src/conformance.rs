//! Backend conformance: runs every `Backend` operation on a backend and on [`CpuBackend`]
//! with the same inputs and requires equal results. The CUDA backend's tests and
//! `proofrack-bench check` (on the GPU box) call [`check_backend_matches_cpu`].
//!
//! Inputs include the edge cases public GPU MSM/NTT code got wrong (notes/gpu-msm-ntt.md §4):
//! sizes around powers of two and thread-block sizes, zero / one / r−1 / (r±1)/2 scalars,
//! all-equal scalars, identity bases, duplicated and opposite bases, cosets with ω_2n and an
//! arbitrary offset, and finally a whole Groth16 proof that must be byte-identical.

use std::time::Instant;

use ark_ec::CurveGroup;
use ark_ff::{FftField, Field, UniformRand, Zero};
use ark_std::rand::{rngs::StdRng, SeedableRng};

use crate::backend::{Backend, BackendError, BackendInfo, NttDirection};
use crate::circuits::{Circuit, MimcInputs};
use crate::cpu::CpuBackend;
use crate::curve::{Fr, G1Projective, G2Projective};
use crate::groth16::{self, proof_to_bytes, PreparedKey};

/// What to check. Sizes are element counts for MSM, log2 for NTT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConformanceConfig {
    pub msm_g1_sizes: Vec<usize>,
    pub msm_g2_sizes: Vec<usize>,
    pub ntt_log_sizes: Vec<u32>,
    /// Domain log2 of the MiMC circuit proved on both backends; `None` skips it.
    pub groth16_log2: Option<u32>,
    /// Seed of every random input (printed in failures so a run can be replayed).
    pub seed: u64,
}

impl Default for ConformanceConfig {
    /// Small enough for CI on two cores (a few seconds).
    fn default() -> Self {
        ConformanceConfig {
            msm_g1_sizes: vec![1, 2, 3, 31, 32, 33, 255, 256, 257, 511, 513, 4096],
            msm_g2_sizes: vec![1, 2, 3, 33, 257],
            ntt_log_sizes: (1..=12).collect(),
            groth16_log2: Some(8),
            seed: 0x5eed,
        }
    }
}

impl ConformanceConfig {
    /// The GPU box's check: adds 2^16 ± 1 and 2^20 MSMs, NTTs to 2^20, a 2^12 proof.
    pub fn gpu() -> Self {
        let mut c = ConformanceConfig::default();
        c.msm_g1_sizes
            .extend([(1 << 16) - 1, (1 << 16) + 1, 1 << 20]);
        c.msm_g2_sizes.extend([1023, 4097]);
        c.ntt_log_sizes = (1..=20).collect();
        c.groth16_log2 = Some(12);
        c
    }
}

/// One passed check, with both backends' times (upload, run and download included).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOutcome {
    pub check: String,
    pub size: usize,
    pub backend_ms: f64,
    pub cpu_ms: f64,
}

/// Every check passed.
#[derive(Clone, Debug, PartialEq)]
pub struct ConformanceReport {
    pub backend: BackendInfo,
    pub checks: Vec<CheckOutcome>,
}

/// The first failed check.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error("{check} at size {size} (seed {seed}): backend result differs from the CPU reference: {detail}")]
    Mismatch {
        check: String,
        size: usize,
        seed: u64,
        detail: String,
    },
    #[error("{check} at size {size}: backend error: {source}")]
    Backend {
        check: String,
        size: usize,
        source: BackendError,
    },
    #[error("{check}: {detail}")]
    Harness { check: String, detail: String },
}

/// [`check_backend_matches_cpu_with`] with the default (CI-sized) configuration.
pub fn check_backend_matches_cpu<B: Backend>(
    backend: &B,
) -> Result<ConformanceReport, ConformanceError> {
    check_backend_matches_cpu_with(backend, &ConformanceConfig::default())
}

/// Runs every check in `config`; stops at the first mismatch or backend error.
pub fn check_backend_matches_cpu_with<B: Backend>(
    backend: &B,
    config: &ConformanceConfig,
) -> Result<ConformanceReport, ConformanceError> {
    let mut run = Run {
        backend,
        cpu: CpuBackend::new(),
        seed: config.seed,
        checks: Vec::new(),
    };
    let mut rng = StdRng::seed_from_u64(config.seed);
    for &n in &config.msm_g1_sizes {
        run.msm_g1(n, &mut rng)?;
    }
    for &n in &config.msm_g2_sizes {
        run.msm_g2(n, &mut rng)?;
    }
    for &log in &config.ntt_log_sizes {
        run.ntt(log, &mut rng)?;
        run.mul_sub(1 << log, &mut rng)?;
    }
    if let Some(log2) = config.groth16_log2 {
        run.groth16(log2, &mut rng)?;
    }
    Ok(ConformanceReport {
        backend: backend.info(),
        checks: run.checks,
    })
}

struct Run<'a, B: Backend> {
    backend: &'a B,
    cpu: CpuBackend,
    seed: u64,
    checks: Vec<CheckOutcome>,
}

/// Scalars with the edge values spread through random ones: 0, 1, r−1, (r−1)/2, (r+1)/2.
fn edge_scalars(n: usize, rng: &mut StdRng) -> Vec<Fr> {
    let r_plus_1_half = Fr::from(2u64).inverse().expect("2 is invertible"); // (r+1)/2
    let edges = [
        Fr::zero(),
        Fr::ONE,
        -Fr::ONE,
        r_plus_1_half - Fr::ONE,
        r_plus_1_half,
    ];
    (0..n)
        .map(|i| {
            if i % 7 == 3 {
                edges[(i / 7) % edges.len()]
            } else {
                Fr::rand(rng)
            }
        })
        .collect()
}

/// Bases: random points with identities, duplicates and negations mixed in.
fn edge_bases<G: CurveGroup + UniformRand>(n: usize, rng: &mut StdRng) -> Vec<G::Affine> {
    // P + i·Q keeps generation cheap (one addition per base instead of a scalar mul).
    let (p, q) = (G::rand(rng), G::rand(rng));
    let mut acc = p;
    let mut proj = Vec::with_capacity(n);
    for i in 0..n {
        proj.push(match i % 11 {
            5 => G::zero(),
            7 if i > 0 => proj[i - 1],
            9 if i > 0 => -proj[i - 1],
            _ => acc,
        });
        acc += q;
    }
    G::normalize_batch(&proj)
}

impl<B: Backend> Run<'_, B> {
    fn mismatch(&self, check: &str, size: usize, detail: String) -> ConformanceError {
        ConformanceError::Mismatch {
            check: check.to_string(),
            size,
            seed: self.seed,
            detail,
        }
    }

    fn record(&mut self, check: &str, size: usize, backend_ms: f64, cpu_ms: f64) {
        self.checks.push(CheckOutcome {
            check: check.to_string(),
            size,
            backend_ms,
            cpu_ms,
        });
    }

    fn msm_g1(&mut self, n: usize, rng: &mut StdRng) -> Result<(), ConformanceError> {
        let bases = edge_bases::<G1Projective>(n, rng);
        let mut cases = vec![("msm_g1", edge_scalars(n, rng))];
        if n > 1 {
            cases.push(("msm_g1_zero_scalars", vec![Fr::zero(); n]));
            cases.push(("msm_g1_equal_scalars", vec![-Fr::ONE; n]));
        }
        for (check, scalars) in cases {
            let be = |e| ConformanceError::Backend {
                check: check.to_string(),
                size: n,
                source: e,
            };
            let t = Instant::now();
            let loaded = self.backend.load_bases_g1(&bases).map_err(be)?;
            let s = self.backend.upload_scalars(&scalars).map_err(be)?;
            let got = self.backend.msm_g1(&loaded, &s).map_err(be)?;
            let backend_ms = ms(t);
            let t = Instant::now();
            let want = self.cpu.msm_g1_host(&bases, &scalars).map_err(be)?;
            let cpu_ms = ms(t);
            if got != want {
                return Err(self.mismatch(
                    check,
                    n,
                    format!("{} vs {}", got.into_affine(), want.into_affine()),
                ));
            }
            self.record(check, n, backend_ms, cpu_ms);
        }
        Ok(())
    }

    fn msm_g2(&mut self, n: usize, rng: &mut StdRng) -> Result<(), ConformanceError> {
        let check = "msm_g2";
        let be = |e| ConformanceError::Backend {
            check: check.to_string(),
            size: n,
            source: e,
        };
        let bases = edge_bases::<G2Projective>(n, rng);
        let scalars = edge_scalars(n, rng);
        let t = Instant::now();
        let loaded = self.backend.load_bases_g2(&bases).map_err(be)?;
        let s = self.backend.upload_scalars(&scalars).map_err(be)?;
        let got = self.backend.msm_g2(&loaded, &s).map_err(be)?;
        let backend_ms = ms(t);
        let t = Instant::now();
        let cpu_bases = self.cpu.load_bases_g2(&bases).map_err(be)?;
        let want = self.cpu.msm_g2(&cpu_bases, &scalars).map_err(be)?;
        let cpu_ms = ms(t);
        if got != want {
            return Err(self.mismatch(
                check,
                n,
                format!("{} vs {}", got.into_affine(), want.into_affine()),
            ));
        }
        self.record(check, n, backend_ms, cpu_ms);
        Ok(())
    }

    fn ntt(&mut self, log: u32, rng: &mut StdRng) -> Result<(), ConformanceError> {
        let n = 1usize << log;
        let data: Vec<Fr> = edge_scalars(n, rng);
        let omega_2n = Fr::get_root_of_unity(2 * n as u64).expect("2-adicity 28");
        let cases = [
            ("ntt_forward", NttDirection::Forward, None),
            ("ntt_inverse", NttDirection::Inverse, None),
            (
                "ntt_forward_coset_w2n",
                NttDirection::Forward,
                Some(omega_2n),
            ),
            (
                "ntt_inverse_coset_w2n",
                NttDirection::Inverse,
                Some(omega_2n),
            ),
            (
                "ntt_forward_coset_7",
                NttDirection::Forward,
                Some(Fr::from(7u64)),
            ),
        ];
        for (check, dir, coset) in cases {
            let be = |e| ConformanceError::Backend {
                check: check.to_string(),
                size: n,
                source: e,
            };
            let mut got = data.clone();
            let t = Instant::now();
            self.backend.ntt_host(&mut got, dir, coset).map_err(be)?;
            let backend_ms = ms(t);
            let mut want = data.clone();
            let t = Instant::now();
            self.cpu.ntt_host(&mut want, dir, coset).map_err(be)?;
            let cpu_ms = ms(t);
            if let Some(i) = (0..n).find(|&i| got[i] != want[i]) {
                return Err(self.mismatch(check, n, format!("first difference at index {i}")));
            }
            self.record(check, n, backend_ms, cpu_ms);
        }
        // Round trip on the backend alone, data kept resident between the two transforms.
        let check = "ntt_round_trip_resident";
        let be = |e| ConformanceError::Backend {
            check: check.to_string(),
            size: n,
            source: e,
        };
        let t = Instant::now();
        let mut d = self.backend.upload_scalars(&data).map_err(be)?;
        self.backend
            .ntt(&mut d, NttDirection::Inverse, None)
            .map_err(be)?;
        self.backend
            .ntt(&mut d, NttDirection::Forward, Some(omega_2n))
            .map_err(be)?;
        self.backend
            .ntt(&mut d, NttDirection::Inverse, Some(omega_2n))
            .map_err(be)?;
        self.backend
            .ntt(&mut d, NttDirection::Forward, None)
            .map_err(be)?;
        let back = self.backend.download_scalars(&d).map_err(be)?;
        let backend_ms = ms(t);
        if back != data {
            return Err(self.mismatch(check, n, "inverse∘forward is not the identity".to_string()));
        }
        self.record(check, n, backend_ms, 0.0);
        Ok(())
    }

    fn mul_sub(&mut self, n: usize, rng: &mut StdRng) -> Result<(), ConformanceError> {
        let check = "mul_sub_assign";
        let be = |e| ConformanceError::Backend {
            check: check.to_string(),
            size: n,
            source: e,
        };
        let (a, b, c) = (
            edge_scalars(n, rng),
            edge_scalars(n, rng),
            edge_scalars(n, rng),
        );
        let t = Instant::now();
        let mut da = self.backend.upload_scalars(&a).map_err(be)?;
        let db = self.backend.upload_scalars(&b).map_err(be)?;
        let dc = self.backend.upload_scalars(&c).map_err(be)?;
        self.backend.mul_sub_assign(&mut da, &db, &dc).map_err(be)?;
        let got = self.backend.download_scalars(&da).map_err(be)?;
        let backend_ms = ms(t);
        if self.backend.scalars_len(&da) != n {
            return Err(self.mismatch(check, n, "scalars_len is wrong".to_string()));
        }
        let t = Instant::now();
        let mut want = a.clone();
        self.cpu.mul_sub_assign(&mut want, &b, &c).map_err(be)?;
        let cpu_ms = ms(t);
        if let Some(i) = (0..n).find(|&i| got[i] != want[i]) {
            return Err(self.mismatch(check, n, format!("first difference at index {i}")));
        }
        self.record(check, n, backend_ms, cpu_ms);
        Ok(())
    }

    fn groth16(&mut self, log2: u32, rng: &mut StdRng) -> Result<(), ConformanceError> {
        let check = "groth16_proof";
        let harness = |detail: String| ConformanceError::Harness {
            check: check.to_string(),
            detail,
        };
        let circuit = Circuit::mimc(log2)
            .ok_or_else(|| harness(format!("no built-in circuit for 2^{log2}")))?;
        let n = circuit.domain_size();
        let be = |e| ConformanceError::Backend {
            check: check.to_string(),
            size: n,
            source: e,
        };
        let key = groth16::generate_key_with_rng(&circuit.r1cs(), rng)
            .map_err(|e| harness(e.to_string()))?;
        let witness = circuit.witness(&MimcInputs {
            x: Fr::rand(rng),
            key: Fr::rand(rng),
        });
        let (r, s) = (Fr::rand(rng), Fr::rand(rng));
        let prove_err = |e: groth16::ProveError| match e {
            groth16::ProveError::Backend(e) => be(e),
            other => harness(other.to_string()),
        };
        let t = Instant::now();
        let prepared = PreparedKey::new(self.backend, &key).map_err(be)?;
        let got =
            groth16::prove(self.backend, &prepared, &witness.full, r, s).map_err(prove_err)?;
        let backend_ms = ms(t);
        let t = Instant::now();
        let cpu_key = PreparedKey::new(&self.cpu, &key).map_err(be)?;
        let want = groth16::prove(&self.cpu, &cpu_key, &witness.full, r, s).map_err(prove_err)?;
        let cpu_ms = ms(t);
        if proof_to_bytes(&got) != proof_to_bytes(&want) {
            return Err(self.mismatch(check, n, "proof bytes differ".to_string()));
        }
        let pvk = groth16::prepare_verifying_key(&key.verifying_key());
        match groth16::verify(&pvk, &witness.public, &got) {
            Ok(true) => {}
            other => {
                return Err(self.mismatch(check, n, format!("proof does not verify: {other:?}")))
            }
        }
        self.record(check, n, backend_ms, cpu_ms);
        Ok(())
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::{G1Affine, G2Affine};
    use ark_ec::{AdditiveGroup, PrimeGroup};
    use std::sync::Arc;

    #[test]
    fn cpu_backend_conforms_to_itself() {
        let report = check_backend_matches_cpu(&CpuBackend::new()).unwrap();
        for check in [
            "msm_g1",
            "msm_g1_zero_scalars",
            "msm_g2",
            "ntt_forward_coset_w2n",
            "mul_sub_assign",
            "groth16_proof",
        ] {
            assert!(
                report.checks.iter().any(|c| c.check == check),
                "{check} did not run"
            );
        }
    }

    /// A CPU backend with one planted bug, to show each check can fail.
    #[derive(Clone, Copy, PartialEq)]
    enum Fault {
        NttCosetFromSize16,
        MsmG2AtSize33,
        MsmG1ZeroScalars,
        MulSub,
    }

    struct Faulty(CpuBackend, Fault);

    impl Backend for Faulty {
        type Scalars = Vec<Fr>;
        type BasesG1 = Arc<[G1Affine]>;
        type BasesG2 = Arc<[G2Affine]>;
        fn info(&self) -> BackendInfo {
            self.0.info()
        }
        fn upload_scalars(&self, s: &[Fr]) -> Result<Vec<Fr>, BackendError> {
            self.0.upload_scalars(s)
        }
        fn download_scalars(&self, s: &Vec<Fr>) -> Result<Vec<Fr>, BackendError> {
            self.0.download_scalars(s)
        }
        fn scalars_len(&self, s: &Vec<Fr>) -> usize {
            s.len()
        }
        fn load_bases_g1(&self, b: &[G1Affine]) -> Result<Self::BasesG1, BackendError> {
            self.0.load_bases_g1(b)
        }
        fn load_bases_g2(&self, b: &[G2Affine]) -> Result<Self::BasesG2, BackendError> {
            self.0.load_bases_g2(b)
        }
        fn msm_g1(&self, b: &Self::BasesG1, s: &Vec<Fr>) -> Result<G1Projective, BackendError> {
            let r = self.0.msm_g1(b, s)?;
            let all_zero = s.len() > 1 && s.iter().all(|x| x.is_zero());
            Ok(if self.1 == Fault::MsmG1ZeroScalars && all_zero {
                r + G1Projective::generator()
            } else {
                r
            })
        }
        fn msm_g2(&self, b: &Self::BasesG2, s: &Vec<Fr>) -> Result<G2Projective, BackendError> {
            let r = self.0.msm_g2(b, s)?;
            Ok(if self.1 == Fault::MsmG2AtSize33 && s.len() == 33 {
                r.double()
            } else {
                r
            })
        }
        fn ntt(
            &self,
            d: &mut Vec<Fr>,
            dir: NttDirection,
            coset: Option<Fr>,
        ) -> Result<(), BackendError> {
            self.0.ntt(d, dir, coset)?;
            if self.1 == Fault::NttCosetFromSize16 && coset.is_some() && d.len() >= 16 {
                let last = d.len() - 1;
                d[last] += Fr::ONE;
            }
            Ok(())
        }
        fn mul_sub_assign(
            &self,
            a: &mut Vec<Fr>,
            b: &Vec<Fr>,
            c: &Vec<Fr>,
        ) -> Result<(), BackendError> {
            self.0.mul_sub_assign(a, b, c)?;
            if self.1 == Fault::MulSub && a.len() > 2 {
                a.swap(1, 2);
            }
            Ok(())
        }
    }

    #[test]
    fn planted_bugs_are_caught_by_the_right_check() {
        let config = ConformanceConfig {
            groth16_log2: None,
            ..ConformanceConfig::default()
        };
        for (fault, check, size) in [
            (Fault::NttCosetFromSize16, "ntt_forward_coset_w2n", 16),
            (Fault::MsmG2AtSize33, "msm_g2", 33),
            (Fault::MsmG1ZeroScalars, "msm_g1_zero_scalars", 2),
            (Fault::MulSub, "mul_sub_assign", 4),
        ] {
            match check_backend_matches_cpu_with(&Faulty(CpuBackend::new(), fault), &config) {
                Err(ConformanceError::Mismatch {
                    check: c, size: n, ..
                }) => {
                    assert_eq!((c.as_str(), n), (check, size));
                }
                other => panic!("expected a mismatch in {check}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_planted_ntt_bug_breaks_the_groth16_check() {
        let config = ConformanceConfig {
            msm_g1_sizes: vec![],
            msm_g2_sizes: vec![],
            ntt_log_sizes: vec![],
            groth16_log2: Some(5),
            seed: 1,
        };
        let err = check_backend_matches_cpu_with(
            &Faulty(CpuBackend::new(), Fault::NttCosetFromSize16),
            &config,
        )
        .unwrap_err();
        assert!(
            matches!(err, ConformanceError::Mismatch { ref check, .. } if check == "groth16_proof"),
            "{err}"
        );
    }
}
