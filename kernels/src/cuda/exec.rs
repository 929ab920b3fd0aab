//! What the CUDA backend's drivers (MSM here, NTT later) need from a device: memory and
//! kernel launches by name. Two implementations: the CUDA driver (`ffi::CudaDevice`) and,
//! in tests, the host SIMT emulator running the same kernel sources
//! (`crate::host_kernels::EmulatedDevice`). Every driver is written once against [`Exec`],
//! so the tests exercise the exact launch sequence the GPU runs.
//!
//! Work is ordered: launches, copies and memsets run in the order issued (one stream);
//! `download` waits for everything issued before it.

use std::sync::Arc;

use crate::backend::BackendError;

/// A device address (CUdeviceptr on CUDA, a host address in the emulator).
pub(crate) type DevPtr = u64;

/// One kernel argument, passed by value as cuLaunchKernel expects.
#[derive(Clone, Debug)]
pub(crate) enum KernelArg {
    Ptr(DevPtr),
    U32(u32),
    /// A `#[repr(C)]` struct's bytes (e.g. `msm_plan_t`).
    Bytes(Vec<u8>),
}

/// Launch geometry: 1-D grid and block, dynamic shared memory in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LaunchDims {
    pub grid: u32,
    pub block: u32,
    pub shared_bytes: u32,
}

impl LaunchDims {
    /// Enough blocks of `block` threads to cover `threads` threads.
    pub fn cover(threads: u64, block: u32, shared_bytes: u32) -> LaunchDims {
        assert!(
            block > 0 && block <= 1024,
            "block size {block} out of range"
        );
        let grid = threads.div_ceil(u64::from(block)).max(1);
        assert!(
            grid < (1u64 << 31),
            "grid of {grid} blocks exceeds CUDA's 2^31-1"
        );
        LaunchDims {
            grid: grid as u32,
            block,
            shared_bytes,
        }
    }
}

/// Facts about the device that size launches and allocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeviceLimits {
    pub sm_count: u32,
    /// Threads of a register-heavy kernel (the MSM accumulation) resident per SM.
    pub resident_threads_per_sm: u32,
    pub total_memory_bytes: u64,
}

pub(crate) trait Exec: Send + Sync {
    fn limits(&self) -> DeviceLimits;
    /// Free device memory now.
    fn free_memory_bytes(&self) -> Result<u64, BackendError>;
    fn alloc(&self, bytes: usize) -> Result<DevPtr, BackendError>;
    /// Frees after all issued work completed. Never fails loudly: errors are logged.
    fn free(&self, ptr: DevPtr);
    fn upload(&self, dst: DevPtr, src: &[u8]) -> Result<(), BackendError>;
    fn download(&self, src: DevPtr, dst: &mut [u8]) -> Result<(), BackendError>;
    fn zero(&self, dst: DevPtr, bytes: usize) -> Result<(), BackendError>;
    fn launch(
        &self,
        kernel: &str,
        dims: LaunchDims,
        args: &[KernelArg],
    ) -> Result<(), BackendError>;
    /// Waits for all issued work and reports any asynchronous kernel error.
    fn synchronize(&self) -> Result<(), BackendError>;
}

/// An owned device allocation, freed on drop.
pub(crate) struct DevBuf {
    ptr: DevPtr,
    bytes: usize,
    exec: Arc<dyn Exec>,
}

impl DevBuf {
    pub fn new(exec: &Arc<dyn Exec>, bytes: usize) -> Result<DevBuf, BackendError> {
        // zero-sized allocations get one word so every buffer has a valid address
        let ptr = exec.alloc(bytes.max(16))?;
        Ok(DevBuf {
            ptr,
            bytes,
            exec: exec.clone(),
        })
    }

    pub fn ptr(&self) -> DevPtr {
        self.ptr
    }

    /// Address `offset` bytes in; the offset must lie within the buffer.
    pub fn at(&self, offset: usize) -> DevPtr {
        assert!(
            offset <= self.bytes,
            "offset {offset} past a {}-byte buffer",
            self.bytes
        );
        self.ptr + offset as u64
    }

    pub fn len_bytes(&self) -> usize {
        self.bytes
    }

    pub fn arg(&self) -> KernelArg {
        KernelArg::Ptr(self.ptr)
    }
}

impl Drop for DevBuf {
    fn drop(&mut self) {
        self.exec.free(self.ptr);
    }
}

impl std::fmt::Debug for DevBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DevBuf({:#x}, {} bytes)", self.ptr, self.bytes)
    }
}
