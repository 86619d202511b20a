/* The reset_after GRU update on 8-lane gate vectors (ymm), shared by every SIMD instantiation
 * of gru_step_simd.h, so that every ISA computes the same bits. Internal to rnn_cells.c. */
#ifndef FASTLSTM_GRU_UPDATE_AVX2_H
#define FASTLSTM_GRU_UPDATE_AVX2_H
#include "lstm_update_avx2.h"

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
FL_AVX2_INLINE void fl_gru_update_sigmoid_tanh4_avx2(const int n /* <= 4 */, __m256 s[][4],
                                                    const float *const *h,
                                                    float *const *h_next) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e_z[4], e_r[4], e_h[4];
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

/* Any number of (row, block) pairs, 4 at a time (as fl_lstm_update_sigmoid_tanh_avx2). */
FL_AVX2_INLINE void fl_gru_update_sigmoid_tanh_avx2(const int n, __m256 s[][4],
                                                    const float *const *h,
                                                    float *const *h_next) {
    for (int i = 0; i < n; i += 4)
        fl_gru_update_sigmoid_tanh4_avx2(n - i < 4 ? n - i : 4, s + i, h + i, h_next + i);
}

#endif
