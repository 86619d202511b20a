"""Keras BatchNormalization at inference (keras/src/layers/normalization/batch_normalization.py,
tf_keras layers/normalization/batch_normalization.py): the moving statistics normalize the input,
``(x - moving_mean) / sqrt(moving_variance + epsilon) * gamma + beta``.

Weights: gamma (if scale) and beta (if center) are trainable, then moving_mean and
moving_variance, then with renorm moving_stddev, renorm_mean and renorm_stddev (kept only for
training). One axis gives (dim,) weights; tf_keras also takes a list of axes and then gives them
the input's rank with 1 on every other axis. Keras 3 stores one int axis.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedConfigError
from ..io import keras1_config
from . import layer_args
from .base import Layer, single_input


class BatchNormalization(Layer):
    keras_class = "BatchNormalization"
    keras1_interface = keras1_config.LEGACY_BATCHNORM_SUPPORT
    supports_masking = True   # a mask changes only the training statistics

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.raw_axes = layer_args.raw_axes(self)
        self.epsilon = layer_args.epsilon(self)
        self.center = bool(config.get("center", True))
        self.scale = bool(config.get("scale", True))
        self.renorm = bool(config.get("renorm", False))
        self.n_affine = int(self.scale) + int(self.center)   # gamma, beta
        if config.get("virtual_batch_size") is not None:
            # tf_keras reshapes the batch into virtual batches and its weights gain an axis.
            raise UnsupportedConfigError(f"layer {self.name!r} (BatchNormalization): "
                                         "virtual_batch_size is not supported")
        self.axes = None
        self.param_shape = None
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        self.axes = layer_args.normalize_axes(self, self.raw_axes, shape)
        layer_args.known_dims(self, shape, self.axes, "normalized")
        if len(self.axes) == 1:
            self.param_shape = (shape[self.axes[0]],)
        else:
            self.param_shape = tuple(d if i in self.axes else 1 for i, d in enumerate(shape))
        return [shape]

    def n_trainable_weights(self):
        return 0 if self.config.get("trainable") is False else self.n_affine

    def weight_shapes(self):
        return [self.param_shape] * (self.n_affine + 2 + 3 * self.renorm)

    def assign_weights(self, weights):
        affine = list(weights[:self.n_affine])
        self.gamma = affine.pop(0) if self.scale else None
        self.beta = affine.pop(0) if self.center else None
        self.moving_mean, self.moving_variance = weights[self.n_affine:self.n_affine + 2]

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        broadcast = [1] * x.ndim
        for a in self.axes:
            broadcast[a] = x.shape[a]

        def shaped(w):
            return None if w is None else w.reshape(broadcast)

        # tf.nn.batch_normalization (tensorflow/python/ops/nn_impl.py), which both Kerases call:
        # inv = rsqrt(variance + epsilon) * scale; x * inv + (offset - mean * inv).
        inv = np.float32(1) / np.sqrt(shaped(self.moving_variance) + np.float32(self.epsilon))
        if self.gamma is not None:
            inv = inv * shaped(self.gamma)
        shift = -shaped(self.moving_mean) * inv
        if self.beta is not None:
            shift = shaped(self.beta) + shift
        return [np.ascontiguousarray(x * inv + shift, dtype=np.float32)]
