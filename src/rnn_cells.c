/* A layer's cell functions from the active ISA's kernel table, the packed sizes and the padded
 * state layout (rnn_cells.h). The kernels themselves are in kernels_<isa>.c and rnn_rows.c. */
#include <string.h>

#include "activations.h"
#include "kernels.h"

int fl_rnn_block_units(int cell) {
    return cell == FL_CELL_SIMPLE ? 4 * FL_RNN_BLOCK : FL_RNN_BLOCK;
}

void fl_rnn_step_whole_rows(const fl_rnn_cell_fns *cell, const fl_rnn_params *p,
                            const fl_rnn_step_args *a, ptrdiff_t r0, ptrdiff_t r1,
                            float *scratch) {
    if (cell->rows != NULL) {
        cell->rows(p, a, r0, r1, scratch);
    } else {
        for (ptrdiff_t r = r0; r < r1; r++) cell->row(p, a, r, scratch);
    }
}

int fl_rnn_params_valid(const fl_rnn_params *p) {
    return p != NULL && p->n_features >= 1 && p->n_units >= 1 && p->cell >= 0
           && p->cell < FL_CELL_COUNT && fl_activation_is_valid(&p->activation)
           && fl_activation_is_valid(&p->recurrent_activation);
}

fl_rnn_cell_fns fl_rnn_cell_functions(const fl_rnn_params *p) {
    const fl_kernel_table *k = fl_kernels();
    fl_rnn_cell_fns f;
    f.project = k->rnn_project;
    f.rows = NULL;
    f.whole_rows = fl_activation_is_rowwise(&p->activation)
                   || (p->cell != FL_CELL_SIMPLE
                       && fl_activation_is_rowwise(&p->recurrent_activation))
                   || p->cell == FL_CELL_GRU_RESET_BEFORE;
    switch (p->cell) {
    case FL_CELL_GRU:
        f.step = k->gru_step;
        f.row = fl_gru_step_row;
        break;
    case FL_CELL_GRU_RESET_BEFORE:
        f.step = NULL;
        f.row = fl_gru_reset_before_step_row;
        f.rows = k->gru_reset_before_rows;
        break;
    case FL_CELL_SIMPLE:
        f.step = k->simple_rnn_step;
        f.row = fl_simple_rnn_step_row;
        break;
    default:
        f.step = k->lstm_step;
        f.row = fl_lstm_step_row;
    }
    return f;
}

/* A layer's state (n_batch, n_units) into the kernels' padded rows: h into h_cur and c into c_pad
 * with zeros past n_units, h_next all zeros (the padding units' weights are zero, so whatever
 * they come to hold is never read into a real unit). */
void fl_state_to_padded(const float *h, const float *c, ptrdiff_t n_batch, ptrdiff_t n_units,
                        ptrdiff_t n_padded, float *h_cur, float *h_next, float *c_pad) {
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
void fl_state_from_padded(const float *h_pad, const float *c_pad, ptrdiff_t n_batch,
                          ptrdiff_t n_units, ptrdiff_t n_padded, float *h, float *c) {
    for (ptrdiff_t r = 0; r < n_batch; r++) {
        memcpy(h + r * n_units, h_pad + r * n_padded, (size_t)n_units * sizeof(float));
        if (c != NULL)
            memcpy(c + r * n_units, c_pad + r * n_padded, (size_t)n_units * sizeof(float));
    }
}

size_t fl_rnn_packed_floats(int cell, ptrdiff_t n_features, ptrdiff_t n_units) {
    if (cell < 0 || cell >= FL_CELL_COUNT || n_features < 1 || n_units < 1) return 0;
    const ptrdiff_t bu = fl_rnn_block_units(cell), n_blocks = (n_units + bu - 1) / bu;
    const ptrdiff_t vectors_per_row = cell == FL_CELL_LSTM || cell == FL_CELL_SIMPLE ? 4 : 3;
    return (size_t)(n_blocks * (n_features + n_units) * vectors_per_row * FL_RNN_BLOCK);
}

