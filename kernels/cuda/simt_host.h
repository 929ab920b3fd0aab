// Host emulation of the CUDA SIMT model, so every kernel runs on a CPU in tests.
//
// Kernels are ordinary CUDA C++ (see prelude.cuh). For the host build (g++ -std=c++20) this
// header defines the CUDA keywords and built-ins, and `simt::launch` runs a grid:
//
// - Blocks run one after another (no kernel may wait on another block: no inter-block
//   spin-waits, which is also what CUDA guarantees).
// - The threads of a block are fibers (ucontext) on the launching OS thread. A fiber runs until
//   it reaches a block barrier (__syncthreads), a warp collective (__shfl_*_sync,
//   __ballot_sync, __syncwarp) or its end; the scheduler then resumes the others. Warp
//   collectives are resolved once every live lane of the warp has arrived; a barrier is
//   released once every thread of the block has arrived.
// - Between two barriers the threads run in forward order on even phases and in reverse order
//   on odd ones, so a read of shared memory written by another thread without a barrier in
//   between sees a stale value in one of the two orders and the kernel test fails.
// - Strictness: a thread that exits while others wait at __syncthreads, or a warp collective
//   that not all live lanes of the warp reach, is reported as an error (CUDA calls both
//   undefined behaviour).
// - Dynamic shared memory (pr_shared_base()) is a per-block buffer filled with 0xA5 before
//   each block, so a kernel that reads shared memory it never wrote sees garbage here too.
// - PR_ASSERT failures and emulator errors are C++ exceptions inside the fiber; the launch
//   returns them as a message (the device build traps instead).
//
// Launches are serialised process-wide (one mutex): `static` shared variables and the
// built-in index variables are then never shared by two running grids.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#error "simt_host.h is the host emulation; device builds must not include it"
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <tuple>
#include <ucontext.h>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) alignas(n)
#define __shared__ static

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) uint4 {
    unsigned int x, y, z, w;
};
struct alignas(8) uint2 {
    unsigned int x, y;
};

inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
static constexpr int warpSize = 32;

