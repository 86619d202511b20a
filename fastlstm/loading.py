"""Entry points that turn Keras files into fastlstm models."""
from __future__ import annotations

import contextlib
import os
import struct
import zipfile
import zlib
from typing import Optional

from .budget import allocate_states, check_budget
from .config import check_nesting, parse_model
from .errors import ModelFormatError, UnsupportedConfigError
from .io.detect import sniff
from .io import keras1_config
from .io.h5_attrs import parse_version
from .io.keras_h5 import KerasH5Reader
from .io.keras_zip import KerasZipReader
from .layers import LAYER_CLASSES, check_supported
from .layers.base import LoadContext
from .limits import parse_json
from .model import Model


# What h5py, zipfile and zlib raise on damaged bytes; the loaders' own checks raise
# ModelFormatError with specifics, these get the file's name and the library's words.
_LIBRARY_ERRORS = (OSError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile, zlib.error,
                   struct.error, UnicodeError, OverflowError, ValueError,
                   TypeError)  # h5py: "Unknown string encoding" of a damaged attribute


@contextlib.contextmanager
def damaged_file_errors(path: str):
    try:
        yield
    except (FileNotFoundError, ModelFormatError, UnsupportedConfigError):
        raise
    except _LIBRARY_ERRORS as e:
        raise ModelFormatError(f"{path!r} is damaged or not a Keras file: "
                               f"{type(e).__name__}: {e}") from None


def _version(override, from_file, model_config) -> tuple:
    if override is not None:
        version = parse_version(override)
        if version is None or version[0] not in (1, 2, 3):
            raise ValueError(f"keras_version must look like '2' or '3.1', got {override!r}")
        return version
    if from_file:
        return from_file
    return guess_version(model_config)


def guess_version(model_config) -> tuple:
    """For a config without a recorded version (Keras 3 ``to_json`` writes none): Keras 3
    configs carry ``module``/``registered_name`` keys that Keras 2 never wrote."""
    if isinstance(model_config, dict):
        if model_config.get("keras_version"):
            return parse_version(model_config["keras_version"])
        if "module" in model_config or "registered_name" in model_config:
            return (3, 0)
    return (2, 0)


def build_model(model_config, version: tuple) -> Model:
    check_nesting(model_config, LAYER_CLASSES)  # before anything recurses into nested models
    graph_config = model_config
    if version[0] < 3:
        # Keras 2 read Keras 1 configs through its legacy constructor keywords (keys decide, not
        # the recorded version, which old files lack); Keras 3 has no such conversion.
        graph_config = keras1_config.convert_model_config(model_config, LAYER_CLASSES)
    check_supported(graph_config)
    model = Model(parse_model(graph_config, LAYER_CLASSES), LoadContext(version))
    model.build()
    check_budget(model)  # sizes from the config, bounded before they are allocated
    allocate_states(model)
    model.keras_config = model_config  # kept for pickling (rebuilt from it, never evaluated)
    return model


def load_model(path, keras_version: Optional[str] = None) -> Model:
    """Load a whole Keras model file.

    Parameters
    ----------
    path : str or os.PathLike
        ``.h5`` from Keras 1/2/3 or ``.keras`` (Keras 3 zip; tf.keras HDF5 files named .keras
        too). The format is read from the content, not the extension.
    keras_version : str, optional
        Overrides the version recorded in the file ("2", "3.1"). It decides version-dependent
        maths, e.g. ``hard_sigmoid`` is ``clip(0.2x+0.5)`` in Keras 1/2, ``clip(x/6+0.5)`` in 3.

    Returns
    -------
    Model

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFormatError
        Not a Keras model file, or damaged, or weights that disagree with the config.
    UnsupportedConfigError
        Layers or options fastlstm does not implement (all of them listed).
    """
    path = os.fspath(path)
    kind = sniff(path)
    with damaged_file_errors(path):
        return _load_model(path, kind, keras_version)


def _load_model(path: str, kind: str, keras_version) -> Model:
    if kind == "zip":
        with KerasZipReader(path) as reader:
            # Built before model.weights.h5 is inflated: the model bounds its size.
            model = build_model(reader.model_config,
                                _version(keras_version, reader.keras_version, reader.model_config))
            model.load_keras3_weights(reader.open_weights(model).file, f"{path}:model.weights.h5")
            model.file_format = "Keras 3 .keras zip"
        return model
    with KerasH5Reader(path) as reader:
        if reader.model_config is None:
            raise ModelFormatError(
                f"{path!r} holds weights only (no model_config); build the model with "
                "fastlstm.model_from_json(config_text) and call model.load_weights(path)")
        model = build_model(reader.model_config,
                            _version(keras_version, reader.keras_version, reader.model_config))
        _load_h5_weights(model, reader, path)
        layout = "Keras 3 object-path" if reader.layout == "keras3" else "Keras 1/2 legacy"
        model.file_format = f"HDF5, {layout} weights layout"
    return model


def _load_h5_weights(model: Model, reader: KerasH5Reader, path: str) -> None:
    if reader.layout == "legacy":
        version = reader.weights_keras_version
        model.load_legacy_weights(reader.legacy_layer_weights(), repr(path),
                                  keras1=version is not None and version[0] == 1)
    elif reader.layout == "keras3":
        model.load_keras3_weights(reader.weights_group, path)
    else:
        raise ModelFormatError(f"{path!r} has no Keras weights (no model_weights/layer_names/"
                               "layers groups)")


def load_weights(model: Model, path) -> None:
    """Keras ``model.load_weights``: Keras 1/2 ``save_weights`` HDF5 (layers matched by position,
    as Keras does), Keras 3 ``.weights.h5`` (matched by the object-path layout), or the weights
    inside a full ``.h5``/``.keras`` model file."""
    path = os.fspath(path)
    kind = sniff(path)
    with damaged_file_errors(path):
        if kind == "zip":
            with KerasZipReader(path) as reader:
                model.load_keras3_weights(reader.open_weights(model).file,
                                          f"{path}:model.weights.h5")
            return
        with KerasH5Reader(path) as reader:
            _load_h5_weights(model, reader, path)


def model_from_json(text, keras_version: Optional[str] = None) -> Model:
    """Build a model from Keras ``model.to_json()`` text.

    Parameters
    ----------
    text : str or bytes
        The JSON config.
    keras_version : str, optional
        As in :func:`load_model`; Keras-3-style configs (``module`` keys) default to 3, others
        to 2.

    Returns
    -------
    Model
        Without weights until ``model.load_weights(path)``.
    """
    if not isinstance(text, (str, bytes, bytearray)):
        raise TypeError(f"model_from_json expects JSON text, got {type(text).__name__}")
    config = parse_json(text, "model_from_json")
    model = build_model(config, _version(keras_version, None, config))
    model.file_format = "JSON config (weights from load_weights)"
    return model
