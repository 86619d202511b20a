/* Vector math of the kernels, written once over an ISA's vector operations (simd_body.h) and
 * stamped out by simd_portable.h, simd_avx2.h and simd_avx512.h: e^-w, clamp, sigmoid, tanh
 * and the element-wise activations. Every lane goes through the same operations on every ISA,
 * so the ISAs with FMA give the same bits whatever their width. No include guard: included once
 * per ISA, with FL_SIMD_ISA, FL_SIMD_INLINE and FL_VW set. */
#include "activations.h"
#include "simd_body.h"

/* e^-w for n independent vectors, |w| <= 87, computed in lockstep: -w = n ln2 + r with
 * |r| <= ln2/2. Adding 1.5 * 2^23 + 127 rounds -w/ln2 and leaves n + 127 in the low mantissa
 * bits, so one shift builds 2^n; e^r is a degree-5 minimax polynomial (fitted for relative
 * error: 1.6e-7 in float). One ln2 constant suffices: with FMA its 2e-9 error moves r by < 2e-7
 * at |w| = 87 (the portable path on a target without FMA rounds n ln2 first: up to ~2e-6
 * relative at |w| = 40, ~1e-8 absolute in sigmoid and tanh). Lockstep, because Zen's FP scheduler looks only about one exp ahead: independent
 * vectors taken step by step together keep both FMA pipes fed instead of waiting on one chain. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_exp_neg_n)(const int n /* <= 4 */,
                                              FL_VEC *w /* IN w, OUT e^-w */) {
    const FL_VEC magic = FLV(set1)(12582912.0f + 127.0f);
    const FL_VEC log2e = FLV(set1)(1.44269504088896341f);
    const FL_VEC ln2 = FLV(set1)(0.693147180559945f);
    FL_VEC k[4], r[4], y[4];
    for (int i = 0; i < n; i++) k[i] = FLV(fnmadd)(w[i], log2e, magic);
    for (int i = 0; i < n; i++) r[i] = FLV(fnmsub)(FLV(sub)(k[i], magic), ln2, w[i]);
    for (int i = 0; i < n; i++)
        y[i] = FLV(fma)(FLV(set1)(8.290278725326061e-3f), r[i], FLV(set1)(4.1898056864738464e-2f));
    for (int i = 0; i < n; i++) y[i] = FLV(fma)(y[i], r[i], FLV(set1)(0.1666763722896576f));
    for (int i = 0; i < n; i++) y[i] = FLV(fma)(y[i], r[i], FLV(set1)(0.4999914765357971f));
    for (int i = 0; i < n; i++) y[i] = FLV(fma)(y[i], r[i], FLV(set1)(0.9999997019767761f));
    for (int i = 0; i < n; i++) y[i] = FLV(fma)(y[i], r[i], FLV(set1)(1.0f));
    for (int i = 0; i < n; i++) w[i] = FLV(mul)(y[i], FLV(pow2_of_magic)(k[i]));
}

/* min(max(x, lo), hi) that keeps NaN (min/max return their second operand when one is NaN, as
 * minps/maxps do). */
FL_SIMD_INLINE FL_VEC FL_ISA_NAME(fl_clamp)(FL_VEC x, float lo, float hi) {
    return FLV(max)(FLV(set1)(lo), FLV(min)(FLV(set1)(hi), x));
}

/* e^-w for any w, relative error ~2e-7: w is clamped to [-88.37, 87.3], where 2^n stays a
 * normal float: the result is then ~2.4e38 instead of +inf, or ~1e-38 instead of 0 (used only in
 * 1 / (1 + e) and (1 - e) / (1 + e), which saturate alike). NaN stays NaN. */
FL_SIMD_INLINE FL_VEC FL_ISA_NAME(fl_exp_neg_any)(FL_VEC w) {
    w = FL_ISA_NAME(fl_clamp)(w, -88.3762626647949f, 87.3f);
    FL_ISA_NAME(fl_exp_neg_n)(1, &w);
    return w;
}

/* 1 / (1 + e^-x): e^-x saturates for x < -88, giving 0 as the libm formula does. */
FL_SIMD_INLINE FL_VEC FL_ISA_NAME(fl_sigmoid)(FL_VEC x) {
    const FL_VEC one = FLV(set1)(1.0f);
    return FLV(div)(one, FLV(add)(one, FL_ISA_NAME(fl_exp_neg_any)(x)));
}

/* tanh|x| = (1 - t) / (1 + t), t = e^(-2|x|) in (0, 1], sign restored: no overflow anywhere,
 * absolute error ~2e-7 against libm tanhf. */
FL_SIMD_INLINE FL_VEC FL_ISA_NAME(fl_tanh)(FL_VEC x) {
    const FL_VEC one = FLV(set1)(1.0f), ax = FLV(abs)(x);
    const FL_VEC t = FL_ISA_NAME(fl_exp_neg_any)(FLV(add)(ax, ax));
    return FLV(or_sign)(FLV(div)(FLV(sub)(one, t), FLV(add)(one, t)), x);
}

/* Element-wise activations: vector code for the common ones, the shared scalar formulas
 * (activations.h) lane by lane for the rest (row-wise activations never reach here). */
FL_SIMD_INLINE FL_VEC FL_ISA_NAME(fl_act)(const fl_activation_spec *act, FL_VEC x) {
    switch (act->id) {
    case FL_ACT_LINEAR: return x;
    case FL_ACT_SIGMOID: return FL_ISA_NAME(fl_sigmoid)(x);
    case FL_ACT_TANH: return FL_ISA_NAME(fl_tanh)(x);
    /* max returns its second operand when one is NaN: NaN stays NaN, as in tf.nn.relu. */
    case FL_ACT_RELU: return FLV(max)(FLV(set1)(0.0f), x);
    case FL_ACT_HARD_SIGMOID_K2:
        return FL_ISA_NAME(fl_clamp)(FLV(fma)(x, FLV(set1)(0.2f), FLV(set1)(0.5f)), 0.0f, 1.0f);
    case FL_ACT_HARD_SIGMOID_K3:
        return FLV(div)(FL_ISA_NAME(fl_clamp)(FLV(add)(x, FLV(set1)(3.0f)), 0.0f, 6.0f),
                        FLV(set1)(6.0f));
    default: {
        float lanes[FL_VW];
        FLV(store)(lanes, x);
        for (int j = 0; j < FL_VW; j++) lanes[j] = fl_activation_scalar(act, lanes[j]);
        return FLV(load)(lanes);
    }
    }
}
