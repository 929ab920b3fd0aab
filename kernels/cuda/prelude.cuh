// First include of every kernel source. One source of truth for device (NVRTC) and host
// (g++ with the SIMT emulator) builds:
// - device: NVRTC ships no standard headers, so the fixed-width types are defined here;
// - host: simt_host.h defines the CUDA keywords and built-ins.
// Inline PTX is only ever written under `#ifdef __CUDA_ARCH__`, with a portable fallback.
#pragma once

#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
#define PR_DEVICE_BUILD 1
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef int int32_t;
typedef unsigned long long uint64_t;
typedef long long int64_t;
typedef unsigned long long size_t_;
#else
#define PR_DEVICE_BUILD 0
#include "simt_host.h"
#endif

#define PR_HD __host__ __device__ __forceinline__

// Invariant checks inside kernels: a broken one is a programmer error. On the device the
// kernel traps (the launch fails and the backend reports a device error); in the emulator the
// launch returns the message.
#if PR_DEVICE_BUILD
#define PR_ASSERT(cond, msg) \
    do {                     \
        if (!(cond)) __trap(); \
    } while (0)
__device__ __forceinline__ unsigned char* pr_shared_base() {
    extern __shared__ __align__(16) unsigned char pr_dynamic_shared[];
    return pr_dynamic_shared;
}
#else
#define PR_ASSERT(cond, msg)                                                      \
    do {                                                                          \
        if (!(cond)) throw simt::KernelTrap(std::string("PR_ASSERT failed: ") + msg); \
    } while (0)
#endif

// Every kernel the Rust side launches is declared with PR_KERNEL and exported with
// PR_EXPORT_KERNEL(name) right after its definition. build.rs scans the sources for
// PR_EXPORT_KERNEL to list each module's kernels; on the host the macro also emits the
// cuLaunchKernel-style entry `prk_host_launch_<name>` the emulator executor calls.
#define PR_KERNEL extern "C" __global__
#if PR_DEVICE_BUILD
#define PR_EXPORT_KERNEL(name)
#else
#define PR_EXPORT_KERNEL(name)                                                          \
    extern "C" int prk_host_launch_##name(const unsigned* grid, const unsigned* block,  \
                                          size_t shared_bytes, void** params, char* err, \
                                          size_t err_len) {                             \
        std::string e = simt::launch_packed(dim3(grid[0], grid[1], grid[2]),            \
                                            dim3(block[0], block[1], block[2]),         \
                                            shared_bytes, &name, params);               \
        if (e.empty()) return 0;                                                        \
        std::snprintf(err, err_len, "%s: %s", #name, e.c_str());                        \
        return 1;                                                                       \
    }
#endif
