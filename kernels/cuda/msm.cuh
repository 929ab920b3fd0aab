// Pippenger MSM over BN254 G1/G2 (templates; msm.cu instantiates them per curve).
//
// Pipeline for sum_i s_i * P_i (host side: kernels/src/cuda/msm.rs):
//  1. msm_prepare_scalars: Montgomery -> integer; scalars above (r-1)/2 are replaced by r - s
//     and flagged (bit 255), so every scalar is below 2^253.
//  2. Signed (Booth) digits of c bits: digit w uses bits [w*c - 1, w*c + c - 1] and lies in
//     [-2^(c-1), 2^(c-1)]; W = ceil(254 / c) windows cover a 253-bit scalar with its carry.
//     Window w is served by precomputed base copy k = w / M (copy k holds 2^(c*M*k) * P), in
//     its window m = w % M. An item is (bucket key = m * 2^(c-1) + |digit| - 1,
//     ref = k * stride + i with the sign in bit 31); zero digits make no item.
//  3. Counting sort of the items by key, MSD in two passes with shared-memory histograms
//     and no global atomics: coarse bins (key >> fine_bits), then within each coarse bin by
//     the low fine_bits, tile by tile so one huge bin is spread over many blocks.
//  4. msm_accumulate: the sorted items are cut into T equal segments, one per thread (every
//     thread does the same number of additions whatever the bucket sizes: one giant bucket
//     from all-equal scalars is as fast as random ones). A run of equal keys inside a
//     segment is a whole bucket and is written directly; a run touching a segment boundary
//     is written to the thread's head/tail slot. msm_combine_slots sums slots of equal keys
//     the same way (segments of slots), level after level, until one segment is left.
//  5. msm_bucket_sums: per window, sum_b (b+1) * B_b with running sums over G buckets per
//     thread: S_s = sum_j (j+1) B_{sG+j}, R_s = sum_j B_{sG+j}; then
//     f = sum_s S_s + G * sum_beta 2^beta * Z_beta, Z_beta = sum over s with bit beta of R_s.
//     msm_row_sums computes those plain sums (rows of S and of masked R) level by level;
//     the host finishes with a few dozen group operations.
#pragma once
#include "curve.cuh"
#include "scan.cuh"

/// Bits of a scalar word left free by the < 2^253 bound: bit 31 of the top limb marks a
/// negated scalar.
#define MSM_NEGATED_FLAG 0x80000000u
/// Item ref: bit 31 = subtract the base.
#define MSM_REF_NEG 0x80000000u
#define MSM_REF_MASK 0x7fffffffu
/// Slot key: bit 31 = the slot holds data (a partial sum), low bits = bucket key.
#define MSM_SLOT_DATA 0x80000000u
#define MSM_KEY_MASK 0x7fffffffu
/// Key of slots past the end of the items: above every real key, so order is kept.
#define MSM_SENTINEL_KEY 0x7fffffffu
#define MSM_SORT_THREADS 512
/// Items per fine-sort tile (one block each).
#define MSM_FINE_TILE 8192

/// Parameters shared by the digit and sort kernels (mirrored by `MsmPlanRaw` in msm.rs).
struct msm_plan_t {
    uint32_t n;               // scalars in this call
    uint32_t point_offset;    // index of scalar 0's base in copy 0
    uint32_t c;               // window bits
    uint32_t windows;         // W
    uint32_t group;           // M: windows per copy
    uint32_t copy_stride;     // bases between two copies
    uint32_t fine_bits;       // low key bits sorted in the second pass
    uint32_t coarse_bins;     // number of coarse bins
    uint32_t scalars_per_block;  // coarse pass: scalars per block
    uint32_t coarse_blocks;   // coarse pass: blocks
};

__device__ __forceinline__ void load_words8(const uint32_t* p, uint32_t (&w)[8]) {
    uint4 a = reinterpret_cast<const uint4*>(p)[0];
    uint4 b = reinterpret_cast<const uint4*>(p)[1];
    w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w;
    w[4] = b.x; w[5] = b.y; w[6] = b.z; w[7] = b.w;
}

