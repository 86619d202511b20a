/* The portable instantiation of every kernel body (kernel_bodies.h): 8-lane vectors in plain C
 * (simd_portable.h), for any CPU and compiler. One batch row per register block: the compiler
 * may have only 16 128-bit registers for the 8-lane vectors. */
#include "kernels.h"
#include "simd_portable.h"

#define FL_SIMD_ISA portable
#define FL_GATE_ISA portable
#define FL_SIMD_INLINE FL_PORTABLE_INLINE
#define FL_GATE_INLINE FL_PORTABLE_INLINE
#define FL_SIMD_FN FL_PORTABLE_FN
#define FL_VW 8
#define FL_LSTM_ROWS 1
#define FL_LSTM_ROW_BLOCKS 2
#define FL_LSTM_GATE(acc, g) ((acc)[g])
#define FL_WIDE_UPD_ISA portable
#define FL_WIDE_UPD_INLINE FL_PORTABLE_INLINE
#define FL_WIDE_UPD_PAIRS 1
#define FL_GRU_ROWS 1
#define FL_GRU_ROW_BLOCKS 2

/* z|r as two 8-lane vectors. */
typedef struct { fl_vec_portable lo, hi; } fl_gru_pair_portable;
typedef fl_vec_portable fl_gru_bcast_portable;
FL_PORTABLE_INLINE fl_vec_portable fl_gru_bcast_of_portable(const float *p) {
    return fl_bcast_portable(p);
}
FL_PORTABLE_INLINE fl_vec_portable fl_gru_bcast_gate_portable(fl_vec_portable v) { return v; }
FL_PORTABLE_INLINE fl_gru_pair_portable fl_gru_pload_portable(const float *p) {
    fl_gru_pair_portable v = {fl_load_portable(p), fl_load_portable(p + 8)};
    return v;
}
FL_PORTABLE_INLINE fl_gru_pair_portable fl_gru_pfma_portable(fl_vec_portable v,
                                                             fl_gru_pair_portable w,
                                                             fl_gru_pair_portable acc) {
    acc.lo = fl_fma_portable(v, w.lo, acc.lo);
    acc.hi = fl_fma_portable(v, w.hi, acc.hi);
    return acc;
}
FL_PORTABLE_INLINE fl_vec_portable fl_gru_plo_portable(fl_gru_pair_portable v) { return v.lo; }
FL_PORTABLE_INLINE fl_vec_portable fl_gru_phi_portable(fl_gru_pair_portable v) { return v.hi; }

/* The convolution: 4 positions x 1 vector (the compiler may have only 16 128-bit registers). */
#define FL_CONV_COLS 4
#define FL_CONV_VECS 1

#include "kernel_bodies.h"
