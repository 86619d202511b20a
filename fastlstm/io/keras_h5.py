"""KerasH5Reader: Keras HDF5 files.

Covers Keras 2 ``model.save('m.h5')`` (root attrs ``model_config``/``keras_version``, weights under
``model_weights``), Keras 3 ``model.save('m.h5')`` (same legacy layout, Keras 3 config),
Keras 1/2 ``save_weights('w.h5')`` (the ``model_weights`` layout at the root) and Keras 3
``.weights.h5`` (the object-path layout of keras/src/saving/saving_lib.py, see keras3_weights).
"""
from __future__ import annotations

import os

import h5py
import numpy as np

from ..errors import ModelFormatError
from .h5_attrs import json_attr, parse_version, str_attr, string_list
from .h5_guard import check_global_heaps_in_file
from .h5_safety import open_child

# Refuse absurd datasets before reading them (a hostile file can declare any shape).
MAX_WEIGHT_ELEMENTS = 1 << 31


def read_dataset(ds, where: str) -> h5py.Dataset:
    """The dataset, checked to be a numeric array but not read: Layer.set_weights reads it once
    its shape matches the config."""
    if not isinstance(ds, h5py.Dataset):
        raise ModelFormatError(f"{where} is not a dataset")
    if ds.dtype.kind not in "biuf" or ds.shape is None or ds.size > MAX_WEIGHT_ELEMENTS:
        raise ModelFormatError(f"{where} has dtype {ds.dtype} and shape {ds.shape}; expected a "
                               "numeric weight array")
    return ds


def read_weight(w, where: str) -> np.ndarray:
    """A weight (an h5py dataset whose shape the caller has checked, or an array) read as an
    array of numbers (integers are cast to float32 later, as Layer.set_weights casts them);
    anything else is refused."""
    array = np.asarray(w[()] if isinstance(w, h5py.Dataset) else w)
    if array.dtype.kind not in "biuf":
        raise ModelFormatError(f"{where} has dtype {array.dtype}, expected numbers")
    return array


class KerasH5Reader:
    """One open Keras HDF5 file; use as a context manager."""

    def __init__(self, source, name=None):
        self.name = name or (os.fspath(source) if not hasattr(source, "read") else "<memory>")
        if not hasattr(source, "read"):  # in-memory sources are checked by their reader
            check_global_heaps_in_file(source, self.name)
        try:
            self.file = h5py.File(source, "r")
        except OSError as e:
            raise ModelFormatError(f"{self.name!r} is not a readable HDF5 file: {e}") from None
        root = self.file
        self.model_config = json_attr(root, "model_config")
        model_weights = open_child(root, "model_weights", repr(self.name))
        if model_weights is not None:
            self.layout = "legacy"
            self.weights_group = model_weights
        elif string_list(root, "layer_names") is not None:
            self.layout = "legacy"
            self.weights_group = root
        elif any(open_child(root, key, repr(self.name)) is not None
                 for key in ("layers", "_layer_checkpoint_dependencies", "vars")):
            self.layout = "keras3"
            self.weights_group = root
        else:
            self.layout = "none"
            self.weights_group = None
        version = str_attr(root, "keras_version")
        if version is None and self.weights_group is not None:
            version = str_attr(self.weights_group, "keras_version")
        if version is None and self.layout == "legacy":
            version = "1"  # Keras 1 wrote no keras_version (tf_keras hdf5_format.py)
        self.keras_version = parse_version(version)
        # The version the weights are converted from: the weights group's own attribute, "1"
        # when it has none (tf_keras hdf5_format.load_weights_from_hdf5_group; Keras 1 wrote
        # keras_version only at the root of full model files, never into the weights group).
        self.weights_keras_version = None
        if self.layout == "legacy":
            self.weights_keras_version = parse_version(
                str_attr(self.weights_group, "keras_version") or "1")

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def legacy_layer_weights(self):
        """[(group name, [arrays])] for every layer group that holds weights, in file order.

        Keras matches these to the model's weighted layers by position, not by name
        (tf_keras hdf5_format.load_weights_from_hdf5_group), and so does fastlstm.
        """
        if self.layout != "legacy":
            raise ModelFormatError(f"{self.name!r} has no Keras 1/2-style weight groups")
        group = self.weights_group
        names = string_list(group, "layer_names")
        if names is None:
            raise ModelFormatError(f"{self.name!r}: weights group has no 'layer_names' attribute")
        out = []
        for layer_name in names:
            g = open_child(group, layer_name, repr(self.name))
            if g is None:
                raise ModelFormatError(f"{self.name!r}: layer_names lists {layer_name!r} but the "
                                       "file has no such group")
            weight_names = string_list(g, "weight_names") or []
            arrays = []
            for wname in weight_names:
                w = open_child(g, wname, repr(self.name))
                if w is None:
                    raise ModelFormatError(f"{self.name!r}: layer {layer_name!r} lists weight "
                                           f"{wname!r} but the file has no such dataset")
                arrays.append(read_dataset(w, f"weight {wname!r} of layer {layer_name!r}"))
            if arrays:
                out.append((layer_name, arrays))
        return out
