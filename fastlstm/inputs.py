"""What ``predict`` accepts as a model's inputs: an array, a list, or a dict by input name, of
any numeric dtype and layout, checked against the input layers' declared shapes."""
from __future__ import annotations

from typing import List

import numpy as np

from . import _kernels
from .layers.input_layer import InputLayer


def standardize_inputs(graph, x) -> List[np.ndarray]:
    """x as one C-contiguous float32 array per input of graph, in order, each checked."""
    input_layers = graph.input_layers
    n_inputs = len(input_layers)
    if isinstance(x, dict):
        names = [l.name for l in input_layers]
        missing = [n for n in names if n not in x]
        if missing:
            raise ValueError(f"inputs {missing} missing from the dict; expected keys {names}")
        items = [x[n] for n in names]
    elif n_inputs > 1:
        if not isinstance(x, (list, tuple)) or len(x) != n_inputs:
            got = f"a list of {len(x)}" if isinstance(x, (list, tuple)) else type(x).__name__
            raise ValueError(f"model {graph.name!r} takes {n_inputs} inputs "
                             f"{[l.name for l in input_layers]}; got {got}")
        items = list(x)
    elif isinstance(x, (list, tuple)) and len(x) == 1 and np.ndim(x[0]) == len(
            input_layers[0].batch_shape):
        items = [x[0]]
    else:
        items = [x]
    arrays = [as_input_array(item, layer, graph.consumers[layer.name])
              for layer, item in zip(input_layers, items)]
    n = {a.shape[0] for a in arrays}
    if len(n) > 1:
        raise ValueError(f"all inputs must have the same batch size; got "
                         f"{[a.shape[0] for a in arrays]}")
    return arrays


def as_input_array(item, layer: InputLayer, consumers=()) -> np.ndarray:
    """The input as C-contiguous float32, after its shape and, in the dtype the caller gave,
    its values are checked by the layers that take it (consumers)."""
    declared = layer.batch_shape
    try:
        arr = np.asarray(item)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"input {layer.name!r}: could not make an array of shape "
                         f"{shape_text(declared)} from the data ({e})") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"input {layer.name!r} must be numeric with shape "
                        f"{shape_text(declared)}; got dtype {arr.dtype}")
    if arr.ndim != len(declared):
        raise ValueError(f"input {layer.name!r} expects {len(declared)}-D data of shape "
                         f"{shape_text(declared)}; got shape {arr.shape}")
    for axis, (d, g) in enumerate(zip(declared[1:], arr.shape[1:]), start=1):
        if d is not None and d != g:
            what = "timesteps" if axis == 1 and len(declared) == 3 else f"axis {axis}"
            raise ValueError(f"input {layer.name!r} expects shape {shape_text(declared)}; got "
                             f"shape {arr.shape} ({what}: expected {d}, got {g})")
    if arr.ndim == 3 and arr.shape[1] == 0:
        raise ValueError(f"input {layer.name!r} has 0 timesteps; expected at least 1")
    for consumer in consumers:
        consumer.check_input_values(arr)
    return _kernels.as_float32(arr)


def shape_text(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"
