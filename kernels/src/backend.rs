//! The `Backend` trait: the operations a Groth16 prover needs, in a form a GPU can keep on
//! the device.
//!
//! Data that a backend holds (scalars, bases) lives behind associated types, so the CUDA
//! backend can keep a Groth16 proof's intermediate vectors in device memory from the first NTT
//! to the last MSM, and upload a proving key's bases once and keep them resident while the key
//! is in use. The CPU backend's associated types are plain host vectors.
//!
//! Callers that hold host slices use the `*_host` helpers, which upload, run and download.
//! Every method takes `&self` and may be called from several threads at once (the Groth16
//! prover runs the G2 MSM beside the G1 work).

use crate::curve::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use serde::{Deserialize, Serialize};

/// Which implementation runs the kernels. Reported in agent telemetry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackendKind {
    Cpu,
    Cuda,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
        })
    }
}

/// What a backend is, for telemetry and logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendInfo {
    pub kind: BackendKind,
    /// Human-readable, e.g. `cpu (arkworks, 16 threads)` or `cuda: NVIDIA H200 (sm_90)`.
    pub name: String,
    /// Memory the backend computes in: device memory for CUDA, `None` for the host.
    pub device_memory_total_bytes: Option<u64>,
}

/// Direction of a number-theoretic transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NttDirection {
    /// Coefficients to evaluations.
    Forward,
    /// Evaluations to coefficients (includes the 1/n scaling).
    Inverse,
}

/// Errors that cross the backend boundary. Operating errors only: a broken invariant inside a
/// backend panics.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("out of device memory: needed {needed_bytes} bytes, {free_bytes} free")]
    OutOfMemory { needed_bytes: u64, free_bytes: u64 },
    #[error("device error: {0}")]
    Device(String),
}

/// The proving operations. Sizes: NTT lengths are powers of two from 2 to 2^26 (larger are
/// chunked by the backend or refused with `InvalidInput`); MSM lengths from 1 up.
pub trait Backend: Send + Sync + 'static {
    /// A vector of Fr in the backend's memory.
    type Scalars: Send + Sync;
    /// G1 bases resident in the backend's memory (uploaded once per proving key).
    type BasesG1: Send + Sync;
    /// G2 bases resident in the backend's memory.
    type BasesG2: Send + Sync;

    fn info(&self) -> BackendInfo;

    fn upload_scalars(&self, scalars: &[Fr]) -> Result<Self::Scalars, BackendError>;
    fn download_scalars(&self, scalars: &Self::Scalars) -> Result<Vec<Fr>, BackendError>;
    fn scalars_len(&self, scalars: &Self::Scalars) -> usize;

    fn load_bases_g1(&self, bases: &[G1Affine]) -> Result<Self::BasesG1, BackendError>;
    fn load_bases_g2(&self, bases: &[G2Affine]) -> Result<Self::BasesG2, BackendError>;

    /// Σ scalars[i]·bases[i]. `scalars.len()` must equal the number of bases.
    fn msm_g1(
        &self,
        bases: &Self::BasesG1,
        scalars: &Self::Scalars,
    ) -> Result<G1Projective, BackendError>;
    fn msm_g2(
        &self,
        bases: &Self::BasesG2,
        scalars: &Self::Scalars,
    ) -> Result<G2Projective, BackendError>;

    /// In-place NTT of `data` (length a power of two), natural order in and out.
    /// With `coset = Some(g)` the forward transform evaluates on g·⟨ω⟩ and the inverse
    /// interpolates from it.
    fn ntt(
        &self,
        data: &mut Self::Scalars,
        direction: NttDirection,
        coset: Option<Fr>,
    ) -> Result<(), BackendError>;

    /// For each vector (all of one length): interpolate from its values on ⟨ω⟩ (inverse NTT),
    /// then evaluate on the coset `coset`·⟨ω⟩ (forward NTT); natural order in and out. The
    /// Groth16 quotient does this to a, b and c. The result must equal the two `ntt` calls bit
    /// for bit (the default); a backend may fuse the transforms (no bit reversal between
    /// them) and batch the vectors into one launch.
    fn interpolate_then_evaluate_on_coset(
        &self,
        vectors: &mut [&mut Self::Scalars],
        coset: Fr,
    ) -> Result<(), BackendError> {
        for v in vectors.iter_mut() {
            self.ntt(v, NttDirection::Inverse, None)?;
            self.ntt(v, NttDirection::Forward, Some(coset))?;
        }
        Ok(())
    }

    /// a[i] = a[i]·b[i] − c[i].
    fn mul_sub_assign(
        &self,
        a: &mut Self::Scalars,
        b: &Self::Scalars,
        c: &Self::Scalars,
    ) -> Result<(), BackendError>;

    /// MSM over host slices: loads, runs, frees. For calibration, benchmarks and tests.
    fn msm_g1_host(
        &self,
        bases: &[G1Affine],
        scalars: &[Fr],
    ) -> Result<G1Projective, BackendError> {
        if bases.len() != scalars.len() {
            return Err(BackendError::InvalidInput(format!(
                "msm needs one scalar per base: {} bases, {} scalars",
                bases.len(),
                scalars.len()
            )));
        }
        let b = self.load_bases_g1(bases)?;
        let s = self.upload_scalars(scalars)?;
        self.msm_g1(&b, &s)
    }

    /// NTT over a host slice: uploads, transforms, downloads.
    fn ntt_host(
        &self,
        data: &mut [Fr],
        direction: NttDirection,
        coset: Option<Fr>,
    ) -> Result<(), BackendError> {
        let mut d = self.upload_scalars(data)?;
        self.ntt(&mut d, direction, coset)?;
        let out = self.download_scalars(&d)?;
        data.copy_from_slice(&out);
        Ok(())
    }
}
