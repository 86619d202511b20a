"""Process-wide settings: thread count and the kernels' instruction set (portable C, AVX2+FMA,
AVX-512)."""
from __future__ import annotations

import os
import platform
import threading
import warnings

import numpy as np

from . import _kernels
from .activations import c_activation

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


ISAS = _kernels.ISA_NAMES  # in fallback order
# Names of earlier releases: "avx2+fma" was the AVX2 path's.
_ALIASES = {"avx2+fma": "avx2"}
_tested = {"portable": True}   # ISA -> whether its self-test passed in this process
# Serialises choosing an ISA: the self-test switches the process-wide ISA while it compares.
_choosing = threading.Lock()


def set_isa(name: str) -> None:
    """The instruction set the kernels use: "portable", "avx2" or "avx512".

    The first time an ISA is chosen its kernels are checked against the portable ones on a few
    known inputs (about a millisecond); if they disagree, a RuntimeWarning says so and the next ISA
    down is used instead. ValueError when this build or this CPU lacks ``name``
    (``build_info()["isas_supported"]`` lists what runs here). The environment variable
    ``FASTLSTM_ISA`` sets it at import."""
    if not isinstance(name, str) or _ALIASES.get(name, name) not in ISAS:
        raise ValueError(f"instruction set must be one of {list(ISAS)}, got {name!r}")
    name = _ALIASES.get(name, name)
    with _choosing:
        _kernels.set_isa(name)
        while not _self_test(name):
            name = ISAS[ISAS.index(name) - 1]
            _kernels.set_isa(name)


def set_kernel_path(name: str) -> None:
    """The former name of :func:`set_isa`."""
    set_isa(name)


def _self_test(name: str) -> bool:
    """Known answers for the ISA's kernels: each cell and a Dense layer on small random inputs,
    against the portable path (the same bodies compiled without the ISA's instructions, and
    without FMA on most targets), within float32 rounding. Catches a miscompiled or wrongly
    detected instantiation; the bodies themselves are checked against Keras by the test suite.
    Once per ISA and process."""
    if name not in _tested:
        try:
            got = _known_answers()
            _kernels.set_isa("portable")
            want = _known_answers()
        finally:
            _kernels.set_isa(name)
        bad = [what for what, (g, w) in enumerate(zip(got, want))
               if not np.allclose(g, w, rtol=1e-4, atol=1e-5)]
        _tested[name] = not bad
        if bad:
            warnings.warn(f"fastlstm: the {name} kernels disagree with the portable ones on "
                          f"their self-test ({len(bad)} of {len(got)} checks); using "
                          f"{ISAS[ISAS.index(name) - 1]} instead", RuntimeWarning, stacklevel=3)
    return _tested[name]


def _known_answers() -> list:
    from .layers.packing import pack_for_self_test

    rng = np.random.default_rng(20261207)
    out = []
    for cell in ("lstm", "gru", "gru_reset_before", "simple"):
        for n_batch in (1, 15):  # one row (blocks at once), register blocks with an odd rest
            kernel, n_features, n_units = pack_for_self_test(cell, rng)
            x = rng.uniform(-1, 1, (n_batch, 3, n_features)).astype(np.float32)
            h = np.zeros((n_batch, n_units), np.float32)
            c = np.zeros_like(h) if cell == "lstm" else None
            y = np.empty((n_batch, 3, n_units), np.float32)
            kernel.forward(x, h, c, y, True, False, 1)
            out.append(y)
    x = rng.uniform(-1, 1, (5, 40)).astype(np.float32)
    w = rng.uniform(-0.3, 0.3, (40, 24)).astype(np.float32)
    out.append(_kernels.dense_forward(x, w, np.zeros(24, np.float32), c_activation("tanh", 3)))
    return out


def _apply_environment() -> None:
    # FASTLSTM_ISA picks the kernels (portable, avx2, avx512); FASTLSTM_FORCE_PORTABLE=1, its
    # older form, runs the portable C path even on an AVX2 CPU, so every path can be tested
    # on one machine.
    # The newer variable wins; a value this machine cannot run warns and keeps the best one, so
    # that a setting shared by machines of several kinds never breaks the import.
    wanted = os.environ.get("FASTLSTM_ISA", "").strip().lower()
    if not wanted and os.environ.get("FASTLSTM_FORCE_PORTABLE", "") not in ("", "0"):
        wanted = "portable"
    best = _kernels.get_isa()
    if wanted:
        try:
            set_isa(wanted)
            return
        except ValueError as e:
            warnings.warn(f"fastlstm: FASTLSTM_ISA={wanted!r} ignored ({e}); using {best}",
                          RuntimeWarning, stacklevel=2)
    set_isa(best)  # the best this CPU runs, self-tested


def build_info() -> dict:
    """How this build runs.

    Returns
    -------
    dict
        ``version``, ``openmp`` (bool), ``isa`` (the instruction set in use: "portable",
        "avx2" or "avx512"), ``isas_compiled`` (what this build has kernels for),
        ``isas_supported`` (what of those this CPU and OS run), ``num_threads``,
        ``fork_serial`` (this process was forked after a multi-threaded call and runs on one
        thread), ``machine``; and, as earlier releases named them, ``kernel_path``
        ("portable", "avx2+fma" or "avx512"), ``avx2_compiled``, ``cpu_has_avx2_fma``.
    """
    return {
        "version": __import__("fastlstm").__version__,
        "openmp": _kernels.has_openmp(),
        "isa": _kernels.get_isa(),
        "kernel_path": {"avx2": "avx2+fma"}.get(_kernels.get_isa(), _kernels.get_isa()),
        "avx2_compiled": "avx2" in _kernels.compiled_isas(),
        "cpu_has_avx2_fma": "avx2" in _kernels.supported_isas(),
        "isas_compiled": _kernels.compiled_isas(),
        "isas_supported": _kernels.supported_isas(),
        "num_threads": get_num_threads(),
        "fork_serial": _kernels.fork_serial(),
        "machine": platform.machine(),
    }


_apply_environment()
