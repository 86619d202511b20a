/* Portable vectors for the kernels' portable path (any CPU, any C99 compiler): 8 lanes in plain
 * C, which compilers vectorise for whatever the target has. fma is a * b + c, fused only where
 * the compiler contracts it (-ffp-contract on a target with FMA). Then the vector math
 * (simd_math.h) over them. */
#ifndef FASTLSTM_SIMD_PORTABLE_H
#define FASTLSTM_SIMD_PORTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define FL_PORTABLE_INLINE static inline __attribute__((always_inline))
#else
#define FL_PORTABLE_INLINE static inline
#endif
#define FL_PORTABLE_FN

typedef struct { float v[8]; } fl_vec_portable;

#define FL_PORTABLE_MAP(expr) \
    fl_vec_portable out_;     \
    for (int j = 0; j < 8; j++) out_.v[j] = (expr); \
    return out_

FL_PORTABLE_INLINE fl_vec_portable fl_load_portable(const float *p) { FL_PORTABLE_MAP(p[j]); }
FL_PORTABLE_INLINE void fl_store_portable(float *p, fl_vec_portable x) {
    for (int j = 0; j < 8; j++) p[j] = x.v[j];
}
FL_PORTABLE_INLINE fl_vec_portable fl_set1_portable(float s) { FL_PORTABLE_MAP(s); }
FL_PORTABLE_INLINE fl_vec_portable fl_bcast_portable(const float *p) { FL_PORTABLE_MAP(*p); }
FL_PORTABLE_INLINE fl_vec_portable fl_add_portable(fl_vec_portable a, fl_vec_portable b) {
    FL_PORTABLE_MAP(a.v[j] + b.v[j]);
}
FL_PORTABLE_INLINE fl_vec_portable fl_sub_portable(fl_vec_portable a, fl_vec_portable b) {
    FL_PORTABLE_MAP(a.v[j] - b.v[j]);
}
FL_PORTABLE_INLINE fl_vec_portable fl_mul_portable(fl_vec_portable a, fl_vec_portable b) {
    FL_PORTABLE_MAP(a.v[j] * b.v[j]);
}
FL_PORTABLE_INLINE fl_vec_portable fl_div_portable(fl_vec_portable a, fl_vec_portable b) {
    FL_PORTABLE_MAP(a.v[j] / b.v[j]);
}
/* a * b + c, c - a * b, -(a * b) - c */
FL_PORTABLE_INLINE fl_vec_portable fl_fma_portable(fl_vec_portable a, fl_vec_portable b,
                                                   fl_vec_portable c) {
    FL_PORTABLE_MAP(a.v[j] * b.v[j] + c.v[j]);
}
FL_PORTABLE_INLINE fl_vec_portable fl_fnmadd_portable(fl_vec_portable a, fl_vec_portable b,
                                                      fl_vec_portable c) {
    FL_PORTABLE_MAP(c.v[j] - a.v[j] * b.v[j]);
}
FL_PORTABLE_INLINE fl_vec_portable fl_fnmsub_portable(fl_vec_portable a, fl_vec_portable b,
                                                      fl_vec_portable c) {
    FL_PORTABLE_MAP(-(a.v[j] * b.v[j]) - c.v[j]);
}
/* The second operand when either is NaN, as minps/maxps. */
FL_PORTABLE_INLINE fl_vec_portable fl_min_portable(fl_vec_portable a, fl_vec_portable b) {
    FL_PORTABLE_MAP(a.v[j] < b.v[j] ? a.v[j] : b.v[j]);
}
FL_PORTABLE_INLINE fl_vec_portable fl_max_portable(fl_vec_portable a, fl_vec_portable b) {
    FL_PORTABLE_MAP(a.v[j] > b.v[j] ? a.v[j] : b.v[j]);
}

/* Bit operations on the lanes' float representations. */
FL_PORTABLE_INLINE uint32_t fl_bits_portable(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
FL_PORTABLE_INLINE float fl_from_bits_portable(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
FL_PORTABLE_INLINE fl_vec_portable fl_abs_portable(fl_vec_portable a) {
    FL_PORTABLE_MAP(fl_from_bits_portable(fl_bits_portable(a.v[j]) & 0x7fffffffu));
}
/* y with the sign bit of x set in it (y >= 0). */
FL_PORTABLE_INLINE fl_vec_portable fl_or_sign_portable(fl_vec_portable y, fl_vec_portable x) {
    FL_PORTABLE_MAP(fl_from_bits_portable(fl_bits_portable(y.v[j])
                                          | (fl_bits_portable(x.v[j]) & 0x80000000u)));
}
/* 2^n from k = 1.5 * 2^23 + 127 + n: its low mantissa bits shifted into the exponent. */
FL_PORTABLE_INLINE fl_vec_portable fl_pow2_of_magic_portable(fl_vec_portable k) {
    FL_PORTABLE_MAP(fl_from_bits_portable(fl_bits_portable(k.v[j]) << 23));
}

/* The 8 floats at ptrs[0] + off: one (row, block) pair per vector (lstm_update_simd.h). */
FL_PORTABLE_INLINE fl_vec_portable fl_load_pairs_portable(const float *const *ptrs, ptrdiff_t off) {
    return fl_load_portable(ptrs[0] + off);
}
FL_PORTABLE_INLINE void fl_store_pairs_portable(float *const *ptrs, ptrdiff_t off,
                                                fl_vec_portable x) {
    fl_store_portable(ptrs[0] + off, x);
}

/* The first n lanes (1 <= n <= 8), zeros past them. */
typedef int fl_mask_portable;
FL_PORTABLE_INLINE fl_mask_portable fl_mask_first_portable(int n) { return n; }
FL_PORTABLE_INLINE fl_vec_portable fl_load_masked_portable(const float *p, fl_mask_portable n) {
    FL_PORTABLE_MAP(j < n ? p[j] : 0.0f);
}
FL_PORTABLE_INLINE void fl_store_masked_portable(float *p, fl_vec_portable x, fl_mask_portable n) {
    for (int j = 0; j < n; j++) p[j] = x.v[j];
}
#undef FL_PORTABLE_MAP

#define FL_SIMD_ISA portable
#define FL_SIMD_INLINE FL_PORTABLE_INLINE
#define FL_VW 8
#include "simd_math.h"
#undef FL_VW
#undef FL_SIMD_INLINE
#undef FL_SIMD_ISA

#endif
