/* fastlstm: the C core. C99, no Python headers.
 *
 * The Python side validates every shape and pointer before calling in; the kernels check only what
 * they cannot trust to be checked elsewhere (sizes > 0, known activation ids) and return an error
 * code instead of touching memory when those fail.
 */
#ifndef FASTLSTM_H
#define FASTLSTM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------
 * Activations. Element-wise ones act on each value; row-wise ones (softmax, log_softmax,
 * sparsemax) act over a whole row: the last axis of a Dense output, or the n_units values of one
 * gate inside a recurrent cell (what Keras does when such a name is passed as an RNN activation).
 * Formulas follow keras/src/activations/activations.py and keras/src/backend/tensorflow/nn.py
 * (Keras 3) and tf_keras/activations.py + tf_keras/backend.py (Keras 2). An activation comes
 * with its parameters (fl_activation_spec) wherever one is taken: Dense, Activation ops, the
 * recurrent cells, whole arrays; the ids below list what their param[] hold (0 where unused).
 * ---------------------------------------------------------------------------------------------- */
enum fl_activation {
    FL_ACT_LINEAR = 0,
    FL_ACT_SIGMOID,
    FL_ACT_TANH,
    FL_ACT_HARD_SIGMOID_K2,   /* Keras 1/2 backend.hard_sigmoid: clip(0.2x + 0.5, 0, 1) */
    FL_ACT_HARD_SIGMOID_K3,   /* Keras 3 nn.hard_sigmoid: relu6(x + 3) / 6 */
    FL_ACT_RELU,
    FL_ACT_RELU6,
    FL_ACT_LEAKY_RELU,        /* param[0] negative_slope (0.2 for the name "leaky_relu") */
    FL_ACT_ELU,               /* param[0] alpha (1 for the name "elu") */
    FL_ACT_SELU,
    FL_ACT_CELU,              /* alpha 1 */
    FL_ACT_SOFTPLUS,
    FL_ACT_SOFTSIGN,
    FL_ACT_SILU,              /* also "swish" */
    FL_ACT_HARD_SILU,         /* also "hard_swish": x * relu6(x + 3) / 6 */
    FL_ACT_GELU,              /* approximate=False: 0.5 x (1 + erf(x / sqrt 2)) */
    FL_ACT_GELU_TANH,         /* approximate=True */
    FL_ACT_EXPONENTIAL,
    FL_ACT_MISH,
    FL_ACT_LOG_SIGMOID,
    FL_ACT_HARD_TANH,
    FL_ACT_HARD_SHRINK,       /* threshold 0.5 */
    FL_ACT_SOFT_SHRINK,       /* threshold 0.5 */
    FL_ACT_TANH_SHRINK,
    FL_ACT_SPARSE_PLUS,
    FL_ACT_SPARSE_SIGMOID,
    FL_ACT_SQUAREPLUS,        /* b = 4 */
    FL_ACT_RELU_GENERAL,      /* Keras ReLU(max_value, negative_slope, threshold): param[0]
                               * negative_slope, param[1] max_value (+inf: none), param[2]
                               * threshold, param[3] 1 where the part above the threshold is
                               * x * (x > threshold) (tf_keras, ThresholdedReLU), 0 where it
                               * is where(x > threshold, x, 0) (Keras 3) */
    FL_ACT_FIRST_ROWWISE,
    FL_ACT_SOFTMAX = FL_ACT_FIRST_ROWWISE,
    FL_ACT_LOG_SOFTMAX,
    FL_ACT_SPARSEMAX,
    FL_ACT_COUNT
};

#define FL_ACT_PARAMS 4

typedef struct {
    int id;                       /* enum fl_activation */
    float param[FL_ACT_PARAMS];   /* as the id's comment says; finite except a +inf max_value */
} fl_activation_spec;

#define FL_OK 0
#define FL_ERR_ARGUMENT (-1)
#define FL_ERR_MEMORY (-2)

/* Applies `activation` in place to n_rows rows of n_cols contiguous floats.
 * `scratch` needs n_cols floats for FL_ACT_SPARSEMAX and may be NULL otherwise. */
int fl_activation_apply(const fl_activation_spec *activation,
                        float *x /* (n_rows, n_cols) */, ptrdiff_t n_rows, ptrdiff_t n_cols,
                        float *scratch /* (n_cols) */);

