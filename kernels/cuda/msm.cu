// The MSM module: curve-independent digit/sort kernels (in msm.cuh, scan.cuh) and the
// point kernels instantiated for G1 (over Fq) and G2 (over Fq2).
#include "msm.cuh"

// Exclusive scans (scan.cuh).
PR_KERNEL __launch_bounds__(SCAN_THREADS) void scan_tile_sums(const uint32_t* in, uint32_t len,
                                                               uint32_t* tile_sums) {
    scan_tile_sums_impl(in, len, tile_sums);
}
PR_EXPORT_KERNEL(scan_tile_sums)
PR_KERNEL __launch_bounds__(SCAN_THREADS) void scan_block_offsets(uint32_t* sums, uint32_t count) {
    scan_block_offsets_impl(sums, count);
}
PR_EXPORT_KERNEL(scan_block_offsets)
PR_KERNEL __launch_bounds__(SCAN_THREADS) void scan_apply(const uint32_t* in, uint32_t len,
                                                           const uint32_t* tile_offsets,
                                                           uint32_t ntiles, uint32_t* out) {
    scan_apply_impl(in, len, tile_offsets, ntiles, out);
}
PR_EXPORT_KERNEL(scan_apply)

// Digits and the two-pass counting sort (msm.cuh).
PR_KERNEL void msm_prepare_scalars(const fr_t* scalars, uint32_t n, uint32_t* prepared) {
    msm_prepare_scalars_impl(scalars, n, prepared);
}
PR_EXPORT_KERNEL(msm_prepare_scalars)
PR_KERNEL __launch_bounds__(MSM_SORT_THREADS) void msm_coarse_hist(const uint32_t* prepared,
                                                                   msm_plan_t plan,
                                                                   uint32_t* counts) {
    msm_coarse_hist_impl(prepared, plan, counts);
}
PR_EXPORT_KERNEL(msm_coarse_hist)
PR_KERNEL __launch_bounds__(MSM_SORT_THREADS) void msm_coarse_scatter(const uint32_t* prepared,
                                                                      msm_plan_t plan,
                                                                      const uint32_t* offsets,
                                                                      uint2* out) {
    msm_coarse_scatter_impl(prepared, plan, offsets, out);
}
PR_EXPORT_KERNEL(msm_coarse_scatter)
PR_KERNEL __launch_bounds__(1024) void msm_fine_plan(const uint32_t* offsets, msm_plan_t plan,
                                                     uint32_t* tile_start) {
    msm_fine_plan_impl(offsets, plan, tile_start);
}
PR_EXPORT_KERNEL(msm_fine_plan)
PR_KERNEL __launch_bounds__(MSM_SORT_THREADS) void msm_fine_hist(const uint2* items,
                                                                 const uint32_t* offsets,
                                                                 msm_plan_t plan,
                                                                 const uint32_t* tile_start,
                                                                 uint32_t* hist) {
    msm_fine_hist_impl(items, offsets, plan, tile_start, hist);
}
PR_EXPORT_KERNEL(msm_fine_hist)
PR_KERNEL __launch_bounds__(MSM_SORT_THREADS) void msm_fine_scatter(const uint2* items,
                                                                    const uint32_t* offsets,
                                                                    msm_plan_t plan,
                                                                    const uint32_t* tile_start,
                                                                    const uint32_t* positions,
                                                                    uint2* sorted) {
    msm_fine_scatter_impl(items, offsets, plan, tile_start, positions, sorted);
}
PR_EXPORT_KERNEL(msm_fine_scatter)

// Point kernels, per curve.

#define PR_MSM_CURVE_KERNELS(SUF, F)                                                              \
    PR_KERNEL void msm_accumulate_##SUF(const uint2* items, const uint32_t* item_count,          \
                                        const affine_t<F>* bases, uint32_t threads,              \
                                        xyzz_t<F>* buckets, uint32_t* slot_keys,                 \
                                        xyzz_t<F>* slot_points) {                                \
        msm_accumulate<F>(items, item_count, bases, threads, buckets, slot_keys, slot_points);   \
    }                                                                                            \
    PR_KERNEL void msm_combine_slots_##SUF(const uint32_t* in_keys, const xyzz_t<F>* in_points,  \
                                           uint32_t in_len, uint32_t threads,                    \
                                           xyzz_t<F>* buckets, uint32_t* slot_keys,              \
                                           xyzz_t<F>* slot_points) {                             \
        msm_combine_slots<F>(in_keys, in_points, in_len, threads, buckets, slot_keys,            \
                             slot_points);                                                       \
    }                                                                                            \
    PR_KERNEL void msm_bucket_sums_##SUF(const xyzz_t<F>* buckets, uint32_t buckets_per_window,  \
                                         uint32_t windows, uint32_t per_thread,                  \
                                         xyzz_t<F>* sums, xyzz_t<F>* running) {                  \
        msm_bucket_sums<F>(buckets, buckets_per_window, windows, per_thread, sums, running);     \
    }                                                                                            \
    PR_KERNEL void msm_bit_sums_##SUF(const xyzz_t<F>* sums, const xyzz_t<F>* running,           \
                                      uint32_t segs, uint32_t windows, uint32_t rows,            \
                                      uint32_t chunk_len, xyzz_t<F>* out) {                      \
        msm_bit_sums<F>(sums, running, segs, windows, rows, chunk_len, out);                     \
    }                                                                                            \
    PR_KERNEL void msm_row_sums_##SUF(const xyzz_t<F>* in, uint32_t rows, uint32_t in_len,       \
                                      uint32_t chunk_len, xyzz_t<F>* out) {                      \
        msm_row_sums<F>(in, rows, in_len, chunk_len, out);                                       \
    }                                                                                            \
    PR_KERNEL void msm_precompute_double_##SUF(affine_t<F>* bases, uint32_t stride,              \
                                               uint32_t first, uint32_t count, uint32_t k,       \
                                               uint32_t shift, F* zz) {                          \
        msm_precompute_double<F>(bases, stride, first, count, k, shift, zz);                     \
    }                                                                                            \
    PR_KERNEL void msm_precompute_normalize_##SUF(affine_t<F>* bases, uint32_t stride,           \
                                                  uint32_t first, uint32_t count, uint32_t k,    \
                                                  const F* zz) {                                 \
        msm_precompute_normalize<F>(bases, stride, first, count, k, zz);                         \
    }

PR_MSM_CURVE_KERNELS(g1, fq_t)
PR_MSM_CURVE_KERNELS(g2, fq2_t)

PR_EXPORT_KERNEL(msm_accumulate_g1)
PR_EXPORT_KERNEL(msm_combine_slots_g1)
PR_EXPORT_KERNEL(msm_bucket_sums_g1)
PR_EXPORT_KERNEL(msm_bit_sums_g1)
PR_EXPORT_KERNEL(msm_row_sums_g1)
PR_EXPORT_KERNEL(msm_precompute_double_g1)
PR_EXPORT_KERNEL(msm_precompute_normalize_g1)
PR_EXPORT_KERNEL(msm_accumulate_g2)
PR_EXPORT_KERNEL(msm_combine_slots_g2)
PR_EXPORT_KERNEL(msm_bucket_sums_g2)
PR_EXPORT_KERNEL(msm_bit_sums_g2)
PR_EXPORT_KERNEL(msm_row_sums_g2)
PR_EXPORT_KERNEL(msm_precompute_double_g2)
PR_EXPORT_KERNEL(msm_precompute_normalize_g2)
