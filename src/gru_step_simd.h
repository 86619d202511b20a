/* The reset_after GRU step, written once and stamped out per ISA by the kernels_<isa>.c files
 * (simd_body.h, as lstm_step_simd.h): besides the vector operations, each ISA defines
 * fl_gru_pair_<isa> (the 16 lanes of a block's z and r sums), fl_gru_bcast_<isa> (a broadcast
 * k-th input), FL_GRU_ROWS rows per register block, FL_GRU_ROW_BLOCKS unit blocks for a single
 * row, and fl_gru_pload/pfma/plo/phi/bcast_of/bcast_gate_<isa>; an ISA whose vectors hold two
 * blocks' candidate units also defines FL_GRU_PAIR_ROWS and fl_gru_part2_<isa>.
 *
 * A block keeps 4 sums of 8 units per row: z and r (input and recurrent parts together), the
 * candidate's input part x_h and its recurrent part h_h, which Keras multiplies by r before
 * adding (GRUCell.call, keras layers/rnn/gru.py). Rows of x add to z, r, x_h and rows of h to
 * z, r, h_h: per k one z|r pair and one 8-unit vector. Each unit's arithmetic is the same chain
 * of FMAs over k on every ISA and in every grouping of rows, so results do not depend on
 * either. Packing in fastlstm.h. */

#define FL_PAIR FL_ISA_NAME(fl_gru_pair)
#define FL_BCAST FL_ISA_NAME(fl_gru_bcast)

/* zr[i] += src[i][k] * w[k][0..16), part[i] += src[i][k] * w[k][16..24) for k < n_k (part: x_h
 * for rows of x, h_h for rows of h); returns w past the rows. */
FL_SIMD_INLINE const float *FL_ISA_NAME(fl_gru_accumulate)(const int n_rows,
                                                           const float *const *src,
                                                           ptrdiff_t n_k, const float *w,
                                                           FL_PAIR *zr, FL_GVEC *part) {
    for (ptrdiff_t k = 0; k < n_k; k++, w += 3 * FL_RNN_BLOCK) {
        const FL_PAIR w01 = FL_ISA_NAME(fl_gru_pload)(w);
        const FL_GVEC w2 = FLG(load)(w + 2 * FL_RNN_BLOCK);
        for (int i = 0; i < n_rows; i++) {
            const FL_BCAST v = FL_ISA_NAME(fl_gru_bcast_of)(src[i] + k);
            zr[i] = FL_ISA_NAME(fl_gru_pfma)(v, w01, zr[i]);
            part[i] = FLG(fma)(FL_ISA_NAME(fl_gru_bcast_gate)(v), w2, part[i]);
        }
    }
    return w;
}

/* The update of n (row, block) accumulator sets: with `wide` (a compile-time constant), two
 * sets per update vector where the ISA's update vectors hold two pairs (fl_gru_gates2_<isa> and
 * fl_gru_join_<isa> regroup their sums; a set left over takes the 8-lane update), else one per
 * 8-lane vector: a single row's few blocks are bound by the update's latency, which more,
 * narrower independent chains hide better (1 row, 16 blocks: 8% faster on Zen 5). */
FL_SIMD_INLINE void FL_ISA_NAME(fl_gru_finish)(const int wide, const int n,
                                               const fl_rnn_params *p,
                                               const FL_PAIR *zr, const FL_GVEC *x_h,
                                               const FL_GVEC *h_h, const float *const *h_b,
                                               float *const *h_next) {
    enum { MAX_SETS = FL_GRU_ROWS > FL_GRU_ROW_BLOCKS ? FL_GRU_ROWS : FL_GRU_ROW_BLOCKS };
    int i0 = 0;
#if FL_WIDE_UPD_PAIRS == 2
    FL_WIDE_UVEC s2[MAX_SETS / 2][4];
    for (int i = 0; wide && i + 1 < n; i += 2) {
        FL_ISA_NAME(fl_gru_gates2)(zr[i], zr[i + 1], &s2[i / 2][0], &s2[i / 2][1]);
        s2[i / 2][2] = FL_ISA_NAME(fl_gru_join)(x_h[i], x_h[i + 1]);
        s2[i / 2][3] = FL_ISA_NAME(fl_gru_join)(h_h[i], h_h[i + 1]);
    }
    if (wide && n >= 2) {
        FL_WIDE_UPD_NAME(fl_gru_update_n)(n / 2, p, s2, h_b, h_next);
        i0 = n - n % 2;
    }
#else
    (void)wide;
#endif
    FL_GVEC s[MAX_SETS][4];
    for (int i = i0; i < n; i++) {
        s[i - i0][0] = FL_ISA_NAME(fl_gru_plo)(zr[i]);
        s[i - i0][1] = FL_ISA_NAME(fl_gru_phi)(zr[i]);
        s[i - i0][2] = x_h[i];
        s[i - i0][3] = h_h[i];
    }
    if (n > i0) FL_GATE_NAME(fl_gru_update_n)(n - i0, p, s, h_b + i0, h_next + i0);
}

