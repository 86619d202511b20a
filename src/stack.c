/* The stack executor (fastlstm.h fl_stack_*): a chain of recurrent, Dense and Activation ops
 * run in one call, and autoregressive generation over it. Weights are read through the ops and
 * the carried state through the states given with each call; nothing is kept between calls. */
#include <string.h>

#include "activations.h"
#include "fastlstm.h"
#include "ops.h"
#include "rnn_cells.h"

/* Floats of workspace op i needs besides its output: a recurrent op's zero initial state (for a
 * call without state) and the driver's workspace; every op's Dense/activation scratch. */
static size_t fl_op_extra_floats(const fl_op *op, ptrdiff_t n_batch, int n_threads) {
    size_t n = fl_dense_scratch_floats(op->n_out);
    if (op->kind == FL_OP_RNN)
        n += (size_t)(2 * n_batch * op->n_out) + fl_rnn_workspace_floats(op->rnn, n_batch, n_threads);
    return n;
}

static ptrdiff_t fl_op_steps(const fl_op *op, ptrdiff_t n_timesteps) {
    return op->rank_out == 3 ? n_timesteps : 1;
}

int fl_op_rows(const fl_op *op, const float *src, float *dst, ptrdiff_t n_rows, float *scratch) {
    if (op->kind == FL_OP_DENSE)
        return fl_dense_forward(src, n_rows, op->n_in, op->kernel, op->bias, op->n_out,
                                &op->activation, dst, scratch);
    memcpy(dst, src, (size_t)(n_rows * op->n_out) * sizeof(float));
    return fl_activation_apply(&op->activation, dst, n_rows, op->n_out, scratch);
}

/* Every recurrent op carries its state: generation can stay in one feedback loop. */
static int fl_stack_all_carried(const fl_stack *s, const fl_op_state *states) {
    if (states == NULL) return 0;
    for (int i = 0; i < s->n_ops; i++)
        if (s->ops[i].kind == FL_OP_RNN && states[i].h == NULL) return 0;
    return 1;
}

/* The one check of a stack and a call's states, for both entry points: each op takes what the
 * one before gives, ranks chain (a recurrent op needs sequences), every op's own fields are
 * valid, an LSTM op given a carried h is given its c too, and generation feeds the output back
 * as the next input. */
static int fl_stack_valid(const fl_stack *s, const fl_op_state *states, int call) {
    if (s == NULL || s->ops == NULL || s->n_ops < 1 || s->n_features < 1) return 0;
    ptrdiff_t width = s->n_features;
    int rank = 3;
    for (int i = 0; i < s->n_ops; i++) {
        const fl_op *op = &s->ops[i];
        if (op->n_in != width || op->n_out < 1) return 0;
        if (op->kind == FL_OP_RNN) {
            const fl_rnn_params *p = op->rnn;
            if (rank != 3 || !fl_rnn_params_valid(p) || p->weights == NULL || p->bias == NULL
                || p->n_features != op->n_in || p->n_units != op->n_out
                || op->rank_out != (op->return_sequences ? 3 : 2))
                return 0;
            if (states != NULL && states[i].h != NULL && states[i].c == NULL
                && p->cell == FL_CELL_LSTM)
                return 0;
        } else if (op->kind == FL_OP_DENSE) {
            if (op->kernel == NULL || !fl_activation_is_valid(&op->activation)
                || op->rank_out != rank)
                return 0;
        } else if (op->kind != FL_OP_ACTIVATION || op->n_in != op->n_out
                   || !fl_activation_is_valid(&op->activation) || op->rank_out != rank) {
            return 0;
        }
        width = op->n_out;
        rank = op->rank_out;
    }
    return call == FL_STACK_FORWARD || width == s->n_features;
}

fl_stack_workspace fl_stack_workspace_size(const fl_stack *s, int call,
                                           const fl_op_state *states, ptrdiff_t n_batch,
                                           ptrdiff_t n_timesteps, int n_threads) {
    fl_stack_workspace w = {0, 0, 0, 0};
    if (n_batch < 0 || n_timesteps < 1 || n_threads < 1 || call < FL_STACK_FORWARD
        || call > FL_STACK_GENERATE_SLIDE || !fl_stack_valid(s, states, call))
        return w;  /* every size below reads the ops' fields, checked first */
    for (int i = 0; i < s->n_ops; i++)
        w.forward += (size_t)(n_batch * fl_op_steps(&s->ops[i], n_timesteps) * s->ops[i].n_out)
                     + fl_op_extra_floats(&s->ops[i], n_batch, n_threads);
    if (call != FL_STACK_FORWARD)
        w.window = (size_t)(2 * n_batch * n_timesteps * s->n_features);
    if (call == FL_STACK_GENERATE && fl_stack_all_carried(s, states))
        w.feedback = fl_feedback_workspace_floats(s, n_batch, n_threads);
    w.floats = w.forward + w.window + w.feedback;
    return w;
}

