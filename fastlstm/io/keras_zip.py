"""KerasZipReader: the Keras 3 ``.keras`` zip (keras/src/saving/saving_lib.py): ``config.json``,
``metadata.json`` (``keras_version``), ``model.weights.h5``. Only these members are read, each with
a size bound enforced while decompressing, so a zip bomb costs nothing."""
from __future__ import annotations

import io
import json
import os
import zipfile

from ..errors import ModelFormatError
from .h5_attrs import parse_version
from .h5_guard import check_global_heaps
from .keras_h5 import KerasH5Reader

MAX_JSON_BYTES = 64 << 20
MAX_WEIGHTS_BYTES = 8 << 30


def _read_bounded(zf: zipfile.ZipFile, member: str, limit: int, path: str) -> bytes:
    info = zf.getinfo(member)
    if info.file_size > limit:
        raise ModelFormatError(f"{path!r}: member {member!r} declares {info.file_size} bytes, "
                               f"more than the {limit} allowed")
    chunks, total = [], 0
    with zf.open(info) as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise ModelFormatError(f"{path!r}: member {member!r} decompresses past {limit} "
                                       "bytes")
            chunks.append(chunk)
    return b"".join(chunks)


class KerasZipReader:
    def __init__(self, path):
        self.name = os.fspath(path)
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise ModelFormatError(f"{self.name!r} is not a readable zip archive: {e}") from None
        with zf:
            names = set(zf.namelist())
            if "config.json" not in names:
                raise ModelFormatError(f"{self.name!r} is a zip without config.json; expected a "
                                       f"Keras .keras archive (members: {sorted(names)[:10]})")
            try:
                self.model_config = json.loads(
                    _read_bounded(zf, "config.json", MAX_JSON_BYTES, self.name))
                metadata = (json.loads(_read_bounded(zf, "metadata.json", MAX_JSON_BYTES,
                                                     self.name))
                            if "metadata.json" in names else {})
            except (ValueError, UnicodeDecodeError) as e:
                raise ModelFormatError(f"{self.name!r}: config.json/metadata.json is not valid "
                                       f"JSON: {e}") from None
            if "model.weights.h5" not in names:
                hint = (" (weights saved as .npz are not supported)"
                        if "model.weights.npz" in names else "")
                raise ModelFormatError(f"{self.name!r} has no model.weights.h5{hint}")
            weights = _read_bounded(zf, "model.weights.h5", MAX_WEIGHTS_BYTES, self.name)
        if not isinstance(self.model_config, dict) or not isinstance(metadata, dict):
            raise ModelFormatError(f"{self.name!r}: config.json must hold a JSON object")
        self.keras_version = parse_version(metadata.get("keras_version")) or (3, 0)
        check_global_heaps(weights, f"{self.name}:model.weights.h5")
        self.weights = KerasH5Reader(io.BytesIO(weights), name=f"{self.name}:model.weights.h5")

    def close(self):
        self.weights.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
