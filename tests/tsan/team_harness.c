/* Drives every thread-team path of the C core for ThreadSanitizer (.ci/tsan builds it with
 * clang -fsanitize=thread and LLVM's libomp with its archer tool, which tells TSan what OpenMP
 * orders): generation and sequences, split by rows and by unit blocks, each cell, with and
 * without forced late joins (src/team.h). Each run is also compared with one thread, bitwise.
 * The portable kernels run first: TSan sees their plain loads and stores, not the AVX2
 * intrinsics' vector accesses; the AVX2 kernels then run for the bitwise comparison.
 * Exit status: 0 when every result matches (TSan itself fails the run on a report). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastlstm.h"

#include "../c/test_rng.h"

static float *random_floats(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (p == NULL) exit(2);
    for (size_t i = 0; i < n; i++) p[i] = uniform();
    return p;
}

typedef struct {
    fl_rnn_params rnn;
    float *weights, *bias, *dense_kernel, *dense_bias;
    int n_features, n_units;
} model;

static model make_model(int cell, int n_features, int n_units) {
    model m;
    memset(&m, 0, sizeof m);
    m.n_features = n_features;
    m.n_units = n_units;
    const int bu = fl_rnn_block_units(cell), n_blocks = (n_units + bu - 1) / bu;
    m.weights = random_floats(fl_rnn_packed_floats(cell, n_features, n_units));
    m.bias = random_floats((size_t)n_blocks * 4 * FL_RNN_BLOCK);
    m.dense_kernel = random_floats((size_t)n_units * n_features);
    m.dense_bias = random_floats((size_t)n_features);
    m.rnn.cell = cell;
    m.rnn.n_features = n_features;
    m.rnn.n_units = n_units;
    m.rnn.activation.id = FL_ACT_TANH;
    m.rnn.recurrent_activation.id = FL_ACT_SIGMOID;
    m.rnn.weights = m.weights;
    m.rnn.bias = m.bias;
    return m;
}

static void free_model(model *m) {
    free(m->weights);
    free(m->bias);
    free(m->dense_kernel);
    free(m->dense_bias);
}

/* cell(n_units, return_sequences) -> Dense(n_features, tanh) from a one-step input, fed back for
 * n_steps (fl_stack_generate); returns y, h and c. */
static float *generate(const model *m, int n_batch, int n_steps, int n_threads, float **h_out,
                       float **c_out) {
    float *h = calloc((size_t)n_batch * m->n_units, sizeof(float));
    float *c = calloc((size_t)n_batch * m->n_units, sizeof(float));
    float *y = calloc((size_t)n_batch * n_steps * m->n_features, sizeof(float));
    if (h == NULL || c == NULL || y == NULL) exit(2);
    fl_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].kind = FL_OP_RNN;
    ops[0].rnn = &m->rnn;
    ops[0].n_in = m->n_features;
    ops[0].n_out = m->n_units;
    ops[0].return_sequences = 1;
    ops[0].rank_out = 3;
    ops[1].kind = FL_OP_DENSE;
    ops[1].kernel = m->dense_kernel;
    ops[1].bias = m->dense_bias;
    ops[1].n_in = m->n_units;
    ops[1].n_out = m->n_features;
    ops[1].activation.id = FL_ACT_TANH;
    ops[1].rank_out = 3;
    fl_op_state states[2] = {{h, c}, {NULL, NULL}};
    float *x = malloc((size_t)n_batch * m->n_features * sizeof(float));
    if (x == NULL) exit(2);
    for (int r = 0; r < n_batch; r++)
        for (int f = 0; f < m->n_features; f++) x[r * m->n_features + f] = 0.1f * (float)(r + f);
    const fl_stack stack = {ops, 2, m->n_features};
    float *ws = malloc(fl_stack_workspace_size(&stack, FL_STACK_GENERATE, states, n_batch, 1,
                                               n_threads).floats * sizeof(float));
    if (ws == NULL) exit(2);
    if (fl_stack_generate(&stack, states, n_batch, 1, x, y, n_steps, 0, ws, n_threads) != FL_OK)
        exit(3);
    free(x);
    free(ws);
    *h_out = h;
    *c_out = c;
    return y;
}

