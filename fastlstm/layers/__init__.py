"""The layers fastlstm supports, entered into the one table from Keras class names to layer
classes (layers/registry.py), and the check that a config uses only those."""
from __future__ import annotations

from typing import List, Tuple

from ..config import MODEL_CLASSES
from ..errors import UnsupportedConfigError
from .activation import Activation
from .registry import LAYER_CLASSES, layer_class, register_layers
from .batch_normalization import BatchNormalization
from .bidirectional import Bidirectional
from .conv1d import Conv1D
from .cudnn_gru import CuDNNGRU
from .cudnn_lstm import CuDNNLSTM
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .flatten import Flatten
from .global_pooling import GlobalAveragePooling1D, GlobalMaxPooling1D
from .input_layer import InputLayer
from .layer_normalization import LayerNormalization
from .gru import GRU
from .lstm import LSTM
from .mask_ops import Any, NotEqual
from .masking import Masking
from .merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from .permute import Permute
from .pooling import AveragePooling1D, MaxPooling1D
from .repeat_vector import RepeatVector
from .reshape import Reshape
from .simple_rnn import SimpleRNN
from .time_distributed import TimeDistributed

register_layers((
    InputLayer, LSTM, GRU, SimpleRNN, Bidirectional, Embedding, Masking, Dense, TimeDistributed,
    RepeatVector, Activation, Dropout, Flatten, Reshape, Conv1D, MaxPooling1D, AveragePooling1D,
    GlobalAveragePooling1D, GlobalMaxPooling1D, BatchNormalization, LayerNormalization,
    Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Permute, CuDNNLSTM,
    CuDNNGRU, NotEqual, Any))

# Keras class names that refer to code, not data: never supported, whatever else is added.
CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda")


def unsupported_layers(layer_dicts) -> List[Tuple[str, str]]:
    """(class, name) of every layer in these configs (recursively) that fastlstm cannot build."""
    found = []
    for layer in layer_dicts:
        if not isinstance(layer, dict):
            continue
        class_name = layer.get("class_name")
        config = layer.get("config")
        name = (layer.get("name") or (config.get("name") if isinstance(config, dict) else None)
                or "?")
        if class_name in MODEL_CLASSES:
            inner = config if isinstance(config, list) else (config or {}).get("layers", [])
            found.extend(unsupported_layers(inner))
        elif layer_class(class_name) is None:
            found.append((str(class_name), str(name)))
        elif isinstance(config, dict):
            found.extend(layer_class(class_name).unsupported_inner(config, str(name)))
    return found


def check_supported(model_config: dict) -> None:
    config = model_config.get("config") if isinstance(model_config, dict) else None
    layers = config if isinstance(config, list) else (config or {}).get("layers", [])
    bad = unsupported_layers(layers)
    if bad:
        listing = ", ".join(f"{name!r} ({cls})" for cls, name in bad)
        code = [n for c, n in bad if c in CODE_LAYERS]
        note = (" Lambda layers hold Python code, which fastlstm never runs from a file."
                if code else "")
        raise UnsupportedConfigError(
            f"the model uses {len(bad)} unsupported layer(s): {listing}. Supported: "
            f"{', '.join(sorted(LAYER_CLASSES))}, and nested Sequential/Functional models.{note}")
