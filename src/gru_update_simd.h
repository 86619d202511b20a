/* The GRU state update, written once (simd_body.h) over update vectors of FL_UPD_ISA holding
 * FL_UPD_PAIRS (row, 8-unit block) pairs each, as the LSTM update (lstm_update_simd.h): vector
 * i reads h[i * FL_UPD_PAIRS ...] and writes h_next[...]. Shared by gru_step_simd.h and
 * gru_reset_before_simd.h; the same operations on every lane, so that every ISA with FMA
 * computes the same bits. Gate order z, r, h (keras layers/rnn/gru.py, GRUCell.call). No
 * include guard: stamped out once per update ISA. Internal to the kernels_<isa>.c files. */

/* z, r, hh = act(x_h + r * h_h), h' = z * h + (1 - z) * hh for one vector's units. */
FL_UPD_INLINE void FL_UPD_NAME(fl_gru_update)(const fl_rnn_params *p, const FL_UVEC s[4],
                                              const float *const *h, float *const *h_next) {
    const FL_UVEC one = FLU(set1)(1.0f);
    const FL_UVEC z = FL_UPD_NAME(fl_act)(&p->recurrent_activation, s[0]);
    const FL_UVEC r = FL_UPD_NAME(fl_act)(&p->recurrent_activation, s[1]);
    const FL_UVEC hh = FL_UPD_NAME(fl_act)(&p->activation, FLU(add)(s[2], FLU(mul)(r, s[3])));
    FLU(store_pairs)(h_next, 0,
                     FLU(add)(FLU(mul)(z, FLU(load_pairs)(h, 0)), FLU(mul)(FLU(sub)(one, z), hh)));
}

/* The default cell (recurrent sigmoid, tanh) for n (row, block) pairs, written over e = e^-x as
 * the LSTM update does (lstm_update_simd.h): with e_z, e_r and e_h = e^(-2u), u = x_h + r * h_h,
 *   r = 1 / (1 + e_r),  hh = (1 - e_h) / (1 + e_h),  z = 1 / (1 + e_z),  1 - z = e_z z
 *   h' = z h + (1 - z) hh = (h (1 + e_h) + e_z (1 - e_h)) / ((1 + e_z)(1 + e_h))
 * Two divisions instead of five, the exps of all pairs in lockstep. Exponents are clamped to
 * [-40, 40] (sigmoid and tanh are constant to float precision beyond), so the product of two
 * (1 + e) stays below 2^116. */
FL_UPD_INLINE void FL_UPD_NAME(fl_gru_update_sigmoid_tanh4)(const int n /* <= 4 */,
                                                              FL_UVEC s[][4],
                                                              const float *const *h,
                                                              float *const *h_next) {
    const FL_UVEC one = FLU(set1)(1.0f);
    FL_UVEC e_z[4], e_r[4], e_h[4];
    for (int i = 0; i < n; i++) {
        e_z[i] = FL_UPD_NAME(fl_clamp)(s[i][0], -40.0f, 40.0f);
        e_r[i] = FL_UPD_NAME(fl_clamp)(s[i][1], -40.0f, 40.0f);
    }
    FL_UPD_NAME(fl_exp_neg_n)(n, e_z);
    FL_UPD_NAME(fl_exp_neg_n)(n, e_r);
    for (int i = 0; i < n; i++) {
        const FL_UVEC u = FLU(add)(s[i][2], FLU(div)(s[i][3], FLU(add)(one, e_r[i])));
        e_h[i] = FL_UPD_NAME(fl_clamp)(FLU(add)(u, u), -40.0f, 40.0f);
    }
    FL_UPD_NAME(fl_exp_neg_n)(n, e_h);
    for (int i = 0; i < n; i++) {
        const FL_UVEC one_e_h = FLU(add)(one, e_h[i]);
        const FL_UVEC num = FLU(fma)(FLU(load_pairs)(h + i * FL_UPD_PAIRS, 0), one_e_h,
                                     FLU(mul)(e_z[i], FLU(sub)(one, e_h[i])));
        FLU(store_pairs)(h_next + i * FL_UPD_PAIRS, 0,
                         FLU(div)(num, FLU(mul)(FLU(add)(one, e_z[i]), one_e_h)));
    }
}

/* Any number of (row, block) pairs, 4 at a time (as fl_lstm_update_sigmoid_tanh). */
FL_UPD_INLINE void FL_UPD_NAME(fl_gru_update_sigmoid_tanh)(const int n, FL_UVEC s[][4],
                                                             const float *const *h,
                                                             float *const *h_next) {
    for (int i = 0; i < n; i += 4)
        FL_UPD_NAME(fl_gru_update_sigmoid_tanh4)(n - i < 4 ? n - i : 4, s + i,
                                                 h + i * FL_UPD_PAIRS, h_next + i * FL_UPD_PAIRS);
}

/* The update of n vectors of (row, block) sets of sums z, r, x_h, h_h. */
FL_UPD_INLINE void FL_UPD_NAME(fl_gru_update_n)(const int n, const fl_rnn_params *p,
                                                  FL_UVEC s[][4], const float *const *h_b,
                                                  float *const *h_next) {
    if (p->activation.id == FL_ACT_TANH && p->recurrent_activation.id == FL_ACT_SIGMOID) {
        FL_UPD_NAME(fl_gru_update_sigmoid_tanh)(n, s, h_b, h_next);
    } else {
        for (int i = 0; i < n; i++)
            FL_UPD_NAME(fl_gru_update)(p, s[i], h_b + i * FL_UPD_PAIRS, h_next + i * FL_UPD_PAIRS);
    }
}
