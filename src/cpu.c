/* Build facts and the run-time choice between the portable and the AVX2+FMA kernels. */
#include "fastlstm.h"
#include "cpu_dispatch.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Chosen once at import by fastlstm/_build_info.py before any kernel runs; later changes come from
 * the user through set_isa, so a plain int is enough (kernels read it once per call). */
static int fl_isa = -1;

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

int fl_avx2_compiled(void) { return FL_BUILD_AVX2; }

int fl_cpu_has_avx2_fma(void) {
#if FL_BUILD_AVX2
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int fl_get_isa(void) {
    if (fl_isa < 0) fl_isa = fl_cpu_has_avx2_fma() ? FL_ISA_AVX2 : FL_ISA_PORTABLE;
    return fl_isa;
}

int fl_set_isa(int isa) {
    if (isa == FL_ISA_PORTABLE) {
        fl_isa = isa;
        return FL_OK;
    }
    if (isa == FL_ISA_AVX2 && fl_cpu_has_avx2_fma()) {
        fl_isa = isa;
        return FL_OK;
    }
    return FL_ERR_ARGUMENT;
}
