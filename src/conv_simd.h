/* The direct (no im2col) cross-correlation of the convolution layers, written once and stamped
 * out per ISA by the kernels_<isa>.c files. Output-stationary: FL_CONV_COLS output positions x
 * up to FL_CONV_VECS vectors of FL_VW filters are accumulated in registers (independent FMA
 * chains), over every tap and channel: an input value broadcast, times a kernel row of filters.
 * Each output is one chain of multiply-adds in (taps..., channel) order, whatever the blocking,
 * so the ISAs, and any split of the positions among threads, give the same bits. */

/* Output positions pos[0..cols) (window origins in x, rows of y at the group's first filter),
 * filters [j0, j0 + nv vectors) of the kernel (its column j0 at w); `tail`: the last vector
 * holds the last filters, its loads and stores masked. cols, nv and tail are compile-time
 * constants at every call (fl_conv_group), so the accumulators stay in registers. */
FL_SIMD_INLINE void FL_ISA_NAME(fl_conv_block)(const int cols, const int nv, const int tail,
                                               const fl_conv_geometry *g,
                                               const float *const *pos, const float *w,
                                               FL_ISA_NAME(fl_mask) mask, float *const *yr) {
    FL_VEC acc[FL_CONV_COLS][FL_CONV_VECS];
    for (int r = 0; r < cols; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = FLV(set1)(0.0f);
    const ptrdiff_t n_channels = g->n_channels, n_filters = g->n_filters;
    const ptrdiff_t row = g->in[2] * n_channels, plane = g->in[1] * row;
    for (ptrdiff_t kd = 0; kd < g->window[0]; kd++)
        for (ptrdiff_t kh = 0; kh < g->window[1]; kh++)
            for (ptrdiff_t kw = 0; kw < g->window[2]; kw++) {
                const ptrdiff_t off = kd * g->dilation[0] * plane + kh * g->dilation[1] * row
                                      + kw * g->dilation[2] * n_channels;
                const float *wt =
                    w + ((kd * g->window[1] + kh) * g->window[2] + kw) * n_channels * n_filters;
                for (ptrdiff_t c = 0; c < n_channels; c++) {
                    FL_VEC wv[FL_CONV_VECS];
                    for (int v = 0; v < nv; v++)
                        wv[v] = tail && v == nv - 1
                                    ? FLV(load_masked)(wt + c * n_filters + v * FL_VW, mask)
                                    : FLV(load)(wt + c * n_filters + v * FL_VW);
                    for (int r = 0; r < cols; r++) {
                        const FL_VEC xb = FLV(bcast)(pos[r] + off + c);
                        for (int v = 0; v < nv; v++) acc[r][v] = FLV(fma)(xb, wv[v], acc[r][v]);
                    }
                }
            }
    for (int r = 0; r < cols; r++)
        for (int v = 0; v < nv; v++) {
            if (tail && v == nv - 1) FLV(store_masked)(yr[r] + v * FL_VW, acc[r][v], mask);
            else FLV(store)(yr[r] + v * FL_VW, acc[r][v]);
        }
}

/* Every filter of `cols` positions (a compile-time constant), FL_CONV_VECS vectors at a time. */
#define FL_CONV_NV_CASE(n)                                                                   \
    if (nv == (n)) {                                                                         \
        if (tail) FL_ISA_NAME(fl_conv_block)(cols, n, 1, g, pos, w + j0, mask, yj);          \
        else FL_ISA_NAME(fl_conv_block)(cols, n, 0, g, pos, w + j0, mask, yj);               \
        continue;                                                                            \
    }
FL_SIMD_INLINE void FL_ISA_NAME(fl_conv_group)(const int cols, const fl_conv_geometry *g,
                                               const float *const *pos, const float *w,
                                               float *const *yr) {
    const ptrdiff_t n_filters = g->n_filters;
    for (ptrdiff_t j0 = 0; j0 < n_filters; j0 += FL_CONV_VECS * FL_VW) {
        const ptrdiff_t left = n_filters - j0;
        const int nv = left >= FL_CONV_VECS * FL_VW ? FL_CONV_VECS
                                                    : (int)((left + FL_VW - 1) / FL_VW);
        const int last = (int)(left - (ptrdiff_t)(nv - 1) * FL_VW);  /* lanes of the last vector */
        const int tail = last < FL_VW;
        const FL_ISA_NAME(fl_mask) mask = FLV(mask_first)(tail ? last : FL_VW);
        float *yj[FL_CONV_COLS];
        for (int r = 0; r < cols; r++) yj[r] = yr[r] + j0;
        FL_CONV_NV_CASE(1)
#if FL_CONV_VECS > 1
        FL_CONV_NV_CASE(2)
#endif
#if FL_CONV_VECS > 2
        FL_CONV_NV_CASE(3)
#endif
#if FL_CONV_VECS > 3
        FL_CONV_NV_CASE(4)
#endif
    }
}
#undef FL_CONV_NV_CASE

/* The window origin in x of output position p (n_batch, out[0], out[1], out[2] order). */
FL_SIMD_INLINE const float *FL_ISA_NAME(fl_conv_origin)(const fl_conv_geometry *g,
                                                        const float *x, ptrdiff_t p) {
    const ptrdiff_t ow = p % g->out[2], oh = p / g->out[2] % g->out[1];
    const ptrdiff_t od = p / (g->out[2] * g->out[1]) % g->out[0];
    const ptrdiff_t b = p / (g->out[2] * g->out[1] * g->out[0]);
    return x + (((b * g->in[0] + od * g->stride[0]) * g->in[1] + oh * g->stride[1]) * g->in[2]
                + ow * g->stride[2]) * g->n_channels;
}

/* Output positions [p0, p1) of y: blocks of FL_CONV_COLS consecutive positions (across rows
 * and images: each position has its own window origin), the last block moved back to end at
 * p1 (it computes a few positions again, to the same bits); single positions when the range
 * is shorter than a block. */
FL_SIMD_FN static void FL_ISA_NAME(fl_conv_positions)(const fl_conv_geometry *g, const float *x,
                                                      const float *kernel, float *y,
                                                      ptrdiff_t p0, ptrdiff_t p1) {
    const float *pos[FL_CONV_COLS];
    float *yr[FL_CONV_COLS];
    if (p1 - p0 < FL_CONV_COLS) {
        for (ptrdiff_t p = p0; p < p1; p++) {
            pos[0] = FL_ISA_NAME(fl_conv_origin)(g, x, p);
            yr[0] = y + p * g->n_filters;
            FL_ISA_NAME(fl_conv_group)(1, g, pos, kernel, yr);
        }
        return;
    }
    /* The origin moves by a stride along out[2] and is recomputed where a row ends. */
    const ptrdiff_t step = g->stride[2] * g->n_channels;
    for (ptrdiff_t p = p0; p < p1; p += FL_CONV_COLS) {
        const ptrdiff_t start = p + FL_CONV_COLS <= p1 ? p : p1 - FL_CONV_COLS;
        ptrdiff_t ow = start % g->out[2];
        const float *origin = FL_ISA_NAME(fl_conv_origin)(g, x, start);
        for (int r = 0; r < FL_CONV_COLS; r++) {
            if (r > 0 && ++ow == g->out[2]) {
                ow = 0;
                origin = FL_ISA_NAME(fl_conv_origin)(g, x, start + r);
            } else if (r > 0) {
                origin += step;
            }
            pos[r] = origin;
            yr[r] = y + (start + r) * g->n_filters;
        }
        FL_ISA_NAME(fl_conv_group)(FL_CONV_COLS, g, pos, kernel, yr);
    }
}
