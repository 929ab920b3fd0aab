//! `CudaBackend`: the [`Backend`] on one NVIDIA GPU. Bases are uploaded once per proving key
//! and stay resident with their precomputed shifted copies; scalars stay on the device
//! between operations; MSMs over G1 and G2 run the kernels of kernels/cuda/msm.cu, NTTs and
//! a·b − c those of kernels/cuda/ntt.cu (driver: `ntt.rs`).
//!
//! Operations are serialised on one stream (a GPU is saturated by one MSM): concurrent
//! callers wait on `gpu`.

use std::sync::{Arc, Mutex};

use super::exec::{DevBuf, Exec};
use super::ffi::{fr_slice_as_bytes, fr_slice_as_bytes_mut, CudaDevice};
use super::layout::{G1, G2};
use super::msm::{MsmEngine, MsmProfile, MsmTuning, ResidentBases};
use super::ntt::NttEngine;
use crate::backend::{Backend, BackendError, BackendInfo, BackendKind, NttDirection};
use crate::curve::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};

/// Fr values resident on the device (Montgomery form, the arkworks layout).
pub struct CudaScalars {
    pub(crate) buf: DevBuf,
    pub(crate) len: usize,
}

/// G1 bases resident on the device with their precomputed copies.
pub struct CudaBasesG1 {
    pub(crate) bases: ResidentBases,
}

/// G2 bases resident on the device with their precomputed copies.
pub struct CudaBasesG2 {
    pub(crate) bases: ResidentBases,
}

impl CudaBasesG1 {
    /// Device bytes held (all copies).
    pub fn device_bytes(&self) -> usize {
        self.bases.device_bytes()
    }
    /// Window bits and precomputed copies chosen for these bases.
    pub fn window_bits_and_copies(&self) -> (u32, u32) {
        (self.bases.shape().c, self.bases.shape().copies)
    }
}

impl CudaBasesG2 {
    pub fn device_bytes(&self) -> usize {
        self.bases.device_bytes()
    }
    pub fn window_bits_and_copies(&self) -> (u32, u32) {
        (self.bases.shape().c, self.bases.shape().copies)
    }
}

pub struct CudaBackend {
    pub(crate) device: Arc<CudaDevice>,
    pub(crate) exec: Arc<dyn Exec>,
    engine: MsmEngine,
    ntt: NttEngine,
    gpu: Mutex<()>,
    info: BackendInfo,
}

