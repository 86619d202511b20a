"""Keras max and average pooling over 1, 2 or 3 spatial axes (keras/src/layers/pooling/
base_pooling.py; tf_keras layers/pooling/base_pooling1d.py, base_pooling2d.py,
base_pooling3d.py): a window of pool_size moved by strides (None means pool_size). This module
holds the windowing every pooling layer shares and the 1-D layers; pooling2d.py the 2-D and 3-D
ones.

padding="same" pads as TensorFlow does (half before, the odd step after), and the padded steps
take no part: a max ignores them and an average divides by the steps actually in the window
(TensorFlow's AvgPool reducer, tensorflow/core/kernels/eigen_pooling.h AvgPoolMeanReducer, counts
only the elements that are not padding; the conv1d_same_strided and conv2d_options fixtures have
windows over both borders).

A box window is the product of one window per axis, so pooling reduces one spatial axis at a
time: the max of maxes, and the sum of sums divided by the product of each axis's in-bounds
counts (the box's in-bounds count).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from ..io import keras1_config
from . import layer_args
from .base import Layer
from .conv_ops import conv_output_length, same_padding


def pool_axis(x, axis: int, window: int, stride: int, padding: str, mode: str):
    """x reduced over windows along one axis: (max or sum, in-bounds count per window).

    mode is "max" or "sum". One pass per window offset folds, into every output whose window
    has an in-bounds step at that offset, the strided slice of those steps: only the output
    is allocated, whatever the window, and offsets that meet only padding are skipped.
    Raises ValueError when the axis is shorter than a valid window."""
    n_steps = x.shape[axis]
    n_out = conv_output_length(n_steps, window, padding, stride)
    if n_out <= 0:
        raise ValueError(f"{n_steps} steps are fewer than the window of {window}")
    before = same_padding(n_steps, window, stride)[0] if padding == "same" else 0
    # Each window's in-bounds steps [first, end).
    start = np.arange(n_out) * stride - before
    first = np.clip(start, 0, n_steps)
    end = np.clip(start + window, 0, n_steps)
    shape = list(x.shape)
    shape[axis] = n_out
    y = np.full(shape, -np.inf if mode == "max" else 0, np.float32)
    fold = np.maximum if mode == "max" else np.add
    lead = (slice(None),) * axis
    # Output o at offset j reads step o * stride - before + j, in bounds for o in [o0, o1).
    for j in range(max(0, before - (n_out - 1) * stride), min(window, before + n_steps)):
        o0 = max(0, -((j - before) // stride))
        o1 = min(n_out, (n_steps - 1 + before - j) // stride + 1)
        if o0 >= o1:
            continue
        s0 = o0 * stride - before + j
        into = y[lead + (slice(o0, o1),)]
        fold(into, x[lead + (slice(s0, s0 + (o1 - o0 - 1) * stride + 1, stride),)], out=into)
    return y, end - first


class _Pooling(Layer):
    """Pooling over ``rank`` spatial axes; subclasses set rank and mode ("max" or "average")."""

    rank = 1
    mode = "max"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.pool_size = layer_args.int_tuple(self, "pool_size", self.rank, 2)
        strides = config.get("strides")
        self.strides = self.pool_size if strides is None else \
            layer_args.int_tuple(self, "strides", self.rank)
        self.padding = layer_args.padding(self, ("valid", "same"))
        self.data_format = layer_args.data_format(self)
        self.spatial_axes = layer_args.spatial_axes(self.data_format, self.rank)

    def _too_small(self, spatial) -> str:
        if self.rank == 1:
            return f"{spatial[0]} steps are fewer than pool_size={self.pool_size[0]}"
        return (f"spatial shape {tuple(spatial)} is smaller than pool_size={self.pool_size} "
                f"with padding='valid'")

    def compute_output_shapes(self, input_shapes):
        shape = list(layer_args.input_nd(self, input_shapes, self.rank))
        for axis, window, stride in zip(self.spatial_axes, self.pool_size, self.strides):
            n_out = conv_output_length(shape[axis], window, self.padding, stride)
            if n_out is not None and n_out <= 0:
                spatial = [shape[a] for a in self.spatial_axes]
                raise ModelFormatError(f"layer {self.name!r} ({self.keras_class}): "
                                       f"{self._too_small(spatial)}")
            shape[axis] = n_out
        return [tuple(shape)]

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        spatial = [x.shape[a] for a in self.spatial_axes]
        count = None
        try:
            for axis, window, stride in zip(self.spatial_axes, self.pool_size, self.strides):
                x, n_in = pool_axis(x, axis, window, stride, self.padding,
                                    "max" if self.mode == "max" else "sum")
                count = n_in if count is None else np.multiply.outer(count, n_in)
        except ValueError:
            raise ValueError(f"layer {self.name!r} ({self.keras_class}): an input of shape "
                             f"{inputs[0].shape}: {self._too_small(spatial)}") from None
        if self.mode == "average":
            count = count.astype(np.float32)
            if self.data_format == "channels_last":
                count = count[..., None]
            x = x / count
        return [np.ascontiguousarray(x, dtype=np.float32)]


class MaxPooling1D(_Pooling):
    keras_class = "MaxPooling1D"
    keras1_interface = keras1_config.LEGACY_POOLING1D_SUPPORT


class AveragePooling1D(_Pooling):
    keras_class = "AveragePooling1D"
    keras1_interface = keras1_config.LEGACY_POOLING1D_SUPPORT
    mode = "average"
