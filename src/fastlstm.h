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
 * (Keras 3) and tf_keras/activations.py + tf_keras/backend.py (Keras 2).
 * ---------------------------------------------------------------------------------------------- */
enum fl_activation {
    FL_ACT_LINEAR = 0,
    FL_ACT_SIGMOID,
    FL_ACT_TANH,
    FL_ACT_HARD_SIGMOID_K2,   /* Keras 1/2 backend.hard_sigmoid: clip(0.2x + 0.5, 0, 1) */
    FL_ACT_HARD_SIGMOID_K3,   /* Keras 3 nn.hard_sigmoid: relu6(x + 3) / 6 */
    FL_ACT_RELU,
    FL_ACT_RELU6,
    FL_ACT_LEAKY_RELU,        /* negative_slope 0.2, the default of both versions */
    FL_ACT_ELU,               /* alpha 1 */
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
    FL_ACT_FIRST_ROWWISE,
    FL_ACT_SOFTMAX = FL_ACT_FIRST_ROWWISE,
    FL_ACT_LOG_SOFTMAX,
    FL_ACT_SPARSEMAX,
    FL_ACT_COUNT
};

#define FL_OK 0
#define FL_ERR_ARGUMENT (-1)

/* Applies `activation` in place to n_rows rows of n_cols contiguous floats.
 * `scratch` needs n_cols floats for FL_ACT_SPARSEMAX and may be NULL otherwise. */
int fl_activation_apply(int activation, float *x /* (n_rows, n_cols) */, ptrdiff_t n_rows,
                        ptrdiff_t n_cols, float *scratch /* (n_cols) */);

/* ------------------------------------------------------------------------------------------------
 * LSTM (keras layers/rnn/lstm.py): gates in Keras order i, f, c, o;
 *   z = x @ kernel + h @ recurrent_kernel + bias
 *   i, f, o = recurrent_activation(z_i, z_f, z_o);  c' = f * c + i * activation(z_c)
 *   h' = o * activation(c')
 *
 * Packed layout (made once at load by fastlstm/layers/lstm.py): kernel and recurrent_kernel are
 * stacked as W = [kernel; recurrent_kernel] (n_features + n_units rows), so one pass over k
 * covers x_t and h_{t-1} with no (timesteps, 4*units) projection buffer. The units are cut into
 * blocks of FL_LSTM_BLOCK (n_units_padded = n_blocks * FL_LSTM_BLOCK) and
 *     weights[b][k][g][j] = W[k, g*n_units + b*FL_LSTM_BLOCK + j]   (zero past n_units)
 * so one block of hidden units reads its four gates' weights for row k from 4*FL_LSTM_BLOCK
 * contiguous floats. The bias becomes bias[b][g][j].
 * ---------------------------------------------------------------------------------------------- */
#define FL_LSTM_BLOCK 8

typedef struct {
    int n_features;
    int n_units;
    int activation;            /* enum fl_activation */
    int recurrent_activation;  /* enum fl_activation */
    const float *weights;      /* packed (n_blocks, n_features + n_units, 4, FL_LSTM_BLOCK) */
    const float *bias;         /* packed (n_blocks, 4, FL_LSTM_BLOCK); zeros when use_bias=False */
} fl_lstm_params;

/* Floats of workspace one call needs (it does not depend on the number of timesteps). */
size_t fl_lstm_workspace_floats(const fl_lstm_params *p, ptrdiff_t n_batch, int n_threads);

/* Runs the whole sequence. h and c hold the initial state on entry and the final state on return
 * (this is how stateful layers carry state between calls). With go_backwards the steps are taken
 * from the last to the first, and with return_sequences the output is written in processing order,
 * as Keras does. out is (n_batch, n_timesteps, n_units) when return_sequences, else
 * (n_batch, n_units).
 *
 * Threads: with enough rows, each of n_threads OpenMP threads takes whole rows through the whole
 * sequence; with few rows (batch 1 streaming), the threads split the unit blocks and meet at a
 * barrier each timestep, so each streams only its part of the weights from its own L2. Either
 * way a row's arithmetic is the same, so results are bitwise identical for any n_threads. */
