"""Keras Activation layer."""
from __future__ import annotations

from ..activations import SHAPE_CHANGING, c_activation, activation_name, apply_activation
from .base import Layer, single_input


class Activation(Layer):
    keras_class = "Activation"
    supports_masking = True

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.activation = config.get("activation", "linear")
        if activation_name(self.activation) not in SHAPE_CHANGING:
            c_activation(self.activation, ctx.keras_major)

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        if activation_name(self.activation) == "glu" and shape[-1] is not None:
            return [tuple(shape[:-1]) + (shape[-1] // 2,)]
        return [shape]

    def stack_ops(self, stack) -> bool:
        if activation_name(self.activation) == "glu":
            return stack.decline("glu halves the last axis, run by numpy")
        stack.add_activation(c_activation(self.activation, self.ctx.keras_major))
        return True

    def call(self, inputs, initial_state=None, n_threads=1):
        return [apply_activation(self.activation, inputs[0], self.ctx.keras_major)]
