"""What every Keras convolution layer shares (keras/src/layers/convolutional/base_conv.py,
tf_keras layers/convolutional/base_conv.py): filters, kernel_size, strides and dilation_rate (an
int or one per spatial axis: normalize_tuple / standardize_tuple), padding, data_format, groups,
use_bias and the activation; a cross-correlation over the spatial axes (conv_ops.correlate),
then bias, then the activation.

Weights: kernel (*kernel_size, in_channels // groups, filters), bias (filters,). With ``groups``
the input channels and the filters are split into that many consecutive blocks and block g of
the filters sees only block g of the channels. Strides above 1 with a dilation_rate above 1 are
refused by both base_conv.py.
"""
from __future__ import annotations

import numpy as np

from ..activations import (
    SHAPE_CHANGING,
    activation_name,
    apply_activation,
    c_activation,
)
from ..errors import ModelFormatError, UnsupportedConfigError
from . import layer_args
from .base import Layer, config_int
from .conv_ops import conv_output_length, correlate, keras3_bias_on_last_axis, pad_input
from .layer_args import shown_tuple as _shown

MAX_FILTERS = 1 << 20


class ConvND(Layer):
    """A convolution over ``rank`` spatial axes, input (batch, *spatial, channels) or (batch,
    channels, *spatial) with channels_first. Subclasses set ``rank`` and ``paddings``."""

    rank = 2
    paddings = ("valid", "same")

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.filters = config_int(config, "filters", self.name, maximum=MAX_FILTERS)
        self.kernel_size, self.strides, self.dilation_rate = layer_args.conv_window(self,
                                                                                    self.rank)
        self.groups = config_int({"groups": config.get("groups") or 1}, "groups", self.name,
                                 maximum=self.filters)
        self.padding = layer_args.padding(self, self.paddings)
        self.data_format = layer_args.data_format(self)
        self.use_bias = bool(config.get("use_bias", True))
        self.activation = config.get("activation", "linear")
        if activation_name(self.activation) not in SHAPE_CHANGING:
            c_activation(self.activation, ctx.keras_major)  # refuse unknown names at load
        where = f"layer {self.name!r} ({self.keras_class})"
        if self.filters % self.groups:
            raise ModelFormatError(f"{where}: filters={self.filters} is not divisible by "
                                   f"groups={self.groups}")
        if config.get("lora_rank"):
            raise UnsupportedConfigError(f"{where}: lora_rank is not supported (merge the LoRA "
                                         "weights before saving)")
        self.n_channels = None
        self.kernel = self.bias = None
        self.bias_on_last_axis = False

    def compute_output_shapes(self, input_shapes):
        shape = layer_args.input_nd(self, input_shapes, self.rank)
        where = f"layer {self.name!r} ({self.keras_class})"
        first = self.data_format == "channels_first"
        n_channels = shape[1] if first else shape[-1]
        if n_channels is None:
            raise ModelFormatError(f"{where}: the channel axis of input shape {shape} must be "
                                   "known")
        if n_channels % self.groups:
            raise ModelFormatError(f"{where}: {n_channels} input channels are not divisible by "
                                   f"groups={self.groups}")
        self.n_channels = int(n_channels)
        spatial = [shape[a] for a in layer_args.spatial_axes(self.data_format, self.rank)]
        out = [conv_output_length(n, k, self.padding, s, d) for n, k, s, d in
               zip(spatial, self.kernel_size, self.strides, self.dilation_rate)]
        if any(n is not None and n <= 0 for n in out):
            raise ModelFormatError(
                f"{where}: spatial shape {tuple(spatial)} is too small for kernel_size="
                f"{_shown(self.kernel_size)}, dilation_rate={_shown(self.dilation_rate)} with "
                "padding='valid'")
        out_shape = [shape[0], self.filters, *out] if first else [shape[0], *out, self.filters]
        self.bias_on_last_axis = keras3_bias_on_last_axis(
            out_shape, self.data_format, self.filters, self.groups, self.ctx.keras_major)
        if activation_name(self.activation) == "glu":
            # keras/src/activations/activations.py glu(x, axis=-1) halves the last axis.
            if out_shape[-1] is not None and out_shape[-1] % 2:
                raise ModelFormatError(f"{where}: glu needs an even last axis, the output shape "
                                       f"is {tuple(out_shape)}")
            out_shape[-1] = None if out_shape[-1] is None else out_shape[-1] // 2
        return [tuple(out_shape)]

    def weight_shapes(self):
        shapes = [self.kernel_size + (self.n_channels // self.groups, self.filters)]
        return shapes + [(self.filters,)] if self.use_bias else shapes

    def assign_weights(self, weights):
        self.kernel = weights[0]
        self.bias = weights[1] if self.use_bias else None

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        last = x.ndim - 1
        if self.data_format == "channels_first":
            x = np.moveaxis(x, 1, last)
        x = pad_input(x, self.kernel_size, self.padding, self.strides, self.dilation_rate)
        try:
            y = correlate(x, self.kernel, self.strides, self.dilation_rate, self.groups,
                          n_threads)
        except ValueError:
            small = "has too few steps" if self.rank == 1 else "is too small"
            raise ValueError(f"layer {self.name!r} ({self.keras_class}): an input of "
                             f"{inputs[0].shape} {small} for kernel_size="
                             f"{_shown(self.kernel_size)}, dilation_rate="
                             f"{_shown(self.dilation_rate)}") from None
        if self.bias is not None and not self.bias_on_last_axis:
            y += self.bias
        if self.data_format == "channels_first":
            y = np.moveaxis(y, last, 1)
        y = np.ascontiguousarray(y)
        if self.bias is not None and self.bias_on_last_axis:
            y += self.bias
        return [apply_activation(self.activation, y, self.ctx.keras_major)]