static float *sequence(const model *m, int n_batch, int n_timesteps, int n_threads) {
    float *x = random_floats((size_t)n_batch * n_timesteps * m->n_features);
    float *h = calloc((size_t)n_batch * m->n_units, sizeof(float));
    float *c = calloc((size_t)n_batch * m->n_units, sizeof(float));
    float *out = malloc((size_t)n_batch * n_timesteps * m->n_units * sizeof(float));
    float *ws = malloc(fl_rnn_workspace_floats(&m->rnn, n_batch, n_threads) * sizeof(float));
    if (h == NULL || c == NULL || out == NULL || ws == NULL) exit(2);
    if (fl_rnn_forward(&m->rnn, n_batch, n_timesteps, x, h, c, out, 1, 0, ws, n_threads) != FL_OK)
        exit(3);
    free(x);
    free(h);
    free(c);
    free(ws);
    return out;
}

static int same(const float *a, const float *b, size_t n, const char *what) {
    if (memcmp(a, b, n * sizeof(float)) == 0) return 1;
    fprintf(stderr, "MISMATCH: %s\n", what);
    return 0;
}

static int run_all(const char *isa);

int main(void) {
    if (fl_effective_threads(2) < 2) {
        printf("WARNING: fewer than two processors: no team to check\n");
        return 0;
    }
    int ok = fl_set_isa(FL_ISA_PORTABLE) == FL_OK && run_all("portable");
    if (fl_set_isa(FL_ISA_AVX2) == FL_OK) ok &= run_all("avx2");
    if (fl_set_isa(FL_ISA_AVX512) == FL_OK) ok &= run_all("avx512");
    return ok ? 0 : 1;
}

static int run_all(const char *isa) {
    static const struct { int cell, n_units; const char *name; } cells[] = {
        {FL_CELL_LSTM, 128, "lstm"}, {FL_CELL_GRU, 160, "gru"},
        {FL_CELL_GRU_RESET_BEFORE, 160, "gru_reset_before"}, {FL_CELL_SIMPLE, 256, "simple"}};
    static const int batches[] = {1, 9};
    static const ptrdiff_t joins[] = {0, 1, 2, 5};
    int ok = 1, runs = 0;
    for (size_t ci = 0; ci < sizeof(cells) / sizeof(cells[0]); ci++) {
        model m = make_model(cells[ci].cell, 4, cells[ci].n_units);
        for (size_t bi = 0; bi < 2; bi++) {
            const int n_batch = batches[bi], n_steps = 13;
            const size_t n_y = (size_t)n_batch * n_steps * 4, n_h = (size_t)n_batch * m.n_units;
            float *h1, *c1, *h2, *c2;
            rng_state = 7;
            fl_set_late_join_for_tests(0);
            float *y1 = generate(&m, n_batch, n_steps, 1, &h1, &c1);
            float *s1 = sequence(&m, n_batch, 24, 1);
            for (size_t ji = 0; ji < sizeof(joins) / sizeof(joins[0]); ji++) {
                char what[96];
                snprintf(what, sizeof(what), "%s: %s batch %d late join %d", isa, cells[ci].name,
                         n_batch, (int)joins[ji]);
                fl_set_late_join_for_tests(joins[ji]);
                rng_state = 7;
                /* Every case but the reset-before GRU at batch 1 must really split. */
                const int expected = cells[ci].cell == FL_CELL_GRU_RESET_BEFORE && n_batch == 1
                                     ? 1 : 2;
                int team_gen, team_seq;
                ptrdiff_t first;
                float *y2 = generate(&m, n_batch, n_steps, 2, &h2, &c2);
                fl_last_team_for_tests(&team_gen, &first);
                float *s2 = sequence(&m, n_batch, 24, 2);
                fl_last_team_for_tests(&team_seq, &first);
                /* recorded only while the hook is on */
                if (joins[ji] != 0 && (team_gen != expected || team_seq != expected)) {
                    fprintf(stderr, "NO TEAM: %s: %d and %d threads, expected %d\n", what,
                            team_gen, team_seq, expected);
                    ok = 0;
                }
                ok &= same(y1, y2, n_y, what) & same(h1, h2, n_h, what)
                      & same(c1, c2, n_h, what)
                      & same(s1, s2, (size_t)n_batch * 24 * m.n_units, what);
                runs++;
                free(y2), free(h2), free(c2), free(s2);
            }
            fl_set_late_join_for_tests(0);
            free(y1), free(h1), free(c1), free(s1);
        }
        free_model(&m);
    }
    printf("%s: %d passed, %d failed\n", isa, ok ? runs : 0, ok ? 0 : 1);
    return ok;
}
