"""Keras InputLayer: declares a model input's shape (batch_input_shape in Keras 1/2, batch_shape
in Keras 3); a fixed batch size there is what stateful layers are built for."""
from __future__ import annotations

from ..config import declared_batch_shape
from ..errors import ModelFormatError
from .base import Layer


class InputLayer(Layer):
    keras_class = "InputLayer"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        shape = declared_batch_shape(config, self.name)
        if shape is None:
            raise ModelFormatError(f"InputLayer {self.name!r} declares no shape")
        self.batch_shape = shape
        self.build([shape])

    def call(self, inputs, initial_state=None, n_threads=1):
        return inputs
