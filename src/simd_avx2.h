/* AVX2+FMA vector math for the kernels' AVX2 path. Every function carries the target attribute,
 * so the file compiles without -mavx2 and the code only runs after the run-time CPU check
 * (cpu.c). Included only where FL_BUILD_AVX2 is set. */
#ifndef FASTLSTM_SIMD_AVX2_H
#define FASTLSTM_SIMD_AVX2_H

#include <immintrin.h>

#include "activations.h"

#define FL_AVX2_FN __attribute__((target("avx2,fma")))
#define FL_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* exp(x), Cephes expf scheme: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r and
 * 2^n built in the exponent bits. Relative error ~1.5e-7 on [-87, 88]; clamped outside, where
 * the result saturates to 0 or +inf as expf does. */
FL_AVX2_INLINE __m256 fl_exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-88.3762626647949f)),
                      _mm256_set1_ps(88.3762626647949f));
    __m256 fx = _mm256_floor_ps(
        _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i n = _mm256_cvttps_epi32(fx);
    n = _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}

/* 1 / (1 + e^-x): e^-x saturates to +inf for x < -88, giving 0 as the libm formula does. */
FL_AVX2_INLINE __m256 fl_sigmoid256(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, fl_exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* tanh|x| = (1 - t) / (1 + t), t = e^(-2|x|) in (0, 1], sign restored: no overflow anywhere,
 * absolute error ~2e-7 against libm tanhf. */
FL_AVX2_INLINE __m256 fl_tanh256(__m256 x) {
    const __m256 sign_mask = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 ax = _mm256_andnot_ps(sign_mask, x);
    __m256 t = fl_exp256(_mm256_mul_ps(ax, _mm256_set1_ps(-2.0f)));
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
    case FL_ACT_RELU: return _mm256_max_ps(x, _mm256_setzero_ps());
    case FL_ACT_HARD_SIGMOID_K2:
        return _mm256_min_ps(_mm256_max_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(0.2f),
                                                           _mm256_set1_ps(0.5f)),
                                           _mm256_setzero_ps()), _mm256_set1_ps(1.0f));
    case FL_ACT_HARD_SIGMOID_K3:
        return _mm256_div_ps(_mm256_min_ps(_mm256_max_ps(_mm256_add_ps(x, _mm256_set1_ps(3.0f)),
                                                         _mm256_setzero_ps()),
                                           _mm256_set1_ps(6.0f)), _mm256_set1_ps(6.0f));
    default: {
        float lanes[8];
        _mm256_storeu_ps(lanes, x);
        for (int j = 0; j < 8; j++) lanes[j] = fl_activation_scalar(act, lanes[j]);
        return _mm256_loadu_ps(lanes);
    }
    }
}

#endif
