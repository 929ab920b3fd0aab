//! Every `unsafe` of the CUDA backend: the CUDA driver through cudarc's dynamically loaded
//! bindings, and byte views of plain-old-data slices.
//!
//! The driver library is never touched before `is_culib_present()` says it can be loaded:
//! cudarc panics when a missing library is first used, and a box without a GPU must get an
//! error it can report instead.

use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::sync::Mutex;

use cudarc::driver::result as cu;
use cudarc::driver::sys;

use super::embedded::{ImageKind, EMBEDDED_MODULES};
use super::exec::{DevPtr, DeviceLimits, Exec, KernelArg, LaunchDims};
use crate::backend::BackendError;
use crate::curve::Fr;

/// u32 words as bytes (no padding, any bit pattern valid).
pub(crate) fn words_as_bytes(words: &[u32]) -> &[u8] {
    // SAFETY: u32 has no padding; the byte view covers exactly the same memory.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(words)) }
}

pub(crate) fn words_as_bytes_mut(words: &mut [u32]) -> &mut [u8] {
    // SAFETY: as above, and every byte pattern is a valid u32.
    unsafe {
        std::slice::from_raw_parts_mut(
            words.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(words),
        )
    }
}

// arkworks' Fr is `Fp(BigInt([u64; 4]), PhantomData)`: 32 bytes of little-endian Montgomery
// limbs, which is the device layout (layout.rs tests the byte equality).
const _: () = assert!(std::mem::size_of::<Fr>() == 32 && std::mem::align_of::<Fr>() == 8);

