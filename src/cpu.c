/* Build facts and the run-time choice between the portable, AVX2+FMA and AVX-512 kernels. */
#include "fastlstm.h"
#include "cpu_dispatch.h"
#include "kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Chosen once at import by fastlstm/_build_info.py before any kernel runs, with its kernel
 * table; later changes come from the user through set_isa, which the Python side serialises.
 * Plain stores: both are aligned words, and every table is complete and lives forever. */
static int fl_isa = -1;
static const fl_kernel_table *fl_active_kernels = &fl_kernels_portable;

int fl_has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fl_default_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int fl_cpu_has_avx2_fma(void) {
#if FL_BUILD_AVX2
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* AVX512F from CPUID, and the OS saving the opmask and all 32 zmm registers on a context
 * switch (XCR0 bits 1, 2, 5, 6, 7: SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM), which CPUID alone
 * does not tell: a kernel or hypervisor may leave them off. */
static int fl_cpu_has_avx512(void) {
#if FL_BUILD_AVX512
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !fl_cpu_has_avx2_fma()) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return (lo & 0xe6u) == 0xe6u;
#else
    return 0;
#endif
}

int fl_isa_compiled(int isa) {
    switch (isa) {
    case FL_ISA_PORTABLE: return 1;
    case FL_ISA_AVX2: return FL_BUILD_AVX2;
    case FL_ISA_AVX512: return FL_BUILD_AVX512;
    default: return 0;
    }
}

int fl_isa_supported(int isa) {
    switch (isa) {
    case FL_ISA_PORTABLE: return 1;
    case FL_ISA_AVX2: return fl_cpu_has_avx2_fma();
    case FL_ISA_AVX512: return fl_cpu_has_avx512();
    default: return 0;
    }
}

/* The table of an ISA this build and CPU run: each ISA's table holds every kernel. */
static const fl_kernel_table *fl_table_of(int isa) {
#if FL_BUILD_AVX512
    if (isa == FL_ISA_AVX512) return &fl_kernels_avx512;
#endif
#if FL_BUILD_AVX2
    if (isa == FL_ISA_AVX2) return &fl_kernels_avx2;
#endif
    (void)isa;
    return &fl_kernels_portable;
}

int fl_get_isa(void) {
    if (fl_isa < 0) {
        int best = FL_ISA_PORTABLE;
        for (int isa = FL_ISA_PORTABLE + 1; isa < FL_ISA_COUNT; isa++)
            if (fl_isa_supported(isa)) best = isa;
        fl_active_kernels = fl_table_of(best);
        fl_isa = best;
    }
    return fl_isa;
}

const fl_kernel_table *fl_kernels(void) {
    if (fl_isa < 0) fl_get_isa();
    return fl_active_kernels;
}

int fl_set_isa(int isa) {
    if (!fl_isa_supported(isa)) return FL_ERR_ARGUMENT;
    fl_active_kernels = fl_table_of(isa);
    fl_isa = isa;
    return FL_OK;
}