namespace simt {

/// A kernel-side failure (PR_ASSERT, emulator rule broken). Carries the message to the launch.
struct KernelTrap : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class FiberState { Runnable, AtBlockBarrier, AtWarpCollective, Done };

enum class WarpOp { Shfl, ShflUp, ShflDown, ShflXor, Ballot, Any, All, Sync };

struct Fiber {
    ucontext_t ctx{};
    char* stack = nullptr;
    uint3 tid{0, 0, 0};
    unsigned linear = 0;
    FiberState state = FiberState::Done;
    // warp collective in flight
    WarpOp op = WarpOp::Sync;
    uint32_t mask = 0;
    uint32_t value = 0;
    int arg = 0;
    int width = 32;
    uint32_t result = 0;
};

/// Fiber stacks are large (G2 arithmetic keeps big frames) and reserved lazily by the kernel.
static constexpr size_t kFiberStackBytes = 512 * 1024;
/// CUDA's limit on threads per block.
static constexpr unsigned kMaxBlockThreads = 1024;
/// The largest dynamic shared memory a block may ask for (sm_90 allows 227 KiB).
static constexpr size_t kMaxSharedBytes = 227 * 1024;

struct BlockRun {
    std::vector<Fiber> fibers;
    ucontext_t scheduler{};
    Fiber* current = nullptr;
    std::string error;
    void (*body)(void*) = nullptr;
    void* body_arg = nullptr;
    unsigned phase = 0;
    std::vector<unsigned char> shared;
};

inline thread_local BlockRun* tl_run = nullptr;

inline std::mutex& launch_mutex() {
    static std::mutex m;
    return m;
}

inline std::vector<char*>& stack_pool() {
    static std::vector<char*> pool;
    return pool;
}

inline char* take_stack() {
    auto& pool = stack_pool();
    if (!pool.empty()) {
        char* s = pool.back();
        pool.pop_back();
        return s;
    }
    void* p = mmap(nullptr, kFiberStackBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        std::fprintf(stderr, "simt: cannot map a fiber stack\n");
        std::abort();
    }
    return static_cast<char*>(p);
}

inline void give_stack(char* s) { stack_pool().push_back(s); }

/// Switches from the running fiber back to the scheduler (the fiber has set its state).
inline void yield_to_scheduler() {
    BlockRun* run = tl_run;
    Fiber* self = run->current;
    swapcontext(&self->ctx, &run->scheduler);
    // resumed: the scheduler has restored this fiber's built-in indices
}

inline void fiber_entry() {
    BlockRun* run = tl_run;
    try {
        run->body(run->body_arg);
    } catch (const std::exception& e) {
        if (run->error.empty()) {
            char where[96];
            std::snprintf(where, sizeof where, " (block %u,%u thread %u,%u)", blockIdx.x,
                          blockIdx.y, threadIdx.x, threadIdx.y);
            run->error = std::string(e.what()) + where;
        }
    }
    run->current->state = FiberState::Done;
    // uc_link returns to the scheduler
}

inline unsigned lane_of(const Fiber& f) { return f.linear % 32; }

/// Resolves one warp collective: every live lane of the warp is waiting on it.
inline void resolve_warp(std::vector<Fiber*>& lanes) {
    WarpOp op = lanes[0]->op;
    uint32_t live_mask = 0;
    for (Fiber* f : lanes) live_mask |= 1u << lane_of(*f);
    for (Fiber* f : lanes) {
        if (f->op != op) throw KernelTrap("warp lanes reached different warp collectives");
        if ((f->mask & live_mask) != live_mask)
            throw KernelTrap("warp collective mask leaves out a live lane of the warp");
    }
    uint32_t values[32] = {0};
    bool present[32] = {false};
    for (Fiber* f : lanes) {
        values[lane_of(*f)] = f->value;
        present[lane_of(*f)] = true;
    }
    uint32_t ballot = 0;
    for (Fiber* f : lanes)
        if (f->value) ballot |= 1u << lane_of(*f);
    for (Fiber* f : lanes) {
        unsigned lane = lane_of(*f);
        int width = f->width;
        if (width <= 0 || width > 32 || (width & (width - 1)))
            throw KernelTrap("shuffle width must be a power of two up to 32");
        unsigned seg = lane & ~unsigned(width - 1);
        int src = int(lane);
        switch (op) {
            case WarpOp::Shfl: src = int(seg) + (f->arg & (width - 1)); break;
            case WarpOp::ShflUp:
                src = int(lane) - f->arg;
                if (src < int(seg)) src = int(lane);
                break;
            case WarpOp::ShflDown:
                src = int(lane) + f->arg;
                if (src >= int(seg) + width) src = int(lane);
                break;
            case WarpOp::ShflXor:
                src = int(lane) ^ f->arg;
                if (src < int(seg) || src >= int(seg) + width) src = int(lane);
                break;
            default: break;
        }
        switch (op) {
            case WarpOp::Shfl:
            case WarpOp::ShflUp:
            case WarpOp::ShflDown:
            case WarpOp::ShflXor:
                if (!present[src]) throw KernelTrap("shuffle reads a lane that has exited");
                f->result = values[src];
                break;
            case WarpOp::Ballot: f->result = ballot; break;
            case WarpOp::Any: f->result = ballot != 0; break;
            case WarpOp::All: f->result = ballot == live_mask; break;
            case WarpOp::Sync: f->result = 0; break;
        }
        f->state = FiberState::Runnable;
    }
}

/// Runs one block to completion; returns an error message or "".
inline std::string run_block(BlockRun& run, dim3 block) {
    unsigned nthreads = block.x * block.y * block.z;
    run.fibers.resize(nthreads);
    for (unsigned i = 0; i < nthreads; i++) {
        Fiber& f = run.fibers[i];
        f.linear = i;
        f.tid = uint3{i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
        if (!f.stack) f.stack = take_stack();
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack;
        f.ctx.uc_stack.ss_size = kFiberStackBytes;
        f.ctx.uc_link = &run.scheduler;
        makecontext(&f.ctx, fiber_entry, 0);
        f.state = FiberState::Runnable;
    }
    run.phase = 0;
    unsigned nwarps = (nthreads + 31) / 32;
    std::vector<Fiber*> waiting;
    for (;;) {
        bool forward = (run.phase % 2) == 0;
        for (unsigned wi = 0; wi < nwarps; wi++) {
            unsigned w = forward ? wi : nwarps - 1 - wi;
            unsigned lo = w * 32, hi = std::min(nthreads, lo + 32);
            for (;;) {
                for (unsigned li = lo; li < hi; li++) {
                    unsigned t = forward ? li : hi - 1 - (li - lo);
                    Fiber& f = run.fibers[t];
                    if (f.state != FiberState::Runnable) continue;
                    threadIdx = f.tid;
                    run.current = &f;
                    swapcontext(&run.scheduler, &f.ctx);
                    run.current = nullptr;
                    if (!run.error.empty()) return run.error;
                }
                waiting.clear();
                bool others = false;
                for (unsigned t = lo; t < hi; t++) {
                    Fiber& f = run.fibers[t];
                    if (f.state == FiberState::AtWarpCollective) waiting.push_back(&f);
                    else if (f.state != FiberState::Done) others = true;
                }
                if (waiting.empty()) break;
                if (others)
                    return "warp collective reached by some live lanes of a warp while others "
                           "wait at __syncthreads (divergent collective)";
                try {
                    resolve_warp(waiting);
                } catch (const std::exception& e) {
                    return e.what();
                }
            }
        }
        unsigned at_barrier = 0, done = 0;
        for (auto& f : run.fibers) {
            if (f.state == FiberState::AtBlockBarrier) at_barrier++;
            else if (f.state == FiberState::Done) done++;
        }
        if (done == nthreads) return "";
        if (at_barrier + done != nthreads) return "emulator scheduler stalled (internal error)";
        if (done != 0)
            return "some threads exited while others wait at __syncthreads (a barrier must be "
                   "reached by every thread of the block)";
        for (auto& f : run.fibers) f.state = FiberState::Runnable;
        run.phase++;
    }
}

template <typename F>
inline void invoke_body(void* p) {
    (*static_cast<F*>(p))();
}

/// Runs `body()` as every thread of every block of the grid. Returns "" or the first error.
template <typename F>
inline std::string launch_fn(dim3 grid, dim3 block, size_t shared_bytes, F body) {
    unsigned nthreads = block.x * block.y * block.z;
    if (nthreads == 0 || nthreads > kMaxBlockThreads) return "block size must be 1..1024 threads";
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return "grid dimensions must be at least 1";
    if (shared_bytes > kMaxSharedBytes) return "dynamic shared memory above 227 KiB";
    std::lock_guard<std::mutex> guard(launch_mutex());
    BlockRun run;
    run.body = &invoke_body<F>;
    run.body_arg = &body;
    run.shared.resize(shared_bytes ? shared_bytes : 16);
    BlockRun* saved = tl_run;
    tl_run = &run;
    gridDim = grid;
    blockDim = block;
    std::string err;
    for (unsigned bz = 0; bz < grid.z && err.empty(); bz++)
        for (unsigned by = 0; by < grid.y && err.empty(); by++)
            for (unsigned bx = 0; bx < grid.x && err.empty(); bx++) {
                blockIdx = uint3{bx, by, bz};
                std::memset(run.shared.data(), 0xA5, run.shared.size());
                err = run_block(run, block);
            }
    tl_run = saved;
    for (auto& f : run.fibers)
        if (f.stack) give_stack(f.stack);
    return err;
}

template <typename... KArgs, size_t... I>
inline void call_packed(void (*kernel)(KArgs...), void** params, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_reference_t<KArgs>*>(params[I])...);
}

/// Launches with cuLaunchKernel-style parameters: params[i] points at argument i.
template <typename... KArgs>
inline std::string launch_packed(dim3 grid, dim3 block, size_t shared_bytes,
                                 void (*kernel)(KArgs...), void** params) {
    return launch_fn(grid, block, shared_bytes, [=]() {
        call_packed(kernel, params, std::index_sequence_for<KArgs...>{});
    });
}

/// Launches with ordinary arguments (host tests written in C++).
template <typename... KArgs, typename... Args>
inline std::string launch(dim3 grid, dim3 block, size_t shared_bytes, void (*kernel)(KArgs...),
                          Args... args) {
    return launch_fn(grid, block, shared_bytes, [=]() { kernel(args...); });
}

inline BlockRun& current_run() {
    if (!tl_run || !tl_run->current)
        throw KernelTrap("CUDA built-in called outside an emulated kernel launch");
    return *tl_run;
}

inline uint32_t warp_collective(WarpOp op, uint32_t mask, uint32_t value, int arg, int width) {
    BlockRun& run = current_run();
    Fiber* f = run.current;
    f->op = op;
    f->mask = mask;
    f->value = value;
    f->arg = arg;
    f->width = width;
    f->state = FiberState::AtWarpCollective;
    asm volatile("" ::: "memory");
    yield_to_scheduler();
    asm volatile("" ::: "memory");
    return f->result;
}

}  // namespace simt

