"""Keras 2 CuDNNLSTM (tf_keras layers/rnn/cudnn_lstm.py; keras 2.1-2.2 keras/layers/
cudnn_recurrent.py), run as the LSTM it computes: activation tanh, recurrent_activation sigmoid,
always a bias (cuDNN's LSTM has no other). Its config has ``units``, ``return_sequences``,
``return_state``, ``go_backwards``, ``stateful`` (and ``time_major`` in tf_keras), initializer,
regularizer and constraint keys, and ``unit_forget_bias``, which only initialises the bias.

Weights as Keras holds them: kernel (n_features, 4*units) and recurrent_kernel (units, 4*units)
with each gate's block in cuDNN's layout, bias (8*units,) = [input bias i, f, c, o | recurrent
bias i, f, c, o]; io/cudnn_weights.lstm_from_cudnn turns them into the LSTM layout (tf_keras
hdf5_format._convert_rnn_weights).
"""
from __future__ import annotations

from ..io import cudnn_weights
from .cudnn_rnn import CuDNNRecurrent
from .lstm import LSTM

# What cuDNN computes, whatever the config says (it says nothing about these).
CUDNN_LSTM_CONFIG = {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True}


class CuDNNLSTM(CuDNNRecurrent, LSTM):
    keras_class = "CuDNNLSTM"
    cudnn_config = CUDNN_LSTM_CONFIG
    n_bias_per_unit = 8
    weights_layout = "CuDNNLSTM"
    from_cudnn = staticmethod(cudnn_weights.lstm_from_cudnn)
