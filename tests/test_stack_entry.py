"""The C entry points on recurrent state without c: a GRU or SimpleRNN has no cell state, so
RecurrentKernel.forward (fl_rnn_forward_masked), the stack's forward call and generation's
feedback loop (tests/c/no_cell_state.c) run with c == NULL and give the bits they give with a
c buffer; an LSTM is refused without its c."""
import os
import shutil
import subprocess
import sysconfig

import numpy as np
import pytest

from fastlstm.layers.base import LoadContext
from fastlstm.layers.gru import GRU
from fastlstm.layers.lstm import LSTM
from fastlstm.layers.simple_rnn import SimpleRNN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = shutil.which(os.environ.get("CC", "") or sysconfig.get_config_var("CC").split()[0] or "cc")
NO_C_CELLS = [(GRU, {"reset_after": True}), (GRU, {"reset_after": False}), (SimpleRNN, {})]


def _kernel(cls, n_features, units, **config):
    rng = np.random.default_rng(units)
    layer = cls({"name": "rnn", "units": units, **config}, LoadContext((3, 15)))
    layer.build([(None, None, n_features)])
    layer.set_weights([rng.uniform(-0.5, 0.5, s).astype(np.float32)
                       for s in layer.weight_shapes()])
    return layer.kernel


@pytest.mark.parametrize("cls,config", NO_C_CELLS, ids=["gru", "gru_reset_before", "simple_rnn"])
@pytest.mark.parametrize("n_batch", [1, 9])
@pytest.mark.parametrize("masked", [False, True])
def test_recurrent_kernel_runs_without_c(cls, config, n_batch, masked):
    kernel = _kernel(cls, 5, 70, **config)
    rng = np.random.default_rng(n_batch)
    x = rng.uniform(-1, 1, (n_batch, 40, 5)).astype(np.float32)
    h0 = rng.uniform(-1, 1, (n_batch, 70)).astype(np.float32)
    mask = (rng.uniform(size=(n_batch, 40)) < 0.7).astype(np.uint8) if masked else None
    h_want, out_want = h0.copy(), np.empty((n_batch, 40, 70), np.float32)
    kernel.forward(x, h_want, np.zeros_like(h0), out_want, True, False, 1, mask)
    for n_threads in (1, 2):
        h, out = h0.copy(), np.empty_like(out_want)
        kernel.forward(x, h, None, out, True, False, n_threads, mask)
        assert np.array_equal(out, out_want) and np.array_equal(h, h_want)


def test_lstm_kernel_needs_c():
    kernel = _kernel(LSTM, 5, 16)
    x = np.zeros((2, 3, 5), np.float32)
    with pytest.raises(ValueError, match=r"an LSTM needs its state c of shape \(2, 16\)"):
        kernel.forward(x, np.zeros((2, 16), np.float32), None, np.empty((2, 16), np.float32),
                       False, False, 1)


def _build(exe):
    """tests/c/no_cell_state.c and src/*.c, with OpenMP when the compiler has it."""
    sources = [os.path.join(ROOT, "tests", "c", "no_cell_state.c")] + sorted(
        os.path.join(ROOT, "src", f) for f in os.listdir(os.path.join(ROOT, "src"))
        if f.endswith(".c"))
    base = [CC, "-std=c99", "-O1", "-I", os.path.join(ROOT, "src"), "-o", str(exe)]
    for openmp in (["-fopenmp"], []):
        result = subprocess.run(base + openmp + sources + ["-lm"], capture_output=True, text=True)
        if result.returncode == 0:
            return
    pytest.fail(result.stderr)


@pytest.mark.skipif(CC is None, reason="no C compiler on PATH")
def test_stack_entry_points_run_gru_and_simple_rnn_without_c(tmp_path):
    exe = tmp_path / "no_cell_state"
    _build(exe)
    result = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
