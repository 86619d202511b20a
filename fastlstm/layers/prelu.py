"""Keras PReLU: relu(x) - alpha * relu(-x) with a learned alpha (keras/src/layers/activations/
prelu.py, tf_keras/src/layers/activation/prelu.py, the same in both versions).

alpha has the input's shape without the batch axis, with 1 on each of ``shared_axes``; Keras
sets ``param_shape[i - 1] = 1`` for each shared axis i, as Python indexes a list, so a negative
axis counts from the end of that list. alpha_initializer, alpha_regularizer and alpha_constraint
only matter for training. alpha is a weight (set_weights may change it) and usually one per
channel, so the layer runs on its own, in NumPy, and never inside a compiled chain.
"""
from __future__ import annotations

from typing import List

import numpy as np

from ..errors import ModelFormatError
from .base import Layer, single_input


class PReLU(Layer):
    keras_class = "PReLU"
    supports_masking = True

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        shared = config.get("shared_axes")
        if shared is None:
            shared = []
        elif not isinstance(shared, (list, tuple)):
            shared = [shared]
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in shared):
            raise ModelFormatError(f"layer {self.name!r} (PReLU): shared_axes must be None, an "
                                   f"integer or a list of integers, got {config.get('shared_axes')!r}")
        self.shared_axes: List[int] = list(shared)
        self.alpha_shape = None
        self.alpha = None

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        param_shape = list(shape[1:])
        for axis in self.shared_axes:
            if not -len(param_shape) <= axis - 1 < len(param_shape):
                raise ModelFormatError(
                    f"layer {self.name!r} (PReLU): shared axis {axis} is out of range for input "
                    f"shape {tuple(shape)}")
            param_shape[axis - 1] = 1
        if any(d is None for d in param_shape):
            raise ModelFormatError(
                f"layer {self.name!r} (PReLU): alpha has shape {tuple(param_shape)} from input "
                f"shape {tuple(shape)}; every axis that is not shared must be known")
        alpha_shape = tuple(int(d) for d in param_shape)
        if self.alpha_shape is not None and alpha_shape != self.alpha_shape:
            raise ModelFormatError(f"layer {self.name!r} (PReLU): alpha has shape "
                                   f"{self.alpha_shape}, the input {tuple(shape)} needs "
                                   f"{alpha_shape}")
        self.alpha_shape = alpha_shape
        return [shape]

    def weight_shapes(self):
        return [self.alpha_shape]

    def assign_weights(self, weights):
        self.alpha = weights[0]

    def stack_ops(self, stack) -> bool:
        per = " (a slope per position or channel)" if int(np.prod(self.alpha_shape)) > 1 else ""
        return stack.decline(f"alpha is a weight of shape {self.alpha_shape}{per}, run by numpy")

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        # pos + neg with neg = -alpha * relu(-x), as both versions write it.
        zero = np.float32(0)
        return [np.maximum(x, zero) + (-self.alpha) * np.maximum(-x, zero)]
