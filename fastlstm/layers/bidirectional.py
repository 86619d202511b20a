"""Keras Bidirectional (keras/src/layers/rnn/bidirectional.py, tf_keras/layers/rnn/
bidirectional.py) over LSTM, GRU and SimpleRNN.

The forward layer is the wrapped layer's config renamed ``forward_<name>``; the backward layer
is ``backward_layer`` when the config has one, else the same config with ``go_backwards``
flipped, named ``backward_<name>``. The backward output sequence is reversed back to input
order before the merge; ``return_state`` gives the forward states, then the backward ones.
Weights: the forward layer's, then the backward layer's (Keras 3 files keep them under
``forward_layer`` and ``backward_layer``).
"""
from __future__ import annotations

import copy

import numpy as np

from ..errors import ModelFormatError, UnsupportedConfigError
from ..io import legacy_weights
from .base import Layer
from .recurrent import RecurrentLayer
from .registry import layer_class

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _prefixed(name: str, prefix: str) -> str:
    return name if name.startswith(prefix) else prefix + name


class Bidirectional(Layer):
    keras_class = "Bidirectional"
    uses_mask = True
    takes_initial_state = True  # the forward layer's states, then the backward layer's
    wrapped_config_keys = ("layer", "backward_layer")

    def __init__(self, config, ctx):
        super().__init__(config, ctx)

        self.merge_mode = config.get("merge_mode", "concat")
        if self.merge_mode not in MERGE_MODES:
            raise ModelFormatError(f"layer {self.name!r} (Bidirectional): merge_mode "
                                   f"{self.merge_mode!r} is not one of {list(MERGE_MODES)}")
        built = []
        for key, prefix, flip in (("layer", "forward_", False), ("backward_layer", "backward_",
                                                                  True)):
            inner = config.get(key) if key == "layer" or config.get(key) else config.get("layer")
            flip = flip and not config.get("backward_layer")
            cls = layer_class(inner.get("class_name")) if isinstance(inner, dict) else None
            if cls is None or not issubclass(cls, RecurrentLayer):
                got = inner.get("class_name") if isinstance(inner, dict) else inner
                raise UnsupportedConfigError(
                    f"layer {self.name!r}: Bidirectional wraps {got!r}; fastlstm supports "
                    "Bidirectional over LSTM, GRU and SimpleRNN")
            sub = copy.deepcopy(inner.get("config"))
            if not isinstance(sub, dict):
                raise ModelFormatError(f"layer {self.name!r}: the wrapped layer has no config")
            if flip:
                sub["go_backwards"] = not sub.get("go_backwards", False)
            sub["name"] = _prefixed(str(sub.get("name", cls.keras_class.lower())), prefix)
            layer = cls(sub, ctx)
            layer.name = sub["name"]
            built.append(layer)
        self.forward, self.backward = built
        # force_zero_output_for_mask: masked steps output zeros when sequences are returned.
        for layer in built:
            layer.zero_output_for_mask = layer.return_sequences
        if self.forward.return_sequences != self.backward.return_sequences or \
                self.forward.return_state != self.backward.return_state or \
                self.forward.stateful != self.backward.stateful:
            raise ModelFormatError(f"layer {self.name!r}: forward and backward layers differ in "
                                   "return_sequences, return_state or stateful")
        self.return_sequences = self.forward.return_sequences
        self.return_state = self.forward.return_state
        self.stateful = self.forward.stateful

    @property
    def batch_size(self):
        return self.forward.batch_size

    def sublayers(self):
        return [self.forward, self.backward]

    def compute_output_shapes(self, input_shapes):
        n_fwd = self.forward.n_states
        if len(input_shapes) not in (1, 1 + n_fwd + self.backward.n_states):
            raise ModelFormatError(
                f"layer {self.name!r} (Bidirectional) takes an input and optionally the forward "
                f"then backward initial states, got {len(input_shapes)} tensors")
        states = input_shapes[1:]
        fwd = self.forward.build([input_shapes[0]] + list(states[:n_fwd]))
        bwd = self.backward.build([input_shapes[0]] + list(states[n_fwd:]))
        if fwd[0][:-1] != bwd[0][:-1]:
            raise ModelFormatError(f"layer {self.name!r}: forward and backward outputs differ "
                                   f"({fwd[0]} and {bwd[0]})")
        if self.merge_mode is None:
            outs = [fwd[0], bwd[0]]
        elif self.merge_mode == "concat":
            outs = [tuple(fwd[0][:-1]) + (fwd[0][-1] + bwd[0][-1],)]
        else:
            outs = [fwd[0]]
        if self.return_state:
            outs += list(fwd[1:]) + list(bwd[1:])
        return outs

    def weight_shapes(self):
        return self.forward.weight_shapes() + self.backward.weight_shapes()

    def assign_weights(self, weights):
        n = len(self.forward.weight_shapes())
        self.forward.set_weights(weights[:n])
        self.backward.set_weights(weights[n:])

    def convert_legacy_weights(self, arrays, keras1):
        """Keras splits a legacy file's arrays in halves, forward then backward, and each half
        converts as its layer's (legacy_weights.convert_nested_bidirectional)."""
        return legacy_weights.convert_nested_bidirectional(self.forward, self.backward, arrays,
                                                           keras1)

    def load_keras3_group(self, group, where: str) -> None:
        """Keras 3 files: ``forward_layer/cell/vars`` and ``backward_layer/cell/vars``, given
        to set_weights together (so that the wrapper holds them, as pickling reads them)."""
        from ..io import keras3_weights

        arrays = []
        for layer, key in ((self.forward, "forward_layer"), (self.backward, "backward_layer")):
            arrays += keras3_weights.read_path(group, (key,) + layer.keras3_weights_path(),
                                               where, layer.name)
        self.set_weights(arrays)

    def recurrent_layers(self):
        return [self.forward, self.backward]

    def count_params(self):
        return self.forward.count_params() + self.backward.count_params()

    def call(self, inputs, initial_state=None, n_threads=1, states=None, mask=None):
        n_fwd = self.forward.n_states
        given = list(initial_state) if initial_state else []
        outs = []
        for layer, part in ((self.forward, given[:n_fwd]), (self.backward, given[n_fwd:])):
            outs.append(layer.call(inputs[:1], part or None, n_threads, states=states,
                                   mask=mask))
        y, y_rev = outs[0][0], outs[1][0]
        if self.return_sequences:
            y_rev = y_rev[:, ::-1]
        if self.merge_mode is None:
            merged = [y, np.ascontiguousarray(y_rev)]
        elif self.merge_mode == "concat":
            merged = [np.concatenate([y, y_rev], axis=-1)]
        elif self.merge_mode == "sum":
            merged = [y + y_rev]
        elif self.merge_mode == "mul":
            merged = [y * y_rev]
        else:
            merged = [(y + y_rev) / np.float32(2)]
        if self.return_state:
            merged += outs[0][1:] + outs[1][1:]
        return merged

    def compute_mask(self, inputs, masks, outputs):
        mask = masks[0] if masks and self.return_sequences else None
        n_out = 2 if self.merge_mode is None else 1
        return [mask] * n_out + [None] * (len(outputs) - n_out)
