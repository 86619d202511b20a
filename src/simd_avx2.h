/* AVX2+FMA vectors (8-lane ymm) for the kernels' AVX2 path, and for the 8-lane state updates of
 * the AVX-512 path. Every function carries the target attribute, so the file compiles without
 * -mavx2 and the code only runs after the run-time CPU check (cpu.c). Then the vector math
 * (simd_math.h) over them. Included only where FL_BUILD_AVX2 is set. */
#ifndef FASTLSTM_SIMD_AVX2_H
#define FASTLSTM_SIMD_AVX2_H

#include <immintrin.h>
#include <stddef.h>

#define FL_AVX2_FN __attribute__((target("avx2,fma")))
#define FL_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

typedef __m256 fl_vec_avx2;

FL_AVX2_INLINE __m256 fl_load_avx2(const float *p) { return _mm256_loadu_ps(p); }
FL_AVX2_INLINE void fl_store_avx2(float *p, __m256 x) { _mm256_storeu_ps(p, x); }
FL_AVX2_INLINE __m256 fl_set1_avx2(float s) { return _mm256_set1_ps(s); }
FL_AVX2_INLINE __m256 fl_bcast_avx2(const float *p) { return _mm256_broadcast_ss(p); }
FL_AVX2_INLINE __m256 fl_add_avx2(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
FL_AVX2_INLINE __m256 fl_sub_avx2(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
FL_AVX2_INLINE __m256 fl_mul_avx2(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
FL_AVX2_INLINE __m256 fl_div_avx2(__m256 a, __m256 b) { return _mm256_div_ps(a, b); }
/* a * b + c, c - a * b, -(a * b) - c, each rounded once */
FL_AVX2_INLINE __m256 fl_fma_avx2(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
FL_AVX2_INLINE __m256 fl_fnmadd_avx2(__m256 a, __m256 b, __m256 c) {
    return _mm256_fnmadd_ps(a, b, c);
}
FL_AVX2_INLINE __m256 fl_fnmsub_avx2(__m256 a, __m256 b, __m256 c) {
    return _mm256_fnmsub_ps(a, b, c);
}
/* The second operand when either is NaN (minps/maxps). */
FL_AVX2_INLINE __m256 fl_min_avx2(__m256 a, __m256 b) { return _mm256_min_ps(a, b); }
FL_AVX2_INLINE __m256 fl_max_avx2(__m256 a, __m256 b) { return _mm256_max_ps(a, b); }
FL_AVX2_INLINE __m256 fl_abs_avx2(__m256 a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
/* y with the sign bit of x set in it (y >= 0). */
FL_AVX2_INLINE __m256 fl_or_sign_avx2(__m256 y, __m256 x) {
    return _mm256_or_ps(y, _mm256_and_ps(x, _mm256_set1_ps(-0.0f)));
}
/* 2^n from k = 1.5 * 2^23 + 127 + n: its low mantissa bits shifted into the exponent. */
FL_AVX2_INLINE __m256 fl_pow2_of_magic_avx2(__m256 k) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(k), 23));
}

/* The 8 floats at ptrs[0] + off: one (row, block) pair per vector (lstm_update_simd.h). */
FL_AVX2_INLINE __m256 fl_load_pairs_avx2(const float *const *ptrs, ptrdiff_t off) {
    return _mm256_loadu_ps(ptrs[0] + off);
}
FL_AVX2_INLINE void fl_store_pairs_avx2(float *const *ptrs, ptrdiff_t off, __m256 x) {
    _mm256_storeu_ps(ptrs[0] + off, x);
}

/* The first n lanes (1 <= n <= 8), zeros past them; no lane past them is read or written. */
typedef __m256i fl_mask_avx2;
FL_AVX2_INLINE __m256i fl_mask_first_avx2(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
FL_AVX2_INLINE __m256 fl_load_masked_avx2(const float *p, __m256i m) {
    return _mm256_maskload_ps(p, m);
}
FL_AVX2_INLINE void fl_store_masked_avx2(float *p, __m256 x, __m256i m) {
    _mm256_maskstore_ps(p, m, x);
}

#define FL_SIMD_ISA avx2
#define FL_SIMD_INLINE FL_AVX2_INLINE
#define FL_VW 8
#include "simd_math.h"
#undef FL_VW
#undef FL_SIMD_INLINE
#undef FL_SIMD_ISA

#endif
