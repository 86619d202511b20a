"""Keras Reshape: target_shape excludes the batch axis and may hold one -1."""
from __future__ import annotations

import math

from ..config import MAX_DIM
from ..errors import ModelFormatError
from ..limits import checked_int, shown
from .base import Layer, single_input


class Reshape(Layer):
    keras_class = "Reshape"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        target = config.get("target_shape")
        if not isinstance(target, (list, tuple)) or not target:
            raise ModelFormatError(f"layer {self.name!r} (Reshape): invalid target_shape "
                                   f"{shown(target)}")
        self.target_shape = tuple(self._target_dim(d, i) for i, d in enumerate(target))
        if self.target_shape.count(-1) > 1:
            raise ModelFormatError(f"layer {self.name!r} (Reshape): invalid target_shape "
                                   f"{shown(target)} (more than one -1)")

    def _target_dim(self, dim, i: int) -> int:
        """-1 (the size that makes the element counts agree), else a dimension."""
        if dim == -1 and not isinstance(dim, bool):
            return -1
        return checked_int(dim, f"layer {self.name!r} (Reshape): target_shape[{i}]",
                           maximum=MAX_DIM)

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        # Python ints: a product of several large dimensions would wrap around in int64.
        known = math.prod(d for d in self.target_shape if d != -1)
        if any(d is None for d in shape[1:]):
            if -1 in self.target_shape:
                return [(shape[0],) + tuple(None if d == -1 else d for d in self.target_shape)]
            return [(shape[0],) + self.target_shape]
        total = math.prod(shape[1:])
        if -1 in self.target_shape:
            if total % known:
                raise ModelFormatError(f"layer {self.name!r} (Reshape) cannot reshape {shape} "
                                       f"into {self.target_shape}")
            target = tuple(total // known if d == -1 else d for d in self.target_shape)
        else:
            target = self.target_shape
        if math.prod(target) != total:
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
