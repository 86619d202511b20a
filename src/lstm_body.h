/* The LSTM kernel body, written once and compiled twice by lstm.c: once portable, once with
 * FL_TARGET = target("avx2,fma"), each copy named through FL_FN(). Not a public header. */

/* Per-thread workspace: xproj (n_timesteps, n_blocks, 4, FL_LSTM_BLOCK) | h (2 x n_units_padded)
 * | c (n_units_padded) | gates (4, n_units_padded) | scratch (n_units_padded). */
FL_TARGET static void FL_FN(fl_lstm_row)(const fl_lstm_params *p, ptrdiff_t n_timesteps,
                                         const float *x /* (n_timesteps, n_features) */,
                                         float *h_state /* (n_units) in/out */,
                                         float *c_state /* (n_units) in/out */,
                                         float *out /* (n_timesteps|1, n_units) */,
                                         int return_sequences, int go_backwards,
                                         float *ws /* fl_lstm_thread_floats() */) {
    enum { B = FL_LSTM_BLOCK, G = 4 * FL_LSTM_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t n_blocks = (n_units + B - 1) / B, n_padded = n_blocks * B;
    const int act = p->activation, rec_act = p->recurrent_activation;
    const int rowwise = fl_activation_is_rowwise(act) || fl_activation_is_rowwise(rec_act);

    float *xproj = ws;                                   /* (n_timesteps, n_blocks, 4, B) */
    float *h_cur = xproj + n_timesteps * n_blocks * G;   /* (n_padded) */
    float *h_next = h_cur + n_padded;                    /* (n_padded) */
    float *c_cur = h_next + n_padded;                    /* (n_padded) */
    float *gates = c_cur + n_padded;                     /* (4, n_padded) */
    float *scratch = gates + 4 * n_padded;               /* (n_padded) */

    /* The input projection of every timestep, bias folded in, before the recurrence (it does not
     * depend on h), so the time loop only adds h @ recurrent_kernel. */
    for (ptrdiff_t b = 0; b < n_blocks; b++) {
        const float *kernel_b = p->kernel + b * n_features * G;
        const float *bias_b = p->bias + b * G;
        for (ptrdiff_t t = 0; t < n_timesteps; t++) {
            float acc[G];
            const float *x_t = x + t * n_features;
            for (int j = 0; j < G; j++) acc[j] = bias_b[j];
            for (ptrdiff_t k = 0; k < n_features; k++) {
                const float xv = x_t[k];
                const float *w = kernel_b + k * G;
                for (int j = 0; j < G; j++) acc[j] += xv * w[j];
            }
            float *dst = xproj + (t * n_blocks + b) * G;
            for (int j = 0; j < G; j++) dst[j] = acc[j];
        }
    }

    for (ptrdiff_t u = 0; u < n_padded; u++) {
        h_cur[u] = u < n_units ? h_state[u] : 0.0f;
        c_cur[u] = u < n_units ? c_state[u] : 0.0f;
        h_next[u] = 0.0f;
    }

    for (ptrdiff_t s = 0; s < n_timesteps; s++) {
        /* go_backwards reads the input from the end but numbers outputs in processing order
         * (keras backend.rnn reverses the inputs, not the outputs). */
        const ptrdiff_t t = go_backwards ? n_timesteps - 1 - s : s;
        const float *xp = xproj + t * n_blocks * G;

        for (ptrdiff_t b = 0; b < n_blocks; b++) {
            float acc[G];
            const float *rec_b = p->recurrent + b * n_units * G;
            for (int j = 0; j < G; j++) acc[j] = xp[b * G + j];
            for (ptrdiff_t k = 0; k < n_units; k++) {
                const float hv = h_cur[k];
                const float *w = rec_b + k * G;
                for (int j = 0; j < G; j++) acc[j] += hv * w[j];
            }
            if (rowwise) {
                /* A row-wise activation needs every unit of a gate first: park the
                 * pre-activations as (4, n_padded) and finish after the block loop. */
                for (int g = 0; g < 4; g++)
                    for (int j = 0; j < B; j++) gates[g * n_padded + b * B + j] = acc[g * B + j];
                continue;
            }
            /* Fused gate nonlinearities and state update for this block, gate order i, f, c, o. */
            for (int j = 0; j < B; j++) {
                const ptrdiff_t u = b * B + j;
                const float ig = fl_activation_scalar(rec_act, acc[j]);
                const float fg = fl_activation_scalar(rec_act, acc[B + j]);
                const float cg = fl_activation_scalar(act, acc[2 * B + j]);
                const float og = fl_activation_scalar(rec_act, acc[3 * B + j]);
                const float c_new = fg * c_cur[u] + ig * cg;
                c_cur[u] = c_new;
                h_next[u] = og * fl_activation_scalar(act, c_new);
            }
        }

        if (rowwise) {
            float *ig = gates, *fg = gates + n_padded, *cg = gates + 2 * n_padded;
            float *og = gates + 3 * n_padded;
            fl_activation_apply(rec_act, ig, 1, n_units, scratch);
            fl_activation_apply(rec_act, fg, 1, n_units, scratch);
            fl_activation_apply(act, cg, 1, n_units, scratch);
            fl_activation_apply(rec_act, og, 1, n_units, scratch);
            for (ptrdiff_t u = 0; u < n_units; u++) c_cur[u] = fg[u] * c_cur[u] + ig[u] * cg[u];
            for (ptrdiff_t u = 0; u < n_units; u++) h_next[u] = c_cur[u];
            fl_activation_apply(act, h_next, 1, n_units, scratch);
            for (ptrdiff_t u = 0; u < n_units; u++) h_next[u] *= og[u];
        }

        float *swap = h_cur;
        h_cur = h_next;
        h_next = swap;
        if (return_sequences) {
            for (ptrdiff_t u = 0; u < n_units; u++) out[s * n_units + u] = h_cur[u];
        }
    }

    for (ptrdiff_t u = 0; u < n_units; u++) {
        h_state[u] = h_cur[u];
        c_state[u] = c_cur[u];
        if (!return_sequences) out[u] = h_cur[u];
    }
}
