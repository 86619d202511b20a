/* Feedback generation (ops.h fl_feedback_generate, run by fastlstm.h fl_stack_generate):
 * y_{k+1} = ops(y_k) through a chain of recurrent, Dense and Activation ops, with a thread team
 * that persists over all the steps (team.h for its invariants). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "rnn_cells.h"
#include "team.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Generation: recurrent multiply-adds per step and thread below which one thread runs alone.
 *
 * A team split by units meets once per recurrent op and step, and h moves between cores. At
 * batch 1 with 8 features, two threads took 1.25x the time of one for LSTM(32) (5k
 * multiply-adds a step); for LSTM(64) (18k) 0.65x while the team was busy but up to 2x when
 * calls came 60 ms apart (the woken core runs slowly for milliseconds, and the team keeps its
 * pace), so that stays on one thread; LSTM(128) took 0.55-0.8x at every pause. Split by rows,
 * threads never meet. */
#ifndef FL_FEEDBACK_MIN_MACS_PER_THREAD
#define FL_FEEDBACK_MIN_MACS_PER_THREAD 32768.0
#endif
static const fl_team_policy fl_feedback_team_policy = {0.0, FL_FEEDBACK_MIN_MACS_PER_THREAD, 0};


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
    const fl_op *ops;
    const fl_op_state *states;         /* (n_ops): each recurrent op's h and c, in/out */
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

static ptrdiff_t fl_feedback_scratch(const fl_op *ops, int n_ops) {
    ptrdiff_t n = 1;
    for (int i = 0; i < n_ops; i++) {
        const ptrdiff_t need = ops[i].kind == FL_OP_RNN
                                   ? FL_RNN_SCRATCH_ROWS * fl_rnn_padded(ops[i].rnn)
                                   : ops[i].n_out;
        if (need > n) n = need;
    }
    return n;
}

/* Floats per thread: the scratch and the outputs of the ops other than recurrent ones. */
static ptrdiff_t fl_feedback_per_thread(const fl_op *ops, int n_ops, ptrdiff_t n_batch) {
    ptrdiff_t n = fl_feedback_scratch(ops, n_ops);
    for (int i = 0; i < n_ops; i++)
        if (ops[i].kind != FL_OP_RNN) n += n_batch * ops[i].n_out;
    return n;
}

size_t fl_feedback_workspace_floats(const fl_stack *s, ptrdiff_t n_batch, int n_threads) {
    const fl_op *ops = s->ops;
    const int n_ops = s->n_ops;
    const ptrdiff_t n_areas = fl_effective_threads(n_threads);  /* as fl_feedback_generate */
    size_t total = (size_t)(n_areas * fl_feedback_per_thread(ops, n_ops, n_batch)
                            + n_batch * s->n_features);
    for (int i = 0; i < n_ops; i++) {
        if (ops[i].kind == FL_OP_RNN)
            total += (size_t)(2 * n_batch * ops[i].n_out + 3 * n_batch * fl_rnn_padded(ops[i].rnn));
    }
    return total;
}

/* Rows [r0, r1) and unit blocks [b0, b1) of step k of recurrent op i, and those units of h,
 * compact, into out unless it is NULL. */
