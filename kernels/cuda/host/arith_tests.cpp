// Host-only entry points for the Rust tests of the field and curve arithmetic (the same
// headers the kernels use, compiled by g++ with the carry chains emulated).
#include "../curve.cuh"

namespace {
enum FieldOp { OP_ADD = 0, OP_SUB, OP_MUL, OP_SQR, OP_NEG, OP_INV, OP_FROM_MONT, OP_TO_MONT, OP_DBL };

template <class F>
F field_op(int op, const F& a, const F& b) {
    switch (op) {
        case OP_ADD: return a + b;
        case OP_SUB: return a - b;
        case OP_MUL: return a * b;
        case OP_SQR: return a.sqr();
        case OP_NEG: return -a;
        case OP_INV: return a.inverse();
        case OP_FROM_MONT: return a.from_mont();
        case OP_TO_MONT: return a.to_mont();
        case OP_DBL: return a.dbl();
        default: throw std::invalid_argument("unknown field op");
    }
}

template <class F>
int field_batch(int op, const void* a, const void* b, void* out, size_t count) {
    if (op < OP_ADD || op > OP_DBL) return 1;
    const F* pa = static_cast<const F*>(a);
    const F* pb = static_cast<const F*>(b);
    F* po = static_cast<F*>(out);
    for (size_t i = 0; i < count; i++) po[i] = field_op(op, pa[i], pb[i]);
    return 0;
}

enum CurveOp { OP_XYZZ_ADD_AFFINE = 0, OP_XYZZ_ADD, OP_XYZZ_DBL, OP_AFFINE_DBL };

// a: xyzz, b: xyzz (for ADD) or affine (ADD_AFFINE, AFFINE_DBL uses b), out: xyzz
template <class F>
int curve_batch(int op, const void* a, const void* b, void* out, size_t count) {
    const xyzz_t<F>* pa = static_cast<const xyzz_t<F>*>(a);
    xyzz_t<F>* po = static_cast<xyzz_t<F>*>(out);
    for (size_t i = 0; i < count; i++) {
        xyzz_t<F> r = pa[i];
        switch (op) {
            case OP_XYZZ_ADD_AFFINE: r.add_affine(static_cast<const affine_t<F>*>(b)[i]); break;
            case OP_XYZZ_ADD: r.add(static_cast<const xyzz_t<F>*>(b)[i]); break;
            case OP_XYZZ_DBL: r = r.dbl(); break;
            case OP_AFFINE_DBL: r = xyzz_t<F>::dbl_affine(static_cast<const affine_t<F>*>(b)[i]); break;
            default: return 1;
        }
        po[i] = r;
    }
    return 0;
}
}  // namespace

extern "C" int prk_test_fq_op(int op, const void* a, const void* b, void* out, size_t count) {
    return field_batch<fq_t>(op, a, b, out, count);
}
extern "C" int prk_test_fr_op(int op, const void* a, const void* b, void* out, size_t count) {
    return field_batch<fr_t>(op, a, b, out, count);
}
extern "C" int prk_test_fq2_op(int op, const void* a, const void* b, void* out, size_t count) {
    return field_batch<fq2_t>(op, a, b, out, count);
}
extern "C" int prk_test_g1_op(int op, const void* a, const void* b, void* out, size_t count) {
    return curve_batch<fq_t>(op, a, b, out, count);
}
extern "C" int prk_test_g2_op(int op, const void* a, const void* b, void* out, size_t count) {
    return curve_batch<fq2_t>(op, a, b, out, count);
}
