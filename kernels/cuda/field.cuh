// Prime fields in Montgomery form, 8 x 32-bit little-endian limbs, R = 2^256.
//
// The byte layout is arkworks' `Fp256` ([u64; 4] little-endian Montgomery form): an ark slice
// of Fq/Fr is copied to and from the device without conversion.
//
// Multiplication is CIOS Montgomery with two accumulators: the products of a's even limbs and
// of its odd limbs go to separate arrays, so every carry chain runs over consecutive words
// without breaks (the even/odd scheme of sppark's mont_t, written out here). The arrays swap
// roles each row, which is how the one-word shift of CIOS is done without moving data.
// Bounds: both moduli are below 2^254, so every intermediate value stays below 2^288 and the
// result of a row stays below 2p; one conditional subtraction at the end.
//
// Everything is __host__ __device__: the host build runs the same code (carry flags emulated
// in ptx.cuh), which is what the Rust tests check against arkworks.
#pragma once
#include "prelude.cuh"
#include "ptx.cuh"

#if PR_DEVICE_BUILD
#define PR_CONST_LIMBS static __device__ __constant__ const uint32_t
#else
#define PR_CONST_LIMBS static const uint32_t
#endif

PR_CONST_LIMBS BN254_FQ_MOD[8] = {0xd87cfd47, 0x3c208c16, 0x6871ca8d, 0x97816a91,
                                  0x8181585d, 0xb85045b6, 0xe131a029, 0x30644e72};
PR_CONST_LIMBS BN254_FQ_ONE[8] = {0xc58f0d9d, 0xd35d438d, 0xf5c70b3d, 0x0a78eb28,
                                  0x7879462c, 0x666ea36f, 0x9a07df2f, 0x0e0a77c1};
PR_CONST_LIMBS BN254_FQ_RR[8] = {0x538afa89, 0xf32cfc5b, 0xd44501fb, 0xb5e71911,
                                 0x0a417ff6, 0x47ab1eff, 0xcab8351f, 0x06d89f71};
PR_CONST_LIMBS BN254_FR_MOD[8] = {0xf0000001, 0x43e1f593, 0x79b97091, 0x2833e848,
                                  0x8181585d, 0xb85045b6, 0xe131a029, 0x30644e72};
PR_CONST_LIMBS BN254_FR_ONE[8] = {0x4ffffffb, 0xac96341c, 0x9f60cd29, 0x36fc7695,
                                  0x7879462e, 0x666ea36f, 0x9a07df2f, 0x0e0a77c1};
PR_CONST_LIMBS BN254_FR_RR[8] = {0xae216da7, 0x1bb8e645, 0xe35c59e3, 0x53fe3ab1,
                                 0x53bb8085, 0x8c49833d, 0x7f4e44a5, 0x0216d0b1};

/// Field parameters: modulus, R mod p (Montgomery one), R^2 mod p, -p^-1 mod 2^32.
struct bn254_fq_params {
    static PR_HD uint32_t mod(int i) { return BN254_FQ_MOD[i]; }
    static PR_HD uint32_t one(int i) { return BN254_FQ_ONE[i]; }
    static PR_HD uint32_t rr(int i) { return BN254_FQ_RR[i]; }
    static constexpr uint32_t M0 = 0xe4866389u;
};
struct bn254_fr_params {
    static PR_HD uint32_t mod(int i) { return BN254_FR_MOD[i]; }
    static PR_HD uint32_t one(int i) { return BN254_FR_ONE[i]; }
    static PR_HD uint32_t rr(int i) { return BN254_FR_RR[i]; }
    static constexpr uint32_t M0 = 0xefffffffu;
};

template <class P>
struct __align__(16) fp_t {
    static constexpr int N = 8;
    uint32_t l[N];

