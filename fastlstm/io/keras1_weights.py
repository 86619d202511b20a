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

Keras 1 GRU maths is Keras 2's ``reset_after=False``. SimpleRNN (W, U, b), Dense (W, b) and
Embedding (W) saved Keras 2's layout under other names. Every per-gate shape is checked against
the layer before anything is read.
"""
from __future__ import annotations

import re
from typing import List, Sequence

import h5py
import numpy as np

from ..errors import ModelFormatError
from .keras_h5 import read_weight

# Gates in the order Keras 1 saved them, and where each goes in the Keras 2 concatenation.
SAVED_GATES = {"LSTM": ("i", "c", "f", "o"), "GRU": ("z", "r", "h")}
KERAS2_GATES = {"LSTM": ("i", "f", "c", "o"), "GRU": ("z", "r", "h")}
PARTS = ("W", "U", "b")


def per_gate_names(class_name: str) -> List[str]:
    """['W_i', 'U_i', 'b_i', 'W_c', ...]: the per-gate arrays in saved order."""
    return [f"{part}_{gate}" for gate in SAVED_GATES[class_name] for part in PARTS]


def _weight_name(w, index: int) -> str:
    if isinstance(w, h5py.Dataset):
        return w.name.rsplit("/", 1)[-1]
    return f"#{index}"


def _count_error(layer, weights) -> ModelFormatError:
    class_name = layer.keras_class
    expected = per_gate_names(class_name)
    names = [_weight_name(w, i) for i, w in enumerate(weights)]
    stems = [re.sub(r":\d+$", "", n) for n in names]
    missing = [e for e in expected if not any(s.endswith("_" + e) for s in stems)]
    note = f"; missing: {', '.join(missing)}" if missing and len(missing) < len(expected) else ""
    return ModelFormatError(
        f"layer {layer.name!r} ({class_name}) in a Keras 1 file: expected its weights per gate, "
        f"{len(expected)} arrays {expected} (consume_less 'cpu' or 'mem'), or concatenated, 3 "
        f"arrays [W, U, b] (consume_less 'gpu'); the file has {len(weights)}: {names}{note}")


def convert(layer, weights: Sequence) -> list:
    """Keras 1 weights of one layer -> Keras 2 ones (unchanged unless per-gate LSTM/GRU)."""
    class_name = layer.keras_class
    if class_name not in SAVED_GATES:
        return list(weights)
    gates = SAVED_GATES[class_name]
    expected = layer.weight_shapes()
    if len(weights) == 3 or len(expected) != 3:
        return list(weights)          # consume_less='gpu' (already concatenated), or no bias
    if len(weights) != 3 * len(gates):
        raise _count_error(layer, weights)
    n_features, units = int(expected[0][0]), int(expected[1][0])
    gate_shapes = {"W": (n_features, units), "U": (units, units), "b": (units,)}
    names = per_gate_names(class_name)
    for i, w in enumerate(weights):
        part = names[i][0]
        if tuple(np.shape(w)) != gate_shapes[part]:
            raise ModelFormatError(
                f"layer {layer.name!r} ({class_name}) in a Keras 1 file: per-gate weight "
                f"{_weight_name(w, i)!r} ({names[i]}) has shape {tuple(np.shape(w))}, expected "
                f"{gate_shapes[part]} like every {part}_* of a layer with {n_features} input "
                f"features and {units} units")
    arrays = {names[i]: read_weight(w, f"weight {_weight_name(w, i)!r} of layer {layer.name!r}")
              for i, w in enumerate(weights)}
    return [np.concatenate([arrays[f"{part}_{gate}"] for gate in KERAS2_GATES[class_name]],
                           axis=-1)
            for part in PARTS]
