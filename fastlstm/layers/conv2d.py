"""Keras Conv2D (keras/src/layers/convolutional/conv2d.py, tf_keras
layers/convolutional/conv2d.py): a convolution over two spatial axes (conv_base.ConvND).
padding is "valid" or "same": both versions refuse "causal" for 2-D (tf_keras base_conv.py
_validate_init, keras standardize_padding(allow_causal=rank == 1)).
"""
from __future__ import annotations

from .conv_base import ConvND


class Conv2D(ConvND):
    keras_class = "Conv2D"
    rank = 2
