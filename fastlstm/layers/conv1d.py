"""Keras Conv1D (keras/src/layers/convolutional/conv1d.py and base_conv.py, tf_keras
layers/convolutional/base_conv.py): a cross-correlation over the steps axis, then bias, then the
activation.

Weights: kernel (kernel_size, in_channels // groups, filters), bias (filters,). With ``groups``
the input channels and the filters are split into that many consecutive blocks and block g of
the filters sees only block g of the channels.
"""
from __future__ import annotations

import numpy as np

from ..activations import (
    SHAPE_CHANGING,
    c_activation,
    activation_name,
    apply_activation,
)
from ..errors import ModelFormatError, UnsupportedConfigError
from ..io import keras1_weights
from . import layer_args
from .base import Layer, config_int
from .conv_ops import conv_output_length, correlate, pad_input

MAX_FILTERS = 1 << 20


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
            c_activation(self.activation, ctx.keras_major)  # refuse unknown names at load
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

    def convert_legacy_weights(self, arrays, keras1):
        """A Keras 1 Convolution1D's 4-D kernel made Conv1D's (io/keras1_weights.py)."""
        if not keras1 or self.groups != 1:
            return list(arrays)
        return keras1_weights.convert_conv1d(arrays, expected=self.weight_shapes()[0],
                                             name=self.name)

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

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        if self.data_format == "channels_first":
            x = x.transpose(0, 2, 1)
        k, d, s = self.kernel_size, self.dilation_rate, self.strides
        x = pad_input(x, (k,), self.padding, (s,), (d,))
        try:
            y = correlate(x, self.kernel, (s,), (d,), self.groups)
        except ValueError:
            raise ValueError(f"layer {self.name!r} (Conv1D): an input of {inputs[0].shape} has "
                             f"too few steps for kernel_size={k}, dilation_rate={d}") from None
        if self.bias is not None:
            y += self.bias
        if self.data_format == "channels_first":
            y = y.transpose(0, 2, 1)
        y = np.ascontiguousarray(y)
        return [apply_activation(self.activation, y, self.ctx.keras_major)]