/// Signed digit of window w (see the header comment); returns |d| and sets *negative.
__device__ __forceinline__ uint32_t booth_digit(const uint32_t (&s)[8], uint32_t w, uint32_t c,
                                                bool* negative) {
    // c + 1 bits starting at bit w*c - 1 (bit -1 reads as 0)
    int32_t pos = int32_t(w * c) - 1;
    uint32_t raw;
    if (pos < 0) {
        raw = (s[0] << 1);
    } else {
        uint32_t idx = uint32_t(pos) / 32, sh = uint32_t(pos) % 32;
        uint32_t lo = idx < 8 ? s[idx] : 0;
        uint32_t hi = idx + 1 < 8 ? s[idx + 1] : 0;
        uint64_t v = (uint64_t(hi) << 32) | lo;
        raw = uint32_t(v >> sh);
    }
    raw &= (2u << c) - 1;  // c + 1 bits
    // d = low c bits of (raw >> 1) + (raw & 1) - 2^c * top bit
    uint32_t top = raw >> c;
    uint32_t mag = (raw >> 1) + (raw & 1);  // in [0, 2^c]
    if (top) {
        *negative = true;
        return (1u << c) - mag;
    }
    *negative = false;
    return mag;
}

__device__ __forceinline__ void msm_prepare_scalars_impl(const fr_t* scalars, uint32_t n, uint32_t* prepared) {
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    fr_t s = scalars[i].from_mont();
    // half = (r - 1) / 2
    const uint32_t half[8] = {0xf8000000u, 0xa1f0fac9u, 0x3cdcb848u, 0x9419f424u,
                              0x40c0ac2eu, 0xdc2822dbu, 0x7098d014u, 0x18322739u};
    ptx::cc_t cc;
    uint32_t t = ptx::sub_cc(cc, half[0], s.l[0]);
#pragma unroll
    for (int j = 1; j < 8; j++) t = ptx::subc_cc(cc, half[j], s.l[j]);
    uint32_t borrow = ptx::subc(cc, 0, 0);  // nonzero when s > half
    (void)t;
    bool negate = borrow != 0;
    if (negate) s = -s;
    if (negate) s.l[7] |= MSM_NEGATED_FLAG;
    uint4* out = reinterpret_cast<uint4*>(prepared + uint64_t(i) * 8);
    out[0] = uint4{s.l[0], s.l[1], s.l[2], s.l[3]};
    out[1] = uint4{s.l[4], s.l[5], s.l[6], s.l[7]};
}

/// Calls f(key, ref) for every nonzero digit of scalar i.
template <class Fn>
__device__ __forceinline__ void for_each_item(const uint32_t* prepared, const msm_plan_t& plan,
                                              uint32_t i, Fn f) {
    uint32_t s[8];
    load_words8(prepared + uint64_t(i) * 8, s);
    bool scalar_negated = (s[7] & MSM_NEGATED_FLAG) != 0;
    s[7] &= ~MSM_NEGATED_FLAG;
    uint32_t half_buckets = 1u << (plan.c - 1);
    for (uint32_t w = 0; w < plan.windows; w++) {
        bool neg;
        uint32_t mag = booth_digit(s, w, plan.c, &neg);
        if (mag == 0) continue;
        uint32_t k = w / plan.group, m = w - k * plan.group;
        uint32_t key = m * half_buckets + (mag - 1);
        uint32_t ref = k * plan.copy_stride + plan.point_offset + i;
        if (neg != scalar_negated) ref |= MSM_REF_NEG;
        f(key, ref);
    }
}

/// counts[bin * coarse_blocks + block] = items of this block's scalars in coarse bin `bin`.
__device__ __forceinline__ void msm_coarse_hist_impl(const uint32_t* prepared,
                                                                   msm_plan_t plan,
                                                                   uint32_t* counts) {
    uint32_t* counters = reinterpret_cast<uint32_t*>(pr_shared_base());
    for (uint32_t b = threadIdx.x; b < plan.coarse_bins; b += blockDim.x) counters[b] = 0;
    __syncthreads();
    uint64_t lo = uint64_t(blockIdx.x) * plan.scalars_per_block;
    uint64_t hi = min(lo + plan.scalars_per_block, uint64_t(plan.n));
    for (uint64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        for_each_item(prepared, plan, uint32_t(i), [&](uint32_t key, uint32_t) {
            atomicAdd(&counters[key >> plan.fine_bits], 1u);
        });
    }
    __syncthreads();
    for (uint32_t b = threadIdx.x; b < plan.coarse_bins; b += blockDim.x)
        counts[uint64_t(b) * plan.coarse_blocks + blockIdx.x] = counters[b];
}

