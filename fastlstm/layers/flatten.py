"""Keras Flatten: (batch, ...) -> (batch, product of the rest), C order as Keras (channels_last)."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ModelFormatError
from .base import Layer, single_input


class Flatten(Layer):
    keras_class = "Flatten"

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        if any(d is None for d in shape[1:]):
            raise ModelFormatError(f"layer {self.name!r} (Flatten) needs fully known non-batch "
                                   f"dimensions, got input shape {shape}")
        return [(shape[0], math.prod(shape[1:]))]  # Python ints: int64 could wrap around

    def call(self, inputs, initial_state=None, n_threads=1):
        x = inputs[0]
        return [x.reshape(x.shape[0], int(np.prod(x.shape[1:])))]  # also for 0 rows
