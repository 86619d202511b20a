/* AVX2+FMA GRU steps. The reset_after step is the AVX2 instantiation of gru_step_simd.h (its
 * z|r sums as two ymm, 3 rows at a time, 2 blocks at a time for a single row); the
 * reset_after=False GRU's two-pass step below is AVX2 only (the AVX-512 path runs it too).
 * Internal to rnn_cells.c; packing in fastlstm.h. */
#include "gru_update_avx2.h"

/* acc[i][0] += src[i][k] * w[k][0], acc[i][1] += ... w[k][1], acc[i][last] += ... w[k][2]
 * for k < n_k; returns w past the rows. `last` is a compile-time 2 (x rows) or 3 (h rows). */
FL_AVX2_INLINE const float *fl_accumulate3_avx2(const int n_rows, const float *const *src,
                                                ptrdiff_t n_k, const float *w, __m256 acc[][4],
                                                const int last) {
    for (ptrdiff_t k = 0; k < n_k; k++, w += 3 * FL_RNN_BLOCK) {
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + FL_RNN_BLOCK);
        const __m256 w2 = _mm256_loadu_ps(w + 2 * FL_RNN_BLOCK);
        for (int i = 0; i < n_rows; i++) {
            const __m256 v = _mm256_broadcast_ss(src[i] + k);
            acc[i][0] = _mm256_fmadd_ps(v, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(v, w1, acc[i][1]);
            acc[i][last] = _mm256_fmadd_ps(v, w2, acc[i][last]);
        }
    }
    return w;
}

