// The NTT module: multi-pass radix-2^S transforms over BN254 Fr (ntt.cuh), the in-place bit
// reversal, and the prover's element-wise a = a*b - c. Driver: kernels/src/cuda/ntt.rs.
#include "ntt.cuh"

// Two blocks of 512 threads per SM: 64 registers a thread. The Montgomery product needs
// about 40 (a, b, two 8-word accumulators); ptxas reports spills in kernels-report.txt.
PR_KERNEL __launch_bounds__(NTT_MAX_THREADS, 2) void ntt_dif_pass(ntt_pass_t args) {
    ntt_dif_pass_impl(args);
}
PR_EXPORT_KERNEL(ntt_dif_pass)

PR_KERNEL __launch_bounds__(NTT_MAX_THREADS, 2) void ntt_dit_pass(ntt_pass_t args) {
    ntt_dit_pass_impl(args);
}
PR_EXPORT_KERNEL(ntt_dit_pass)

PR_KERNEL __launch_bounds__(NTT_MAX_THREADS, 2) void ntt_dif_dit_pass(ntt_pass_t args) {
    ntt_dif_dit_pass_impl(args);
}
PR_EXPORT_KERNEL(ntt_dif_dit_pass)

PR_KERNEL __launch_bounds__(NTT_BITREV_THREADS) void ntt_bitrev(fr_t* data, uint32_t log_n) {
    ntt_bitrev_impl(data, log_n);
}
PR_EXPORT_KERNEL(ntt_bitrev)

PR_KERNEL __launch_bounds__(NTT_BITREV_THREADS) void ntt_bitrev_small(fr_t* data, uint32_t log_n) {
    ntt_bitrev_small_impl(data, log_n);
}
PR_EXPORT_KERNEL(ntt_bitrev_small)

PR_KERNEL __launch_bounds__(256) void fr_mul_sub(fr_t* a, const fr_t* b, const fr_t* c, uint32_t n) {
    fr_mul_sub_impl(a, b, c, n);
}
PR_EXPORT_KERNEL(fr_mul_sub)
