"""Process-wide settings: thread count and kernel path (portable C or AVX2+FMA)."""
from __future__ import annotations

import os
import platform

from . import _kernels

# OMP_NUM_THREADS is read once by the OpenMP runtime; cache its answer (this is read on every
# predict call).
_kernels.set_threads(max(1, _kernels.default_num_threads()))


def set_num_threads(n: int) -> None:
    """Threads for the kernels.

    Parameters
    ----------
    n : int
        >= 1 (default: OMP_NUM_THREADS, else all cores). Results are bitwise identical for any
        count; threadpoolctl's ``threadpool_limits(user_api="openmp")`` sets it too.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"number of threads must be an integer >= 1, got {n!r}")
    _kernels.set_threads(n)


def get_num_threads() -> int:
    """Threads the kernels use (see :func:`set_num_threads`)."""
    return _kernels.get_threads()


def set_kernel_path(name: str) -> None:
    """'portable' or 'avx2+fma' (ValueError when the CPU or the build lacks it)."""
    _kernels.set_isa(name)


def _apply_environment() -> None:
    # FASTLSTM_FORCE_PORTABLE=1 runs the portable C path even on an AVX2 CPU, so both paths can
    # be tested on one machine.
    if os.environ.get("FASTLSTM_FORCE_PORTABLE", "") not in ("", "0"):
        _kernels.set_isa("portable")


def build_info() -> dict:
    """How this build runs.

    Returns
    -------
    dict
        ``version``, ``openmp`` (bool), ``kernel_path`` ("portable" or "avx2+fma"),
        ``avx2_compiled``, ``cpu_has_avx2_fma``, ``num_threads``, ``machine``.
    """
    return {
        "version": __import__("fastlstm").__version__,
        "openmp": _kernels.has_openmp(),
        "kernel_path": _kernels.get_isa(),
        "avx2_compiled": _kernels.avx2_compiled(),
        "cpu_has_avx2_fma": _kernels.cpu_has_avx2_fma(),
        "num_threads": get_num_threads(),
        "machine": platform.machine(),
    }


_apply_environment()
