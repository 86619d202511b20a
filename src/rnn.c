/* The sequence driver: runs a recurrent layer of any cell over a sequence (fl_rnn_forward), its
 * state in padded buffers, with a mask or without, choosing between the row-parallel and the
 * unit-parallel schedule. The cells' arithmetic is in rnn_cells.c, the thread team in team.c. */
#include <stdint.h>
#include <string.h>

#include "rnn_cells.h"
#include "team.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Steps whose input projection is computed at once in the unit-parallel schedule. */
#define FL_RNN_XPROJ_STEPS 64

/* Below this many multiply-adds per call, waking a second thread costs more than it saves. */
#define FL_MIN_PARALLEL_MACS (1 << 18)
/* Split by units, threads meet once a step: below this many multiply-adds a step the meeting
 * (a core-to-core round trip, 80-140 ns between nearby cores) costs more than the half step it
 * saves. At batch 1 with 8 features, two threads were slower for LSTM(48) and GRU(48) (10.8k
 * and 8.1k a step) and faster for LSTM(64) and GRU(64) (18.4k, 13.8k); bench/results/batch1.md
 * has the sweep. */
#define FL_MIN_SPLIT_STEP_MACS 12288.0
static const fl_team_policy fl_rnn_team_policy = {FL_MIN_PARALLEL_MACS, 0.0, 1};

/* Which way a call's first step walks the unit blocks alternates between the calls of a
 * thread on one layer, as between steps, so that a stream's one-step calls also start on the
 * weights the call before read last (each thread on its own core's L1). Layers are told apart
 * by their weights, in a few slots per thread (a collision only costs that reuse). Without
 * thread-local storage every call starts forward. */
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_THREADS__)
#define FL_THREAD_LOCAL _Thread_local
#elif defined(__GNUC__) || defined(__clang__)
#define FL_THREAD_LOCAL __thread
#elif defined(_MSC_VER)
#define FL_THREAD_LOCAL __declspec(thread)
#endif
#define FL_WALK_SLOTS 8
#ifdef FL_THREAD_LOCAL
static FL_THREAD_LOCAL struct {
    const float *weights;
    int parity;
} fl_walks[FL_WALK_SLOTS];
#endif

static int fl_next_call_parity(const fl_rnn_params *p, ptrdiff_t n_timesteps) {
#ifdef FL_THREAD_LOCAL
    const size_t slot = (size_t)(((uintptr_t)p->weights >> 6) % FL_WALK_SLOTS);
    if (fl_walks[slot].weights != p->weights) {
        fl_walks[slot].weights = p->weights;
        fl_walks[slot].parity = 0;
    }
    const int first = fl_walks[slot].parity;
    fl_walks[slot].parity = (int)((first + n_timesteps) & 1);
    return first;
#else
    (void)p;
    (void)n_timesteps;
    return 0;
#endif
}

size_t fl_rnn_workspace_floats(const fl_rnn_params *p, ptrdiff_t n_batch, int n_threads) {
    if (p == NULL || p->n_units < 1 || n_batch < 0 || n_threads < 1) return 0;
    n_threads = fl_effective_threads(n_threads);  /* what fl_rnn_forward_masked runs on */
    /* h (two buffers), c: (n_batch, n_padded) each; per thread FL_RNN_SCRATCH_ROWS rows of
     * n_padded for the row-wise activation path; the input projection chunk when the batch is small enough for
     * the unit-parallel schedule (see fl_rnn_forward). */
    const ptrdiff_t xproj = n_threads > 1 && fl_team_rows_are_few(n_batch, n_threads)
                                ? n_batch * FL_RNN_XPROJ_STEPS * 4 : 0;
    /* + c_saved and prev_out of masked runs */
    return (size_t)((5 * n_batch + FL_RNN_SCRATCH_ROWS * (ptrdiff_t)n_threads + xproj)
                    * fl_rnn_padded(p));
}

typedef struct {
    const fl_rnn_params *p;
    fl_rnn_cell_fns cell;
    ptrdiff_t block_units;
    fl_rnn_step_args base;  /* x, n_timesteps, n_padded, c; h buffers set per step */
    float *h_a, *h_b;        /* (n_batch, n_padded): h_a holds the initial state */
    float *out;
    int return_sequences, go_backwards;
    int first_reverse;  /* the walk of step 0 (fl_next_call_parity); step s: (first + s) & 1 */
    /* Masked runs (else mask is NULL): mask (n_batch, n_timesteps), nonzero = step taken; the
     * c rows of masked steps saved across the step, and each row's previous output. */
    const unsigned char *mask;
    int zero_output_for_mask;
    float *c_saved, *prev_out;  /* (n_batch, n_padded) */
} fl_rnn_run;

