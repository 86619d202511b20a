/* Recurrent forward pass for every cell type: state buffers, the choice between row-parallel and
 * unit-parallel scheduling, the time loop and feedback generation. The per-timestep arithmetic
 * of each cell is in <cell>_step_portable.h and <cell>_step_avx2.h. */
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "cpu_dispatch.h"
#include "team.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    const float *x;       /* (n_batch, n_timesteps, n_features) */
    ptrdiff_t n_timesteps;
    ptrdiff_t t;          /* input timestep being consumed */
    ptrdiff_t n_padded;   /* row stride of the state buffers */
    const float *h_cur;   /* (n_batch, n_padded) */
    float *h_next;        /* (n_batch, n_padded) */
    float *c;             /* (n_batch, n_padded), updated in place */
    /* Unit-parallel schedule: bias + x_t @ kernel of the current chunk of steps, computed
     * before them as one blocked product, (n_batch, chunk, n_blocks, 4, FL_RNN_BLOCK); NULL
     * when the step reads x itself. */
    float *xproj;
    ptrdiff_t chunk;          /* steps per xproj chunk */
    ptrdiff_t step_in_chunk;  /* which of them this step is */
} fl_rnn_step_args;

typedef void (*fl_rnn_project_fn)(const fl_rnn_params *, const fl_rnn_step_args *,
                                   ptrdiff_t n_batch, ptrdiff_t s0, ptrdiff_t n_steps,
                                   int go_backwards, ptrdiff_t b0, ptrdiff_t b1);

typedef void (*fl_rnn_step_fn)(const fl_rnn_params *, const fl_rnn_step_args *, ptrdiff_t r0,
                                ptrdiff_t r1, ptrdiff_t b0, ptrdiff_t b1);

/* One timestep of one whole row, or of whole rows [r0, r1), for cells that need all units'
 * gates before any update (a row-wise activation, the reset-before GRU); scratch holds
 * FL_RNN_SCRATCH_ROWS * n_padded floats. */
typedef void (*fl_rnn_row_fn)(const fl_rnn_params *, const fl_rnn_step_args *, ptrdiff_t r,
                              float *scratch);
typedef void (*fl_rnn_rows_fn)(const fl_rnn_params *, const fl_rnn_step_args *, ptrdiff_t r0,
                               ptrdiff_t r1, float *scratch);
#define FL_RNN_SCRATCH_ROWS 9

/* Weight matrices per unit: the multiply-adds of a step are gates * (features + units) * units. */
static double fl_rnn_gates(int cell) {
    return cell == FL_CELL_LSTM ? 4.0 : cell == FL_CELL_SIMPLE ? 1.0 : 3.0;
}

int fl_rnn_block_units(int cell) {
    return cell == FL_CELL_SIMPLE ? 4 * FL_RNN_BLOCK : FL_RNN_BLOCK;
}

/* Where the unit-parallel schedule's input projection keeps bias + x_t @ kernel of row r, step
 * `step` of the chunk and unit block b: 4 vectors per block for every cell (n_blocks = n_padded
 * / the cell's block units). */
static inline float *fl_rnn_xproj_at(const fl_rnn_step_args *a, ptrdiff_t n_blocks, ptrdiff_t r,
                                     ptrdiff_t step, ptrdiff_t b) {
    return a->xproj + ((r * a->chunk + step) * n_blocks + b) * 4 * FL_RNN_BLOCK;
}

#include "lstm_step_portable.h"
#include "gru_step_portable.h"
#if FL_BUILD_AVX2
#include "lstm_step_avx2.h"
#include "gru_step_avx2.h"
#endif
#include "rnn_project.h"

typedef struct {
    fl_rnn_step_fn step;        /* blocks of rows, when the cell's blocks are independent */
    fl_rnn_project_fn project;  /* the unit-parallel schedule's input projection */
    fl_rnn_row_fn row;          /* one whole row */
    fl_rnn_rows_fn rows;        /* several whole rows at once, or NULL: `row` for each */
    int whole_rows;             /* only `row`/`rows` may run: no block split of a step */
} fl_rnn_cell_fns;

static void fl_rnn_step_whole_rows(const fl_rnn_cell_fns *cell, const fl_rnn_params *p,
                                   const fl_rnn_step_args *a, ptrdiff_t r0, ptrdiff_t r1,
                                   float *scratch) {
    if (cell->rows != NULL) {
        cell->rows(p, a, r0, r1, scratch);
    } else {
        for (ptrdiff_t r = r0; r < r1; r++) cell->row(p, a, r, scratch);
    }
}

