"""Keras regularization layers that only act while training, and so are the identity at inference:
SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization.

Keras 3 (keras/src/layers/regularization/): each ``call`` computes noise only ``if training``
(spatial_dropout.py BaseSpatialDropout.call, gaussian_noise.py, gaussian_dropout.py,
alpha_dropout.py) and otherwise returns ``inputs``; ActivityRegularization.call returns
``inputs`` and only adds a loss. tf_keras (tf_keras/src/layers/regularization/): the same through
``backend.in_train_phase(noised, inputs, training)`` (gaussian_*.py, alpha_dropout.py) or
Dropout's ``smart_cond(training, dropped_inputs, identity)`` (the spatial ones subclass Dropout).

Masks: every one of them sets ``supports_masking = True`` in both versions (the spatial ones
inherit it from Dropout), so an Embedding(mask_zero=True) mask passes through to the LSTM after.

Config keys, validated as the Keras constructors validate them: ``rate`` in [0, 1] (Keras 3
Dropout/GaussianDropout/AlphaDropout: ``if not 0 <= rate <= 1``; tf_keras Dropout, and so its
spatial subclasses, the same; tf_keras GaussianDropout/AlphaDropout take any number);
``stddev`` in [0, 1] in Keras 3 (gaussian_noise.py), any number in tf_keras; ``l1``/``l2``
non-negative finite floats (keras/src/regularizers/regularizers.py validate_float_arg);
``data_format`` of SpatialDropout2D/3D channels_last/channels_first; ``seed`` an int or None;
``noise_shape`` None or a list of positive ints or None.
"""
from __future__ import annotations

from typing import Optional, Tuple

from ..errors import ModelFormatError
from ..io import keras1_config
from ..limits import checked_float, shown
from . import layer_args
from .base import Layer, single_input


class TrainingOnlyLayer(Layer):
    """The identity at inference, passing its input's mask on."""

    supports_masking = True
    # The input rank Keras's InputSpec(ndim=...) requires (None: any).
    input_ndim: Optional[int] = None
    # (key, Keras 3 bounds [0, 1], Keras 2 bounds [0, 1]) of the config's one number.
    number_key: Optional[Tuple[str, bool, bool]] = ("rate", True, True)
    has_data_format = False
    has_noise_shape = False

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        if self.number_key is not None:
            key, bounded3, bounded2 = self.number_key
            self._number(key, bounded3 if ctx.keras_major >= 3 else bounded2, required=True)
        seed = config.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ModelFormatError(f"layer {self.name!r} ({self.keras_class}): seed must be an "
                                   f"integer or null, got {shown(seed)}")
        if self.has_data_format:
            layer_args.data_format(self)
        if self.has_noise_shape:
            self._check_noise_shape(config.get("noise_shape"))

    def _number(self, key: str, bounded: bool, required: bool) -> float:
        if key not in self.config and not required:
            return 0.0
        what = f"layer {self.name!r} ({self.keras_class}): {key}"
        value = checked_float(self.config.get(key), what)
        if bounded and not 0.0 <= value <= 1.0:
            raise ModelFormatError(f"{what} must be between 0 and 1 (as Keras requires), got "
                                   f"{shown(self.config.get(key))}")
        return value

    def _check_noise_shape(self, noise_shape) -> None:
        if noise_shape is None:
            return
        if not isinstance(noise_shape, (list, tuple)) or not all(
                d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 1)
                for d in noise_shape):
            raise ModelFormatError(f"layer {self.name!r} ({self.keras_class}): noise_shape must "
                                   f"be null or a list of positive integers or nulls, got "
                                   f"{shown(noise_shape)}")

    def compute_output_shapes(self, input_shapes):
        shape = single_input(self, input_shapes)
        if self.input_ndim is not None and len(shape) != self.input_ndim:
            raise ModelFormatError(f"layer {self.name!r} ({self.keras_class}) needs "
                                   f"{self.input_ndim}-D input (batch included), got shape "
                                   f"{tuple(shape)}")
        if self.has_noise_shape and self.config.get("noise_shape") is not None:
            if len(self.config["noise_shape"]) != len(shape):
                raise ModelFormatError(
                    f"layer {self.name!r} ({self.keras_class}): noise_shape "
                    f"{self.config['noise_shape']} does not have the rank of input shape "
                    f"{tuple(shape)}")
        return [shape]

    def stack_ops(self, stack) -> bool:
        return True  # the identity: nothing to add to a fused chain

    def call(self, inputs, initial_state=None, n_threads=1):
        return [inputs[0]]


class SpatialDropout1D(TrainingOnlyLayer):
    keras_class = "SpatialDropout1D"
    input_ndim = 3
    # keras/legacy/interfaces.py (Keras 2.2.4) legacy_spatialdropout1d_support: p -> rate.
    keras1_interface = keras1_config.LEGACY_DROPOUT_SUPPORT


class SpatialDropout2D(TrainingOnlyLayer):
    keras_class = "SpatialDropout2D"
    input_ndim = 4
    has_data_format = True
    keras1_interface = keras1_config.LEGACY_SPATIAL_DROPOUT_ND_SUPPORT


class SpatialDropout3D(TrainingOnlyLayer):
    keras_class = "SpatialDropout3D"
    input_ndim = 5
    has_data_format = True
    keras1_interface = keras1_config.LEGACY_SPATIAL_DROPOUT_ND_SUPPORT


class GaussianNoise(TrainingOnlyLayer):
    keras_class = "GaussianNoise"
    number_key = ("stddev", True, False)
    # legacy_gaussiannoise_support: sigma -> stddev.
    keras1_interface = keras1_config.LEGACY_GAUSSIAN_NOISE_SUPPORT


class GaussianDropout(TrainingOnlyLayer):
    keras_class = "GaussianDropout"
    number_key = ("rate", True, False)
    # legacy_gaussiandropout_support: p -> rate.
    keras1_interface = keras1_config.LEGACY_DROPOUT_SUPPORT


class AlphaDropout(TrainingOnlyLayer):
    keras_class = "AlphaDropout"
    number_key = ("rate", True, False)
    has_noise_shape = True


class ActivityRegularization(TrainingOnlyLayer):
    keras_class = "ActivityRegularization"
    number_key = None

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        for key in ("l1", "l2"):
            what = f"layer {self.name!r} (ActivityRegularization): {key}"
            checked_float(config.get(key, 0.0), what, non_negative=True)


TRAINING_ONLY_LAYERS = (SpatialDropout1D, SpatialDropout2D, SpatialDropout3D, GaussianNoise,
                        GaussianDropout, AlphaDropout, ActivityRegularization)
