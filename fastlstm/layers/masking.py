"""Keras Masking (keras/src/layers/core/masking.py, tf_keras/layers/core/masking.py): a
timestep whose features all equal ``mask_value`` is masked for the layers after it, and its
features are zeroed (outputs = inputs * any(inputs != mask_value, axis=-1))."""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from ..limits import checked_float
from .base import Layer, single_input


class Masking(Layer):
    keras_class = "Masking"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        # Keras takes any float, NaN included: not_equal(x, NaN) holds everywhere, so it masks
        # nothing.
        self.mask_value = np.float32(checked_float(config.get("mask_value", 0.0),
                                                   f"layer {self.name!r} (Masking): mask_value",
                                                   finite=False))

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        if len(shape) < 3:
            raise ModelFormatError(f"layer {self.name!r} (Masking) needs (batch, timesteps, "
                                   f"features) input, got shape {shape}")
        return [shape]

    def _keep(self, x: np.ndarray) -> np.ndarray:
        return np.any(x != self.mask_value, axis=-1)

    def call(self, inputs, initial_state=None, n_threads=1):
        x = inputs[0]
        return [(x * self._keep(x)[..., None].astype(x.dtype)).astype(np.float32)]

    def compute_mask(self, inputs, masks, outputs):
        return [self._keep(inputs[0])]
