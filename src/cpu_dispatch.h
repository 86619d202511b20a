/* Whether this compiler can build an AVX2+FMA copy of a kernel next to the portable one
 * (GCC/Clang on x86-64, through __attribute__((target))). Internal header. */
#ifndef FASTLSTM_CPU_DISPATCH_H
#define FASTLSTM_CPU_DISPATCH_H

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) \
    && !defined(FASTLSTM_NO_AVX2)
#define FL_BUILD_AVX2 1
#else
#define FL_BUILD_AVX2 0
#endif

/* AVX-512 (AVX512F) copies, where the compiler takes target("avx512f") (GCC >= 5, Clang). */
#if FL_BUILD_AVX2 && !defined(FASTLSTM_NO_AVX512) \
    && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 5))
#define FL_BUILD_AVX512 1
#else
#define FL_BUILD_AVX512 0
#endif

#endif
