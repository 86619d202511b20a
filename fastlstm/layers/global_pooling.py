"""Keras GlobalAveragePooling1D and GlobalMaxPooling1D (keras/src/layers/pooling/
global_average_pooling1d.py, global_max_pooling1d.py; tf_keras layers/pooling/
base_global_pooling1d.py): the mean or max over the steps axis, kept as length 1 with keepdims.
"""
from __future__ import annotations

import numpy as np

from . import layer_args
from .base import Layer


class _GlobalPooling1D(Layer):
    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.data_format = layer_args.data_format(self)
        self.keepdims = bool(config.get("keepdims", False))
        self.steps_axis = 2 if self.data_format == "channels_first" else 1

    def compute_output_shapes(self, input_shapes):
        shape = layer_args.input_3d(self, input_shapes)
        if self.keepdims:
            return [tuple(1 if i == self.steps_axis else d for i, d in enumerate(shape))]
        return [tuple(d for i, d in enumerate(shape) if i != self.steps_axis)]

    def _reduce(self, x):
        raise NotImplementedError

    def call(self, inputs, initial_state=None, n_threads=1):
        y = self._reduce(np.asarray(inputs[0], dtype=np.float32))
        return [np.ascontiguousarray(y, dtype=np.float32)]


class GlobalAveragePooling1D(_GlobalPooling1D):
    keras_class = "GlobalAveragePooling1D"
    uses_mask = True

    def _reduce(self, x):
        return x.mean(axis=self.steps_axis, keepdims=self.keepdims, dtype=np.float32)

    def call(self, inputs, initial_state=None, n_threads=1, mask=None):
        if mask is None:
            return super().call(inputs)
        # The mean over the unmasked steps only (both versions' global_average_pooling1d.py):
        # sum(x * mask) / sum(mask), NaN for a row with every step masked, as in Keras.
        x = np.asarray(inputs[0], dtype=np.float32)
        m = np.expand_dims(np.asarray(mask, bool), 2 if self.steps_axis == 1 else 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = (np.where(m, x, np.float32(0)).sum(axis=self.steps_axis, keepdims=self.keepdims)
                 / m.sum(axis=self.steps_axis, keepdims=self.keepdims, dtype=np.float32))
        return [np.ascontiguousarray(y, dtype=np.float32)]


class GlobalMaxPooling1D(_GlobalPooling1D):
    keras_class = "GlobalMaxPooling1D"

    def _reduce(self, x):
        return x.max(axis=self.steps_axis, keepdims=self.keepdims)
