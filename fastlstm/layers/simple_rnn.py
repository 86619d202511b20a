"""Keras SimpleRNN (keras/src/layers/rnn/simple_rnn.py, tf_keras/layers/rnn/simple_rnn.py):
h' = activation(x @ kernel + bias + h @ recurrent_kernel)."""
from __future__ import annotations

from ..activations import CActivation
from .packing import pack_simple_rnn
from .recurrent import RecurrentLayer

LINEAR = CActivation(0)  # unused by the cell; any valid activation


class SimpleRNN(RecurrentLayer):
    keras_class = "SimpleRNN"

    def weight_shapes(self):
        u = self.units
        shapes = [(self.n_features, u), (u, u)]
        return shapes + [(u,)] if self.use_bias else shapes

    def assign_weights(self, weights):
        bias = self._bias_or_zeros(weights, (self.units,))
        self._make_kernel("simple", pack_simple_rnn(weights[0], weights[1], bias, self.units),
                          LINEAR)