/* Block b of rows r .. r + n_rows - 1. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_gru_block)(const int n_rows, const fl_rnn_params *p,
                                              const fl_rnn_step_args *a, ptrdiff_t r,
                                              ptrdiff_t b) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t panel = (n_features + n_units) * 3 * B, n_blocks = a->n_padded / B;
    const float *x_t[FL_GRU_ROWS], *h[FL_GRU_ROWS], *h_b[FL_GRU_ROWS];
    float *h_next[FL_GRU_ROWS];
    FL_PAIR zr[FL_GRU_ROWS];
    FL_GVEC x_h[FL_GRU_ROWS], h_h[FL_GRU_ROWS];
    for (int i = 0; i < n_rows; i++) {
        x_t[i] = a->x + ((r + i) * a->n_timesteps + a->t) * n_features;
        h[i] = a->h_cur + (r + i) * a->n_padded;
        const float *init = a->xproj == NULL
            ? p->bias + b * G
            : fl_rnn_xproj_at(a, n_blocks, r + i, a->step_in_chunk, b);
        zr[i] = FL_ISA_NAME(fl_gru_pload)(init);
        x_h[i] = FLG(load)(init + 2 * B);
        h_h[i] = FLG(load)(init + 3 * B);
        h_b[i] = a->h_cur + (r + i) * a->n_padded + b * B;
        h_next[i] = a->h_next + (r + i) * a->n_padded + b * B;
    }
    const float *w = p->weights + b * panel;
    if (a->xproj == NULL) w = FL_ISA_NAME(fl_gru_accumulate)(n_rows, x_t, n_features, w, zr, x_h);
    else w += n_features * 3 * B;
    FL_ISA_NAME(fl_gru_accumulate)(n_rows, h, n_units, w, zr, h_h);
    FL_ISA_NAME(fl_gru_finish)(1, n_rows, p, zr, x_h, h_h, h_b, h_next);
}

/* One row, n_at blocks from b at once: more independent FMA chains for a single row. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_gru_blocks_of_row)(const int n_at, const fl_rnn_params *p,
                                                      const fl_rnn_step_args *a, ptrdiff_t r,
                                                      ptrdiff_t b) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t panel = (n_features + n_units) * 3 * B, n_blocks = a->n_padded / B;
    const float *x_t = a->x + (r * a->n_timesteps + a->t) * n_features;
    const float *h = a->h_cur + r * a->n_padded, *h_b[FL_GRU_ROW_BLOCKS];
    float *h_next[FL_GRU_ROW_BLOCKS];
    FL_PAIR zr[FL_GRU_ROW_BLOCKS];
    FL_GVEC x_h[FL_GRU_ROW_BLOCKS], h_h[FL_GRU_ROW_BLOCKS];
    for (int i = 0; i < n_at; i++) {
        const float *init = a->xproj == NULL
            ? p->bias + (b + i) * G
            : fl_rnn_xproj_at(a, n_blocks, r, a->step_in_chunk, b + i);
        zr[i] = FL_ISA_NAME(fl_gru_pload)(init);
        x_h[i] = FLG(load)(init + 2 * B);
        h_h[i] = FLG(load)(init + 3 * B);
        h_b[i] = h + (b + i) * B;
        h_next[i] = a->h_next + r * a->n_padded + (b + i) * B;
    }
    ptrdiff_t k = a->xproj == NULL ? 0 : n_features;
    const float *w = p->weights + b * panel + k * 3 * B;
    for (; k < n_features + n_units; k++, w += 3 * B) {
        const int is_x = k < n_features;
        const FL_BCAST v = FL_ISA_NAME(fl_gru_bcast_of)(is_x ? x_t + k : h + (k - n_features));
        const FL_GVEC v8 = FL_ISA_NAME(fl_gru_bcast_gate)(v);
        for (int i = 0; i < n_at; i++) {
            const float *wi = w + i * panel;
            zr[i] = FL_ISA_NAME(fl_gru_pfma)(v, FL_ISA_NAME(fl_gru_pload)(wi), zr[i]);
            if (is_x) x_h[i] = FLG(fma)(v8, FLG(load)(wi + 2 * B), x_h[i]);
            else h_h[i] = FLG(fma)(v8, FLG(load)(wi + 2 * B), h_h[i]);
        }
    }
    FL_ISA_NAME(fl_gru_finish)(0, n_at, p, zr, x_h, h_h, h_b, h_next);
}

#ifdef FL_GRU_PAIR_ROWS
/* fl_gru_finish's arrays hold FL_GRU_ROWS sets: the two-block path's rows must fit (C99 has no
 * static assertion; a negative array size stops the build). */
