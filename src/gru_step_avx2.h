/* AVX2+FMA GRU steps. A reset_after block keeps 4 sums of 8 units per row: z and r (input and
 * recurrent parts together), the candidate's input part x_h and its recurrent part h_h, which
 * Keras multiplies by r before adding (GRUCell.call, keras layers/rnn/gru.py). Rows of x add to
 * z, r, x_h and rows of h to z, r, h_h: 3 weight vectors per k, 12 accumulators for 3 batch
 * rows as in the LSTM kernel. Internal to rnn.c; packing in fastlstm.h. */
#include "simd_avx2.h"

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

/* z, r, hh = act(x_h + r * h_h), h' = z * h + (1 - z) * hh for 8 units. */
FL_AVX2_INLINE void fl_gru_update_avx2(const fl_rnn_params *p, const __m256 s[4],
                                       const float *h /* (8) */, float *h_next /* (8) */) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 z = fl_act256(p->recurrent_activation, s[0]);
    const __m256 r = fl_act256(p->recurrent_activation, s[1]);
    const __m256 hh = fl_act256(p->activation, _mm256_add_ps(s[2], _mm256_mul_ps(r, s[3])));
    _mm256_storeu_ps(h_next, _mm256_add_ps(_mm256_mul_ps(z, _mm256_loadu_ps(h)),
                                           _mm256_mul_ps(_mm256_sub_ps(one, z), hh)));
}

/* The default cell (recurrent sigmoid, tanh) for n (row, block) pairs, written over e = e^-x as
 * the LSTM kernel does (lstm_step_avx2.h): with e_z, e_r and e_h = e^(-2u), u = x_h + r * h_h,
 *   r = 1 / (1 + e_r),  hh = (1 - e_h) / (1 + e_h),  z = 1 / (1 + e_z),  1 - z = e_z z
 *   h' = z h + (1 - z) hh = (h (1 + e_h) + e_z (1 - e_h)) / ((1 + e_z)(1 + e_h))
 * Two divisions instead of five, the exps of all pairs in lockstep. Exponents are clamped to
 * [-40, 40] (sigmoid and tanh are constant to float precision beyond), so the product of two
 * (1 + e) stays below 2^116. */
FL_AVX2_INLINE void fl_gru_update_sigmoid_tanh_avx2(const int n, __m256 s[][4],
                                                    const float *const *h,
                                                    float *const *h_next) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e_z[3], e_r[3], e_h[3];
    for (int i = 0; i < n; i++) {
        e_z[i] = fl_clamp256(s[i][0], -40.0f, 40.0f);
        e_r[i] = fl_clamp256(s[i][1], -40.0f, 40.0f);
    }
    fl_exp_neg256_n(n, e_z);
    fl_exp_neg256_n(n, e_r);
    for (int i = 0; i < n; i++) {
        const __m256 u = _mm256_add_ps(
            s[i][2], _mm256_div_ps(s[i][3], _mm256_add_ps(one, e_r[i])));
        e_h[i] = fl_clamp256(_mm256_add_ps(u, u), -40.0f, 40.0f);
    }
    fl_exp_neg256_n(n, e_h);
    for (int i = 0; i < n; i++) {
        const __m256 one_e_h = _mm256_add_ps(one, e_h[i]);
        const __m256 num = _mm256_fmadd_ps(_mm256_loadu_ps(h[i]), one_e_h,
                                           _mm256_mul_ps(e_z[i], _mm256_sub_ps(one, e_h[i])));
        _mm256_storeu_ps(h_next[i], _mm256_div_ps(num, _mm256_mul_ps(_mm256_add_ps(one, e_z[i]),
                                                                     one_e_h)));
    }
}

