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

typedef struct {
    fl_rnn_step_fn lstm_step;
    fl_rnn_step_fn simple_rnn_step;
    fl_rnn_step_fn gru_step;                /* reset_after=True */
    fl_rnn_rows_fn gru_reset_before_rows;   /* reset_after=False: whole rows only */
    fl_rnn_project_fn rnn_project;
    fl_dense_rows_fn dense_rows;
    fl_activation_row_fn activation_row;
} fl_kernel_table;

extern const fl_kernel_table fl_kernels_portable;
extern const fl_kernel_table fl_kernels_avx2;    /* where FL_BUILD_AVX2 */
extern const fl_kernel_table fl_kernels_avx512;  /* where FL_BUILD_AVX512 */

/* The active ISA's table. */
const fl_kernel_table *fl_kernels(void);

#endif
