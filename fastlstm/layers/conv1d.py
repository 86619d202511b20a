"""Keras Conv1D (keras/src/layers/convolutional/conv1d.py, tf_keras
layers/convolutional/conv1d.py): a convolution over the steps axis (conv_base.ConvND), with
"causal" padding besides "valid" and "same": all of the padding before the steps
(conv_ops.pad_amounts). Keras 1 Convolution1D kernels convert as Keras 2 converted them.
"""
from __future__ import annotations

from ..io import keras1_config, keras1_weights
from .conv_base import ConvND


class Conv1D(ConvND):
    keras_class = "Conv1D"
    rank = 1
    paddings = ("valid", "same", "causal")
    keras1_interface = keras1_config.LEGACY_CONV1D_SUPPORT

    def convert_legacy_weights(self, arrays, keras1):
        """A Keras 1 Convolution1D's 4-D kernel made Conv1D's (io/keras1_weights.py)."""
        if not keras1 or self.groups != 1:
            return list(arrays)
        return keras1_weights.convert_conv1d(arrays, expected=self.weight_shapes()[0],
                                             name=self.name)
