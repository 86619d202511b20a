"""Keras Dense: act(x @ kernel + bias) on the last axis of any rank (keras/src/layers/core/dense.py)."""
from __future__ import annotations

import numpy as np

from .. import _kernels
from ..activations import activation_name, apply_activation, c_activation, SHAPE_CHANGING
from ..errors import ModelFormatError
from ..io import keras1_config
from .base import Layer, config_int, single_input

MAX_UNITS = 1 << 20


class Dense(Layer):
    keras_class = "Dense"
    supports_masking = True
    keras1_interface = keras1_config.LEGACY_DENSE_SUPPORT

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.units = config_int(config, "units", self.name, maximum=MAX_UNITS)
        self.use_bias = bool(config.get("use_bias", True))
        self.activation = config.get("activation", "linear")
        if activation_name(self.activation) not in SHAPE_CHANGING:
            c_activation(self.activation, ctx.keras_major)  # refuse unknown names at load
        self.n_in = None
        self.kernel = self.bias = None

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        if len(shape) < 2 or shape[-1] is None:
            raise ModelFormatError(f"layer {self.name!r} (Dense) needs a known last dimension, "
                                   f"got input shape {shape}")
        self.n_in = int(shape[-1])
        units = self.units
        if activation_name(self.activation) == "glu":
            units //= 2
        return [tuple(shape[:-1]) + (units,)]

    def weight_shapes(self):
        shapes = [(self.n_in, self.units)]
        return shapes + [(self.units,)] if self.use_bias else shapes

    def assign_weights(self, weights):
        if self.kernel is not None:
            # In place, as Keras assigns variables: a compiled stack reads these very arrays.
            np.copyto(self.kernel, weights[0])
            if self.use_bias:
                np.copyto(self.bias, weights[1])
            return
        self.kernel = weights[0]
        self.bias = weights[1] if self.use_bias else None

    def stack_ops(self, stack) -> bool:
        if self.kernel is None:
            return stack.decline("its weights are not set")
        if activation_name(self.activation) == "glu":
            return stack.decline("activation glu halves the units, run by numpy")
        stack.add_dense(self.kernel, self.bias,
                        c_activation(self.activation, self.ctx.keras_major))
        return True

    def call(self, inputs, initial_state=None, n_threads=1):
        x = _kernels.as_float32(inputs[0])
        # The compiled stacks' C loop over all leading axes at once, so that a model gives the
        # same bits whichever path runs it (numpy's matmul sums in another order).
        glu = activation_name(self.activation) == "glu"
        act = c_activation("linear" if glu else self.activation, self.ctx.keras_major)
        y = _kernels.dense_forward(x.reshape(-1, x.shape[-1]), self.kernel, self.bias, act)
        y = y.reshape(x.shape[:-1] + (y.shape[-1],))  # explicit: -1 is ambiguous for 0 rows
        return [apply_activation(self.activation, y, self.ctx.keras_major) if glu else y]
