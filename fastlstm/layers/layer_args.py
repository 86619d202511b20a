"""Config entries shared by the convolution, pooling, normalization and merge layers, read the way
Keras reads them: tf_keras utils/conv_utils.py (normalize_tuple, normalize_padding,
normalize_data_format), keras/src/utils/argument_validation.py (standardize_tuple,
standardize_padding), tf_keras utils/tf_utils.py validate_axis."""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

from ..errors import ModelFormatError, UnsupportedConfigError
from ..limits import checked_float, shown
from .base import Layer, config_int, single_input

# Window sizes, strides and dilations: far above any real model, low enough that index arithmetic
# on them stays small.
MAX_WINDOW = 1 << 16




def epsilon(layer: Layer, default: float = 1e-3) -> float:
    return checked_float(layer.config.get("epsilon", default),
                         f"layer {layer.name!r} ({layer.keras_class}): epsilon",
                         non_negative=True)


def padding(layer: Layer, allowed: Sequence[str]) -> str:
    value = layer.config.get("padding", "valid")
    if not isinstance(value, str) or value.lower() not in allowed:
        raise UnsupportedConfigError(f"layer {layer.name!r} ({layer.keras_class}): padding must "
                                     f"be one of {list(allowed)}, got {value!r}")
    return value.lower()


def data_format(layer: Layer) -> str:
    """None means Keras's image_data_format(), "channels_last" unless keras.json says otherwise
    (which a file does not record)."""
    value = layer.config.get("data_format") or "channels_last"
    if not isinstance(value, str) or value.lower() not in ("channels_last", "channels_first"):
        raise UnsupportedConfigError(f"layer {layer.name!r} ({layer.keras_class}): data_format "
                                     f"must be 'channels_last' or 'channels_first', got {value!r}")
    return value.lower()


def raw_axes(layer: Layer, key: str = "axis", default=-1) -> List[int]:
    """The config's axis entry as a list of ints, as written (negatives kept)."""
    value = layer.config.get(key, default)
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(a, int) and not isinstance(a, bool) for a in items):
        raise ModelFormatError(f"layer {layer.name!r} ({layer.keras_class}): {key} must be an "
                               f"integer or a non-empty list of integers, got {value!r}")
    return list(items)


def normalize_axes(layer: Layer, axes: Sequence[int], shape) -> List[int]:
    """Axes made non-negative for an input of this shape (batch axis included, as Keras counts);
    out-of-range and repeated axes are refused as Keras refuses them."""
    rank = len(shape)
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise ModelFormatError(f"layer {layer.name!r} ({layer.keras_class}): axis {a} is out "
                                   f"of range for input shape {tuple(shape)} (rank {rank})")
        out.append(a % rank)
    if len(set(out)) != len(out):
        raise ModelFormatError(f"layer {layer.name!r} ({layer.keras_class}): repeated axis in "
                               f"{list(axes)} for input shape {tuple(shape)}")
    return out


def known_dims(layer: Layer, shape, axes: Sequence[int], what: str) -> None:
    """Weights sized by these axes need them fixed by the model."""
    unknown = [a for a in axes if shape[a] is None]
    if unknown:
        raise ModelFormatError(f"layer {layer.name!r} ({layer.keras_class}): {what} axis "
                               f"{unknown[0]} of input shape {tuple(shape)} must be known")




def int_tuple(layer: Layer, key: str, n: int, default=None, allow_zero: bool = False,
              maximum: int = MAX_WINDOW) -> tuple:
    """n ints from one int (repeated) or a list of n, as tf_keras conv_utils.normalize_tuple and
    keras/src/utils/argument_validation.py standardize_tuple read ``kernel_size``, ``strides``,
    ``pool_size``, ``padding`` pairs: each at least 1 (0 too with allow_zero), at most
    ``maximum``."""
    value = layer.config.get(key, default)
    return int_tuple_value(layer, key, value, n, allow_zero, maximum)


def int_tuple_value(layer: Layer, what: str, value, n: int, allow_zero: bool = False,
                    maximum: int = MAX_WINDOW) -> tuple:
    """int_tuple for a value already taken from the config (an entry of a nested pair)."""
    items = value if isinstance(value, (list, tuple)) else [value] * n
    if len(items) != n:
        wanted = "one integer" if n == 1 else f"an integer or {n} integers"
        raise ModelFormatError(f"layer {layer.name!r} ({layer.keras_class}): {what} must be "
                               f"{wanted}, got {shown(value)}")
    minimum = 0 if allow_zero else 1
    return tuple(config_int({what: v}, what, layer.name, minimum=minimum, maximum=maximum)
                 for v in items)


def input_nd(layer: Layer, input_shapes, rank: int):
    """The one input shape of a ``rank``-D convolution or pooling layer: (batch, *spatial,
    channels), or (batch, channels, *spatial) with channels_first."""
    shape = single_input(layer, input_shapes)
    if len(shape) != rank + 2:
        axes = "steps" if rank == 1 else f"{rank} spatial axes"
        raise ModelFormatError(f"layer {layer.name!r} ({layer.keras_class}) needs "
                               f"{rank + 2}-D input (batch, {axes}, channels), got shape {shape}")
    return shape


def shown_tuple(values: tuple):
    """A per-axis tuple as the config of a layer of that rank writes it: one int for 1-D."""
    return values[0] if len(values) == 1 else values


def conv_window(layer: Layer, rank: int) -> Tuple[tuple, tuple, tuple]:
    """(kernel_size, strides, dilation_rate) of a convolution over ``rank`` spatial axes
    (Conv1D/2D and the ConvLSTM cells): kernel_size has at most MAX_WINDOW taps, since every
    output position gathers every tap (conv_ops.correlate's im2col rows), and strides above 1
    with a dilation_rate above 1 are refused as both versions refuse them (keras/src/layers/
    convolutional/base_conv.py and rnn/conv_lstm.py ConvLSTMCell.__init__; tf_keras
    base_conv.py, and its convolution for a ConvLSTM)."""
    kernel_size = int_tuple(layer, "kernel_size", rank)
    strides = int_tuple(layer, "strides", rank, 1)
    dilation_rate = int_tuple(layer, "dilation_rate", rank, 1)
    where = f"layer {layer.name!r} ({layer.keras_class})"
    if max(strides) > 1 and max(dilation_rate) > 1:
        raise ModelFormatError(f"{where}: strides={shown_tuple(strides)} with dilation_rate="
                               f"{shown_tuple(dilation_rate)}; Keras allows only one of them "
                               "above 1")
    if math.prod(kernel_size) > MAX_WINDOW:
        raise ModelFormatError(f"{where}: kernel_size={kernel_size} has "
                               f"{math.prod(kernel_size)} taps, above fastlstm's bound of "
                               f"{MAX_WINDOW}")
    return kernel_size, strides, dilation_rate


def spatial_axes(data_format: str, rank: int) -> tuple:
    """The axes of the ``rank`` spatial dimensions of a (batch, *spatial, channels) input, or
    (batch, channels, *spatial) with channels_first."""
    first = 2 if data_format == "channels_first" else 1
    return tuple(range(first, first + rank))
