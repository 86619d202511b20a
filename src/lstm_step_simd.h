/* The LSTM and SimpleRNN step, written once and stamped out per ISA by the kernels_<isa>.c
 * files (simd_body.h), as zstd stamps out its _body functions with target attributes: FLV ops on
 * the ISA's wide vectors, FL_LSTM_ROWS rows per register block, FL_LSTM_ROW_BLOCKS unit blocks
 * for a single row, FL_LSTM_GATE(acc, g), gate vector g (8 lanes, FL_GVEC) of a (row,
 * block)'s accumulators, and where the update takes two pairs per vector (FL_WIDE_UPD_PAIRS 2)
 * fl_lstm_gates2_<isa>, the update vectors of two pairs' accumulators. A register-blocked micro-kernel computes the 4 x 8 units of a block
 * (FL_LSTM_NQ vectors) for up to FL_LSTM_ROWS batch rows at once, then updates the state
 * (lstm_update_simd.h). For an LSTM the 4 x 8 units are the gates i, f, c, o; a SimpleRNN block
 * is 32 units of the one gate (same packing, fastlstm.h), so it shares every loop here but the
 * update. The `cell` and row-count arguments are compile-time constants at each call
 * (always_inline), which keeps the accumulators in registers.
 *
 * Each unit's arithmetic is the same chain of FMAs over k whatever the vector width and the
 * group its row falls in, so results do not depend on the ISA's width, on how rows are grouped
 * or on how they are shared among threads. */

#define FL_LSTM_NQ (4 * FL_RNN_BLOCK / FL_VW)  /* vectors per (row, block) */
#define FL_LSTM_MAX_PAIRS (FL_LSTM_ROWS > FL_LSTM_ROW_BLOCKS ? FL_LSTM_ROWS : FL_LSTM_ROW_BLOCKS)

/* acc[i] += src[i][k] * w[k] for k < n_k (4 x 8 units per k); returns w past the rows. */
FL_SIMD_INLINE const float *FL_ISA_NAME(fl_accumulate4)(const int n_rows,
                                                         const float *const *src, ptrdiff_t n_k,
                                                         const float *w,
                                                         FL_VEC acc[][FL_LSTM_NQ]) {
    for (ptrdiff_t k = 0; k < n_k; k++, w += 4 * FL_RNN_BLOCK) {
        FL_VEC wv[FL_LSTM_NQ];
        for (int q = 0; q < FL_LSTM_NQ; q++) wv[q] = FLV(load)(w + q * FL_VW);
        for (int i = 0; i < n_rows; i++) {
            const FL_VEC v = FLV(bcast)(src[i] + k);
            for (int q = 0; q < FL_LSTM_NQ; q++)
                acc[i][q] = FLV(fma)(v, wv[q], acc[i][q]);
        }
    }
    return w;
}

/* The state update of n (row, block) pairs (or blocks of one row) from their accumulators. The
 * update's gate loop is not unrolled (its activations switch on run-time ids); reading the
 * accumulators from a copy (z) keeps acc itself in registers through the k loops. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_lstm_update_acc)(const int cell, const int n,
                                                    const fl_rnn_params *p,
                                                    FL_VEC acc[][FL_LSTM_NQ], float *const *c,
                                                    float *const *h_next) {
#if FL_WIDE_UPD_PAIRS == 2
    FL_WIDE_UVEC z[FL_LSTM_MAX_PAIRS / 2][4];
    for (int i = 0; i + 1 < n; i += 2) FL_ISA_NAME(fl_lstm_gates2)(acc[i], acc[i + 1], z[i / 2]);
    if (n >= 2) FL_WIDE_UPD_NAME(fl_lstm_update_n)(cell, n / 2, p, z, c, h_next);
    if (n & 1) {  /* the pair left over on 8-lane vectors: the same operations */
        FL_GVEC z1[1][4];
        for (int g = 0; g < 4; g++) z1[0][g] = FL_LSTM_GATE(acc[n - 1], g);
        FL_GATE_NAME(fl_lstm_update_n)(cell, 1, p, z1, c + n - 1, h_next + n - 1);
    }
#else
    FL_WIDE_UVEC z[FL_LSTM_MAX_PAIRS][4];
    for (int i = 0; i < n; i++)
        for (int g = 0; g < 4; g++) z[i][g] = FL_LSTM_GATE(acc[i], g);
    FL_WIDE_UPD_NAME(fl_lstm_update_n)(cell, n, p, z, c, h_next);
