/* The AVX-512 instantiation of the LSTM and SimpleRNN step (lstm_step_simd.h): 16-lane zmm
 * vectors, so one (row, block) of 4 x 8 units is 2 accumulators (gates i|f and c|o), 12 rows at
 * a time (24 of the 32 zmm registers; each weight vector loaded once serves 12 rows) and 4
 * blocks at a time for a single row (8 independent FMA chains, as the AVX2 pair kernel). The
 * update runs on the ymm halves (lstm_update_avx2.h): the same bits as the AVX2 path. */
#include "lstm_update_avx2.h"
#include "simd_avx512.h"

typedef __m512 fl_vec_avx512;
#define FL_SIMD_ISA avx512
#define FL_SIMD_INLINE FL_AVX512_INLINE
#define FL_SIMD_FN FL_AVX512_FN
#define FL_VW 16
#define FL_ROWS 12
#define FL_ROW_BLOCKS 4
FL_AVX512_INLINE __m512 fl_vload_avx512(const float *p) { return _mm512_loadu_ps(p); }
FL_AVX512_INLINE __m512 fl_vbcast_avx512(const float *p) { return _mm512_set1_ps(*p); }
FL_AVX512_INLINE __m512 fl_vfma_avx512(__m512 a, __m512 b, __m512 c) {
    return _mm512_fmadd_ps(a, b, c);
}
/* Gate vector g of one (row, block): i and f are the halves of its first zmm, c and o of its
 * second. */
FL_AVX512_INLINE __m256 fl_vhalf_avx512(__m512 v, int upper) {
    return upper ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))
                 : _mm512_castps512_ps256(v);
}
#define FL_VGATE(acc, g) fl_vhalf_avx512((acc)[(g) >> 1], (g) & 1)
#include "lstm_step_simd.h"
