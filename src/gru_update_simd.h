/* The GRU state update on 8-lane gate vectors, written once (simd_body.h) and stamped out for
 * the 8-lane ISAs (FL_GATE_ISA), shared by every instantiation of gru_step_simd.h and
 * gru_reset_before_simd.h, so that every ISA with FMA computes the same bits. Gate order z, r,
 * h (keras layers/rnn/gru.py, GRUCell.call). Internal to the kernels_<isa>.c files. */

/* z, r, hh = act(x_h + r * h_h), h' = z * h + (1 - z) * hh for 8 units. */
FL_GATE_INLINE void FL_GATE_NAME(fl_gru_update)(const fl_rnn_params *p, const FL_GVEC s[4],
                                                const float *h /* (8) */,
                                                float *h_next /* (8) */) {
    const FL_GVEC one = FLG(set1)(1.0f);
    const FL_GVEC z = FL_GATE_NAME(fl_act)(p->recurrent_activation, s[0]);
    const FL_GVEC r = FL_GATE_NAME(fl_act)(p->recurrent_activation, s[1]);
    const FL_GVEC hh = FL_GATE_NAME(fl_act)(p->activation, FLG(add)(s[2], FLG(mul)(r, s[3])));
    FLG(store)(h_next, FLG(add)(FLG(mul)(z, FLG(load)(h)), FLG(mul)(FLG(sub)(one, z), hh)));
}

/* The default cell (recurrent sigmoid, tanh) for n (row, block) pairs, written over e = e^-x as
 * the LSTM update does (lstm_update_simd.h): with e_z, e_r and e_h = e^(-2u), u = x_h + r * h_h,
 *   r = 1 / (1 + e_r),  hh = (1 - e_h) / (1 + e_h),  z = 1 / (1 + e_z),  1 - z = e_z z
 *   h' = z h + (1 - z) hh = (h (1 + e_h) + e_z (1 - e_h)) / ((1 + e_z)(1 + e_h))
 * Two divisions instead of five, the exps of all pairs in lockstep. Exponents are clamped to
 * [-40, 40] (sigmoid and tanh are constant to float precision beyond), so the product of two
 * (1 + e) stays below 2^116. */
FL_GATE_INLINE void FL_GATE_NAME(fl_gru_update_sigmoid_tanh4)(const int n /* <= 4 */,
                                                              FL_GVEC s[][4],
                                                              const float *const *h,
                                                              float *const *h_next) {
    const FL_GVEC one = FLG(set1)(1.0f);
    FL_GVEC e_z[4], e_r[4], e_h[4];
    for (int i = 0; i < n; i++) {
        e_z[i] = FL_GATE_NAME(fl_clamp)(s[i][0], -40.0f, 40.0f);
        e_r[i] = FL_GATE_NAME(fl_clamp)(s[i][1], -40.0f, 40.0f);
    }
    FL_GATE_NAME(fl_exp_neg_n)(n, e_z);
    FL_GATE_NAME(fl_exp_neg_n)(n, e_r);
    for (int i = 0; i < n; i++) {
        const FL_GVEC u = FLG(add)(s[i][2], FLG(div)(s[i][3], FLG(add)(one, e_r[i])));
        e_h[i] = FL_GATE_NAME(fl_clamp)(FLG(add)(u, u), -40.0f, 40.0f);
    }
    FL_GATE_NAME(fl_exp_neg_n)(n, e_h);
    for (int i = 0; i < n; i++) {
        const FL_GVEC one_e_h = FLG(add)(one, e_h[i]);
        const FL_GVEC num = FLG(fma)(FLG(load)(h[i]), one_e_h,
                                     FLG(mul)(e_z[i], FLG(sub)(one, e_h[i])));
        FLG(store)(h_next[i], FLG(div)(num, FLG(mul)(FLG(add)(one, e_z[i]), one_e_h)));
    }
}

/* Any number of (row, block) pairs, 4 at a time (as fl_lstm_update_sigmoid_tanh). */
FL_GATE_INLINE void FL_GATE_NAME(fl_gru_update_sigmoid_tanh)(const int n, FL_GVEC s[][4],
                                                             const float *const *h,
                                                             float *const *h_next) {
    for (int i = 0; i < n; i += 4)
        FL_GATE_NAME(fl_gru_update_sigmoid_tanh4)(n - i < 4 ? n - i : 4, s + i, h + i,
                                                  h_next + i);
}

/* The update of n (row, block) sets of sums z, r, x_h, h_h. */
FL_GATE_INLINE void FL_GATE_NAME(fl_gru_update_n)(const int n, const fl_rnn_params *p,
                                                  FL_GVEC s[][4], const float *const *h_b,
                                                  float *const *h_next) {
    if (p->activation == FL_ACT_TANH && p->recurrent_activation == FL_ACT_SIGMOID) {
        FL_GATE_NAME(fl_gru_update_sigmoid_tanh)(n, s, h_b, h_next);
    } else {
        for (int i = 0; i < n; i++) FL_GATE_NAME(fl_gru_update)(p, s[i], h_b[i], h_next[i]);
    }
}
