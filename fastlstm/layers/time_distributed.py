"""Keras TimeDistributed: applies the wrapped layer to every timestep independently. The wrapped
layer sees (batch * timesteps, ...) and its weights are the wrapper's weights."""
from __future__ import annotations

from ..errors import ModelFormatError, UnsupportedConfigError
from .base import Layer, single_input
from .registry import build_layer

WRAPPABLE = ("Dense", "Activation", "Dropout")


class TimeDistributed(Layer):
    keras_class = "TimeDistributed"
    supports_masking = True  # for the wrappable layers, which keep the timesteps
    wrapped_config_keys = ("layer",)

    @classmethod
    def unsupported_inner(cls, config, name):
        # A wrapped layer outside WRAPPABLE, which __init__ refuses too, listed with the rest.
        inner = config.get("layer")
        if isinstance(inner, dict) and inner.get("class_name") not in WRAPPABLE:
            inner_name = (inner.get("config") or {}).get("name", "?")
            return [(f"TimeDistributed({inner.get('class_name')})", f"{name}/{inner_name}")]
        return []

    def __init__(self, config, ctx):
        super().__init__(config, ctx)

        inner = config.get("layer")
        if not isinstance(inner, dict) or inner.get("class_name") not in WRAPPABLE:
            got = inner.get("class_name") if isinstance(inner, dict) else inner
            raise UnsupportedConfigError(
                f"layer {self.name!r}: TimeDistributed wraps {got!r}; fastlstm supports "
                f"TimeDistributed over {', '.join(WRAPPABLE)}")
        self.inner = build_layer(inner, ctx)

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        if len(shape) < 3:
            raise ModelFormatError(f"layer {self.name!r} (TimeDistributed) needs input of rank "
                                   f">= 3, got shape {shape}")
        inner_out = self.inner.build([(shape[0],) + tuple(shape[2:])])[0]
        return [(shape[0], shape[1]) + tuple(inner_out[1:])]

    def weight_shapes(self):
        return self.inner.weight_shapes()

    def keras3_weights_path(self):
        return ("layer",) + self.inner.keras3_weights_path()

    def convert_legacy_weights(self, arrays, keras1):
        # Keras's convert_nested_time_distributed: the wrapped layer's weights, converted as
        # its own. Keras converts them a second time for Keras 1 files, a no-op for the
        # wrappable layers (Keras 1 saved them in the Keras 2 layout).
        return self.inner.convert_legacy_weights(arrays, keras1)

    def assign_weights(self, weights):
        self.inner.assign_weights(weights)

    def stack_ops(self, stack) -> bool:
        # The wrapped Dense/Activation/Dropout acts on the last axis, as the stack's ops do.
        return len(self.input_shapes[0]) == 3 and self.inner.stack_ops(stack)

    def call(self, inputs, initial_state=None, n_threads=1):
        x = inputs[0]
        n_batch, n_timesteps = x.shape[0], x.shape[1]
        y = self.inner.call([x.reshape((n_batch * n_timesteps,) + x.shape[2:])],
                            n_threads=n_threads)[0]
        return [y.reshape((n_batch, n_timesteps) + y.shape[1:])]