static void fl_copy_step_output(const fl_rnn_run *run, const float *h, ptrdiff_t r0,
                                ptrdiff_t r1, ptrdiff_t u0, ptrdiff_t u1, ptrdiff_t s) {
    const ptrdiff_t n_units = run->p->n_units, n_timesteps = run->base.n_timesteps;
    for (ptrdiff_t r = r0; r < r1; r++)
        memcpy(run->out + (r * n_timesteps + s) * n_units + u0, h + r * run->base.n_padded + u0,
               (size_t)(u1 - u0) * sizeof(float));
}

/* Masked steps (keras backend rnn with a mask, tf_keras backend.py and keras/src/backend/
 * tensorflow/rnn.py): the state of a masked row stays as it was, and its output is the previous
 * step's output (zeros before the first step), or zeros with zero_output_for_mask (what
 * Bidirectional sets for return_sequences). The step runs on every row; a masked row's c is
 * kept aside and put back, its h and output are taken from before. */
static void fl_mask_before_step(const fl_rnn_run *run, ptrdiff_t t, const float *c, ptrdiff_t r0,
                                ptrdiff_t r1) {
    const ptrdiff_t n_padded = run->base.n_padded, n_timesteps = run->base.n_timesteps;
    for (ptrdiff_t r = r0; r < r1; r++)
        if (!run->mask[r * n_timesteps + t])
            memcpy(run->c_saved + r * n_padded, c + r * n_padded, (size_t)n_padded * sizeof(float));
}

static void fl_mask_after_step(const fl_rnn_run *run, ptrdiff_t t, const float *h_cur,
                               float *h_next, float *c, ptrdiff_t r0, ptrdiff_t r1) {
    const ptrdiff_t n_padded = run->base.n_padded, n_timesteps = run->base.n_timesteps;
    const size_t row_bytes = (size_t)n_padded * sizeof(float);
    for (ptrdiff_t r = r0; r < r1; r++) {
        float *prev = run->prev_out + r * n_padded;
        if (run->mask[r * n_timesteps + t]) {
            memcpy(prev, h_next + r * n_padded, row_bytes);
        } else {
            memcpy(h_next + r * n_padded, h_cur + r * n_padded, row_bytes);
            memcpy(c + r * n_padded, run->c_saved + r * n_padded, row_bytes);
            if (run->zero_output_for_mask) memset(prev, 0, row_bytes);
        }
    }
}

/* Rows [r0, r1) through the whole sequence: no synchronisation with other threads. */
static void fl_rnn_rows(const fl_rnn_run *run, ptrdiff_t r0, ptrdiff_t r1,
                         float *scratch /* (FL_RNN_SCRATCH_ROWS, n_padded) */) {
    const ptrdiff_t n_timesteps = run->base.n_timesteps, n_padded = run->base.n_padded;
    fl_rnn_step_args a = run->base;
    float *h_cur = run->h_a, *h_next = run->h_b;
    for (ptrdiff_t s = 0; s < n_timesteps; s++) {
        /* go_backwards consumes the input from the end but numbers outputs in processing order
         * (keras backend rnn reverses the inputs, not the outputs). */
        a.t = run->go_backwards ? n_timesteps - 1 - s : s;
        a.reverse = (int)((run->first_reverse + s) & 1);
        a.h_cur = h_cur;
        a.h_next = h_next;
        if (run->mask != NULL) fl_mask_before_step(run, a.t, a.c, r0, r1);
        if (run->cell.whole_rows) {
            fl_rnn_step_whole_rows(&run->cell, run->p, &a, r0, r1, scratch);
        } else {
            run->cell.step(run->p, &a, r0, r1, 0, n_padded / run->block_units);
        }
        if (run->mask != NULL) {
            fl_mask_after_step(run, a.t, h_cur, h_next, a.c, r0, r1);
            if (run->return_sequences)
                fl_copy_step_output(run, run->prev_out, r0, r1, 0, run->p->n_units, s);
        } else if (run->return_sequences) {
            fl_copy_step_output(run, h_next, r0, r1, 0, run->p->n_units, s);
        }
        float *swap = h_cur;
        h_cur = h_next;
        h_next = swap;
    }
}

#ifdef _OPENMP
/* Every row, unit blocks [b0, b1) of this thread, a barrier per timestep. Each chunk of steps
 * starts with the input projection of this thread's blocks as one blocked product; only this
 * thread reads those blocks, so that needs no barrier of its own. */
