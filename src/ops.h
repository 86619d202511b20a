/* What the stack executor (stack.c) and generation's feedback loop (feedback.c) share: one
 * non-recurrent op on rows, and the feedback loop itself. Internal to the C core (not in
 * fastlstm.h): fl_stack_generate checks the stack and the states before either runs. */
#ifndef FASTLSTM_OPS_H
#define FASTLSTM_OPS_H

#include <stddef.h>

#include "fastlstm.h"

/* A Dense or Activation op on n_rows rows of src (n_rows, op->n_in) into dst (n_rows,
 * op->n_out); scratch holds fl_dense_scratch_floats(op->n_out) floats. */
int fl_op_rows(const fl_op *op, const float *src, float *dst, ptrdiff_t n_rows, float *scratch);

/* The feedback loop: y (n_batch, n_steps, s->n_features) with y[:, 0] given; fills y[:, 1:],
 * one timestep per step, every recurrent op on its carried state (states[i].h non-NULL).
 * FL_ERR_MEMORY if its per-call tables (any number of ops) cannot be allocated. Its workspace
 * is fl_stack_workspace's `feedback`. */
size_t fl_feedback_workspace_floats(const fl_stack *s, ptrdiff_t n_batch, int n_threads);
int fl_feedback_generate(const fl_stack *s, const fl_op_state *states, ptrdiff_t n_batch,
                         float *y, ptrdiff_t n_steps, float *workspace, int n_threads);

#endif
