"""Decoding of the HDF5 attributes Keras writes, across h5py and Keras versions: variable-length
str (h5py 3), fixed-length bytes (old h5py), arrays of either, an empty list stored as a
zero-length float64 array, and lists over 64512 bytes split into `name0`, `name1`, ...
(tf_keras saving/legacy/hdf5_format.py save_attributes_to_hdf5_group)."""
from __future__ import annotations


import h5py
import numpy as np

from ..errors import ModelFormatError
from ..limits import parse_json

# What Keras writes: strings (fixed or variable length) and, for empty lists, numbers. Anything
# else is damage, and some damage crashes or overruns libhdf5 1.14 when the value is read
# (found by tests/test_fuzz.py under ASan): a variable-length *sequence* in place of
# model_config's variable-length string segfaults in H5T__vlen_disk_write, and an attribute whose
# stored bytes are fewer than its type and shape need makes H5A__read copy past its buffer. Both
# are checked before the value is read.
_ATTR_CLASSES = {h5py.h5t.STRING: "string", h5py.h5t.INTEGER: "integer", h5py.h5t.FLOAT: "float"}


def attr_value(group, name: str):
    """``group.attrs[name]``, read only when its HDF5 type is one Keras writes and the file
    holds the bytes that type and shape need."""
    attr = group.attrs.get_id(name)
    file_type = attr.get_type()
    type_class = file_type.get_class()
    if type_class not in _ATTR_CLASSES:
        raise ModelFormatError(f"attribute {name!r} has HDF5 type class {type_class}; expected "
                               "a string or numbers")
    n_values = int(np.prod(attr.shape)) if attr.shape is not None else 0
    if type_class == h5py.h5t.STRING and file_type.is_variable_str():
        # On disk each value is a global heap id: a 4-byte length, an address, a 4-byte index.
        element = 8 + group.file.id.get_create_plist().get_sizes()[0]
    else:
        element = file_type.get_size()
    try:
        stored = attr.get_storage_size()
    except RuntimeError:  # libhdf5 answers 0 for some valid ones (large, densely stored)
        stored = None
    if stored is not None and stored < n_values * element:
        raise ModelFormatError(f"attribute {name!r} stores {stored} bytes for {n_values} values "
                               f"of {element} bytes")
    return group.attrs[name]


def decode_str(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.bytes_):
        return bytes(value).decode("utf-8")
    if isinstance(value, (str, np.str_)):
        return str(value)
    if isinstance(value, np.ndarray) and value.shape == ():
        return decode_str(value[()])
    raise ModelFormatError(f"expected a string attribute, got {type(value).__name__}")


def string_list(group, name: str):
    """The list attribute `name` of an HDF5 group, or None if absent."""
    if name in group.attrs:
        raw = [attr_value(group, name)]
    elif f"{name}0" in group.attrs:
        raw, i = [], 0
        while f"{name}{i}" in group.attrs:
            raw.append(attr_value(group, f"{name}{i}"))
            i += 1
    else:
        return None
    out = []
    for chunk in raw:
        arr = np.atleast_1d(np.asarray(chunk))
        if arr.size and arr.dtype.kind in "fiu":
            raise ModelFormatError(f"attribute {name!r} holds numbers, expected names")
        out.extend(decode_str(v) for v in arr.tolist())
    return out


def str_attr(group, name: str):
    if name not in group.attrs:
        return None
    return decode_str(attr_value(group, name))


def json_attr(group, name: str):
    text = str_attr(group, name)
    if text is None:
        return None
    return parse_json(text, f"attribute {name!r}")


def parse_version(text) -> tuple:
    """'2.2.4-tf' -> (2, 2); '3.15.1' -> (3, 15)."""
    if not text:
        return None
    parts = []
    for piece in str(text).split(".")[:2]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        return None
    return tuple(parts + [0] * (2 - len(parts)))
