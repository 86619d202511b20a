/* Naming for the kernel bodies (*_simd.h), which are written once and stamped out per ISA as
 * zstd stamps out its _body functions: a kernels_<isa>.c file sets FL_SIMD_ISA (the ISA of its
 * wide vectors fl_vec_<isa>, FL_VW lanes) and FL_GATE_ISA (the ISA of the 8-lane vectors the
 * state updates work on: the same ISA, or AVX2 for AVX-512's ymm halves), then includes the
 * bodies. FL_ISA_NAME(fl_x) names fl_x_<isa>; FLV(op) is the wide vector operation fl_op_<isa>
 * and FLG(op) the 8-lane one (simd_portable.h, simd_avx2.h, simd_avx512.h); the LSTM update
 * runs on FL_WIDE_UPD_ISA's vectors (the 8-lane ones, or zmm holding two pairs). Internal. */
#ifndef FASTLSTM_SIMD_BODY_H
#define FASTLSTM_SIMD_BODY_H

#define FL_PASTE2(a, b) a##_##b
#define FL_PASTE(a, b) FL_PASTE2(a, b)
#define FL_ISA_NAME(name) FL_PASTE(name, FL_SIMD_ISA)
#define FL_GATE_NAME(name) FL_PASTE(name, FL_GATE_ISA)
#define FLV(op) FL_PASTE(fl_##op, FL_SIMD_ISA)
#define FLG(op) FL_PASTE(fl_##op, FL_GATE_ISA)
#define FL_VEC FL_ISA_NAME(fl_vec)
#define FL_GVEC FL_GATE_NAME(fl_vec)
/* The LSTM update's vectors (lstm_update_simd.h): FL_UPD_ISA's, FL_UPD_PAIRS pairs each. */
#define FL_UPD_NAME(name) FL_PASTE(name, FL_UPD_ISA)
#define FLU(op) FL_PASTE(fl_##op, FL_UPD_ISA)
#define FL_UVEC FL_UPD_NAME(fl_vec)
#define FL_WIDE_UPD_NAME(name) FL_PASTE(name, FL_WIDE_UPD_ISA)
#define FL_WIDE_UVEC FL_WIDE_UPD_NAME(fl_vec)

#if defined(__GNUC__) || defined(__clang__)
#define FL_NOINLINE __attribute__((noinline))
#else
#define FL_NOINLINE
#endif

#endif
