"""Keras GlobalAveragePooling1D/2D and GlobalMaxPooling1D/2D (keras/src/layers/pooling/
global_average_pooling1d.py, global_max_pooling1d.py, global_average_pooling2d.py,
global_max_pooling2d.py; tf_keras layers/pooling/base_global_pooling1d.py,
base_global_pooling2d.py): the mean or max over the spatial axes, each kept as length 1 with
keepdims. Only the 1-D average takes a mask (the 2-D layers support no masking in either
version).
"""
from __future__ import annotations

import numpy as np

from . import layer_args
from .base import Layer


class _GlobalPooling(Layer):
    rank = 1

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.data_format = layer_args.data_format(self)
        self.keepdims = bool(config.get("keepdims", False))
        self.spatial_axes = layer_args.spatial_axes(self.data_format, self.rank)

    def compute_output_shapes(self, input_shapes):
        shape = layer_args.input_nd(self, input_shapes, self.rank)
        if self.keepdims:
            return [tuple(1 if i in self.spatial_axes else d for i, d in enumerate(shape))]
        return [tuple(d for i, d in enumerate(shape) if i not in self.spatial_axes)]

    def _reduce(self, x):
        raise NotImplementedError

    def call(self, inputs, initial_state=None, n_threads=1):
        y = self._reduce(np.asarray(inputs[0], dtype=np.float32))
        return [np.ascontiguousarray(y, dtype=np.float32)]


class _GlobalAveragePooling(_GlobalPooling):
    def _reduce(self, x):
        return x.mean(axis=self.spatial_axes, keepdims=self.keepdims, dtype=np.float32)


class _GlobalMaxPooling(_GlobalPooling):
    def _reduce(self, x):
        # -inf over no steps, TensorFlow's reduce_max identity.
        return x.max(axis=self.spatial_axes, keepdims=self.keepdims, initial=-np.inf)


class GlobalAveragePooling1D(_GlobalAveragePooling):
    keras_class = "GlobalAveragePooling1D"
    uses_mask = True

    def call(self, inputs, initial_state=None, n_threads=1, mask=None):
        if mask is None:
            return super().call(inputs)
        # The mean over the unmasked steps only (both versions' global_average_pooling1d.py):
        # sum(x * mask) / sum(mask), NaN for a row with every step masked, as in Keras.
        x = np.asarray(inputs[0], dtype=np.float32)
        steps_axis = self.spatial_axes[0]
        m = np.expand_dims(np.asarray(mask, bool), 2 if steps_axis == 1 else 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = (np.where(m, x, np.float32(0)).sum(axis=steps_axis, keepdims=self.keepdims)
                 / m.sum(axis=steps_axis, keepdims=self.keepdims, dtype=np.float32))
        return [np.ascontiguousarray(y, dtype=np.float32)]


class GlobalMaxPooling1D(_GlobalMaxPooling):
    keras_class = "GlobalMaxPooling1D"


class GlobalAveragePooling2D(_GlobalAveragePooling):
    keras_class = "GlobalAveragePooling2D"
    rank = 2


class GlobalMaxPooling2D(_GlobalMaxPooling):
    keras_class = "GlobalMaxPooling2D"
    rank = 2
