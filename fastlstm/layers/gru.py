"""Keras GRU (keras/src/layers/rnn/gru.py, tf_keras/layers/rnn/gru.py).

Weights: kernel (n_features, 3*units), recurrent_kernel (units, 3*units), gate order z, r, h;
bias (2, 3*units) (input bias, recurrent bias) when ``reset_after`` (the default since Keras
2.3), else (3*units,). ``reset_after`` decides where the reset gate acts: on the recurrent
candidate after the product (h @ U_h + b) or on h before it ((r * h) @ U_h).
"""
from __future__ import annotations

from ..io import keras1_config
from .packing import pack_gru
from .recurrent import RecurrentLayer


class GRU(RecurrentLayer):
    keras_class = "GRU"
    gate_order = ("z", "r", "h")
    keras1_saved_gates = ("z", "r", "h")  # Keras 1.2.2 keras/layers/recurrent.py GRU.build
    keras1_interface = keras1_config.LEGACY_GRU_SUPPORT

    def __init__(self, config: dict, ctx):
        super().__init__(config, ctx)
        self.recurrent_activation = self.recurrent_c_activation(config, ctx)
        # Keras 2.0-2.2 had reset_after=False as its default (and Keras 1 GRUs have no such key).
        self.reset_after = bool(config.get("reset_after", ctx.keras_version >= (2, 3)))

    @property
    def weights_layout(self):
        # The bias layout differs with reset_after, and only reset_after=True has a CuDNN twin.
        return f"GRU(reset_after={self.reset_after})"

    def weight_shapes(self):
        u = self.units
        shapes = [(self.n_features, 3 * u), (u, 3 * u)]
        if not self.use_bias:
            return shapes
        return shapes + [(2, 3 * u) if self.reset_after else (3 * u,)]

    def assign_weights(self, weights):
        u = self.units
        bias = self._bias_or_zeros(weights, (2, 3 * u) if self.reset_after else (3 * u,))
        cell = "gru" if self.reset_after else "gru_reset_before"
        self._make_kernel(cell, pack_gru(weights[0], weights[1], bias, u, self.reset_after),
                          self.recurrent_activation)
