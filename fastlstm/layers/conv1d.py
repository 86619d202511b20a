"""Keras Conv1D (keras/src/layers/convolutional/conv1d.py and base_conv.py, tf_keras
layers/convolutional/base_conv.py): a cross-correlation over the steps axis, then bias, then the
activation.

Weights: kernel (kernel_size, in_channels // groups, filters), bias (filters,). With ``groups``
the input channels and the filters are split into that many consecutive blocks and block g of
the filters sees only block g of the channels.
"""
from __future__ import annotations

import numpy as np

from ..activations import SHAPE_CHANGING, activation_id, activation_name, apply_activation
from ..errors import ModelFormatError, UnsupportedConfigError
from . import layer_args
from .base import Layer, config_int

MAX_FILTERS = 1 << 20


def conv_output_length(n_steps, window, padding, stride, dilation=1):
    """tf_keras utils/conv_utils.py conv_output_length (keras/src/ops/operation_utils.py
    compute_conv_output_shape gives the same): None stays None."""
    if n_steps is None:
        return None
    if padding == "valid":
        n_steps -= (window - 1) * dilation
    return (n_steps + stride - 1) // stride


def same_padding(n_steps, window, stride, dilation=1):
    """Steps TensorFlow adds before the input for padding="same": half the total, the odd one
    after (tensorflow/core/framework/kernel_shape_util.cc GetWindowedOutputSizeVerbose)."""
    n_out = (n_steps + stride - 1) // stride
    total = max((n_out - 1) * stride + (window - 1) * dilation + 1 - n_steps, 0)
    return total // 2, total - total // 2


class Conv1D(Layer):
    keras_class = "Conv1D"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.filters = config_int(config, "filters", self.name, maximum=MAX_FILTERS)
        self.kernel_size = layer_args.one_int(self, "kernel_size")
        self.strides = layer_args.one_int(self, "strides", 1)
        self.dilation_rate = layer_args.one_int(self, "dilation_rate", 1)
        self.groups = config_int({"groups": config.get("groups") or 1}, "groups", self.name,
                                 maximum=self.filters)
        self.padding = layer_args.padding(self, ("valid", "same", "causal"))
        self.data_format = layer_args.data_format(self)
        self.use_bias = bool(config.get("use_bias", True))
        self.activation = config.get("activation", "linear")
        if activation_name(self.activation) not in SHAPE_CHANGING:
            activation_id(self.activation, ctx.keras_major)  # refuse unknown names at load
        if self.filters % self.groups:
            raise ModelFormatError(f"layer {self.name!r} (Conv1D): filters={self.filters} is not "
                                   f"divisible by groups={self.groups}")
        if self.strides > 1 and self.dilation_rate > 1:
            raise ModelFormatError(f"layer {self.name!r} (Conv1D): strides={self.strides} with "
                                   f"dilation_rate={self.dilation_rate}; Keras allows only one "
                                   "of them above 1")
        if config.get("lora_rank"):
            raise UnsupportedConfigError(f"layer {self.name!r} (Conv1D): lora_rank is not "
                                         "supported (merge the LoRA weights before saving)")
        self.n_channels = None
        self.kernel = self.bias = None

    def compute_output_shapes(self, input_shapes):
        shape = layer_args.input_3d(self, input_shapes)
        first = self.data_format == "channels_first"
        n_channels, n_steps = (shape[1], shape[2]) if first else (shape[2], shape[1])
        if n_channels is None:
            raise ModelFormatError(f"layer {self.name!r} (Conv1D): the channel axis of input "
                                   f"shape {shape} must be known")
        if n_channels % self.groups:
            raise ModelFormatError(f"layer {self.name!r} (Conv1D): {n_channels} input channels "
                                   f"are not divisible by groups={self.groups}")
        self.n_channels = int(n_channels)
        n_out = conv_output_length(n_steps, self.kernel_size, self.padding, self.strides,
                                   self.dilation_rate)
        if n_out is not None and n_out <= 0:
            raise ModelFormatError(
                f"layer {self.name!r} (Conv1D): {n_steps} steps are too few for kernel_size="
                f"{self.kernel_size}, dilation_rate={self.dilation_rate} with padding='valid'")
        n_filters = self.filters
        if activation_name(self.activation) == "glu":
            n_filters //= 2
        return [(shape[0], n_filters, n_out) if first else (shape[0], n_out, n_filters)]

    def weight_shapes(self):
        shapes = [(self.kernel_size, self.n_channels // self.groups, self.filters)]
        return shapes + [(self.filters,)] if self.use_bias else shapes

    def assign_weights(self, weights):
        self.kernel = weights[0]
        self.bias = weights[1] if self.use_bias else None

    def _pad(self, x):
        """x (batch, steps, channels) with the padding Keras applies before a valid convolution."""
        n_steps, k, d, s = x.shape[1], self.kernel_size, self.dilation_rate, self.strides
        if self.padding == "causal":
            before, after = (k - 1) * d, 0   # keras conv1d.py _compute_causal_padding
        elif self.padding == "same":
            before, after = same_padding(n_steps, k, s, d)
        else:
            before = after = 0
        if before or after:
            x = np.pad(x, ((0, 0), (before, after), (0, 0)))
        return x

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        if self.data_format == "channels_first":
            x = x.transpose(0, 2, 1)
        x = self._pad(x)
        k, d, s, g = self.kernel_size, self.dilation_rate, self.strides, self.groups
        n_batch = x.shape[0]
        n_out = (x.shape[1] - (k - 1) * d - 1) // s + 1
        if n_out <= 0:
            raise ValueError(f"layer {self.name!r} (Conv1D): an input of {inputs[0].shape} has "
                             f"too few steps for kernel_size={k}, dilation_rate={d}")
        # One product per kernel tap, every group at once: (groups, rows, channels per group)
        # against (groups, channels per group, filters per group).
        n_cg, n_fg = self.n_channels // g, self.filters // g
        w = self.kernel.reshape(k, n_cg, g, n_fg).transpose(0, 2, 1, 3)
        y = np.zeros((g, n_batch * n_out, n_fg), np.float32)
        for tap in range(k):
            x_tap = x[:, tap * d: tap * d + (n_out - 1) * s + 1: s, :]
            y += np.matmul(x_tap.reshape(n_batch * n_out, g, n_cg).transpose(1, 0, 2), w[tap])
        y = y.transpose(1, 0, 2).reshape(n_batch, n_out, self.filters)
        if self.bias is not None:
            y += self.bias
        if self.data_format == "channels_first":
            y = y.transpose(0, 2, 1)
        y = np.ascontiguousarray(y)
        return [apply_activation(self.activation, y, self.ctx.keras_major)]