/// Writes every item at its coarse position (offsets = exclusive scan of msm_coarse_hist).
__device__ __forceinline__ void msm_coarse_scatter_impl(const uint32_t* prepared,
                                                                      msm_plan_t plan,
                                                                      const uint32_t* offsets,
                                                                      uint2* out) {
    uint32_t* cursors = reinterpret_cast<uint32_t*>(pr_shared_base());
    for (uint32_t b = threadIdx.x; b < plan.coarse_bins; b += blockDim.x)
        cursors[b] = offsets[uint64_t(b) * plan.coarse_blocks + blockIdx.x];
    __syncthreads();
    uint64_t lo = uint64_t(blockIdx.x) * plan.scalars_per_block;
    uint64_t hi = min(lo + plan.scalars_per_block, uint64_t(plan.n));
    for (uint64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        for_each_item(prepared, plan, uint32_t(i), [&](uint32_t key, uint32_t ref) {
            uint32_t pos = atomicAdd(&cursors[key >> plan.fine_bits], 1u);
            out[pos] = uint2{key, ref};
        });
    }
}

/// One block. For each coarse bin: its tiles of MSM_FINE_TILE items; tile_start[bin] =
/// exclusive prefix of the tile counts, tile_start[coarse_bins] = total tiles.
/// offsets: scanned coarse counts (offsets[coarse_bins * coarse_blocks] = total items).
__device__ __forceinline__ void msm_fine_plan_impl(const uint32_t* offsets, msm_plan_t plan,
                                                     uint32_t* tile_start) {
    uint32_t* scratch = reinterpret_cast<uint32_t*>(pr_shared_base());
    uint32_t total_items = offsets[uint64_t(plan.coarse_bins) * plan.coarse_blocks];
    uint32_t carry = 0;
    for (uint32_t chunk = 0; chunk < plan.coarse_bins; chunk += blockDim.x) {
        uint32_t b = chunk + threadIdx.x;
        uint32_t tiles = 0;
        if (b < plan.coarse_bins) {
            uint32_t start = offsets[uint64_t(b) * plan.coarse_blocks];
            uint32_t end = b + 1 < plan.coarse_bins
                               ? offsets[uint64_t(b + 1) * plan.coarse_blocks]
                               : total_items;
            tiles = (end - start + MSM_FINE_TILE - 1) / MSM_FINE_TILE;
        }
        uint32_t total;
        uint32_t ex = block_exclusive_scan(tiles, scratch, &total);
        if (b < plan.coarse_bins) tile_start[b] = carry + ex;
        carry += total;
    }
    if (threadIdx.x == 0) tile_start[plan.coarse_bins] = carry;
}

struct fine_tile_t {
    bool valid;
    uint32_t bin, index, ntiles, lo, hi;  // items [lo, hi) of the tile
    uint64_t hist_base;                   // first counter of the bin in the fine histogram
};

__device__ __forceinline__ fine_tile_t locate_fine_tile(const uint32_t* offsets,
                                                        const msm_plan_t& plan,
                                                        const uint32_t* tile_start) {
    fine_tile_t t;
    uint32_t tile = blockIdx.x;
    t.valid = tile < tile_start[plan.coarse_bins];
    if (!t.valid) return t;
    // last bin whose first tile is <= tile (bins without tiles share their start)
    uint32_t lo = 0, hi = plan.coarse_bins;  // invariant: tile_start[lo] <= tile < tile_start[hi]
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (tile_start[mid] <= tile) lo = mid;
        else hi = mid;
    }
    t.bin = lo;
    t.index = tile - tile_start[lo];
    t.ntiles = tile_start[lo + 1] - tile_start[lo];
    uint32_t total_items = offsets[uint64_t(plan.coarse_bins) * plan.coarse_blocks];
    uint32_t bin_start = offsets[uint64_t(lo) * plan.coarse_blocks];
    uint32_t bin_end = lo + 1 < plan.coarse_bins ? offsets[uint64_t(lo + 1) * plan.coarse_blocks]
                                                 : total_items;
    t.lo = bin_start + t.index * MSM_FINE_TILE;
    t.hi = min(t.lo + MSM_FINE_TILE, bin_end);
    t.hist_base = uint64_t(tile_start[lo]) << plan.fine_bits;
    return t;
}