/* Per cell: {portable step, AVX2 step, whole-row step}; the reset-before GRU has only rows. */
static fl_rnn_cell_fns fl_rnn_cell_functions(const fl_rnn_params *p) {
    fl_rnn_step_fn step_avx2 = NULL;
    fl_rnn_cell_fns f;
    f.project = fl_rnn_project_portable;
    f.rows = NULL;
    f.whole_rows = fl_activation_is_rowwise(p->activation)
                   || (p->cell != FL_CELL_SIMPLE
                       && fl_activation_is_rowwise(p->recurrent_activation))
                   || p->cell == FL_CELL_GRU_RESET_BEFORE;
    switch (p->cell) {
    case FL_CELL_GRU:
        f.step = fl_gru_step_portable;
        f.row = fl_gru_step_row;
#if FL_BUILD_AVX2
        step_avx2 = fl_gru_step_avx2;
#endif
        break;
    case FL_CELL_GRU_RESET_BEFORE:
        f.step = NULL;
        f.row = fl_gru_reset_before_step_row;
        break;
    case FL_CELL_SIMPLE:
        f.step = fl_simple_rnn_step_portable;
        f.row = fl_simple_rnn_step_row;
#if FL_BUILD_AVX2
        step_avx2 = fl_simple_rnn_step_avx2;
#endif
        break;
    default:
        f.step = fl_lstm_step_portable;
        f.row = fl_lstm_step_row;
#if FL_BUILD_AVX2
        step_avx2 = fl_lstm_step_avx2;
#endif
    }
#if FL_BUILD_AVX2
    if (fl_get_isa() == FL_ISA_AVX2) {
        f.project = fl_rnn_project_avx2;
        if (step_avx2 != NULL) f.step = step_avx2;
        if (p->cell == FL_CELL_GRU_RESET_BEFORE) f.rows = fl_gru_reset_before_rows_avx2;
    }
#endif
    (void)step_avx2;
    return f;
}

/* A layer's state (n_batch, n_units) into the kernels' padded rows: h into h_cur and c into c_pad
 * with zeros past n_units, h_next all zeros (the padding units stay 0 through every step). */
static void fl_state_to_padded(const float *h, const float *c, ptrdiff_t n_batch,
                               ptrdiff_t n_units, ptrdiff_t n_padded, float *h_cur, float *h_next,
                               float *c_pad) {
    for (ptrdiff_t r = 0; r < n_batch; r++) {
        float *hr = h_cur + r * n_padded, *cr = c_pad + r * n_padded;
        memcpy(hr, h + r * n_units, (size_t)n_units * sizeof(float));
        if (c != NULL) memcpy(cr, c + r * n_units, (size_t)n_units * sizeof(float));
        else memset(cr, 0, (size_t)n_units * sizeof(float));
        for (ptrdiff_t u = n_units; u < n_padded; u++) hr[u] = cr[u] = 0.0f;
        memset(h_next + r * n_padded, 0, (size_t)n_padded * sizeof(float));
    }
}

/* The padded rows back into (n_batch, n_units) h and c. */
static void fl_state_from_padded(const float *h_pad, const float *c_pad, ptrdiff_t n_batch,
                                 ptrdiff_t n_units, ptrdiff_t n_padded, float *h, float *c) {
    for (ptrdiff_t r = 0; r < n_batch; r++) {
        memcpy(h + r * n_units, h_pad + r * n_padded, (size_t)n_units * sizeof(float));
        if (c != NULL)
            memcpy(c + r * n_units, c_pad + r * n_padded, (size_t)n_units * sizeof(float));
    }
}

/* Steps whose input projection is computed at once in the unit-parallel schedule. */
#define FL_RNN_XPROJ_STEPS 64

/* Below this many multiply-adds per call, waking a second thread costs more than it saves. */
#define FL_MIN_PARALLEL_MACS (1 << 18)
/* Generation: recurrent multiply-adds per step and thread below which one thread runs alone
 * (see fl_feedback_generate). */
#ifndef FL_FEEDBACK_MIN_MACS_PER_THREAD
#define FL_FEEDBACK_MIN_MACS_PER_THREAD 32768.0
#endif

