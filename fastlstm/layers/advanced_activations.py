"""Keras's element-wise activation layers with scalar parameters: LeakyReLU, ELU, ReLU and (Keras
1/2 only) ThresholdedReLU. Each is one C activation with its parameters (activations.CActivation),
so it joins a compiled chain as an Activation layer does, and runs the same formula alone.

Sources: keras/src/layers/activations/{leaky_relu,elu,relu}.py (Keras 3) and
tf_keras/src/layers/activation/{leaky_relu,elu,relu,thresholded_relu}.py (Keras 2; Keras 1 wrote
the same keys). Parameters are float32, as Keras 2 casts them (backend.cast_to_floatx) and both
versions' ops compute with them.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import activations
from ..activations import CActivation, apply_c_activation
from ..errors import ModelFormatError, UnsupportedConfigError
from ..limits import checked_float
from .base import Layer, single_input

FLOAT32_MAX = float(np.finfo(np.float32).max)


class ScalarActivationLayer(Layer):
    """An activation layer whose whole computation is one C activation, read from the config
    at load (so a bad config is refused before any weights are read)."""

    supports_masking = True

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.activation = self.c_activation()

    def c_activation(self) -> CActivation:
        raise NotImplementedError

    def number(self, key: str, default, non_negative: bool = False, finite: bool = True,
               value=None) -> float:
        """A parameter as a float: a number (Keras refuses None for every one of them) that
        float32, in which both versions compute, holds (finite: not beyond its range)."""
        value = self.config.get(key, default) if value is None else value
        what = f"layer {self.name!r} ({self.keras_class}): {key}"
        number = checked_float(value, what, finite=finite, non_negative=non_negative)
        if finite and abs(number) > FLOAT32_MAX:
            raise ModelFormatError(f"{what}={number!r} is beyond the float32 range Keras "
                                   "computes in")
        return number

    def refuse_key(self, key: str, instead: str) -> None:
        """A key this Keras version does not take (Keras refuses unknown keyword arguments)."""
        if key in self.config:
            raise UnsupportedConfigError(
                f"layer {self.name!r} ({self.keras_class}): Keras {self.ctx.keras_major} takes "
                f"{instead}, not {key} (got {key}={self.config[key]!r})")

    def compute_output_shapes(self, input_shapes):
        return [single_input(self, input_shapes)]

    def stack_ops(self, stack) -> bool:
        stack.add_activation(self.activation)
        return True

    def call(self, inputs, initial_state=None, n_threads=1):
        return [apply_c_activation(self.activation, inputs[0])]


class LeakyReLU(ScalarActivationLayer):
    """x if x > 0 else slope * x. Keras 2: ``alpha`` (default 0.3, any number: tf_keras checks
    only None; 0 is backend.relu's plain relu, so -inf gives 0, not 0 * -inf). Keras 3: ``negative_slope`` (default 0.3, >= 0), which the legacy ``alpha``
    overrides when given (keras/src/layers/activations/leaky_relu.py pops it)."""

    keras_class = "LeakyReLU"

    def c_activation(self):
        if self.ctx.keras_major < 3:
            self.refuse_key("negative_slope", "alpha")
            alpha = self.number("alpha", 0.3)
            return activations.relu() if alpha == 0.0 else activations.leaky_relu(alpha)
        key = "alpha" if "alpha" in self.config else "negative_slope"
        return activations.leaky_relu(self.number(key, 0.3, non_negative=True))


class ELU(ScalarActivationLayer):
    """x if x > 0 else alpha * (exp(x) - 1), ``alpha`` default 1.0 (Keras 3's ELU has no
    get_config of its own: Layer's automatic config records alpha)."""

    keras_class = "ELU"

    def c_activation(self):
        return activations.elu(self.number("alpha", 1.0))


class ReLU(ScalarActivationLayer):
    """Keras's ReLU(max_value, negative_slope, threshold), the same formula and checks in both
    versions (tf_keras backend.relu, keras/src/activations/activations.py ReLU.static_call):
    max_value None or >= 0 (+inf is no clip), negative_slope and threshold >= 0."""

    keras_class = "ReLU"

    def c_activation(self):
        max_value: Optional[float] = self.config.get("max_value")
        if max_value is not None:
            max_value = self.number("max_value", None, non_negative=True, finite=False,
                                    value=max_value)
        return activations.relu(self.number("negative_slope", 0.0, non_negative=True),
                                max_value, self.number("threshold", 0.0, non_negative=True),
                                multiply=self.ctx.keras_major < 3)


class ThresholdedReLU(ScalarActivationLayer):
    """x if x > theta else 0, ``theta`` default 1.0, >= 0 (tf_keras thresholded_relu.py; Keras 3
    has no such layer): Keras's ReLU with threshold theta."""

    keras_class = "ThresholdedReLU"

    def c_activation(self):
        # tf_keras thresholded_relu.py: inputs * cast(greater(inputs, theta)), for theta 0 too.
        return activations.relu(threshold=self.number("theta", 1.0, non_negative=True),
                                multiply=True, always_general=True)