/* z|r as two ymm: 16 lanes. */
typedef struct { __m256 lo, hi; } fl_pair_avx2;
#define FL_SIMD_ISA avx2
#define FL_SIMD_INLINE FL_AVX2_INLINE
#define FL_SIMD_FN FL_AVX2_FN
#define FL_ROWS 3
#define FL_ROW_BLOCKS 2
typedef __m256 fl_bcast_avx2;
FL_AVX2_INLINE __m256 fl_bcast_of_avx2(const float *p) { return _mm256_broadcast_ss(p); }
FL_AVX2_INLINE __m256 fl_bcast_ymm_avx2(__m256 v) { return v; }
FL_AVX2_INLINE fl_pair_avx2 fl_pload_avx2(const float *p) {
    fl_pair_avx2 v = {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
    return v;
}
FL_AVX2_INLINE fl_pair_avx2 fl_pfma_avx2(__m256 v, fl_pair_avx2 w, fl_pair_avx2 acc) {
    acc.lo = _mm256_fmadd_ps(v, w.lo, acc.lo);
    acc.hi = _mm256_fmadd_ps(v, w.hi, acc.hi);
    return acc;
}
FL_AVX2_INLINE __m256 fl_plo_avx2(fl_pair_avx2 v) { return v.lo; }
FL_AVX2_INLINE __m256 fl_phi_avx2(fl_pair_avx2 v) { return v.hi; }
#include "gru_step_simd.h"

/* Pass 2 of the reset-before GRU for n_rows rows and n_blocks (compile-time) blocks from b:
 * x_h + (r * h) @ U_h, then the candidate and the update. */
FL_AVX2_INLINE void fl_gru_candidate_avx2(const int n_rows, const int n_blocks,
                                          const fl_rnn_params *p, const fl_rnn_step_args *a,
                                          ptrdiff_t r, ptrdiff_t b, float *const *z,
                                          float *const *x_h, float *const *r_h) {
    enum { B = FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t panel = (n_features + n_units) * 3 * B;
    const float *w = p->weights + b * panel + (n_features * 3 + n_units * 2) * B;
    __m256 acc[3][4];
    _Pragma("GCC unroll 4")
    for (int i = 0; i < n_rows; i++)
        _Pragma("GCC unroll 4")
        for (int q = 0; q < n_blocks; q++) acc[i][q] = _mm256_loadu_ps(x_h[i] + (b + q) * B);
    for (ptrdiff_t k = 0; k < n_units; k++, w += B) {
        __m256 wq[4];
        _Pragma("GCC unroll 4")
        for (int q = 0; q < n_blocks; q++) wq[q] = _mm256_loadu_ps(w + q * panel);
        _Pragma("GCC unroll 4")
        for (int i = 0; i < n_rows; i++) {
            const __m256 v = _mm256_broadcast_ss(r_h[i] + k);
            _Pragma("GCC unroll 4")
            for (int q = 0; q < n_blocks; q++) acc[i][q] = _mm256_fmadd_ps(v, wq[q], acc[i][q]);
        }
    }
    const __m256 one = _mm256_set1_ps(1.0f);
    _Pragma("GCC unroll 4")
    for (int i = 0; i < n_rows; i++) {
        _Pragma("GCC unroll 4")
        for (int q = 0; q < n_blocks; q++) {
            const ptrdiff_t u = (b + q) * B;
            const __m256 zv = _mm256_loadu_ps(z[i] + u);
            const __m256 hh = fl_act256(p->activation, acc[i][q]);
            const __m256 h = _mm256_loadu_ps(a->h_cur + (r + i) * a->n_padded + u);
            _mm256_storeu_ps(a->h_next + (r + i) * a->n_padded + u,
                             _mm256_add_ps(_mm256_mul_ps(zv, h),
                                           _mm256_mul_ps(_mm256_sub_ps(one, zv), hh)));
        }
    }
}

/* One step of up to 3 rows of a reset_after=False GRU with element-wise activations, the rows
 * register-blocked as in the reset_after kernel: pass 1 takes z, r and x_h of every block
 * (r * h kept for pass 2), pass 2 the candidates of several blocks at a time. */
FL_AVX2_INLINE void fl_gru_reset_before_group_avx2(const int n_rows, const fl_rnn_params *p,
                                                   const fl_rnn_step_args *a, ptrdiff_t r,
                                                   float *scratch /* (9, n_padded) */) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units, n_padded = a->n_padded;
    const ptrdiff_t panel = (n_features + n_units) * 3 * B, n_blocks = n_padded / B;
    const int rec_act = p->recurrent_activation;
    const float *x_t[3], *h[3];
    float *z[3], *x_h[3], *r_h[3];
    _Pragma("GCC unroll 4")
    for (int i = 0; i < n_rows; i++) {
        x_t[i] = a->x + ((r + i) * a->n_timesteps + a->t) * n_features;
        h[i] = a->h_cur + (r + i) * n_padded;
        z[i] = scratch + i * n_padded;
        x_h[i] = scratch + (3 + i) * n_padded;
        r_h[i] = scratch + (6 + i) * n_padded;
    }
    for (ptrdiff_t b = 0; b < n_blocks; b++) {
        const float *w = p->weights + b * panel;
        __m256 acc[3][4];
        _Pragma("GCC unroll 4")
        for (int i = 0; i < n_rows; i++)
            for (int g = 0; g < 3; g++) acc[i][g] = _mm256_loadu_ps(p->bias + b * G + g * B);
        w = fl_accumulate3_avx2(n_rows, x_t, n_features, w, acc, 2);
        for (ptrdiff_t k = 0; k < n_units; k++, w += 2 * B) {
            const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + B);
            _Pragma("GCC unroll 4")
            for (int i = 0; i < n_rows; i++) {
                const __m256 v = _mm256_broadcast_ss(h[i] + k);
                acc[i][0] = _mm256_fmadd_ps(v, w0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(v, w1, acc[i][1]);
            }
        }
        _Pragma("GCC unroll 4")
        for (int i = 0; i < n_rows; i++) {
            _mm256_storeu_ps(z[i] + b * B, fl_act256(rec_act, acc[i][0]));
            /* h is zero past n_units, so r * h is too: pass 2 reads only k < n_units anyway. */
            _mm256_storeu_ps(r_h[i] + b * B, _mm256_mul_ps(fl_act256(rec_act, acc[i][1]),
                                                           _mm256_loadu_ps(h[i] + b * B)));
            _mm256_storeu_ps(x_h[i] + b * B, acc[i][2]);
        }
    }
    /* 3 rows x 3 blocks or 2 rows x 4: at most 12 accumulators beside the weight vectors. */
    const int group = n_rows == 3 ? 3 : 4;
    ptrdiff_t b = 0;
    for (; b + group <= n_blocks; b += group)
        fl_gru_candidate_avx2(n_rows, group, p, a, r, b, z, x_h, r_h);
    for (; b + 2 <= n_blocks; b += 2) fl_gru_candidate_avx2(n_rows, 2, p, a, r, b, z, x_h, r_h);
    if (b < n_blocks) fl_gru_candidate_avx2(n_rows, 1, p, a, r, b, z, x_h, r_h);
}

/* Whole rows [r0, r1) of a reset_after=False GRU (Keras's default before 2.3 and every Keras 1
 * GRU) in groups of 3; row-wise activations go row by row through the portable-path step. */
FL_AVX2_FN static void fl_gru_reset_before_rows_avx2(const fl_rnn_params *p,
                                                     const fl_rnn_step_args *a, ptrdiff_t r0,
                                                     ptrdiff_t r1, float *scratch) {
    if (fl_activation_is_rowwise(p->activation)
        || fl_activation_is_rowwise(p->recurrent_activation)) {
        for (ptrdiff_t r = r0; r < r1; r++) fl_gru_reset_before_step_row(p, a, r, scratch);
        return;
    }
    ptrdiff_t r = r0;
    for (; r + 3 <= r1; r += 3) fl_gru_reset_before_group_avx2(3, p, a, r, scratch);
    if (r1 - r == 2) fl_gru_reset_before_group_avx2(2, p, a, r, scratch);
    else if (r1 - r == 1) fl_gru_reset_before_group_avx2(1, p, a, r, scratch);
}
