"""Weights files into a built model: Keras ``model.load_weights`` for every format, and the
one translation of a damaged file's library errors into ModelFormatError."""
from __future__ import annotations

import contextlib
import os
import struct
import zipfile
import zlib

from ..errors import ModelFormatError, UnsupportedConfigError
from .detect import sniff
from .keras_h5 import KerasH5Reader
from . import keras3_weights
from .keras_zip import KerasZipReader

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


def read_h5_weights(model, reader: KerasH5Reader, path: str) -> None:
    if reader.layout == "legacy":
        version = reader.weights_keras_version
        load_legacy_weights(model, reader.legacy_layer_weights(), repr(path),
                                  keras1=version is not None and version[0] == 1)
    elif reader.layout == "keras3":
        load_keras3_weights(model, reader.weights_group, path)
    else:
        raise ModelFormatError(f"{path!r} has no Keras weights (no model_weights/layer_names/"
                               "layers groups)")


def load_weights(model, path) -> None:
    """Keras ``model.load_weights``: Keras 1/2 ``save_weights`` HDF5 (layers matched by position,
    as Keras does), Keras 3 ``.weights.h5`` (matched by the object-path layout), or the weights
    inside a full ``.h5``/``.keras`` model file."""
    path = os.fspath(path)
    kind = sniff(path)
    with damaged_file_errors(path):
        if kind == "zip":
            with KerasZipReader(path) as reader:
                load_keras3_weights(model, reader.open_weights(model).file,
                                    f"{path}:model.weights.h5")
            return
        with KerasH5Reader(path) as reader:
            read_h5_weights(model, reader, path)


def load_legacy_weights(model, layer_weights, source: str, keras1: bool = False) -> None:
    """Weights from a Keras 1/2-style HDF5 group, matched to layers by position and
    converted as Keras 2 converts them (Keras 1 per-gate and CuDNN layouts, see
    io/legacy_weights.py); ``keras1`` when the group records no Keras 2+ version."""
    layers = model.weighted_layers()
    if len(layer_weights) != len(layers):
        raise ModelFormatError(
            f"{source} holds weights for {len(layer_weights)} layers "
            f"({[n for n, _ in layer_weights]}), the model has {len(layers)} layers with "
            f"weights ({[l.name for l in layers]})")
    for layer, (_, arrays) in zip(layers, layer_weights):
        layer.set_weights(layer.convert_legacy_weights(list(arrays), keras1))


def load_keras3_weights(model, group, source: str) -> None:
    """Weights from the Keras 3 object-path layout (see io/keras3_weights.py)."""
    layers = list(model.layers.values())
    if model.keras_class == "Sequential":
        layers = model.sublayers()
    container = keras3_weights.container(group, source)
    paths = keras3_weights.layer_paths([l.keras_class for l in layers])
    for layer, path in zip(layers, paths):
        if layer.weight_shapes():
            layer.load_keras3_group(keras3_weights.child(container, path, source),
                                    f"{source}/{path}")
