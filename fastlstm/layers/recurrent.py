"""What LSTM, GRU and SimpleRNN share (keras/src/layers/rnn/rnn.py, tf_keras/layers/rnn/
base_rnn.py): the RNN wrapper's config keys, the carried state of stateful layers, initial
states, and one call into the C driver (src/rnn.c) for the whole sequence.

``implementation``, ``unroll``, ``dropout`` and ``recurrent_dropout`` change training or the
computation schedule, not inference results.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from .. import _kernels
from ..activations import CActivation, c_activation
from ..errors import ModelFormatError, UnsupportedConfigError
from ..io import cudnn_weights, keras1_config, keras1_weights
from .base import Layer, Shape, config_int

# Largest layer fastlstm accepts: checked before any allocation so that a hostile config
# (units: 10**9) fails with a message, not an out-of-memory kill.
MAX_UNITS = 1 << 15


class RecurrentLayer(Layer):
    """Subclasses set ``state_names`` (LSTM: h, c; GRU and SimpleRNN: h), ``weight_shapes`` and
    ``assign_weights`` (which builds ``self.kernel``, a _kernels.RecurrentKernel)."""

    state_names = ("h",)
    uses_mask = True

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
        self.activation = c_activation(config.get("activation", "tanh"), ctx.keras_major)
        # Set by Bidirectional on its layers when they return sequences (keras/src/layers/rnn/
        # bidirectional.py force_zero_output_for_mask), or stored in a Keras 3 config.
        self.zero_output_for_mask = bool(config.get("zero_output_for_mask", False))
        self.n_features: Optional[int] = None
        self.batch_size: Optional[int] = None
        self.kernel = None

    @property
    def n_states(self) -> int:
        return len(self.state_names)

    @property
    def state_shape(self) -> Tuple[int, ...]:
        """One row of each state, as the state store (states.py) presents it."""
        return (self.units,)

    def recurrent_c_activation(self, config: dict, ctx) -> CActivation:
        # Keras 2.0-2.2 defaulted recurrent_activation to hard_sigmoid; configs store it, but
        # fall back to each version's default when they do not.
        default = "hard_sigmoid" if ctx.keras_version < (2, 3) else "sigmoid"
        return c_activation(config.get("recurrent_activation", default), ctx.keras_major)

    def compute_output_shapes(self, input_shapes: List[Shape]) -> List[Shape]:
        shape = input_shapes[0]
        kind = self.keras_class
        if len(shape) != 3:
            raise ModelFormatError(
                f"layer {self.name!r} ({kind}) needs 3-D input (batch, timesteps, features), "
                f"got shape {shape}")
        if shape[2] is None:
            raise ModelFormatError(f"layer {self.name!r} ({kind}): feature size is not known")
        self.n_features = int(shape[2])
        n_batch = shape[0]
        if self.stateful:
            if n_batch is None:
                raise ModelFormatError(
                    f"layer {self.name!r} is stateful but the model does not fix the batch size "
                    "(Keras requires batch_input_shape/batch_shape for stateful RNNs)")
            # The state is allocated at load once the whole model's sizes are checked
            # (budget.check_budget, then Model.allocate_state).
            self.batch_size = int(n_batch)
        for state_shape in input_shapes[1:]:
            if tuple(state_shape[1:]) != (self.units,):
                raise ModelFormatError(
                    f"layer {self.name!r}: initial_state has shape {state_shape}, expected "
                    f"(batch, {self.units})")
        out = (n_batch, shape[1], self.units) if self.return_sequences else (n_batch, self.units)
        states = [(n_batch, self.units)] * self.n_states if self.return_state else []
        return [out] + states

    def build(self, input_shapes):
        if len(input_shapes) not in (1, 1 + self.n_states):
            raise ModelFormatError(
                f"layer {self.name!r}: a {self.keras_class} takes an input and optionally "
                f"[{', '.join(self.state_names)}] as initial_state, got {len(input_shapes)} "
                "tensors")
        return super().build(input_shapes)

    def keras3_weights_path(self):
        return ("cell",)  # the weights belong to the cell (keras/src/layers/rnn/*.py)

    def recurrent_layers(self):
        return [self]

    def stack_ops(self, stack) -> bool:
        if self.kernel is None:
            return stack.decline("its weights are not set")
        if self.return_state:
            return stack.decline("return_state=True: a compiled chain passes on one output")
        stack.add_rnn(self)
        return True

    def compute_mask(self, inputs, masks, outputs):
        # RNN.compute_mask: the sequence keeps its timestep mask, states and last outputs none.
        mask = masks[0] if masks else None
        return [mask if self.return_sequences else None] + [None] * (len(outputs) - 1)

    def call(self, inputs, initial_state=None, n_threads=1, states=None, mask=None):
        """states: the model's state binding (states.Binding): this layer's [h] or [h, c] in
        a state store, used and advanced in place, or None (stateless: zero initial state).
        mask: (batch, timesteps) bools, False where a step is skipped. Shapes are checked
        once, by the kernel (_kernels.RecurrentKernel.forward), which names this layer."""
        x = _kernels.as_float32(inputs[0])
        n_batch, n_timesteps = x.shape[0], x.shape[1]
        # Where the final state goes: Keras RNN.call assigns it back to the layer's states when
        # stateful, even after an explicit initial_state.
        target = None if states is None else states.arrays(self)
        if initial_state:
            given = [_kernels.as_float32(s).copy() for s in initial_state]
        elif target is not None:
            given = target
        else:
            given = [np.zeros((n_batch, self.units), np.float32) for _ in self.state_names]
        if self.return_sequences:
            out = np.empty((n_batch, n_timesteps, self.units), np.float32)
        else:
            out = np.empty((n_batch, self.units), np.float32)
        if mask is not None:
            if np.ndim(mask) != 2:
                # A per-position mask (a Masking layer on 4-D input, a wrapped layer's mask)
                # reaches an RNN in Keras only as an error too ("Dimensions must be equal").
                raise ValueError(f"layer {self.name!r} ({self.keras_class}) takes a (batch, "
                                 f"timesteps) mask, got one of shape {np.shape(mask)}")
            mask = np.ascontiguousarray(mask, dtype=np.uint8)
        self.kernel.forward(x, given[0], given[1] if self.n_states > 1 else None, out,
                            self.return_sequences, self.go_backwards, n_threads, mask,
                            self.zero_output_for_mask)
        if target is not None and given is not target:
            for dst, src in zip(target, given):
                np.copyto(dst, src)
        if self.return_state:
            return [out] + [s.copy() for s in given]
        return [out]

    def _make_kernel(self, cell: str, packed, recurrent_activation: CActivation) -> None:
        weights, bias = packed
        if self.kernel is not None:
            # Later set_weights calls write into the same buffers, as Keras assigns variables
            # in place: a compiled stack of the model keeps reading this kernel.
            self.kernel.assign(weights, bias)
            return
        self.kernel = _kernels.RecurrentKernel(_kernels.CELLS[cell], weights, bias,
                                               self.n_features, self.units, self.activation,
                                               recurrent_activation)
        self.kernel.name = self.name

    def _bias_or_zeros(self, weights, shape):
        return weights[2] if self.use_bias else np.zeros(shape, np.float32)

    # The tensors after the input of a call are its initial state (layers/base.py).
    takes_initial_state = True
    # Keras 2's LSTM, GRU and SimpleRNN constructors: @interfaces.legacy_recurrent_support.
    keras1_interface = keras1_config.LEGACY_RECURRENT_SUPPORT

    # -- legacy weights ---------------------------------------------------------------------------
    # What tf_keras hdf5_format.preprocess_weights_for_loading tells from the class name.
    # The gate blocks of kernel, recurrent_kernel and bias, in order (LSTM i, f, c, o; GRU z, r,
    # h); () for SimpleRNN, whose weights are one block.
    gate_order: Tuple[str, ...] = ()
    # The gates in the order a Keras 1 file saved them, one (W, U, b) each (io/keras1_weights.py);
    # None where Keras 1 saved the Keras 2 layout (SimpleRNN) or had no such layer (CuDNN*).
    keras1_saved_gates: Optional[Tuple[str, ...]] = None
    # This layer's weights layout among those _convert_rnn_weights converts between
    # (io/cudnn_weights.py); None for SimpleRNN, whose weights Keras never converts.
    weights_layout: Optional[str] = None

    def convert_legacy_weights(self, arrays, keras1):
        """Keras 1 per-gate arrays concatenated (io/keras1_weights.py), then a CuDNN layout
        turned into this layer's or back (io/cudnn_weights.py), in Keras's order."""
        arrays = list(arrays)
        if keras1 and self.keras1_saved_gates is not None:
            arrays = keras1_weights.convert(
                arrays, saved_gates=self.keras1_saved_gates, gate_order=self.gate_order,
                expected=self.weight_shapes(), name=self.name, class_name=self.keras_class)
        if self.weights_layout is not None:
            arrays = cudnn_weights.convert_rnn_weights(
                arrays, layout=self.weights_layout, n_gates=len(self.gate_order),
                expected=self.weight_shapes(), name=self.name)
        return arrays