    PR_HD static fp_t zero() {
        fp_t r;
#pragma unroll
        for (int i = 0; i < N; i++) r.l[i] = 0;
        return r;
    }
    /// 1 in Montgomery form (R mod p).
    PR_HD static fp_t one() {
        fp_t r;
#pragma unroll
        for (int i = 0; i < N; i++) r.l[i] = P::one(i);
        return r;
    }
    PR_HD static fp_t modulus() {
        fp_t r;
#pragma unroll
        for (int i = 0; i < N; i++) r.l[i] = P::mod(i);
        return r;
    }

    PR_HD bool is_zero() const {
        uint32_t acc = 0;
#pragma unroll
        for (int i = 0; i < N; i++) acc |= l[i];
        return acc == 0;
    }
    PR_HD bool operator==(const fp_t& b) const {
        uint32_t acc = 0;
#pragma unroll
        for (int i = 0; i < N; i++) acc |= l[i] ^ b.l[i];
        return acc == 0;
    }
    PR_HD bool operator!=(const fp_t& b) const { return !(*this == b); }

    /// x < p as integers (canonical form check).
    PR_HD bool is_canonical() const {
        ptx::cc_t cc;
        uint32_t t[N];
        t[0] = ptx::sub_cc(cc, l[0], P::mod(0));
#pragma unroll
        for (int i = 1; i < N; i++) t[i] = ptx::subc_cc(cc, l[i], P::mod(i));
        uint32_t borrow = ptx::subc(cc, 0, 0);
        (void)t;
        return borrow != 0;
    }

    /// Subtracts p once if the value (below 2p) is at least p.
    PR_HD void reduce_once() {
        ptx::cc_t cc;
        uint32_t t[N];
        t[0] = ptx::sub_cc(cc, l[0], P::mod(0));
#pragma unroll
        for (int i = 1; i < N; i++) t[i] = ptx::subc_cc(cc, l[i], P::mod(i));
        uint32_t borrow = ptx::subc(cc, 0, 0);
#pragma unroll
        for (int i = 0; i < N; i++) l[i] = borrow ? l[i] : t[i];
    }

    PR_HD friend fp_t operator+(const fp_t& a, const fp_t& b) {
        // a + b < 2p < 2^255: no carry out of the top limb.
        fp_t r;
        ptx::cc_t cc;
        r.l[0] = ptx::add_cc(cc, a.l[0], b.l[0]);
#pragma unroll
        for (int i = 1; i < N - 1; i++) r.l[i] = ptx::addc_cc(cc, a.l[i], b.l[i]);
        r.l[N - 1] = ptx::addc(cc, a.l[N - 1], b.l[N - 1]);
        r.reduce_once();
        return r;
    }

    PR_HD friend fp_t operator-(const fp_t& a, const fp_t& b) {
        fp_t r;
        ptx::cc_t cc;
        r.l[0] = ptx::sub_cc(cc, a.l[0], b.l[0]);
#pragma unroll
        for (int i = 1; i < N; i++) r.l[i] = ptx::subc_cc(cc, a.l[i], b.l[i]);
        uint32_t borrow = ptx::subc(cc, 0, 0);  // 0 or 0xffffffff
        // add p back where the subtraction borrowed
        ptx::cc_t cc2;
        r.l[0] = ptx::add_cc(cc2, r.l[0], P::mod(0) & borrow);
#pragma unroll
        for (int i = 1; i < N - 1; i++) r.l[i] = ptx::addc_cc(cc2, r.l[i], P::mod(i) & borrow);
        r.l[N - 1] = ptx::addc(cc2, r.l[N - 1], P::mod(N - 1) & borrow);
        return r;
    }

    PR_HD fp_t operator-() const {
        // p - a, and 0 for a = 0
        fp_t r;
        ptx::cc_t cc;
        r.l[0] = ptx::sub_cc(cc, P::mod(0), l[0]);
#pragma unroll
        for (int i = 1; i < N - 1; i++) r.l[i] = ptx::subc_cc(cc, P::mod(i), l[i]);
        r.l[N - 1] = ptx::subc(cc, P::mod(N - 1), l[N - 1]);
        uint32_t nz = is_zero() ? 0u : 0xffffffffu;
#pragma unroll
        for (int i = 0; i < N; i++) r.l[i] &= nz;
        return r;
    }

