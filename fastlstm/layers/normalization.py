"""The Keras preprocessing layer Normalization (keras/src/layers/preprocessing/normalization.py,
tf_keras layers/preprocessing/normalization.py), not BatchNormalization or LayerNormalization:
a fixed per-feature standardization, ``(x - mean) / maximum(sqrt(variance), epsilon)``, or with
``invert=True`` ``mean + x * maximum(sqrt(variance), epsilon)``, where epsilon is
``backend.epsilon()`` (1e-7 in both versions, a global setting no file records), in float32.

``axis`` (an int, a list, or None for a scalar mean) names the axes kept: mean and variance have
the input dims of those axes, sorted (``_keep_axis = sorted(...)``, negatives made positive),
and are reshaped onto the input with 1 on every reduced axis. Where they come from:

- adapted (``mean``/``variance`` null in the config): the weights ``mean``, ``variance``,
  ``count`` (all non-trainable; count is an int64 scalar kept only for further adapting); in a
  Keras 3 weights file ``vars/0``, ``vars/1``, ``vars/2`` of the layer's group.
- given in the config (``mean=``, ``variance=``): no weights; the values, numbers or lists
  (Keras 3 also a serialized numpy array), broadcast onto the kept dims aligned from the right
  (Keras 3 ``build`` maps their dims onto the last kept axes, tf_keras multiplies them by
  ``np.ones(mean_and_var_shape)``), and Keras 3 refuses a mean of higher rank than the axes.

Masks: Keras 3 sets ``supports_masking = True``; tf_keras's preprocessing layer does not.
Not fused into compiled chains, for the reason layers/rescaling.py gives (no elementwise op in
the stack); it usually comes first, so the chain after it still fuses.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from ..limits import shown
from . import layer_args
from .base import Layer, single_input
from .rescaling import config_array

# keras/src/backend/config.py and tf_keras backend_config.py: epsilon() defaults to 1e-7.
KERAS_EPSILON = np.float32(1e-7)


class Normalization(Layer):
    keras_class = "Normalization"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        axis = config.get("axis", -1)
        self.raw_axes = [] if axis is None or axis == [] else layer_args.raw_axes(self)
        self.invert = config.get("invert", False)
        if not isinstance(self.invert, bool):
            raise ModelFormatError(f"layer {self.name!r} (Normalization): invert must be true or "
                                   f"false, got {shown(self.invert)}")
        self.given_mean = config_array(self, "mean")
        self.given_variance = config_array(self, "variance")
        if (self.given_mean is None) != (self.given_variance is None):
            raise ModelFormatError(f"layer {self.name!r} (Normalization): the config gives "
                                   "only one of mean and variance; Keras needs both or neither")
        if self.given_mean is not None:
            if self.given_mean.shape != self.given_variance.shape:
                raise ModelFormatError(
                    f"layer {self.name!r} (Normalization): mean has shape "
                    f"{self.given_mean.shape} and variance {self.given_variance.shape}; Keras "
                    "requires the same shape")
            if self.given_mean.ndim > len(self.raw_axes):
                raise ModelFormatError(
                    f"layer {self.name!r} (Normalization): mean of rank "
                    f"{self.given_mean.ndim} for axis {axis!r}; Keras requires a rank of at "
                    f"most the number of axes ({len(self.raw_axes)})")
        self.supports_masking = ctx.keras_major >= 3
        self.weight_shape = None
        self.broadcast_shape = None
        self.mean = self.denominator = None

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        keep = sorted(layer_args.normalize_axes(self, self.raw_axes, shape))
        layer_args.known_dims(self, shape, keep, "kept")
        self.weight_shape = tuple(shape[a] for a in keep)
        self.broadcast_shape = tuple(shape[a] if a in keep else 1 for a in range(len(shape)))
        if self.given_mean is not None:
            # Their dims go onto the last kept axes (Keras 3 build's expanded_shape), 1 on every
            # other axis; numpy broadcasts them at call time, so nothing of the input's size is
            # allocated for them.
            given = self.given_mean.shape
            expanded = [1] * len(shape)
            for i in range(1, len(given) + 1):
                expanded[keep[-i]] = given[-i]
            if any(e not in (1, b) for e, b in zip(expanded, self.broadcast_shape)):
                raise ModelFormatError(
                    f"layer {self.name!r} (Normalization): mean/variance of shape {given} do "
                    f"not broadcast onto the kept dims {self.weight_shape} of input shape "
                    f"{tuple(shape)}")
            self._set_statistics(self.given_mean.reshape(expanded),
                                 self.given_variance.reshape(expanded))
        return [shape]

    def weight_shapes(self):
        if self.given_mean is not None:
            return []
        return [self.weight_shape, self.weight_shape, ()]   # mean, variance, count

    def n_trainable_weights(self):
        return 0

    def assign_weights(self, weights):
        self._set_statistics(weights[0].reshape(self.broadcast_shape),
                             weights[1].reshape(self.broadcast_shape))

    def _set_statistics(self, mean, variance):
        """mean and variance shaped to broadcast onto the input."""
        mean = np.asarray(mean, dtype=np.float32)
        variance = np.asarray(variance, dtype=np.float32)
        self.mean = mean
        # maximum(sqrt(variance), epsilon): a negative variance gives NaN, as in Keras.
        with np.errstate(invalid="ignore"):
            self.denominator = np.maximum(np.sqrt(variance), KERAS_EPSILON)

    def call(self, inputs, initial_state=None, n_threads=1):
        x = np.asarray(inputs[0], dtype=np.float32)
        if self.invert:
            y = self.mean + x * self.denominator
        else:
            y = (x - self.mean) / self.denominator
        return [np.ascontiguousarray(y, dtype=np.float32)]