impl CudaBackend {
    /// Opens GPU `device_ordinal`. A box without the driver, a GPU or embedded kernels gets
    /// `BackendError::Unavailable` (never a panic); callers fall back to the CPU backend.
    pub fn new(device_ordinal: usize) -> Result<CudaBackend, BackendError> {
        let ordinal = i32::try_from(device_ordinal)
            .map_err(|_| BackendError::Unavailable(format!("no CUDA device {device_ordinal}")))?;
        let device = Arc::new(CudaDevice::open(ordinal)?);
        let exec: Arc<dyn Exec> = device.clone();
        let (major, minor) = device.compute_capability;
        let info = BackendInfo {
            kind: BackendKind::Cuda,
            name: format!("cuda: {} (sm_{major}{minor})", device.name),
            device_memory_total_bytes: Some(exec.limits().total_memory_bytes),
        };
        tracing::info!(backend = %info.name, image = device.image.label(), "CUDA backend ready");
        Ok(CudaBackend {
            engine: MsmEngine::new(exec.clone()),
            ntt: NttEngine::new(exec.clone()),
            device,
            exec,
            gpu: Mutex::new(()),
            info,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.gpu.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `load_bases_g1` with the MSM window size / copy count forced (benchmarks, tuning).
    pub fn load_bases_g1_tuned(
        &self,
        bases: &[G1Affine],
        tuning: MsmTuning,
    ) -> Result<CudaBasesG1, BackendError> {
        let _g = self.lock();
        Ok(CudaBasesG1 {
            bases: self.engine.load_bases_tuned::<G1>(bases, tuning)?,
        })
    }

    /// `load_bases_g2` with the MSM window size / copy count forced.
    pub fn load_bases_g2_tuned(
        &self,
        bases: &[G2Affine],
        tuning: MsmTuning,
    ) -> Result<CudaBasesG2, BackendError> {
        let _g = self.lock();
        Ok(CudaBasesG2 {
            bases: self.engine.load_bases_tuned::<G2>(bases, tuning)?,
        })
    }

    /// `msm_g1` with the time of each pipeline phase (synchronising between phases).
    pub fn msm_g1_profiled(
        &self,
        bases: &CudaBasesG1,
        scalars: &CudaScalars,
    ) -> Result<(G1Projective, MsmProfile), BackendError> {
        let _g = self.lock();
        let mut p = MsmProfile::default();
        let r = self.engine.msm_profiled::<G1>(
            &bases.bases,
            scalars.buf.ptr(),
            scalars.len,
            Some(&mut p),
        )?;
        Ok((r, p))
    }

    /// `msm_g2` with the time of each pipeline phase.
    pub fn msm_g2_profiled(
        &self,
        bases: &CudaBasesG2,
        scalars: &CudaScalars,
    ) -> Result<(G2Projective, MsmProfile), BackendError> {
        let _g = self.lock();
        let mut p = MsmProfile::default();
        let r = self.engine.msm_profiled::<G2>(
            &bases.bases,
            scalars.buf.ptr(),
            scalars.len,
            Some(&mut p),
        )?;
        Ok((r, p))
    }

    /// Runs `f` and returns its device time from CUDA events (milliseconds), for benchmarks.
    pub fn time_device_ms<T>(
        &self,
        f: impl FnOnce() -> Result<T, BackendError>,
    ) -> Result<(T, f64), BackendError> {
        self.device.time_ms(f)
    }
}

impl Backend for CudaBackend {
    type Scalars = CudaScalars;
    type BasesG1 = CudaBasesG1;
    type BasesG2 = CudaBasesG2;

    fn info(&self) -> BackendInfo {
        self.info.clone()
    }

    fn upload_scalars(&self, scalars: &[Fr]) -> Result<CudaScalars, BackendError> {
        let _g = self.lock();
        let bytes = fr_slice_as_bytes(scalars);
        let buf = DevBuf::new(&self.exec, bytes.len())?;
        self.exec.upload(buf.ptr(), bytes)?;
        Ok(CudaScalars {
            buf,
            len: scalars.len(),
        })
    }

    fn download_scalars(&self, scalars: &CudaScalars) -> Result<Vec<Fr>, BackendError> {
        let _g = self.lock();
        let mut out = vec![Fr::from(0u64); scalars.len];
        self.exec
            .download(scalars.buf.ptr(), fr_slice_as_bytes_mut(&mut out))?;
        Ok(out)
    }

    fn scalars_len(&self, scalars: &CudaScalars) -> usize {
        scalars.len
    }

    fn load_bases_g1(&self, bases: &[G1Affine]) -> Result<CudaBasesG1, BackendError> {
        let _g = self.lock();
        Ok(CudaBasesG1 {
            bases: self.engine.load_bases::<G1>(bases)?,
        })
    }

    fn load_bases_g2(&self, bases: &[G2Affine]) -> Result<CudaBasesG2, BackendError> {
        let _g = self.lock();
        Ok(CudaBasesG2 {
            bases: self.engine.load_bases::<G2>(bases)?,
        })
    }

    fn msm_g1(
        &self,
        bases: &CudaBasesG1,
        scalars: &CudaScalars,
    ) -> Result<G1Projective, BackendError> {
        let _g = self.lock();
        self.engine
            .msm::<G1>(&bases.bases, scalars.buf.ptr(), scalars.len)
    }

    fn msm_g2(
        &self,
        bases: &CudaBasesG2,
        scalars: &CudaScalars,
    ) -> Result<G2Projective, BackendError> {
        let _g = self.lock();
        self.engine
            .msm::<G2>(&bases.bases, scalars.buf.ptr(), scalars.len)
    }

    fn ntt(
        &self,
        data: &mut CudaScalars,
        direction: NttDirection,
        coset: Option<Fr>,
    ) -> Result<(), BackendError> {
        let _g = self.lock();
        self.ntt.ntt(data.buf.ptr(), data.len, direction, coset)
    }

    /// Fused (no bit reversal between the transforms) and batched (three vectors per launch):
    /// kernels/src/cuda/ntt.rs.
    fn interpolate_then_evaluate_on_coset(
        &self,
        vectors: &mut [&mut CudaScalars],
        coset: Fr,
    ) -> Result<(), BackendError> {
        let Some(len) = vectors.first().map(|v| v.len) else {
            return Ok(());
        };
        if vectors.iter().any(|v| v.len != len) {
            let lens: Vec<usize> = vectors.iter().map(|v| v.len).collect();
            return Err(BackendError::InvalidInput(format!(
                "coset transform vectors must have one length, got {lens:?}"
            )));
        }
        let ptrs: Vec<u64> = vectors.iter().map(|v| v.buf.ptr()).collect();
        let _g = self.lock();
        self.ntt
            .interpolate_then_evaluate_on_coset(&ptrs, len, coset)
    }

    fn mul_sub_assign(
        &self,
        a: &mut CudaScalars,
        b: &CudaScalars,
        c: &CudaScalars,
    ) -> Result<(), BackendError> {
        if a.len != b.len || a.len != c.len {
            return Err(BackendError::InvalidInput(format!(
                "mul_sub_assign needs equal lengths: a {}, b {}, c {}",
                a.len, b.len, c.len
            )));
        }
        let _g = self.lock();
        self.ntt
            .mul_sub(a.buf.ptr(), b.buf.ptr(), c.buf.ptr(), a.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine has no NVIDIA driver: the backend must refuse cleanly, never panic.
    #[test]
    fn without_a_driver_the_backend_is_unavailable() {
        // SAFETY-free probe through the public API only.
        match CudaBackend::new(0) {
            Err(BackendError::Unavailable(msg)) => {
                assert!(
                    msg.contains("no CUDA driver")
                        || msg.contains("no embedded CUDA kernels")
                        || msg.contains("no CUDA device"),
                    "{msg}"
                );
            }
            Err(e) => panic!("expected Unavailable, got {e}"),
            Ok(b) => eprintln!("a CUDA device is present here: {}", b.info().name),
        }
    }
}
