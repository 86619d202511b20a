"""Keras LSTM (keras/src/layers/rnn/lstm.py, tf_keras/layers/rnn/lstm.py).

Weights: kernel (n_features, 4*units), recurrent_kernel (units, 4*units), bias (4*units), gate
order i, f, c, o. ``implementation``, ``unroll``, ``dropout``, ``recurrent_dropout`` and
``unit_forget_bias`` change training or the computation schedule, not inference results.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from .. import _kernels
from ..activations import activation_id
from ..errors import ModelFormatError, UnsupportedConfigError
from .base import Layer, Shape, config_int

# Largest layer fastlstm accepts: checked before any allocation so that a hostile config
# (units: 10**9) fails with a message, not an out-of-memory kill.
MAX_UNITS = 1 << 15


def pack_gate_blocks(w: np.ndarray, n_units: int) -> np.ndarray:
    """(n_rows, 4*n_units) Keras matrix -> (n_blocks, n_rows, 4, FL_LSTM_BLOCK), see fastlstm.h."""
    block = _kernels.LSTM_BLOCK
    n_rows = w.shape[0]
    n_blocks = -(-n_units // block)
    padded = np.zeros((n_rows, 4, n_blocks * block), dtype=np.float32)
    padded[:, :, :n_units] = w.reshape(n_rows, 4, n_units)
    return np.ascontiguousarray(padded.reshape(n_rows, 4, n_blocks, block).transpose(2, 0, 1, 3))


class LSTM(Layer):
    keras_class = "LSTM"

    def __init__(self, config: dict, ctx):
        super().__init__(config, ctx)
        self.units = config_int(config, "units", self.name, maximum=MAX_UNITS)
        self.use_bias = bool(config.get("use_bias", True))
        self.return_sequences = bool(config.get("return_sequences", False))
        self.return_state = bool(config.get("return_state", False))
        self.go_backwards = bool(config.get("go_backwards", False))
        self.stateful = bool(config.get("stateful", False))
        if config.get("time_major", False):
            raise UnsupportedConfigError(
                f"layer {self.name!r}: time_major=True is not supported (inputs must be "
                "(batch, timesteps, features))"
            )
        # Keras 2.0-2.2 defaulted recurrent_activation to hard_sigmoid; configs store it, but
        # fall back to each version's default when they do not.
        default_rec = "hard_sigmoid" if ctx.keras_version < (2, 3) else "sigmoid"
        self.activation = activation_id(config.get("activation", "tanh"), ctx.keras_major)
        self.recurrent_activation = activation_id(
            config.get("recurrent_activation", default_rec), ctx.keras_major)
        self.n_features: Optional[int] = None
        self.batch_size: Optional[int] = None
        self.kernel = None
        self.h = self.c = None

    def compute_output_shapes(self, input_shapes: List[Shape]) -> List[Shape]:
        shape = input_shapes[0]
        if len(shape) != 3:
            raise ModelFormatError(
                f"layer {self.name!r} (LSTM) needs 3-D input (batch, timesteps, features), "
                f"got shape {shape}")
        if shape[2] is None:
            raise ModelFormatError(f"layer {self.name!r} (LSTM): feature size is not known")
        self.n_features = int(shape[2])
        n_batch = shape[0]
        if self.stateful:
            if n_batch is None:
                raise ModelFormatError(
                    f"layer {self.name!r} is stateful but the model does not fix the batch size "
                    "(Keras requires batch_input_shape/batch_shape for stateful RNNs)")
            self.batch_size = int(n_batch)
            self.reset_states()
        for state_shape in input_shapes[1:]:
            if tuple(state_shape[1:]) != (self.units,):
                raise ModelFormatError(
                    f"layer {self.name!r}: initial_state has shape {state_shape}, expected "
                    f"(batch, {self.units})")
        out = (n_batch, shape[1], self.units) if self.return_sequences else (n_batch, self.units)
        states = [(n_batch, self.units)] * 2 if self.return_state else []
        return [out] + states

    def build(self, input_shapes):
        if len(input_shapes) not in (1, 3):
            raise ModelFormatError(
                f"layer {self.name!r}: an LSTM takes an input and optionally [h, c] as "
                f"initial_state, got {len(input_shapes)} tensors")
        return super().build(input_shapes)

    def keras3_weights_path(self):
        return ("cell",)  # the weights belong to the LSTMCell (keras/src/layers/rnn/lstm.py)

    def weight_shapes(self):
        u = self.units
        shapes = [(self.n_features, 4 * u), (u, 4 * u)]
        return shapes + [(4 * u,)] if self.use_bias else shapes

    def assign_weights(self, weights):
        kernel, recurrent = weights[0], weights[1]
        bias = weights[2] if self.use_bias else np.zeros(4 * self.units, np.float32)
        self.kernel = _kernels.LSTMKernel(
            pack_gate_blocks(np.concatenate([kernel, recurrent]), self.units),
            pack_gate_blocks(bias.reshape(1, -1), self.units)[:, 0],
            self.n_features, self.units, self.activation, self.recurrent_activation)

    def reset_states(self) -> None:
        # Zeroed in place: compiled stacks (model.StackPlan) hold these very arrays.
        if self.stateful:
            if self.h is None or self.h.shape != (self.batch_size, self.units):
                self.h = np.zeros((self.batch_size, self.units), np.float32)
                self.c = np.zeros((self.batch_size, self.units), np.float32)
            else:
                self.h.fill(0.0)
                self.c.fill(0.0)

    def call(self, inputs, initial_state=None, n_threads=1, carry=None):
        """carry: optional [h, c] arrays (a state handle's) used and advanced in place instead of
        the layer's own state."""
        x = np.ascontiguousarray(inputs[0], dtype=np.float32)
        n_batch, n_timesteps = x.shape[0], x.shape[1]
        # Where the final state goes: Keras RNN.call assigns it back to the layer's states when
        # stateful, even after an explicit initial_state.
        target = carry if carry is not None else (self.h, self.c) if self.stateful else None
        if carry is not None and carry[0].shape != (n_batch, self.units):
            raise ValueError(f"layer {self.name!r}: the state handle holds {carry[0].shape[0]} "
                             f"rows; got a batch of {n_batch}")
        if initial_state:
            h = np.array(initial_state[0], dtype=np.float32, order="C")
            c = np.array(initial_state[1], dtype=np.float32, order="C")
            for name, s in (("h", h), ("c", c)):
                if s.shape != (n_batch, self.units):
                    raise ValueError(f"layer {self.name!r}: initial state {name} has shape "
                                     f"{s.shape}, expected {(n_batch, self.units)}")
        elif target is not None:
            if n_batch != target[0].shape[0]:
                raise ValueError(
                    f"layer {self.name!r} is stateful with batch size {self.batch_size}; "
                    f"got a batch of {n_batch}")
            h, c = target
        else:
            h = np.zeros((n_batch, self.units), np.float32)
            c = np.zeros((n_batch, self.units), np.float32)
        if self.return_sequences:
            out = np.empty((n_batch, n_timesteps, self.units), np.float32)
        else:
            out = np.empty((n_batch, self.units), np.float32)
        self.kernel.forward(x, h, c, out, self.return_sequences, self.go_backwards, n_threads)
        if target is not None and h is not target[0]:
            np.copyto(target[0], h)
            np.copyto(target[1], c)
        if self.return_state:
            return [out, h.copy(), c.copy()]
        return [out]
