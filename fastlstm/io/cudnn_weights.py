"""CuDNN weight layouts <-> Keras's LSTM/GRU layouts, as Keras 2 converts them on loading.

This follows tf_keras ``saving/legacy/hdf5_format.py`` ``_convert_rnn_weights`` (the same code
as multi-backend Keras 2.1.3-2.2.5 ``keras/engine/saving.py``), which runs on every layer's
weights read from a legacy (``model_weights``) HDF5 file, whatever the file's version.

Layouts (kernel, recurrent_kernel, bias), n_gates g = 4 (LSTM, gates i, f, c, o) or 3 (GRU,
gates z, r, h):

- ``LSTM``: (n_features, 4u), (u, 4u), (4u,).
- ``CuDNNLSTM`` (tf_keras layers/rnn/cudnn_lstm.py; keras 2.2.4 layers/cudnn_recurrent.py): the
  same shapes with the bias (8u,) = [input bias i, f, c, o | recurrent bias i, f, c, o]. The
  layer flattens each gate's (n_features, u) kernel block in C order and cuDNN reads that
  buffer as a row-major (u, n_features) matrix W with ``z = W @ x``: in Keras's terms each
  block is ``k.reshape(u, n_features).T``, which is ``k.T.reshape(k.shape, order="F")``
  (``transpose_input(from_cudnn=True)``). Recurrent blocks are (u, u) and are transposed.
- ``GRU(reset_after=True)``: bias (2, 3u) = [input bias; recurrent bias]. ``CuDNNGRU``
  (tf_keras layers/rnn/cudnn_gru.py): the kernel blocks as for CuDNNLSTM, bias (6u,) =
  [input z, r, h | recurrent z, r, h]. The Keras-side gate order is z, r, h in both (the
  layer hands cuDNN the blocks in its own r, z, h order itself), so no gate is reordered.
- ``GRU(reset_after=False)``: bias (3u,); nothing converts to or from it (Keras refuses).

The source layout is recognised from the bias shape; the target is the layout the layer names
(``weights_layout`` and ``gate_order`` of the recurrent layers in fastlstm/layers answer what
Keras asks of ``layer.__class__.__name__``); a layer without bias is left as it is.
CuDNN -> Keras sums the two LSTM biases (``np.sum(np.split(b, 2), axis=0)``) and reshapes the GRU
bias to (2, 3u); Keras -> CuDNN gives each LSTM bias half (``np.tile(0.5 * b, 2)``) and
flattens the GRU bias. Weights whose kernel or recurrent shapes disagree with the layer are left
unconverted for ``Layer.set_weights`` to report.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from ..errors import ModelFormatError
from .keras_h5 import read_weight


def _per_gate(kernels: np.ndarray, func, n_gates: int) -> np.ndarray:
    """``transform_kernels``: func applied to each gate's column block."""
    return np.hstack([func(k) for k in np.hsplit(kernels, n_gates)])


def _input_from_cudnn(kernel: np.ndarray) -> np.ndarray:
    return kernel.T.reshape(kernel.shape, order="F")


def _input_to_cudnn(kernel: np.ndarray) -> np.ndarray:
    return kernel.T.reshape(kernel.shape, order="C")


def convert_kernels(kernel, recurrent, n_gates: int, from_cudnn: bool):
    """Kernel and recurrent kernel between the CuDNN and the Keras layouts."""
    transform = _input_from_cudnn if from_cudnn else _input_to_cudnn
    return (_per_gate(kernel, transform, n_gates),
            _per_gate(recurrent, np.transpose, n_gates))


def lstm_from_cudnn(weights: Sequence[np.ndarray]) -> List[np.ndarray]:
    """CuDNNLSTM [kernel, recurrent, bias (8u,)] -> LSTM [kernel, recurrent, bias (4u,)]."""
    kernel, recurrent = convert_kernels(weights[0], weights[1], 4, from_cudnn=True)
    return [kernel, recurrent, np.sum(np.split(weights[2], 2, axis=0), axis=0)]


def lstm_to_cudnn(weights: Sequence[np.ndarray]) -> List[np.ndarray]:
    kernel, recurrent = convert_kernels(weights[0], weights[1], 4, from_cudnn=False)
    return [kernel, recurrent, np.tile(0.5 * weights[2], 2)]


def gru_from_cudnn(weights: Sequence[np.ndarray]) -> List[np.ndarray]:
    """CuDNNGRU [kernel, recurrent, bias (6u,)] -> GRU(reset_after=True) [.., bias (2, 3u)]."""
    kernel, recurrent = convert_kernels(weights[0], weights[1], 3, from_cudnn=True)
    return [kernel, recurrent, np.asarray(weights[2]).reshape((2, -1))]


def gru_to_cudnn(weights: Sequence[np.ndarray]) -> List[np.ndarray]:
    kernel, recurrent = convert_kernels(weights[0], weights[1], 3, from_cudnn=False)
    return [kernel, recurrent, np.asarray(weights[2]).reshape(-1)]


def _layouts(n_gates: int, units: int) -> dict:
    """Bias shape -> the layout it identifies (``_convert_rnn_weights``)."""
    if n_gates == 4:
        return {(8 * units,): "CuDNNLSTM", (4 * units,): "LSTM"}
    return {(6 * units,): "CuDNNGRU", (2, 3 * units): "GRU(reset_after=True)",
            (3 * units,): "GRU(reset_after=False)"}


_CONVERTERS = {
    ("CuDNNLSTM", "LSTM"): lstm_from_cudnn,
    ("LSTM", "CuDNNLSTM"): lstm_to_cudnn,
    ("CuDNNGRU", "GRU(reset_after=True)"): gru_from_cudnn,
    ("GRU(reset_after=True)", "CuDNNGRU"): gru_to_cudnn,
}


def convert_rnn_weights(weights: Sequence, *, layout: str, n_gates: int,
                        expected: Sequence[Sequence[int]], name: str) -> list:
    """``_convert_rnn_weights`` for a layer whose weights have this layout (one of the names
    above), n_gates gate blocks and the ``expected`` shapes; ``name`` names it in messages.
    Weights may be unread h5py datasets, read only when they are converted and their shapes
    match the layer."""
    if len(weights) != 3 or len(expected) != 3:
        return list(weights)
    shapes = [tuple(np.shape(w)) for w in weights]
    if shapes[:2] != [tuple(s) for s in expected[:2]]:
        return list(weights)
    units = int(expected[1][0])
    source = _layouts(n_gates, units).get(shapes[2])
    if source is None or source == layout:
        return list(weights)
    convert = _CONVERTERS.get((source, layout))
    if convert is None:  # GRU(reset_after=False) on either side
        raise ModelFormatError(
            f"layer {name!r} ({layout}): the file holds {source} weights (bias shape "
            f"{shapes[2]}), which do not fit a {layout}; Keras refuses this conversion too")
    return convert([read_weight(w, f"weight {i} of layer {name!r}")
                    for i, w in enumerate(weights)])
