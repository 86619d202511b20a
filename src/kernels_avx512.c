/* The AVX-512 instantiation of every kernel body (kernel_bodies.h) on zmm vectors
 * (simd_avx512.h), blocked for 32 registers, not copied from AVX2's 16:
 *  - LSTM/SimpleRNN: one (row, block) of 4 x 8 units is 2 accumulators (gates i|f and c|o),
 *    12 rows at a time (24 registers; each weight vector loaded once serves 12 rows), and 4
 *    blocks at a time for a single row (8 independent FMA chains).
 *  - GRU: on batches two blocks at a time, each (row, block)'s z|r sums in one zmm and both
 *    blocks' candidate parts in one, 9 rows at a time (27 accumulators); in the unit-parallel
 *    schedule one block's z|r in a zmm and its candidate parts in a ymm each, and 4 blocks at a
 *    time for a single row.
 * The updates run on zmm, one gate of two (row, block) pairs in each (the LSTM's odd pair, and
 * the GRU's outside the two-block batch path, on ymm with the AVX2 update, FL_GATE_ISA); the
 * same operations on every lane, so the AVX-512 path computes the AVX2 path's bits. */
#include "kernels.h"
#include "cpu_dispatch.h"

#if FL_BUILD_AVX512
#include "simd_avx2.h"
#include "simd_avx512.h"

#define FL_SIMD_ISA avx512
#define FL_GATE_ISA avx2
#define FL_SIMD_INLINE FL_AVX512_INLINE
#define FL_GATE_INLINE FL_AVX2_INLINE
#define FL_SIMD_FN FL_AVX512_FN
#define FL_VW 16
#define FL_LSTM_ROWS 12
#define FL_LSTM_ROW_BLOCKS 4
/* Gate vector g of one (row, block): i and f are the halves of its first zmm, c and o of its
 * second. */
#define FL_LSTM_GATE(acc, g) fl_half_avx512((acc)[(g) >> 1], (g) & 1)
/* The updates on zmm, each holding one gate of two pairs (fl_lstm_gates2_avx512,
 * fl_gru_gates2_avx512). */
#define FL_WIDE_UPD_ISA avx512
#define FL_WIDE_UPD_INLINE FL_AVX512_INLINE
#define FL_WIDE_UPD_PAIRS 2
FL_AVX512_INLINE void fl_lstm_gates2_avx512(const __m512 *a, const __m512 *b, __m512 z[4]) {
    z[0] = _mm512_shuffle_f32x4(a[0], b[0], 0x44);  /* the low halves of a[0] and b[0] */
    z[1] = _mm512_shuffle_f32x4(a[0], b[0], 0xee);  /* their high halves */
    z[2] = _mm512_shuffle_f32x4(a[1], b[1], 0x44);
    z[3] = _mm512_shuffle_f32x4(a[1], b[1], 0xee);
}
#define FL_GRU_ROWS 9
#define FL_GRU_ROW_BLOCKS 4

typedef __m512 fl_gru_pair_avx512;
typedef __m512 fl_gru_bcast_avx512;
FL_AVX512_INLINE __m512 fl_gru_bcast_of_avx512(const float *p) { return _mm512_set1_ps(*p); }
FL_AVX512_INLINE __m256 fl_gru_bcast_gate_avx512(__m512 v) { return _mm512_castps512_ps256(v); }
FL_AVX512_INLINE __m512 fl_gru_pload_avx512(const float *p) { return _mm512_loadu_ps(p); }
FL_AVX512_INLINE __m512 fl_gru_pfma_avx512(__m512 v, __m512 w, __m512 acc) {
    return _mm512_fmadd_ps(v, w, acc);
}
FL_AVX512_INLINE __m256 fl_gru_plo_avx512(__m512 v) { return fl_half_avx512(v, 0); }
FL_AVX512_INLINE __m256 fl_gru_phi_avx512(__m512 v) { return fl_half_avx512(v, 1); }
/* Two blocks' 8 candidate units in one zmm: 9 rows x (2 z|r + 1) accumulators, 27 of 32. */
#define FL_GRU_PAIR_ROWS 9
typedef __m512 fl_gru_part2_avx512;
FL_AVX512_INLINE __m512 fl_gru_part2_load_avx512(const float *lo, const float *hi) {
    return fl_join_avx512(_mm256_loadu_ps(lo), _mm256_loadu_ps(hi));
}
FL_AVX512_INLINE __m512 fl_gru_part2_fma_avx512(__m512 v, __m512 w, __m512 acc) {
    return _mm512_fmadd_ps(v, w, acc);
}
FL_AVX512_INLINE __m256 fl_gru_part2_get_avx512(__m512 v, int j) { return fl_half_avx512(v, j); }
/* z and r of two (row, block) pairs, each in one zmm of the update, from their z|r sums, and
 * two pairs' 8-unit sums joined. */
FL_AVX512_INLINE __m512 fl_gru_join_avx512(__m256 a, __m256 b) { return fl_join_avx512(a, b); }
FL_AVX512_INLINE void fl_gru_gates2_avx512(__m512 a, __m512 b, __m512 *z, __m512 *r) {
    *z = _mm512_shuffle_f32x4(a, b, 0x44);
    *r = _mm512_shuffle_f32x4(a, b, 0xee);
}

/* The convolution: 8 positions x 2 zmm of filters, 16 accumulators; 16 filters still make 8
 * independent FMA chains. */
#define FL_CONV_COLS 8
#define FL_CONV_VECS 2

#include "kernel_bodies.h"
#else
typedef int fl_kernels_avx512_not_built; /* ISO C wants a declaration in every file */
#endif
