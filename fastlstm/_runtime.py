"""Process-wide settings: thread count and kernel path (portable C or AVX2+FMA)."""
from __future__ import annotations

import os
import platform
import warnings

import numpy as np

from . import _kernels

# OMP_NUM_THREADS is read once by the OpenMP runtime; cache its answer (this is read on every
# predict call).
_kernels.set_threads(max(1, _kernels.default_num_threads()))


def set_num_threads(n: int) -> None:
    """Threads for the kernels.

    Parameters
    ----------
    n : int
        >= 1 (default: OMP_NUM_THREADS, else all cores); more than the processors available
        counts as all of them (see :func:`get_num_threads`). Results are bitwise identical for
        any count; threadpoolctl's ``threadpool_limits(user_api="openmp")`` sets it too.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"number of threads must be an integer >= 1, got {n!r}")
    if n > 1 and _kernels.fork_serial():
        warnings.warn(
            "fastlstm: this process was forked after a multi-threaded fastlstm call, and the "
            "OpenMP runtime's threads (GNU libgomp) do not survive fork: it stays on 1 thread. "
            "Start workers with the 'spawn' or 'forkserver' method, or fork before the first "
            "multi-threaded call, to use several threads per worker.", RuntimeWarning,
            stacklevel=2)
    # More threads than processors would only time-share them; the kernels use at most
    # get_num_threads() and size their workspaces for that.
    _kernels.set_threads(int(n))


def get_num_threads() -> int:
    """Threads the kernels use: what :func:`set_num_threads` asked for, at most the processors
    available, and 1 in a process forked after a multi-threaded call (GNU libgomp's threads do
    not survive fork)."""
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
        ``avx2_compiled``, ``cpu_has_avx2_fma``, ``num_threads``, ``fork_serial`` (this
        process was forked after a multi-threaded call and runs on one thread), ``machine``.
    """
    return {
        "version": __import__("fastlstm").__version__,
        "openmp": _kernels.has_openmp(),
        "kernel_path": _kernels.get_isa(),
        "avx2_compiled": _kernels.avx2_compiled(),
        "cpu_has_avx2_fma": _kernels.cpu_has_avx2_fma(),
        "num_threads": get_num_threads(),
        "fork_serial": _kernels.fork_serial(),
        "machine": platform.machine(),
    }


_apply_environment()