/// Fine histogram, laid out per bin as [fine key][tile of the bin], so that one exclusive
/// scan of the whole array gives every (bin, fine key, tile) its output position.
/// `hist` must be zeroed (tiles past the last real one write nothing).
__device__ __forceinline__ void msm_fine_hist_impl(const uint2* items,
                                                                 const uint32_t* offsets,
                                                                 msm_plan_t plan,
                                                                 const uint32_t* tile_start,
                                                                 uint32_t* hist) {
    uint32_t* counters = reinterpret_cast<uint32_t*>(pr_shared_base());
    fine_tile_t t = locate_fine_tile(offsets, plan, tile_start);
    if (!t.valid) return;  // uniform over the block
    uint32_t fine_bins = 1u << plan.fine_bits, mask = fine_bins - 1;
    for (uint32_t b = threadIdx.x; b < fine_bins; b += blockDim.x) counters[b] = 0;
    __syncthreads();
    for (uint32_t p = t.lo + threadIdx.x; p < t.hi; p += blockDim.x)
        atomicAdd(&counters[items[p].x & mask], 1u);
    __syncthreads();
    for (uint32_t b = threadIdx.x; b < fine_bins; b += blockDim.x)
        hist[t.hist_base + uint64_t(b) * t.ntiles + t.index] = counters[b];
}

__device__ __forceinline__ void msm_fine_scatter_impl(const uint2* items,
                                                                    const uint32_t* offsets,
                                                                    msm_plan_t plan,
                                                                    const uint32_t* tile_start,
                                                                    const uint32_t* positions,
                                                                    uint2* sorted) {
    uint32_t* cursors = reinterpret_cast<uint32_t*>(pr_shared_base());
    fine_tile_t t = locate_fine_tile(offsets, plan, tile_start);
    if (!t.valid) return;
    uint32_t fine_bins = 1u << plan.fine_bits, mask = fine_bins - 1;
    for (uint32_t b = threadIdx.x; b < fine_bins; b += blockDim.x)
        cursors[b] = positions[t.hist_base + uint64_t(b) * t.ntiles + t.index];
    __syncthreads();
    for (uint32_t p = t.lo + threadIdx.x; p < t.hi; p += blockDim.x) {
        uint2 item = items[p];
        uint32_t pos = atomicAdd(&cursors[item.x & mask], 1u);
        sorted[pos] = item;
    }
}

template <class F>
__device__ __forceinline__ affine_t<F> load_affine(const affine_t<F>* p) {
    return *p;
}

template <class F>
__device__ __forceinline__ void store_slot(uint32_t* slot_keys, xyzz_t<F>* slot_points, uint64_t slot,
                                           uint32_t key, bool data, const xyzz_t<F>& v) {
    slot_keys[slot] = key | (data ? MSM_SLOT_DATA : 0u);
    if (data) slot_points[slot] = v;
}

/// Segmented sum of a sorted list (see the header comment, step 4). `Src` provides
/// key(p), has_data(p) and add(acc, p). Thread t owns entries [t*L, min((t+1)*L, len)) with
/// L = ceil(len / threads) and writes its head slot 2t and tail slot 2t+1.
template <class F, class Src>
__device__ __forceinline__ void segmented_sum(const Src& src, uint32_t len, uint32_t threads,
                                              xyzz_t<F>* buckets, uint32_t* slot_keys,
                                              xyzz_t<F>* slot_points) {
    uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= threads) return;
    uint64_t per = (uint64_t(len) + threads - 1) / threads;
    uint64_t start = uint64_t(t) * per;
    uint64_t end = min(start + per, uint64_t(len));
    uint64_t head = 2 * uint64_t(t), tail = head + 1;
    if (start >= end) {
        slot_keys[head] = MSM_SENTINEL_KEY;
        slot_keys[tail] = MSM_SENTINEL_KEY;
        return;
    }
    uint32_t first_key = src.key(start), last_key = src.key(end - 1);
    bool head_open = start > 0 && src.key(start - 1) == first_key;
    bool tail_open = end < len && src.key(end) == last_key;
    slot_keys[head] = first_key;
    slot_keys[tail] = last_key;
    xyzz_t<F> acc = xyzz_t<F>::inf();
    bool data = false, first_run = true;
    uint32_t cur = first_key;
    for (uint64_t p = start; p < end; p++) {
        uint32_t k = src.key(p);
        if (k != cur) {
            if (first_run && head_open) store_slot(slot_keys, slot_points, head, cur, data, acc);
            else if (data) buckets[cur] = acc;
            first_run = false;
            cur = k;
            acc = xyzz_t<F>::inf();
            data = false;
        }
        if (src.has_data(p)) {
            src.add(acc, p);
            data = true;
        }
    }
    if (first_run && head_open) store_slot(slot_keys, slot_points, head, cur, data, acc);
    else if (tail_open) store_slot(slot_keys, slot_points, tail, cur, data, acc);
    else if (data) buckets[cur] = acc;
}

