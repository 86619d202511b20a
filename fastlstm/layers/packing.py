"""Keras recurrent weights -> the packed layouts of the C cells (src/fastlstm.h), made once at
load: each block of hidden units reads the weights of all its gates for one input row from
contiguous memory, zero-padded to whole blocks."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .. import _kernels

B = _kernels.RNN_BLOCK  # units per vector of a block


def _blocks(w: np.ndarray, n_gates: int, n_units: int, block_units: int) -> np.ndarray:
    """(n_rows, n_gates*n_units) -> (n_blocks, n_rows, n_gates, block_units), zero past n_units."""
    n_rows = w.shape[0]
    n_blocks = -(-n_units // block_units)
    padded = np.zeros((n_rows, n_gates, n_blocks * block_units), dtype=np.float32)
    padded[:, :, :n_units] = w.reshape(n_rows, n_gates, n_units)
    return padded.reshape(n_rows, n_gates, n_blocks, block_units).transpose(2, 0, 1, 3)


def _flat(*parts: np.ndarray) -> np.ndarray:
    """Per-block parts (n_blocks, ...) laid one after the other within each block."""
    n_blocks = parts[0].shape[0]
    return np.ascontiguousarray(np.concatenate([p.reshape(n_blocks, -1) for p in parts], axis=1),
                                dtype=np.float32).ravel()


def pack_lstm(kernel, recurrent, bias, n_units) -> Tuple[np.ndarray, np.ndarray]:
    """Gates i, f, c, o (keras layers/rnn/lstm.py): weights[b][k][g][j], bias[b][g][j]."""
    w = _blocks(np.concatenate([kernel, recurrent]), 4, n_units, B)
    return _flat(w), _flat(_blocks(bias.reshape(1, -1), 4, n_units, B))


def pack_gru(kernel, recurrent, bias, n_units, reset_after: bool):
    """Gates z, r, h (keras layers/rnn/gru.py). reset_after: bias (2, 3*units), rows of x and
    h each give z, r, h; the bias vectors are b_in_z + b_rec_z, b_in_r + b_rec_r, b_in_h and
    b_rec_h (kept apart: Keras multiplies the recurrent candidate, bias included, by r).
    reset_before: bias (3*units,); rows of h give z, r, then separately h for the second pass."""
    x_part = _blocks(kernel, 3, n_units, B)
    if reset_after:
        b_in, b_rec = bias[0], bias[1]
        u = n_units
        b4 = np.concatenate([b_in[:2 * u] + b_rec[:2 * u], b_in[2 * u:], b_rec[2 * u:]])
        return (_flat(x_part, _blocks(recurrent, 3, n_units, B)),
                _flat(_blocks(b4.reshape(1, -1), 4, n_units, B)))
    u = n_units
    b4 = np.concatenate([bias, np.zeros(u, np.float32)])
    return (_flat(x_part, _blocks(recurrent[:, :2 * u], 2, u, B),
                  _blocks(recurrent[:, 2 * u:], 1, u, B)),
            _flat(_blocks(b4.reshape(1, -1), 4, u, B)))


def pack_simple_rnn(kernel, recurrent, bias, n_units):
    """One gate (keras layers/rnn/simple_rnn.py) in blocks of 4 vectors: weights[b][k][q*8+j]."""
    block = _kernels.rnn_block_units(_kernels.CELLS["simple"])
    w = _blocks(np.concatenate([kernel, recurrent]), 1, n_units, block)
    return _flat(w), _flat(_blocks(bias.reshape(1, -1), 1, n_units, block))


def pack_for_self_test(cell: str, rng) -> Tuple["_kernels.RecurrentKernel", int, int]:
    """A kernel of this cell with random Keras-layout weights, for an instruction set's
    known-answer test (_runtime.set_isa): 5 features, and units that leave a partial last
    block and several blocks, so that every loop of the kernels runs."""
    n_features, n_units = 5, (72 if cell == "simple" else 44)
    n_gates = {"lstm": 4, "gru": 3, "gru_reset_before": 3, "simple": 1}[cell]
    kernel = rng.uniform(-0.5, 0.5, (n_features, n_gates * n_units)).astype(np.float32)
    recurrent = rng.uniform(-0.5, 0.5, (n_units, n_gates * n_units)).astype(np.float32)
    if cell == "lstm":
        packed = pack_lstm(kernel, recurrent, rng.uniform(-0.5, 0.5, 4 * n_units), n_units)
    elif cell == "simple":
        packed = pack_simple_rnn(kernel, recurrent, rng.uniform(-0.5, 0.5, n_units), n_units)
    else:
        reset_after = cell == "gru"
        bias = rng.uniform(-0.5, 0.5, (2, 3 * n_units) if reset_after else 3 * n_units)
        packed = pack_gru(kernel, recurrent, bias.astype(np.float32), n_units, reset_after)
    from ..activations import c_activation

    tanh, sigmoid = c_activation("tanh", 3), c_activation("sigmoid", 3)
    return (_kernels.RecurrentKernel(_kernels.CELLS[cell], packed[0], packed[1], n_features,
                                     n_units, tanh, sigmoid), n_features, n_units)
