"""Keras 1 per-gate recurrent weights -> the Keras 2 layout, as Keras 2 converts them on loading.

Keras 1.2.2 ``keras/layers/recurrent.py`` builds LSTM and GRU weights per gate unless
``consume_less='gpu'`` (from Keras 1.0.4), which builds them already concatenated
(``W`` (n_features, g*u), ``U`` (u, g*u), ``b`` (g*u,), in the Keras 2 gate order, nothing to
convert). Per gate, an LSTM saves 12 arrays in the order of its ``trainable_weights``, gates
**i, c, f, o**::

    [W_i, U_i, b_i, W_c, U_c, b_c, W_f, U_f, b_f, W_o, U_o, b_o]

and a GRU 9 arrays, gates z, r, h: ``[W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h]``, each
W (n_features, u), U (u, u), b (u,), named ``<layer>_W_i`` (``:0`` appended by TensorFlow).
Keras 2 (tf_keras ``saving/legacy/hdf5_format.py`` ``preprocess_weights_for_loading``, for
``original_keras_version == "1"``; keras 2.2.4 ``keras/engine/saving.py``) concatenates them
along the last axis into Keras 2's gate order i, f, c, o (z, r, h)::

    LSTM: kernel = [w0, w6, w3, w9], recurrent = [w1, w7, w4, w10], bias = [w2, w8, w5, w11]
    GRU:  kernel = [w0, w3, w6],     recurrent = [w1, w4, w7],      bias = [w2, w5, w8]

Keras 1 Convolution1D saved a 4-D kernel that Keras 2 squeezes (:func:`convert_conv1d`);
BatchNormalization saved gamma, beta, running_mean, running_std, Keras 2's order and meaning.
Keras 1 GRU maths is Keras 2's ``reset_after=False``. SimpleRNN (W, U, b), Dense (W, b) and
Embedding (W) saved Keras 2's layout under other names. Every per-gate shape is checked against
the layer before anything is read. Keras tests ``layer.__class__.__name__``; here the layer gives
both gate orders (``keras1_saved_gates`` and ``gate_order`` of LSTM and GRU in fastlstm/layers).
"""
from __future__ import annotations

import re
from typing import List, Sequence

import h5py
import numpy as np

from ..errors import ModelFormatError
from .keras_h5 import read_weight

PARTS = ("W", "U", "b")


def per_gate_names(saved_gates: Sequence[str]) -> List[str]:
    """['W_i', 'U_i', 'b_i', 'W_c', ...]: the per-gate arrays in saved order."""
    return [f"{part}_{gate}" for gate in saved_gates for part in PARTS]


def _weight_name(w, index: int) -> str:
    if isinstance(w, h5py.Dataset):
        return w.name.rsplit("/", 1)[-1]
    return f"#{index}"


def _count_error(weights, expected: List[str], where: str) -> ModelFormatError:
    names = [_weight_name(w, i) for i, w in enumerate(weights)]
    stems = [re.sub(r":\d+$", "", n) for n in names]
    missing = [e for e in expected if not any(s.endswith("_" + e) for s in stems)]
    note = f"; missing: {', '.join(missing)}" if missing and len(missing) < len(expected) else ""
    return ModelFormatError(
        f"{where}: expected its weights per gate, {len(expected)} arrays {expected} "
        f"(consume_less 'cpu' or 'mem'), or concatenated, 3 arrays [W, U, b] (consume_less "
        f"'gpu'); the file has {len(weights)}: {names}{note}")


def convert(weights: Sequence, *, saved_gates: Sequence[str], gate_order: Sequence[str],
            expected: Sequence[Sequence[int]], name: str, class_name: str) -> list:
    """Keras 1 weights of one recurrent layer -> Keras 2 ones: ``saved_gates`` in the order
    Keras 1 saved them, ``gate_order`` the layer's own, ``expected`` its weight shapes;
    ``name`` and ``class_name`` name it in messages. Unchanged when already concatenated."""
    if len(weights) == 3 or len(expected) != 3:
        return list(weights)          # consume_less='gpu' (already concatenated), or no bias
    names = per_gate_names(saved_gates)
    where = f"layer {name!r} ({class_name}) in a Keras 1 file"
    if len(weights) != len(names):
        raise _count_error(weights, names, where)
    n_features, units = int(expected[0][0]), int(expected[1][0])
    gate_shapes = {"W": (n_features, units), "U": (units, units), "b": (units,)}
    for i, w in enumerate(weights):
        part = names[i][0]
        if tuple(np.shape(w)) != gate_shapes[part]:
            raise ModelFormatError(
                f"{where}: per-gate weight {_weight_name(w, i)!r} ({names[i]}) has shape "
                f"{tuple(np.shape(w))}, expected {gate_shapes[part]} like every {part}_* of a "
                f"layer with {n_features} input features and {units} units")
    arrays = {names[i]: read_weight(w, f"weight {_weight_name(w, i)!r} of layer {name!r}")
              for i, w in enumerate(weights)}
    return [np.concatenate([arrays[f"{part}_{gate}"] for gate in gate_order], axis=-1)
            for part in PARTS]


def convert_conv1d(weights: Sequence, *, expected: Sequence[int], name: str) -> list:
    """Keras 1 Convolution1D weights -> Conv1D ones, ``expected`` the layer's kernel shape
    (kernel_size, input_dim, filters) (keras 2.2.4 keras/engine/saving.py
    ``preprocess_weights_for_loading``, original_keras_version '1', Conv1D): Keras 1.2 built its
    kernel as a 2-D one, (filter_length, 1, input_dim, nb_filter) (keras/layers/convolutional.py
    1.2.2 Convolution1D.build, run by ``K.conv2d(..., dim_ordering='tf')``), Keras 1.1 as
    (nb_filter, input_dim, filter_length, 1), which Keras 2 transposes by (2, 3, 1, 0); the
    dummy axis 1 is then dropped. Keras 2 flips Theano kernels only for files recording their
    backend, which Keras 1 files do not (saving.py ``_need_convert_kernel(None)`` is False)."""
    weights = list(weights)
    if not weights:
        return weights
    kernel_size, input_dim, filters = (int(d) for d in expected)
    shape = tuple(np.shape(weights[0]))
    if shape == (kernel_size, input_dim, filters):
        return weights            # already Conv1D's: a weights file that records no version
    if shape == (kernel_size, 1, input_dim, filters):
        transpose = None
    elif shape == (filters, input_dim, kernel_size, 1):
        transpose = (2, 3, 1, 0)
    else:
        raise ModelFormatError(
            f"layer {name!r} (Conv1D) in a Keras 1 file: kernel has shape {shape}, expected "
            f"Keras 1.2's ({kernel_size}, 1, {input_dim}, {filters}) or Keras 1.1's "
            f"({filters}, {input_dim}, {kernel_size}, 1) for this layer")
    kernel = read_weight(weights[0], f"kernel of layer {name!r}")
    if transpose is not None:
        kernel = np.transpose(kernel, transpose)
    return [np.ascontiguousarray(kernel[:, 0, :, :])] + weights[1:]