static void fl_rnn_units(const fl_rnn_run *run, ptrdiff_t n_batch, ptrdiff_t b0, ptrdiff_t b1,
                          fl_spin_barrier *bar, int n_threads) {
    const ptrdiff_t n_timesteps = run->base.n_timesteps, n_units = run->p->n_units;
    const ptrdiff_t u0 = b0 * run->block_units;
    const ptrdiff_t u1 = b1 * run->block_units < n_units ? b1 * run->block_units : n_units;
    fl_rnn_step_args a = run->base;
    float *h_cur = run->h_a, *h_next = run->h_b;
    int sense = 0;
    for (ptrdiff_t s0 = 0; s0 < n_timesteps; s0 += a.chunk) {
        const ptrdiff_t n_steps = n_timesteps - s0 < a.chunk ? n_timesteps - s0 : a.chunk;
        run->cell.project(run->p, &a, n_batch, s0, n_steps, run->go_backwards, b0, b1);
        for (ptrdiff_t j = 0; j < n_steps; j++) {
            const ptrdiff_t s = s0 + j;
            a.step_in_chunk = j;
            a.reverse = (int)((run->first_reverse + s) & 1);
            a.h_cur = h_cur;
            a.h_next = h_next;
            run->cell.step(run->p, &a, 0, n_batch, b0, b1);
            if (run->return_sequences && u1 > u0)
                fl_copy_step_output(run, h_next, 0, n_batch, u0, u1, s);
            /* Every thread reads all of h_cur and writes its part of h_next: the next step may
             * only start when all parts are written, and h_cur may only be overwritten (as the
             * next h_next) when nobody reads it any more. One barrier covers both. */
            fl_barrier_wait(bar, n_threads, &sense);
            float *swap = h_cur;
            h_cur = h_next;
            h_next = swap;
        }
    }
}
#endif

int fl_rnn_forward(const fl_rnn_params *p, ptrdiff_t n_batch, ptrdiff_t n_timesteps,
                   const float *x, float *h, float *c, float *out, int return_sequences,
                   int go_backwards, float *workspace, int n_threads) {
    return fl_rnn_forward_masked(p, n_batch, n_timesteps, x, NULL, 0, h, c, out,
                                 return_sequences, go_backwards, workspace, n_threads);
}

/* The run's buffers, laid out in the workspace (fl_rnn_workspace_floats): h twice, c, the
 * masked runs' c_saved and prev_out, then the per-thread scratch; returns the scratch. */
static float *fl_rnn_run_init(fl_rnn_run *run, const fl_rnn_params *p, ptrdiff_t n_batch,
                              ptrdiff_t n_timesteps, const float *x, float *out,
                              float *workspace) {
    const ptrdiff_t n_padded = fl_rnn_padded(p);
    run->p = p;
    run->cell = fl_rnn_cell_functions(p);
    run->block_units = fl_rnn_block_units(p->cell);
    run->h_a = workspace;
    run->h_b = run->h_a + n_batch * n_padded;
    run->base.x = x;
    run->base.n_timesteps = n_timesteps;
    run->base.n_padded = n_padded;
    run->base.c = run->h_b + n_batch * n_padded;
    run->base.t = 0;
    run->base.h_cur = run->base.h_next = NULL;
    run->base.xproj = NULL;
    run->base.chunk = FL_RNN_XPROJ_STEPS;
    run->base.step_in_chunk = 0;
    run->base.reverse = 0;
    run->out = out;
    run->c_saved = run->base.c + n_batch * n_padded;
    run->prev_out = run->c_saved + n_batch * n_padded;
    return run->prev_out + n_batch * n_padded;
}

#ifdef _OPENMP
/* The team of nt threads over the run: by unit blocks with a barrier per step, or by rows. */
static void fl_rnn_team(const fl_rnn_run *run, ptrdiff_t n_batch, int nt, int unit_parallel,
                        float *scratch) {
    const ptrdiff_t n_padded = run->base.n_padded, n_blocks = n_padded / run->block_units;
    fl_spin_barrier bar = {0, 0}, claims_bar = {0, 0};
    fl_team_join join;
    fl_team_join_init(&join);
    fl_team_note_start();
#pragma omp parallel num_threads(nt)
    {
        const int tid = omp_get_thread_num(), n_team = omp_get_num_threads();
        if (tid > 0) fl_team_worker_hook(&join);
        if (unit_parallel) {
            /* Every thread starts from h_a at step 0 and swaps its own two pointers once a
             * step, all in step with the barrier (invariants I1, I2); thread 0 waits for the
             * workers at the claims barrier, so a late worker only delays it (I3). */
            int sense = 0;
            fl_team_seat seat = {0, {0}};
            if (tid > 0) fl_team_claim_cpu(&join, &seat);
            else fl_team_release_workers(&join);
            fl_barrier_wait(&claims_bar, n_team, &sense);  /* every claim settled */
            if (!fl_team_refused(&join)) {
                fl_rnn_units(run, n_batch, n_blocks * tid / n_team, n_blocks * (tid + 1) / n_team,
                             &bar, n_team);
                if (tid == 0) fl_team_record(n_team, 0);
            } else if (tid == 0) {  /* alone, as with nt = 1 */
                fl_team_record(1, 0);
                fl_rnn_units(run, n_batch, 0, n_blocks, &bar, 1);
                fl_team_set_done(&join);
            } else {
                fl_team_wait_done(&join);
            }
            if (tid > 0) fl_team_leave(&seat);
        } else {
            /* Rows never meet: each thread owns its rows of every buffer and starts from h_a
             * (I1), however late it starts. */
            fl_rnn_rows(run, n_batch * tid / n_team, n_batch * (tid + 1) / n_team,
                        scratch + (ptrdiff_t)tid * FL_RNN_SCRATCH_ROWS * n_padded);
            if (tid == 0) {
                fl_team_record(n_team, 0);
                fl_team_release_workers(&join);
            }
        }
    }
}
#endif