__noinline__ inline void __syncthreads() {
    simt::BlockRun& run = simt::current_run();
    run.current->state = simt::FiberState::AtBlockBarrier;
    asm volatile("" ::: "memory");
    simt::yield_to_scheduler();
    asm volatile("" ::: "memory");
}
__noinline__ inline void __syncwarp(unsigned mask = 0xffffffffu) {
    simt::warp_collective(simt::WarpOp::Sync, mask, 0, 0, 32);
}
__noinline__ inline unsigned __ballot_sync(unsigned mask, int pred) {
    return simt::warp_collective(simt::WarpOp::Ballot, mask, pred != 0, 0, 32);
}
__noinline__ inline int __any_sync(unsigned mask, int pred) {
    return int(simt::warp_collective(simt::WarpOp::Any, mask, pred != 0, 0, 32));
}
__noinline__ inline int __all_sync(unsigned mask, int pred) {
    return int(simt::warp_collective(simt::WarpOp::All, mask, pred != 0, 0, 32));
}
__noinline__ inline unsigned __shfl_sync(unsigned mask, unsigned v, int src, int width = 32) {
    return simt::warp_collective(simt::WarpOp::Shfl, mask, v, src, width);
}
__noinline__ inline unsigned __shfl_up_sync(unsigned mask, unsigned v, unsigned d, int width = 32) {
    return simt::warp_collective(simt::WarpOp::ShflUp, mask, v, int(d), width);
}
__noinline__ inline unsigned __shfl_down_sync(unsigned mask, unsigned v, unsigned d, int width = 32) {
    return simt::warp_collective(simt::WarpOp::ShflDown, mask, v, int(d), width);
}
__noinline__ inline unsigned __shfl_xor_sync(unsigned mask, unsigned v, int m, int width = 32) {
    return simt::warp_collective(simt::WarpOp::ShflXor, mask, v, m, width);
}
inline int __shfl_sync(unsigned mask, int v, int src, int width = 32) {
    return int(__shfl_sync(mask, unsigned(v), src, width));
}
inline int __shfl_up_sync(unsigned mask, int v, unsigned d, int width = 32) {
    return int(__shfl_up_sync(mask, unsigned(v), d, width));
}
inline int __shfl_down_sync(unsigned mask, int v, unsigned d, int width = 32) {
    return int(__shfl_down_sync(mask, unsigned(v), d, width));
}
inline int __shfl_xor_sync(unsigned mask, int v, int m, int width = 32) {
    return int(__shfl_xor_sync(mask, unsigned(v), m, width));
}
inline unsigned long long __shfl_sync(unsigned mask, unsigned long long v, int src, int width = 32) {
    unsigned lo = __shfl_sync(mask, unsigned(v), src, width);
    unsigned hi = __shfl_sync(mask, unsigned(v >> 32), src, width);
    return (static_cast<unsigned long long>(hi) << 32) | lo;
}
inline unsigned long long __shfl_down_sync(unsigned mask, unsigned long long v, unsigned d,
                                           int width = 32) {
    unsigned lo = __shfl_down_sync(mask, unsigned(v), d, width);
    unsigned hi = __shfl_down_sync(mask, unsigned(v >> 32), d, width);
    return (static_cast<unsigned long long>(hi) << 32) | lo;
}
inline unsigned long long __shfl_up_sync(unsigned mask, unsigned long long v, unsigned d,
                                         int width = 32) {
    unsigned lo = __shfl_up_sync(mask, unsigned(v), d, width);
    unsigned hi = __shfl_up_sync(mask, unsigned(v >> 32), d, width);
    return (static_cast<unsigned long long>(hi) << 32) | lo;
}

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
[[noreturn]] inline void __trap() { throw simt::KernelTrap("__trap()"); }

