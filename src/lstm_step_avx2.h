/* AVX2+FMA LSTM and SimpleRNN steps: a register-blocked micro-kernel computes 4 vectors of 8
 * units for up to 3 batch rows at once (12 accumulators of the 16 ymm registers; each weight
 * vector loaded once serves 3 rows), then updates the state in registers. For an LSTM the 4
 * vectors are the gates i, f, c, o of 8 units; a SimpleRNN block is 32 units, 4 vectors of the
 * one gate (same packing, fastlstm.h), so it shares every loop here but the update. The `cell`
 * arguments are compile-time constants at each call (always_inline). Internal to rnn.c.
 *
 * Each row's arithmetic is the same chain of FMAs over k whatever the group it falls in, so
 * results do not depend on how rows are grouped or shared among threads. */
#include "simd_avx2.h"

/* The default cell (recurrent sigmoid, tanh) for n independent (row, 8-unit block) pairs,
 * written over e = e^-z so that i*g and o*tanh(c) each take one division of a product:
 *   i*g = (1 - e_g) / ((1 + e_i)(1 + e_g)),  e_g = e^(-2 z_g),  as tanh g = (1 - e_g)/(1 + e_g)
 *   f*c = c / (1 + e_f),                     h = (1 - e_c) / ((1 + e_o)(1 + e_c)),  e_c = e^(-2c)
 * Exponents are clamped to [-40, 40], beyond which sigmoid and tanh are constant to float
 * precision (sigmoid(-40) = 4e-18), so a product of two (1 + e) stays below 2^116. Three
 * divisions instead of five, and the exps of a pair in lockstep (fl_exp_neg256_n). Divisions,
 * not rcpps with a Newton step: its one-sided error, though ~1e-7, biases f and builds up in c
 * over long sequences (4x the float64-reference error after 200 steps of a strongly recurrent
 * cell, in our tests), and they cost no more here. */
FL_AVX2_INLINE void fl_lstm_update_sigmoid_tanh_avx2(const int n, __m256 z[][4], float *const *c,
                                                     float *const *h_next) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e_c[3], o_den[3];
    for (int i = 0; i < n; i++) {
        __m256 e[4] = {z[i][0], z[i][1], _mm256_add_ps(z[i][2], z[i][2]), z[i][3]};
        for (int g = 0; g < 4; g++) e[g] = fl_clamp256(e[g], -40.0f, 40.0f);
        fl_exp_neg256_n(4, e);
        const __m256 i_g = _mm256_div_ps(_mm256_sub_ps(one, e[2]),
                                         _mm256_mul_ps(_mm256_add_ps(one, e[0]),
                                                       _mm256_add_ps(one, e[2])));
        const __m256 c_new = _mm256_add_ps(
            _mm256_div_ps(_mm256_loadu_ps(c[i]), _mm256_add_ps(one, e[1])), i_g);
        _mm256_storeu_ps(c[i], c_new);
        o_den[i] = _mm256_add_ps(one, e[3]);
        e_c[i] = fl_clamp256(_mm256_add_ps(c_new, c_new), -40.0f, 40.0f);
    }
    fl_exp_neg256_n(n, e_c);
    for (int i = 0; i < n; i++)
        _mm256_storeu_ps(h_next[i],
                         _mm256_div_ps(_mm256_sub_ps(one, e_c[i]),
                                       _mm256_mul_ps(o_den[i], _mm256_add_ps(one, e_c[i]))));
}

/* Gates i, f, c, o of 8 units from their pre-activations z, then c and h in place. */
FL_AVX2_INLINE void fl_lstm_update_avx2(const fl_rnn_params *p, const __m256 z[4],
                                        float *c /* (8) in/out */, float *h_next /* (8) */) {
    const int act = p->activation, rec_act = p->recurrent_activation;
    const __m256 ig = fl_act256(rec_act, z[0]);
    const __m256 fg = fl_act256(rec_act, z[1]);
    const __m256 cg = fl_act256(act, z[2]);
    const __m256 og = fl_act256(rec_act, z[3]);
    const __m256 c_new = _mm256_fmadd_ps(fg, _mm256_loadu_ps(c), _mm256_mul_ps(ig, cg));
    _mm256_storeu_ps(c, c_new);
    _mm256_storeu_ps(h_next, _mm256_mul_ps(og, fl_act256(act, c_new)));
}

/* The update of n (block, row) pairs: the fused default LSTM cell, the generic one, or a
 * SimpleRNN's h' = activation(z) over its 32 units (c unused). */
FL_AVX2_INLINE void fl_lstm_update_n_avx2(const int cell, const int n, const fl_rnn_params *p,
                                          __m256 z[][4], float *const *c,
                                          float *const *h_next) {
    if (cell == FL_CELL_SIMPLE) {
        for (int i = 0; i < n; i++)
            for (int q = 0; q < 4; q++)
                _mm256_storeu_ps(h_next[i] + q * FL_RNN_BLOCK, fl_act256(p->activation, z[i][q]));
    } else if (p->activation == FL_ACT_TANH && p->recurrent_activation == FL_ACT_SIGMOID) {
        fl_lstm_update_sigmoid_tanh_avx2(n, z, c, h_next);
    } else {
        for (int i = 0; i < n; i++) fl_lstm_update_avx2(p, z[i], c[i], h_next[i]);
    }
}

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
