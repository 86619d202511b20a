"""Keras ConvLSTM1D, ConvLSTM2D and ConvLSTM3D (keras/src/layers/rnn/conv_lstm.py ConvLSTMCell
and ConvLSTM, conv_lstm1d.py, conv_lstm2d.py, conv_lstm3d.py; tf_keras layers/rnn/
base_conv_lstm.py, base_conv_rnn.py, conv_lstm1d.py, conv_lstm2d.py, conv_lstm3d.py).

An LSTM whose products are convolutions: at each step, with gates i, f, c, o split from the
last axis of each weight,

    z = conv(x_t, kernel; strides, padding, dilation_rate) + bias
        + conv(h, recurrent_kernel; strides 1, padding "same", dilation 1)
    c' = rec_act(z_f) * c + rec_act(z_i) * act(z_c),   h' = rec_act(z_o) * act(c')

(ConvLSTMCell.call, input_conv and recurrent_conv). Weights: kernel (*kernel_size, channels,
4*filters), recurrent_kernel (*kernel_size, filters, 4*filters), bias (4*filters,).
``unit_forget_bias`` only initialises the bias; ``dropout`` and ``recurrent_dropout`` act only in
training. The input convolution of every step is one correlation over (batch * timesteps) rows;
the recurrence runs one correlation per step over the batch. Computation is channels_last; a
channels_first layer's inputs, outputs and states are in Keras's channels_first layout.

States h and c are (batch, *out_spatial, filters) (channels_first: (batch, filters,
*out_spatial)), held flattened in the model's one state store (states.py) as any recurrent
layer's.
"""
from __future__ import annotations

from typing import Optional, Tuple

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
from .conv_ops import conv_output_length, correlate, pad_amounts, pad_input

MAX_FILTERS = 1 << 15
# Activations that act along the last axis, which is the channels axis only in channels_last:
# Keras applies them to its channels_first tensor along the last spatial axis.
AXIS_ACTIVATIONS = {"softmax", "log_softmax", "sparsemax"}


