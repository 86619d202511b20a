/* AVX2+FMA LSTM and SimpleRNN steps: a register-blocked micro-kernel computes 4 vectors of 8
 * units for up to 3 batch rows at once (12 accumulators of the 16 ymm registers; each weight
 * vector loaded once serves 3 rows), then updates the state in registers (lstm_update_avx2.h,
 * shared with the AVX-512 kernels, which give these bits). For an LSTM the 4 vectors are the
 * gates i, f, c, o of 8 units; a SimpleRNN block is 32 units, 4 vectors of the one gate (same
 * packing, fastlstm.h), so it shares every loop here but the update. The `cell` arguments are
 * compile-time constants at each call (always_inline). Internal to rnn_cells.c.
 *
 * The same loops as lstm_step_simd.h, written out: stamped out from that body, the AVX2 batch
 * kernel ran 9% slower on Zen 5 (its hot k loop, identical instruction for instruction, fell
 * across three cache lines instead of two), so AVX2 keeps these until code placement is
 * controlled. Each row's arithmetic is the same chain of FMAs over k whatever the group it
 * falls in, so results do not depend on how rows are grouped or shared among threads. */
#include "lstm_update_avx2.h"

/* acc[i] += src[i][k] * w[k] for k < n_k (4 vectors of 8 units per k); returns w past the rows. */
FL_AVX2_INLINE const float *fl_accumulate4_avx2(const int n_rows, const float *const *src,
                                                    ptrdiff_t n_k, const float *w,
                                                    __m256 acc[3][4]) {
    for (ptrdiff_t k = 0; k < n_k; k++, w += 4 * FL_RNN_BLOCK) {
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + FL_RNN_BLOCK);
        const __m256 w2 = _mm256_loadu_ps(w + 2 * FL_RNN_BLOCK);
        const __m256 w3 = _mm256_loadu_ps(w + 3 * FL_RNN_BLOCK);
        for (int i = 0; i < n_rows; i++) {
            const __m256 v = _mm256_broadcast_ss(src[i] + k);
            acc[i][0] = _mm256_fmadd_ps(v, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(v, w1, acc[i][1]);
            acc[i][2] = _mm256_fmadd_ps(v, w2, acc[i][2]);
            acc[i][3] = _mm256_fmadd_ps(v, w3, acc[i][3]);
        }
    }
    return w;
}

FL_AVX2_INLINE void fl_lstm_block_avx2(const int cell, const int n_rows, const fl_rnn_params *p,
                                       const fl_rnn_step_args *a, ptrdiff_t r, ptrdiff_t b) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t block_units = cell == FL_CELL_SIMPLE ? G : B;
    const ptrdiff_t n_blocks = a->n_padded / block_units;
    const float *w = p->weights + b * (n_features + n_units) * G; /* (n_features + n_units, 4, B) */
    const float *bias = p->bias + b * G;
    const float *x_t[3], *h[3];
    __m256 acc[3][4];
    for (int i = 0; i < n_rows; i++) {
        x_t[i] = a->x + ((r + i) * a->n_timesteps + a->t) * n_features;
        h[i] = a->h_cur + (r + i) * a->n_padded;
        const float *init = a->xproj == NULL ? bias : fl_rnn_xproj_at(a, n_blocks, r + i, a->step_in_chunk, b);
        for (int g = 0; g < 4; g++) acc[i][g] = _mm256_loadu_ps(init + g * B);
    }
    if (a->xproj == NULL) {
        w = fl_accumulate4_avx2(n_rows, x_t, n_features, w, acc);
    } else {
        w += n_features * G;
    }
    fl_accumulate4_avx2(n_rows, h, n_units, w, acc);
    /* The gate loop below is not unrolled (its activations switch on run-time ids); reading the
     * accumulators from a copy keeps acc itself in registers through the k loops. */
    __m256 z[3][4];
    float *c[3], *h_next[3];
    for (int i = 0; i < n_rows; i++) {
        for (int g = 0; g < 4; g++) z[i][g] = acc[i][g];
        c[i] = a->c + (r + i) * a->n_padded + b * block_units;
        h_next[i] = a->h_next + (r + i) * a->n_padded + b * block_units;
    }
    fl_lstm_update_n_avx2(cell, n_rows, p, z, c, h_next);
}

