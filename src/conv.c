/* The direct cross-correlation of the convolution layers (fastlstm.h fl_conv_forward): the
 * checks, and the split of the output positions among a thread team. The arithmetic is the
 * kernel table's conv_positions (conv_simd.h). */
#include "fastlstm.h"
#include "kernels.h"
#include "team.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Less work than this (multiply-adds) runs on one thread: a team's start costs more. */
#define FL_CONV_MIN_PARALLEL_MACS (1 << 18)

/* The geometry of a call, or 0 when a size is out of range (every product below fits: each is
 * at most the elements of an array the caller holds, which the caller checked). */
static int fl_conv_geometry_of(fl_conv_geometry *g, int rank, ptrdiff_t n_batch,
                               const ptrdiff_t *in, ptrdiff_t n_channels, const ptrdiff_t *window,
                               ptrdiff_t n_filters, const ptrdiff_t *strides,
                               const ptrdiff_t *dilations) {
    if (rank < 1 || rank > 3 || n_batch < 0 || n_channels < 1 || n_filters < 1) return 0;
    g->n_batch = n_batch;
    g->n_channels = n_channels;
    g->n_filters = n_filters;
    for (int i = 0; i < 3; i++) {
        const int a = i - (3 - rank);  /* the caller's axis, or a leading axis of 1 */
        g->in[i] = a < 0 ? 1 : in[a];
        g->window[i] = a < 0 ? 1 : window[a];
        g->stride[i] = a < 0 ? 1 : strides[a];
        g->dilation[i] = a < 0 ? 1 : dilations[a];
        if (g->in[i] < 1 || g->window[i] < 1 || g->stride[i] < 1 || g->dilation[i] < 1)
            return 0;
        /* span = (window - 1) * dilation + 1 <= in, tested without forming a product that
         * could overflow */
        if (g->window[i] > 1 && g->dilation[i] > (g->in[i] - 1) / (g->window[i] - 1)) return 0;
        const ptrdiff_t span = (g->window[i] - 1) * g->dilation[i] + 1;
        g->out[i] = (g->in[i] - span) / g->stride[i] + 1;
    }
    return 1;
}

#ifdef _OPENMP
/* Positions never meet: each thread writes its own rows of y (team.h I3, I4). */
static void fl_conv_team(const fl_conv_positions_fn run, const fl_conv_geometry *g,
                         const float *x, const float *kernel, float *y, ptrdiff_t n_pos, int nt) {
    fl_team_join join;
    fl_team_join_init(&join);
    fl_team_note_start();
#pragma omp parallel num_threads(nt)
    {
        const int tid = omp_get_thread_num(), n_team = omp_get_num_threads();
        if (tid > 0) fl_team_worker_hook(&join);
        run(g, x, kernel, y, n_pos * tid / n_team, n_pos * (tid + 1) / n_team);
        if (tid == 0) {
            fl_team_record(n_team, 0);
            fl_team_release_workers(&join);
        }
    }
}
#endif

int fl_conv_forward(int rank, ptrdiff_t n_batch, const ptrdiff_t *in, ptrdiff_t n_channels,
                    const float *x, const ptrdiff_t *window, ptrdiff_t n_filters,
                    const float *kernel, const ptrdiff_t *strides, const ptrdiff_t *dilations,
                    float *y, int n_threads) {
    fl_conv_geometry g;
    if (in == NULL || window == NULL || strides == NULL || dilations == NULL || n_threads < 1
        || !fl_conv_geometry_of(&g, rank, n_batch, in, n_channels, window, n_filters, strides,
                                dilations))
        return FL_ERR_ARGUMENT;
    const ptrdiff_t n_pos = n_batch * g.out[0] * g.out[1] * g.out[2];
    if (n_pos == 0) return FL_OK;
    if (x == NULL || kernel == NULL || y == NULL) return FL_ERR_ARGUMENT;
    const fl_conv_positions_fn run = fl_kernels()->conv_positions;
    const double macs = (double)n_pos * (double)(g.window[0] * g.window[1] * g.window[2])
                        * (double)n_channels * (double)n_filters;
    int nt = macs < FL_CONV_MIN_PARALLEL_MACS ? 1 : fl_effective_threads(n_threads);
    if (nt > n_pos) nt = (int)n_pos;
    if (nt <= 1) {
        run(&g, x, kernel, y, 0, n_pos);
        fl_team_record(1, 0);
        return FL_OK;
    }
#ifdef _OPENMP
    fl_conv_team(run, &g, x, kernel, y, n_pos, nt);
#endif
    return FL_OK;
}
