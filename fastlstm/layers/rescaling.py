"""Keras Rescaling (keras/src/layers/preprocessing/rescaling.py, tf_keras
layers/preprocessing/image_preprocessing.py Rescaling): ``inputs * scale + offset`` in the
compute dtype (float32), both cast to it first.

``scale`` and ``offset`` are numbers, or in Keras 3 also lists or numpy arrays (its get_config
serializes an array as ``{"class_name": "__numpy__", "config": {"value": [...]}}``), which
broadcast against the input as numpy broadcasting does (channels_last: a list applies along the
last axis; Keras 3 reshapes a list for ``image_data_format() == "channels_first"``, a global
setting no file records, so channels_last is assumed as everywhere in fastlstm).

Masks: Keras 3 sets ``supports_masking = True``; tf_keras's Rescaling does not (its Keras 2
models cannot have a mask arrive there). Not fused into compiled chains: the stack has no
elementwise affine op, and a diagonal Dense would turn an infinite input into NaN (0 * inf).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from ..limits import shown
from .base import Layer, single_input

# Elements of an array given in a config (Rescaling's scale, Normalization's mean/variance).
MAX_CONFIG_ARRAY = 1 << 20


def config_array(layer: Layer, key: str, default=None):
    """A number or array from the config as float32 (None when absent and no default): a JSON
    number, a (nested) list of numbers, or Keras 3's serialized numpy array."""
    value = layer.config.get(key, default)
    if value is None:
        return None
    what = f"layer {layer.name!r} ({layer.keras_class}): {key}"
    if isinstance(value, dict):
        inner = value.get("config")
        if value.get("class_name") != "__numpy__" or not isinstance(inner, dict):
            raise ModelFormatError(f"{what} must be a number, a list of numbers or a serialized "
                                   f"numpy array, got {shown(value)}")
        value = inner.get("value")
    if isinstance(value, bool):
        raise ModelFormatError(f"{what} must be numbers, got {value!r}")
    try:
        array = np.array(value, dtype=object)
        if array.size > MAX_CONFIG_ARRAY:
            raise ModelFormatError(f"{what} has {array.size} elements, more than the "
                                   f"{MAX_CONFIG_ARRAY} fastlstm accepts in a config")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in array.ravel()):
            raise ValueError("not numbers")
        result = np.array(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise ModelFormatError(f"{what} must be a number or a rectangular list of numbers, got "
                               f"{shown(value)}") from None
    if not np.all(np.isfinite(result)):
        raise ModelFormatError(f"{what} must be finite numbers, got {shown(value)}")
    return result.astype(np.float32)


def check_broadcast(layer: Layer, key: str, array: np.ndarray, shape) -> None:
    """``array`` must broadcast onto an input of ``shape`` (unknown dims match anything)."""
    dims = tuple(1 if d is None else d for d in shape)
    trailing = dims[len(dims) - array.ndim:] if array.ndim <= len(dims) else None
    ok = trailing is not None and all(
        a == 1 or a == d or s is None
        for a, d, s in zip(array.shape, trailing, tuple(shape)[len(dims) - array.ndim:]))
    if not ok:
        raise ModelFormatError(f"layer {layer.name!r} ({layer.keras_class}): {key} of shape "
                               f"{array.shape} does not broadcast onto input shape "
                               f"{tuple(shape)}")


class Rescaling(Layer):
    keras_class = "Rescaling"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        if "scale" not in config:
            raise ModelFormatError(f"layer {self.name!r} (Rescaling): the config has no scale")
        self.scale = config_array(self, "scale")
        self.offset = config_array(self, "offset", 0.0)
        self.supports_masking = ctx.keras_major >= 3

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        check_broadcast(self, "scale", self.scale, shape)
        check_broadcast(self, "offset", self.offset, shape)
        return [shape]

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        # Dims the input left unknown at build time: check them on the array itself.
        for key, array in (("scale", self.scale), ("offset", self.offset)):
            if array.ndim > x.ndim or any(a not in (1, d) for a, d in
                                          zip(array.shape[::-1], x.shape[::-1])):
                raise ValueError(f"layer {self.name!r} (Rescaling): {key} of shape "
                                 f"{array.shape} does not broadcast onto the input of shape "
                                 f"{x.shape} (each of its axes, from the last, must be 1 or "
                                 "the input's)")
        return [np.ascontiguousarray(x * self.scale + self.offset, dtype=np.float32)]
