/* The unit-parallel schedule's input projection for every cell, written once and stamped out
 * per ISA by the kernels_<isa>.c files after the cell bodies, whose x loops it runs: bias + x_t
 * @ kernel for steps [s0, s0 + n_steps) of every row and unit blocks [b0, b1), into a->xproj,
 * 4 vectors of FL_RNN_BLOCK floats per (row, step, block). Rows of x hold 4 weight vectors per
 * block for an LSTM (gates) and a SimpleRNN (units), 3 for a GRU (z, r, h; its 4th xproj vector
 * is the recurrent candidate bias, copied as it is). Each (row, step) gets the same chain of
 * FMAs as the step kernels' own x loop, so results do not depend on the schedule. The (row,
 * step) pairs are register-blocked as the steps block batch rows. */

/* n_pairs (compile-time) (row, step) pairs of block b: x_t[i] into dst[i]. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_project_group4)(const int n_pairs, const fl_rnn_params *p,
                                                   const float *const *x_t, float *const *dst,
                                                   ptrdiff_t b) {
    enum { G = 4 * FL_RNN_BLOCK };
    const float *panel = p->weights + b * (p->n_features + p->n_units) * G;
    FL_VEC acc[FL_LSTM_ROWS][FL_LSTM_NQ];
    for (int i = 0; i < n_pairs; i++)
        for (int q = 0; q < FL_LSTM_NQ; q++) acc[i][q] = FLV(load)(p->bias + b * G + q * FL_VW);
    FL_ISA_NAME(fl_accumulate4)(n_pairs, x_t, p->n_features, panel, acc);
    for (int i = 0; i < n_pairs; i++)
        for (int q = 0; q < FL_LSTM_NQ; q++) FLV(store)(dst[i] + q * FL_VW, acc[i][q]);
}

FL_SIMD_INLINE void FL_ISA_NAME(fl_project_group3)(const int n_pairs, const fl_rnn_params *p,
                                                   const float *const *x_t, float *const *dst,
                                                   ptrdiff_t b) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const float *panel = p->weights + b * (p->n_features + p->n_units) * 3 * B;
    FL_PAIR zr[FL_GRU_ROWS];
    FL_GVEC x_h[FL_GRU_ROWS];
    for (int i = 0; i < n_pairs; i++) {
        zr[i] = FL_ISA_NAME(fl_gru_pload)(p->bias + b * G);
        x_h[i] = FLG(load)(p->bias + b * G + 2 * B);
    }
    FL_ISA_NAME(fl_gru_accumulate)(n_pairs, x_t, p->n_features, panel, zr, x_h);
    const FL_GVEC h_bias = FLG(load)(p->bias + b * G + 3 * B);
    for (int i = 0; i < n_pairs; i++) {
        FLG(store)(dst[i], FL_ISA_NAME(fl_gru_plo)(zr[i]));
        FLG(store)(dst[i] + B, FL_ISA_NAME(fl_gru_phi)(zr[i]));
        FLG(store)(dst[i] + 2 * B, x_h[i]);
        FLG(store)(dst[i] + 3 * B, h_bias);
    }
}

/* Groups of up to `rows` pairs, each count a compile-time constant. */
#define FL_PROJECT_CASE(group, rows, n) \
    case n: if (n <= rows) FL_ISA_NAME(group)(n <= rows ? n : 1, p, x_t, dst, b); break;
#define FL_PROJECT_SWITCH(group, rows, n_at)                                              \
    switch (n_at) {                                                                      \
    FL_PROJECT_CASE(group, rows, 1) FL_PROJECT_CASE(group, rows, 2)                      \
    FL_PROJECT_CASE(group, rows, 3) FL_PROJECT_CASE(group, rows, 4)                      \
    FL_PROJECT_CASE(group, rows, 5) FL_PROJECT_CASE(group, rows, 6)                      \
    FL_PROJECT_CASE(group, rows, 7) FL_PROJECT_CASE(group, rows, 8)                      \
    FL_PROJECT_CASE(group, rows, 9) FL_PROJECT_CASE(group, rows, 10)                     \
    FL_PROJECT_CASE(group, rows, 11) FL_PROJECT_CASE(group, rows, 12)                    \
    default: break;                                                                      \
    }

FL_SIMD_FN static void FL_ISA_NAME(fl_rnn_project)(const fl_rnn_params *p,
                                                   const fl_rnn_step_args *a, ptrdiff_t n_batch,
                                                   ptrdiff_t s0, ptrdiff_t n_steps,
                                                   int go_backwards, ptrdiff_t b0,
                                                   ptrdiff_t b1) {
    const ptrdiff_t n_pairs = n_batch * n_steps;
    const ptrdiff_t n_blocks = a->n_padded / fl_rnn_block_units(p->cell);
    const int four = fl_rnn_x_vectors(p->cell) == 4;
    const int rows = four ? FL_LSTM_ROWS : FL_GRU_ROWS;
    for (ptrdiff_t b = b0; b < b1; b++) {
        for (ptrdiff_t q0 = 0; q0 < n_pairs; q0 += rows) {
            const float *x_t[FL_LSTM_ROWS > FL_GRU_ROWS ? FL_LSTM_ROWS : FL_GRU_ROWS];
            float *dst[FL_LSTM_ROWS > FL_GRU_ROWS ? FL_LSTM_ROWS : FL_GRU_ROWS];
            const int n = n_pairs - q0 < rows ? (int)(n_pairs - q0) : rows;
            for (int i = 0; i < n; i++) {
                const ptrdiff_t r = (q0 + i) / n_steps, j = (q0 + i) % n_steps;
                const ptrdiff_t s = s0 + j, t = go_backwards ? a->n_timesteps - 1 - s : s;
                x_t[i] = a->x + (r * a->n_timesteps + t) * p->n_features;
                dst[i] = fl_rnn_xproj_at(a, n_blocks, r, j, b);
            }
            if (four) {
                FL_PROJECT_SWITCH(fl_project_group4, FL_LSTM_ROWS, n)
            } else {
                FL_PROJECT_SWITCH(fl_project_group3, FL_GRU_ROWS, n)
            }
        }
    }
}
#undef FL_PROJECT_SWITCH
#undef FL_PROJECT_CASE
