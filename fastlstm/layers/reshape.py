"""Keras Reshape: target_shape excludes the batch axis and may hold one -1."""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from .base import Layer, single_input


class Reshape(Layer):
    keras_class = "Reshape"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        target = config.get("target_shape")
        if (not isinstance(target, (list, tuple)) or not target
                or not all(isinstance(d, int) and not isinstance(d, bool) and (d > 0 or d == -1)
                           for d in target)
                or list(target).count(-1) > 1):
            raise ModelFormatError(f"layer {self.name!r} (Reshape): invalid target_shape {target!r}")
        self.target_shape = tuple(target)

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        known = int(np.prod([d for d in self.target_shape if d != -1], dtype=np.int64))
        if any(d is None for d in shape[1:]):
            if -1 in self.target_shape:
                return [(shape[0],) + tuple(None if d == -1 else d for d in self.target_shape)]
            return [(shape[0],) + self.target_shape]
        total = int(np.prod(shape[1:], dtype=np.int64))
        if -1 in self.target_shape:
            if total % known:
                raise ModelFormatError(f"layer {self.name!r} (Reshape) cannot reshape {shape} "
                                       f"into {self.target_shape}")
            target = tuple(total // known if d == -1 else d for d in self.target_shape)
        else:
            target = self.target_shape
        if int(np.prod(target, dtype=np.int64)) != total:
            raise ModelFormatError(f"layer {self.name!r} (Reshape) cannot reshape {shape} into "
                                   f"{self.target_shape}")
        return [(shape[0],) + target]

    def call(self, inputs, initial_state=None, n_threads=1):
        x = inputs[0]
        try:
            return [x.reshape((x.shape[0],) + self.target_shape)]
        except ValueError:
            raise ValueError(f"layer {self.name!r} (Reshape) cannot reshape an input of shape "
                             f"{x.shape} into (batch,) + {self.target_shape}") from None
