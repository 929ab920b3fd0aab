// Exclusive prefix sums of u32 arrays on the device, in three launches:
//   scan_tile_sums: block b sums its tile of SCAN_TILE values;
//   scan_block_offsets: one block scans the tile sums (and writes the grand total);
//   scan_apply: block b scans its tile locally and adds its tile offset.
// Used by the MSM counting sort (positions from histograms); generic for other kernels.
// Length and totals must stay below 2^32 (the host checks).
#pragma once
#include "prelude.cuh"

#define SCAN_THREADS 1024
#define SCAN_PER_THREAD 4
#define SCAN_TILE (SCAN_THREADS * SCAN_PER_THREAD)

/// Exclusive scan of one value per thread over the block; returns this thread's prefix and
/// sets *total. Needs 32 words of shared memory at `scratch` and blockDim.x % 32 == 0.
__device__ __forceinline__ uint32_t block_exclusive_scan(uint32_t v, uint32_t* scratch, uint32_t* total) {
    uint32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    uint32_t inc = v;
#pragma unroll
    for (unsigned d = 1; d < 32; d <<= 1) {
        uint32_t u = __shfl_up_sync(0xffffffffu, inc, d);
        if (lane >= d) inc += u;
    }
    if (lane == 31) scratch[warp] = inc;
    __syncthreads();
    if (warp == 0) {
        uint32_t w = lane < nwarps ? scratch[lane] : 0;
        uint32_t winc = w;
#pragma unroll
        for (unsigned d = 1; d < 32; d <<= 1) {
            uint32_t u = __shfl_up_sync(0xffffffffu, winc, d);
            if (lane >= d) winc += u;
        }
        scratch[lane] = winc - w;  // exclusive prefix of warp totals
        if (lane == 31) scratch[32] = winc;
    }
    __syncthreads();
    uint32_t result = scratch[warp] + inc - v;
    *total = scratch[32];
    __syncthreads();  // scratch may be reused right after
    return result;
}

/// tile_sums[b] = sum of in[b*SCAN_TILE .. +SCAN_TILE) (clipped to len).
__device__ __forceinline__ void scan_tile_sums_impl(const uint32_t* in, uint32_t len,
                                                               uint32_t* tile_sums) {
    uint32_t* scratch = reinterpret_cast<uint32_t*>(pr_shared_base());
    uint64_t base = uint64_t(blockIdx.x) * SCAN_TILE + uint64_t(threadIdx.x) * SCAN_PER_THREAD;
    uint32_t s = 0;
#pragma unroll
    for (int j = 0; j < SCAN_PER_THREAD; j++)
        if (base + j < len) s += in[base + j];
    uint32_t total;
    (void)block_exclusive_scan(s, scratch, &total);
    if (threadIdx.x == 0) tile_sums[blockIdx.x] = total;
}

/// In-place exclusive scan of sums[0..count); sums[count] = total. One block.
__device__ __forceinline__ void scan_block_offsets_impl(uint32_t* sums, uint32_t count) {
    uint32_t* scratch = reinterpret_cast<uint32_t*>(pr_shared_base());
    uint32_t carry = 0;
    for (uint64_t chunk = 0; chunk < count; chunk += blockDim.x) {
        uint64_t i = chunk + threadIdx.x;
        uint32_t v = i < count ? sums[i] : 0;
        uint32_t total;
        uint32_t ex = block_exclusive_scan(v, scratch, &total);
        if (i < count) sums[i] = carry + ex;
        carry += total;
    }
    if (threadIdx.x == 0) sums[count] = carry;
}

/// out[i] = exclusive prefix of in at i, using the scanned tile sums; out[len] = total.
/// `out` may alias `in`.
__device__ __forceinline__ void scan_apply_impl(const uint32_t* in, uint32_t len,
                                                           const uint32_t* tile_offsets,
                                                           uint32_t ntiles, uint32_t* out) {
    uint32_t* scratch = reinterpret_cast<uint32_t*>(pr_shared_base());
    uint64_t base = uint64_t(blockIdx.x) * SCAN_TILE + uint64_t(threadIdx.x) * SCAN_PER_THREAD;
    uint32_t v[SCAN_PER_THREAD];
    uint32_t s = 0;
#pragma unroll
    for (int j = 0; j < SCAN_PER_THREAD; j++) {
        v[j] = base + j < len ? in[base + j] : 0;
        s += v[j];
    }
    uint32_t total;
    uint32_t prefix = block_exclusive_scan(s, scratch, &total) + tile_offsets[blockIdx.x];
#pragma unroll
    for (int j = 0; j < SCAN_PER_THREAD; j++) {
        if (base + j < len) out[base + j] = prefix;
        prefix += v[j];
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) out[len] = tile_offsets[ntiles];
}
