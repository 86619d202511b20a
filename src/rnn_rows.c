/* The whole-row steps, one implementation for every ISA: a cell whose activation is row-wise
 * (softmax, log_softmax, sparsemax act over all units of a gate, as Keras applies them to the
 * (batch, units) gate tensors) needs every block's pre-activations of a row before any gate,
 * so they are parked in scratch rows and activated by fl_activation_apply. LSTM gate order i,
 * f, c, o (keras layers/rnn/lstm.py), GRU z, r, h (keras layers/rnn/gru.py, GRUCell.call);
 * packing in fastlstm.h. */
#include "activations.h"
#include "rnn_cells.h"

/* acc[j] += src[k] * w[k][j] for k < n_k (4 vectors x FL_RNN_BLOCK units per k); returns w
 * past the rows. */
static const float *fl_row_accumulate4(float *acc /* (4 * FL_RNN_BLOCK) */,
                                                const float *src, ptrdiff_t n_k, const float *w) {
    for (ptrdiff_t k = 0; k < n_k; k++, w += 4 * FL_RNN_BLOCK) {
        const float v = src[k];
        for (int j = 0; j < 4 * FL_RNN_BLOCK; j++) acc[j] += v * w[j];
    }
    return w;
}

/* acc[0..B) += src[k] * w[k][0], acc[B..2B) += src[k] * w[k][1] and the vector `last` (2 or 3)
 * of acc += src[k] * w[k][2], for k < n_k (3 vectors of FL_RNN_BLOCK units per k): rows of x
 * feed z, r and the input part of the candidate, rows of h feed z, r and its recurrent part.
 * Returns w past the rows. */
static const float *fl_row_accumulate3(float *acc /* (4, FL_RNN_BLOCK) */, const float *src,
                                            ptrdiff_t n_k, const float *w, int last) {
    enum { B = FL_RNN_BLOCK };
    float *acc_last = acc + last * B;
    for (ptrdiff_t k = 0; k < n_k; k++, w += 3 * B) {
        const float v = src[k];
        for (int j = 0; j < B; j++) {
            acc[j] += v * w[j];
            acc[B + j] += v * w[B + j];
            acc_last[j] += v * w[2 * B + j];
        }
    }
    return w;
}

/* h' = z * h + (1 - z) * hh, written as Keras writes it (GRUCell.call). */
static inline float fl_gru_mix(float z, float h, float hh) {
    return z * h + (1.0f - z) * hh;
}

/* One timestep for one row when an activation is row-wise (softmax, log_softmax, sparsemax act
 * over all units of a gate, as Keras applies them to the (batch, units) gate tensors): the
 * pre-activations of every block are parked as (4, n_padded) before the gates are taken. */
void fl_lstm_step_row(const fl_rnn_params *p, const fl_rnn_step_args *a, ptrdiff_t r,
                             float *scratch /* (5, n_padded) */) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units, n_padded = a->n_padded;
    float *gates = scratch;  /* (4, n_padded), then (n_padded) for sparsemax */
    scratch += 4 * n_padded;
    const ptrdiff_t n_blocks = n_padded / B, n_rows_w = n_features + n_units;
    const float *x_t = a->x + (r * a->n_timesteps + a->t) * n_features;
    const float *h = a->h_cur + r * n_padded;
    for (ptrdiff_t b = 0; b < n_blocks; b++) {
        const float *w = p->weights + b * n_rows_w * G;
        float acc[G];
        for (int j = 0; j < G; j++) acc[j] = p->bias[b * G + j];
        w = fl_row_accumulate4(acc, x_t, n_features, w);
        fl_row_accumulate4(acc, h, n_units, w);
        for (int g = 0; g < 4; g++)
            for (int j = 0; j < B; j++) gates[g * n_padded + b * B + j] = acc[g * B + j];
    }
    float *ig = gates, *fg = gates + n_padded, *cg = gates + 2 * n_padded;
    float *og = gates + 3 * n_padded;
    float *c = a->c + r * n_padded, *h_next = a->h_next + r * n_padded;
    fl_activation_apply(&p->recurrent_activation, ig, 1, n_units, scratch);
    fl_activation_apply(&p->recurrent_activation, fg, 1, n_units, scratch);
    fl_activation_apply(&p->activation, cg, 1, n_units, scratch);
    fl_activation_apply(&p->recurrent_activation, og, 1, n_units, scratch);
    for (ptrdiff_t u = 0; u < n_units; u++) c[u] = fg[u] * c[u] + ig[u] * cg[u];
    for (ptrdiff_t u = 0; u < n_units; u++) h_next[u] = c[u];
    fl_activation_apply(&p->activation, h_next, 1, n_units, scratch);
    for (ptrdiff_t u = 0; u < n_units; u++) h_next[u] *= og[u];
}

