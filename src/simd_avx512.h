/* AVX-512 vectors (16-lane zmm; AVX512F only) for the kernels' AVX-512 path. Like
 * simd_avx2.h, every function carries the target attribute, so the file compiles without
 * -mavx512f and runs only after the run-time check of the CPU and the OS's register state
 * (cpu.c). Then the vector math (simd_math.h) over them. Included only where FL_BUILD_AVX512. */
#ifndef FASTLSTM_SIMD_AVX512_H
#define FASTLSTM_SIMD_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#define FL_AVX512_FN __attribute__((target("avx512f,avx2,fma")))
#define FL_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx2,fma")))

typedef __m512 fl_vec_avx512;

FL_AVX512_INLINE __m512 fl_load_avx512(const float *p) { return _mm512_loadu_ps(p); }
FL_AVX512_INLINE void fl_store_avx512(float *p, __m512 x) { _mm512_storeu_ps(p, x); }
FL_AVX512_INLINE __m512 fl_set1_avx512(float s) { return _mm512_set1_ps(s); }
FL_AVX512_INLINE __m512 fl_bcast_avx512(const float *p) { return _mm512_set1_ps(*p); }
FL_AVX512_INLINE __m512 fl_add_avx512(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
FL_AVX512_INLINE __m512 fl_sub_avx512(__m512 a, __m512 b) { return _mm512_sub_ps(a, b); }
FL_AVX512_INLINE __m512 fl_mul_avx512(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
FL_AVX512_INLINE __m512 fl_div_avx512(__m512 a, __m512 b) { return _mm512_div_ps(a, b); }
FL_AVX512_INLINE __m512 fl_fma_avx512(__m512 a, __m512 b, __m512 c) {
    return _mm512_fmadd_ps(a, b, c);
}
FL_AVX512_INLINE __m512 fl_fnmadd_avx512(__m512 a, __m512 b, __m512 c) {
    return _mm512_fnmadd_ps(a, b, c);
}
FL_AVX512_INLINE __m512 fl_fnmsub_avx512(__m512 a, __m512 b, __m512 c) {
    return _mm512_fnmsub_ps(a, b, c);
}
/* The second operand when either is NaN (vminps/vmaxps). */
FL_AVX512_INLINE __m512 fl_min_avx512(__m512 a, __m512 b) { return _mm512_min_ps(a, b); }
FL_AVX512_INLINE __m512 fl_max_avx512(__m512 a, __m512 b) { return _mm512_max_ps(a, b); }
/* Sign-bit operations on the integer view: AVX512F has no float and/or (they are AVX512DQ). */
FL_AVX512_INLINE __m512 fl_abs_avx512(__m512 a) {
    return _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)));
}
FL_AVX512_INLINE __m512 fl_or_sign_avx512(__m512 y, __m512 x) {
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x),
                                          _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y), sign));
}
FL_AVX512_INLINE __m512 fl_pow2_of_magic_avx512(__m512 k) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(k), 23));
}

typedef __mmask16 fl_mask_avx512;
FL_AVX512_INLINE __mmask16 fl_mask_first_avx512(int n) {
    return (__mmask16)((1u << n) - 1u);
}
FL_AVX512_INLINE __m512 fl_load_masked_avx512(const float *p, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, p);
}
FL_AVX512_INLINE void fl_store_masked_avx512(float *p, __m512 x, __mmask16 m) {
    _mm512_mask_storeu_ps(p, m, x);
}

/* Half `upper` (0 or 1) of a zmm as a ymm, and two ymm as one zmm. */
FL_AVX512_INLINE __m256 fl_half_avx512(__m512 v, int upper) {
    return upper ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))
                 : _mm512_castps512_ps256(v);
}
FL_AVX512_INLINE __m512 fl_join_avx512(__m256 lo, __m256 hi) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)),
                                               _mm256_castps_pd(hi), 1));
}

/* Two (row, block) pairs per vector (lstm_update_simd.h): the 8 floats at ptrs[0] + off in
 * the low half, those at ptrs[1] + off in the high half. */
FL_AVX512_INLINE __m512 fl_load_pairs_avx512(const float *const *ptrs, ptrdiff_t off) {
    return fl_join_avx512(_mm256_loadu_ps(ptrs[0] + off), _mm256_loadu_ps(ptrs[1] + off));
}
FL_AVX512_INLINE void fl_store_pairs_avx512(float *const *ptrs, ptrdiff_t off, __m512 x) {
    _mm256_storeu_ps(ptrs[0] + off, fl_half_avx512(x, 0));
    _mm256_storeu_ps(ptrs[1] + off, fl_half_avx512(x, 1));
}

#define FL_SIMD_ISA avx512
#define FL_SIMD_INLINE FL_AVX512_INLINE
#define FL_VW 16
#include "simd_math.h"
#undef FL_VW
#undef FL_SIMD_INLINE
#undef FL_SIMD_ISA

#endif
