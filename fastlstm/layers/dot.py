"""Keras Dot (keras/src/layers/merging/dot.py with its batch_dot; tf_keras layers/merging/dot.py
with backend.batch_dot): the batch-wise dot product of two inputs along one axis of each.

``axes`` is an int (the same axis of both, a negative one counted from each input's rank) or a
pair. The output is x's shape without its summed axis, then y's without its batch and summed
axes, e.g. (B, T, d) . (B, T, d) with axes=2 -> (B, T, T) and with axes=1 -> (B, d, d); a
rank-1 result becomes (B, 1). ``normalize`` first l2-normalizes each input along its summed
axis: tf_keras ``tf.linalg.l2_normalize`` (x * rsqrt(max(sum x^2, 1e-12))), Keras 3
``ops.normalize`` (x * min(rsqrt(sum x^2), 1 / epsilon()), epsilon() = 1e-7). The output has no
mask in either version (compute_mask returns None).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError, UnsupportedConfigError
from .base import Layer

TF_L2_EPSILON = np.float32(1e-12)      # tf.linalg.l2_normalize's default epsilon
KERAS3_EPSILON = np.float32(1e-7)      # keras.config.epsilon()


class Dot(Layer):
    keras_class = "Dot"
    supports_masking = False   # compute_mask returns None

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        axes = config.get("axes")
        pair = list(axes) if isinstance(axes, (list, tuple)) else None
        ok = (pair is not None and len(pair) == 2) or pair is None
        values = pair if pair is not None else [axes]
        if not ok or not all(isinstance(a, int) and not isinstance(a, bool) for a in values):
            raise ModelFormatError(f"layer {self.name!r} (Dot): axes must be an integer or a "
                                   f"pair of integers, got {axes!r}")
        self.raw_axes = pair if pair is not None else [axes, axes]
        self.normalize = bool(config.get("normalize", False))
        self.axes = None

    def compute_output_shapes(self, input_shapes):
        if len(input_shapes) != 2:
            raise ModelFormatError(f"layer {self.name!r} (Dot) takes exactly 2 inputs, got "
                                   f"{len(input_shapes)}")
        x, y = (tuple(s) for s in input_shapes)
        if len(x) < 2 or len(y) < 2:
            raise ModelFormatError(f"layer {self.name!r} (Dot): inputs need a batch axis and "
                                   f"at least one more, got {x} and {y}")
        axes = []
        for a, shape in zip(self.raw_axes, (x, y)):
            if not -len(shape) <= a < len(shape):
                raise ModelFormatError(f"layer {self.name!r} (Dot): axis {a} is out of range "
                                       f"for input shape {shape}")
            axes.append(a % len(shape))
        if 0 in axes:
            raise UnsupportedConfigError(f"layer {self.name!r} (Dot): the batch axis (0) cannot "
                                         f"be summed over (axes {self.raw_axes})")
        dx, dy = x[axes[0]], y[axes[1]]
        if dx is not None and dy is not None and dx != dy:
            raise ModelFormatError(f"layer {self.name!r} (Dot): axis {axes[0]} of {x} and axis "
                                   f"{axes[1]} of {y} differ in size ({dx} != {dy})")
        if x[0] is not None and y[0] is not None and x[0] != y[0]:
            raise ModelFormatError(f"layer {self.name!r} (Dot): batch sizes differ: {x}, {y}")
        self.axes = axes
        batch = x[0] if x[0] is not None or self.ctx.keras_major >= 3 else y[0]
        rest = [d for i, d in enumerate(x) if i not in (0, axes[0])] + \
            [d for i, d in enumerate(y) if i not in (0, axes[1])]
        return [(batch,) + tuple(rest or [1])]

    def _l2_normalize(self, x, axis):
        square_sum = np.square(x).sum(axis=axis, keepdims=True)
        if self.ctx.keras_major >= 3:
            inv = np.minimum(np.float32(1) / np.sqrt(square_sum), np.float32(1) / KERAS3_EPSILON)
        else:
            inv = np.float32(1) / np.sqrt(np.maximum(square_sum, TF_L2_EPSILON))
        return x * inv

    def call(self, inputs, initial_state=None, n_threads=1):
        x, y = (np.asarray(v, dtype=np.float32) for v in inputs)
        ax, ay = self.axes
        # Dims unknown at build time (compute_output_shapes) checked on the arrays.
        if x.shape[ax] != y.shape[ay] or x.shape[0] != y.shape[0]:
            raise ValueError(f"layer {self.name!r} (Dot): axis {ax} of the first input and axis "
                             f"{ay} of the second, and their batch sizes, must agree; got "
                             f"shapes {x.shape} and {y.shape}")
        if self.normalize:
            with np.errstate(divide="ignore"):
                x, y = self._l2_normalize(x, ax), self._l2_normalize(y, ay)
        # batch_dot: x's summed axis last, y's second, everything else flattened around a
        # batched matmul.
        xt = np.moveaxis(x, ax, -1)
        yt = np.moveaxis(y, ay, 1)
        batch, depth = xt.shape[0], xt.shape[-1]
        out = np.matmul(xt.reshape(batch, -1, depth), yt.reshape(batch, depth, -1))
        shape = xt.shape[1:-1] + yt.shape[2:]
        return [np.ascontiguousarray(out.reshape((batch,) + (shape or (1,))),
                                     dtype=np.float32)]