/* One row, two unit blocks at once: 8 independent FMA chains instead of 4, which a single row
 * (batch-1 streaming) needs to keep both FMA pipes busy. Same per-unit arithmetic as above. */
FL_AVX2_INLINE void fl_lstm_block_pair_avx2(const int cell, const fl_rnn_params *p,
                                            const fl_rnn_step_args *a, ptrdiff_t r, ptrdiff_t b) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t block_units = cell == FL_CELL_SIMPLE ? G : B;
    const ptrdiff_t n_blocks = a->n_padded / block_units;
    const ptrdiff_t panel = (n_features + n_units) * G;
    const float *w = p->weights + b * panel;     /* block b; block b + 1 is at w + panel */
    const float *x_t = a->x + (r * a->n_timesteps + a->t) * n_features;
    const float *h = a->h_cur + r * a->n_padded;
    __m256 acc[2][4];
    ptrdiff_t k = 0;
    for (int i = 0; i < 2; i++) {
        const float *init = a->xproj == NULL ? p->bias + (b + i) * G
                                             : fl_rnn_xproj_at(a, n_blocks, r, a->step_in_chunk, b + i);
        for (int g = 0; g < 4; g++) acc[i][g] = _mm256_loadu_ps(init + g * B);
    }
    if (a->xproj != NULL) {
        k = n_features;
        w += n_features * G;
    }
    for (; k < n_features + n_units; k++, w += G) {
        const __m256 v = _mm256_broadcast_ss(k < n_features ? x_t + k : h + (k - n_features));
        for (int i = 0; i < 2; i++)
            for (int g = 0; g < 4; g++)
                acc[i][g] = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + i * panel + g * B), acc[i][g]);
    }
    __m256 z[2][4];
    float *c[2], *h_next[2];
    for (int i = 0; i < 2; i++) {
        for (int g = 0; g < 4; g++) z[i][g] = acc[i][g];
        c[i] = a->c + r * a->n_padded + (b + i) * block_units;
        h_next[i] = a->h_next + r * a->n_padded + (b + i) * block_units;
    }
    fl_lstm_update_n_avx2(cell, 2, p, z, c, h_next);
}

FL_AVX2_INLINE void fl_rnn4_step_avx2(const int cell, const fl_rnn_params *p,
                                      const fl_rnn_step_args *a, ptrdiff_t r0, ptrdiff_t r1,
                                      ptrdiff_t b0, ptrdiff_t b1) {
    const ptrdiff_t r_single = r1 - (r1 - r0) % 3;  /* rows past the groups of 3 */
    for (ptrdiff_t b = b0; b < b1; b++) {
        for (ptrdiff_t r = r0; r + 3 <= r1; r += 3) fl_lstm_block_avx2(cell, 3, p, a, r, b);
        if (r1 - r_single == 2) fl_lstm_block_avx2(cell, 2, p, a, r_single, b);
    }
    if (r1 - r_single == 1) {
        ptrdiff_t b = b0;
        for (; b + 2 <= b1; b += 2) fl_lstm_block_pair_avx2(cell, p, a, r_single, b);
        if (b < b1) fl_lstm_block_avx2(cell, 1, p, a, r_single, b);
    }
}

FL_AVX2_FN static void fl_lstm_step_avx2(const fl_rnn_params *p, const fl_rnn_step_args *a,
                                         ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t b0,
                                         ptrdiff_t b1) {
    fl_rnn4_step_avx2(FL_CELL_LSTM, p, a, r0, r1, b0, b1);
}

FL_AVX2_FN static void fl_simple_rnn_step_avx2(const fl_rnn_params *p,
                                               const fl_rnn_step_args *a, ptrdiff_t r0,
                                               ptrdiff_t r1, ptrdiff_t b0, ptrdiff_t b1) {
    fl_rnn4_step_avx2(FL_CELL_SIMPLE, p, a, r0, r1, b0, b1);
}
