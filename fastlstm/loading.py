"""Entry points that turn Keras files into fastlstm models."""
from __future__ import annotations

import os
from typing import Optional

from .errors import ModelFormatError
from .io.detect import sniff
from .io.h5_attrs import parse_version
from .io.keras_h5 import KerasH5Reader
from .io.keras_zip import KerasZipReader
from .io.weights_file import damaged_file_errors, load_keras3_weights, read_h5_weights
from .limits import parse_json
from .model import Model


def build_model(model_config, version: tuple, fuse: bool = True) -> Model:
    return Model.from_keras_config(model_config, version, fuse)


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


def load_model(path, keras_version: Optional[str] = None, *, fuse: bool = True) -> Model:
    """Load a whole Keras model file.

    Parameters
    ----------
    path : str or os.PathLike
        ``.h5`` from Keras 1/2/3 or ``.keras`` (Keras 3 zip; tf.keras HDF5 files named .keras
        too). The format is read from the content, not the extension.
    keras_version : str, optional
        Overrides the version recorded in the file ("2", "3.1"). It decides version-dependent
        maths, e.g. ``hard_sigmoid`` is ``clip(0.2x+0.5)`` in Keras 1/2, ``clip(x/6+0.5)`` in 3.
    fuse : bool, default True
        Run every chain of recurrent, Dense, Activation and Dropout layers as one C call.
        False calls each layer on its own: the same kernels and results, slower; the
        reference that fused runs are tested against.

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
        return _load_model(path, kind, keras_version, fuse)


def _load_model(path: str, kind: str, keras_version, fuse: bool) -> Model:
    if kind == "zip":
        with KerasZipReader(path) as reader:
            # Built before model.weights.h5 is inflated: the model bounds its size.
            model = build_model(reader.model_config,
                                _version(keras_version, reader.keras_version, reader.model_config),
                                fuse)
            load_keras3_weights(model, reader.open_weights(model).file, f"{path}:model.weights.h5")
            model.file_format = "Keras 3 .keras zip"
        return model
    with KerasH5Reader(path) as reader:
        if reader.model_config is None:
            raise ModelFormatError(
                f"{path!r} holds weights only (no model_config); build the model with "
                "fastlstm.model_from_json(config_text) and call model.load_weights(path)")
        model = build_model(reader.model_config,
                            _version(keras_version, reader.keras_version, reader.model_config),
                            fuse)
        read_h5_weights(model, reader, path)
        layout = "Keras 3 object-path" if reader.layout == "keras3" else "Keras 1/2 legacy"
        model.file_format = f"HDF5, {layout} weights layout"
    return model


def model_from_json(text, keras_version: Optional[str] = None, *, fuse: bool = True) -> Model:
    """Build a model from Keras ``model.to_json()`` text.

    Parameters
    ----------
    text : str or bytes
        The JSON config.
    keras_version : str, optional
        As in :func:`load_model`; Keras-3-style configs (``module`` keys) default to 3, others
        to 2.
    fuse : bool, default True
        As in :func:`load_model`.

    Returns
    -------
    Model
        Without weights until ``model.load_weights(path)``.
    """
    if not isinstance(text, (str, bytes, bytearray)):
        raise TypeError(f"model_from_json expects JSON text, got {type(text).__name__}")
    config = parse_json(text, "model_from_json")
    model = build_model(config, _version(keras_version, None, config), fuse)
    model.file_format = "JSON config (weights from load_weights)"
    return model