/* 1..3 rows (n_rows) of one block, or (pair) one row of blocks b and b + 1. */
FL_AVX2_INLINE void fl_gru_block_avx2(const int n_rows, const int pair, const fl_rnn_params *p,
                                      const fl_rnn_step_args *a, ptrdiff_t r, ptrdiff_t b) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t panel = (n_features + n_units) * 3 * B, n_blocks = a->n_padded / B;
    const int n = pair ? 2 : n_rows;  /* accumulator sets: (row, block) pairs */
    const float *x_t[3], *h[3];
    __m256 acc[3][4];
    for (int i = 0; i < n; i++) {
        const ptrdiff_t ri = pair ? r : r + i, bi = pair ? b + i : b;
        x_t[i] = a->x + (ri * a->n_timesteps + a->t) * n_features;
        h[i] = a->h_cur + ri * a->n_padded;
        const float *init = a->xproj == NULL
            ? p->bias + bi * G
            : fl_rnn_xproj_at(a, n_blocks, ri, a->step_in_chunk, bi);
        for (int g = 0; g < 4; g++) acc[i][g] = _mm256_loadu_ps(init + g * B);
    }
    const float *w = p->weights + b * panel;
    if (!pair) {
        if (a->xproj == NULL) w = fl_accumulate3_avx2(n_rows, x_t, n_features, w, acc, 2);
        else w += n_features * 3 * B;
        fl_accumulate3_avx2(n_rows, h, n_units, w, acc, 3);
    } else {
        /* Both blocks' weights for each k: 6 independent FMA chains for one row. */
        ptrdiff_t k = a->xproj == NULL ? 0 : n_features;
        w += k * 3 * B;
        for (; k < n_features + n_units; k++, w += 3 * B) {
            const int is_x = k < n_features;
            const __m256 v = _mm256_broadcast_ss(is_x ? x_t[0] + k : h[0] + (k - n_features));
            for (int i = 0; i < 2; i++) {
                const float *wi = w + i * panel;
                acc[i][0] = _mm256_fmadd_ps(v, _mm256_loadu_ps(wi), acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(v, _mm256_loadu_ps(wi + B), acc[i][1]);
                if (is_x) acc[i][2] = _mm256_fmadd_ps(v, _mm256_loadu_ps(wi + 2 * B), acc[i][2]);
                else acc[i][3] = _mm256_fmadd_ps(v, _mm256_loadu_ps(wi + 2 * B), acc[i][3]);
            }
        }
    }
    __m256 s[3][4];
    const float *h_b[3];
    float *h_next[3];
    for (int i = 0; i < n; i++) {
        const ptrdiff_t ri = pair ? r : r + i, bi = pair ? b + i : b;
        for (int g = 0; g < 4; g++) s[i][g] = acc[i][g];
        h_b[i] = a->h_cur + ri * a->n_padded + bi * B;
        h_next[i] = a->h_next + ri * a->n_padded + bi * B;
    }
    if (p->activation == FL_ACT_TANH && p->recurrent_activation == FL_ACT_SIGMOID) {
        fl_gru_update_sigmoid_tanh_avx2(n, s, h_b, h_next);
    } else {
        for (int i = 0; i < n; i++) fl_gru_update_avx2(p, s[i], h_b[i], h_next[i]);
    }
}

FL_AVX2_FN static void fl_gru_step_avx2(const fl_rnn_params *p, const fl_rnn_step_args *a,
                                        ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t b0, ptrdiff_t b1) {
    const ptrdiff_t r_single = r1 - (r1 - r0) % 3;  /* rows past the groups of 3 */
    for (ptrdiff_t b = b0; b < b1; b++) {
        for (ptrdiff_t r = r0; r + 3 <= r1; r += 3) fl_gru_block_avx2(3, 0, p, a, r, b);
        if (r1 - r_single == 2) fl_gru_block_avx2(2, 0, p, a, r_single, b);
    }
    if (r1 - r_single == 1) {
        ptrdiff_t b = b0;
        for (; b + 2 <= b1; b += 2) fl_gru_block_avx2(1, 1, p, a, r_single, b);
        if (b < b1) fl_gru_block_avx2(1, 0, p, a, r_single, b);
    }
}

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