/* ------------------------------------------------------------------------------------------------
 * Recurrent layers: one driver (src/rnn.c) runs every cell type over a sequence; the cells:
 *
 * FL_CELL_LSTM (keras layers/rnn/lstm.py): gates in Keras order i, f, c, o;
 *   z = x @ kernel + h @ recurrent_kernel + bias
 *   i, f, o = recurrent_activation(z_i, z_f, z_o);  c' = f * c + i * activation(z_c)
 *   h' = o * activation(c')
 * FL_CELL_GRU (keras layers/rnn/gru.py, reset_after=True): gates z, r, h;
 *   z, r = recurrent_activation(x @ W_zr + b_in + h @ U_zr + b_rec)
 *   hh = activation(x @ W_h + b_in_h + r * (h @ U_h + b_rec_h));  h' = z * h + (1 - z) * hh
 * FL_CELL_GRU_RESET_BEFORE (reset_after=False, one bias): the candidate uses (r * h) @ U_h, so
 *   every r of the row is needed before any candidate: whole rows, two passes per step.
 * FL_CELL_SIMPLE (keras layers/rnn/simple_rnn.py): h' = activation(x @ W + b + h @ U).
 *
 * Packed layouts (made once at load by fastlstm/layers/packing.py): kernel and recurrent_kernel
 * are stacked as W = [kernel; recurrent_kernel] (n_features + n_units rows), so one pass over k
 * covers x_t and h_{t-1}. The units are cut into blocks (FL_RNN_BLOCK = 8 units, the width of
 * one AVX vector; a SimpleRNN block is 4 such vectors, 32 units) padded with zeros, and each
 * block's weights for row k are contiguous:
 *   LSTM    weights[b][k][g][j] = W[k, g*n_units + b*8 + j], 4 gates; bias[b][g][j]
 *   GRU     rows k < n_features: 3 vectors z, r, h; rows of h: 3 vectors z, r, h; bias[b] holds
 *           4 vectors: b_in_z + b_rec_z, b_in_r + b_rec_r, b_in_h, b_rec_h
 *   GRU_RESET_BEFORE  rows of x: z, r, h; rows of h: z, r for every k, then h for every k (the
 *           second pass reads only those); bias[b]: b_z, b_r, b_h, 0
 *   SIMPLE  weights[b][k][q][j] = W[k, b*32 + q*8 + j], q < 4; bias[b][q][j]
 * ---------------------------------------------------------------------------------------------- */
#define FL_RNN_BLOCK 8

enum fl_cell { FL_CELL_LSTM = 0, FL_CELL_GRU, FL_CELL_GRU_RESET_BEFORE, FL_CELL_SIMPLE,
               FL_CELL_COUNT };

typedef struct {
    int cell;                  /* enum fl_cell */
    int n_features;
    int n_units;
    fl_activation_spec activation;
    fl_activation_spec recurrent_activation;  /* unused by FL_CELL_SIMPLE */
    const float *weights;      /* packed, fl_rnn_packed_floats() floats */
    const float *bias;         /* packed (n_blocks, 4, FL_RNN_BLOCK); zeros when use_bias=False */
} fl_rnn_params;

/* Units per block of this cell (8, or 32 for FL_CELL_SIMPLE), and the packed sizes. */
int fl_rnn_block_units(int cell);
size_t fl_rnn_packed_floats(int cell, ptrdiff_t n_features, ptrdiff_t n_units);

/* Floats of workspace one call needs (it does not depend on the number of timesteps). */
size_t fl_rnn_workspace_floats(const fl_rnn_params *p, ptrdiff_t n_batch, int n_threads);

/* Runs the whole sequence. h and c hold the initial state on entry and the final state on return
 * (this is how stateful layers carry state between calls); c is an LSTM's cell state, and is
 * not touched (may be NULL) for the other cells. With go_backwards the steps are taken
 * from the last to the first, and with return_sequences the output is written in processing order,
 * as Keras does. out is (n_batch, n_timesteps, n_units) when return_sequences, else
 * (n_batch, n_units).
 *
 * Threads: with enough rows, each of n_threads OpenMP threads takes whole rows through the whole
 * sequence; with few rows (batch 1 streaming), the threads split the unit blocks and meet at a
 * barrier each timestep, so each streams only its part of the weights from its own L2. Either
 * way a row's arithmetic is the same, so results are bitwise identical for any n_threads. */
