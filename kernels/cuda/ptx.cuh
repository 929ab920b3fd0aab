// Carry-chain primitives: one source for device and host.
//
// On the device each function is one PTX instruction and the carry lives in the hardware
// condition code (CC.CF), so a chain is written as consecutive calls, exactly as the PTX
// would be; `cc_t` is empty and free. On the host `cc_t` holds the carry (or, in subtraction
// chains, the borrow) explicitly, so the emulated kernels execute the same chains instruction
// for instruction and the host tests check the carry logic of the device code.
//
// Rules for callers (the PTX rules): a chain starts with a `*_cc` op without carry-in
// (add_cc, sub_cc, mad_lo_cc, mad_hi_cc), continues with `*c_cc` ops and may end with a `*c`
// op that consumes the carry without producing one. Nothing else that sets CC may run in the
// middle of a chain (all ops here are `asm volatile`, which the compiler keeps in order).
#pragma once
#include "prelude.cuh"

namespace ptx {

#if PR_DEVICE_BUILD

struct cc_t {};

#define PR_PTX2(name, insn)                                                        \
    __device__ __forceinline__ uint32_t name(cc_t&, uint32_t a, uint32_t b) {      \
        uint32_t r;                                                                \
        asm volatile(insn " %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));              \
        return r;                                                                  \
    }
#define PR_PTX3(name, insn)                                                               \
    __device__ __forceinline__ uint32_t name(cc_t&, uint32_t a, uint32_t b, uint32_t c) { \
        uint32_t r;                                                                       \
        asm volatile(insn " %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c));         \
        return r;                                                                         \
    }

PR_PTX2(add_cc, "add.cc.u32")
PR_PTX2(addc_cc, "addc.cc.u32")
PR_PTX2(addc, "addc.u32")
PR_PTX2(sub_cc, "sub.cc.u32")
PR_PTX2(subc_cc, "subc.cc.u32")
PR_PTX2(subc, "subc.u32")
PR_PTX3(mad_lo_cc, "mad.lo.cc.u32")
PR_PTX3(mad_hi_cc, "mad.hi.cc.u32")
PR_PTX3(madc_lo_cc, "madc.lo.cc.u32")
PR_PTX3(madc_hi_cc, "madc.hi.cc.u32")
PR_PTX3(madc_lo, "madc.lo.u32")
PR_PTX3(madc_hi, "madc.hi.u32")
#undef PR_PTX2
#undef PR_PTX3

__device__ __forceinline__ uint32_t mul_lo(uint32_t a, uint32_t b) { return a * b; }
__device__ __forceinline__ uint32_t mul_hi(uint32_t a, uint32_t b) { return __umulhi(a, b); }

#else  // host emulation of the same instructions

struct cc_t {
    uint32_t cf = 0;
};

inline uint32_t add_cc(cc_t& c, uint32_t a, uint32_t b) {
    uint64_t s = uint64_t(a) + b;
    c.cf = uint32_t(s >> 32);
    return uint32_t(s);
}
inline uint32_t addc_cc(cc_t& c, uint32_t a, uint32_t b) {
    uint64_t s = uint64_t(a) + b + c.cf;
    c.cf = uint32_t(s >> 32);
    return uint32_t(s);
}
inline uint32_t addc(cc_t& c, uint32_t a, uint32_t b) { return uint32_t(uint64_t(a) + b + c.cf); }
inline uint32_t sub_cc(cc_t& c, uint32_t a, uint32_t b) {
    c.cf = a < b;
    return a - b;
}
inline uint32_t subc_cc(cc_t& c, uint32_t a, uint32_t b) {
    uint64_t d = uint64_t(a) - b - c.cf;
    c.cf = uint32_t(d >> 63);
    return uint32_t(d);
}
inline uint32_t subc(cc_t& c, uint32_t a, uint32_t b) { return a - b - c.cf; }
inline uint32_t mad_lo_cc(cc_t& c, uint32_t a, uint32_t b, uint32_t d) {
    return add_cc(c, a * b, d);
}
inline uint32_t mad_hi_cc(cc_t& c, uint32_t a, uint32_t b, uint32_t d) {
    return add_cc(c, uint32_t((uint64_t(a) * b) >> 32), d);
}
inline uint32_t madc_lo_cc(cc_t& c, uint32_t a, uint32_t b, uint32_t d) {
    return addc_cc(c, a * b, d);
}
inline uint32_t madc_hi_cc(cc_t& c, uint32_t a, uint32_t b, uint32_t d) {
    return addc_cc(c, uint32_t((uint64_t(a) * b) >> 32), d);
}
inline uint32_t madc_lo(cc_t& c, uint32_t a, uint32_t b, uint32_t d) { return addc(c, a * b, d); }
inline uint32_t madc_hi(cc_t& c, uint32_t a, uint32_t b, uint32_t d) {
    return addc(c, uint32_t((uint64_t(a) * b) >> 32), d);
}
inline uint32_t mul_lo(uint32_t a, uint32_t b) { return a * b; }
inline uint32_t mul_hi(uint32_t a, uint32_t b) { return uint32_t((uint64_t(a) * b) >> 32); }

#endif

}  // namespace ptx