/// Fr values as their 32-byte Montgomery representations, without copying.
pub(crate) fn fr_slice_as_bytes(values: &[Fr]) -> &[u8] {
    // SAFETY: Fr is 32 bytes of plain u64 limbs (checked above), no padding, no pointers.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

/// Fr values filled from device bytes. Every byte pattern is a valid `Fr` representation in
/// memory; the kernels only ever write reduced Montgomery values.
pub(crate) fn fr_slice_as_bytes_mut(values: &mut [Fr]) -> &mut [u8] {
    // SAFETY: as above; Fr has no invalid bit patterns at the memory level.
    unsafe {
        std::slice::from_raw_parts_mut(
            values.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(values),
        )
    }
}

fn driver_error(what: &str, e: cu::DriverError) -> BackendError {
    BackendError::Device(format!("{what}: {e:?}"))
}

/// One CUDA device with its primary context, one stream and the embedded modules loaded.
pub(crate) struct CudaDevice {
    ctx: sys::CUcontext,
    stream: sys::CUstream,
    functions: HashMap<&'static str, sys::CUfunction>,
    limits: DeviceLimits,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub image: ImageKind,
    /// `PROOFRACK_CUDA_SYNC_EACH_LAUNCH=1`: wait after every launch so an execution error
    /// names its kernel (slow; for diagnosing).
    sync_each_launch: bool,
    /// Serialises driver calls that must not interleave across threads (launch argument
    /// marshalling is per call; the stream orders the work itself).
    call_lock: Mutex<()>,
}

// SAFETY: the raw handles are process-wide driver objects; every use sets the context on
// the calling thread first and goes through `call_lock`.
unsafe impl Send for CudaDevice {}
// SAFETY: as above.
unsafe impl Sync for CudaDevice {}

impl CudaDevice {
    /// Opens device `ordinal`: driver present, device exists, compute capability 8.0+,
    /// embedded kernels loaded.
    pub fn open(ordinal: i32) -> Result<CudaDevice, BackendError> {
        if EMBEDDED_MODULES.iter().any(|m| m.cubin_sm90.is_empty()) {
            return Err(BackendError::Unavailable(
                "this build has no embedded CUDA kernels (built without NVRTC)".into(),
            ));
        }
        // SAFETY: only probes whether the library can be loaded.
        if !unsafe { sys::is_culib_present() } {
            return Err(BackendError::Unavailable(
                "no CUDA driver, using the CPU backend".into(),
            ));
        }
        cu::init()
            .map_err(|e| BackendError::Unavailable(format!("CUDA driver init failed: {e:?}")))?;
        let count = cu::device::get_count().map_err(|e| driver_error("cuDeviceGetCount", e))?;
        if ordinal < 0 || ordinal >= count {
            return Err(BackendError::Unavailable(format!(
                "no CUDA device {ordinal} (this box has {count})"
            )));
        }
        let dev = cu::device::get(ordinal).map_err(|e| driver_error("cuDeviceGet", e))?;
        let attr = |a: sys::CUdevice_attribute| -> Result<i32, BackendError> {
            // SAFETY: dev came from cuDeviceGet.
            unsafe { cu::device::get_attribute(dev, a) }
                .map_err(|e| driver_error("cuDeviceGetAttribute", e))
        };
        let major = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        let sm_count = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
        let name = cu::device::get_name(dev).map_err(|e| driver_error("cuDeviceGetName", e))?;
        let image = ImageKind::for_compute_capability(major, minor).ok_or_else(|| {
            BackendError::Unavailable(format!(
                "{name} is sm_{major}{minor}; the kernels need sm_80 or newer"
            ))
        })?;
        // SAFETY: dev came from cuDeviceGet.
        let total = unsafe { cu::device::total_mem(dev) }
            .map_err(|e| driver_error("cuDeviceTotalMem", e))?;
        // SAFETY: dev is valid; the primary context is retained for the process lifetime.
        let ctx = unsafe { cu::primary_ctx::retain(dev) }
            .map_err(|e| driver_error("cuDevicePrimaryCtxRetain", e))?;
        // SAFETY: ctx was just retained.
        unsafe { cu::ctx::set_current(ctx) }.map_err(|e| driver_error("cuCtxSetCurrent", e))?;
        let stream = cu::stream::create(cu::stream::StreamKind::NonBlocking)
            .map_err(|e| driver_error("cuStreamCreate", e))?;
        let mut functions = HashMap::new();
        for m in EMBEDDED_MODULES {
            let bytes = image.image(m).inflate().map_err(|e| {
                BackendError::Unavailable(format!(
                    "module {} ({}): {e}; reinstall the binary",
                    m.name,
                    image.label()
                ))
            })?;
            // SAFETY: the image is a complete cubin or NUL-terminated PTX embedded at build time
            // (inflated to its built length above); the driver copies it before returning.
            let module = unsafe { cu::module::load_data(bytes.as_ptr().cast::<c_void>()) }
                .map_err(|e| {
                    driver_error(
                        &format!(
                            "loading module {} ({}) on sm_{major}{minor}",
                            m.name,
                            image.label()
                        ),
                        e,
                    )
                })?;
            for &k in m.kernels {
                let cname = CString::new(k).expect("kernel names have no NUL");
                // SAFETY: module was just loaded.
                let f = unsafe { cu::module::get_function(module, cname) }.map_err(|e| {
                    driver_error(&format!("kernel {k} missing from module {}", m.name), e)
                })?;
                functions.insert(k, f);
            }
        }
        // Threads of the register-heaviest hot kernel (G1 accumulation) resident per SM.
        let resident = match functions.get("msm_accumulate_g1") {
            Some(&f) => {
                // SAFETY: f is a loaded kernel.
                let blocks =
                    unsafe { cu::occupancy::max_active_block_per_multiprocessor(f, 128, 0) }
                        .map_err(|e| {
                            driver_error("cuOccupancyMaxActiveBlocksPerMultiprocessor", e)
                        })?;
                (blocks.max(1) as u32) * 128
            }
            None => 512,
        };
        Ok(CudaDevice {
            ctx,
            stream,
            functions,
            limits: DeviceLimits {
                sm_count: sm_count.max(1) as u32,
                resident_threads_per_sm: resident,
                total_memory_bytes: total as u64,
            },
            name,
            compute_capability: (major, minor),
            image,
            sync_each_launch: std::env::var("PROOFRACK_CUDA_SYNC_EACH_LAUNCH").as_deref()
                == Ok("1"),
            call_lock: Mutex::new(()),
        })
    }

    fn enter(&self) -> Result<std::sync::MutexGuard<'_, ()>, BackendError> {
        let guard = self.call_lock.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: ctx is the retained primary context of this device.
        unsafe { cu::ctx::set_current(self.ctx) }
            .map_err(|e| driver_error("cuCtxSetCurrent", e))?;
        Ok(guard)
    }

    /// Device-side timing of `f` with CUDA events around it (milliseconds).
    pub fn time_ms<T>(
        &self,
        f: impl FnOnce() -> Result<T, BackendError>,
    ) -> Result<(T, f64), BackendError> {
        let (start, end) = {
            let _g = self.enter()?;
            let flags = sys::CUevent_flags::CU_EVENT_DEFAULT;
            let start = cu::event::create(flags).map_err(|e| driver_error("cuEventCreate", e))?;
            let end = cu::event::create(flags).map_err(|e| driver_error("cuEventCreate", e))?;
            // SAFETY: live event and stream.
            unsafe { cu::event::record(start, self.stream) }
                .map_err(|e| driver_error("cuEventRecord", e))?;
            (start, end)
        };
        let out = f()?;
        let _g = self.enter()?;
        // SAFETY: live events and stream; events destroyed once after use.
        let ms = unsafe {
            cu::event::record(end, self.stream).map_err(|e| driver_error("cuEventRecord", e))?;
            cu::event::synchronize(end).map_err(|e| driver_error("cuEventSynchronize", e))?;
            let ms = cu::event::elapsed(start, end)
                .map_err(|e| driver_error("cuEventElapsedTime", e))?;
            let _ = cu::event::destroy(start);
            let _ = cu::event::destroy(end);
            ms
        };
        Ok((out, f64::from(ms)))
    }
}

impl Exec for CudaDevice {
    fn limits(&self) -> DeviceLimits {
        self.limits
    }

    fn free_memory_bytes(&self) -> Result<u64, BackendError> {
        let _g = self.enter()?;
        let (free, _total) = cu::mem_get_info().map_err(|e| driver_error("cuMemGetInfo", e))?;
        Ok(free as u64)
    }