/* One pass of a checked stack over x (n_batch >= 1 rows). */
static int fl_stack_run(const fl_stack *s, const fl_op_state *states, ptrdiff_t n_batch,
                        ptrdiff_t n_timesteps, const float *x, float *out, float *workspace,
                        int n_threads) {
    const float *src = x;
    float *ws = workspace;
    for (int i = 0; i < s->n_ops; i++) {
        const fl_op *op = &s->ops[i];
        const ptrdiff_t n_rows = n_batch * fl_op_steps(op, n_timesteps);
        float *dst = out;
        if (i < s->n_ops - 1) {
            dst = ws;
            ws += n_rows * op->n_out;
        }
        int rc;
        if (op->kind == FL_OP_RNN) {
            float *h = states != NULL ? states[i].h : NULL;
            float *c = states != NULL ? states[i].c : NULL;
            if (h == NULL) {  /* a stateless layer: zero initial state, not kept */
                h = ws;
                c = ws + n_batch * op->n_out;
                memset(h, 0, (size_t)(2 * n_batch * op->n_out) * sizeof(float));
            }
            ws += 2 * n_batch * op->n_out;
            rc = fl_rnn_forward(op->rnn, n_batch, n_timesteps, src, h, c, dst,
                                op->return_sequences, op->go_backwards, ws, n_threads);
            ws += fl_rnn_workspace_floats(op->rnn, n_batch, n_threads);
        } else {
            rc = fl_op_rows(op, src, dst, n_rows, ws);
        }
        ws += fl_dense_scratch_floats(op->n_out);
        if (rc != FL_OK) return rc;
        src = dst;
    }
    return FL_OK;
}

int fl_stack_forward(const fl_stack *s, const fl_op_state *states, ptrdiff_t n_batch,
                     ptrdiff_t n_timesteps, const float *x, float *out, float *workspace,
                     int n_threads) {
    if (n_batch < 0 || n_timesteps < 1 || n_threads < 1
        || !fl_stack_valid(s, states, FL_STACK_FORWARD))
        return FL_ERR_ARGUMENT;
    if (n_batch == 0) return FL_OK;
    if (x == NULL || out == NULL || workspace == NULL) return FL_ERR_ARGUMENT;
    return fl_stack_run(s, states, n_batch, n_timesteps, x, out, workspace, n_threads);
}

/* ------------------------------------------------------------------------------------------------
 * Generation: y_1 is the last timestep of the stack's output for x; y_{k+1} the output for y_k
 * as the next input, one step on the carried state (fl_feedback_generate, with a thread team
 * kept over the steps), or, with slide, for the window x shifted by one with y_k appended, from
 * zero state (a stateless model trained on fixed windows).
 * ---------------------------------------------------------------------------------------------- */

/* y_k of every row: the last timestep of out (n_batch, stride, width). */
static void fl_take_last_steps(const float *out, ptrdiff_t n_batch, ptrdiff_t stride,
                               ptrdiff_t width, float *y, ptrdiff_t n_steps, ptrdiff_t k) {
    for (ptrdiff_t r = 0; r < n_batch; r++)
        memcpy(y + (r * n_steps + k) * width, out + (r * stride + stride - 1) * width,
               (size_t)width * sizeof(float));
}

/* The input of step k: the window shifted by one with y_{k-1} appended (slide), or y_{k-1} as
 * a one-step input (n_batch, 1, width) at the start of the window. */
static void fl_next_input(float *window, ptrdiff_t n_batch, ptrdiff_t n_timesteps,
                          ptrdiff_t width, const float *y, ptrdiff_t n_steps, ptrdiff_t k,
                          int slide) {
    for (ptrdiff_t r = 0; r < n_batch; r++) {
        const float *prev = y + (r * n_steps + k - 1) * width;
        float *row = window + r * (slide ? n_timesteps : 1) * width;
        if (slide) {
            memmove(row, row + width, (size_t)((n_timesteps - 1) * width) * sizeof(float));
            row += (n_timesteps - 1) * width;
        }
        memcpy(row, prev, (size_t)width * sizeof(float));
    }
}

int fl_stack_generate(const fl_stack *s, const fl_op_state *states, ptrdiff_t n_batch,
                      ptrdiff_t n_timesteps, const float *x, float *y, ptrdiff_t n_steps,
                      int slide, float *workspace, int n_threads) {
    if (n_batch < 0 || n_timesteps < 1 || n_steps < 0 || n_threads < 1
        || !fl_stack_valid(s, states, slide ? FL_STACK_GENERATE_SLIDE : FL_STACK_GENERATE))
        return FL_ERR_ARGUMENT;
    if (n_batch == 0 || n_steps == 0) return FL_OK;
    if (x == NULL || y == NULL || workspace == NULL) return FL_ERR_ARGUMENT;
    const ptrdiff_t width = s->n_features, window_floats = n_batch * n_timesteps * width;
    if (slide) states = NULL;
    const int feedback = fl_stack_all_carried(s, states);
    const fl_stack_workspace w = fl_stack_workspace_size(s, FL_STACK_FORWARD, NULL, n_batch,
                                                         n_timesteps, n_threads);
    float *stack_out = workspace + w.forward;  /* then the window, then the feedback loop's */
    float *window = stack_out + window_floats;
    memcpy(window, x, (size_t)window_floats * sizeof(float));
    ptrdiff_t steps_in = n_timesteps;  /* timesteps of each call's input */
    for (ptrdiff_t k = 0; k < n_steps; k++) {
        if (k == 1 && feedback)
            return fl_feedback_generate(s, states, n_batch, y, n_steps, window + window_floats,
                                        n_threads);
        if (k > 0) {
            if (!slide) steps_in = 1;
            fl_next_input(window, n_batch, n_timesteps, width, y, n_steps, k, slide);
        }
        const int rc = fl_stack_run(s, states, n_batch, steps_in, window, stack_out, workspace,
                                    n_threads);
        if (rc != FL_OK) return rc;
        fl_take_last_steps(stack_out, n_batch, s->ops[s->n_ops - 1].rank_out == 3 ? steps_in : 1,
                           width, y, n_steps, k);
    }
    return FL_OK;
}
