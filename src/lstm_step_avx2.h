/* The AVX2+FMA instantiation of the LSTM and SimpleRNN step (lstm_step_simd.h): 8-lane ymm
 * vectors, 4 per (row, block), 3 rows at a time (12 accumulators of the 16 ymm registers;
 * each weight vector loaded once serves 3 rows), 2 blocks at a time for a single row. */
#include "lstm_update_avx2.h"

typedef __m256 fl_vec_avx2;
#define FL_SIMD_ISA avx2
#define FL_SIMD_INLINE FL_AVX2_INLINE
#define FL_SIMD_FN FL_AVX2_FN
#define FL_VW 8
#define FL_ROWS 3        /* rows per register block */
#define FL_ROW_BLOCKS 2  /* unit blocks at once for a single row */
FL_AVX2_INLINE __m256 fl_vload_avx2(const float *p) { return _mm256_loadu_ps(p); }
FL_AVX2_INLINE __m256 fl_vbcast_avx2(const float *p) { return _mm256_broadcast_ss(p); }
FL_AVX2_INLINE __m256 fl_vfma_avx2(__m256 a, __m256 b, __m256 c) {
    return _mm256_fmadd_ps(a, b, c);
}
/* The 4 gate vectors (i, f, c, o: 8 units each) of one (row, block) from its accumulators. */
FL_AVX2_INLINE void fl_vgates_avx2(const __m256 *acc, __m256 z[4]) {
    for (int g = 0; g < 4; g++) z[g] = acc[g];
}
#include "lstm_step_simd.h"