    PR_HD fp_t dbl() const { return *this + *this; }

    PR_HD fp_t& operator+=(const fp_t& b) { return *this = *this + b; }
    PR_HD fp_t& operator-=(const fp_t& b) { return *this = *this - b; }
    PR_HD fp_t& operator*=(const fp_t& b) { return *this = *this * b; }

private:
    // One CIOS row after the first: x is the accumulator at offset 0 for this row (it held
    // the odd products of the previous row), y held the previous row's even products, whose
    // word 0 is zero after reduction. Adds a*bi, then m*p with m chosen to clear word 0.
    // On return x is at offset 0 with x[0] = 0 and y at offset 1 (y[k] is word k+1).
    PR_HD static void cios_row(uint32_t (&x)[N], uint32_t (&y)[N], const uint32_t (&a)[N],
                               uint32_t bi) {
        ptx::cc_t cc;
        // realign: y[1] is word 0 of the shifted value, y[2..] become words 1..
        x[0] = ptx::add_cc(cc, x[0], y[1]);
#pragma unroll
        for (int j = 0; j < N - 2; j += 2) {
            y[j] = ptx::madc_lo_cc(cc, a[j + 1], bi, y[j + 2]);
            y[j + 1] = ptx::madc_hi_cc(cc, a[j + 1], bi, y[j + 3]);
        }
        y[N - 2] = ptx::madc_lo_cc(cc, a[N - 1], bi, 0);
        y[N - 1] = ptx::madc_hi(cc, a[N - 1], bi, 0);
        // even limbs of a into x
        x[0] = ptx::mad_lo_cc(cc, a[0], bi, x[0]);
        x[1] = ptx::madc_hi_cc(cc, a[0], bi, x[1]);
#pragma unroll
        for (int j = 2; j < N; j += 2) {
            x[j] = ptx::madc_lo_cc(cc, a[j], bi, x[j]);
            x[j + 1] = ptx::madc_hi_cc(cc, a[j], bi, x[j + 1]);
        }
        y[N - 1] = ptx::addc(cc, y[N - 1], 0);
        reduce_row(x, y);
    }

    // m = x[0] * M0; x += even limbs of p * m, y += odd limbs of p * m (y at offset 1).
    PR_HD static void reduce_row(uint32_t (&x)[N], uint32_t (&y)[N]) {
        uint32_t m = ptx::mul_lo(x[0], P::M0);
        ptx::cc_t cc;
        y[0] = ptx::mad_lo_cc(cc, P::mod(1), m, y[0]);
        y[1] = ptx::madc_hi_cc(cc, P::mod(1), m, y[1]);
#pragma unroll
        for (int j = 2; j < N - 2; j += 2) {
            y[j] = ptx::madc_lo_cc(cc, P::mod(j + 1), m, y[j]);
            y[j + 1] = ptx::madc_hi_cc(cc, P::mod(j + 1), m, y[j + 1]);
        }
        y[N - 2] = ptx::madc_lo_cc(cc, P::mod(N - 1), m, y[N - 2]);
        y[N - 1] = ptx::madc_hi(cc, P::mod(N - 1), m, y[N - 1]);  // no carry out (bounds)
        x[0] = ptx::mad_lo_cc(cc, P::mod(0), m, x[0]);
        x[1] = ptx::madc_hi_cc(cc, P::mod(0), m, x[1]);
#pragma unroll
        for (int j = 2; j < N; j += 2) {
            x[j] = ptx::madc_lo_cc(cc, P::mod(j), m, x[j]);
            x[j + 1] = ptx::madc_hi_cc(cc, P::mod(j), m, x[j + 1]);
        }
        y[N - 1] = ptx::addc(cc, y[N - 1], 0);
    }

public:
    PR_HD friend fp_t operator*(const fp_t& A, const fp_t& B) {
        uint32_t e[N], o[N];
        // row 0: fresh products, even limbs of a into e (offset 0), odd into o (offset 1)
        uint32_t b0 = B.l[0];
#pragma unroll
        for (int j = 0; j < N; j += 2) {
            e[j] = ptx::mul_lo(A.l[j], b0);
            e[j + 1] = ptx::mul_hi(A.l[j], b0);
            o[j] = ptx::mul_lo(A.l[j + 1], b0);
            o[j + 1] = ptx::mul_hi(A.l[j + 1], b0);
        }
        reduce_row(e, o);
#pragma unroll
        for (int i = 1; i < N - 1; i += 2) {
            cios_row(o, e, A.l, B.l[i]);
            cios_row(e, o, A.l, B.l[i + 1]);
        }
        cios_row(o, e, A.l, B.l[N - 1]);
        // N is even: the last row ran with (o, e): o at offset 0 with o[0] = 0, e at offset 1.
        fp_t r;
        ptx::cc_t cc;
        r.l[0] = ptx::add_cc(cc, e[0], o[1]);
#pragma unroll
        for (int k = 1; k < N - 1; k++) r.l[k] = ptx::addc_cc(cc, e[k], o[k + 1]);
        r.l[N - 1] = ptx::addc(cc, e[N - 1], 0);
        r.reduce_once();
        return r;
    }

