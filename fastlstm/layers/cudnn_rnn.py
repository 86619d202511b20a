"""What CuDNNLSTM and CuDNNGRU share: each runs as the Keras layer cuDNN computes (a fixed
configuration merged over the saved config), and holds its weights as Keras holds them, in the
CuDNN layout with one bias vector for the input and one for the recurrent products, converted to
that layer's layout when assigned (io/cudnn_weights.py, after tf_keras
hdf5_format._convert_rnn_weights)."""
from __future__ import annotations


class CuDNNRecurrent:
    """Mixin before LSTM or GRU; subclasses set ``cudnn_config``, ``n_bias_per_unit``,
    ``from_cudnn`` (a staticmethod of io/cudnn_weights) and ``weights_layout``."""

    cudnn_config: dict = {}
    n_bias_per_unit = 0
    # CuDNNLSTM and CuDNNGRU came with Keras 2.0.9: no Keras 1 file holds them, and their
    # constructors have no legacy interface.
    keras1_saved_gates = None
    keras1_interface = None

    def __init__(self, config: dict, ctx):
        super().__init__({**config, **self.cudnn_config}, ctx)
        self.config = config

    def weight_shapes(self):
        kernel, recurrent, _ = super().weight_shapes()
        return [kernel, recurrent, (self.n_bias_per_unit * self.units,)]

    def assign_weights(self, weights):
        super().assign_weights(self.from_cudnn(weights))
