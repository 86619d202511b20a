/* AVX-512 (AVX512F) for the kernels' AVX-512 path. Like simd_avx2.h, every function carries the
 * target attribute, so the file compiles without -mavx512f and runs only after the run-time
 * check of the CPU and the OS's register state (cpu.c). Included only where FL_BUILD_AVX512. */
#ifndef FASTLSTM_SIMD_AVX512_H
#define FASTLSTM_SIMD_AVX512_H

#include <immintrin.h>

#define FL_AVX512_FN __attribute__((target("avx512f,avx2,fma")))
#define FL_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx2,fma")))

#endif
