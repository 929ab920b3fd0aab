// Quadratic extension Fq2 = Fq[u]/(u^2 + 1) of BN254 (arkworks' Fq2: c0 + c1*u, non-residue -1),
// laid out as c0 then c1 (64 bytes), identical to ark's `Fp2<Fq2Config>`.
#pragma once
#include "field.cuh"

template <class F>
struct __align__(16) fp2_t {
    F c0, c1;

    PR_HD static fp2_t zero() { return fp2_t{F::zero(), F::zero()}; }
    PR_HD static fp2_t one() { return fp2_t{F::one(), F::zero()}; }
    PR_HD bool is_zero() const { return c0.is_zero() && c1.is_zero(); }
    PR_HD bool operator==(const fp2_t& b) const { return c0 == b.c0 && c1 == b.c1; }
    PR_HD bool operator!=(const fp2_t& b) const { return !(*this == b); }

    PR_HD friend fp2_t operator+(const fp2_t& a, const fp2_t& b) {
        return fp2_t{a.c0 + b.c0, a.c1 + b.c1};
    }
    PR_HD friend fp2_t operator-(const fp2_t& a, const fp2_t& b) {
        return fp2_t{a.c0 - b.c0, a.c1 - b.c1};
    }
    PR_HD fp2_t operator-() const { return fp2_t{-c0, -c1}; }
    PR_HD fp2_t dbl() const { return fp2_t{c0.dbl(), c1.dbl()}; }

    // Karatsuba: 3 base multiplications.
    PR_HD friend fp2_t operator*(const fp2_t& a, const fp2_t& b) {
        F t0 = F::mul_call(a.c0, b.c0);
        F t1 = F::mul_call(a.c1, b.c1);
        F t2 = F::mul_call(a.c0 + a.c1, b.c0 + b.c1);
        return fp2_t{t0 - t1, t2 - t0 - t1};
    }
    // (c0 + c1 u)^2 = (c0 + c1)(c0 - c1) + 2 c0 c1 u: 2 base multiplications.
    PR_HD fp2_t sqr() const {
        F t = F::mul_call(c0, c1);
        return fp2_t{F::mul_call(c0 + c1, c0 - c1), t.dbl()};
    }
    /// Componentwise Montgomery conversions (tests and host conversions).
    PR_HD fp2_t from_mont() const { return fp2_t{c0.from_mont(), c1.from_mont()}; }
    PR_HD fp2_t to_mont() const { return fp2_t{c0.to_mont(), c1.to_mont()}; }
    PR_HD fp2_t& operator+=(const fp2_t& b) { return *this = *this + b; }
    PR_HD fp2_t& operator-=(const fp2_t& b) { return *this = *this - b; }
    PR_HD fp2_t& operator*=(const fp2_t& b) { return *this = *this * b; }

    /// 1/(c0 + c1 u) = (c0 - c1 u) / (c0^2 + c1^2); the inverse of 0 is 0.
    PR_HD fp2_t inverse() const {
        F norm_inv = (c0.sqr() + c1.sqr()).inverse();
        return fp2_t{c0 * norm_inv, -(c1 * norm_inv)};
    }
};

typedef fp2_t<fq_t> fq2_t;
