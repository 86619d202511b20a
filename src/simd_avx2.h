/* AVX2+FMA vector math for the kernels' AVX2 path. Every function carries the target attribute,
 * so the file compiles without -mavx2 and the code only runs after the run-time CPU check
 * (cpu.c). Included only where FL_BUILD_AVX2 is set. */
#ifndef FASTLSTM_SIMD_AVX2_H
#define FASTLSTM_SIMD_AVX2_H

#include <immintrin.h>

#include "activations.h"

#define FL_AVX2_FN __attribute__((target("avx2,fma")))
#define FL_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* e^-w for n independent vectors, |w| <= 87, computed in lockstep: -w = n ln2 + r with
 * |r| <= ln2/2. Adding 1.5 * 2^23 + 127 rounds -w/ln2 and leaves n + 127 in the low mantissa
 * bits, so one shift builds 2^n; e^r is a degree-5 minimax polynomial (fitted for relative
 * error: 1.6e-7 in float). One ln2 constant suffices: with FMA its 2e-9 error moves r by < 2e-7
 * at |w| = 87. Lockstep, because Zen's FP scheduler looks only about one exp ahead: independent
 * vectors taken step by step together keep both FMA pipes fed instead of waiting on one chain. */
FL_AVX2_INLINE void fl_exp_neg256_n(const int n, __m256 *w /* IN w, OUT e^-w */) {
    const __m256 magic = _mm256_set1_ps(12582912.0f + 127.0f);
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2 = _mm256_set1_ps(0.693147180559945f);
    __m256 k[4], r[4], y[4];
    for (int i = 0; i < n; i++) k[i] = _mm256_fnmadd_ps(w[i], log2e, magic);
    for (int i = 0; i < n; i++) r[i] = _mm256_fnmsub_ps(_mm256_sub_ps(k[i], magic), ln2, w[i]);
    for (int i = 0; i < n; i++)
        y[i] = _mm256_fmadd_ps(_mm256_set1_ps(8.290278725326061e-3f), r[i],
                               _mm256_set1_ps(4.1898056864738464e-2f));
    for (int i = 0; i < n; i++)
        y[i] = _mm256_fmadd_ps(y[i], r[i], _mm256_set1_ps(0.1666763722896576f));
    for (int i = 0; i < n; i++)
        y[i] = _mm256_fmadd_ps(y[i], r[i], _mm256_set1_ps(0.4999914765357971f));
    for (int i = 0; i < n; i++)
        y[i] = _mm256_fmadd_ps(y[i], r[i], _mm256_set1_ps(0.9999997019767761f));
    for (int i = 0; i < n; i++)
        y[i] = _mm256_fmadd_ps(y[i], r[i], _mm256_set1_ps(1.0f));
    for (int i = 0; i < n; i++) {
        const __m256i two_n = _mm256_slli_epi32(_mm256_castps_si256(k[i]), 23);
        w[i] = _mm256_mul_ps(y[i], _mm256_castsi256_ps(two_n));
    }
}

/* min(max(x, lo), hi) that keeps NaN (the operand order of maxps/minps returns the second one). */
FL_AVX2_INLINE __m256 fl_clamp256(__m256 x, float lo, float hi) {
    return _mm256_max_ps(_mm256_set1_ps(lo), _mm256_min_ps(_mm256_set1_ps(hi), x));
}

/* e^-w for any w, relative error ~2e-7: w is clamped to [-88.37, 87.3], where 2^n stays a
 * normal float: the result is then ~2.4e38 instead of +inf, or ~1e-38 instead of 0 (used only in
 * 1 / (1 + e) and (1 - e) / (1 + e), which saturate alike). NaN stays NaN. */
FL_AVX2_INLINE __m256 fl_exp_neg_any256(__m256 w) {
    w = fl_clamp256(w, -88.3762626647949f, 87.3f);
    fl_exp_neg256_n(1, &w);
    return w;
}

/* 1 / (1 + e^-x): e^-x saturates for x < -88, giving 0 as the libm formula does. */
FL_AVX2_INLINE __m256 fl_sigmoid256(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, fl_exp_neg_any256(x)));
}

/* tanh|x| = (1 - t) / (1 + t), t = e^(-2|x|) in (0, 1], sign restored: no overflow anywhere,
 * absolute error ~2e-7 against libm tanhf. */
FL_AVX2_INLINE __m256 fl_tanh256(__m256 x) {
    const __m256 sign_mask = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 ax = _mm256_andnot_ps(sign_mask, x);
    __m256 t = fl_exp_neg_any256(_mm256_add_ps(ax, ax));
    __m256 y = _mm256_div_ps(_mm256_sub_ps(one, t), _mm256_add_ps(one, t));
    return _mm256_or_ps(y, _mm256_and_ps(x, sign_mask));
}

/* Element-wise activations: vector code for the common ones, the shared scalar formulas lane by
 * lane for the rest (row-wise activations never reach here). */
FL_AVX2_INLINE __m256 fl_act256(int act, __m256 x) {
    switch (act) {
    case FL_ACT_LINEAR: return x;
    case FL_ACT_SIGMOID: return fl_sigmoid256(x);
    case FL_ACT_TANH: return fl_tanh256(x);
    /* maxps returns its second operand when one is NaN: NaN stays NaN, as in tf.nn.relu. */
    case FL_ACT_RELU: return _mm256_max_ps(_mm256_setzero_ps(), x);
    case FL_ACT_HARD_SIGMOID_K2:
        return fl_clamp256(_mm256_fmadd_ps(x, _mm256_set1_ps(0.2f), _mm256_set1_ps(0.5f)),
                           0.0f, 1.0f);
    case FL_ACT_HARD_SIGMOID_K3:
        return _mm256_div_ps(fl_clamp256(_mm256_add_ps(x, _mm256_set1_ps(3.0f)), 0.0f, 6.0f),
                             _mm256_set1_ps(6.0f));
    default: {
        float lanes[8];
        _mm256_storeu_ps(lanes, x);
        for (int j = 0; j < 8; j++) lanes[j] = fl_activation_scalar(act, lanes[j]);
        return _mm256_loadu_ps(lanes);
    }
    }
}

#endif
