"""Tell a file's container from its first bytes, never from its name: real files called `.keras`
are sometimes HDF5 (tf.keras 2.x wrote HDF5 whatever the extension)."""
from __future__ import annotations

import os

from ..errors import ModelFormatError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# HDF5 allows a user block before the superblock: the signature may sit at 0, 512, 1024, 2048, ...
_HDF5_OFFSETS = (0, 512, 1024, 2048, 4096, 8192)
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")


def sniff(path) -> str:
    """'hdf5' or 'zip', or raise ModelFormatError naming the path and what it found."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    if os.path.isdir(path):
        raise ModelFormatError(
            f"{path!r} is a directory; expected a Keras .h5/.keras file (TensorFlow SavedModel "
            "directories are not supported)")
    with open(path, "rb") as f:
        head = f.read(_HDF5_OFFSETS[-1] + len(HDF5_SIGNATURE))
    if not head:
        raise ModelFormatError(f"{path!r} is empty; expected a Keras .h5 or .keras file")
    if head[:4] in ZIP_SIGNATURES:
        return "zip"
    for offset in _HDF5_OFFSETS:
        if head[offset:offset + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE:
            return "hdf5"
    raise ModelFormatError(
        f"{path!r} is neither HDF5 nor a zip archive (first bytes {head[:8]!r}); expected a "
        "Keras .h5 or .keras file")
