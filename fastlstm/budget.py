"""What a model config can make fastlstm allocate, bounded once over the whole graph at load.

Each dimension of a config is capped where it is read (units, batch_shape entries, ...), but
their products are not: a stateful ``LSTM(256)`` with ``batch_shape [2**24, 1, 3]`` declares
32 GiB of carried state in a few bytes of JSON. ``check_budget`` runs after the shapes are
known and before anything sized from them is allocated (``Model.allocate_state`` comes after it).

The bounds are far above real Keras models, whose sizes the memory they were trained in limits,
and far below what would exhaust a machine:

- carried state, MAX_STATE_BYTES = 1 GiB: h (and c for an LSTM), (batch, units) float32
  each, of every stateful layer. Keras trains a stateful model at the batch size it declares and keeps, for
  every timestep, the gates (4 x batch x units for an LSTM) and their gradients, so real states
  take megabytes; 1 GiB is batch x units = 2**27 summed over the layers, e.g. 65536 streams
  through two LSTM(1024).
- weights, MAX_WEIGHT_BYTES = 8 GiB (2**31 float32): loading holds each array as read, as
  float32 and packed for the kernels. Keras trains with the weights, their gradients and two
  Adam moments on one device, 32 GiB for 2**31 parameters.
- the outputs of one call, MAX_CALL_BYTES = 64 GiB: every tensor a call keeps (Model.run holds
  each layer's outputs until it returns) for the smallest call the model accepts: its fixed
  batch if stateful, else one row, and one step where timesteps are not fixed. Training keeps
  these and their gradients on one accelerator, 80 GB at most.

Layers whose config multiplies the size of their input (ZeroPadding1D/2D, UpSampling1D) make
their output with ``call_output``, which checks the shape of the actual call before allocating.
"""
from __future__ import annotations

import math
from typing import Iterator, Tuple

import numpy as np

from .errors import ModelFormatError
from .layers.base import Layer

MAX_STATE_BYTES = 1 << 30
MAX_WEIGHT_BYTES = 1 << 33
MAX_CALL_BYTES = 1 << 36
FLOAT_BYTES = 4

Item = Tuple[Layer, str, int]   # (layer, what of it with its shape, bytes)


def check_budget(model) -> None:
    """Raise ModelFormatError naming the largest layer, its shape and the bound when the carried
    states, the weights or the outputs of one call of ``model`` (a built Model) exceed their
    bounds; nothing is allocated."""
    _check(model, "the carried states of its stateful layers", _state_items(model),
           MAX_STATE_BYTES)
    _check(model, "its weights", _weight_items(model), MAX_WEIGHT_BYTES)
    _check(model, "the outputs of one call", _output_items(model, model.stateful),
           MAX_CALL_BYTES)


def _check(model, what: str, items: Iterator[Item], bound: int) -> None:
    items = list(items)
    total = sum(item[2] for item in items)
    if total <= bound:
        return
    layer, part, n_bytes = max(items, key=lambda item: item[2])
    raise ModelFormatError(
        f"model {model.name!r}: {what} would take {total:,} bytes ({_gib(total)}), above "
        f"fastlstm's bound of {bound:,} bytes ({_gib(bound)}); the largest is layer "
        f"{layer.name!r} ({layer.keras_class}): {part}, {_gib(n_bytes)}")


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / (1 << 30):.3g} GiB"


def _floats(shape) -> int:
    """Elements of a shape; an unknown dimension counts as 1, the least a call can have."""
    return math.prod(1 if d is None else d for d in shape)


def _state_items(model) -> Iterator[Item]:
    # Bidirectional's inner layers and nested models' layers included.
    for layer in model._stateful_layers():
        shape = (layer.batch_size, layer.units)
        names = " and ".join(layer.state_names)
        yield (layer, f"states {names} of shape {shape}" + (" each" if layer.n_states > 1 else ""),
               layer.n_states * _floats(shape) * FLOAT_BYTES)


def _weight_items(model) -> Iterator[Item]:
    for layer in model.leaf_layers():
        if layer.built:
            for shape in layer.weight_shapes():
                yield layer, f"a weight of shape {tuple(shape)}", _floats(shape) * FLOAT_BYTES


def _output_items(model, fixed_batch: bool) -> Iterator[Item]:
    """Every tensor one call computes, nested models' included (Layer.tensor_shapes). Only a
    stateful model fixes its batch; any other takes one row."""
    for key in model.graph.order:
        layer = model.layers[key[0]]
        for shape in layer.tensor_shapes():
            rows = shape[0] if fixed_batch and shape and shape[0] is not None else 1
            yield (layer, f"an output of shape {tuple(shape)}",
                   rows * _floats(shape[1:]) * FLOAT_BYTES)


def call_output(layer: Layer, shape: Tuple[int, ...]):
    """A zeroed float32 array of ``shape`` for one output of ``layer``'s call, sized from the
    actual input (which may exceed what check_budget counted for the dimensions the config
    leaves unknown): refused with the same message as check_budget when it alone is above
    MAX_CALL_BYTES, and a MemoryError that names the layer and the size when the machine
    cannot allocate it."""
    n_bytes = math.prod(shape) * FLOAT_BYTES
    where = f"layer {layer.name!r} ({layer.keras_class}): an output of shape {tuple(shape)}"
    if n_bytes > MAX_CALL_BYTES:
        raise ModelFormatError(
            f"{where} would take {n_bytes:,} bytes ({_gib(n_bytes)}), above fastlstm's bound "
            f"of {MAX_CALL_BYTES:,} bytes ({_gib(MAX_CALL_BYTES)}) for the outputs of one call")
    try:
        return np.zeros(shape, np.float32)
    except MemoryError:
        raise MemoryError(f"{where} takes {n_bytes:,} bytes ({_gib(n_bytes)}), more than "
                          "could be allocated") from None
