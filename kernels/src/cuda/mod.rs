//! The CUDA backend: [`CudaBackend`] on cudarc (driver loaded at run time, so one build runs
//! on boxes with and without a GPU), kernels from `kernels/cuda/*.cu` compiled by NVRTC at
//! build time and embedded (see `kernels/build.rs`).
//!
//! Layout:
//! - `backend`: `CudaBackend`, the `Backend` impl, resident scalars and bases.
//! - `exec`: the device interface drivers are written against (memory, launches by name);
//!   implemented by `ffi::CudaDevice` and, in tests, by the SIMT emulator
//!   (`crate::host_kernels`), so every driver is tested on the CPU with the same kernels.
//! - `ffi`: every `unsafe` of the backend (driver calls, byte views).
//! - `embedded`: the kernel images and which one a device loads.
//! - `layout`: device layouts of fields and points, conversions to arkworks.
//! - `msm_plan`, `msm`: MSM sizing (pure) and the driver.
//! - `ntt`: NTT pass planning (pure), root/coset tables and the NTT / element-wise driver.
//!
//! Architecture invariant: nothing here loads the CUDA driver before
//! `is_culib_present()`; a box without one gets `BackendError::Unavailable`.

mod backend;
mod embedded;
pub(crate) mod exec;
pub(crate) mod ffi;
pub(crate) mod layout;
pub(crate) mod msm;
pub(crate) mod msm_plan;
#[cfg(test)]
mod msm_tests;
pub(crate) mod ntt;
#[cfg(test)]
mod ntt_tests;

pub use backend::{CudaBackend, CudaBasesG1, CudaBasesG2, CudaScalars};
pub use embedded::cuda_kernels_embedded;
pub use msm::{MsmProfile, MsmTuning};