class ConvLSTM(Layer):
    """Subclasses set ``rank`` (the number of spatial axes) and ``keras_class``."""

    rank = 2
    state_names = ("h", "c")
    n_states = 2
    uses_mask = True
    # The tensors after the input of a call are its initial state [h, c] (layers/base.py).
    takes_initial_state = True

    def __init__(self, config: dict, ctx):
        super().__init__(config, ctx)
        rank, kind = self.rank, self.keras_class
        self.filters = config_int(config, "filters", self.name, maximum=MAX_FILTERS)
        self.kernel_size, self.strides, self.dilation_rate = layer_args.conv_window(self, rank)
        # Both versions refuse "causal" (standardize_padding / conv backend).
        self.padding = layer_args.padding(self, ("valid", "same"))
        self.data_format = layer_args.data_format(self)
        self.use_bias = bool(config.get("use_bias", True))
        self.return_sequences = bool(config.get("return_sequences", False))
        self.return_state = bool(config.get("return_state", False))
        self.go_backwards = bool(config.get("go_backwards", False))
        self.stateful = bool(config.get("stateful", False))
        self.zero_output_for_mask = bool(config.get("zero_output_for_mask", False))
        if config.get("time_major", False):
            raise UnsupportedConfigError(f"layer {self.name!r} ({kind}): time_major=True is not "
                                         "supported (inputs must be (batch, timesteps, ...))")
        self.activation = config.get("activation", "tanh")
        # The cell's default: "hard_sigmoid" in tf_keras base_conv_lstm.py, "sigmoid" in
        # Keras 3 conv_lstm.py (configs store it; the default only fills a missing key).
        default = "hard_sigmoid" if ctx.keras_major < 3 else "sigmoid"
        self.recurrent_activation = config.get("recurrent_activation", default)
        for key in ("activation", "recurrent_activation"):
            spec = getattr(self, key)
            if activation_name(spec) in SHAPE_CHANGING:
                raise UnsupportedConfigError(f"layer {self.name!r} ({kind}): {key} "
                                             f"{activation_name(spec)!r} changes the shape of "
                                             "the gates")
            c_activation(spec, ctx.keras_major)  # refuse unknown names at load
        self.n_channels: Optional[int] = None
        self.state_shape: Tuple[Optional[int], ...] = ()
        self.batch_size: Optional[int] = None
        self.kernel = self.recurrent_kernel = self.bias = None

    # -- shapes -----------------------------------------------------------------------------------
    @property
    def units(self) -> int:
        """The state width in the state store: one row of h (or c) flattened."""
        return int(np.prod(self.state_shape))

    def _split(self, shape):
        """(channels, spatial) of a per-step shape (no batch, no time axis)."""
        if self.data_format == "channels_first":
            return shape[0], tuple(shape[1:])
        return shape[-1], tuple(shape[:-1])

    def _join(self, n_channels, spatial):
        if self.data_format == "channels_first":
            return (n_channels,) + tuple(spatial)
        return tuple(spatial) + (n_channels,)

    def build(self, input_shapes):
        if len(input_shapes) not in (1, 3):
            raise ModelFormatError(
                f"layer {self.name!r}: a {self.keras_class} takes an input and optionally "
                f"[h, c] as initial_state, got {len(input_shapes)} tensors")
        return super().build(input_shapes)

    def compute_output_shapes(self, input_shapes):
        shape, kind = input_shapes[0], self.keras_class
        if len(shape) != self.rank + 3:
            raise ModelFormatError(
                f"layer {self.name!r} ({kind}) needs {self.rank + 3}-D input (batch, timesteps, "
                f"{self._layout_text()}), got shape {shape}")
        n_channels, spatial = self._split(shape[2:])
        if n_channels is None:
            raise ModelFormatError(f"layer {self.name!r} ({kind}): the channel axis of input "
                                   f"shape {shape} must be known")
        self.n_channels = int(n_channels)
        out = tuple(conv_output_length(n, k, self.padding, s, d) for n, k, s, d in
                    zip(spatial, self.kernel_size, self.strides, self.dilation_rate))
        if any(n is not None and n <= 0 for n in out):
            raise ModelFormatError(
                f"layer {self.name!r} ({kind}): spatial shape {spatial} is too small for "
                f"kernel_size={self.kernel_size}, dilation_rate={self.dilation_rate} with "
                "padding='valid'")
        self.state_shape = self._join(self.filters, out)
        n_batch = shape[0]
        if self.stateful:
            # tf_keras base_conv_rnn.py reset_states and Keras 3 RNN.build need the batch size
            # (and Keras 2, which allows unknown spatial axes, their sizes too).
            if n_batch is None or None in out:
                raise ModelFormatError(
                    f"layer {self.name!r} ({kind}) is stateful but the model does not fix the "
                    f"batch size and spatial shape (input shape {shape}; Keras requires "
                    "batch_input_shape/batch_shape for stateful RNNs)")
            self.batch_size = int(n_batch)
        for state in input_shapes[1:]:
            if tuple(state[1:]) != self.state_shape:
                raise ModelFormatError(
                    f"layer {self.name!r} ({kind}): initial_state has shape {state}, expected "
                    f"(batch, {', '.join(map(str, self.state_shape))})")
        state = (n_batch,) + self.state_shape
        output = (n_batch, shape[1]) + self.state_shape if self.return_sequences else state
        return [output] + ([state, state] if self.return_state else [])

    def tensor_shapes(self):
        # The outputs, and the input convolution of every step (four gates), which the
        # recurrence holds throughout a call.
        shape = self.input_shapes[0]
        gates = (shape[0], shape[1]) + self._split(self.state_shape)[1] + (4 * self.filters,)
        return list(self.output_shapes) + [gates]

    def _layout_text(self) -> str:
        axes = ("steps",) if self.rank == 1 else ("rows", "cols") if self.rank == 2 else (
            "conv_dim1", "conv_dim2", "conv_dim3")
        return ", ".join(self._join("channels", axes))

    # -- weights ----------------------------------------------------------------------------------
    def weight_shapes(self):
        k, f = self.kernel_size, self.filters
        shapes = [k + (self.n_channels, 4 * f), k + (f, 4 * f)]
        return shapes + [(4 * f,)] if self.use_bias else shapes

    def assign_weights(self, weights):
        self.kernel, self.recurrent_kernel = weights[0], weights[1]
        self.bias = weights[2] if self.use_bias else None

    def keras3_weights_path(self):
        return ("cell",)  # the weights belong to the ConvLSTMCell (keras/src/layers/rnn/rnn.py)

    # -- protocols --------------------------------------------------------------------------------
    def recurrent_layers(self):
        return [self]

    def compute_mask(self, inputs, masks, outputs):
        # ConvLSTM.compute_mask: the sequence keeps its timestep mask, last output and states
        # none.
        mask = masks[0] if masks else None
        return [mask if self.return_sequences else None] + [None] * (len(outputs) - 1)

    # -- running ----------------------------------------------------------------------------------
    def _to_last(self, x, first_axis: int):
        """A channels_first array's channel axis (at first_axis) moved last."""
        if self.data_format == "channels_first":
            return np.moveaxis(x, first_axis, -1)
        return x

    def _to_keras(self, x, first_axis: int):
        if self.data_format == "channels_first":
            return np.moveaxis(x, -1, first_axis)
        return x

    def _activate(self, spec, z):
        """Keras's activation of a (batch, *spatial, filters) gate, applied along the axis it
        takes in Keras's layout."""
        if self.data_format == "channels_first" and activation_name(spec) in AXIS_ACTIVATIONS:
            y = apply_activation(spec, np.ascontiguousarray(np.moveaxis(z, -1, 1)),
                                 self.ctx.keras_major)
            return np.moveaxis(y, 1, -1)
        return apply_activation(spec, np.ascontiguousarray(z), self.ctx.keras_major)

    def _input_gates(self, x, n_threads):
        """The input convolution of every step at once, bias added: (batch, T, *out, 4f)."""
        n_batch, n_steps = x.shape[:2]
        rows = x.reshape((n_batch * n_steps,) + x.shape[2:])
        rows = pad_input(rows, self.kernel_size, self.padding, self.strides, self.dilation_rate)
        try:
            z = correlate(rows, self.kernel, self.strides, self.dilation_rate,
                          n_threads=n_threads)
        except ValueError:
            raise ValueError(
                f"layer {self.name!r} ({self.keras_class}): an input of spatial shape "
                f"{x.shape[2:-1]} is too small for kernel_size={self.kernel_size}, "
                f"dilation_rate={self.dilation_rate}") from None
        if self.bias is not None:
            z += self.bias
        return z.reshape((n_batch, n_steps) + z.shape[1:])

    def _padded_state(self, h):
        """A zero buffer for h padded as the recurrent convolution's "same" padding asks, made
        once per call, and the view of its interior each step's h is written into."""
        pads = [pad_amounts(n, k, "same", 1) for n, k in zip(h.shape[1:-1], self.kernel_size)]
        buffer = np.zeros((h.shape[0],) + tuple(n + a + b for n, (a, b) in
                                                zip(h.shape[1:-1], pads)) + h.shape[-1:],
                          np.float32)
        interior = (slice(None),) + tuple(slice(a, a + n) for n, (a, _) in
                                          zip(h.shape[1:-1], pads))
        return buffer, buffer[interior]

    def _recurrent_gates(self, padded, interior, h, n_threads):
        np.copyto(interior, h)
        ones = (1,) * self.rank
        return correlate(padded, self.recurrent_kernel, ones, ones, n_threads=n_threads)

    def call(self, inputs, initial_state=None, n_threads=1, states=None, mask=None):
        """states: the model's state binding (states.Binding) holding this layer's [h, c]
        (flattened), used and advanced in place, or None (zero initial state). mask:
        (batch, timesteps) bools, False where a step keeps the state and repeats the last
        output (or gives zeros with zero_output_for_mask), as Keras's backend rnn does."""
        x = np.asarray(inputs[0], dtype=np.float32)
        kind = self.keras_class
        if x.ndim != self.rank + 3:
            raise ValueError(f"layer {self.name!r} ({kind}) needs {self.rank + 3}-D input, got "
                             f"shape {x.shape}")
        n_batch, n_steps = x.shape[:2]
        if n_steps == 0:
            raise ValueError(f"layer {self.name!r} ({kind}): the input has no timesteps")
        x = self._to_last(x, 2)
        z_in = self._input_gates(x, n_threads)
        state_shape = (n_batch,) + self._join(self.filters, z_in.shape[2:-1])
        # Where the final state goes: Keras RNN.call assigns it back to the layer's states when
        # stateful, even after an explicit initial_state.
        target = None if states is None else states.arrays(self)
        if target is not None:
            target = [a.reshape(state_shape) for a in target]  # views of the store
        if initial_state:
            given = initial_state
        elif target is not None:
            given = target
        else:
            given = [np.zeros(state_shape, np.float32)] * 2
        for name, s in zip(self.state_names, given):
            if tuple(np.shape(s)) != state_shape:
                raise ValueError(f"layer {self.name!r} ({kind}): initial state {name} has shape "
                                 f"{np.shape(s)}, expected {state_shape}")
        h, c = (np.array(self._to_last(np.asarray(s, np.float32), 1)) for s in given)
        f = self.filters
        order = range(n_steps - 1, -1, -1) if self.go_backwards else range(n_steps)
        outputs = np.empty((n_batch, n_steps) + h.shape[1:], np.float32) \
            if self.return_sequences else None
        last = np.zeros_like(h)
        if mask is not None:
            if np.shape(mask) != (n_batch, n_steps):
                # Masking over a (batch, timesteps, *spatial, channels) input masks every
                # position; Keras's rnn (keras/src/backend/tensorflow/rnn.py, tf_keras
                # backend.rnn) takes one flag per step and fails on it too.
                raise ValueError(
                    f"layer {self.name!r} ({kind}) takes a (batch, timesteps) mask, as Keras's "
                    f"rnn does; got a mask of shape {np.shape(mask)} for an input of shape "
                    f"{inputs[0].shape}")
            mask = np.asarray(mask, bool).reshape((n_batch, n_steps) + (1,) * (self.rank + 1))
        rec = self.recurrent_activation
        padded, interior = self._padded_state(h)
        for i, t in enumerate(order):
            z = z_in[:, t] + self._recurrent_gates(padded, interior, h, n_threads)
            gate_i = self._activate(rec, z[..., :f])
            gate_f = self._activate(rec, z[..., f:2 * f])
            new_c = gate_f * c + gate_i * self._activate(self.activation, z[..., 2 * f:3 * f])
            new_h = self._activate(rec, z[..., 3 * f:]) * self._activate(self.activation, new_c)
            if mask is None:
                h, c, out = new_h, new_c, new_h
            else:
                keep = mask[:, t]
                h, c = np.where(keep, new_h, h), np.where(keep, new_c, c)
                out = np.where(keep, new_h, np.float32(0) if self.zero_output_for_mask else last)
            last = out
            if outputs is not None:
                outputs[:, i] = out   # in processing order, as Keras returns it
        h, c = (np.ascontiguousarray(self._to_keras(s, 1), dtype=np.float32) for s in (h, c))
        if target is not None:
            np.copyto(target[0], h)
            np.copyto(target[1], c)
        if outputs is not None:
            result = np.ascontiguousarray(self._to_keras(outputs, 2))
        else:
            result = np.ascontiguousarray(self._to_keras(last, 1), dtype=np.float32)
        return [result, h.copy(), c.copy()] if self.return_state else [result]


class ConvLSTM1D(ConvLSTM):
    keras_class = "ConvLSTM1D"
    rank = 1


class ConvLSTM2D(ConvLSTM):
    keras_class = "ConvLSTM2D"
    rank = 2


class ConvLSTM3D(ConvLSTM):
    keras_class = "ConvLSTM3D"
    rank = 3
