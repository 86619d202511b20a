/* LSTM forward pass: one OpenMP-parallel loop over batch rows, each row running its whole
 * sequence with the fused kernel of lstm_body.h. */
#include <string.h>

#include "activations.h"
#include "cpu_dispatch.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static ptrdiff_t fl_lstm_padded(const fl_lstm_params *p) {
    return (ptrdiff_t)((p->n_units + FL_LSTM_BLOCK - 1) / FL_LSTM_BLOCK) * FL_LSTM_BLOCK;
}

static size_t fl_lstm_thread_floats(const fl_lstm_params *p, ptrdiff_t n_timesteps) {
    const ptrdiff_t n_padded = fl_lstm_padded(p);
    return (size_t)(n_timesteps * 4 * n_padded + 8 * n_padded);
}

#define FL_FN(name) name##_portable
#define FL_TARGET
#include "lstm_body.h"
#undef FL_FN
#undef FL_TARGET

#if FL_BUILD_AVX2
#define FL_FN(name) name##_avx2
#define FL_TARGET __attribute__((target("avx2,fma")))
#include "lstm_body.h"
#undef FL_FN
#undef FL_TARGET
#endif

size_t fl_lstm_workspace_floats(const fl_lstm_params *p, ptrdiff_t n_timesteps, int n_threads) {
    if (p == NULL || n_timesteps < 1 || n_threads < 1) return 0;
    return fl_lstm_thread_floats(p, n_timesteps) * (size_t)n_threads;
}

int fl_lstm_forward(const fl_lstm_params *p, ptrdiff_t n_batch, ptrdiff_t n_timesteps,
                    const float *x, float *h, float *c, float *out, int return_sequences,
                    int go_backwards, float *workspace, int n_threads) {
    if (p == NULL || p->n_features < 1 || p->n_units < 1 || n_batch < 0 || n_timesteps < 1
        || n_threads < 1 || !fl_activation_is_valid(p->activation)
        || !fl_activation_is_valid(p->recurrent_activation)) {
        return FL_ERR_ARGUMENT;
    }
    if (n_batch == 0) return FL_OK;
    if (x == NULL || h == NULL || c == NULL || out == NULL || workspace == NULL
        || p->kernel == NULL || p->recurrent == NULL || p->bias == NULL) {
        return FL_ERR_ARGUMENT;
    }

    void (*row_fn)(const fl_lstm_params *, ptrdiff_t, const float *, float *, float *, float *,
                   int, int, float *) = fl_lstm_row_portable;
#if FL_BUILD_AVX2
    if (fl_get_isa() == FL_ISA_AVX2) row_fn = fl_lstm_row_avx2;
#endif

    const ptrdiff_t n_features = p->n_features, n_units = p->n_units;
    const ptrdiff_t out_stride = return_sequences ? n_timesteps * n_units : n_units;
    const size_t per_thread = fl_lstm_thread_floats(p, n_timesteps);
    const int n_used = n_batch < n_threads ? (int)n_batch : n_threads;
    (void)n_used;

    /* Rows are independent, so each thread takes whole rows through the whole sequence: no
     * synchronisation per timestep, and a row's arithmetic does not depend on the thread count. */
#ifdef _OPENMP
#pragma omp parallel for num_threads(n_used) schedule(static)
#endif
    for (ptrdiff_t r = 0; r < n_batch; r++) {
#ifdef _OPENMP
        float *ws = workspace + per_thread * (size_t)omp_get_thread_num();
#else
        float *ws = workspace;
#endif
        row_fn(p, n_timesteps, x + r * n_timesteps * n_features, h + r * n_units,
               c + r * n_units, out + r * out_stride, return_sequences, go_backwards, ws);
    }
    return FL_OK;
}
