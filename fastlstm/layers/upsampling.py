"""Keras UpSampling1D (keras/src/layers/reshaping/up_sampling1d.py ops.repeat; tf_keras
layers/reshaping/up_sampling1d.py backend.repeat_elements): each step repeated ``size`` times
along the steps axis of (batch, steps, features). No mask passes it in either version (no
compute_mask)."""
from __future__ import annotations

import numpy as np

from .. import budget
from . import layer_args
from .base import Layer, config_int


class UpSampling1D(Layer):
    keras_class = "UpSampling1D"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.size = config_int({"size": config.get("size", 2)}, "size", self.name,
                               maximum=layer_args.MAX_WINDOW)

    def compute_output_shapes(self, input_shapes):
        shape = layer_args.input_nd(self, input_shapes, 1)
        return [(shape[0], None if shape[1] is None else shape[1] * self.size, shape[2])]

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        n_batch, n_steps, n_features = x.shape
        y = budget.call_output(self, (n_batch, n_steps * self.size, n_features))
        y.reshape(n_batch, n_steps, self.size, n_features)[...] = x[:, :, None, :]
        return [y]
