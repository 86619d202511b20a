/* The unit-parallel schedule's input projection for every cell: bias + x_t @ kernel for steps
 * [s0, s0 + n_steps) of every row and unit blocks [b0, b1), into a->xproj, 4 vectors of
 * FL_RNN_BLOCK floats per (row, step, block). Rows of x hold 4 weight vectors per block for an
 * LSTM (gates) and a SimpleRNN (units), 3 for a GRU (z, r, h; its 4th xproj vector is the
 * recurrent candidate bias, copied as it is). Each (row, step) gets the same chain of FMAs as
 * the step kernels' own x loop, so results do not depend on the schedule. Internal to rnn.c,
 * included after the cell headers (it uses their accumulate loops). */

static int fl_rnn_x_vectors(int cell) {
    return cell == FL_CELL_GRU || cell == FL_CELL_GRU_RESET_BEFORE ? 3 : 4;
}

static void fl_rnn_project_portable(const fl_rnn_params *p, const fl_rnn_step_args *a,
                                    ptrdiff_t n_batch, ptrdiff_t s0, ptrdiff_t n_steps,
                                    int go_backwards, ptrdiff_t b0, ptrdiff_t b1) {
    enum { G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, x_vectors = fl_rnn_x_vectors(p->cell);
    const ptrdiff_t n_blocks = a->n_padded / fl_rnn_block_units(p->cell);
    for (ptrdiff_t b = b0; b < b1; b++) {
        const float *panel = p->weights + b * (n_features + p->n_units) * x_vectors
                                              * FL_RNN_BLOCK;
        for (ptrdiff_t r = 0; r < n_batch; r++) {
            for (ptrdiff_t j = 0; j < n_steps; j++) {
                const ptrdiff_t s = s0 + j, t = go_backwards ? a->n_timesteps - 1 - s : s;
                const float *x_t = a->x + (r * a->n_timesteps + t) * n_features;
                float *acc = fl_rnn_xproj_at(a, n_blocks, r, j, b);
                for (int q = 0; q < G; q++) acc[q] = p->bias[b * G + q];
                if (x_vectors == 4) fl_accumulate4_portable(acc, x_t, n_features, panel);
                else fl_accumulate3_portable(acc, x_t, n_features, panel, 2);
            }
        }
    }
}

#if FL_BUILD_AVX2
/* 1..3 (row, step) pairs of one block: x_vectors is a compile-time 3 or 4. */
FL_AVX2_INLINE void fl_rnn_project_group_avx2(const int x_vectors, const int n_pairs,
                                              const fl_rnn_params *p, const float *const *x_t,
                                              float *const *dst, ptrdiff_t b) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const float *panel = p->weights + b * (p->n_features + p->n_units) * x_vectors * B;
    __m256 acc[3][4];
    for (int i = 0; i < n_pairs; i++)
        for (int g = 0; g < 4; g++) acc[i][g] = _mm256_loadu_ps(p->bias + b * G + g * B);
    if (x_vectors == 4) fl_accumulate4_avx2(n_pairs, x_t, p->n_features, panel, acc);
    else fl_accumulate3_avx2(n_pairs, x_t, p->n_features, panel, acc, 2);
    for (int i = 0; i < n_pairs; i++)
        for (int g = 0; g < 4; g++) _mm256_storeu_ps(dst[i] + g * B, acc[i][g]);
}

FL_AVX2_INLINE void fl_rnn_project_group_n_avx2(const int x_vectors, int n,
                                                const fl_rnn_params *p, const float *const *x_t,
                                                float *const *dst, ptrdiff_t b) {
    if (n == 3) fl_rnn_project_group_avx2(x_vectors, 3, p, x_t, dst, b);
    else if (n == 2) fl_rnn_project_group_avx2(x_vectors, 2, p, x_t, dst, b);
    else fl_rnn_project_group_avx2(x_vectors, 1, p, x_t, dst, b);
}

/* One product blocked over (row, step) pairs in threes, like the batch rows of the step. */
FL_AVX2_FN static void fl_rnn_project_avx2(const fl_rnn_params *p, const fl_rnn_step_args *a,
                                           ptrdiff_t n_batch, ptrdiff_t s0, ptrdiff_t n_steps,
                                           int go_backwards, ptrdiff_t b0, ptrdiff_t b1) {
    const ptrdiff_t n_pairs = n_batch * n_steps;
    const ptrdiff_t n_blocks = a->n_padded / fl_rnn_block_units(p->cell);
    const int x_vectors = fl_rnn_x_vectors(p->cell);
    for (ptrdiff_t b = b0; b < b1; b++) {
        for (ptrdiff_t q0 = 0; q0 < n_pairs; q0 += 3) {
            const float *x_t[3];
            float *dst[3];
            const int n = n_pairs - q0 < 3 ? (int)(n_pairs - q0) : 3;
            for (int i = 0; i < n; i++) {
                const ptrdiff_t r = (q0 + i) / n_steps, j = (q0 + i) % n_steps;
                const ptrdiff_t s = s0 + j, t = go_backwards ? a->n_timesteps - 1 - s : s;
                x_t[i] = a->x + (r * a->n_timesteps + t) * p->n_features;
                dst[i] = fl_rnn_xproj_at(a, n_blocks, r, j, b);
            }
            if (x_vectors == 4) fl_rnn_project_group_n_avx2(4, n, p, x_t, dst, b);
            else fl_rnn_project_group_n_avx2(3, n, p, x_t, dst, b);
        }
    }
}
#endif