#endif
}

/* Block b of rows r .. r + n_rows - 1. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_lstm_block)(const int cell, const int n_rows,
                                               const fl_rnn_params *p, const fl_rnn_step_args *a,
                                               ptrdiff_t r, ptrdiff_t b) {
    enum { G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t block_units = cell == FL_CELL_SIMPLE ? G : FL_RNN_BLOCK;
    const ptrdiff_t n_blocks = a->n_padded / block_units;
    const float *w = p->weights + b * (n_features + n_units) * G; /* (n_features + n_units, 4, B) */
    const float *bias = p->bias + b * G;
    const float *x_t[FL_LSTM_ROWS], *h[FL_LSTM_ROWS];
    FL_VEC acc[FL_LSTM_ROWS][FL_LSTM_NQ];
    for (int i = 0; i < n_rows; i++) {
        x_t[i] = a->x + ((r + i) * a->n_timesteps + a->t) * n_features;
        h[i] = a->h_cur + (r + i) * a->n_padded;
        const float *init = a->xproj == NULL ? bias
                                             : fl_rnn_xproj_at(a, n_blocks, r + i,
                                                               a->step_in_chunk, b);
        for (int q = 0; q < FL_LSTM_NQ; q++) acc[i][q] = FLV(load)(init + q * FL_VW);
    }
    if (a->xproj == NULL) {
        w = FL_ISA_NAME(fl_accumulate4)(n_rows, x_t, n_features, w, acc);
    } else {
        w += n_features * G;
    }
    FL_ISA_NAME(fl_accumulate4)(n_rows, h, n_units, w, acc);
    float *c[FL_LSTM_ROWS], *h_next[FL_LSTM_ROWS];
    for (int i = 0; i < n_rows; i++) {
        c[i] = a->c + (r + i) * a->n_padded + b * block_units;
        h_next[i] = a->h_next + (r + i) * a->n_padded + b * block_units;
    }
    FL_ISA_NAME(fl_lstm_update_acc)(cell, n_rows, p, acc, c, h_next);
}

/* One row, n_blocks_at unit blocks at once: more independent FMA chains than one block gives,
 * which a single row (batch-1 streaming) needs to keep both FMA pipes busy. Same per-unit
 * arithmetic as above. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_lstm_blocks_of_row)(const int cell, const int n_blocks_at,
                                                        const fl_rnn_params *p,
                                                        const fl_rnn_step_args *a, ptrdiff_t r,
                                                        ptrdiff_t b) {
    enum { G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t block_units = cell == FL_CELL_SIMPLE ? G : FL_RNN_BLOCK;
    const ptrdiff_t n_blocks = a->n_padded / block_units;
    const ptrdiff_t panel = (n_features + n_units) * G;
    const float *w = p->weights + b * panel;     /* block b; block b + 1 is at w + panel */
    const float *x_t = a->x + (r * a->n_timesteps + a->t) * n_features;
    const float *h = a->h_cur + r * a->n_padded;
    FL_VEC acc[FL_LSTM_ROW_BLOCKS][FL_LSTM_NQ];
    ptrdiff_t k = 0;
    for (int i = 0; i < n_blocks_at; i++) {
        const float *init = a->xproj == NULL ? p->bias + (b + i) * G
                                             : fl_rnn_xproj_at(a, n_blocks, r, a->step_in_chunk,
                                                               b + i);
        for (int q = 0; q < FL_LSTM_NQ; q++) acc[i][q] = FLV(load)(init + q * FL_VW);
    }
    if (a->xproj != NULL) {
        k = n_features;
        w += n_features * G;
    }
    for (; k < n_features + n_units; k++, w += G) {
        const FL_VEC v = FLV(bcast)(k < n_features ? x_t + k : h + (k - n_features));
        for (int i = 0; i < n_blocks_at; i++)
            for (int q = 0; q < FL_LSTM_NQ; q++)
                acc[i][q] = FLV(fma)(v, FLV(load)(w + i * panel + q * FL_VW),
                                                 acc[i][q]);
    }
    float *c[FL_LSTM_ROW_BLOCKS], *h_next[FL_LSTM_ROW_BLOCKS];
    for (int i = 0; i < n_blocks_at; i++) {
        c[i] = a->c + r * a->n_padded + (b + i) * block_units;
        h_next[i] = a->h_next + r * a->n_padded + (b + i) * block_units;
    }
    FL_ISA_NAME(fl_lstm_update_acc)(cell, n_blocks_at, p, acc, c, h_next);
}

