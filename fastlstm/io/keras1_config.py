"""Keras 1 layer configs -> Keras 2 ones, as Keras 2 read them.

Keras 2 (multi-backend 2.0-2.2.5) loaded a Keras 1 model by passing each saved layer config to
the Keras 2 constructor, whose ``@interfaces.legacy_*_support`` decorators renamed the Keras 1
keywords (keras/legacy/interfaces.py, tag 2.2.4, ``generate_legacy_interface``): for each
key of ``value_conversions`` a known old value is replaced, then each ``(old, new)`` of
``conversions`` is renamed (both present is an error), after the class's preprocessor ran.

- LSTM, GRU, SimpleRNN (``legacy_recurrent_support``): output_dim -> units, init ->
  kernel_initializer, inner_init -> recurrent_initializer, inner_activation ->
  recurrent_activation, W/U/b_regularizer -> kernel/recurrent/bias_regularizer, dropout_W ->
  dropout, dropout_U -> recurrent_dropout, consume_less -> implementation ({cpu: 0, mem: 1,
  gpu: 2}); ``recurrent_args_preprocessor``: forget_bias_init 'one' -> unit_forget_bias=True
  (other values dropped), input_dim/input_length -> input_shape (input_length, input_dim).
- Dense (``legacy_dense_support``): output_dim -> units, init -> kernel_initializer,
  W/b_regularizer, W/b_constraint -> kernel/bias_*, bias -> use_bias; the Keras 2 Dense
  constructor turns input_dim into input_shape (input_dim,).
- Embedding (``legacy_embedding_support``): init -> embeddings_initializer, W_regularizer ->
  embeddings_regularizer, W_constraint -> embeddings_constraint; ``dropout`` is dropped.
- Dropout (``legacy_dropout_support``), SpatialDropout1D, GaussianDropout: p -> rate;
  SpatialDropout2D/3D also dim_ordering -> data_format (tf/th/default -> channels_last/
  channels_first/None); GaussianNoise: sigma -> stddev. InputLayer (``legacy_input_support``)
  and the base Layer: input_dtype -> dtype.
- Convolution1D (an alias of Conv1D in Keras 2, ``legacy_conv1d_support``): nb_filter ->
  filters, filter_length -> kernel_size, subsample_length -> strides, border_mode -> padding,
  init/W_*/b_* -> kernel_*/bias_*, bias -> use_bias, input_dim/input_length -> input_shape.
  MaxPooling1D/AveragePooling1D (``legacy_pooling1d_support``): pool_length -> pool_size,
  stride -> strides, border_mode -> padding. BatchNormalization (``legacy_batchnorm_support``):
  beta_init/gamma_init -> *_initializer, mode 0 dropped, other modes refused. Their Keras 1
  weights: see keras1_weights (Conv1D's kernel; BatchNormalization's gamma, beta, running_mean,
  running_std are Keras 2's order, running_std holding the variance, as Keras 1.2.2's
  K.normalize_batch_in_training returned it). Keras 1 Merge nodes become Keras 2 merge layers
  (MERGE_MODES).
- TimeDistributed and Bidirectional configs hold wrapped layer configs (the keys each wrapper
  class names in ``wrapped_config_keys``), converted the same way.

Keras 1 validated ``consume_less`` itself ("Unknown `consume_less` mode"); a value outside cpu,
mem, gpu is refused here too, since it also decided how the weights were saved (see
keras1_weights). A Keras 1 GRU computes what Keras 2 calls ``reset_after=False`` (Keras 2.0-2.2's
default), written into the converted config. Keys Keras 2 only used for training (initializers,
regularizers, constraints) are renamed like the others and then ignored. An input shape is
written as ``batch_input_shape`` (None, ...) where the layer has none, which is where fastlstm
reads a Sequential's input shape. Configs without Keras 1 keys come out unchanged.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

from ..config import MODEL_CLASSES, LayerClasses, class_fact
from ..errors import ModelFormatError, UnsupportedConfigError

CONSUME_LESS = {"cpu": 0, "mem": 1, "gpu": 2}


def _recurrent_args(config: dict, name: str) -> None:
    if "forget_bias_init" in config:
        if config.pop("forget_bias_init") == "one":
            config["unit_forget_bias"] = True
    if "input_dim" in config:
        input_length = config.pop("input_length", None)
        _set_input_shape(config, [input_length, config.pop("input_dim")])
    if "consume_less" in config and config["consume_less"] not in CONSUME_LESS:
        raise ModelFormatError(
            f"layer {name!r}: consume_less={config['consume_less']!r} is not a Keras 1 mode; "
            f"expected one of {sorted(CONSUME_LESS)}")


def _keras1_gru(config: dict, name: str) -> None:
    _recurrent_args(config, name)
    if "units" not in config and "output_dim" in config:
        config.setdefault("reset_after", False)


def _dense_args(config: dict, name: str) -> None:
    if "input_dim" in config:
        _set_input_shape(config, [config.pop("input_dim")])


def _embedding_args(config: dict, name: str) -> None:
    config.pop("dropout", None)


def _set_input_shape(config: dict, shape: list) -> None:
    if "batch_input_shape" not in config and "batch_shape" not in config:
        config["batch_input_shape"] = [None] + shape


Preprocessor = Callable[[dict, str], None]
# (preprocessor, [(old, new)], {old key: {old value: new value}}): one
# ``generate_legacy_interface(...)`` of keras/legacy/interfaces.py. Each Keras 2 class decorates
# its constructor with one; here each layer class names its own in ``keras1_interface``
# (fastlstm/layers, None for the classes without).
Interface = Tuple[Optional[Preprocessor], List[Tuple[str, str]], Dict[str, dict]]

RECURRENT_CONVERSIONS = [
    ("output_dim", "units"), ("init", "kernel_initializer"),
    ("inner_init", "recurrent_initializer"), ("inner_activation", "recurrent_activation"),
    ("W_regularizer", "kernel_regularizer"), ("b_regularizer", "bias_regularizer"),
    ("U_regularizer", "recurrent_regularizer"), ("dropout_W", "dropout"),
    ("dropout_U", "recurrent_dropout"), ("consume_less", "implementation")]

LEGACY_RECURRENT_SUPPORT: Interface = (_recurrent_args, RECURRENT_CONVERSIONS,
                                       {"consume_less": CONSUME_LESS})
# Keras 2's GRU has legacy_recurrent_support; the preprocessor adds reset_after=False.
LEGACY_GRU_SUPPORT: Interface = (_keras1_gru, RECURRENT_CONVERSIONS,
                                 {"consume_less": CONSUME_LESS})
LEGACY_DENSE_SUPPORT: Interface = (_dense_args, [
    ("output_dim", "units"), ("init", "kernel_initializer"),
    ("W_regularizer", "kernel_regularizer"), ("b_regularizer", "bias_regularizer"),
    ("W_constraint", "kernel_constraint"), ("b_constraint", "bias_constraint"),
    ("bias", "use_bias")], {})
LEGACY_EMBEDDING_SUPPORT: Interface = (_embedding_args, [
    ("init", "embeddings_initializer"), ("W_regularizer", "embeddings_regularizer"),
    ("W_constraint", "embeddings_constraint")], {})
LEGACY_DROPOUT_SUPPORT: Interface = (None, [("p", "rate")], {})
# legacy_spatialdropoutNd_support; legacy_gaussiannoise_support.
DIM_ORDERING = {"dim_ordering": {"tf": "channels_last", "th": "channels_first", "default": None}}
LEGACY_SPATIAL_DROPOUT_ND_SUPPORT: Interface = (None, [("p", "rate"),
                                                       ("dim_ordering", "data_format")],
                                                DIM_ORDERING)
LEGACY_GAUSSIAN_NOISE_SUPPORT: Interface = (None, [("sigma", "stddev")], {})
NO_INTERFACE: Interface = (None, [], {})


def _conv1d_args(config: dict, name: str) -> None:
    # conv1d_args_preprocessor: input_dim (and input_length, None when absent) -> input_shape.
    if "input_dim" in config:
        input_length = config.pop("input_length", None)
        _set_input_shape(config, [input_length, config.pop("input_dim")])


def _batchnorm_args(config: dict, name: str) -> None:
    # batchnorm_args_preprocessor: Keras 2 refuses mode 1 (sample-wise) and 2 (feature-wise
    # with the batch's own statistics, at inference too) and drops mode 0.
    if "mode" in config:
        mode = config.pop("mode")
        if mode != 0:
            raise UnsupportedConfigError(
                f"layer {name!r} (BatchNormalization): Keras 1 mode={mode!r} is not supported "
                "(Keras 2 refuses it too: only mode 0, normalizing with the moving statistics "
                "at inference, exists after Keras 1)")


LEGACY_CONV1D_SUPPORT: Interface = (_conv1d_args, [
    ("nb_filter", "filters"), ("filter_length", "kernel_size"),
    ("subsample_length", "strides"), ("border_mode", "padding"),
    ("init", "kernel_initializer"), ("W_regularizer", "kernel_regularizer"),
    ("b_regularizer", "bias_regularizer"), ("W_constraint", "kernel_constraint"),
    ("b_constraint", "bias_constraint"), ("bias", "use_bias")], {})
LEGACY_POOLING1D_SUPPORT: Interface = (None, [
    ("pool_length", "pool_size"), ("stride", "strides"), ("border_mode", "padding")], {})
LEGACY_BATCHNORM_SUPPORT: Interface = (_batchnorm_args, [
    ("beta_init", "beta_initializer"), ("gamma_init", "gamma_initializer")], {})

# Keras 1 class names Keras 2 kept as aliases (keras/layers/convolutional.py 2.2.4:
# ``Convolution1D = Conv1D``).
KERAS1_CLASS_ALIASES = {"Convolution1D": "Conv1D"}

# Keras 1's Merge layer (keras/engine/topology.py 1.2.2; Keras 2.0-2.1.6 kept it as
# keras/legacy/layers.py Merge): its call folds the inputs left to right, ``s += x`` (sum, then
# ``s /= len(inputs)`` for ave), ``s *= x`` (mul), ``K.maximum(s, x)`` (max), or
# ``K.concatenate(inputs, axis=concat_axis)`` (concat): what the Keras 2 merge layers compute.
MERGE_MODES = {"sum": "Add", "mul": "Multiply", "ave": "Average", "max": "Maximum",
               "concat": "Concatenate"}


def _convert_merge(config: dict) -> Tuple[str, dict]:
    name = str(config.get("name", "merge"))
    mode, mode_type = config.get("mode", "sum"), config.get("mode_type", "raw")
    if mode_type != "raw" or mode not in MERGE_MODES:
        shown_mode = "a Python function" if mode_type != "raw" else repr(mode)
        raise UnsupportedConfigError(
            f"layer {name!r} (Keras 1 Merge): mode {shown_mode} is not supported; supported "
            f"modes: {sorted(MERGE_MODES)} (dot and cos have no Keras 2 merge layer of the same "
            "maths here; a function mode is Python code, never run from a file)")
    for key in ("output_shape", "output_mask"):
        if config.get(key) is not None:
            raise UnsupportedConfigError(
                f"layer {name!r} (Keras 1 Merge): a custom {key} is not supported")
    new = {k: v for k, v in config.items()
           if k in ("name", "trainable", "dtype", "input_dtype")}
    if mode == "concat":
        new["axis"] = config.get("concat_axis", -1)
    return MERGE_MODES[mode], new


def convert_layer_config(class_name: str, config: dict, layer_classes: LayerClasses) -> dict:
    """One layer's config with its Keras 1 keywords converted (a new dict); ``layer_classes``
    is the layer table (fastlstm.layers.LAYER_CLASSES), asked for the class's
    ``keras1_interface`` and which keys hold wrapped layers."""
    config = dict(config)
    name = str(config.get("name", class_name))
    if "input_dtype" in config and "dtype" not in config:
        config["dtype"] = config.pop("input_dtype")
    interface = class_fact(layer_classes, class_name, "keras1_interface", None)
    preprocessor, conversions, value_conversions = interface or NO_INTERFACE
    if preprocessor is not None:
        preprocessor(config, name)
    for key, values in value_conversions.items():
        if key in config and config[key] in values:
            config[key] = values[config[key]]
    for old, new in conversions:
        if old in config:
            if new in config:
                raise ModelFormatError(
                    f"layer {name!r} ({class_name}) has both the Keras 1 key {old!r} and the "
                    f"Keras 2 key {new!r}")
            config[new] = config.pop(old)
    for key in class_fact(layer_classes, class_name, "wrapped_config_keys", ()):
        if isinstance(config.get(key), dict):
            config[key] = convert_layer(config[key], layer_classes)
    return config


def convert_layer(layer: dict, layer_classes: LayerClasses) -> dict:
    """A ``{"class_name", "config", ...}`` layer entry (nested models included), converted."""
    if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
        return layer
    class_name, config = layer["class_name"], layer.get("config")
    if class_name in MODEL_CLASSES:
        return {**layer, "config": _convert_model_body(config, layer_classes)}
    if not isinstance(config, dict):
        return layer
    if class_name == "Merge":
        if isinstance(config.get("layers"), list):
            raise UnsupportedConfigError(
                f"layer {config.get('name', 'merge')!r}: a Keras 1 Merge of models (Sequential "
                "branches) is not supported; only Merge nodes of a functional Model")
        class_name, config = _convert_merge(config)
    class_name = KERAS1_CLASS_ALIASES.get(class_name, class_name)
    return {**layer, "class_name": class_name,
            "config": convert_layer_config(class_name, config, layer_classes)}


def _convert_model_body(config, layer_classes: LayerClasses):
    if isinstance(config, list):                       # Sequential, Keras 1.2-2.2.0
        return [convert_layer(l, layer_classes) for l in config]
    if isinstance(config, dict) and isinstance(config.get("layers"), list):
        return {**config, "layers": [convert_layer(l, layer_classes) for l in config["layers"]]}
    return config


def convert_model_config(model_config, layer_classes: LayerClasses):
    """A whole model config (``{"class_name", "config"}``) with every layer converted."""
    if not isinstance(model_config, dict):
        return model_config
    return convert_layer(model_config, layer_classes)
