/* The AVX-512 instantiation of the reset_after GRU step (gru_step_simd.h): on batches two blocks at
 * a time, each (row, block)'s z|r sums in one zmm and both blocks' candidate parts in one, 9
 * rows at a time (27 accumulators of the 32 registers); in the unit-parallel schedule one
 * block's z|r in a zmm and its candidate parts in a ymm each, and 4 blocks at a time for a
 * single row. The update runs on ymm gate vectors
 * (gru_update_avx2.h): the same bits as the AVX2 path. */
#include "gru_update_avx2.h"
#include "simd_avx512.h"

typedef __m512 fl_pair_avx512;
#define FL_SIMD_ISA avx512
#define FL_SIMD_INLINE FL_AVX512_INLINE
#define FL_SIMD_FN FL_AVX512_FN
#define FL_ROWS 9
#define FL_ROW_BLOCKS 4
typedef __m512 fl_bcast_avx512;
FL_AVX512_INLINE __m512 fl_bcast_of_avx512(const float *p) { return _mm512_set1_ps(*p); }
FL_AVX512_INLINE __m256 fl_bcast_ymm_avx512(__m512 v) { return _mm512_castps512_ps256(v); }
FL_AVX512_INLINE __m512 fl_pload_avx512(const float *p) { return _mm512_loadu_ps(p); }
FL_AVX512_INLINE __m512 fl_pfma_avx512(__m512 v, __m512 w, __m512 acc) {
    return _mm512_fmadd_ps(v, w, acc);
}
FL_AVX512_INLINE __m256 fl_plo_avx512(__m512 v) { return _mm512_castps512_ps256(v); }
FL_AVX512_INLINE __m256 fl_phi_avx512(__m512 v) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}
/* Two blocks' 8 candidate units in one zmm: 9 rows x (2 z|r + 1) accumulators, 27 of 32. */
#define FL_GRU_PAIR_ROWS 9
typedef __m512 fl_part2_avx512;
#define FL_PART2 fl_part2_avx512
FL_AVX512_INLINE __m512 fl_part2_load_avx512(const float *lo, const float *hi) {
    return _mm512_castpd_ps(_mm512_insertf64x4(
        _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(lo))),
        _mm256_castps_pd(_mm256_loadu_ps(hi)), 1));
}
FL_AVX512_INLINE __m512 fl_part2_fma_avx512(__m512 v, __m512 w, __m512 acc) {
    return _mm512_fmadd_ps(v, w, acc);
}
FL_AVX512_INLINE __m256 fl_part2_get_avx512(__m512 v, int j) {
    return j == 0 ? _mm512_castps512_ps256(v)
                  : _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}
#include "gru_step_simd.h"