/* The rows left after the groups of FL_LSTM_ROWS, as one block call with a constant row count,
 * in a function of its own: inlined into the step's loops, its accumulators were spilled (the
 * AVX2 2-row rest ran at half speed, 10% of a 2-thread batch step). */
FL_NOINLINE FL_SIMD_FN static void FL_ISA_NAME(fl_lstm_block_rest)(const int cell,
                                                                   const int n_rows,
                                                                   const fl_rnn_params *p,
                                                                   const fl_rnn_step_args *a,
                                                                   ptrdiff_t r, ptrdiff_t b) {
    switch (n_rows) {
#define FL_REST(n)                                                                              \
    case n:                                                                                     \
        if (n < FL_LSTM_ROWS) {                                                                 \
            if (cell == FL_CELL_SIMPLE)                                                         \
                FL_ISA_NAME(fl_lstm_block)(FL_CELL_SIMPLE, n < FL_LSTM_ROWS ? n : 1, p, a, r, b); \
            else                                                                                \
                FL_ISA_NAME(fl_lstm_block)(FL_CELL_LSTM, n < FL_LSTM_ROWS ? n : 1, p, a, r, b);   \
        }                                                                                       \
        break;
    FL_REST(2) FL_REST(3) FL_REST(4) FL_REST(5) FL_REST(6) FL_REST(7) FL_REST(8) FL_REST(9)
    FL_REST(10) FL_REST(11) FL_REST(12) FL_REST(13) FL_REST(14) FL_REST(15)
#undef FL_REST
    default: break;
    }
}

FL_SIMD_INLINE void FL_ISA_NAME(fl_rnn4_step)(const int cell, const fl_rnn_params *p,
                                              const fl_rnn_step_args *a, ptrdiff_t r0,
                                              ptrdiff_t r1, ptrdiff_t b0, ptrdiff_t b1) {
    const ptrdiff_t r_rest = r1 - (r1 - r0) % FL_LSTM_ROWS;  /* rows past the groups of FL_LSTM_ROWS */
    for (ptrdiff_t b = b0; b < b1; b++) {
        for (ptrdiff_t r = r0; r + FL_LSTM_ROWS <= r1; r += FL_LSTM_ROWS)
            FL_ISA_NAME(fl_lstm_block)(cell, FL_LSTM_ROWS, p, a, r, b);
        if (r1 - r_rest >= 2) FL_ISA_NAME(fl_lstm_block_rest)(cell, (int)(r1 - r_rest), p, a, r_rest, b);
    }
    if (r1 - r_rest == 1) {  /* one row: several blocks at once */
        const ptrdiff_t n_groups = fl_row_groups(b1 - b0, FL_LSTM_ROW_BLOCKS);
        for (ptrdiff_t j = 0; j < n_groups; j++) {
            ptrdiff_t b;
            const int n = fl_row_group(b0, b1 - b0, FL_LSTM_ROW_BLOCKS,
                                       a->reverse ? n_groups - 1 - j : j, &b);
            if (n == FL_LSTM_ROW_BLOCKS)
                FL_ISA_NAME(fl_lstm_blocks_of_row)(cell, FL_LSTM_ROW_BLOCKS, p, a, r_rest, b);
            else if (n == 2)
                FL_ISA_NAME(fl_lstm_blocks_of_row)(cell, 2, p, a, r_rest, b);
            else
                FL_ISA_NAME(fl_lstm_block)(cell, 1, p, a, r_rest, b);
        }
    }
}

FL_SIMD_FN static void FL_ISA_NAME(fl_lstm_step)(const fl_rnn_params *p,
                                                 const fl_rnn_step_args *a, ptrdiff_t r0,
                                                 ptrdiff_t r1, ptrdiff_t b0, ptrdiff_t b1) {
    FL_ISA_NAME(fl_rnn4_step)(FL_CELL_LSTM, p, a, r0, r1, b0, b1);
}

FL_SIMD_FN static void FL_ISA_NAME(fl_simple_rnn_step)(const fl_rnn_params *p,
                                                       const fl_rnn_step_args *a, ptrdiff_t r0,
                                                       ptrdiff_t r1, ptrdiff_t b0,
                                                       ptrdiff_t b1) {
    FL_ISA_NAME(fl_rnn4_step)(FL_CELL_SIMPLE, p, a, r0, r1, b0, b1);
}

