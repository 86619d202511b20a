/* What the stack executor (stack.c) and generation's feedback loop (feedback.c) share: one
 * non-recurrent op on rows. Internal to the C core (not in fastlstm.h). */
#ifndef FASTLSTM_OPS_H
#define FASTLSTM_OPS_H

#include <stddef.h>

#include "fastlstm.h"

/* A Dense or Activation op on n_rows rows of src (n_rows, op->n_in) into dst (n_rows,
 * op->n_out); scratch holds fl_dense_scratch_floats(op->n_out) floats. */
int fl_op_rows(const fl_op *op, const float *src, float *dst, ptrdiff_t n_rows, float *scratch);

#endif
