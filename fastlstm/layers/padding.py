"""Keras ZeroPadding1D, ZeroPadding2D and Cropping1D (keras/src/layers/reshaping/
zero_padding1d.py, zero_padding2d.py, cropping1d.py; tf_keras layers/reshaping/ the same
names): zeros added before and after the spatial axes, or steps cut from both ends of the steps
axis.

Neither version lets a mask through these layers (none defines compute_mask or
supports_masking), so the mask stops here (padding1d_mask_dropped fixture). ZeroPadding1D takes
data_format in Keras 3 only; tf_keras's pads the steps axis of (batch, steps, features).
"""
from __future__ import annotations

import numpy as np

from .. import budget
from ..errors import ModelFormatError
from . import layer_args
from .base import Layer


def _padded(n, before_after):
    return None if n is None else n + before_after[0] + before_after[1]


def _zero_padded(layer, x, pads):
    """x with pads[axis] = (before, after) zeros around each axis, the output allocated through
    the call budget (budget.call_output)."""
    y = budget.call_output(layer, tuple(_padded(n, p) for n, p in zip(x.shape, pads)))
    y[tuple(slice(a, a + n) for n, (a, _) in zip(x.shape, pads))] = x
    return y


class ZeroPadding1D(Layer):
    keras_class = "ZeroPadding1D"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.padding = layer_args.int_tuple(self, "padding", 2, 1, allow_zero=True)
        self.data_format = layer_args.data_format(self)
        self.steps_axis = layer_args.spatial_axes(self.data_format, 1)[0]

    def compute_output_shapes(self, input_shapes):
        shape = list(layer_args.input_nd(self, input_shapes, 1))
        shape[self.steps_axis] = _padded(shape[self.steps_axis], self.padding)
        return [tuple(shape)]

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        pads = [(0, 0)] * 3
        pads[self.steps_axis] = self.padding
        return [_zero_padded(self, x, pads)]


class ZeroPadding2D(Layer):
    keras_class = "ZeroPadding2D"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        # An int, (symmetric rows, symmetric cols), or ((top, bottom), (left, right)).
        value = config.get("padding", 1)
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ModelFormatError(
                    f"layer {self.name!r} (ZeroPadding2D): padding must be an integer, 2 "
                    f"integers or 2 pairs of integers, got {value!r:.80}")
            rows, cols = value
        else:
            rows = cols = value
        self.padding = (layer_args.int_tuple_value(self, "padding[0]", rows, 2, allow_zero=True),
                        layer_args.int_tuple_value(self, "padding[1]", cols, 2, allow_zero=True))
        self.data_format = layer_args.data_format(self)
        self.spatial_axes = layer_args.spatial_axes(self.data_format, 2)

    def compute_output_shapes(self, input_shapes):
        shape = list(layer_args.input_nd(self, input_shapes, 2))
        for axis, pad in zip(self.spatial_axes, self.padding):
            shape[axis] = _padded(shape[axis], pad)
        return [tuple(shape)]

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        pads = [(0, 0)] * 4
        for axis, pad in zip(self.spatial_axes, self.padding):
            pads[axis] = pad
        return [_zero_padded(self, x, pads)]


class Cropping1D(Layer):
    keras_class = "Cropping1D"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.cropping = layer_args.int_tuple(self, "cropping", 2, 1, allow_zero=True)

    def _too_short(self, n_steps) -> str:
        return (f"layer {self.name!r} (Cropping1D): cropping={self.cropping} leaves nothing of "
                f"{n_steps} steps")

    def compute_output_shapes(self, input_shapes):
        shape = layer_args.input_nd(self, input_shapes, 1)
        n_steps = shape[1]
        if n_steps is None:
            return [shape]
        # keras/src/layers/reshaping/cropping1d.py compute_output_shape refuses a length of 0
        # or less (tf_keras refuses it in call).
        if n_steps - sum(self.cropping) <= 0:
            raise ModelFormatError(self._too_short(n_steps))
        return [(shape[0], n_steps - sum(self.cropping), shape[2])]

    def call(self, inputs, initial_state=None, n_threads=1):
        x = inputs[0]
        n_steps = x.shape[1]
        if sum(self.cropping) >= n_steps:
            raise ValueError(self._too_short(n_steps))
        return [np.ascontiguousarray(x[:, self.cropping[0]:n_steps - self.cropping[1], :])]