    /// Squaring: the 512-bit square from the 28 off-diagonal products (doubled) and the 8
    /// diagonal ones, then Montgomery reduction of the low half added to the high half
    /// (a^2 R^-1 = lo R^-1 + hi mod p). 208 multiply-adds against 264 for `*`; the extra
    /// carry handling is plain adds, which the multiplier-bound kernels have room for.
    PR_HD fp_t sqr() const {
        const uint32_t (&a)[N] = l;
        uint32_t t[2 * N];
#pragma unroll
        for (int k = 0; k < 2 * N; k++) t[k] = 0;
        // Off-diagonal rows: row i adds a_i a_j (j > i) at word i + j. Before row i, word
        // i + 8 holds at most the two carries of row i - 1 and the words above are zero, so
        // the low-half chain's carry stops at word i + 8 and the high-half chain's at i + 9.
#pragma unroll
        for (int i = 0; i < N - 1; i++) {
            ptx::cc_t cc;
            t[2 * i + 1] = ptx::mad_lo_cc(cc, a[i], a[i + 1], t[2 * i + 1]);
#pragma unroll
            for (int j = i + 2; j < N; j++) t[i + j] = ptx::madc_lo_cc(cc, a[i], a[j], t[i + j]);
            t[i + N] = ptx::addc(cc, t[i + N], 0);
            t[2 * i + 2] = ptx::mad_hi_cc(cc, a[i], a[i + 1], t[2 * i + 2]);
#pragma unroll
            for (int j = i + 2; j < N; j++) t[i + j + 1] = ptx::madc_hi_cc(cc, a[i], a[j], t[i + j + 1]);
            if (i + N + 1 < 2 * N) t[i + N + 1] = ptx::addc(cc, t[i + N + 1], 0);
        }
        // double (the off-diagonal sum is below a^2 / 2 < 2^511)
        {
            ptx::cc_t cc;
            t[0] = ptx::add_cc(cc, t[0], t[0]);
#pragma unroll
            for (int k = 1; k < 2 * N - 1; k++) t[k] = ptx::addc_cc(cc, t[k], t[k]);
            t[2 * N - 1] = ptx::addc(cc, t[2 * N - 1], t[2 * N - 1]);
        }
        // diagonal a_i^2 at words 2i, 2i + 1 (no carry out: a^2 < 2^512)
        {
            ptx::cc_t cc;
            t[0] = ptx::mad_lo_cc(cc, a[0], a[0], t[0]);
            t[1] = ptx::madc_hi_cc(cc, a[0], a[0], t[1]);
#pragma unroll
            for (int i = 1; i < N - 1; i++) {
                t[2 * i] = ptx::madc_lo_cc(cc, a[i], a[i], t[2 * i]);
                t[2 * i + 1] = ptx::madc_hi_cc(cc, a[i], a[i], t[2 * i + 1]);
            }
            t[2 * N - 2] = ptx::madc_lo_cc(cc, a[N - 1], a[N - 1], t[2 * N - 2]);
            t[2 * N - 1] = ptx::madc_hi(cc, a[N - 1], a[N - 1], t[2 * N - 1]);
        }
        // lo * R^-1: eight reduction rows; x (9 words) shifts down one word per row
        uint32_t x[N + 1];
#pragma unroll
        for (int k = 0; k < N; k++) x[k] = t[k];
#pragma unroll
        for (int i = 0; i < N; i++) {
            uint32_t m = ptx::mul_lo(x[0], P::M0);
            ptx::cc_t cc;
            x[0] = ptx::mad_lo_cc(cc, m, P::mod(0), x[0]);
#pragma unroll
            for (int j = 1; j < N; j++) x[j] = ptx::madc_lo_cc(cc, m, P::mod(j), x[j]);
            x[N] = ptx::addc(cc, 0, 0);
            x[1] = ptx::mad_hi_cc(cc, m, P::mod(0), x[1]);
#pragma unroll
            for (int j = 1; j < N - 1; j++) x[j + 1] = ptx::madc_hi_cc(cc, m, P::mod(j), x[j + 1]);
            x[N] = ptx::madc_hi(cc, m, P::mod(N - 1), x[N]);
            // x[0] is now zero: shift (register renaming once unrolled)
#pragma unroll
            for (int k = 0; k < N; k++) x[k] = x[k + 1];
        }
        fp_t lo, hi;
#pragma unroll
        for (int k = 0; k < N; k++) {
            lo.l[k] = x[k];
            hi.l[k] = t[N + k];
        }
        lo.reduce_once();  // lo R^-1 <= p; hi < p because a^2 < p^2
        return lo + hi;
    }

