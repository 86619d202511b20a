/* Portable C GRU steps (any CPU), and the whole-row steps used on every path. Internal to rnn.c.
 * Gate order z, r, h (keras layers/rnn/gru.py, GRUCell.call); packing in fastlstm.h. */

/* acc[0..B) += src[k] * w[k][0], acc[B..2B) += src[k] * w[k][1] and the vector `last` (2 or 3)
 * of acc += src[k] * w[k][2], for k < n_k (3 vectors of FL_RNN_BLOCK units per k): rows of x
 * feed z, r and the input part of the candidate, rows of h feed z, r and its recurrent part.
 * Returns w past the rows. */
static const float *fl_accumulate3_portable(float *acc /* (4, FL_RNN_BLOCK) */, const float *src,
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

/* One timestep of a reset_after GRU for rows [r0, r1) and unit blocks [b0, b1) with element-wise
 * activations: per block the 4 sums z, r, x_h, h_h (recurrent bias included), then the update. */
static void fl_gru_step_portable(const fl_rnn_params *p, const fl_rnn_step_args *a,
                                 ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t b0, ptrdiff_t b1) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t n_blocks = a->n_padded / B;
    const int act = p->activation, rec_act = p->recurrent_activation;
    for (ptrdiff_t b = b0; b < b1; b++) {
        const float *panel = p->weights + b * (n_features + n_units) * 3 * B;
        for (ptrdiff_t r = r0; r < r1; r++) {
            const float *x_t = a->x + (r * a->n_timesteps + a->t) * n_features;
            const float *h = a->h_cur + r * a->n_padded;
            const float *w = panel + n_features * 3 * B;
            float acc[G];
            if (a->xproj != NULL) {
                const float *xp = fl_rnn_xproj_at(a, n_blocks, r, a->step_in_chunk, b);
                for (int j = 0; j < G; j++) acc[j] = xp[j];
            } else {
                for (int j = 0; j < G; j++) acc[j] = p->bias[b * G + j];
                fl_accumulate3_portable(acc, x_t, n_features, panel, 2);
            }
            fl_accumulate3_portable(acc, h, n_units, w, 3);
            const float *h_b = h + b * B;
            float *h_next = a->h_next + r * a->n_padded + b * B;
            for (int j = 0; j < B; j++) {
                const float z = fl_activation_scalar(rec_act, acc[j]);
                const float rg = fl_activation_scalar(rec_act, acc[B + j]);
                const float hh = fl_activation_scalar(act, acc[2 * B + j] + rg * acc[3 * B + j]);
                h_next[j] = fl_gru_mix(z, h_b[j], hh);
            }
        }
    }
}

/* The last part of a whole-row GRU step: gates (4, n_padded) hold z and r activated and the
 * candidate's pre-activation in row 2; activation over the row, then the mix into h_next. */
static void fl_gru_finish_row(const fl_rnn_params *p, const fl_rnn_step_args *a, ptrdiff_t r,
                              float *gates, float *scratch /* (n_padded) */) {
    const ptrdiff_t n_units = p->n_units, n_padded = a->n_padded;
    const float *z = gates, *h = a->h_cur + r * n_padded;
    float *hh = gates + 2 * n_padded, *h_next = a->h_next + r * n_padded;
    fl_activation_apply(p->activation, hh, 1, n_units, scratch);
    for (ptrdiff_t u = 0; u < n_units; u++) h_next[u] = fl_gru_mix(z[u], h[u], hh[u]);
}

/* One timestep of one row of a reset_after GRU whose activation is row-wise (softmax & co. act
 * on all units of a gate, as Keras applies them to the (batch, units) tensors). */
static void fl_gru_step_row(const fl_rnn_params *p, const fl_rnn_step_args *a, ptrdiff_t r,
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
        w = fl_accumulate3_portable(acc, x_t, n_features, w, 2);
        fl_accumulate3_portable(acc, h, n_units, w, 3);
        for (int g = 0; g < 4; g++)
            for (int j = 0; j < B; j++) gates[g * n_padded + b * B + j] = acc[g * B + j];
    }
    float *scratch_row = scratch + 4 * n_padded;
    fl_activation_apply(p->recurrent_activation, gates, 1, n_units, scratch_row);
    fl_activation_apply(p->recurrent_activation, gates + n_padded, 1, n_units, scratch_row);
    for (ptrdiff_t u = 0; u < n_units; u++)
        gates[2 * n_padded + u] += gates[n_padded + u] * gates[3 * n_padded + u];
    fl_gru_finish_row(p, a, r, gates, scratch_row);
}

/* One timestep of one row of a reset_after=False GRU (Keras's default before 2.3 and every
 * Keras 1 GRU): pass 1 takes z, r and x_h of every block, pass 2 the candidate's
 * (r * h) @ U_h, which needs every r of the row first. */
static void fl_gru_reset_before_step_row(const fl_rnn_params *p, const fl_rnn_step_args *a,
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
        w = fl_accumulate3_portable(acc, x_t, n_features, w, 2);
        for (ptrdiff_t k = 0; k < n_units; k++, w += 2 * B)
            for (int j = 0; j < 2 * B; j++) acc[j] += h[k] * w[j];
        for (int g = 0; g < 3; g++)
            for (int j = 0; j < B; j++) gates[g * n_padded + b * B + j] = acc[g * B + j];
    }
    float *scratch_row = scratch + 4 * n_padded;
    fl_activation_apply(p->recurrent_activation, gates, 1, n_units, scratch_row);
    fl_activation_apply(p->recurrent_activation, gates + n_padded, 1, n_units, scratch_row);
    for (ptrdiff_t u = 0; u < n_padded; u++) rh[u] = u < n_units ? gates[n_padded + u] * h[u] : 0;
    for (ptrdiff_t b = 0; b < n_padded / B; b++) {
        const float *w = p->weights + b * panel + (n_features * 3 + n_units * 2) * B;
        float *acc = gates + 2 * n_padded + b * B;
        for (ptrdiff_t k = 0; k < n_units; k++, w += B)
            for (int j = 0; j < B; j++) acc[j] += rh[k] * w[j];
    }
    fl_gru_finish_row(p, a, r, gates, scratch_row);
}