int fl_lstm_forward(const fl_lstm_params *p, ptrdiff_t n_batch, ptrdiff_t n_timesteps,
                    const float *x /* (n_batch, n_timesteps, n_features) */,
                    float *h /* (n_batch, n_units) in/out */,
                    float *c /* (n_batch, n_units) in/out */,
                    float *out, int return_sequences, int go_backwards,
                    float *workspace /* fl_lstm_workspace_floats() */, int n_threads);

/* ------------------------------------------------------------------------------------------------
 * Feedback generation: y_{k+1} = ops(y_k), one timestep per k, through a chain of LSTM, Dense and
 * element-wise/row-wise Activation ops (a Keras stateful generation loop of one-step predict
 * calls). With several threads the team persists over all the steps: each LSTM step is split
 * among them (by unit blocks when there are few rows, by rows otherwise) and they meet at a spin
 * barrier, where a loop of fl_lstm_forward calls would wake the threads every step. Results are
 * bitwise the same as those calls.
 * ---------------------------------------------------------------------------------------------- */
enum fl_step_kind { FL_STEP_LSTM = 0, FL_STEP_DENSE = 1, FL_STEP_ACTIVATION = 2 };
#define FL_FEEDBACK_MAX_OPS 64

typedef struct {
    int kind;                     /* enum fl_step_kind */
    const fl_lstm_params *lstm;   /* FL_STEP_LSTM */
    float *h, *c;                 /* FL_STEP_LSTM: (n_batch, n_units) state, in/out */
    const float *kernel;          /* FL_STEP_DENSE: (n_in, n_out) */
    const float *bias;            /* FL_STEP_DENSE: (n_out) or NULL */
    ptrdiff_t n_in, n_out;        /* every op: features in and out per row */
    int activation;               /* FL_STEP_DENSE, FL_STEP_ACTIVATION */
} fl_step_op;

size_t fl_feedback_workspace_floats(const fl_step_op *ops, int n_ops, ptrdiff_t n_batch,
                                    int n_threads);

/* y: (n_batch, n_steps, width) with y[:, 0] given; fills y[:, 1:]. The first op takes width
 * features and the last gives width. */
int fl_feedback_generate(const fl_step_op *ops, int n_ops, ptrdiff_t n_batch, ptrdiff_t width,
                         float *y, ptrdiff_t n_steps,
                         float *workspace /* fl_feedback_workspace_floats() */, int n_threads);

/* ------------------------------------------------------------------------------------------------
 * Dense (keras/src/layers/core/dense.py): y = activation(x @ kernel + bias) on the last axis.
 * Used by the compiled layer stacks so a whole Sequential model runs in one call from Python.
 * ---------------------------------------------------------------------------------------------- */
/* Floats of scratch fl_dense_forward needs (the sparsemax sort buffer). */
size_t fl_dense_scratch_floats(ptrdiff_t n_out);

int fl_dense_forward(const float *x /* (n_rows, n_in) */, ptrdiff_t n_rows, ptrdiff_t n_in,
                     const float *kernel /* (n_in, n_out) */,
                     const float *bias /* (n_out), or NULL when use_bias=False */,
                     ptrdiff_t n_out, int activation, float *y /* (n_rows, n_out) */,
                     float *scratch /* fl_dense_scratch_floats() */);

/* ------------------------------------------------------------------------------------------------
 * Build and CPU facts.
 * ---------------------------------------------------------------------------------------------- */
enum fl_isa { FL_ISA_PORTABLE = 0, FL_ISA_AVX2 = 1 };

int fl_has_openmp(void);
int fl_default_num_threads(void);
int fl_cpu_has_avx2_fma(void);   /* what the CPU offers */
int fl_avx2_compiled(void);      /* whether this build contains the AVX2+FMA path */
int fl_get_isa(void);            /* path in use */
int fl_set_isa(int isa);         /* FL_ERR_ARGUMENT if the CPU or the build lacks it */

#ifdef __cplusplus
}
#endif
#endif
