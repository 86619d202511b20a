"""Keras Dropout: the identity at inference (Keras only drops units when training=True)."""
from __future__ import annotations

from ..io import keras1_config
from .base import Layer, single_input


class Dropout(Layer):
    keras_class = "Dropout"
    supports_masking = True
    keras1_interface = keras1_config.LEGACY_DROPOUT_SUPPORT

    def compute_output_shapes(self, input_shapes):
        return [single_input(self, input_shapes)]

    def stack_ops(self, stack) -> bool:
        return True  # the identity: nothing to add

    def call(self, inputs, initial_state=None, n_threads=1):
        return [inputs[0]]