    /// The product as a call instead of inline code. Fq2 arithmetic (G2) uses it: inlining
    /// three base multiplications into every Fq2 product made the G2 kernels 10x the
    /// code of G1, NVRTC minutes slower and close to spilling, for an operation (the G2
    /// MSM) off the prover's critical path.
    __host__ __device__ __noinline__ static fp_t mul_call(const fp_t& a, const fp_t& b) { return a * b; }

    /// Montgomery form -> integer (a * R^-1).
    PR_HD fp_t from_mont() const {
        fp_t one_int = zero();
        one_int.l[0] = 1;
        return *this * one_int;
    }
    /// Integer (< p) -> Montgomery form (a * R).
    PR_HD fp_t to_mont() const {
        fp_t rr;
#pragma unroll
        for (int i = 0; i < N; i++) rr.l[i] = P::rr(i);
        return *this * rr;
    }

    /// self^e for an exponent given as 8 little-endian 32-bit limbs (left-to-right binary).
    PR_HD fp_t pow(const uint32_t (&e)[N]) const {
        fp_t r = one();
        for (int i = N - 1; i >= 0; i--) {
            for (int b = 31; b >= 0; b--) {
                r = r.sqr();
                if ((e[i] >> b) & 1) r = r * *this;
            }
        }
        return r;
    }

    /// Multiplicative inverse by Fermat (a^(p-2)); the inverse of 0 is 0.
    PR_HD fp_t inverse() const {
        uint32_t e[N];
#pragma unroll
        for (int i = 0; i < N; i++) e[i] = P::mod(i);
        e[0] -= 2;  // p is odd and its low limb is above 2: no borrow
        return pow(e);
    }
};

typedef fp_t<bn254_fq_params> fq_t;
typedef fp_t<bn254_fr_params> fr_t;