typedef char FL_ISA_NAME(fl_gru_pair_rows_fit)[FL_GRU_PAIR_ROWS <= FL_GRU_ROWS ? 1 : -1];

/* zr[i][j] += src[i][k] * w_j[k][0..16) for blocks j = 0, 1 (w_1 = w_0 + panel), part[i] +=
 * src[i][k] * (w_0[k][16..24) | w_1[k][16..24)) for k < n_k; returns w_0 past the rows. */
FL_SIMD_INLINE const float *FL_ISA_NAME(fl_gru_accumulate2)(const int n_rows,
                                                            const float *const *src,
                                                            ptrdiff_t n_k, const float *w,
                                                            ptrdiff_t panel,
                                                            FL_PAIR zr[][2], FL_ISA_NAME(fl_gru_part2) *part) {
    for (ptrdiff_t k = 0; k < n_k; k++, w += 3 * FL_RNN_BLOCK) {
        const FL_PAIR w0 = FL_ISA_NAME(fl_gru_pload)(w), w1 = FL_ISA_NAME(fl_gru_pload)(w + panel);
        const FL_ISA_NAME(fl_gru_part2) w2 = FL_ISA_NAME(fl_gru_part2_load)(w + 2 * FL_RNN_BLOCK,
                                                       w + panel + 2 * FL_RNN_BLOCK);
        for (int i = 0; i < n_rows; i++) {
            const FL_BCAST v = FL_ISA_NAME(fl_gru_bcast_of)(src[i] + k);
            zr[i][0] = FL_ISA_NAME(fl_gru_pfma)(v, w0, zr[i][0]);
            zr[i][1] = FL_ISA_NAME(fl_gru_pfma)(v, w1, zr[i][1]);
            part[i] = FL_ISA_NAME(fl_gru_part2_fma)(v, w2, part[i]);
        }
    }
    return w;
}

