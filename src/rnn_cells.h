/* What the recurrent drivers (rnn.c: sequences, feedback.c: generation) share with the cell
 * kernels (kernels_<isa>.c, stamped out from the *_simd.h bodies, and the whole-row steps of
 * rnn_rows.c): the arguments of one timestep, a layer's functions (rnn_cells.c picks them from
 * the active ISA's kernel table), and the padded state layout. Internal to the C core (not in
 * fastlstm.h). */
#ifndef FASTLSTM_RNN_CELLS_H
#define FASTLSTM_RNN_CELLS_H

#include <stddef.h>

#include "fastlstm.h"

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
    /* Which way the step walks the unit blocks of a single row: backward on odd steps, so that
     * each step starts on the weights the step before read last, still in L1 (a row reads each
     * weight once a step; bench/results/batch1.md). Every unit's arithmetic is the same
     * either way. */
    int reverse;
} fl_rnn_step_args;

/* A single row's unit blocks [b0, b0 + n_blocks) are computed in groups: `wide` blocks at a
 * time (the ISA's register blocking), then pairs, then one. The number of groups, and group j
 * (its first block in *b, its width returned), so that a step can take them in either order. */
static inline ptrdiff_t fl_row_groups(ptrdiff_t n_blocks, int wide) {
    const ptrdiff_t rest = n_blocks % wide;
    return n_blocks / wide + (wide > 2 ? rest / 2 + rest % 2 : rest);
}

static inline int fl_row_group(ptrdiff_t b0, ptrdiff_t n_blocks, int wide, ptrdiff_t j,
                               ptrdiff_t *b) {
    const ptrdiff_t n_wide = n_blocks / wide, rest = n_blocks % wide;
    if (j < n_wide) {
        *b = b0 + j * wide;
        return wide;
    }
    j -= n_wide;
    if (wide > 2 && j < rest / 2) {
        *b = b0 + n_wide * wide + 2 * j;
        return 2;
    }
    *b = b0 + n_blocks - 1;
    return 1;
}

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
static inline double fl_rnn_gates(int cell) {
    return cell == FL_CELL_LSTM ? 4.0 : cell == FL_CELL_SIMPLE ? 1.0 : 3.0;
}

/* Where the unit-parallel schedule's input projection keeps bias + x_t @ kernel of row r, step
 * `step` of the chunk and unit block b: 4 vectors per block for every cell (n_blocks = n_padded
 * / the cell's block units). */
static inline float *fl_rnn_xproj_at(const fl_rnn_step_args *a, ptrdiff_t n_blocks, ptrdiff_t r,
                                     ptrdiff_t step, ptrdiff_t b) {
    return a->xproj + ((r * a->chunk + step) * n_blocks + b) * 4 * FL_RNN_BLOCK;
}

typedef struct {
    fl_rnn_step_fn step;        /* blocks of rows, when the cell's blocks are independent */
    fl_rnn_project_fn project;  /* the unit-parallel schedule's input projection */
    fl_rnn_row_fn row;          /* one whole row */
    fl_rnn_rows_fn rows;        /* several whole rows at once, or NULL: `row` for each */
    int whole_rows;             /* only `row`/`rows` may run: no block split of a step */
} fl_rnn_cell_fns;

static inline ptrdiff_t fl_rnn_padded(const fl_rnn_params *p) {
    const ptrdiff_t bu = fl_rnn_block_units(p->cell);
    return (ptrdiff_t)((p->n_units + bu - 1) / bu) * bu;
}

/* One timestep of whole rows [r0, r1) through cell->rows, or cell->row for each. */
void fl_rnn_step_whole_rows(const fl_rnn_cell_fns *cell, const fl_rnn_params *p,
                            const fl_rnn_step_args *a, ptrdiff_t r0, ptrdiff_t r1,
                            float *scratch);

/* p names a known cell with sizes >= 1 and known activations (what every driver needs before
 * it picks the cell's functions; the weights are checked where they are read). */
int fl_rnn_params_valid(const fl_rnn_params *p);

/* A layer's functions from the active ISA's kernel table (kernels.h); the reset-before GRU has
 * only whole rows. */
fl_rnn_cell_fns fl_rnn_cell_functions(const fl_rnn_params *p);

/* Weight vectors per row of x in a block: 4 for an LSTM (gates) and a SimpleRNN (units), 3 for
 * a GRU (z, r, h). */
static inline int fl_rnn_x_vectors(int cell) {
    return cell == FL_CELL_GRU || cell == FL_CELL_GRU_RESET_BEFORE ? 3 : 4;
}

/* The whole-row steps (rnn_rows.c), one per cell, on every ISA. */
void fl_lstm_step_row(const fl_rnn_params *p, const fl_rnn_step_args *a, ptrdiff_t r,
                      float *scratch);
void fl_simple_rnn_step_row(const fl_rnn_params *p, const fl_rnn_step_args *a, ptrdiff_t r,
                            float *scratch);
void fl_gru_step_row(const fl_rnn_params *p, const fl_rnn_step_args *a, ptrdiff_t r,
                     float *scratch);
void fl_gru_reset_before_step_row(const fl_rnn_params *p, const fl_rnn_step_args *a,
                                  ptrdiff_t r, float *scratch);

/* A layer's state (n_batch, n_units) into the kernels' padded rows: h into h_cur and c into c_pad
 * with zeros past n_units, h_next all zeros (the padding units' weights are zero, so whatever
 * they come to hold is never read into a real unit). */
void fl_state_to_padded(const float *h, const float *c, ptrdiff_t n_batch, ptrdiff_t n_units,
                        ptrdiff_t n_padded, float *h_cur, float *h_next, float *c_pad);

/* The padded rows back into (n_batch, n_units) h and c. */
void fl_state_from_padded(const float *h_pad, const float *c_pad, ptrdiff_t n_batch,
                          ptrdiff_t n_units, ptrdiff_t n_padded, float *h, float *c);

#endif
