/* The AVX2+FMA instantiation of every kernel body (kernel_bodies.h) on ymm vectors
 * (simd_avx2.h), blocked for 16 registers: an LSTM block's 4 accumulators for 3 batch rows at a
 * time (12 registers; each weight vector loaded once serves 3 rows) and 2 blocks at a time for a
 * single row (8 independent FMA chains, which batch-1 streaming needs to keep both FMA pipes
 * busy); the GRU likewise, its z|r sums as two ymm. */
#include "kernels.h"
#include "cpu_dispatch.h"

#if FL_BUILD_AVX2
#include "simd_avx2.h"

#define FL_SIMD_ISA avx2
#define FL_GATE_ISA avx2
#define FL_SIMD_INLINE FL_AVX2_INLINE
#define FL_GATE_INLINE FL_AVX2_INLINE
#define FL_SIMD_FN FL_AVX2_FN
#define FL_VW 8
#define FL_LSTM_ROWS 3
#define FL_LSTM_ROW_BLOCKS 2
#define FL_LSTM_GATE(acc, g) ((acc)[g])
#define FL_WIDE_UPD_ISA avx2
#define FL_WIDE_UPD_INLINE FL_AVX2_INLINE
#define FL_WIDE_UPD_PAIRS 1
#define FL_GRU_ROWS 3
#define FL_GRU_ROW_BLOCKS 2

typedef struct { __m256 lo, hi; } fl_gru_pair_avx2;
typedef __m256 fl_gru_bcast_avx2;
FL_AVX2_INLINE __m256 fl_gru_bcast_of_avx2(const float *p) { return _mm256_broadcast_ss(p); }
FL_AVX2_INLINE __m256 fl_gru_bcast_gate_avx2(__m256 v) { return v; }
FL_AVX2_INLINE fl_gru_pair_avx2 fl_gru_pload_avx2(const float *p) {
    fl_gru_pair_avx2 v = {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
    return v;
}
FL_AVX2_INLINE fl_gru_pair_avx2 fl_gru_pfma_avx2(__m256 v, fl_gru_pair_avx2 w,
                                                 fl_gru_pair_avx2 acc) {
    acc.lo = _mm256_fmadd_ps(v, w.lo, acc.lo);
    acc.hi = _mm256_fmadd_ps(v, w.hi, acc.hi);
    return acc;
}
FL_AVX2_INLINE __m256 fl_gru_plo_avx2(fl_gru_pair_avx2 v) { return v.lo; }
FL_AVX2_INLINE __m256 fl_gru_phi_avx2(fl_gru_pair_avx2 v) { return v.hi; }

/* The convolution: 6 positions x 2 ymm of filters, 12 accumulators (12 FMA chains), with 2
 * kernel vectors and a broadcast: 15 of the 16 registers. */
#define FL_CONV_COLS 6
#define FL_CONV_VECS 2

#include "kernel_bodies.h"
#else
typedef int fl_kernels_avx2_not_built; /* ISO C wants a declaration in every file */
#endif
