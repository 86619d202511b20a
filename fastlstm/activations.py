"""Keras activation names -> the C core's activations (id and parameters), and whole-array
application.

The formulas live once, in src/activations.h; this module only resolves names. Version matters
for one name: ``hard_sigmoid`` is ``clip(0.2x + 0.5, 0, 1)`` in Keras 1/2 (tf_keras/backend.py)
and ``relu6(x + 3) / 6`` in every Keras 3 (keras/src/backend/tensorflow/nn.py). The advanced
activation layers (layers/advanced_activations.py) give their parameters through the same
CActivation, so that they run in the compiled stacks as Dense activations do.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Tuple

import numpy as np

from . import _kernels
from .errors import UnsupportedConfigError

# Order mirrors enum fl_activation in src/fastlstm.h.
_C_NAMES = [
    "linear", "sigmoid", "tanh", "hard_sigmoid_k2", "hard_sigmoid_k3", "relu", "relu6",
    "leaky_relu", "elu", "selu", "celu", "softplus", "softsign", "silu", "hard_silu", "gelu",
    "gelu_tanh", "exponential", "mish", "log_sigmoid", "hard_tanh", "hard_shrink", "soft_shrink",
    "tanh_shrink", "sparse_plus", "sparse_sigmoid", "squareplus", "relu_general", "softmax",
    "log_softmax", "sparsemax",
]
C_IDS = {name: i for i, name in enumerate(_C_NAMES)}
assert len(C_IDS) == _kernels.ACTIVATION_COUNT, "activation table out of sync with fastlstm.h"


class CActivation(NamedTuple):
    """An activation as the C core takes it (fl_activation_spec, src/fastlstm.h): its id and
    up to _kernels.ACTIVATION_PARAMS parameters."""

    id: int
    params: Tuple[float, ...] = ()


# The parameters the plain names carry: keras.activations.leaky_relu(negative_slope=0.2) and
# elu(alpha=1.0) (keras/src/activations/activations.py).
_NAME_PARAMS = {"leaky_relu": (0.2,), "elu": (1.0,)}
# Ids only the layers use (ReLU with parameters, ThresholdedReLU), never a config's name.
_INTERNAL = {"hard_sigmoid_k2", "hard_sigmoid_k3", "gelu_tanh", "relu_general"}

_ALIASES = {"swish": "silu", "hard_swish": "hard_silu", None: "linear", "": "linear"}
# glu halves the last axis (x1 * sigmoid(x2)); it is valid on Dense outputs only.
SHAPE_CHANGING = {"glu"}


def activation_name(spec) -> str:
    """The plain name of a Keras activation as stored in a layer config.

    Keras 2/3 store built-ins as strings; Keras 3 may store a serialized function dict, and
    ``gelu`` with ``approximate=True`` can only appear that way.
    """
    if isinstance(spec, dict):
        config = spec.get("config")
        if isinstance(config, str):
            spec = config
        elif isinstance(config, dict) and isinstance(config.get("name"), str):
            spec = config["name"]
        else:
            raise UnsupportedConfigError(f"unsupported activation config {spec!r}")
    if spec is not None and not isinstance(spec, str):
        raise UnsupportedConfigError(f"activation must be a name, got {spec!r}")
    return _ALIASES.get(spec, spec)


_PUBLIC_NAMES = sorted(set(C_IDS) - _INTERNAL | {"hard_sigmoid", "swish", "hard_swish"})


def c_activation(spec, keras_major: int) -> CActivation:
    """The C activation of an element-wise or row-wise activation name in a file written by
    Keras ``keras_major``."""
    name = activation_name(spec)
    if name == "hard_sigmoid":
        return CActivation(C_IDS["hard_sigmoid_k2" if keras_major < 3 else "hard_sigmoid_k3"])
    if name in _PUBLIC_NAMES:
        return CActivation(C_IDS[name], _NAME_PARAMS.get(name, ()))
    raise UnsupportedConfigError(
        f"unsupported activation {spec!r}; expected one of {_PUBLIC_NAMES}"
        + (" (glu changes the feature size, so it is allowed on Dense and Activation only)"
           if name == "glu" else "")
    )


def leaky_relu(negative_slope: float) -> CActivation:
    return CActivation(C_IDS["leaky_relu"], (negative_slope,))


def elu(alpha: float) -> CActivation:
    return CActivation(C_IDS["elu"], (alpha,))


def relu(negative_slope: float = 0.0, max_value=None, threshold: float = 0.0,
         multiply: bool = False, always_general: bool = False) -> CActivation:
    """Keras's ReLU with parameters (max_value None: no clip). multiply: the part above the
    threshold is x * cast(x > threshold) (tf_keras backend.relu) rather than where(x >
    threshold, x, 0) (Keras 3 ReLU.static_call), which differ on NaN and -inf.

    The parameter sets both versions compute with a plainer op use its id (backend.relu's own
    shortcuts: tf.nn.relu, relu6, leaky_relu), unless always_general."""
    if not always_general and threshold == 0.0:
        if max_value is None:
            if negative_slope == 0.0:
                return CActivation(C_IDS["relu"])
            return leaky_relu(negative_slope)
        if max_value == 6.0 and negative_slope == 0.0:
            return CActivation(C_IDS["relu6"])
    return CActivation(C_IDS["relu_general"],
                       (negative_slope, math.inf if max_value is None else max_value, threshold,
                        1.0 if multiply and threshold != 0.0 or always_general else 0.0))


def apply_c_activation(act: CActivation, x: np.ndarray) -> np.ndarray:
    """A C activation over the last axis of an array, as a new float32 array."""
    y = np.array(x, dtype=np.float32, order="C", copy=True)
    if y.size:
        rows = y.reshape(-1, y.shape[-1]) if y.ndim > 1 else y.reshape(1, -1)
        _kernels.activation_apply(act, rows)
    return y


def apply_activation(spec, x: np.ndarray, keras_major: int) -> np.ndarray:
    """Apply a Keras activation over the last axis of a float32 array, returning a new array."""
    name = activation_name(spec)
    if name == "linear":
        return x
    if name == "glu":
        # keras/src/backend/tensorflow/nn.py glu: split the last axis in halves, x1 * sigmoid(x2).
        n = x.shape[-1]
        if n % 2:
            raise ValueError(f"glu needs an even last dimension, got {n}")
        gate = apply_activation("sigmoid", np.ascontiguousarray(x[..., n // 2:]), keras_major)
        return x[..., : n // 2] * gate
    return apply_c_activation(c_activation(spec, keras_major), x)