/* One timestep for one row of a SimpleRNN with a row-wise activation (over all its units). */
void fl_simple_rnn_step_row(const fl_rnn_params *p, const fl_rnn_step_args *a, ptrdiff_t r,
                                   float *scratch /* (5, n_padded) */) {
    enum { G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units, n_padded = a->n_padded;
    const float *x_t = a->x + (r * a->n_timesteps + a->t) * n_features;
    const float *h = a->h_cur + r * n_padded;
    float *h_next = a->h_next + r * n_padded;
    for (ptrdiff_t b = 0; b < n_padded / G; b++) {
        const float *w = p->weights + b * (n_features + n_units) * G;
        float *acc = h_next + b * G;
        for (int j = 0; j < G; j++) acc[j] = p->bias[b * G + j];
        w = fl_row_accumulate4(acc, x_t, n_features, w);
        fl_row_accumulate4(acc, h, n_units, w);
    }
    fl_activation_apply(&p->activation, h_next, 1, n_units, scratch);
}
/* The last part of a whole-row GRU step: gates (4, n_padded) hold z and r activated and the
 * candidate's pre-activation in row 2; activation over the row, then the mix into h_next. */
static void fl_gru_finish_row(const fl_rnn_params *p, const fl_rnn_step_args *a, ptrdiff_t r,
                              float *gates, float *scratch /* (n_padded) */) {
    const ptrdiff_t n_units = p->n_units, n_padded = a->n_padded;
    const float *z = gates, *h = a->h_cur + r * n_padded;
    float *hh = gates + 2 * n_padded, *h_next = a->h_next + r * n_padded;
    fl_activation_apply(&p->activation, hh, 1, n_units, scratch);
    for (ptrdiff_t u = 0; u < n_units; u++) h_next[u] = fl_gru_mix(z[u], h[u], hh[u]);
}

/* One timestep of one row of a reset_after GRU whose activation is row-wise (softmax & co. act
 * on all units of a gate, as Keras applies them to the (batch, units) tensors). */
void fl_gru_step_row(const fl_rnn_params *p, const fl_rnn_step_args *a, ptrdiff_t r,
                            float *scratch /* (5, n_padded) */) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units, n_padded = a->n_padded;
    const float *x_t = a->x + (r * a->n_timesteps + a->t) * n_features;
    const float *h = a->h_cur + r * n_padded;
    float *gates = scratch;  /* z, r, x_h, h_h: (4, n_padded) */
    for (ptrdiff_t b = 0; b < n_padded / B; b++) {
        const float *w = p->weights + b * (n_features + n_units) * 3 * B;
        float acc[G];
        for (int j = 0; j < G; j++) acc[j] = p->bias[b * G + j];
        w = fl_row_accumulate3(acc, x_t, n_features, w, 2);
        fl_row_accumulate3(acc, h, n_units, w, 3);
        for (int g = 0; g < 4; g++)
            for (int j = 0; j < B; j++) gates[g * n_padded + b * B + j] = acc[g * B + j];
    }
    float *scratch_row = scratch + 4 * n_padded;
    fl_activation_apply(&p->recurrent_activation, gates, 1, n_units, scratch_row);
    fl_activation_apply(&p->recurrent_activation, gates + n_padded, 1, n_units, scratch_row);
    for (ptrdiff_t u = 0; u < n_units; u++)
        gates[2 * n_padded + u] += gates[n_padded + u] * gates[3 * n_padded + u];
    fl_gru_finish_row(p, a, r, gates, scratch_row);
}

/* One timestep of one row of a reset_after=False GRU (Keras's default before 2.3 and every
 * Keras 1 GRU): pass 1 takes z, r and x_h of every block, pass 2 the candidate's
 * (r * h) @ U_h, which needs every r of the row first. */
void fl_gru_reset_before_step_row(const fl_rnn_params *p, const fl_rnn_step_args *a,
                                         ptrdiff_t r, float *scratch /* (5, n_padded) */) {
    enum { B = FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units, n_padded = a->n_padded;
    const ptrdiff_t panel = (n_features + n_units) * 3 * B;
    const float *x_t = a->x + (r * a->n_timesteps + a->t) * n_features;
    const float *h = a->h_cur + r * n_padded;
    float *gates = scratch, *rh = scratch + 3 * n_padded;  /* z, r, x_h; r * h */
    for (ptrdiff_t b = 0; b < n_padded / B; b++) {
        const float *w = p->weights + b * panel;
        float acc[4 * B];
        for (int j = 0; j < 4 * B; j++) acc[j] = p->bias[b * 4 * B + j];
        w = fl_row_accumulate3(acc, x_t, n_features, w, 2);
        for (ptrdiff_t k = 0; k < n_units; k++, w += 2 * B)
            for (int j = 0; j < 2 * B; j++) acc[j] += h[k] * w[j];
        for (int g = 0; g < 3; g++)
            for (int j = 0; j < B; j++) gates[g * n_padded + b * B + j] = acc[g * B + j];
    }
    float *scratch_row = scratch + 4 * n_padded;
    fl_activation_apply(&p->recurrent_activation, gates, 1, n_units, scratch_row);
    fl_activation_apply(&p->recurrent_activation, gates + n_padded, 1, n_units, scratch_row);
    for (ptrdiff_t u = 0; u < n_padded; u++) rh[u] = u < n_units ? gates[n_padded + u] * h[u] : 0;
    for (ptrdiff_t b = 0; b < n_padded / B; b++) {
        const float *w = p->weights + b * panel + (n_features * 3 + n_units * 2) * B;
        float *acc = gates + 2 * n_padded + b * B;
        for (ptrdiff_t k = 0; k < n_units; k++, w += B)
            for (int j = 0; j < B; j++) acc[j] += rh[k] * w[j];
    }
    fl_gru_finish_row(p, a, r, gates, scratch_row);
}
