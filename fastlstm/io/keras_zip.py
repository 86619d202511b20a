"""KerasZipReader: the Keras 3 ``.keras`` zip (keras/src/saving/saving_lib.py): ``config.json``,
``metadata.json`` (``keras_version``), ``model.weights.h5``. Only these members are read, and a
zip bomb costs at most its bound: each member's first bytes are checked before the rest is
inflated, its inflated size is bounded (JSON by MAX_JSON_BYTES, the weights by what the model
built from config.json can need) and it is inflated into one buffer of that size."""
from __future__ import annotations

import mmap
import os
import zipfile

import numpy as np

from ..errors import ModelFormatError
from ..limits import parse_json
from .detect import HDF5_SIGNATURE
from .h5_attrs import parse_version
from .h5_guard import check_global_heaps
from .keras_h5 import KerasH5Reader

MAX_JSON_BYTES = 64 << 20
MAX_WEIGHTS_BYTES = 8 << 30
WEIGHTS_MEMBER = "model.weights.h5"

# What model.weights.h5 may hold beyond the model's float32 weights: float64 weights (a float64
# dtype policy), and the optimizer's variables, which Keras 3 saves into the same file
# (saving_lib._save_state walks model.optimizer): up to 3 slots per weight (Adam with amsgrad:
# m, v, v_hat), so 4 copies of 8 bytes. HDF5 metadata (superblock, object headers, B-trees,
# heaps) is a few KiB per group or dataset; the fixed part covers small unmodelled state
# (seed generators, metrics, the optimizer's counters).
BYTES_PER_WEIGHT = 4 * 8
BYTES_PER_ARRAY = 4 * (64 << 10)
HDF5_OVERHEAD = 16 << 20

_JSON_HEAD = 1024   # a JSON member must show its "{" within this many bytes
_CHUNK = 1 << 20    # inflated per read
_BOM = b"\xef\xbb\xbf"


def _weight_counts(model):
    """(number of weights, number of weight arrays) of a built model, from its config alone."""
    shapes = model.weight_shapes()
    return sum(int(np.prod(s)) for s in shapes), len(shapes)


def weights_bound(model) -> int:
    """The most bytes model.weights.h5 of a .keras holding ``model`` can need."""
    n_weights, n_arrays = _weight_counts(model)
    return min(MAX_WEIGHTS_BYTES,
               HDF5_OVERHEAD + BYTES_PER_WEIGHT * n_weights + BYTES_PER_ARRAY * n_arrays)


def _hdf5_head_problem(head: bytes):
    # Keras writes model.weights.h5 with h5py, no user block: the superblock starts at byte 0.
    if not head.startswith(HDF5_SIGNATURE):
        return f"does not start with the HDF5 signature (first bytes {head[:8]!r})"
    return None


def _json_head_problem(head: bytes):
    text = head[len(_BOM):] if head.startswith(_BOM) else head
    if not text.lstrip(b" \t\r\n").startswith(b"{"):
        return (f"does not start with '{{' (a JSON object) within its first {len(head)} bytes "
                f"(first bytes {head[:16]!r})")
    return None


def _fill(f, view) -> int:
    """Inflate from ``f`` into ``view`` until it is full or the member ends; bytes written."""
    pos = 0
    while pos < len(view):
        n = f.readinto(view[pos:pos + _CHUNK])
        if not n:
            break
        pos += n
    return pos


def _inflate(zf, member: str, limit: int, why: str, path: str, head_size: int, head_problem,
             allocate):
    """The member inflated into ``allocate(declared size)``, refused when that size exceeds
    ``limit`` or its first ``head_size`` bytes are not what the member must start with.

    zipfile stops at the size the central directory declares and checks the CRC there, so a
    header that understates the size gives a CRC error, never more bytes than the buffer."""
    size = zf.getinfo(member).file_size
    if size > limit:
        raise ModelFormatError(f"{path!r}: member {member!r} declares {size} bytes, more than "
                               f"the {limit} bytes {why}")
    if size == 0:
        raise ModelFormatError(f"{path!r}: member {member!r} is empty")
    # On an error the buffer is left to the garbage collector: the traceback's frames hold views
    # of it, and an mmap with live views cannot be closed.
    buf = allocate(size)
    with zf.open(member) as f, memoryview(buf) as view:
        got = _fill(f, view[:head_size])
        problem = head_problem(bytes(view[:got]))
        if problem:
            raise ModelFormatError(f"{path!r}: member {member!r} {problem}")
        got += _fill(f, view[got:])
        if got != size or f.read(1):
            raise ModelFormatError(f"{path!r}: member {member!r} inflates to a size other than "
                                   f"the {size} bytes it declares")
    return buf


def _read_json(zf, member: str, path: str):
    data = _inflate(zf, member, MAX_JSON_BYTES, "allowed for a JSON member", path, _JSON_HEAD,
                    _json_head_problem, bytearray)
    return parse_json(data, f"{path!r}: member {member!r}")


class KerasZipReader:
    """One open .keras archive; use as a context manager. config.json and metadata.json are read
    on opening; model.weights.h5 only by :meth:`open_weights`, once the model built from the
    config tells how large it may be."""

    def __init__(self, path):
        self.name = os.fspath(path)
        self.weights = None
        self._buffer = None
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise ModelFormatError(f"{self.name!r} is not a readable zip archive: {e}") from None
        try:
            self._read_json_members()
        except BaseException:
            self._zip.close()
            raise

    def _read_json_members(self):
        names = set(self._zip.namelist())
        if "config.json" not in names:
            raise ModelFormatError(f"{self.name!r} is a zip without config.json; expected a "
                                   f"Keras .keras archive (members: {sorted(names)[:10]})")
        try:
            self.model_config = _read_json(self._zip, "config.json", self.name)
            metadata = (_read_json(self._zip, "metadata.json", self.name)
                        if "metadata.json" in names else {})
        except (ValueError, UnicodeDecodeError) as e:
            raise ModelFormatError(f"{self.name!r}: config.json/metadata.json is not valid "
                                   f"JSON: {e}") from None
        if WEIGHTS_MEMBER not in names:
            hint = (" (weights saved as .npz are not supported)"
                    if "model.weights.npz" in names else "")
            raise ModelFormatError(f"{self.name!r} has no {WEIGHTS_MEMBER}{hint}")
        if not isinstance(self.model_config, dict) or not isinstance(metadata, dict):
            raise ModelFormatError(f"{self.name!r}: config.json must hold a JSON object")
        self.keras_version = parse_version(metadata.get("keras_version")) or (3, 0)

    def open_weights(self, model) -> KerasH5Reader:
        """model.weights.h5, inflated into memory (an anonymous mmap: h5py reads it as a file
        object and the heap check scans it in place) within :func:`weights_bound` of ``model``."""
        n_weights, n_arrays = _weight_counts(model)
        why = (f"a model with {n_weights} weights in {n_arrays} arrays can need "
               "(float64, optimizer slots and HDF5 metadata allowed for)")
        self._buffer = _inflate(self._zip, WEIGHTS_MEMBER, weights_bound(model), why, self.name,
                                len(HDF5_SIGNATURE), _hdf5_head_problem,
                                lambda size: mmap.mmap(-1, size))
        label = f"{self.name}:{WEIGHTS_MEMBER}"
        check_global_heaps(self._buffer, label)
        self.weights = KerasH5Reader(self._buffer, name=label)
        return self.weights

    def close(self):
        if self.weights is not None:
            self.weights.close()
        if self._buffer is not None:
            self._buffer.close()
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
