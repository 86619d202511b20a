"""Keras LayerNormalization (keras/src/layers/normalization/layer_normalization.py with
keras/src/ops/nn.py _layer_normalization; tf_keras layers/normalization/layer_normalization.py):
each sample is normalized by its mean and variance over ``axis`` (one axis or several), in
float32, the variance as the mean of squared differences from the mean (tf.nn.moments).

Weights gamma (if scale) then beta (if center), both trainable, shaped by the input dims of the
axes in the order each Keras keeps them: Keras 3 sorts the axes as written (negatives first:
[1, -1] -> [-1, 1]); tf_keras makes them non-negative and keeps their order. Both then *reshape*
(not transpose) the weights onto the normalized axes, which this layer reproduces.

Keras 3's deprecated ``rms_scaling=True`` computes ``x * rsqrt(variance + epsilon) * gamma``:
the variance about the mean, no centering, no beta (its own warning says so).
"""
from __future__ import annotations

import numpy as np

from . import layer_args
from .base import Layer, single_input

# tf_keras LayerNormalization._fused_can_be_used: no fused path for an epsilon below this.
FUSED_MIN_EPSILON = 1.001e-5


class LayerNormalization(Layer):
    keras_class = "LayerNormalization"
    supports_masking = True   # Keras passes the mask on; it does not enter the statistics

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.raw_axes = layer_args.raw_axes(self)
        self.epsilon = layer_args.epsilon(self)
        self.rms_scaling = bool(config.get("rms_scaling", False))
        self.scale = bool(config.get("scale", True)) or self.rms_scaling
        self.center = bool(config.get("center", True)) and not self.rms_scaling
        self.axes = None
        self.param_shape = None
        self.fused = False
        self.gamma = self.beta = None

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        self.axes = layer_args.normalize_axes(self, self.raw_axes, shape)
        layer_args.known_dims(self, shape, self.axes, "normalized")
        weight_axes = sorted(self.raw_axes) if self.ctx.keras_major >= 3 else self.axes
        self.param_shape = tuple(shape[a] for a in weight_axes)
        # tf_keras takes a fused_batch_norm path when the axes are the trailing ones; it
        # normalizes (x - mean) first, Keras 3 and the unfused path fold the mean into a shift.
        trailing = sorted(self.axes) == list(range(len(shape) - len(self.axes), len(shape)))
        self.fused = (self.ctx.keras_major < 3 and trailing
                      and self.epsilon >= FUSED_MIN_EPSILON)
        return [shape]

    def weight_shapes(self):
        return [self.param_shape] * (int(self.scale) + int(self.center))

    def assign_weights(self, weights):
        self.gamma = weights[0] if self.scale else None
        self.beta = weights[-1] if self.center else None

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        axes = tuple(self.axes)
        broadcast = [1] * x.ndim
        for a in axes:
            broadcast[a] = x.shape[a]
        gamma = None if self.gamma is None else self.gamma.reshape(broadcast)
        beta = None if self.beta is None else self.beta.reshape(broadcast)
        mean = x.mean(axis=axes, keepdims=True, dtype=np.float32)
        variance = np.square(x - mean).mean(axis=axes, keepdims=True, dtype=np.float32)
        inv = np.float32(1) / np.sqrt(variance + np.float32(self.epsilon))
        if self.rms_scaling:
            y = x * inv * gamma
        elif self.fused:
            y = (x - mean) * inv
            y = y if gamma is None else y * gamma
            y = y if beta is None else y + beta
        else:
            inv = inv if gamma is None else inv * gamma
            shift = -mean * inv
            y = x * inv + (shift if beta is None else shift + beta)
        return [np.ascontiguousarray(y, dtype=np.float32)]
