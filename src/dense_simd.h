/* The Dense layer's product and the element-wise activations of whole arrays, written once and
 * stamped out per ISA by the kernels_<isa>.c files: FL_VW outputs of a row per pass, four
 * partial sums over k, so that a small head after a batch-1 step (64 -> 8) is not a chain of
 * n_in dependent multiply-adds. The same sums in the same order on every ISA. */

/* The outputs of one row a vector holds (OP: the vector operations, FLV or FLG, of type VEC);
 * `tail` is a compile-time constant: masked loads and stores for the last outputs, so no lane
 * reads past a kernel row, plain ones otherwise (a masked store does not forward to the next
 * step's loads of that output on Zen, which cost more than the whole product here). */
#define FL_DENSE_GROUP(name, OP, VEC, MASK)                                                      \
    FL_SIMD_INLINE void name(const int tail, const float *xr, ptrdiff_t n_in, const float *w,   \
                             ptrdiff_t n_out, MASK mask, VEC b, float *yr) {                    \
        VEC acc[4] = {OP(set1)(0.0f), OP(set1)(0.0f), OP(set1)(0.0f), OP(set1)(0.0f)};         \
        ptrdiff_t k = 0;                                                                        \
        for (; k + 4 <= n_in; k += 4)                                                           \
            for (int q = 0; q < 4; q++) {                                                       \
                const float *wk = w + (k + q) * n_out;                                          \
                const VEC wv = tail ? OP(load_masked)(wk, mask) : OP(load)(wk);                 \
                acc[q] = OP(fma)(OP(bcast)(xr + k + q), wv, acc[q]);                            \
            }                                                                                   \
        for (; k < n_in; k++) {                                                                 \
            const VEC wv = tail ? OP(load_masked)(w + k * n_out, mask) : OP(load)(w + k * n_out); \
            acc[0] = OP(fma)(OP(bcast)(xr + k), wv, acc[0]);                                    \
        }                                                                                       \
        const VEC sum = OP(add)(b, OP(add)(OP(add)(acc[0], acc[1]), OP(add)(acc[2], acc[3])));  \
        if (tail) OP(store_masked)(yr, sum, mask);                                              \
        else OP(store)(yr, sum);                                                                \
    }
FL_DENSE_GROUP(FL_ISA_NAME(fl_dense_group), FLV, FL_VEC, FL_ISA_NAME(fl_mask))
#if FL_VW > 8
/* The same sums on 8-lane vectors, for the last <= 8 outputs of a wide ISA: a 64 -> 8 head then
 * takes plain ymm loads and stores instead of masked zmm ones. */
FL_DENSE_GROUP(FL_ISA_NAME(fl_dense_group8), FLG, FL_GVEC, FL_GATE_NAME(fl_mask))
#endif
#undef FL_DENSE_GROUP

/* y = x @ kernel + bias (bias may be NULL), rows of n_in into rows of n_out. */
FL_SIMD_FN static void FL_ISA_NAME(fl_dense_rows)(const float *x, ptrdiff_t n_rows,
                                                  ptrdiff_t n_in, const float *kernel,
                                                  const float *bias, ptrdiff_t n_out, float *y) {
    for (ptrdiff_t j0 = 0; j0 < n_out; j0 += FL_VW) {
        const int nj = n_out - j0 < FL_VW ? (int)(n_out - j0) : FL_VW;
#if FL_VW > 8
        if (nj <= 8) {
            const FL_GATE_NAME(fl_mask) mask = FLG(mask_first)(nj);
            const FL_GVEC b = bias == NULL ? FLG(set1)(0.0f)
                              : nj == 8     ? FLG(load)(bias + j0)
                                            : FLG(load_masked)(bias + j0, mask);
            for (ptrdiff_t r = 0; r < n_rows; r++) {
                if (nj == 8)
                    FL_ISA_NAME(fl_dense_group8)(0, x + r * n_in, n_in, kernel + j0, n_out, mask,
                                                 b, y + r * n_out + j0);
                else
                    FL_ISA_NAME(fl_dense_group8)(1, x + r * n_in, n_in, kernel + j0, n_out, mask,
                                                 b, y + r * n_out + j0);
            }
            continue;
        }
#endif
        const FL_ISA_NAME(fl_mask) mask = FLV(mask_first)(nj);
        const FL_VEC b = bias == NULL ? FLV(set1)(0.0f)
                         : nj == FL_VW ? FLV(load)(bias + j0)
                                       : FLV(load_masked)(bias + j0, mask);
        for (ptrdiff_t r = 0; r < n_rows; r++) {
            if (nj == FL_VW)
                FL_ISA_NAME(fl_dense_group)(0, x + r * n_in, n_in, kernel + j0, n_out, mask, b,
                                            y + r * n_out + j0);
            else
                FL_ISA_NAME(fl_dense_group)(1, x + r * n_in, n_in, kernel + j0, n_out, mask, b,
                                            y + r * n_out + j0);
        }
    }
}

/* An element-wise activation over n floats, FL_VW at a time (the same vector code as the cell
 * updates, so Dense heads and the kernels agree), then 8 at a time on a wider ISA; the tail
 * through a zero-padded copy. */
FL_SIMD_FN static void FL_ISA_NAME(fl_activation_row)(const fl_activation_spec *activation,
                                                      float *x, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + FL_VW <= n; i += FL_VW)
        FLV(store)(x + i, FL_ISA_NAME(fl_act)(activation, FLV(load)(x + i)));
#if FL_VW > 8
    for (; i + 8 <= n; i += 8)
        FLG(store)(x + i, FL_GATE_NAME(fl_act)(activation, FLG(load)(x + i)));
#endif
    if (i < n) {
        float tail[FL_VW] = {0};
        memcpy(tail, x + i, (size_t)(n - i) * sizeof(float));
        FLV(store)(tail, FL_ISA_NAME(fl_act)(activation, FLV(load)(tail)));
        memcpy(x + i, tail, (size_t)(n - i) * sizeof(float));
    }
}
