"""Keras RepeatVector: (batch, features) -> (batch, n, features)."""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from .base import Layer, config_int, single_input


class RepeatVector(Layer):
    keras_class = "RepeatVector"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.n = config_int(config, "n", self.name, maximum=1 << 20)

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        if len(shape) != 2:
            raise ModelFormatError(f"layer {self.name!r} (RepeatVector) needs 2-D input "
                                   f"(batch, features), got shape {shape}")
        return [(shape[0], self.n, shape[1])]

    def call(self, inputs, initial_state=None, n_threads=1):
        x = inputs[0]
        return [np.ascontiguousarray(np.broadcast_to(x[:, None, :], (x.shape[0], self.n, x.shape[1])))]