/// Sorted items: affine bases, negated by the ref's sign bit.
template <class F>
struct item_source {
    const uint2* items;
    const affine_t<F>* bases;
    __device__ __forceinline__ uint32_t key(uint64_t p) const { return items[p].x; }
    __device__ __forceinline__ bool has_data(uint64_t) const { return true; }
    __device__ __forceinline__ void add(xyzz_t<F>& acc, uint64_t p) const {
        uint32_t ref = items[p].y;
        affine_t<F> b = load_affine(bases + (ref & MSM_REF_MASK));
        acc.add_affine(b.cneg((ref & MSM_REF_NEG) != 0));
    }
};

/// Slots of the previous level: keys with the data flag, XYZZ partial sums.
template <class F>
struct slot_source {
    const uint32_t* keys;
    const xyzz_t<F>* points;
    __device__ __forceinline__ uint32_t key(uint64_t p) const { return keys[p] & MSM_KEY_MASK; }
    __device__ __forceinline__ bool has_data(uint64_t p) const { return (keys[p] & MSM_SLOT_DATA) != 0; }
    __device__ __forceinline__ void add(xyzz_t<F>& acc, uint64_t p) const { acc.add(points[p]); }
};

template <class F>
__device__ __forceinline__ void msm_accumulate(const uint2* items, const uint32_t* item_count,
                                               const affine_t<F>* bases, uint32_t threads,
                                               xyzz_t<F>* buckets, uint32_t* slot_keys,
                                               xyzz_t<F>* slot_points) {
    item_source<F> src{items, bases};
    segmented_sum<F>(src, *item_count, threads, buckets, slot_keys, slot_points);
}

template <class F>
__device__ __forceinline__ void msm_combine_slots(const uint32_t* in_keys, const xyzz_t<F>* in_points,
                                                  uint32_t in_len, uint32_t threads,
                                                  xyzz_t<F>* buckets, uint32_t* slot_keys,
                                                  xyzz_t<F>* slot_points) {
    slot_source<F> src{in_keys, in_points};
    segmented_sum<F>(src, in_len, threads, buckets, slot_keys, slot_points);
}

/// Thread (m, s): running sums over buckets [m*K + s*G, +G) from the top (step 5).
template <class F>
__device__ __forceinline__ void msm_bucket_sums(const xyzz_t<F>* buckets, uint32_t buckets_per_window,
                                                uint32_t windows, uint32_t per_thread,
                                                xyzz_t<F>* sums, xyzz_t<F>* running) {
    uint32_t segs = buckets_per_window / per_thread;
    uint64_t id = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (id >= uint64_t(segs) * windows) return;
    uint64_t m = id / segs, s = id % segs;
    const xyzz_t<F>* b = buckets + m * buckets_per_window + s * per_thread;
    xyzz_t<F> r = xyzz_t<F>::inf(), acc = xyzz_t<F>::inf();
    for (int32_t j = int32_t(per_thread) - 1; j >= 0; j--) {
        r.add(b[j]);
        acc.add(r);
    }
    sums[id] = acc;
    running[id] = r;
}

