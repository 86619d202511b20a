/* The reset_after=False GRU step (Keras's default before 2.3 and every Keras 1 GRU), written
 * once and stamped out per ISA by the kernels_<isa>.c files after gru_step_simd.h, whose z|r
 * accumulation it shares. The candidate is act(x_h + (r * h) @ U_h) (GRUCell.call, keras
 * layers/rnn/gru.py), so every r of a row is needed before any candidate: pass 1 takes z, r
 * and x_h of every block (r * h kept for pass 2), pass 2 the candidates of several blocks at a
 * time, up to 3 rows register-blocked together. */

/* Pass 2 for n_rows rows and n_blocks (compile-time) blocks from b: x_h + (r * h) @ U_h, then
 * the candidate and the update. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_gru_candidate)(const int n_rows, const int n_blocks,
                                                  const fl_rnn_params *p,
                                                  const fl_rnn_step_args *a, ptrdiff_t r,
                                                  ptrdiff_t b, float *const *z,
                                                  float *const *x_h, float *const *r_h) {
    enum { B = FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t panel = (n_features + n_units) * 3 * B;
    const float *w = p->weights + b * panel + (n_features * 3 + n_units * 2) * B;
    FL_GVEC acc[3][4];
    _Pragma("GCC unroll 4")
    for (int i = 0; i < n_rows; i++)
        _Pragma("GCC unroll 4")
        for (int q = 0; q < n_blocks; q++) acc[i][q] = FLG(load)(x_h[i] + (b + q) * B);
    for (ptrdiff_t k = 0; k < n_units; k++, w += B) {
        FL_GVEC wq[4];
        _Pragma("GCC unroll 4")
        for (int q = 0; q < n_blocks; q++) wq[q] = FLG(load)(w + q * panel);
        _Pragma("GCC unroll 4")
        for (int i = 0; i < n_rows; i++) {
            const FL_GVEC v = FLG(bcast)(r_h[i] + k);
            _Pragma("GCC unroll 4")
            for (int q = 0; q < n_blocks; q++) acc[i][q] = FLG(fma)(v, wq[q], acc[i][q]);
        }
    }
    const FL_GVEC one = FLG(set1)(1.0f);
    _Pragma("GCC unroll 4")
    for (int i = 0; i < n_rows; i++) {
        _Pragma("GCC unroll 4")
        for (int q = 0; q < n_blocks; q++) {
            const ptrdiff_t u = (b + q) * B;
            const FL_GVEC zv = FLG(load)(z[i] + u);
            const FL_GVEC hh = FL_GATE_NAME(fl_act)(&p->activation, acc[i][q]);
            const FL_GVEC h = FLG(load)(a->h_cur + (r + i) * a->n_padded + u);
            FLG(store)(a->h_next + (r + i) * a->n_padded + u,
                       FLG(add)(FLG(mul)(zv, h), FLG(mul)(FLG(sub)(one, zv), hh)));
        }
    }
}

/* One step of up to 3 rows with element-wise activations. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_gru_reset_before_group)(const int n_rows,
                                                           const fl_rnn_params *p,
                                                           const fl_rnn_step_args *a, ptrdiff_t r,
                                                           float *scratch /* (9, n_padded) */) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units, n_padded = a->n_padded;
    const ptrdiff_t panel = (n_features + n_units) * 3 * B, n_blocks = n_padded / B;
    const fl_activation_spec *rec_act = &p->recurrent_activation;
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
        FL_PAIR zr[3];
        FL_GVEC xh[3];
        _Pragma("GCC unroll 4")
        for (int i = 0; i < n_rows; i++) {
            zr[i] = FL_ISA_NAME(fl_gru_pload)(p->bias + b * G);
            xh[i] = FLG(load)(p->bias + b * G + 2 * B);
        }
        const float *w = FL_ISA_NAME(fl_gru_accumulate)(n_rows, x_t, n_features,
                                                        p->weights + b * panel, zr, xh);
        for (ptrdiff_t k = 0; k < n_units; k++, w += 2 * B) {
            const FL_PAIR wzr = FL_ISA_NAME(fl_gru_pload)(w);
            _Pragma("GCC unroll 4")
            for (int i = 0; i < n_rows; i++)
                zr[i] = FL_ISA_NAME(fl_gru_pfma)(FL_ISA_NAME(fl_gru_bcast_of)(h[i] + k), wzr, zr[i]);
        }
        _Pragma("GCC unroll 4")
        for (int i = 0; i < n_rows; i++) {
            FLG(store)(z[i] + b * B, FL_GATE_NAME(fl_act)(rec_act, FL_ISA_NAME(fl_gru_plo)(zr[i])));
            /* h is zero past n_units, so r * h is too: pass 2 reads only k < n_units anyway. */
            FLG(store)(r_h[i] + b * B,
                       FLG(mul)(FL_GATE_NAME(fl_act)(rec_act, FL_ISA_NAME(fl_gru_phi)(zr[i])),
                                FLG(load)(h[i] + b * B)));
            FLG(store)(x_h[i] + b * B, xh[i]);
        }
    }
    /* 3 rows x 3 blocks or 2 rows x 4: at most 12 accumulators beside the weight vectors. */
    const int group = n_rows == 3 ? 3 : 4;
    ptrdiff_t b = 0;
    for (; b + group <= n_blocks; b += group)
        FL_ISA_NAME(fl_gru_candidate)(n_rows, group, p, a, r, b, z, x_h, r_h);
    for (; b + 2 <= n_blocks; b += 2)
        FL_ISA_NAME(fl_gru_candidate)(n_rows, 2, p, a, r, b, z, x_h, r_h);
    if (b < n_blocks) FL_ISA_NAME(fl_gru_candidate)(n_rows, 1, p, a, r, b, z, x_h, r_h);
}

/* Whole rows [r0, r1) in groups of 3; row-wise activations go row by row (rnn_rows.c). */
FL_SIMD_FN static void FL_ISA_NAME(fl_gru_reset_before_rows)(const fl_rnn_params *p,
                                                             const fl_rnn_step_args *a,
                                                             ptrdiff_t r0, ptrdiff_t r1,
                                                             float *scratch) {
    if (fl_activation_is_rowwise(&p->activation)
        || fl_activation_is_rowwise(&p->recurrent_activation)) {
        for (ptrdiff_t r = r0; r < r1; r++) fl_gru_reset_before_step_row(p, a, r, scratch);
        return;
    }
    ptrdiff_t r = r0;
    for (; r + 3 <= r1; r += 3) FL_ISA_NAME(fl_gru_reset_before_group)(3, p, a, r, scratch);
    if (r1 - r == 2) FL_ISA_NAME(fl_gru_reset_before_group)(2, p, a, r, scratch);
    else if (r1 - r == 1) FL_ISA_NAME(fl_gru_reset_before_group)(1, p, a, r, scratch);
}