int fl_rnn_forward(const fl_rnn_params *p, ptrdiff_t n_batch, ptrdiff_t n_timesteps,
                   const float *x /* (n_batch, n_timesteps, n_features) */,
                   float *h /* (n_batch, n_units) in/out */,
                   float *c /* (n_batch, n_units) in/out */,
                   float *out, int return_sequences, int go_backwards,
                   float *workspace /* fl_rnn_workspace_floats() */, int n_threads);

/* fl_rnn_forward with a Keras mask: mask[r * n_timesteps + t] == 0 skips input step t of row r
 * (its state stays; its output is the previous step's, or zeros with zero_output_for_mask).
 * mask NULL: every step is taken, as fl_rnn_forward. */
int fl_rnn_forward_masked(const fl_rnn_params *p, ptrdiff_t n_batch, ptrdiff_t n_timesteps,
                          const float *x /* (n_batch, n_timesteps, n_features) */,
                          const unsigned char *mask /* (n_batch, n_timesteps) or NULL */,
                          int zero_output_for_mask, float *h, float *c, float *out,
                          int return_sequences, int go_backwards,
                          float *workspace /* fl_rnn_workspace_floats() */, int n_threads);

/* ------------------------------------------------------------------------------------------------
 * Compiled stacks (src/stack.c): a chain of recurrent, Dense and element-wise/row-wise
 * Activation ops, one C object (fl_stack) with two entry points, a forward call and
 * autoregressive generation, and one workspace sizing for both. The stack is fixed once built;
 * the carried state comes with each call (states[i] for op i, NULL for a call that carries
 * none): nothing is kept between calls. Each entry point checks the stack and the states once.
 * ---------------------------------------------------------------------------------------------- */
enum fl_op_kind { FL_OP_RNN = 0, FL_OP_DENSE = 1, FL_OP_ACTIVATION = 2 };

typedef struct {
    int kind;                     /* enum fl_op_kind */
    const fl_rnn_params *rnn;     /* FL_OP_RNN */
    int return_sequences;         /* FL_OP_RNN */
    int go_backwards;             /* FL_OP_RNN */
    const float *kernel;          /* FL_OP_DENSE: (n_in, n_out) */
    const float *bias;            /* FL_OP_DENSE: (n_out) or NULL */
    ptrdiff_t n_in, n_out;        /* every op: features in and out per row */
    fl_activation_spec activation; /* FL_OP_DENSE, FL_OP_ACTIVATION */
    int rank_out;                 /* 3: (batch, timesteps, n_out); 2: (batch, n_out) */
} fl_op;

/* A recurrent op's carried state, (n_batch, n_out) each, in/out; h NULL: the op starts from
 * zeros and keeps nothing (a stateless layer). c is an LSTM's cell state, needed with h by an
 * LSTM op; the other cells have none (c may be NULL). */
typedef struct {
    float *h, *c;
} fl_op_state;

/* The ops in order: ops[0].n_in == n_features, each op takes what the one before gives. */
typedef struct {
    const fl_op *ops;      /* (n_ops), n_ops >= 1 */
    int n_ops;
    ptrdiff_t n_features;  /* features per timestep of the input */
} fl_stack;

/* The kind of call a workspace is for. */
enum fl_stack_call { FL_STACK_FORWARD = 0, FL_STACK_GENERATE = 1, FL_STACK_GENERATE_SLIDE = 2 };

/* A call's workspace, in floats, in this order. */
typedef struct {
    size_t forward;   /* one pass of the ops: each op's output, a recurrent op's zero initial
                       * state and its driver's workspace, Dense and activation scratch */
    size_t window;    /* generation: the stack's output and the input window (0 for forward) */
    size_t feedback;  /* generation on every recurrent op's carried state: the feedback loop */
    size_t floats;    /* all of it: what the caller allocates */
} fl_stack_workspace;

/* The workspace of one call (all zeros for sizes no call accepts). states as the call gets
 * them: generation without slide in which every recurrent op carries its state runs its steps
 * in the feedback loop; forward calls do not look at them. */
fl_stack_workspace fl_stack_workspace_size(const fl_stack *s, int call /* enum fl_stack_call */,
                                           const fl_op_state *states, ptrdiff_t n_batch,
                                           ptrdiff_t n_timesteps, int n_threads);

/* x: (n_batch, n_timesteps, n_features) -> out: the last op's output. states: (n_ops) or NULL
 * (no op carries state). */
int fl_stack_forward(const fl_stack *s, const fl_op_state *states, ptrdiff_t n_batch,
                     ptrdiff_t n_timesteps, const float *x, float *out,
                     float *workspace /* FL_STACK_FORWARD */, int n_threads);

