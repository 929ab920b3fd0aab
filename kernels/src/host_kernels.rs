//! The CUDA kernels compiled for the host (g++ and the SIMT emulator, kernels/cuda/simt_host.h)
//! and linked into the tests: [`EmulatedDevice`] runs the CUDA backend's drivers unchanged on
//! the CPU, and the arithmetic entry points of kernels/cuda/host/*.cpp are checked against
//! arkworks. Tests only; every `unsafe` of the host FFI is in this module.

use std::ffi::{c_char, c_void};

use crate::backend::BackendError;
use crate::cuda::exec::{DevPtr, DeviceLimits, Exec, KernelArg, LaunchDims};

type HostLaunchFn = unsafe extern "C" fn(
    *const u32,
    *const u32,
    usize,
    *mut *mut c_void,
    *mut c_char,
    usize,
) -> i32;

include!(concat!(env!("OUT_DIR"), "/host_kernels.rs"));

unsafe extern "C" {
    fn prk_host_alloc(bytes: usize) -> *mut c_void;
    fn prk_host_free(p: *mut c_void) -> i32;
    fn prk_test_fq_op(
        op: i32,
        a: *const c_void,
        b: *const c_void,
        out: *mut c_void,
        count: usize,
    ) -> i32;
    fn prk_test_fr_op(
        op: i32,
        a: *const c_void,
        b: *const c_void,
        out: *mut c_void,
        count: usize,
    ) -> i32;
    fn prk_test_fq2_op(
        op: i32,
        a: *const c_void,
        b: *const c_void,
        out: *mut c_void,
        count: usize,
    ) -> i32;
    fn prk_test_g1_op(
        op: i32,
        a: *const c_void,
        b: *const c_void,
        out: *mut c_void,
        count: usize,
    ) -> i32;
    fn prk_test_g2_op(
        op: i32,
        a: *const c_void,
        b: *const c_void,
        out: *mut c_void,
        count: usize,
    ) -> i32;
    fn prk_test_block_sum(
        input: *const u32,
        n: u32,
        block: u32,
        out: *mut u32,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
    fn prk_test_warp_scan(
        input: *const u32,
        n: u32,
        out: *mut u32,
        odd: *mut u32,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
    fn prk_test_emulator_rejects(which: i32, err: *mut c_char, err_len: usize) -> i32;
}

const ERR_LEN: usize = 512;

fn err_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A "device" whose memory is host memory and whose kernels run in the SIMT emulator.
/// Small limits keep the emulated grids small while still giving several blocks and
/// several levels of every multi-level reduction.
pub(crate) struct EmulatedDevice {
    limits: DeviceLimits,
}

impl EmulatedDevice {
    pub fn new() -> EmulatedDevice {
        EmulatedDevice::with_limits(DeviceLimits {
            sm_count: 2,
            resident_threads_per_sm: 32,
            total_memory_bytes: 1 << 32,
        })
    }

    pub fn with_limits(limits: DeviceLimits) -> EmulatedDevice {
        EmulatedDevice { limits }
    }
}

impl Exec for EmulatedDevice {
    fn limits(&self) -> DeviceLimits {
        self.limits
    }

    fn free_memory_bytes(&self) -> Result<u64, BackendError> {
        Ok(self.limits.total_memory_bytes)
    }

    fn alloc(&self, bytes: usize) -> Result<DevPtr, BackendError> {
        // SAFETY: plain allocation; returns null on failure.
        let p = unsafe { prk_host_alloc(bytes) };
        if p.is_null() {
            return Err(BackendError::OutOfMemory {
                needed_bytes: bytes as u64,
                free_bytes: 0,
            });
        }
        Ok(p as DevPtr)
    }

    fn free(&self, ptr: DevPtr) {
        // SAFETY: ptr came from prk_host_alloc (DevBuf owns it); unknown pointers are refused.
        let rc = unsafe { prk_host_free(ptr as *mut c_void) };
        assert_eq!(
            rc, 0,
            "freeing {ptr:#x}, which the emulator did not allocate"
        );
    }

    fn upload(&self, dst: DevPtr, src: &[u8]) -> Result<(), BackendError> {
        // SAFETY: dst is an emulator allocation of at least src.len() bytes (the guard page
        // turns an overrun into a crash).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
        Ok(())
    }

    fn download(&self, src: DevPtr, dst: &mut [u8]) -> Result<(), BackendError> {
        // SAFETY: as above.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    fn zero(&self, dst: DevPtr, bytes: usize) -> Result<(), BackendError> {
        // SAFETY: as above.
        unsafe { std::ptr::write_bytes(dst as *mut u8, 0, bytes) };
        Ok(())
    }

    fn launch(
        &self,
        kernel: &str,
        dims: LaunchDims,
        args: &[KernelArg],
    ) -> Result<(), BackendError> {
        let f = HOST_KERNELS
            .iter()
            .find(|(name, _)| *name == kernel)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                BackendError::Device(format!("kernel {kernel} is not compiled for the host"))
            })?;
        let mut storage: Vec<Vec<u64>> = args
            .iter()
            .map(|a| match a {
                KernelArg::Ptr(p) => vec![*p],
                KernelArg::U32(v) => vec![u64::from(*v)],
                KernelArg::Bytes(b) => {
                    let mut words = vec![0u64; b.len().div_ceil(8)];
                    for (i, byte) in b.iter().enumerate() {
                        words[i / 8] |= u64::from(*byte) << (8 * (i % 8));
                    }
                    words
                }
            })
            .collect();
        let mut params: Vec<*mut c_void> = storage
            .iter_mut()
            .map(|s| s.as_mut_ptr().cast::<c_void>())
            .collect();
        let grid = [dims.grid, 1, 1];
        let block = [dims.block, 1, 1];
        let mut err = [0u8; ERR_LEN];
        // SAFETY: the entry unpacks params by the kernel's own parameter types; each storage
        // word holds the value little-endian (u32 args read their low half), pointers are live
        // emulator allocations.
        let rc = unsafe {
            f(
                grid.as_ptr(),
                block.as_ptr(),
                dims.shared_bytes as usize,
                params.as_mut_ptr(),
                err.as_mut_ptr().cast(),
                ERR_LEN,
            )
        };
        if rc != 0 {
            return Err(BackendError::Device(format!("emulated {}", err_text(&err))));
        }
        Ok(())
    }

    fn synchronize(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// Field operations of kernels/cuda/host/arith_tests.cpp (same numbering).
#[derive(Clone, Copy, Debug)]
pub(crate) enum FieldOp {
    Add = 0,
    Sub,
    Mul,
    Sqr,
    Neg,
    Inv,
    FromMont,
    ToMont,
    Dbl,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum HostField {
    Fq,
    Fr,
    Fq2,
}

/// Runs `op` elementwise in the host build of field.cuh. Inputs are device words.
pub(crate) fn field_op(field: HostField, op: FieldOp, a: &[u32], b: &[u32]) -> Vec<u32> {
    let width = match field {
        HostField::Fq | HostField::Fr => 8,
        HostField::Fq2 => 16,
    };
    assert!(a.len() == b.len() && a.len().is_multiple_of(width));
    let mut out = vec![0u32; a.len()];
    let f = match field {
        HostField::Fq => prk_test_fq_op,
        HostField::Fr => prk_test_fr_op,
        HostField::Fq2 => prk_test_fq2_op,
    };
    // SAFETY: three buffers of a.len() words, count elements of `width` words each.
    let rc = unsafe {
        f(
            op as i32,
            a.as_ptr().cast(),
            b.as_ptr().cast(),
            out.as_mut_ptr().cast(),
            a.len() / width,
        )
    };
    assert_eq!(rc, 0, "host field op failed");
    out
}

/// Curve operations of arith_tests.cpp: a is XYZZ, b is XYZZ (Add) or affine (the others).
#[derive(Clone, Copy, Debug)]
pub(crate) enum CurveOp {
    AddAffine = 0,
    Add,
    Dbl,
    DblAffine,
}

pub(crate) fn curve_op(g2: bool, op: CurveOp, a: &[u32], b: &[u32], count: usize) -> Vec<u32> {
    let field_words = if g2 { 16 } else { 8 };
    let xyzz = 4 * field_words;
    let b_width = match op {
        CurveOp::Add => xyzz,
        _ => 2 * field_words,
    };
    assert_eq!(a.len(), count * xyzz);
    assert_eq!(b.len(), count * b_width);
    let mut out = vec![0u32; count * xyzz];
    let f = if g2 { prk_test_g2_op } else { prk_test_g1_op };
    // SAFETY: buffers sized for `count` points of the layouts above.
    let rc = unsafe {
        f(
            op as i32,
            a.as_ptr().cast(),
            b.as_ptr().cast(),
            out.as_mut_ptr().cast(),
            count,
        )
    };
    assert_eq!(rc, 0, "host curve op failed");
    out
}

/// Emulator self-tests (kernels/cuda/host/emulator_tests.cpp).
pub(crate) fn block_sum(input: &[u32], block: u32) -> Result<Vec<u32>, String> {
    let blocks = input.len().div_ceil(block as usize);
    let mut out = vec![0u32; blocks];
    let mut err = [0u8; ERR_LEN];
    // SAFETY: input of n values, out of one value per block.
    let rc = unsafe {
        prk_test_block_sum(
            input.as_ptr(),
            input.len() as u32,
            block,
            out.as_mut_ptr(),
            err.as_mut_ptr().cast(),
            ERR_LEN,
        )
    };
    if rc == 0 {
        Ok(out)
    } else {
        Err(err_text(&err))
    }
}

pub(crate) fn warp_scan(input: &[u32]) -> Result<(Vec<u32>, Vec<u32>), String> {
    let mut out = vec![0u32; input.len()];
    let mut odd = vec![0u32; input.len().div_ceil(32)];
    let mut err = [0u8; ERR_LEN];
    // SAFETY: one block of input.len() threads; out and odd sized for it.
    let rc = unsafe {
        prk_test_warp_scan(
            input.as_ptr(),
            input.len() as u32,
            out.as_mut_ptr(),
            odd.as_mut_ptr(),
            err.as_mut_ptr().cast(),
            ERR_LEN,
        )
    };
    if rc == 0 {
        Ok((out, odd))
    } else {
        Err(err_text(&err))
    }
}

/// Runs rule-breaking kernel `which`; Ok(message) when the emulator caught it.
pub(crate) fn emulator_rejects(which: i32) -> Result<String, String> {
    let mut err = [0u8; ERR_LEN];
    // SAFETY: writes at most ERR_LEN bytes.
    let rc = unsafe { prk_test_emulator_rejects(which, err.as_mut_ptr().cast(), ERR_LEN) };
    match rc {
        0 => Ok(err_text(&err)),
        _ => Err(format!("kernel {which} was not rejected")),
    }
}

#[cfg(test)]
mod tests;
