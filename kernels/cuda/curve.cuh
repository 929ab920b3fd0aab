// Short Weierstrass points with a = 0 (BN254 G1 over Fq, G2 over Fq2).
//
// - affine_t: (x, y). The point at infinity is encoded as x = y = 0, which is never on these
//   curves (0 = 0^3 + b needs b = 0). Bases on the device use this encoding; the host
//   converts arkworks' `infinity` flag to it.
// - xyzz_t: extended Jacobian "XYZZ" coordinates, x = X/ZZ, y = Y/ZZZ with ZZ^3 = ZZZ^2.
//   Infinity is ZZ = ZZZ = 0 (an all-zero point is infinity, so zeroed memory is a valid
//   bucket). Formulas from the EFD (g1p/shortw/xyzz): madd-2008-s (8M+2S), add-2008-s
//   (12M+2S), dbl-2008-s-1 and mdbl-2008-s-1; every edge case (either operand infinity,
//   P + P, P + (-P)) is branched out explicitly because the formulas are incomplete there.
#pragma once
#include "fq2.cuh"

// Full additions and doublings are called, not inlined: they run off the hot path (bucket
// reductions, the rare equal-points branch of madd, precomputation), and inlining them into
// every kernel multiplied NVRTC/ptxas time and register pressure (G2 spilled). The hot madd
// (add_affine) stays inline.
#define PR_COLD __host__ __device__ __noinline__

template <class F>
struct __align__(16) affine_t {
    F x, y;
    PR_HD static affine_t inf() { return affine_t{F::zero(), F::zero()}; }
    PR_HD bool is_inf() const { return x.is_zero() && y.is_zero(); }
    PR_HD affine_t neg() const { return affine_t{x, -y}; }
    /// The point itself, or its negation when `negate`; infinity stays infinity (-0 = 0).
    PR_HD affine_t cneg(bool negate) const { return affine_t{x, negate ? -y : y}; }
};

template <class F>
struct __align__(16) xyzz_t {
    F X, Y, ZZ, ZZZ;

    PR_HD static xyzz_t inf() { return xyzz_t{F::zero(), F::zero(), F::zero(), F::zero()}; }
    PR_HD bool is_inf() const { return ZZ.is_zero(); }
    PR_HD static xyzz_t from_affine(const affine_t<F>& a) {
        if (a.is_inf()) return inf();
        return xyzz_t{a.x, a.y, F::one(), F::one()};
    }
    PR_HD xyzz_t neg() const { return xyzz_t{X, -Y, ZZ, ZZZ}; }

    /// 2 * self (dbl-2008-s-1, a = 0). Infinity and 2-torsion give ZZ = 0 by themselves.
    PR_COLD xyzz_t dbl() const {
        F U = Y.dbl();
        F V = U.sqr();
        F W = U * V;
        F S = X * V;
        F X2 = X.sqr();
        F M = X2.dbl() + X2;
        xyzz_t r;
        r.X = M.sqr() - S.dbl();
        r.Y = M * (S - r.X) - W * Y;
        r.ZZ = V * ZZ;
        r.ZZZ = W * ZZZ;
        return r;
    }

    /// 2 * a for an affine a (mdbl-2008-s-1).
    PR_COLD static xyzz_t dbl_affine(const affine_t<F>& a) {
        if (a.is_inf()) return inf();
        F U = a.y.dbl();
        F V = U.sqr();
        F W = U * V;
        F S = a.x * V;
        F X2 = a.x.sqr();
        F M = X2.dbl() + X2;
        xyzz_t r;
        r.X = M.sqr() - S.dbl();
        r.Y = M * (S - r.X) - W * a.y;
        r.ZZ = V;
        r.ZZZ = W;
        return r;
    }

    /// self += a for an affine a (madd-2008-s).
    PR_HD void add_affine(const affine_t<F>& a) {
        if (a.is_inf()) return;
        if (is_inf()) {
            X = a.x;
            Y = a.y;
            ZZ = F::one();
            ZZZ = F::one();
            return;
        }
        F U2 = a.x * ZZ;
        F S2 = a.y * ZZZ;
        F P = U2 - X;
        F R = S2 - Y;
        if (P.is_zero()) {
            if (R.is_zero()) *this = dbl_affine(a);
            else *this = inf();
            return;
        }
        F PP = P.sqr();
        F PPP = P * PP;
        F Q = X * PP;
        F X3 = R.sqr() - PPP - Q.dbl();
        Y = R * (Q - X3) - Y * PPP;
        X = X3;
        ZZ = ZZ * PP;
        ZZZ = ZZZ * PPP;
    }

    /// self += b (add-2008-s).
    PR_COLD void add(const xyzz_t& b) {
        if (b.is_inf()) return;
        if (is_inf()) {
            *this = b;
            return;
        }
        F U1 = X * b.ZZ;
        F U2 = b.X * ZZ;
        F S1 = Y * b.ZZZ;
        F S2 = b.Y * ZZZ;
        F P = U2 - U1;
        F R = S2 - S1;
        if (P.is_zero()) {
            if (R.is_zero()) *this = dbl();
            else *this = inf();
            return;
        }
        F PP = P.sqr();
        F PPP = P * PP;
        F Q = U1 * PP;
        F X3 = R.sqr() - PPP - Q.dbl();
        Y = R * (Q - X3) - S1 * PPP;
        X = X3;
        ZZ = ZZ * b.ZZ * PP;
        ZZZ = ZZZ * b.ZZZ * PPP;
    }
};

typedef affine_t<fq_t> g1_affine_t;
typedef xyzz_t<fq_t> g1_xyzz_t;
typedef affine_t<fq2_t> g2_affine_t;
typedef xyzz_t<fq2_t> g2_xyzz_t;
