"""A .keras archive saved on Windows: tf_keras's saving_lib joins object paths with os.path.join
(tf.io.gfile.join for a local path), so each object's weights group is one flat group at the
root named ``layers\\lstm\\cell`` with a nested ``vars`` (H5IOStore.make:
``h5_file.create_group(path).create_group("vars")``), and there is no ``layers`` group.
The fixtures are rewritten into that layout here; the outputs must stay Keras's recorded ones."""
from __future__ import annotations

import io
import zipfile

import h5py
import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf

CASES = [("keras2", "many_to_one"), ("keras3", "many_to_one"), ("keras2", "stacked"),
         ("keras3", "bidirectional_merge_modes"), ("keras2", "many_to_many_td"),
         ("keras2", "normalization_forecaster"), ("keras3", "normalization_forecaster")]


def windows_layout(weights: bytes) -> bytes:
    """model.weights.h5 with every group holding ``vars`` moved to a flat root group whose name
    joins its object path with backslashes, as Windows tf_keras writes it."""
    out = io.BytesIO()
    with h5py.File(io.BytesIO(weights), "r") as src, h5py.File(out, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        holders = []
        src.visititems(lambda name, obj: holders.append(name)
                       if isinstance(obj, h5py.Group) and "vars" in obj else None)
        if "vars" in src:
            src.copy(src["vars"], dst, "vars")
        for name in holders:
            flat = dst.create_group(name.replace("/", "\\"))
            src.copy(src[name]["vars"], flat, "vars")
    return out.getvalue()


def rewrite_archive(source: str, target) -> None:
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "model.weights.h5":
                data = windows_layout(data)
            zout.writestr(item, data)


def _existing(flavour, name):
    found = kf.cases(flavour, name)
    if not found or "keras" not in found[0]["files"]:
        pytest.skip(f"no .keras fixture {flavour}/{name}")
    return found[0]


@pytest.mark.parametrize("flavour,name", CASES)
def test_backslash_weight_groups_reproduce_keras(tmp_path, flavour, name):
    case = _existing(flavour, name)
    target = tmp_path / "windows.keras"
    rewrite_archive(kf.path(case["files"]["keras"]), target)
    with zipfile.ZipFile(target) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as f:
        assert "layers" not in f and any("\\" in k for k in f)
    model = fastlstm.load_model(str(target))
    kf.replay(model, case, label="windows .keras")


def test_backslash_name_is_looked_up_only_inside_the_file(tmp_path):
    """A group name like ``..\\..\\x`` is an HDF5 link name and nothing else: an archive whose
    weights sit under such names loads no outside file, it only misses weights."""
    case = _existing("keras3", "many_to_one")
    target = tmp_path / "odd.keras"
    with zipfile.ZipFile(kf.path(case["files"]["keras"])) as zin, \
            zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "model.weights.h5":
                src_buf, out = io.BytesIO(data), io.BytesIO()
                with h5py.File(src_buf, "r") as src, h5py.File(out, "w") as dst:
                    for key in ("layers/lstm/cell", "layers/dense"):
                        g = dst.create_group("..\\..\\" + key.replace("/", "\\"))
                        src.copy(src[key]["vars"], g, "vars")
                data = out.getvalue()
            zout.writestr(item, data)
    with pytest.raises(fastlstm.ModelFormatError, match="no .layers. group"):
        fastlstm.load_model(str(target))


def test_nested_layout_still_preferred(tmp_path):
    """When both layouts are present the nested (Keras 3 / Linux) groups are read."""
    case = _existing("keras3", "many_to_one")
    target = tmp_path / "both.keras"
    with zipfile.ZipFile(kf.path(case["files"]["keras"])) as zin, \
            zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "model.weights.h5":
                out = io.BytesIO()
                with h5py.File(io.BytesIO(data), "r") as src, h5py.File(out, "w") as dst:
                    for key in src:
                        src.copy(src[key], dst, key)
                    g = dst.create_group("layers\\dense")
                    v = g.create_group("vars")
                    for i, ds in src["layers/dense/vars"].items():
                        v[i] = np.full(ds.shape, 7.0, ds.dtype)
                data = out.getvalue()
            zout.writestr(item, data)
    kf.replay(fastlstm.load_model(str(target)), case, label="both layouts")