/// Rows of plain sums: for window m, row 0 sums `sums[m][*]`, row 1 + beta sums
/// `running[m][s]` over the s with bit beta set. Output out[(m * rows + row) * chunks + q]
/// covers entries [q * chunk_len, +chunk_len) of the row.
template <class F>
__device__ __forceinline__ void msm_bit_sums(const xyzz_t<F>* sums, const xyzz_t<F>* running,
                                             uint32_t segs, uint32_t windows, uint32_t rows,
                                             uint32_t chunk_len, xyzz_t<F>* out) {
    uint32_t chunks = (segs + chunk_len - 1) / chunk_len;
    uint64_t id = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (id >= uint64_t(windows) * rows * chunks) return;
    uint64_t q = id % chunks, row = (id / chunks) % rows, m = id / (uint64_t(chunks) * rows);
    uint64_t lo = q * chunk_len, hi = min(lo + chunk_len, uint64_t(segs));
    xyzz_t<F> acc = xyzz_t<F>::inf();
    if (row == 0) {
        for (uint64_t s = lo; s < hi; s++) acc.add(sums[m * segs + s]);
    } else {
        uint32_t beta = uint32_t(row - 1);
        for (uint64_t s = lo; s < hi; s++)
            if ((s >> beta) & 1) acc.add(running[m * segs + s]);
    }
    out[id] = acc;
}

/// out[r * out_len + q] = sum of in[r * in_len + q * chunk_len .. +chunk_len) (clipped).
template <class F>
__device__ __forceinline__ void msm_row_sums(const xyzz_t<F>* in, uint32_t rows, uint32_t in_len,
                                             uint32_t chunk_len, xyzz_t<F>* out) {
    uint32_t out_len = (in_len + chunk_len - 1) / chunk_len;
    uint64_t id = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (id >= uint64_t(rows) * out_len) return;
    uint64_t r = id / out_len, q = id % out_len;
    uint64_t lo = q * chunk_len, hi = min(lo + chunk_len, uint64_t(in_len));
    xyzz_t<F> acc = xyzz_t<F>::inf();
    for (uint64_t j = lo; j < hi; j++) acc.add(in[r * in_len + j]);
    out[id] = acc;
}

/// Copy k of bases [first, first + count): 2^shift times copy k-1, left as (X, Y) in the
/// affine slot with (ZZ, ZZZ) in `zz` until msm_precompute_normalize.
template <class F>
__device__ __forceinline__ void msm_precompute_double(affine_t<F>* bases, uint32_t stride,
                                                      uint32_t first, uint32_t count, uint32_t k,
                                                      uint32_t shift, F* zz) {
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    affine_t<F> p = bases[uint64_t(k - 1) * stride + first + i];
    xyzz_t<F> acc = xyzz_t<F>::dbl_affine(p);
    for (uint32_t t = 1; t < shift; t++) acc = acc.dbl();
    bases[uint64_t(k) * stride + first + i] = affine_t<F>{acc.X, acc.Y};
    zz[2 * uint64_t(i)] = acc.ZZ;
    zz[2 * uint64_t(i) + 1] = acc.ZZZ;
}

/// Points normalised per thread with one inversion (Montgomery's trick).
#define MSM_NORMALIZE_CHUNK 16

/// x = X / ZZ, y = Y / ZZZ for copy k, with 1/ZZ = ZZZ / (ZZ ZZZ) and 1/ZZZ = ZZ / (ZZ ZZZ).
template <class F>
__device__ __forceinline__ void msm_precompute_normalize(affine_t<F>* bases, uint32_t stride,
                                                         uint32_t first, uint32_t count,
                                                         uint32_t k, const F* zz) {
    uint64_t lo = (uint64_t(blockIdx.x) * blockDim.x + threadIdx.x) * MSM_NORMALIZE_CHUNK;
    if (lo >= count) return;
    uint32_t len = uint32_t(min(uint64_t(MSM_NORMALIZE_CHUNK), uint64_t(count) - lo));
    F prefix[MSM_NORMALIZE_CHUNK];
    F acc = F::one();
    for (uint32_t j = 0; j < len; j++) {
        F d = zz[2 * (lo + j)] * zz[2 * (lo + j) + 1];
        if (!d.is_zero()) acc = acc * d;
        prefix[j] = acc;
    }
    F inv = acc.inverse();
    affine_t<F>* out = bases + uint64_t(k) * stride + first + lo;
    for (int32_t j = int32_t(len) - 1; j >= 0; j--) {
        F ZZ = zz[2 * (lo + j)], ZZZ = zz[2 * (lo + j) + 1];
        F d = ZZ * ZZZ;
        if (d.is_zero()) {
            out[j] = affine_t<F>::inf();
            continue;
        }
        F d_inv = j > 0 ? inv * prefix[j - 1] : inv;
        inv = inv * d;
        affine_t<F> p = out[j];
        out[j] = affine_t<F>{p.x * (d_inv * ZZZ), p.y * (d_inv * ZZ)};
    }
}