    fn alloc(&self, bytes: usize) -> Result<DevPtr, BackendError> {
        let _g = self.enter()?;
        // SAFETY: plain allocation; the memory is uninitialised and only used as raw bytes.
        match unsafe { cu::malloc_sync(bytes) } {
            Ok(p) => Ok(p),
            Err(e) if e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY => {
                let free = cu::mem_get_info().map(|(f, _)| f as u64).unwrap_or(0);
                Err(BackendError::OutOfMemory {
                    needed_bytes: bytes as u64,
                    free_bytes: free,
                })
            }
            Err(e) => Err(driver_error(&format!("cuMemAlloc({bytes})"), e)),
        }
    }

    fn free(&self, ptr: DevPtr) {
        let Ok(_g) = self.enter() else { return };
        // SAFETY: the stream and pointer are live; synchronising first makes sure no issued
        // kernel still uses the memory.
        unsafe {
            if let Err(e) = cu::stream::synchronize(self.stream) {
                tracing::warn!(error = ?e, "cuStreamSynchronize before cuMemFree failed");
            }
            if let Err(e) = cu::free_sync(ptr) {
                tracing::warn!(error = ?e, "cuMemFree failed");
            }
        }
    }

    fn upload(&self, dst: DevPtr, src: &[u8]) -> Result<(), BackendError> {
        let _g = self.enter()?;
        // The copy goes on our stream, so later kernels are ordered after it. A synchronous
        // cuMemcpyHtoD would run on the legacy stream, which does not order with a
        // non-blocking stream, and from pageable memory it returns before its DMA lands:
        // kernels launched next could read a half-copied buffer (seen on an H200).
        // SAFETY: dst was allocated with at least src.len() bytes by the caller (DevBuf);
        // the stream is synchronised before returning, so the copy does not outlive `src`.
        unsafe {
            cu::memcpy_htod_async(dst, src, self.stream)
                .map_err(|e| driver_error("cuMemcpyHtoDAsync", e))?;
            cu::stream::synchronize(self.stream)
                .map_err(|e| driver_error("cuStreamSynchronize after an upload", e))
        }
    }

    fn download(&self, src: DevPtr, dst: &mut [u8]) -> Result<(), BackendError> {
        let _g = self.enter()?;
        // SAFETY: src holds at least dst.len() bytes; the copy is ordered after all issued
        // work on the stream, and the stream is synchronised before `dst` is used.
        unsafe {
            cu::memcpy_dtoh_async(dst, src, self.stream)
                .map_err(|e| driver_error("cuMemcpyDtoHAsync", e))?;
            cu::stream::synchronize(self.stream)
                .map_err(|e| driver_error("kernel execution or download", e))
        }
    }

    fn zero(&self, dst: DevPtr, bytes: usize) -> Result<(), BackendError> {
        let _g = self.enter()?;
        // SAFETY: dst holds at least `bytes` bytes (caller's DevBuf); ordered on the stream.
        unsafe { cu::memset_d8_async(dst, 0, bytes, self.stream) }
            .map_err(|e| driver_error("cuMemsetD8Async", e))
    }

    fn launch(
        &self,
        kernel: &str,
        dims: LaunchDims,
        args: &[KernelArg],
    ) -> Result<(), BackendError> {
        let f = *self.functions.get(kernel).ok_or_else(|| {
            BackendError::Device(format!("kernel {kernel} is not in the embedded modules"))
        })?;
        // cuLaunchKernel copies the argument values during the call: they only need to live
        // until it returns.
        let mut storage: Vec<Vec<u8>> = args
            .iter()
            .map(|a| match a {
                KernelArg::Ptr(p) => p.to_ne_bytes().to_vec(),
                KernelArg::U32(v) => v.to_ne_bytes().to_vec(),
                KernelArg::Bytes(b) => b.clone(),
            })
            .collect();
        let mut params: Vec<*mut c_void> = storage
            .iter_mut()
            .map(|s| s.as_mut_ptr().cast::<c_void>())
            .collect();
        let _g = self.enter()?;
        // SAFETY: f is a loaded kernel whose parameter list matches `args` (msm.rs mirrors
        // msm.cu); every pointer argument is a live device allocation.
        unsafe {
            cu::launch_kernel(
                f,
                (dims.grid, 1, 1),
                (dims.block, 1, 1),
                dims.shared_bytes,
                self.stream,
                &mut params,
            )
        }
        .map_err(|e| driver_error(&format!("launching {kernel} ({dims:?})"), e))?;
        // Launch errors are the result above; execution errors surface at the next
        // synchronisation, or right here in debug mode so they name the kernel.
        if self.sync_each_launch {
            // SAFETY: live stream.
            unsafe { cu::stream::synchronize(self.stream) }
                .map_err(|e| driver_error(&format!("executing {kernel} ({dims:?})"), e))?;
        }
        Ok(())
    }

    fn synchronize(&self) -> Result<(), BackendError> {
        let _g = self.enter()?;
        // SAFETY: live stream.
        unsafe { cu::stream::synchronize(self.stream) }
            .map_err(|e| driver_error("kernel execution", e))
    }
}
