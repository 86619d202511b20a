"""The Keras 3 ops that Functional configs save as nodes to compute masks (keras/src/ops/
numpy.py NotEqual and Any): Masking's mask is any(not_equal(x, mask_value), axis=-1) and
Embedding(mask_zero)'s is not_equal(ids, 0); their outputs reach the next layers as `mask`."""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError, UnsupportedConfigError
from .base import Layer


def _broadcast_shape(a, b):
    if len(a) < len(b):
        a, b = b, a
    b = (1,) * (len(a) - len(b)) + tuple(b)
    return tuple(x if y == 1 else y if x == 1 or x is None else x for x, y in zip(a, b))


class NotEqual(Layer):
    keras_class = "NotEqual"
    is_operation = True

    def compute_output_shapes(self, input_shapes):
        if len(input_shapes) != 2:
            raise ModelFormatError(f"op {self.name!r} (not_equal) takes 2 arguments, got "
                                   f"{len(input_shapes)}")
        return [_broadcast_shape(*input_shapes)]

    def call(self, inputs, initial_state=None, n_threads=1):
        a, b = inputs
        return [np.not_equal(np.asarray(a, np.float32), np.float32(b) if np.isscalar(b) else b)]


class Any(Layer):
    keras_class = "Any"
    is_operation = True

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        axis = config.get("axis")
        if not (axis is None or (isinstance(axis, int) and not isinstance(axis, bool))):
            raise UnsupportedConfigError(f"op {self.name!r} (any): axis {axis!r} is not "
                                         "supported (an int or null)")
        self.axis = axis
        self.keepdims = bool(config.get("keepdims", False))

    def compute_output_shapes(self, input_shapes):
        shape = tuple(input_shapes[0])
        if self.axis is None:
            return [(1,) * len(shape) if self.keepdims else ()]
        if not -len(shape) <= self.axis < len(shape):
            raise ModelFormatError(f"op {self.name!r} (any): axis {self.axis} is out of range "
                                   f"for shape {shape}")
        axis = self.axis % len(shape)
        if self.keepdims:
            return [shape[:axis] + (1,) + shape[axis + 1:]]
        return [shape[:axis] + shape[axis + 1:]]

    def call(self, inputs, initial_state=None, n_threads=1):
        return [np.any(inputs[0], axis=self.axis, keepdims=self.keepdims)]
