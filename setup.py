"""Build of the C core as one extension module, with OpenMP when the compiler has it.

OpenMP is optional: a compiler without it gets a loud warning and a serial build, never a failed
build (as scikit-learn does). FASTLSTM_NO_OPENMP=1 forces the serial build and FASTLSTM_NO_AVX2=1
leaves the AVX2+FMA (and AVX-512) kernels out, FASTLSTM_NO_AVX512=1 the AVX-512 ones, so
every fallback can be tested on any machine.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

C_SOURCES = ["src/activations.c", "src/conv.c", "src/cpu.c", "src/dense.c", "src/feedback.c",
             "src/kernels_avx2.c", "src/kernels_avx512.c", "src/kernels_portable.c", "src/rnn.c",
             "src/rnn_cells.c", "src/rnn_rows.c", "src/stack.c", "src/team.c"]
BASE_CFLAGS = ["-O3", "-ffp-contract=fast", "-Wall"]


def _compiler_accepts_openmp():
    """Compile and link a tiny OpenMP program with the compiler Python was built with."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
        cmd = cc.split() + ["-fopenmp", src, "-o", os.path.join(tmp, "omp")]
        return subprocess.run(cmd, capture_output=True).returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _openmp_flags():
    if os.environ.get("FASTLSTM_NO_OPENMP") == "1":
        warnings.warn("fastlstm: FASTLSTM_NO_OPENMP=1, building a SERIAL version.")
        return [], []
    if sys.platform != "win32" and _compiler_accepts_openmp():
        return ["-fopenmp"], ["-fopenmp"]
    warnings.warn(
        "\n*** fastlstm: this compiler does not support OpenMP; building a SERIAL version. ***\n"
        "*** Batches will run on one core. Install a compiler with OpenMP (gcc, or clang  ***\n"
        "*** with libomp) and rebuild for multi-core inference.                          ***"
    )
    return [], []


omp_cflags, omp_ldflags = _openmp_flags()
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if os.environ.get("FASTLSTM_NO_AVX2") == "1":
    macros.append(("FASTLSTM_NO_AVX2", "1"))
if os.environ.get("FASTLSTM_NO_AVX512") == "1":
    macros.append(("FASTLSTM_NO_AVX512", "1"))

extensions = [
    Extension(
        "fastlstm._kernels",
        sources=["fastlstm/_kernels.pyx"] + C_SOURCES,
        include_dirs=["src", numpy.get_include()],
        define_macros=macros,
        extra_compile_args=BASE_CFLAGS + omp_cflags,
        extra_link_args=omp_ldflags,
        depends=[os.path.join("src", f) for f in os.listdir("src") if f.endswith(".h")],
    )
]

setup(ext_modules=cythonize(extensions, language_level=3))
