/* The LSTM and SimpleRNN state update, written once (simd_body.h) over update vectors of
 * FL_UPD_ISA, each holding FL_UPD_PAIRS (row, 8-unit block) pairs: 1 for the 8-lane ISAs,
 * 2 for AVX-512, whose kernel regroups its zmm accumulators so that one zmm holds the same gate
 * of two pairs (and updates an odd pair left over with the AVX2 instantiation). Vector i of an
 * update reads and writes the pairs of pointers c[i * FL_UPD_PAIRS ...] and h_next[...]. Every
 * lane goes through the same operations whatever the width, so AVX-512 computes the AVX2
 * path's bits. Gate order i, f, c, o (keras layers/rnn/lstm.py, LSTMCell.call). No include
 * guard: stamped out once per update ISA. Internal to the kernels_<isa>.c files. */

/* The default cell (recurrent sigmoid, tanh) for n independent (row, 8-unit block) pairs,
 * written over e = e^-z so that i*g and o*tanh(c) each take one division of a product:
 *   i*g = (1 - e_g) / ((1 + e_i)(1 + e_g)),  e_g = e^(-2 z_g),  as tanh g = (1 - e_g)/(1 + e_g)
 *   f*c = c / (1 + e_f),                     h = (1 - e_c) / ((1 + e_o)(1 + e_c)),  e_c = e^(-2c)
 * Exponents are clamped to [-40, 40], beyond which sigmoid and tanh are constant to float
 * precision (sigmoid(-40) = 4e-18), so a product of two (1 + e) stays below 2^116. Three
 * divisions instead of five, and the exps of a pair in lockstep (fl_exp_neg_n). Divisions,
 * not rcpps with a Newton step: its one-sided error, though ~1e-7, biases f and builds up in c
 * over long sequences (4x the float64-reference error after 200 steps of a strongly recurrent
 * cell, in our tests), and they cost no more here. */
FL_UPD_INLINE void FL_UPD_NAME(fl_lstm_update_sigmoid_tanh4)(const int n /* <= 4 */,
                                                               FL_UVEC z[][4], float *const *c,
                                                               float *const *h_next) {
    const FL_UVEC one = FLU(set1)(1.0f);
    FL_UVEC e_c[4], o_den[4];
    for (int i = 0; i < n; i++) {
        FL_UVEC e[4] = {z[i][0], z[i][1], FLU(add)(z[i][2], z[i][2]), z[i][3]};
        for (int g = 0; g < 4; g++) e[g] = FL_UPD_NAME(fl_clamp)(e[g], -40.0f, 40.0f);
        FL_UPD_NAME(fl_exp_neg_n)(4, e);
        const FL_UVEC i_g = FLU(div)(FLU(sub)(one, e[2]),
                                     FLU(mul)(FLU(add)(one, e[0]), FLU(add)(one, e[2])));
        const FL_UVEC c_old = FLU(load_pairs)((const float *const *)c + i * FL_UPD_PAIRS, 0);
        const FL_UVEC c_new = FLU(add)(FLU(div)(c_old, FLU(add)(one, e[1])), i_g);
        FLU(store_pairs)(c + i * FL_UPD_PAIRS, 0, c_new);
        o_den[i] = FLU(add)(one, e[3]);
        e_c[i] = FL_UPD_NAME(fl_clamp)(FLU(add)(c_new, c_new), -40.0f, 40.0f);
    }
    FL_UPD_NAME(fl_exp_neg_n)(n, e_c);
    for (int i = 0; i < n; i++)
        FLU(store_pairs)(h_next + i * FL_UPD_PAIRS, 0,
                         FLU(div)(FLU(sub)(one, e_c[i]), FLU(mul)(o_den[i], FLU(add)(one, e_c[i]))));
}

/* Any number of (row, block) pairs, 4 at a time: the lockstep exps take at most 4 vectors
 * (fl_exp_neg_n), and small arrays stay in registers. */
FL_UPD_INLINE void FL_UPD_NAME(fl_lstm_update_sigmoid_tanh)(const int n, FL_UVEC z[][4],
                                                              float *const *c,
                                                              float *const *h_next) {
    for (int i = 0; i < n; i += 4)
        FL_UPD_NAME(fl_lstm_update_sigmoid_tanh4)(n - i < 4 ? n - i : 4, z + i,
                                                  c + i * FL_UPD_PAIRS,
                                                  h_next + i * FL_UPD_PAIRS);
}

/* Gates i, f, c, o of one vector's units from their pre-activations z, then c and h in
 * place. */
FL_UPD_INLINE void FL_UPD_NAME(fl_lstm_update)(const fl_rnn_params *p, const FL_UVEC z[4],
                                               float *const *c /* in/out */,
                                               float *const *h_next) {
    const fl_activation_spec *act = &p->activation, *rec_act = &p->recurrent_activation;
    const FL_UVEC ig = FL_UPD_NAME(fl_act)(rec_act, z[0]);
    const FL_UVEC fg = FL_UPD_NAME(fl_act)(rec_act, z[1]);
    const FL_UVEC cg = FL_UPD_NAME(fl_act)(act, z[2]);
    const FL_UVEC og = FL_UPD_NAME(fl_act)(rec_act, z[3]);
    const FL_UVEC c_new = FLU(fma)(fg, FLU(load_pairs)((const float *const *)c, 0), FLU(mul)(ig, cg));
    FLU(store_pairs)(c, 0, c_new);
    FLU(store_pairs)(h_next, 0, FLU(mul)(og, FL_UPD_NAME(fl_act)(act, c_new)));
}

/* The update of n vectors of (row, block) pairs: the fused default LSTM cell, the generic one,
 * or a SimpleRNN's h' = activation(z) over its 32 units (z[i][q] its units 8q .. 8q + 7; c
 * unused). */
FL_UPD_INLINE void FL_UPD_NAME(fl_lstm_update_n)(const int cell, const int n,
                                                   const fl_rnn_params *p, FL_UVEC z[][4],
                                                   float *const *c, float *const *h_next) {
    if (cell == FL_CELL_SIMPLE) {
        for (int i = 0; i < n; i++)
            for (int q = 0; q < 4; q++)
                FLU(store_pairs)(h_next + i * FL_UPD_PAIRS, q * FL_RNN_BLOCK,
                                 FL_UPD_NAME(fl_act)(&p->activation, z[i][q]));
    } else if (p->activation.id == FL_ACT_TANH && p->recurrent_activation.id == FL_ACT_SIGMOID) {
        FL_UPD_NAME(fl_lstm_update_sigmoid_tanh)(n, z, c, h_next);
    } else {
        for (int i = 0; i < n; i++)
            FL_UPD_NAME(fl_lstm_update)(p, z[i], c + i * FL_UPD_PAIRS, h_next + i * FL_UPD_PAIRS);
    }
}
