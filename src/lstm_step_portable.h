/* Portable C LSTM and SimpleRNN steps (any CPU), and their whole-row steps used on every path.
 * Internal to rnn.c. LSTM gate order i, f, c, o (keras layers/rnn/lstm.py); a SimpleRNN block
 * is 32 units packed as 4 vectors of 8 (fastlstm.h), so both read 4 vectors per row k. */

/* acc[j] += src[k] * w[k][j] for k < n_k (4 vectors x FL_RNN_BLOCK units per k); returns w
 * past the rows. The portable twin of fl_accumulate4_avx2. */
static const float *fl_accumulate4_portable(float *acc /* (4 * FL_RNN_BLOCK) */,
                                                const float *src, ptrdiff_t n_k, const float *w) {
    for (ptrdiff_t k = 0; k < n_k; k++, w += 4 * FL_RNN_BLOCK) {
        const float v = src[k];
        for (int j = 0; j < 4 * FL_RNN_BLOCK; j++) acc[j] += v * w[j];
    }
    return w;
}

/* One timestep for rows [r0, r1) and unit blocks [b0, b1): element-wise activations, fused per
 * block: z for 4 vectors x FL_RNN_BLOCK units, then the gates and the c/h update in place. */
static inline void fl_rnn4_step_portable(const int cell, const fl_rnn_params *p,
                                         const fl_rnn_step_args *a, ptrdiff_t r0, ptrdiff_t r1,
                                         ptrdiff_t b0, ptrdiff_t b1) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t block_units = cell == FL_CELL_SIMPLE ? G : B;
    const ptrdiff_t n_rows_w = n_features + n_units;
    const int act = p->activation, rec_act = p->recurrent_activation;
    for (ptrdiff_t b = b0; b < b1; b++) {
        const float *panel = p->weights + b * n_rows_w * G;  /* (n_features + n_units, 4, B) */
        const float *bias = p->bias + b * G;                 /* (4, B) */
        for (ptrdiff_t r = r0; r < r1; r++) {
            const float *x_t = a->x + (r * a->n_timesteps + a->t) * n_features; /* (n_features) */
            const float *h = a->h_cur + r * a->n_padded;                           /* (n_units) */
            float acc[G];
            const float *w = panel;
            if (a->xproj != NULL) {
                const float *xp = fl_rnn_xproj_at(a, a->n_padded / block_units, r,
                                                  a->step_in_chunk, b);
                for (int j = 0; j < G; j++) acc[j] = xp[j];
                w += n_features * G;
            } else {
                for (int j = 0; j < G; j++) acc[j] = bias[j];
                w = fl_accumulate4_portable(acc, x_t, n_features, w);
            }
            fl_accumulate4_portable(acc, h, n_units, w);
            float *c = a->c + r * a->n_padded + b * block_units;        /* (B) */
            float *h_next = a->h_next + r * a->n_padded + b * block_units;
            if (cell == FL_CELL_SIMPLE) {
                for (int j = 0; j < G; j++) h_next[j] = fl_activation_scalar(act, acc[j]);
                continue;
            }
            for (int j = 0; j < B; j++) {
                const float ig = fl_activation_scalar(rec_act, acc[j]);
                const float fg = fl_activation_scalar(rec_act, acc[B + j]);
                const float cg = fl_activation_scalar(act, acc[2 * B + j]);
                const float og = fl_activation_scalar(rec_act, acc[3 * B + j]);
                const float c_new = fg * c[j] + ig * cg;
                c[j] = c_new;
                h_next[j] = og * fl_activation_scalar(act, c_new);
            }
        }
    }
}

static void fl_lstm_step_portable(const fl_rnn_params *p, const fl_rnn_step_args *a,
                                  ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t b0, ptrdiff_t b1) {
    fl_rnn4_step_portable(FL_CELL_LSTM, p, a, r0, r1, b0, b1);
}

static void fl_simple_rnn_step_portable(const fl_rnn_params *p, const fl_rnn_step_args *a,
                                        ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t b0, ptrdiff_t b1) {
    fl_rnn4_step_portable(FL_CELL_SIMPLE, p, a, r0, r1, b0, b1);
}

/* One timestep for one row when an activation is row-wise (softmax, log_softmax, sparsemax act
 * over all units of a gate, as Keras applies them to the (batch, units) gate tensors): the
 * pre-activations of every block are parked as (4, n_padded) before the gates are taken. */
static void fl_lstm_step_row(const fl_rnn_params *p, const fl_rnn_step_args *a, ptrdiff_t r,
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
        w = fl_accumulate4_portable(acc, x_t, n_features, w);
        fl_accumulate4_portable(acc, h, n_units, w);
        for (int g = 0; g < 4; g++)
            for (int j = 0; j < B; j++) gates[g * n_padded + b * B + j] = acc[g * B + j];
    }
    float *ig = gates, *fg = gates + n_padded, *cg = gates + 2 * n_padded;
    float *og = gates + 3 * n_padded;
    float *c = a->c + r * n_padded, *h_next = a->h_next + r * n_padded;
    fl_activation_apply(p->recurrent_activation, ig, 1, n_units, scratch);
    fl_activation_apply(p->recurrent_activation, fg, 1, n_units, scratch);
    fl_activation_apply(p->activation, cg, 1, n_units, scratch);
    fl_activation_apply(p->recurrent_activation, og, 1, n_units, scratch);
    for (ptrdiff_t u = 0; u < n_units; u++) c[u] = fg[u] * c[u] + ig[u] * cg[u];
    for (ptrdiff_t u = 0; u < n_units; u++) h_next[u] = c[u];
    fl_activation_apply(p->activation, h_next, 1, n_units, scratch);
    for (ptrdiff_t u = 0; u < n_units; u++) h_next[u] *= og[u];
}

/* One timestep for one row of a SimpleRNN with a row-wise activation (over all its units). */
static void fl_simple_rnn_step_row(const fl_rnn_params *p, const fl_rnn_step_args *a, ptrdiff_t r,
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
        w = fl_accumulate4_portable(acc, x_t, n_features, w);
        fl_accumulate4_portable(acc, h, n_units, w);
    }
    fl_activation_apply(p->activation, h_next, 1, n_units, scratch);
}
