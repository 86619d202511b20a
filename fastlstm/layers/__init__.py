"""The layers fastlstm supports, entered into the one table from Keras class names to layer
classes (layers/registry.py), and the check that a config uses only those."""
from __future__ import annotations

from typing import List, Tuple

from ..config import MODEL_CLASSES
from ..errors import UnsupportedConfigError
from .activation import Activation
from .advanced_activations import ELU, LeakyReLU, ReLU, ThresholdedReLU
from .attention import AdditiveAttention, Attention, ConvertToTensor
from .registry import LAYER_CLASSES, layer_class, register_layers
from .batch_normalization import BatchNormalization
from .bidirectional import Bidirectional
from .conv1d import Conv1D
from .conv2d import Conv2D
from .conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from .cudnn_gru import CuDNNGRU
from .cudnn_lstm import CuDNNLSTM
from .dense import Dense
from .dot import Dot
from .dropout import Dropout
from .embedding import Embedding
from .flatten import Flatten
from .global_pooling import (
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
)
from .input_layer import InputLayer
from .layer_normalization import LayerNormalization
from .gru import GRU
from .lstm import LSTM
from .mask_ops import Any, NotEqual
from .masking import Masking
from .multi_head_attention import MultiHeadAttention
from .padding import Cropping1D, ZeroPadding1D, ZeroPadding2D
from .merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from .permute import Permute
from .pooling import AveragePooling1D, MaxPooling1D
from .pooling2d import AveragePooling2D, AveragePooling3D, MaxPooling2D, MaxPooling3D
from .prelu import PReLU
from .repeat_vector import RepeatVector
from .reshape import Reshape
from .normalization import Normalization
from .regularization import TRAINING_ONLY_LAYERS
from .rescaling import Rescaling
from . import unsupported_advice
from .simple_rnn import SimpleRNN
from .softmax import Softmax
from .time_distributed import TimeDistributed
from .upsampling import UpSampling1D

register_layers((
    InputLayer, LSTM, GRU, SimpleRNN, Bidirectional, Embedding, Masking, Dense, TimeDistributed,
    RepeatVector, Activation, Dropout, Flatten, Reshape, Conv1D, MaxPooling1D, AveragePooling1D,
    GlobalAveragePooling1D, GlobalMaxPooling1D, BatchNormalization, LayerNormalization,
    Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Permute, CuDNNLSTM,
    CuDNNGRU, NotEqual, Any, Normalization, Rescaling) + TRAINING_ONLY_LAYERS)
register_layers((Attention, AdditiveAttention, ConvertToTensor, Dot, MultiHeadAttention))
register_layers((ConvLSTM1D, ConvLSTM2D, ConvLSTM3D))
register_layers((LeakyReLU, ELU, ReLU, ThresholdedReLU, PReLU, Softmax))
register_layers((
    Conv2D, MaxPooling2D, AveragePooling2D, MaxPooling3D, AveragePooling3D,
    GlobalAveragePooling2D, GlobalMaxPooling2D, ZeroPadding1D, ZeroPadding2D, Cropping1D,
    UpSampling1D))

# Keras class names that refer to code, not data: never supported, whatever else is added.
CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda")


def unsupported_layers(layer_dicts, custom=None) -> List[Tuple[str, str]]:
    """(class, name) of every layer in these configs (recursively) that fastlstm cannot build;
    the classes the config marks as user code are added to the set ``custom`` if given."""
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
            found.extend(unsupported_layers(inner, custom))
        elif layer_class(class_name) is None:
            found.append((str(class_name), str(name)))
            if custom is not None and unsupported_advice.is_custom(layer):
                custom.add(str(class_name))
        elif isinstance(config, dict):
            # What a wrapper wraps, named through it: "TimeDistributed(Lambda)", "td/lambda".
            for key in layer_class(class_name).wrapped_config_keys:
                inner = config.get(key)
                if isinstance(inner, dict):
                    found.extend((f"{class_name}({c})", f"{name}/{n}")
                                 for c, n in unsupported_layers([inner], custom))
    return found


def check_supported(model_config: dict) -> None:
    config = model_config.get("config") if isinstance(model_config, dict) else None
    layers = config if isinstance(config, list) else (config or {}).get("layers", [])
    custom = set()
    bad = unsupported_layers(layers, custom)
    if bad:
        listing = ", ".join(f"{name!r} ({cls})" for cls, name in bad)
        code = [n for c, n in bad if c.split("(")[-1].rstrip(")") in CODE_LAYERS]
        note = (" Lambda layers hold Python code, which fastlstm never runs from a file."
                if code else "")
        instead = "; ".join(unsupported_advice.advice([c for c, _ in bad], custom))
        raise UnsupportedConfigError(
            f"the model uses {len(bad)} unsupported layer(s): {listing}.{note} What you could "
            f"do instead: {instead}. Supported: {', '.join(sorted(LAYER_CLASSES))}, and nested "
            "Sequential/Functional models.")