static void fl_feedback_rnn_part(const fl_feedback_run *run, int i, const float *x, ptrdiff_t k,
                                 float *out, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t b0,
                                 ptrdiff_t b1, float *scratch) {
    const fl_op *op = &run->ops[i];
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
    a.reverse = (int)(k & 1);
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
            const fl_op *op = &run->ops[i];
            if (op->kind == FL_OP_RNN) {
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
                const int r = fl_op_rows(op, src + r0 * op->n_in, out + r0 * op->n_out, r1 - r0,
                                         scratch);
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
    if (run->ops[last].kind == FL_OP_RNN)
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

/* Fills cells for the recurrent ops and returns their multiply-adds per row and step.
 * *all_split: every recurrent cell can split units; *min_blocks: the unit blocks of the
 * smallest recurrent op. */
static double fl_feedback_cells(const fl_op *ops, int n_ops, fl_rnn_cell_fns *cells,
                                int *all_split, ptrdiff_t *min_blocks) {
    double macs = 0.0;
    *all_split = 1;
    *min_blocks = PTRDIFF_MAX;
    for (int i = 0; i < n_ops; i++) {
        const fl_rnn_params *p = ops[i].rnn;
        if (ops[i].kind != FL_OP_RNN) continue;
        macs += fl_rnn_gates(p->cell) * (double)(p->n_features + p->n_units) * p->n_units;
        cells[i] = fl_rnn_cell_functions(p);
        if (cells[i].whole_rows) *all_split = 0;
        const ptrdiff_t n_blocks = fl_rnn_padded(p) / fl_rnn_block_units(p->cell);
        if (n_blocks < *min_blocks) *min_blocks = n_blocks;
    }
    return macs;
}

/* The shared buffers in the workspace after the n_areas per-thread areas: per recurrent op its
 * outputs and h by parity and c, holding the op's state padded; then y_1, compact. Fills
 * bufs and own_offset (each other op's output within a thread's area). */
static void fl_feedback_layout(fl_feedback_run *run, int n_areas, fl_feedback_buffers *bufs,
                               ptrdiff_t *own_offset) {
    const fl_op *ops = run->ops;
    const ptrdiff_t n_batch = run->n_batch, width = run->width;
    ptrdiff_t own = 0;
    float *w = run->workspace + (ptrdiff_t)n_areas * run->per_thread;
    for (int i = 0; i < run->n_ops; i++) {
        own_offset[i] = own;
        if (ops[i].kind != FL_OP_RNN) {
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
        fl_state_to_padded(run->states[i].h, run->states[i].c, n_batch, n_units, n_padded,
                           bufs[i].h[0], bufs[i].h[1], bufs[i].c);
    }
    for (ptrdiff_t r = 0; r < n_batch; r++)
        memcpy(w + r * width, run->y + r * run->n_steps * width, (size_t)width * sizeof(float));
    run->bufs = bufs;
    run->own_offset = own_offset;
    run->y_first = w;
}

int fl_feedback_generate(const fl_stack *s, const fl_op_state *states, ptrdiff_t n_batch,
                         float *y, ptrdiff_t n_steps, float *workspace, int n_threads) {
    const fl_op *ops = s->ops;
    const int n_ops = s->n_ops;
    if (n_batch == 0 || n_steps < 2) return FL_OK;
    /* Per-op tables of this call: one allocation for any number of ops. */
    void *tables = malloc((size_t)n_ops * (sizeof(fl_rnn_cell_fns) + sizeof(fl_feedback_buffers)
                                           + sizeof(ptrdiff_t)));
    if (tables == NULL) return FL_ERR_MEMORY;
    fl_rnn_cell_fns *cells = (fl_rnn_cell_fns *)tables;
    fl_feedback_buffers *bufs = (fl_feedback_buffers *)(cells + n_ops);
    int all_split;
    ptrdiff_t min_blocks;
    const double macs_per_row = fl_feedback_cells(ops, n_ops, cells, &all_split, &min_blocks);
    const int n_areas = fl_effective_threads(n_threads);  /* per-thread areas, as sized */
    fl_feedback_run run;
    const int nt = fl_team_plan(&fl_feedback_team_policy, macs_per_row * (double)n_batch, n_batch,
                                min_blocks, all_split, n_areas, &run.by_units);
    run.ops = ops;
    run.states = states;
    run.n_ops = n_ops;
    run.cells = cells;
    run.n_batch = n_batch;
    run.width = s->n_features;
    run.n_steps = n_steps;
    run.y = y;
    run.workspace = workspace;
    run.per_thread = fl_feedback_per_thread(ops, n_ops, n_batch);
    run.n_scratch = fl_feedback_scratch(ops, n_ops);
    fl_feedback_layout(&run, n_areas, bufs, (ptrdiff_t *)(bufs + n_ops));

    int rc = FL_OK;
    fl_spin_barrier bar = {0, 0};
    fl_team_join join;
    run.bar = &bar;
    run.join = &join;
    if (nt <= 1) {
        rc = fl_feedback_steps(&run, 0, 1, run.y_first, 1);
        fl_team_record(1, 0);
    } else {
#ifdef _OPENMP
        int team_size = 1;  /* written by thread 0 only, read after the region's barrier */
        fl_team_join_init(&join);
        fl_team_note_start();
#pragma omp parallel num_threads(nt)
        {
            const int r = fl_feedback_thread(&run, omp_get_thread_num(), omp_get_num_threads());
            if (omp_get_thread_num() == 0) team_size = omp_get_num_threads();
#pragma omp critical(fl_feedback_rc)
            if (r != FL_OK) rc = r;
        }
        /* Split by units, the team shared the steps from join.start on, or none of them. */
        if (!run.by_units) fl_team_record(team_size, 0);
        else if (join.start < n_steps) fl_team_record(team_size, join.start);
        else fl_team_record(1, 0);
#endif
    }
    /* The last step, n_steps - 1, wrote h[(n_steps - 1) & 1]. */
    for (int i = 0; i < n_ops; i++) {
        if (ops[i].kind != FL_OP_RNN) continue;
        fl_state_from_padded(bufs[i].h[(n_steps - 1) & 1], bufs[i].c, n_batch, ops[i].n_out,
                             fl_rnn_padded(ops[i].rnn), states[i].h, states[i].c);
    }
    free(tables);
    return rc;
}
