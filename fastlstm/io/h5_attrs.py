"""Decoding of the HDF5 attributes Keras writes, across h5py and Keras versions: variable-length
str (h5py 3), fixed-length bytes (old h5py), arrays of either, an empty list stored as a
zero-length float64 array, and lists over 64512 bytes split into `name0`, `name1`, ...
(tf_keras saving/legacy/hdf5_format.py save_attributes_to_hdf5_group)."""
from __future__ import annotations

import json

import h5py
import numpy as np

from ..errors import ModelFormatError

# What Keras writes: strings (fixed or variable length) and, for empty lists, numbers. Anything
# else is damage, and some of it crashes libhdf5 1.14 when read: a variable-length *sequence*
# in place of model_config's variable-length string segfaults in H5T__vlen_disk_write (found by
# tests/test_fuzz.py). The type is checked before the value is read.
_ATTR_CLASSES = {h5py.h5t.STRING: "string", h5py.h5t.INTEGER: "integer", h5py.h5t.FLOAT: "float"}


def attr_value(group, name: str):
    """``group.attrs[name]``, read only when its HDF5 type is one Keras writes."""
    type_class = group.attrs.get_id(name).get_type().get_class()
    if type_class not in _ATTR_CLASSES:
        raise ModelFormatError(f"attribute {name!r} has HDF5 type class {type_class}; expected "
                               "a string or numbers")
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
    try:
        return json.loads(text)
    except ValueError as e:
        raise ModelFormatError(f"attribute {name!r} is not valid JSON: {e}") from None


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
