/* The LSTM and SimpleRNN state update on 8-lane gate vectors (ymm), shared by every SIMD
 * instantiation of lstm_step_simd.h: an AVX-512 kernel hands over its zmm accumulators as
 * halves, so that every ISA computes the same bits. Internal to rnn_cells.c. */
#ifndef FASTLSTM_LSTM_UPDATE_AVX2_H
#define FASTLSTM_LSTM_UPDATE_AVX2_H
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
FL_AVX2_INLINE void fl_lstm_update_sigmoid_tanh4_avx2(const int n /* <= 4 */, __m256 z[][4],
                                                      float *const *c, float *const *h_next) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e_c[4], o_den[4];
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

/* Any number of (row, block) pairs, 4 at a time: the lockstep exps take at most 4 vectors
 * (fl_exp_neg256_n), and small arrays stay in registers. */
FL_AVX2_INLINE void fl_lstm_update_sigmoid_tanh_avx2(const int n, __m256 z[][4], float *const *c,
                                                     float *const *h_next) {
    for (int i = 0; i < n; i += 4)
        fl_lstm_update_sigmoid_tanh4_avx2(n - i < 4 ? n - i : 4, z + i, c + i, h_next + i);
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

#endif
