/* The LSTM and SimpleRNN state update on 8-lane gate vectors, written once (simd_body.h) and
 * stamped out for the 8-lane ISAs (FL_GATE_ISA: portable, AVX2): an AVX-512 kernel hands over
 * its zmm accumulators as ymm halves, so that it computes the AVX2 path's bits. Gate order i,
 * f, c, o (keras layers/rnn/lstm.py, LSTMCell.call). Internal to the kernels_<isa>.c files. */

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
FL_GATE_INLINE void FL_GATE_NAME(fl_lstm_update_sigmoid_tanh4)(const int n /* <= 4 */,
                                                               FL_GVEC z[][4], float *const *c,
                                                               float *const *h_next) {
    const FL_GVEC one = FLG(set1)(1.0f);
    FL_GVEC e_c[4], o_den[4];
    for (int i = 0; i < n; i++) {
        FL_GVEC e[4] = {z[i][0], z[i][1], FLG(add)(z[i][2], z[i][2]), z[i][3]};
        for (int g = 0; g < 4; g++) e[g] = FL_GATE_NAME(fl_clamp)(e[g], -40.0f, 40.0f);
        FL_GATE_NAME(fl_exp_neg_n)(4, e);
        const FL_GVEC i_g = FLG(div)(FLG(sub)(one, e[2]),
                                     FLG(mul)(FLG(add)(one, e[0]), FLG(add)(one, e[2])));
        const FL_GVEC c_new = FLG(add)(FLG(div)(FLG(load)(c[i]), FLG(add)(one, e[1])), i_g);
        FLG(store)(c[i], c_new);
        o_den[i] = FLG(add)(one, e[3]);
        e_c[i] = FL_GATE_NAME(fl_clamp)(FLG(add)(c_new, c_new), -40.0f, 40.0f);
    }
    FL_GATE_NAME(fl_exp_neg_n)(n, e_c);
    for (int i = 0; i < n; i++)
        FLG(store)(h_next[i], FLG(div)(FLG(sub)(one, e_c[i]),
                                       FLG(mul)(o_den[i], FLG(add)(one, e_c[i]))));
}

/* Any number of (row, block) pairs, 4 at a time: the lockstep exps take at most 4 vectors
 * (fl_exp_neg_n), and small arrays stay in registers. */
FL_GATE_INLINE void FL_GATE_NAME(fl_lstm_update_sigmoid_tanh)(const int n, FL_GVEC z[][4],
                                                              float *const *c,
                                                              float *const *h_next) {
    for (int i = 0; i < n; i += 4)
        FL_GATE_NAME(fl_lstm_update_sigmoid_tanh4)(n - i < 4 ? n - i : 4, z + i, c + i,
                                                   h_next + i);
}

/* Gates i, f, c, o of 8 units from their pre-activations z, then c and h in place. */
FL_GATE_INLINE void FL_GATE_NAME(fl_lstm_update)(const fl_rnn_params *p, const FL_GVEC z[4],
                                                 float *c /* (8) in/out */,
                                                 float *h_next /* (8) */) {
    const int act = p->activation, rec_act = p->recurrent_activation;
    const FL_GVEC ig = FL_GATE_NAME(fl_act)(rec_act, z[0]);
    const FL_GVEC fg = FL_GATE_NAME(fl_act)(rec_act, z[1]);
    const FL_GVEC cg = FL_GATE_NAME(fl_act)(act, z[2]);
    const FL_GVEC og = FL_GATE_NAME(fl_act)(rec_act, z[3]);
    const FL_GVEC c_new = FLG(fma)(fg, FLG(load)(c), FLG(mul)(ig, cg));
    FLG(store)(c, c_new);
    FLG(store)(h_next, FLG(mul)(og, FL_GATE_NAME(fl_act)(act, c_new)));
}

/* The update of n (block, row) pairs: the fused default LSTM cell, the generic one, or a
 * SimpleRNN's h' = activation(z) over its 32 units (c unused). */
FL_GATE_INLINE void FL_GATE_NAME(fl_lstm_update_n)(const int cell, const int n,
                                                   const fl_rnn_params *p, FL_GVEC z[][4],
                                                   float *const *c, float *const *h_next) {
    if (cell == FL_CELL_SIMPLE) {
        for (int i = 0; i < n; i++)
            for (int q = 0; q < 4; q++)
                FLG(store)(h_next[i] + q * FL_RNN_BLOCK, FL_GATE_NAME(fl_act)(p->activation, z[i][q]));
    } else if (p->activation == FL_ACT_TANH && p->recurrent_activation == FL_ACT_SIGMOID) {
        FL_GATE_NAME(fl_lstm_update_sigmoid_tanh)(n, z, c, h_next);
    } else {
        for (int i = 0; i < n; i++) FL_GATE_NAME(fl_lstm_update)(p, z[i], c[i], h_next[i]);
    }
}