static ptrdiff_t fl_rnn_padded(const fl_rnn_params *p) {
    const ptrdiff_t bu = fl_rnn_block_units(p->cell);
    return (ptrdiff_t)((p->n_units + bu - 1) / bu) * bu;
}

size_t fl_rnn_packed_floats(int cell, ptrdiff_t n_features, ptrdiff_t n_units) {
    if (cell < 0 || cell >= FL_CELL_COUNT || n_features < 1 || n_units < 1) return 0;
    const ptrdiff_t bu = fl_rnn_block_units(cell), n_blocks = (n_units + bu - 1) / bu;
    const ptrdiff_t vectors_per_row = cell == FL_CELL_LSTM || cell == FL_CELL_SIMPLE ? 4 : 3;
    return (size_t)(n_blocks * (n_features + n_units) * vectors_per_row * FL_RNN_BLOCK);
}

size_t fl_rnn_workspace_floats(const fl_rnn_params *p, ptrdiff_t n_batch, int n_threads) {
    if (p == NULL || p->n_units < 1 || n_batch < 0 || n_threads < 1) return 0;
    n_threads = fl_effective_threads(n_threads);  /* what fl_rnn_forward_masked runs on */
    /* h (two buffers), c: (n_batch, n_padded) each; per thread 5 rows of n_padded for the
     * row-wise activation path; the input projection chunk when the batch is small enough for
     * the unit-parallel schedule (see fl_rnn_forward). */
    const ptrdiff_t xproj = n_batch < 4 * (ptrdiff_t)n_threads
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
    int return_sequences, go_backwards, whole_rows;
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
                         float *scratch /* (5, n_padded) */) {
    const ptrdiff_t n_timesteps = run->base.n_timesteps, n_padded = run->base.n_padded;
    fl_rnn_step_args a = run->base;
    float *h_cur = run->h_a, *h_next = run->h_b;
    for (ptrdiff_t s = 0; s < n_timesteps; s++) {
        /* go_backwards consumes the input from the end but numbers outputs in processing order
         * (keras backend rnn reverses the inputs, not the outputs). */
        a.t = run->go_backwards ? n_timesteps - 1 - s : s;
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

int fl_rnn_forward_masked(const fl_rnn_params *p, ptrdiff_t n_batch, ptrdiff_t n_timesteps,
                          const float *x, const unsigned char *mask, int zero_output_for_mask,
                          float *h, float *c, float *out, int return_sequences, int go_backwards,
                          float *workspace, int n_threads) {
    if (p == NULL || p->n_features < 1 || p->n_units < 1 || n_batch < 0 || n_timesteps < 1
        || n_threads < 1 || p->cell < 0 || p->cell >= FL_CELL_COUNT
        || !fl_activation_is_valid(p->activation)
        || !fl_activation_is_valid(p->recurrent_activation)) {
        return FL_ERR_ARGUMENT;
    }
    if (n_batch == 0) return FL_OK;
    if (x == NULL || h == NULL || (c == NULL && p->cell == FL_CELL_LSTM) || out == NULL
        || workspace == NULL || p->weights == NULL || p->bias == NULL) {
        return FL_ERR_ARGUMENT;
    }
    const ptrdiff_t n_units = p->n_units, n_padded = fl_rnn_padded(p);
    const ptrdiff_t block_units = fl_rnn_block_units(p->cell), n_blocks = n_padded / block_units;

    fl_rnn_run run;
    run.p = p;
    run.cell = fl_rnn_cell_functions(p);
    run.block_units = block_units;
    run.h_a = workspace;
    run.h_b = run.h_a + n_batch * n_padded;
    run.base.x = x;
    run.base.n_timesteps = n_timesteps;
    run.base.n_padded = n_padded;
    run.base.c = run.h_b + n_batch * n_padded;
    run.base.t = 0;
    run.base.h_cur = run.base.h_next = NULL;
    run.base.xproj = NULL;
    run.base.chunk = FL_RNN_XPROJ_STEPS;
    run.base.step_in_chunk = 0;
    run.out = out;
    run.return_sequences = return_sequences;
    run.go_backwards = go_backwards;
    run.mask = mask;
    run.zero_output_for_mask = zero_output_for_mask;
    run.c_saved = run.base.c + n_batch * n_padded;
    run.prev_out = run.c_saved + n_batch * n_padded;
    /* (fl_effective_threads(n_threads), FL_RNN_SCRATCH_ROWS, n_padded), as sized by
     * fl_rnn_workspace_floats */
    n_threads = fl_effective_threads(n_threads);
    float *scratch = run.prev_out + n_batch * n_padded;
    if (mask != NULL) memset(run.prev_out, 0, (size_t)(n_batch * n_padded) * sizeof(float));

    fl_state_to_padded(h, c, n_batch, n_units, n_padded, run.h_a, run.h_b, run.base.c);

    int nt = n_threads;
    const double macs = (double)n_batch * (double)n_timesteps * (double)(p->n_features + n_units)
                        * fl_rnn_gates(p->cell) * (double)n_units;
    if (macs < FL_MIN_PARALLEL_MACS) nt = 1;
    /* Few rows: split the units so each thread does its share of the recurrent product (at
     * batch 1 bound by issuing a weight load per FMA; from L2 it costs ~10% more than from
     * L1, measured for LSTM(64) and LSTM(128)). */
    const int unit_parallel = nt > 1 && !run.cell.whole_rows && mask == NULL
                              && n_batch < 4 * (ptrdiff_t)nt
                              && n_blocks >= 2 * (ptrdiff_t)nt;
    if (!unit_parallel && nt > n_batch) nt = (int)n_batch;
    if (unit_parallel)
        run.base.xproj = scratch + (ptrdiff_t)n_threads * FL_RNN_SCRATCH_ROWS * n_padded;

    if (nt <= 1) {
        fl_rnn_rows(&run, 0, n_batch, scratch);
    } else {
#ifdef _OPENMP
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
                    fl_rnn_units(&run, n_batch, n_blocks * tid / n_team,
                                  n_blocks * (tid + 1) / n_team, &bar, n_team);
                } else if (tid == 0) {  /* alone, as with nt = 1 */
                    fl_rnn_units(&run, n_batch, 0, n_blocks, &bar, 1);
                    fl_team_set_done(&join);
                } else {
                    fl_team_wait_done(&join);
                }
                if (tid > 0) fl_team_leave(&seat);
            } else {
                /* Rows never meet: each thread owns its rows of every buffer and starts from h_a
                 * (I1), however late it starts. */
                fl_rnn_rows(&run, n_batch * tid / n_team, n_batch * (tid + 1) / n_team,
                            scratch + (ptrdiff_t)tid * FL_RNN_SCRATCH_ROWS * n_padded);
                if (tid == 0) fl_team_release_workers(&join);
            }
        }
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

/* ------------------------------------------------------------------------------------------------
 * Feedback generation (fastlstm.h). Per recurrent op the workspace holds h twice and c, padded
 * as in fl_rnn_forward, and the op's compact output twice; per thread, a scratch area for
 * whole-row steps and Dense, and the output of every other op. Which of two buffers step k uses
 * follows from k alone (invariant I1 of team.h): step k reads h[(k - 1) & 1], writes h[k & 1]
 * and out[k & 1].
 * ---------------------------------------------------------------------------------------------- */
typedef struct {
    float *h[2];     /* recurrent ops: (n_batch, n_padded), by step parity */
    float *c;        /* recurrent ops: (n_batch, n_padded) */
    float *out[2];   /* recurrent ops: (n_batch, n_out) compact, by step parity */
} fl_feedback_buffers;

/* What every thread of one generate call reads; only y, the buffers and the team change. */
typedef struct {
    const fl_step_op *ops;
    int n_ops;
    const fl_feedback_buffers *bufs;   /* (n_ops) */
    const fl_rnn_cell_fns *cells;      /* (n_ops), recurrent ops */
    const ptrdiff_t *own_offset;       /* (n_ops): other ops' outputs in a thread's area */
    ptrdiff_t n_batch, width, n_steps;
    float *y;                          /* (n_batch, n_steps, width) */
    float *workspace;                  /* per-thread areas first, per_thread floats each */
    ptrdiff_t per_thread, n_scratch;
    const float *y_first;              /* (n_batch, width): y_1, the input of step 1 */
    int by_units;
    fl_spin_barrier *bar;
    fl_team_join *join;
} fl_feedback_run;

static ptrdiff_t fl_feedback_scratch(const fl_step_op *ops, int n_ops) {
    ptrdiff_t n = 1;
    for (int i = 0; i < n_ops; i++) {
        const ptrdiff_t need = ops[i].kind == FL_STEP_RNN
                                   ? FL_RNN_SCRATCH_ROWS * fl_rnn_padded(ops[i].rnn)
                                   : ops[i].n_out;
        if (need > n) n = need;
    }
    return n;
}

/* Floats per thread: the scratch and the outputs of the ops other than recurrent ones. */
static ptrdiff_t fl_feedback_per_thread(const fl_step_op *ops, int n_ops, ptrdiff_t n_batch) {
    ptrdiff_t n = fl_feedback_scratch(ops, n_ops);
    for (int i = 0; i < n_ops; i++)
        if (ops[i].kind != FL_STEP_RNN) n += n_batch * ops[i].n_out;
    return n;
}

size_t fl_feedback_workspace_floats(const fl_step_op *ops, int n_ops, ptrdiff_t n_batch,
                                    int n_threads) {
    if (ops == NULL || n_ops < 1 || n_batch < 0 || n_threads < 1) return 0;
    const ptrdiff_t n_areas = fl_effective_threads(n_threads);  /* as fl_feedback_generate */
    size_t total = (size_t)(n_areas * fl_feedback_per_thread(ops, n_ops, n_batch)
                            + n_batch * ops[0].n_in);
    for (int i = 0; i < n_ops; i++) {
        if (ops[i].kind == FL_STEP_RNN)
            total += (size_t)(2 * n_batch * ops[i].n_out + 3 * n_batch * fl_rnn_padded(ops[i].rnn));
    }
    return total;
}

/* Rows [r0, r1) and unit blocks [b0, b1) of step k of recurrent op i, and those units of h,
 * compact, into out unless it is NULL. */
static void fl_feedback_rnn_part(const fl_feedback_run *run, int i, const float *x, ptrdiff_t k,
                                 float *out, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t b0,
                                 ptrdiff_t b1, float *scratch) {
    const fl_step_op *op = &run->ops[i];
    const fl_rnn_cell_fns *cell = &run->cells[i];
    const fl_feedback_buffers *buf = &run->bufs[i];
    const ptrdiff_t block_units = fl_rnn_block_units(op->rnn->cell);
    const ptrdiff_t n_padded = fl_rnn_padded(op->rnn), n_units = op->n_out;
    fl_rnn_step_args a;
    a.x = x;
    a.n_timesteps = 1;
    a.t = 0;
    a.n_padded = n_padded;
    a.h_cur = buf->h[(k - 1) & 1];
    a.h_next = buf->h[k & 1];
    a.c = buf->c;
    a.xproj = NULL;
    a.chunk = 1;
    a.step_in_chunk = 0;
    if (cell->whole_rows) {
        fl_rnn_step_whole_rows(cell, op->rnn, &a, r0, r1, scratch);
    } else if (r1 > r0 && b1 > b0) {
        cell->step(op->rnn, &a, r0, r1, b0, b1);
    }
    const ptrdiff_t u0 = b0 * block_units;
    const ptrdiff_t u1 = b1 * block_units < n_units ? b1 * block_units : n_units;
    for (ptrdiff_t r = r0; r < r1 && u1 > u0 && out != NULL; r++)
        memcpy(out + r * n_units + u0, a.h_next + r * n_padded + u0,
               (size_t)(u1 - u0) * sizeof(float));
}

/* Op i, not recurrent, on rows [r0, r1) of src into this thread's own output. */
static int fl_feedback_other_op(const fl_step_op *op, const float *src, float *out, ptrdiff_t r0,
                                ptrdiff_t r1, float *scratch) {
    const ptrdiff_t n_in = op->n_in, n_out = op->n_out, n_rows = r1 - r0;
    if (op->kind == FL_STEP_DENSE)
        return fl_dense_forward(src + r0 * n_in, n_rows, n_in, op->kernel, op->bias, n_out,
                                op->activation, out + r0 * n_out, scratch);
    memcpy(out + r0 * n_out, src + r0 * n_in, (size_t)(n_rows * n_out) * sizeof(float));
    return fl_activation_apply(op->activation, out + r0 * n_out, n_rows, n_out, scratch);
}

/* Steps k0..n_steps-1 on thread tid of n_team; fed is y_{k0-1}, the input of step k0.
 *
 * Split by rows, a thread runs its rows through every step on its own: rows never meet.
 * Split by units, every thread computes its unit blocks of each recurrent op, then they meet at
 * a barrier, after which every thread has the whole output; each thread then runs the ops other
 * than recurrent ones itself, on every row, into its own buffers (a few hundred multiply-adds
 * cost less than a second barrier). One barrier per recurrent op and step suffices because each
 * shared buffer is written only after a barrier that follows its last read (invariant I2):
 * - h: step k reads h[(k - 1) & 1] whole and writes its units of h[k & 1].
 * - a recurrent op's compact output is read by later ops of the step and, when it is the last
 *   op, by the first ops of the next step: out[k & 1] is next written at step k + 2, after the
 *   same op's barrier of step k + 1, which follows every read of it.
 * - with one row, h is its own compact output and h[k & 1] obeys the same rule.
 * - c: each thread reads and writes only its own units. */
static int fl_feedback_steps(const fl_feedback_run *run, int tid, int n_team, const float *fed,
                             ptrdiff_t k0) {
    const ptrdiff_t n_batch = run->n_batch, width = run->width, n_steps = run->n_steps;
    float *area = run->workspace + (ptrdiff_t)tid * run->per_thread;
    float *scratch = area, *own = area + run->n_scratch;
    int sense = 0, rc = FL_OK;
    /* Split by units, thread 0 runs every unit alone until all workers stand on CPUs of their
     * own, then names the first step they share (fl_feedback_generate). */
    int split = !run->by_units || n_team == 1 || tid > 0;
    ptrdiff_t r0 = 0, r1 = n_batch;
    if (!run->by_units) {
        r0 = n_batch * tid / n_team;
        r1 = n_batch * (tid + 1) / n_team;
    }
    const int one_row = n_batch == 1;
    for (ptrdiff_t k = k0; k < n_steps; k++) {
        if (!split) {
            fl_team_hold_join(run->join, k, n_team - 1);
            if (fl_team_all_ready(run->join, n_team - 1)) {
                fl_team_set_start(run->join, k);
                split = 1;
            }
        }
        const int team = split ? n_team : 1;
        const float *src = fed;
        for (int i = 0; i < run->n_ops; i++) {
            const fl_step_op *op = &run->ops[i];
            if (op->kind == FL_STEP_RNN) {
                const ptrdiff_t n_blocks = fl_rnn_padded(op->rnn) / fl_rnn_block_units(op->rnn->cell);
                ptrdiff_t b0 = 0, b1 = n_blocks;
                if (run->by_units) {
                    b0 = n_blocks * tid / team;
                    b1 = n_blocks * (tid + 1) / team;
                }
                float *out = one_row ? NULL : run->bufs[i].out[k & 1];
                fl_feedback_rnn_part(run, i, src, k, out, r0, r1, b0, b1, scratch);
                if (run->by_units && team > 1) fl_barrier_wait(run->bar, team, &sense);
                src = one_row ? run->bufs[i].h[k & 1] : out;
            } else {
                float *out = own + run->own_offset[i];
                const int r = fl_feedback_other_op(op, src, out, r0, r1, scratch);
                if (r != FL_OK) rc = r;
                src = out;
            }
        }
        if (!run->by_units || tid == 0) {
            for (ptrdiff_t r = r0; r < r1; r++)
                memcpy(run->y + (r * n_steps + k) * width, src + r * width,
                       (size_t)width * sizeof(float));
        }
        fed = src;
    }
    if (!split) fl_team_set_start(run->join, n_steps);  /* never joined */
    return rc;
}

#ifdef _OPENMP
/* A worker of a team split by units, joining late: the input of step `start`, which thread 0
 * ran alone up to (its writes published by the start flag). Everything else it needs follows
 * from the step number (I1). */
static const float *fl_feedback_join_input(const fl_feedback_run *run, int tid,
                                           ptrdiff_t start) {
    const int last = run->n_ops - 1;
    if (start == 1) return run->y_first;  /* no step run yet */
    if (run->ops[last].kind == FL_STEP_RNN)
        return run->n_batch == 1 ? run->bufs[last].h[(start - 1) & 1]
                                 : run->bufs[last].out[(start - 1) & 1];
    float *own_last = run->workspace + (ptrdiff_t)tid * run->per_thread + run->n_scratch
                      + run->own_offset[last];
    for (ptrdiff_t r = 0; r < run->n_batch; r++)
        memcpy(own_last + r * run->width, run->y + (r * run->n_steps + start - 1) * run->width,
               (size_t)run->width * sizeof(float));
    return own_last;
}

/* One thread of the team. */
static int fl_feedback_thread(const fl_feedback_run *run, int tid, int n_team) {
    if (tid == 0 || !run->by_units) {
        if (tid > 0) fl_team_worker_hook(run->join);
        const int rc = fl_feedback_steps(run, tid, n_team, run->y_first, 1);
        if (tid == 0) fl_team_release_workers(run->join);
        return rc;
    }
    /* A worker woken after an idle spell may take from ~0.1 to over 1 ms to run here; thread 0
     * does not wait for it but carries on alone (the join). */
    int rc = FL_OK;
    fl_team_seat seat = {0, {0}};
    fl_team_worker_hook(run->join);
    fl_team_claim_cpu(run->join, &seat);
    if (!fl_team_refused(run->join)) fl_team_mark_ready(run->join);
    const ptrdiff_t start = fl_wait_nonzero(&run->join->start);
    if (start < run->n_steps)
        rc = fl_feedback_steps(run, tid, n_team, fl_feedback_join_input(run, tid, start), start);
    fl_team_leave(&seat);
    return rc;
}
#endif

/* Checks the ops; fills cells for the recurrent ones and returns their multiply-adds per row
 * and step, or -1 when an op is malformed. *all_split: every recurrent cell can split units. */
static double fl_feedback_check_ops(const fl_step_op *ops, int n_ops, fl_rnn_cell_fns *cells,
                                    int *all_split) {
    double macs = 0.0;
    *all_split = 1;
    for (int i = 0; i < n_ops; i++) {
        const fl_step_op *op = &ops[i];
        if (op->n_in < 1 || op->n_out < 1 || (i > 0 && op->n_in != ops[i - 1].n_out))
            return -1.0;
        if (op->kind == FL_STEP_RNN) {
            const fl_rnn_params *p = op->rnn;
            if (p == NULL || p->n_features != op->n_in || p->n_units != op->n_out
                || p->cell < 0 || p->cell >= FL_CELL_COUNT || op->h == NULL
                || (op->c == NULL && p->cell == FL_CELL_LSTM)
                || !fl_activation_is_valid(p->activation)
                || !fl_activation_is_valid(p->recurrent_activation))
                return -1.0;
            macs += fl_rnn_gates(p->cell) * (double)(p->n_features + p->n_units) * p->n_units;
            cells[i] = fl_rnn_cell_functions(p);
            if (cells[i].whole_rows) *all_split = 0;
        } else if (op->kind == FL_STEP_DENSE) {
            if (op->kernel == NULL || !fl_activation_is_valid(op->activation)) return -1.0;
        } else if (op->kind != FL_STEP_ACTIVATION || op->n_in != op->n_out
                   || !fl_activation_is_valid(op->activation)) {
            return -1.0;
        }
    }
    return macs;
}

int fl_feedback_generate(const fl_step_op *ops, int n_ops, ptrdiff_t n_batch, ptrdiff_t width,
                         float *y, ptrdiff_t n_steps, float *workspace, int n_threads) {
    if (ops == NULL || n_ops < 1 || n_batch < 0 || width < 1 || n_steps < 0 || n_threads < 1
        || y == NULL || workspace == NULL || ops[0].n_in != width
        || ops[n_ops - 1].n_out != width) {
        return FL_ERR_ARGUMENT;
    }
    /* Per-op tables of this call: one allocation for any number of ops. */
    void *tables = malloc((size_t)n_ops * (sizeof(fl_rnn_cell_fns) + sizeof(fl_feedback_buffers)
                                           + sizeof(ptrdiff_t)));
    if (tables == NULL) return FL_ERR_MEMORY;
    fl_rnn_cell_fns *cells = (fl_rnn_cell_fns *)tables;
    fl_feedback_buffers *bufs = (fl_feedback_buffers *)(cells + n_ops);
    ptrdiff_t *own_offset = (ptrdiff_t *)(bufs + n_ops);
    int all_split;
    const double macs_per_row = fl_feedback_check_ops(ops, n_ops, cells, &all_split);
    if (macs_per_row < 0.0) {
        free(tables);
        return FL_ERR_ARGUMENT;
    }
    if (n_batch == 0 || n_steps < 2) {
        free(tables);
        return FL_OK;
    }

    /* A team split by units meets once per recurrent op and step, and h moves between cores.
     * At batch 1 with 8 features, two threads took 1.25x the time of one for LSTM(32) (5k
     * multiply-adds a step); for LSTM(64) (18k) 0.65x while the team was busy but up to 2x
     * when calls came 60 ms apart (the woken core runs slowly for milliseconds, and the team
     * keeps its pace), so that stays on one thread; LSTM(128) took 0.55-0.8x at every pause.
     * Split by rows, threads never meet. */
    const int n_areas = fl_effective_threads(n_threads);  /* per-thread areas, as sized */
    int nt = n_areas;
    if (macs_per_row * (double)n_batch < FL_FEEDBACK_MIN_MACS_PER_THREAD * nt) nt = 1;
    const int by_units = all_split && n_batch < 4 * (ptrdiff_t)nt;
    if (!by_units && nt > n_batch) nt = (int)n_batch;
    if (by_units) {
        for (int i = 0; i < n_ops; i++)
            if (ops[i].kind == FL_STEP_RNN
                && fl_rnn_padded(ops[i].rnn) / fl_rnn_block_units(ops[i].rnn->cell)
                       < 2 * (ptrdiff_t)nt)
                nt = 1;
    }

    fl_feedback_run run;
    run.ops = ops;
    run.n_ops = n_ops;
    run.bufs = bufs;
    run.cells = cells;
    run.own_offset = own_offset;
    run.n_batch = n_batch;
    run.width = width;
    run.n_steps = n_steps;
    run.y = y;
    run.workspace = workspace;
    run.per_thread = fl_feedback_per_thread(ops, n_ops, n_batch);
    run.n_scratch = fl_feedback_scratch(ops, n_ops);
    run.by_units = by_units;
    ptrdiff_t own = 0;
    float *w = workspace + (ptrdiff_t)n_areas * run.per_thread;
    for (int i = 0; i < n_ops; i++) {
        own_offset[i] = own;
        if (ops[i].kind != FL_STEP_RNN) {
            own += n_batch * ops[i].n_out;
            continue;
        }
        const ptrdiff_t n_padded = fl_rnn_padded(ops[i].rnn), n_units = ops[i].n_out;
        bufs[i].out[0] = w;
        bufs[i].out[1] = w + n_batch * n_units;
        bufs[i].h[0] = w + 2 * n_batch * n_units;
        bufs[i].h[1] = bufs[i].h[0] + n_batch * n_padded;
        bufs[i].c = bufs[i].h[1] + n_batch * n_padded;
        w = bufs[i].c + n_batch * n_padded;
        fl_state_to_padded(ops[i].h, ops[i].c, n_batch, n_units, n_padded, bufs[i].h[0],
                           bufs[i].h[1], bufs[i].c);
    }
    float *y_first = w;
    for (ptrdiff_t r = 0; r < n_batch; r++)
        memcpy(y_first + r * width, y + r * n_steps * width, (size_t)width * sizeof(float));
    run.y_first = y_first;

    int rc = FL_OK;
    fl_spin_barrier bar = {0, 0};
    fl_team_join join;
    run.bar = &bar;
    run.join = &join;
    if (nt <= 1) {
        rc = fl_feedback_steps(&run, 0, 1, y_first, 1);
    } else {
#ifdef _OPENMP
        fl_team_join_init(&join);
        fl_team_note_start();
#pragma omp parallel num_threads(nt)
        {
            const int r = fl_feedback_thread(&run, omp_get_thread_num(), omp_get_num_threads());
#pragma omp critical(fl_feedback_rc)
            if (r != FL_OK) rc = r;
        }
#endif
    }
    /* The last step, n_steps - 1, wrote h[(n_steps - 1) & 1]. */
    for (int i = 0; i < n_ops; i++) {
        if (ops[i].kind != FL_STEP_RNN) continue;
        fl_state_from_padded(bufs[i].h[(n_steps - 1) & 1], bufs[i].c, n_batch, ops[i].n_out,
                             fl_rnn_padded(ops[i].rnn), ops[i].h, ops[i].c);
    }
    free(tables);
    return rc;
}
