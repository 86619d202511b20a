"""Keras TimeDistributed (keras/src/layers/rnn/time_distributed.py, tf_keras/src/layers/rnn/
time_distributed.py): the wrapped layer, or nested model, applied to every timestep on its own.

The wrapped layer sees the timesteps folded into the batch, (batch * timesteps, ...), as
tf_keras's reshape path runs every built-in layer (``_always_use_reshape``); Keras 3 calls it
on each step's (batch, ...) slice and stacks the results, the same values for layers that treat
rows independently, which every stateless layer does. Its output shape is the wrapped layer's
for a (batch, ...) input with the timesteps put back after the batch (compute_output_shape of
both). Both refuse inputs of rank below 3.

Its weights are the wrapped layer's: a Keras 3 file keeps them under ``layer/``, a legacy HDF5
group lists them as the wrapped layer (a nested model: every sublayer's trainable weights, then
the non-trainable ones, e.g. BatchNormalization's moving statistics), and Keras converts them
as the wrapped layer's (convert_nested_time_distributed).

Masks: the output keeps the input's timestep mask (Keras 3 Layer.compute_mask returns it;
tf_keras reduces the input mask to (batch, timesteps) when the wrapped layer computes none) or,
in Keras 2, the wrapped layer's own output mask with the timesteps put back. A wrapped layer
that takes a mask gets the input mask of each step, i.e. the mask folded like the input.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError, UnsupportedConfigError
from .base import Layer, single_input
from .registry import build_layer

# Config dicts that are no layer to apply per step.
NOT_WRAPPABLE = ("InputLayer",)


def _folded(shape):
    """The shape of an array (batch, timesteps, ...) with its timesteps folded into the batch,
    (batch * timesteps, ...)."""
    return (shape[0] * shape[1],) + tuple(shape[2:])


class TimeDistributed(Layer):
    keras_class = "TimeDistributed"
    supports_masking = True   # both Kerases set it in __init__
    uses_mask = True          # passed on to a wrapped layer that takes one
    wrapped_config_keys = ("layer",)

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        inner = config.get("layer")
        class_name = inner.get("class_name") if isinstance(inner, dict) else None
        if not isinstance(class_name, str) or class_name in NOT_WRAPPABLE:
            raise ModelFormatError(
                f"layer {self.name!r} (TimeDistributed): 'layer' must be the config dict of the "
                f"wrapped layer ({{'class_name', 'config'}}), got "
                f"{class_name if isinstance(inner, dict) else type(inner).__name__!r}")
        self.inner = build_layer(inner, ctx)
        if self.inner.is_operation:
            raise UnsupportedConfigError(f"layer {self.name!r}: TimeDistributed wraps the "
                                         f"operation {class_name!r}, not a layer")
        stateful = [l.name for l in self.inner.leaf_layers() if l.stateful]
        if stateful:
            # Keras carries a stateful wrapped layer's state from one timestep to the next and
            # over calls (tf_keras steps it through backend.rnn instead of folding the
            # timesteps, _always_use_reshape); fastlstm runs wrapped layers stateless only.
            raise UnsupportedConfigError(
                f"layer {self.name!r}: TimeDistributed over stateful layers {stateful} is not "
                "supported (only stateless layers apply to each timestep independently)")

    # -- structure --------------------------------------------------------------------------------
    def sublayers(self):
        return [self.inner]

    def leaf_layers(self):
        return self.inner.leaf_layers()

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        if len(shape) < 3:
            raise ModelFormatError(f"layer {self.name!r} (TimeDistributed) needs input of rank "
                                   f">= 3 (batch, timesteps, ...), got shape {shape}")
        # The wrapped layer is built for (batch, ...), as both Kerases build it
        # (_get_child_input_shape, _remove_timesteps).
        child = (shape[0],) + tuple(shape[2:])
        outs = self.inner.build([child])
        if len(outs) != 1:
            raise UnsupportedConfigError(
                f"layer {self.name!r}: TimeDistributed wraps {self.inner.keras_class} "
                f"{self.inner.name!r}, which gives {len(outs)} outputs; fastlstm supports "
                "wrapped layers with one output")
        out = outs[0]
        if len(out) < 1 or None not in (out[0], child[0]) and out[0] != child[0]:
            raise UnsupportedConfigError(
                f"layer {self.name!r}: TimeDistributed wraps {self.inner.keras_class} "
                f"{self.inner.name!r}, whose output {out} does not keep the batch of its input "
                f"{child}: its timesteps could not be put back")
        return [(shape[0], shape[1]) + tuple(out[1:])]

    def tensor_shapes(self):
        # What the wrapped layer computes, for every timestep at once.
        steps = self.input_shapes[0][1]
        inner = [(s[0], steps) + tuple(s[1:]) for s in self.inner.tensor_shapes() if s]
        return list(self.output_shapes) + inner

    # -- weights ----------------------------------------------------------------------------------
    def weight_shapes(self):
        return self.inner.weight_shapes()

    def n_trainable_weights(self):
        # The wrapped layer's split (BatchNormalization's moving statistics are non-trainable),
        # all non-trainable when the wrapper is frozen.
        if self.config.get("trainable") is False:
            return 0
        return self.inner.n_trainable_weights()

    def load_keras3_group(self, group, where: str) -> None:
        """Keras 3 files: the wrapped layer's weights below ``layer`` (a nested model's under
        ``layer/layers/...``), read as the wrapped layer reads its own."""
        from ..io import keras3_weights

        self.inner.load_keras3_group(keras3_weights.child(group, "layer", where),
                                     f"{where}/layer")

    def convert_legacy_weights(self, arrays, keras1):
        # tf_keras hdf5_format.py convert_nested_time_distributed: the wrapped layer's weights,
        # converted as its own (a nested model's sublayer by sublayer). Keras converts them a
        # second time for Keras 1 files, a no-op for the layers Keras 1 could wrap (Dense and
        # the like, saved in the Keras 2 layout).
        return self.inner.convert_legacy_weights(arrays, keras1)

    def assign_weights(self, weights):
        # Checked and copied by set_weights; the wrapped layer holds these very arrays, as
        # pickling reads them from it (leaf_layers).
        self.inner.weights = weights
        self.inner.assign_weights(weights)

    # -- running ----------------------------------------------------------------------------------
    def stack_ops(self, stack) -> bool:
        # On (batch, timesteps, features), a wrapped Dense/Activation/Dropout acts on the last
        # axis, as the stack's ops do.
        return len(self.input_shapes[0]) == 3 and self.inner.stack_ops(stack)

    def check_input_values(self, x):
        self.inner.check_input_values(x)  # e.g. a wrapped Embedding's ids

    def call(self, inputs, initial_state=None, n_threads=1):
        return self.run_node(inputs, initial_state, [None], n_threads)[0]

    def run_node(self, inputs, initial_state, in_masks, n_threads, states=None, fused=None):
        if initial_state:
            raise UnsupportedConfigError(f"layer {self.name!r} (TimeDistributed) takes one "
                                         "input, no initial state")
        x = inputs[0]
        n_batch, n_steps = x.shape[0], x.shape[1]
        mask = in_masks[0] if in_masks else None
        inner_mask = None
        if mask is not None:
            mask = np.asarray(mask, bool)
            if mask.shape[:2] != (n_batch, n_steps):
                raise ValueError(f"layer {self.name!r} (TimeDistributed): mask of shape "
                                 f"{mask.shape} for input of shape {x.shape}")
            inner_mask = mask.reshape(_folded(mask.shape))
            if inner_mask.ndim < 2:
                # Each step's mask is then one bool per row: Keras 3 hands a wrapped layer
                # that takes a mask the (batch,) slice and tf_keras the folded (batch *
                # timesteps,) vector, which no masked layer (recurrent, pooling) can apply over
                # its own steps. Other layers pass it on unchanged or drop it, and the output
                # keeps the input's mask either way (_output_mask).
                if self.inner.uses_mask:
                    raise UnsupportedConfigError(
                        f"layer {self.name!r}: TimeDistributed passes a (batch, timesteps) mask "
                        f"to {self.inner.keras_class} {self.inner.name!r}, which takes a mask "
                        "over its own steps; Keras gives it one value per row")
                inner_mask = None
        # The wrapped layer runs stateless from zero states, every call (no state binding), and
        # its nested graph unfused (its recurrent layers hold no state slot).
        outs, inner_masks = self.inner.run_node([x.reshape(_folded(x.shape))], None, [inner_mask],
                                                n_threads)
        y = outs[0]
        if y.shape[0] != n_batch * n_steps:
            raise ModelFormatError(f"layer {self.name!r} (TimeDistributed): the wrapped layer "
                                   f"gave {y.shape[0]} rows for {n_batch * n_steps}")
        y = y.reshape((n_batch, n_steps) + y.shape[1:])
        return [y], [self._output_mask(mask, inner_masks[0] if inner_masks else None, y)]

    def _output_mask(self, mask, inner_mask, y):
        if self.ctx.keras_major >= 3:
            return mask  # keras/src/layers/layer.py compute_mask: the input's mask
        # tf_keras TimeDistributed.compute_mask: the wrapped layer's mask with the timesteps
        # put back, else the input mask reduced (any) to (batch, timesteps).
        if inner_mask is not None:
            inner_mask = np.asarray(inner_mask, bool)
            return inner_mask.reshape(y.shape[:2] + inner_mask.shape[1:])
        if mask is None:
            return None
        if mask.ndim == 2:
            return mask
        return mask.reshape(mask.shape[:2] + (int(np.prod(mask.shape[2:])),)).any(axis=-1)