/* Blocks b and b + 1 of rows r .. r + n_rows - 1, for an ISA whose vectors hold two blocks' 8
 * candidate units (fl_part2_<isa>): per k, one z|r vector per block and one candidate vector
 * for both, every lane of every FMA used. The candidate's input part is accumulated first,
 * then its recurrent part. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_gru_block2)(const int n_rows, const fl_rnn_params *p,
                                               const fl_rnn_step_args *a, ptrdiff_t r,
                                               ptrdiff_t b) {
    enum { B = FL_RNN_BLOCK, G = 4 * FL_RNN_BLOCK };
    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t panel = (n_features + n_units) * 3 * B;
    const float *x_t[FL_GRU_PAIR_ROWS], *h[FL_GRU_PAIR_ROWS];
    FL_PAIR zr[FL_GRU_PAIR_ROWS][2];
    FL_ISA_NAME(fl_gru_part2) part[FL_GRU_PAIR_ROWS], x_h[FL_GRU_PAIR_ROWS];
    for (int i = 0; i < n_rows; i++) {
        x_t[i] = a->x + ((r + i) * a->n_timesteps + a->t) * n_features;
        h[i] = a->h_cur + (r + i) * a->n_padded;
        for (int j = 0; j < 2; j++) zr[i][j] = FL_ISA_NAME(fl_gru_pload)(p->bias + (b + j) * G);
        x_h[i] = FL_ISA_NAME(fl_gru_part2_load)(p->bias + b * G + 2 * B, p->bias + (b + 1) * G + 2 * B);
    }
    const float *w = FL_ISA_NAME(fl_gru_accumulate2)(n_rows, x_t, n_features,
                                                     p->weights + b * panel, panel, zr, x_h);
    for (int i = 0; i < n_rows; i++)
        part[i] = FL_ISA_NAME(fl_gru_part2_load)(p->bias + b * G + 3 * B, p->bias + (b + 1) * G + 3 * B);
    FL_ISA_NAME(fl_gru_accumulate2)(n_rows, h, n_units, w, panel, zr, part);
#if FL_WIDE_UPD_PAIRS == 2
    /* Each row's two blocks as one update vector: z and r of both from the z|r sums, the
     * candidate parts as accumulated. */
    FL_WIDE_UVEC s2[FL_GRU_PAIR_ROWS][4];
    const float *h_b[2 * FL_GRU_PAIR_ROWS];
    float *h_next[2 * FL_GRU_PAIR_ROWS];
    for (int i = 0; i < n_rows; i++) {
        FL_ISA_NAME(fl_gru_gates2)(zr[i][0], zr[i][1], &s2[i][0], &s2[i][1]);
        s2[i][2] = x_h[i];
        s2[i][3] = part[i];
        for (int j = 0; j < 2; j++) {
            h_b[2 * i + j] = h[i] + (b + j) * B;
            h_next[2 * i + j] = a->h_next + (r + i) * a->n_padded + (b + j) * B;
        }
    }
    FL_WIDE_UPD_NAME(fl_gru_update_n)(n_rows, p, s2, h_b, h_next);
#else
    for (int j = 0; j < 2; j++) {
        FL_PAIR zr_j[FL_GRU_PAIR_ROWS];
        FL_GVEC x_h_j[FL_GRU_PAIR_ROWS], h_h_j[FL_GRU_PAIR_ROWS];
        const float *h_b[FL_GRU_PAIR_ROWS];
        float *h_next[FL_GRU_PAIR_ROWS];
        for (int i = 0; i < n_rows; i++) {
            zr_j[i] = zr[i][j];
            x_h_j[i] = FL_ISA_NAME(fl_gru_part2_get)(x_h[i], j);
            h_h_j[i] = FL_ISA_NAME(fl_gru_part2_get)(part[i], j);
            h_b[i] = h[i] + (b + j) * B;
            h_next[i] = a->h_next + (r + i) * a->n_padded + (b + j) * B;
        }
        FL_ISA_NAME(fl_gru_finish)(1, n_rows, p, zr_j, x_h_j, h_h_j, h_b, h_next);
    }
#endif
}

/* The rows left after the groups of FL_GRU_PAIR_ROWS, as one call with a constant count. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_gru_block2_rest)(const int n_rows, const fl_rnn_params *p,
                                                    const fl_rnn_step_args *a, ptrdiff_t r,
                                                    ptrdiff_t b) {
    switch (n_rows) {
#define FL_REST(n) \
    case n: if (n < FL_GRU_PAIR_ROWS) FL_ISA_NAME(fl_gru_block2)(n < FL_GRU_PAIR_ROWS ? n : 1, p, a, r, b); break;
    FL_REST(1) FL_REST(2) FL_REST(3) FL_REST(4) FL_REST(5) FL_REST(6) FL_REST(7) FL_REST(8)
#undef FL_REST
    default: break;
    }
}
#endif

/* The rows left after the groups of FL_GRU_ROWS, as one block call with a constant row count. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_gru_block_rest)(const int n_rows, const fl_rnn_params *p,
                                                   const fl_rnn_step_args *a, ptrdiff_t r,
                                                   ptrdiff_t b) {
    switch (n_rows) {
#define FL_REST(n) \
    case n: if (n < FL_GRU_ROWS) FL_ISA_NAME(fl_gru_block)(n < FL_GRU_ROWS ? n : 1, p, a, r, b); break;
    FL_REST(2) FL_REST(3) FL_REST(4) FL_REST(5) FL_REST(6) FL_REST(7) FL_REST(8)
#undef FL_REST
    default: break;
    }
}

/* One row, blocks [b0, b1): several blocks at once, in a function of its own, so that the
 * batch paths' code does not shape its registers and placement (inlined into the step, a
 * single-row GRU sequence ran 10% slower on Zen 5). */