template <typename T>
inline T __ldg(const T* p) {
    return *p;
}

inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline unsigned atomicSub(unsigned* p, unsigned v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicOr(unsigned* p, unsigned v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicAnd(unsigned* p, unsigned v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicExch(unsigned* p, unsigned v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicMax(unsigned* p, unsigned v) {
    unsigned old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
    return old;
}
inline unsigned atomicMin(unsigned* p, unsigned v) {
    unsigned old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (old > v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
    return old;
}
inline unsigned atomicCAS(unsigned* p, unsigned cmp, unsigned v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return cmp;
}

inline unsigned __umulhi(unsigned a, unsigned b) {
    return unsigned((static_cast<unsigned long long>(a) * b) >> 32);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline int __clz(unsigned x) { return x ? __builtin_clz(x) : 32; }
inline int __clzll(unsigned long long x) { return x ? __builtin_clzll(x) : 64; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(unsigned x) { return __builtin_ffs(int(x)); }
inline unsigned __brev(unsigned x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
    x = ((x >> 8) & 0x00FF00FFu) | ((x & 0x00FF00FFu) << 8);
    return (x >> 16) | (x << 16);
}
inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned s) {
    unsigned long long v = (static_cast<unsigned long long>(hi) << 32) | lo;
    return unsigned((v << (s & 31)) >> 32);
}
inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned s) {
    unsigned long long v = (static_cast<unsigned long long>(hi) << 32) | lo;
    return unsigned(v >> (s & 31));
}
inline unsigned __funnelshift_lc(unsigned lo, unsigned hi, unsigned s) {
    return s >= 32 ? lo : __funnelshift_l(lo, hi, s);
}
inline unsigned __funnelshift_rc(unsigned lo, unsigned hi, unsigned s) {
    return s >= 32 ? hi : __funnelshift_r(lo, hi, s);
}
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }

/// Base of the block's dynamic shared memory (the launch's `shared_bytes`).
inline unsigned char* pr_shared_base() { return simt::current_run().shared.data(); }
