// Self-tests of the SIMT emulator: kernels that use shared memory, barriers and warp
// collectives the way the real kernels do, and kernels that break the rules on purpose.
#include "../prelude.cuh"

namespace {

// Block sum: warp shuffles, then the per-warp sums through shared memory.
__global__ void block_sum_kernel(const uint32_t* in, uint32_t n, uint32_t* out) {
    uint32_t* warp_sums = reinterpret_cast<uint32_t*>(pr_shared_base());
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    uint32_t v = i < n ? in[i] : 0;
    for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
    uint32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        uint32_t nw = (blockDim.x + 31) / 32;
        uint32_t s = lane < nw ? warp_sums[lane] : 0;
        for (int d = 16; d > 0; d >>= 1) s += __shfl_xor_sync(0xffffffffu, s, d);
        if (lane == 0) out[blockIdx.x] = s;
    }
}

// Inclusive scan with __shfl_up_sync and a ballot count of odd values.
__global__ void warp_scan_kernel(const uint32_t* in, uint32_t* out, uint32_t* odd_counts) {
    uint32_t v = in[threadIdx.x];
    for (unsigned d = 1; d < 32; d <<= 1) {
        uint32_t u = __shfl_up_sync(0xffffffffu, v, d);
        if ((threadIdx.x % 32) >= d) v += u;
    }
    out[threadIdx.x] = v;
    uint32_t ballot = __ballot_sync(0xffffffffu, in[threadIdx.x] & 1);
    if (threadIdx.x % 32 == 0) odd_counts[threadIdx.x / 32] = __popc(ballot);
}

// Missing barrier: thread t reads the slot thread t+1 writes. Must fail in one run order.
__global__ void racy_kernel(uint32_t* out) {
    uint32_t* s = reinterpret_cast<uint32_t*>(pr_shared_base());
    s[threadIdx.x] = threadIdx.x + 1;
    // no __syncthreads() here on purpose
    out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

__global__ void early_exit_kernel(uint32_t* out) {
    if (threadIdx.x == 3) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

__global__ void divergent_shuffle_kernel(uint32_t* out) {
    if (threadIdx.x % 2 == 0) out[threadIdx.x] = __shfl_sync(0xffffffffu, threadIdx.x, 0);
    else __syncthreads();
}

__global__ void assert_kernel(uint32_t n) { PR_ASSERT(threadIdx.x < n, "thread index below n"); }

int copy_err(const std::string& e, char* err, size_t len) {
    std::snprintf(err, len, "%s", e.c_str());
    return e.empty() ? 0 : 1;
}

}  // namespace

extern "C" int prk_test_block_sum(const uint32_t* in, uint32_t n, uint32_t block, uint32_t* out,
                                  char* err, size_t err_len) {
    uint32_t grid = (n + block - 1) / block;
    std::string e = simt::launch(dim3(grid), dim3(block), 32 * sizeof(uint32_t), block_sum_kernel,
                                 in, n, out);
    return copy_err(e, err, err_len);
}

extern "C" int prk_test_warp_scan(const uint32_t* in, uint32_t n, uint32_t* out, uint32_t* odd,
                                  char* err, size_t err_len) {
    std::string e = simt::launch(dim3(1), dim3(n), 0, warp_scan_kernel, in, out, odd);
    return copy_err(e, err, err_len);
}

/// Runs one of the rule-breaking kernels; returns 0 when the emulator reported an error.
extern "C" int prk_test_emulator_rejects(int which, char* err, size_t err_len) {
    uint32_t out[64] = {0};
    std::string e;
    switch (which) {
        case 0: {
            e = simt::launch(dim3(1), dim3(64), 64 * sizeof(uint32_t), racy_kernel, out);
            if (e.empty()) {
                bool all_right = true;
                for (uint32_t t = 0; t < 64; t++) all_right &= out[t] == ((t + 1) % 64) + 1;
                if (!all_right) e = "racy kernel read stale shared memory (race exposed)";
            }
            break;
        }
        case 1: e = simt::launch(dim3(1), dim3(64), 0, early_exit_kernel, out); break;
        case 2: e = simt::launch(dim3(1), dim3(32), 0, divergent_shuffle_kernel, out); break;
        case 3: e = simt::launch(dim3(2), dim3(8), 0, assert_kernel, uint32_t(5)); break;
        default: return -1;
    }
    std::snprintf(err, err_len, "%s", e.c_str());
    return e.empty() ? 1 : 0;
}
