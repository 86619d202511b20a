"""Keras MaxPooling1D and AveragePooling1D (keras/src/layers/pooling/base_pooling.py, tf_keras
layers/pooling/base_pooling1d.py): a window of pool_size steps moved by strides (None means
pool_size).

padding="same" pads as TensorFlow does (half before, the odd step after), and the padded steps
take no part: a max ignores them and an average divides by the steps actually in the window
(TensorFlow's AvgPool reducer, tensorflow/core/kernels/eigen_pooling.h AvgPoolMeanReducer, counts
only the elements that are not padding; the conv1d_same_strided fixture has windows over both
borders).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from . import layer_args
from .base import Layer
from .conv_ops import conv_output_length, same_padding


class _Pooling1D(Layer):
    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.pool_size = layer_args.one_int(self, "pool_size", 2)
        strides = config.get("strides")
        self.strides = self.pool_size if strides is None else layer_args.one_int(self, "strides")
        self.padding = layer_args.padding(self, ("valid", "same"))
        self.data_format = layer_args.data_format(self)

    def compute_output_shapes(self, input_shapes):
        shape = layer_args.input_3d(self, input_shapes)
        first = self.data_format == "channels_first"
        n_steps = shape[2] if first else shape[1]
        n_out = conv_output_length(n_steps, self.pool_size, self.padding, self.strides)
        if n_out is not None and n_out <= 0:
            raise ModelFormatError(f"layer {self.name!r} ({self.keras_class}): {n_steps} steps "
                                   f"are fewer than pool_size={self.pool_size}")
        return [(shape[0], shape[1], n_out) if first else (shape[0], n_out, shape[2])]

    def _reduce(self, windows, inside, counts):
        raise NotImplementedError

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        if self.data_format == "channels_first":
            x = x.transpose(0, 2, 1)
        n_steps = x.shape[1]
        n_out = conv_output_length(n_steps, self.pool_size, self.padding, self.strides)
        if n_out <= 0:
            raise ValueError(f"layer {self.name!r} ({self.keras_class}): an input of "
                             f"{n_steps} steps is shorter than pool_size={self.pool_size}")
        before = same_padding(n_steps, self.pool_size, self.strides)[0] \
            if self.padding == "same" else 0
        # Each window's in-bounds steps [first, end): at most n_steps of them, however large
        # pool_size is.
        start = np.arange(n_out) * self.strides - before
        first = np.clip(start, 0, n_steps)
        end = np.clip(start + self.pool_size, 0, n_steps)
        steps = first[:, None] + np.arange(min(self.pool_size, n_steps))
        inside = steps < end[:, None]                               # (n_out, width)
        windows = x[:, np.minimum(steps, n_steps - 1), :]           # (batch, n_out, width, ch)
        y = self._reduce(windows, inside[None, :, :, None], end - first)
        if self.data_format == "channels_first":
            y = y.transpose(0, 2, 1)
        return [np.ascontiguousarray(y, dtype=np.float32)]


class MaxPooling1D(_Pooling1D):
    keras_class = "MaxPooling1D"

    def _reduce(self, windows, inside, counts):
        return np.where(inside, windows, -np.inf).max(axis=2)


class AveragePooling1D(_Pooling1D):
    keras_class = "AveragePooling1D"

    def _reduce(self, windows, inside, counts):
        total = np.where(inside, windows, np.float32(0)).sum(axis=2, dtype=np.float32)
        return total / counts.astype(np.float32)[None, :, None]
