"""Checks on HDF5 bytes before libhdf5 parses them: structures that make libhdf5 itself loop
forever are refused here instead.

libhdf5 (1.14, H5HGcache.c ``H5HG__cache_heap_deserialize``) walks a global heap collection
object by object, advancing by each object's declared size; a free-space object (index 0) of
size 0, or sizes that wrap the pointer back, leave it walking in place forever. Keras files keep
variable-length string attributes (``model_config``, ``layer_names``) in such collections, so a
damaged or hostile file hung ``load_model`` (found by tests/test_fuzz.py). The walk is repeated
here with the same rules and a file whose walk does not end cleanly is refused.
"""
from __future__ import annotations

import mmap
import os
import struct

from ..errors import ModelFormatError

_SIGNATURE = b"GCOL"
_HEADER = 16       # "GCOL", version 1, 3 reserved bytes, collection size (8 bytes)
_OBJ_HEADER = 16   # heap object index (2), reference count (2), reserved (4), size (8)


def _collection_problem(buf, start: int) -> str | None:
    """Why the collection at ``start`` would hang libhdf5's walk, or None."""
    if buf[start + 4] != 1 or bytes(buf[start + 5:start + 8]) != b"\0\0\0":
        return None  # not a collection header (e.g. the letters in weight data)
    (size,) = struct.unpack_from("<Q", buf, start + 8)
    end = start + size
    if size < _HEADER or end > len(buf):
        return None  # libhdf5 reports these as read errors
    p = start + _HEADER
    while p < end:
        if p + _OBJ_HEADER > end:
            break  # trailing free space too small for a header
        index, _refs, _reserved, obj_size = struct.unpack_from("<HHIQ", buf, p)
        need = _OBJ_HEADER + ((obj_size + 7) & ~7) if index > 0 else obj_size
        if need <= 0 or need > end - p:
            return (f"global heap object {index} at byte {p} declares {obj_size} bytes, "
                    f"{end - p} left in its collection")
        p += need
    return None


def check_global_heaps(buf, name: str) -> None:
    """Raise ModelFormatError when a global heap collection in ``buf`` (bytes-like) is damaged
    in a way that would hang libhdf5."""
    i = buf.find(_SIGNATURE)
    while i != -1:
        if i + _HEADER <= len(buf):
            problem = _collection_problem(buf, i)
            if problem is not None:
                raise ModelFormatError(f"{name!r} is a damaged HDF5 file: {problem}")
        i = buf.find(_SIGNATURE, i + 1)


def check_global_heaps_in_file(path, name: str) -> None:
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            check_global_heaps(buf, name)