/* Autoregressive generation (a Keras loop of predict calls, in one call): y (n_batch, n_steps,
 * width) with width = n_features = the last op's output; y_1 is the last timestep of the
 * stack's output for x (n_batch, n_timesteps, width), y_{k+1} the output for y_k as the next
 * input: one step on the carried state (states), or, with slide, for the window x shifted by
 * one with y_k appended, from zero state. When every recurrent op carries state, steps 2.. run
 * in one feedback loop with a thread team kept over the steps (src/feedback.c); results are
 * bitwise those of the step-by-step loop. */
int fl_stack_generate(const fl_stack *s, const fl_op_state *states, ptrdiff_t n_batch,
                      ptrdiff_t n_timesteps, const float *x, float *y, ptrdiff_t n_steps,
                      int slide,
                      float *workspace /* FL_STACK_GENERATE, or _SLIDE with slide */,
                      int n_threads);

/* ------------------------------------------------------------------------------------------------
 * Dense (keras/src/layers/core/dense.py): y = activation(x @ kernel + bias) on the last axis.
 * Used by the compiled stacks, and by the layer-by-layer path so both give the same bits.
 * ---------------------------------------------------------------------------------------------- */
/* Floats of scratch fl_dense_forward needs (the sparsemax sort buffer). */
size_t fl_dense_scratch_floats(ptrdiff_t n_out);

int fl_dense_forward(const float *x /* (n_rows, n_in) */, ptrdiff_t n_rows, ptrdiff_t n_in,
                     const float *kernel /* (n_in, n_out) */,
                     const float *bias /* (n_out), or NULL when use_bias=False */,
                     ptrdiff_t n_out, const fl_activation_spec *activation,
                     float *y /* (n_rows, n_out) */,
                     float *scratch /* fl_dense_scratch_floats() */);

/* ------------------------------------------------------------------------------------------------
 * The valid cross-correlation of the convolution layers (groups == 1), channels last, rank 1, 2
 * or 3 spatial axes: x (n_batch, in[0..rank), n_channels), already padded; kernel
 * (window[0..rank), n_channels, n_filters), Keras's layout; y (n_batch, out[0..rank), n_filters)
 * with out[i] = (in[i] - (window[i] - 1) * dilations[i] - 1) / strides[i] + 1. Every output is
 * one chain of multiply-adds in (taps..., channel) order: the same bits on every SIMD ISA and
 * any thread count. FL_ERR_ARGUMENT when an axis is shorter than its dilated window.
 * ---------------------------------------------------------------------------------------------- */
int fl_conv_forward(int rank, ptrdiff_t n_batch, const ptrdiff_t *in, ptrdiff_t n_channels,
                    const float *x, const ptrdiff_t *window, ptrdiff_t n_filters,
                    const float *kernel, const ptrdiff_t *strides, const ptrdiff_t *dilations,
                    float *y, int n_threads);

/* ------------------------------------------------------------------------------------------------
 * Build and CPU facts.
 * ---------------------------------------------------------------------------------------------- */
/* In fallback order: a kernel an ISA has no instantiation of runs the one below it. */
enum fl_isa { FL_ISA_PORTABLE = 0, FL_ISA_AVX2 = 1, FL_ISA_AVX512 = 2, FL_ISA_COUNT = 3 };

int fl_has_openmp(void);
int fl_default_num_threads(void);
int fl_isa_compiled(int isa);    /* whether this build contains the path */
int fl_isa_supported(int isa);   /* compiled, and the CPU and the OS run it */
int fl_get_isa(void);            /* path in use: the best supported one unless set */
int fl_set_isa(int isa);         /* FL_ERR_ARGUMENT if the CPU or the build lacks it */

/* Threads a call asking for n_requested runs on (and sizes its workspace for): at most the
 * processors, 1 without OpenMP, and 1 in a fork child whose OpenMP pool died with the fork
 * (src/team.h). */
int fl_effective_threads(int n_requested);
int fl_fork_serial(void);        /* 1 in such a fork child */
/* Tests only (src/team.h): workers join late by construction; 0 turns it off. And, recorded
 * while that hook is on, what the last call did: the threads that shared its work (1 when it
 * ran alone) and, for generation split by units, the first step they shared (0 otherwise). */
void fl_set_late_join_for_tests(ptrdiff_t steps);
void fl_last_team_for_tests(int *n_team, ptrdiff_t *first_shared_step);

#ifdef __cplusplus
}
#endif
#endif
