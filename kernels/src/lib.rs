//! Proving kernels for proofrack: the [`Backend`] trait (MSM over G1/G2, NTT over Fr),
//! its CPU implementation on arkworks and its CUDA implementation, and the Groth16 prover
//! over BN254 written once, generically, on top of a `Backend`.
//!
//! # Layout
//! - [`backend`]: the `Backend` trait, the types that cross it, [`BackendError`].
//! - `cpu`: `CpuBackend`, arkworks MSM and radix-2 NTT (the reference every other backend is
//!   tested against).
//! - `cuda`: `CudaBackend` (cudarc, dynamic loading), kernels from `kernels/cuda/*.cuh`
//!   compiled by NVRTC at build time and embedded.
//! - `groth16`: proving keys (content-addressed), the generic prover, verification.
//! - `circuits`: built-in circuits for the devnet and tests.
//!
//! Architecture invariant: nothing here does network or disk I/O except the optional on-disk
//! caches named as such; a backend never panics on a box without a GPU or driver, it reports
//! itself unavailable.

pub mod backend;
pub mod circuits;
pub mod conformance;
pub mod cpu;
pub mod cuda;
pub mod field_bytes;
pub mod groth16;
#[cfg(test)]
mod host_kernels;

pub use backend::{Backend, BackendError, BackendInfo, BackendKind, NttDirection};

/// BN254 types used across the crate, named once.
pub mod curve {
    pub use ark_bn254::{Bn254, Fq, Fq2, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
}
