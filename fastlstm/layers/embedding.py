"""Keras Embedding (keras/src/layers/core/embedding.py, tf_keras/layers/core/embedding.py):
rows of ``embeddings`` (input_dim, output_dim) looked up by integer index; with ``mask_zero``
index 0 is padding and masks its timestep for the layers after it."""
from __future__ import annotations

import numpy as np

from ..io import keras1_config
from .base import Layer, config_int, single_input

# Inputs reach the layers as float32 (inputs.standardize_inputs), exact for integers below 2^24;
# a larger vocabulary could have indices rounded to a neighbour's, so it is refused at load.
MAX_INPUT_DIM = 1 << 24


class Embedding(Layer):
    keras_class = "Embedding"
    keras1_interface = keras1_config.LEGACY_EMBEDDING_SUPPORT

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.input_dim = config_int(config, "input_dim", self.name, maximum=MAX_INPUT_DIM)
        self.output_dim = config_int(config, "output_dim", self.name, maximum=1 << 20)
        self.mask_zero = bool(config.get("mask_zero", False))
        self.embeddings = None

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        return [tuple(shape) + (self.output_dim,)]

    def weight_shapes(self):
        return [(self.input_dim, self.output_dim)]

    def assign_weights(self, weights):
        self.embeddings = weights[0]

    def indices(self, x: np.ndarray) -> np.ndarray:
        """Keras casts the inputs to int32 (float indices truncate toward zero); TensorFlow's
        gather then refuses indices outside [0, input_dim) on CPU, and so does this."""
        x = np.asarray(x)
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise ValueError(f"layer {self.name!r} (Embedding) takes integer indices; the input "
                             "holds NaN or infinity")
        idx = x.astype(np.int64)
        bad = (idx < 0) | (idx >= self.input_dim)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"layer {self.name!r} (Embedding) takes indices in [0, "
                             f"{self.input_dim}); the input has {x[where].item()!r} at position {where}")
        return idx

    def check_input_values(self, x):
        # Ids of 2**24 and more round to another float32 on the way in (16777217 becomes
        # 16777216): checked as the caller passed them, so the error names the caller's value.
        self.indices(x)

    def call(self, inputs, initial_state=None, n_threads=1):
        return [self.embeddings[self.indices(inputs[0])]]

    def compute_mask(self, inputs, masks, outputs):
        if not self.mask_zero:
            return [None]
        return [np.asarray(inputs[0]).astype(np.int64) != 0]
