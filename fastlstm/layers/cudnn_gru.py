"""Keras 2 CuDNNGRU (tf_keras layers/rnn/cudnn_gru.py; keras 2.1-2.2 keras/layers/
cudnn_recurrent.py), run as the GRU it computes: ``reset_after=True``, activation tanh,
recurrent_activation sigmoid, always a bias. Config keys as CuDNNLSTM's, without
``unit_forget_bias``.

Weights as Keras holds them: kernel (n_features, 3*units) and recurrent_kernel (units, 3*units)
with each gate's block (z, r, h) in cuDNN's layout, bias (6*units,) = [input bias z, r, h |
recurrent bias z, r, h]; io/cudnn_weights.gru_from_cudnn turns them into the
GRU(reset_after=True) layout, bias (2, 3*units) (tf_keras hdf5_format._convert_rnn_weights).
"""
from __future__ import annotations

from ..io import cudnn_weights
from .cudnn_rnn import CuDNNRecurrent
from .gru import GRU

# What cuDNN computes, whatever the config says (it says nothing about these).
CUDNN_GRU_CONFIG = {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
                    "reset_after": True}


class CuDNNGRU(CuDNNRecurrent, GRU):
    keras_class = "CuDNNGRU"
    cudnn_config = CUDNN_GRU_CONFIG
    n_bias_per_unit = 6
    weights_layout = "CuDNNGRU"
    from_cudnn = staticmethod(cudnn_weights.gru_from_cudnn)
