/* Every kernel body, stamped out for one ISA, and that ISA's kernel table: included once by each
 * kernels_<isa>.c after it has set the ISA's names and blocking (simd_body.h). */
#include <string.h>

/* The updates on the 8-lane gate vectors, and on the wider ones of FL_WIDE_UPD_ISA where the
 * ISA has them (a pair left over then takes the 8-lane one). */
#define FL_UPD_ISA FL_GATE_ISA
#define FL_UPD_INLINE FL_GATE_INLINE
#define FL_UPD_PAIRS 1
#include "lstm_update_simd.h"
#include "gru_update_simd.h"
#undef FL_UPD_PAIRS
#undef FL_UPD_INLINE
#undef FL_UPD_ISA
#if FL_WIDE_UPD_PAIRS > 1
#define FL_UPD_ISA FL_WIDE_UPD_ISA
#define FL_UPD_INLINE FL_WIDE_UPD_INLINE
#define FL_UPD_PAIRS FL_WIDE_UPD_PAIRS
#include "lstm_update_simd.h"
#include "gru_update_simd.h"
#undef FL_UPD_PAIRS
#undef FL_UPD_INLINE
#undef FL_UPD_ISA
#endif
#include "lstm_step_simd.h"
#include "gru_step_simd.h"
#include "gru_reset_before_simd.h"
#include "rnn_project_simd.h"
#include "dense_simd.h"
#include "conv_simd.h"

/* The projection's (row, step) groups reuse the steps' row blocking: at most 12 pairs. */
typedef char FL_ISA_NAME(fl_project_rows_fit)[FL_LSTM_ROWS <= 12 && FL_GRU_ROWS <= 12 ? 1 : -1];

const fl_kernel_table FL_ISA_NAME(fl_kernels) = {
    FL_ISA_NAME(fl_lstm_step),           FL_ISA_NAME(fl_simple_rnn_step),
    FL_ISA_NAME(fl_gru_step),            FL_ISA_NAME(fl_gru_reset_before_rows),
    FL_ISA_NAME(fl_rnn_project),         FL_ISA_NAME(fl_dense_rows),
    FL_ISA_NAME(fl_activation_row),     FL_ISA_NAME(fl_conv_positions),
};
