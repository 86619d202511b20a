"""Keras LSTM (keras/src/layers/rnn/lstm.py, tf_keras/layers/rnn/lstm.py).

Weights: kernel (n_features, 4*units), recurrent_kernel (units, 4*units), bias (4*units), gate
order i, f, c, o. ``unit_forget_bias`` only initialises the bias.
"""
from __future__ import annotations

from .packing import pack_lstm
from .recurrent import RecurrentLayer


class LSTM(RecurrentLayer):
    keras_class = "LSTM"
    state_names = ("h", "c")
    gate_order = ("i", "f", "c", "o")
    # Keras 1.2.2 keras/layers/recurrent.py LSTM.build: trainable_weights per gate, i, c, f, o.
    keras1_saved_gates = ("i", "c", "f", "o")
    weights_layout = "LSTM"

    def __init__(self, config: dict, ctx):
        super().__init__(config, ctx)
        self.recurrent_activation = self.recurrent_c_activation(config, ctx)

    def weight_shapes(self):
        u = self.units
        shapes = [(self.n_features, 4 * u), (u, 4 * u)]
        return shapes + [(4 * u,)] if self.use_bias else shapes

    def assign_weights(self, weights):
        bias = self._bias_or_zeros(weights, (4 * self.units,))
        self._make_kernel("lstm", pack_lstm(weights[0], weights[1], bias, self.units),
                          self.recurrent_activation)