int fl_rnn_forward_masked(const fl_rnn_params *p, ptrdiff_t n_batch, ptrdiff_t n_timesteps,
                          const float *x, const unsigned char *mask, int zero_output_for_mask,
                          float *h, float *c, float *out, int return_sequences, int go_backwards,
                          float *workspace, int n_threads) {
    if (!fl_rnn_params_valid(p) || n_batch < 0 || n_timesteps < 1 || n_threads < 1)
        return FL_ERR_ARGUMENT;
    if (n_batch == 0) return FL_OK;
    if (x == NULL || h == NULL || (c == NULL && p->cell == FL_CELL_LSTM) || out == NULL
        || workspace == NULL || p->weights == NULL || p->bias == NULL) {
        return FL_ERR_ARGUMENT;
    }
    const ptrdiff_t n_units = p->n_units, n_padded = fl_rnn_padded(p);
    const ptrdiff_t n_blocks = n_padded / fl_rnn_block_units(p->cell);
    fl_rnn_run run;
    /* (fl_effective_threads(n_threads), FL_RNN_SCRATCH_ROWS, n_padded), as sized by
     * fl_rnn_workspace_floats */
    float *scratch = fl_rnn_run_init(&run, p, n_batch, n_timesteps, x, out, workspace);
    run.return_sequences = return_sequences;
    run.go_backwards = go_backwards;
    run.first_reverse = fl_next_call_parity(p, n_timesteps);
    run.mask = mask;
    run.zero_output_for_mask = zero_output_for_mask;
    n_threads = fl_effective_threads(n_threads);
    if (mask != NULL) memset(run.prev_out, 0, (size_t)(n_batch * n_padded) * sizeof(float));
    fl_state_to_padded(h, c, n_batch, n_units, n_padded, run.h_a, run.h_b, run.base.c);

    const double macs = (double)n_batch * (double)n_timesteps * (double)(p->n_features + n_units)
                        * fl_rnn_gates(p->cell) * (double)n_units;
    /* Few rows: split the units so each thread reads its share of the weights (at batch 1 a
     * step reads each weight once, for one multiply-add, so where they live bounds it). */
    int unit_parallel;
    int nt = fl_team_plan(&fl_rnn_team_policy, macs, n_batch, n_blocks,
                          !run.cell.whole_rows && mask == NULL, n_threads, &unit_parallel);
    if (unit_parallel && macs / (double)n_timesteps < FL_MIN_SPLIT_STEP_MACS) {
        nt = 1;
        unit_parallel = 0;
    }
    if (unit_parallel)
        run.base.xproj = scratch + (ptrdiff_t)n_threads * FL_RNN_SCRATCH_ROWS * n_padded;
    if (nt <= 1) {
        fl_rnn_rows(&run, 0, n_batch, scratch);
        fl_team_record(1, 0);
    } else {
#ifdef _OPENMP
        fl_rnn_team(&run, n_batch, nt, unit_parallel, scratch);
#endif
    }

    /* After an odd number of steps the final h sits in h_b. */
    const float *h_final = (n_timesteps % 2) ? run.h_b : run.h_a;
    fl_state_from_padded(h_final, run.base.c, n_batch, n_units, n_padded, h, c);
    if (!return_sequences && mask != NULL) {
        for (ptrdiff_t r = 0; r < n_batch; r++)
            memcpy(out + r * n_units, run.prev_out + r * n_padded, (size_t)n_units * sizeof(float));
    } else if (!return_sequences) {
        memcpy(out, h, (size_t)(n_batch * n_units) * sizeof(float));
    }
    return FL_OK;
}

