"""Keras Permute (keras/src/layers/reshaping/permute.py, tf_keras layers/reshaping/permute.py):
``dims`` reorders the axes after the batch axis, numbered from 1 (``(2, 1)`` swaps steps and
features)."""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from .base import Layer, single_input


class Permute(Layer):
    keras_class = "Permute"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        dims = config.get("dims")
        if (not isinstance(dims, (list, tuple))
                or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims)
                or sorted(dims) != list(range(1, len(dims) + 1))):
            raise ModelFormatError(f"layer {self.name!r} (Permute): dims must be a permutation "
                                   f"of 1..n (the batch axis excluded), got {dims!r}")
        self.dims = tuple(dims)

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        if len(shape) != len(self.dims) + 1:
            raise ModelFormatError(f"layer {self.name!r} (Permute): dims={list(self.dims)} needs "
                                   f"input of rank {len(self.dims) + 1}, got shape {shape}")
        return [(shape[0],) + tuple(shape[d] for d in self.dims)]

    def call(self, inputs, initial_state=None, n_threads=1):
        return [np.ascontiguousarray(np.transpose(inputs[0], (0,) + self.dims),
                                     dtype=np.float32)]
