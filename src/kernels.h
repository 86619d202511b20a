/* One table of kernels per ISA, each stamped out from the same bodies (kernel_bodies.h) by
 * kernels_portable.c, kernels_avx2.c and kernels_avx512.c, and the table in use (cpu.c), chosen
 * with the ISA: the best one this build and CPU run, or the one set through fl_set_isa, falling
 * back avx512 -> avx2 -> portable where the build lacks one. No call site tests an ISA.
 * Internal to the C core. */
#ifndef FASTLSTM_KERNELS_H
#define FASTLSTM_KERNELS_H

#include <stddef.h>

#include "rnn_cells.h"

/* y = x @ kernel + bias (bias may be NULL) for n_rows rows. */
typedef void (*fl_dense_rows_fn)(const float *x, ptrdiff_t n_rows, ptrdiff_t n_in,
                                 const float *kernel, const float *bias, ptrdiff_t n_out,
                                 float *y);
/* An element-wise activation of n floats in place. */
typedef void (*fl_activation_row_fn)(const fl_activation_spec *activation, float *x,
                                     ptrdiff_t n);

/* A valid cross-correlation as 3-D (rank < 3 as leading axes of 1), channels last: x
 * (n_batch, in[0], in[1], in[2], n_channels), kernel (window[0..2], n_channels, n_filters),
 * y (n_batch, out[0], out[1], out[2], n_filters), out[i] = (in[i] - (window[i] - 1) *
 * dilation[i] - 1) / stride[i] + 1 (conv.c checks every size). */
typedef struct {
    ptrdiff_t n_batch, n_channels, n_filters;
    ptrdiff_t in[3], window[3], stride[3], dilation[3], out[3];
} fl_conv_geometry;
/* Output positions [p0, p1) of the flattened (n_batch, out...) positions. */
typedef void (*fl_conv_positions_fn)(const fl_conv_geometry *g, const float *x,
                                     const float *kernel, float *y, ptrdiff_t p0, ptrdiff_t p1);

typedef struct {
    fl_rnn_step_fn lstm_step;
    fl_rnn_step_fn simple_rnn_step;
    fl_rnn_step_fn gru_step;                /* reset_after=True */
    fl_rnn_rows_fn gru_reset_before_rows;   /* reset_after=False: whole rows only */
    fl_rnn_project_fn rnn_project;
    fl_dense_rows_fn dense_rows;
    fl_activation_row_fn activation_row;
    fl_conv_positions_fn conv_positions;
} fl_kernel_table;

extern const fl_kernel_table fl_kernels_portable;
extern const fl_kernel_table fl_kernels_avx2;    /* where FL_BUILD_AVX2 */
extern const fl_kernel_table fl_kernels_avx512;  /* where FL_BUILD_AVX512 */

/* The active ISA's table. */
const fl_kernel_table *fl_kernels(void);

#endif