FL_NOINLINE FL_SIMD_FN static void FL_ISA_NAME(fl_gru_row_step)(const fl_rnn_params *p,
                                                                const fl_rnn_step_args *a,
                                                                ptrdiff_t r, ptrdiff_t b0,
                                                                ptrdiff_t b1) {
    const ptrdiff_t n_groups = fl_row_groups(b1 - b0, FL_GRU_ROW_BLOCKS);
    for (ptrdiff_t j = 0; j < n_groups; j++) {
        ptrdiff_t b;
        const int n = fl_row_group(b0, b1 - b0, FL_GRU_ROW_BLOCKS,
                                   a->reverse ? n_groups - 1 - j : j, &b);
        if (n == FL_GRU_ROW_BLOCKS)
            FL_ISA_NAME(fl_gru_blocks_of_row)(FL_GRU_ROW_BLOCKS, p, a, r, b);
        else if (n == 2)
            FL_ISA_NAME(fl_gru_blocks_of_row)(2, p, a, r, b);
        else
            FL_ISA_NAME(fl_gru_block)(1, p, a, r, b);
    }
}

FL_SIMD_FN static void FL_ISA_NAME(fl_gru_step)(const fl_rnn_params *p, const fl_rnn_step_args *a,
                                                ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t b0,
                                                ptrdiff_t b1) {
    const ptrdiff_t r_rest = r1 - (r1 - r0) % FL_GRU_ROWS;  /* rows past the groups of FL_GRU_ROWS */
    ptrdiff_t b_single = b0;  /* blocks from here on go one at a time */
#ifdef FL_GRU_PAIR_ROWS
    if (a->xproj == NULL && r1 - r0 >= 2) {  /* the batch path: blocks two at a time */
        const ptrdiff_t r_pair_rest = r1 - (r1 - r0) % FL_GRU_PAIR_ROWS;
        for (; b_single + 2 <= b1; b_single += 2) {
            ptrdiff_t r = r0;
            for (; r + FL_GRU_PAIR_ROWS <= r1; r += FL_GRU_PAIR_ROWS)
                FL_ISA_NAME(fl_gru_block2)(FL_GRU_PAIR_ROWS, p, a, r, b_single);
            if (r1 > r_pair_rest)
                FL_ISA_NAME(fl_gru_block2_rest)((int)(r1 - r_pair_rest), p, a, r_pair_rest,
                                                b_single);
        }
        for (ptrdiff_t b = b_single; b < b1; b++) {
            for (ptrdiff_t r = r0; r + FL_GRU_ROWS <= r1; r += FL_GRU_ROWS)
                FL_ISA_NAME(fl_gru_block)(FL_GRU_ROWS, p, a, r, b);
            if (r1 - r_rest >= 2)
                FL_ISA_NAME(fl_gru_block_rest)((int)(r1 - r_rest), p, a, r_rest, b);
            else if (r1 - r_rest == 1)
                FL_ISA_NAME(fl_gru_block)(1, p, a, r_rest, b);
        }
        return;
    }
#endif
    for (ptrdiff_t b = b_single; b < b1; b++) {
        for (ptrdiff_t r = r0; r + FL_GRU_ROWS <= r1; r += FL_GRU_ROWS)
            FL_ISA_NAME(fl_gru_block)(FL_GRU_ROWS, p, a, r, b);
        if (r1 - r_rest >= 2) FL_ISA_NAME(fl_gru_block_rest)((int)(r1 - r_rest), p, a, r_rest, b);
    }
    if (r1 - r_rest == 1) FL_ISA_NAME(fl_gru_row_step)(p, a, r_rest, b0, b1);
}

