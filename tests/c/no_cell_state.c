/* tests/test_stack_entry.py builds this against src/ and runs it: the stack's entry points on
 * GRU and SimpleRNN ops that carry h without c (fl_op_state.c == NULL) give the bits they give
 * with a c buffer, on one thread and on two (split by unit blocks at batch 1, by rows at batch
 * 9), for a forward call and for generation's feedback loop; an LSTM op carrying h without c is
 * refused before anything runs. Prints one line per failure; exit status 0 when none. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastlstm.h"

#define N_FEATURES 4

#include "test_rng.h"

static float *floats(size_t n, int random) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (p == NULL) exit(2);
    for (size_t i = 0; random && i < n; i++) p[i] = uniform();
    return p;
}

typedef struct {
    fl_rnn_params rnn;
    fl_op ops[2];
    fl_stack stack;
} model;

/* cell(n_units, return_sequences) -> Dense(N_FEATURES, tanh): its output can be fed back. */
static void make_model(model *m, int cell, int n_units) {
    const int bu = fl_rnn_block_units(cell), n_blocks = (n_units + bu - 1) / bu;
    memset(m, 0, sizeof(*m));
    m->rnn.cell = cell;
    m->rnn.n_features = N_FEATURES;
    m->rnn.n_units = n_units;
    m->rnn.activation.id = FL_ACT_TANH;
    m->rnn.recurrent_activation.id = FL_ACT_SIGMOID;
    m->rnn.weights = floats(fl_rnn_packed_floats(cell, N_FEATURES, n_units), 1);
    m->rnn.bias = floats((size_t)n_blocks * 4 * FL_RNN_BLOCK, 1);
    m->ops[0].kind = FL_OP_RNN;
    m->ops[0].rnn = &m->rnn;
    m->ops[0].n_in = N_FEATURES;
    m->ops[0].n_out = n_units;
    m->ops[0].return_sequences = 1;
    m->ops[0].rank_out = 3;
    m->ops[1].kind = FL_OP_DENSE;
    m->ops[1].kernel = floats((size_t)n_units * N_FEATURES, 1);
    m->ops[1].bias = floats(N_FEATURES, 1);
    m->ops[1].n_in = n_units;
    m->ops[1].n_out = N_FEATURES;
    m->ops[1].activation.id = FL_ACT_TANH;
    m->ops[1].rank_out = 3;
    m->stack.ops = m->ops;
    m->stack.n_ops = 2;
    m->stack.n_features = N_FEATURES;
}

static void free_model(model *m) {
    free((void *)m->rnn.weights);
    free((void *)m->rnn.bias);
    free((void *)m->ops[1].kernel);
    free((void *)m->ops[1].bias);
}

/* One call on the carried state h0 (and c when with_c): the output (forward: (n_batch, T,
 * N_FEATURES); generation: y) followed by the final h. Returns the call's code in *rc. */
static float *run(const model *m, int generate, int with_c, const float *x, const float *h0,
                  int n_batch, int n_threads, int *rc) {
    const int n_units = (int)m->ops[0].n_out, t = 6, n_steps = 9;
    const size_t n_h = (size_t)n_batch * n_units;
    const size_t n_out = (size_t)n_batch * (generate ? n_steps : t) * N_FEATURES;
    float *result = floats(n_out + n_h, 0), *c = with_c ? floats(n_h, 0) : NULL;
    memcpy(result + n_out, h0, n_h * sizeof(float));
    const fl_op_state states[2] = {{result + n_out, c}, {NULL, NULL}};
    const fl_stack_workspace w = fl_stack_workspace_size(
        &m->stack, generate ? FL_STACK_GENERATE : FL_STACK_FORWARD, states, n_batch,
        generate ? 1 : t, n_threads);
    float *ws = floats(w.floats, 0);
    if (generate)
        *rc = fl_stack_generate(&m->stack, states, n_batch, 1, x, result, n_steps, 0, ws,
                                n_threads);
    else
        *rc = fl_stack_forward(&m->stack, states, n_batch, t, x, result, ws, n_threads);
    free(ws);
    free(c);
    return result;
}

static int check(int cell, const char *name, int n_units) {
    int failures = 0;
    model m;
    make_model(&m, cell, n_units);
    static const int batches[] = {1, 9};
    for (int bi = 0; bi < 2; bi++) {
        const int n_batch = batches[bi];
        const size_t n_h = (size_t)n_batch * n_units;
        float *x = floats((size_t)n_batch * 6 * N_FEATURES, 1), *h0 = floats(n_h, 1);
        for (int generate = 0; generate < 2; generate++) {
            const size_t n = n_h + (size_t)n_batch * (generate ? 9 : 6) * N_FEATURES;
            int rc;
            float *want = run(&m, generate, 1, x, h0, n_batch, 1, &rc);
            for (int n_threads = 1; n_threads <= 2; n_threads++) {
                int rc_none;
                float *got = run(&m, generate, 0, x, h0, n_batch, n_threads, &rc_none);
                const char *what = generate ? "fl_stack_generate" : "fl_stack_forward";
                if (cell == FL_CELL_LSTM) {
                    if (rc_none != FL_ERR_ARGUMENT
                        || memcmp(got + n - n_h, h0, n_h * sizeof(float)) != 0) {
                        printf("%s %s batch %d: an LSTM without c gave %d and ran\n", name,
                               what, n_batch, rc_none);
                        failures++;
                    }
                } else if (rc != FL_OK || rc_none != FL_OK
                           || memcmp(want, got, n * sizeof(float)) != 0) {
                    printf("%s %s batch %d, %d threads: without c %d, with c %d, %s\n", name,
                           what, n_batch, n_threads, rc_none, rc,
                           memcmp(want, got, n * sizeof(float)) ? "different bits" : "same bits");
                    failures++;
                }
                free(got);
            }
            free(want);
        }
        free(x);
        free(h0);
    }
    free_model(&m);
    return failures;
}

int main(void) {
    int failures = check(FL_CELL_GRU, "gru", 160) + check(FL_CELL_GRU_RESET_BEFORE,
                                                          "gru_reset_before", 160)
                   + check(FL_CELL_SIMPLE, "simple", 256) + check(FL_CELL_LSTM, "lstm", 128);
    printf("%d failures\n", failures);
    return failures != 0;
}
