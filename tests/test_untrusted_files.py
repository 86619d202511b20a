"""Hostile model files: HDF5 objects that point outside the file, and .keras zip bombs.

The hostile files are real fixtures with one weight dataset (the Dense kernel, shape (8, 1))
rewritten with h5py; a .keras is rebuilt with the rewritten model.weights.h5 member."""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf

# Values no fixture holds, so a model that loaded them would predict from another file's bytes.
SECRET = (np.arange(1, 9, dtype="<f4") * 1000.5).reshape(8, 1)
VICTIM_SHAPE = SECRET.shape


# -- building hostile HDF5 files ------------------------------------------------------------------
def _victim(f: h5py.File) -> str:
    """HDF5 path of the Dense kernel (the only (8, 1) dataset of the many_to_one fixtures)."""
    found = []
    f.visititems(lambda n, o: found.append("/" + n)
                 if isinstance(o, h5py.Dataset) and o.shape == VICTIM_SHAPE else None)
    assert len(found) == 1, found
    return found[0]


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def _external_storage(f, name, secrets):
    del f[name]
    f.create_dataset(name, shape=SECRET.shape, dtype="<f4",
                     external=[(str(secrets["raw"]), 0, SECRET.nbytes)])


def _external_link(f, name, secrets):
    del f[name]
    f[name] = h5py.ExternalLink(str(secrets["h5"]), "/secret")


def _virtual_to(source):
    def rewrite(f, name, secrets):
        del f[name]
        layout = h5py.VirtualLayout(SECRET.shape, "<f4")
        layout[:] = h5py.VirtualSource(str(secrets[source]), "secret", shape=SECRET.shape)
        f.create_virtual_dataset(name, layout)
    return rewrite


def _soft_link_outside(f, name, secrets):
    f["/secret_group/kernel"] = SECRET
    del f[name]
    f[name] = h5py.SoftLink("/secret_group/kernel")


def _soft_link_cycle(f, name, secrets):
    del f[name]
    f[name] = h5py.SoftLink(_parent(name))  # the group that holds the link


def _soft_link_loop(f, name, secrets):
    other = _parent(_parent(name)) + "/loop"
    del f[name]
    f[name] = h5py.SoftLink(other)
    f[other] = h5py.SoftLink(name)


def _soft_link_inside(f, name, secrets):
    moved = _parent(_parent(name)) + "/moved_kernel"
    f.move(name, moved)
    f[name] = h5py.SoftLink(moved)


# kind -> (rewrite, what the refusal must say)
HOSTILE = {
    "external_storage": (_external_storage, "external storage"),
    "external_link": (_external_link, "external link"),
    "virtual_dataset": (_virtual_to("h5"), "virtual dataset"),
    "virtual_dataset_missing_source": (_virtual_to("missing"), "virtual dataset"),
    "soft_link_outside": (_soft_link_outside, "soft link.*outside"),
    "soft_link_cycle": (_soft_link_cycle, "soft link.*cycle"),
    "soft_link_loop": (_soft_link_loop, "soft link.*cycle"),
}

# container -> (flavour, file key, config key for model_from_json + load_weights or None)
CONTAINERS = {
    "h5_keras2": ("keras2", "h5", None),
    "h5_keras3": ("keras3", "h5", None),
    "save_weights_keras2": ("keras2", "weights", "json"),
    "weights_h5_keras3": ("keras3", "weights", "json"),
    "keras_zip": ("keras3", "keras", None),
    "keras_zip_load_weights": ("keras3", "keras", "json"),
}
# Only full-model .h5 files keep their weights below the root (/model_weights), so only there can
# a soft link leave the weights group while staying in the file.
WEIGHTS_BELOW_ROOT = {"h5_keras2", "h5_keras3"}


def _params():
    for container in CONTAINERS:
        for kind in HOSTILE:
            if kind == "soft_link_outside" and container not in WEIGHTS_BELOW_ROOT:
                continue
            yield pytest.param(container, kind, id=f"{container}-{kind}")


@pytest.fixture
def secrets(tmp_path):
    raw = tmp_path / "secret.bin"
    raw.write_bytes(SECRET.tobytes())
    h5 = tmp_path / "secret.h5"
    with h5py.File(h5, "w") as f:
        f["secret"] = SECRET
    return {"raw": raw, "h5": h5, "missing": tmp_path / "no_such_file.h5"}


def _rewrite_h5(path, rewrite, secrets) -> str:
    with h5py.File(path, "r+") as f:
        name = _victim(f)
        rewrite(f, name, secrets)
    return name


def _hostile_copy(container, rewrite, secrets, tmp_path):
    """(path of the rewritten copy, HDF5 path of the rewritten dataset)."""
    flavour, key, _ = CONTAINERS[container]
    src = kf.path(kf.case(flavour, "many_to_one")["files"][key])
    if key != "keras":
        dst = tmp_path / os.path.basename(src)
        shutil.copy(src, dst)
        return dst, _rewrite_h5(dst, rewrite, secrets)
    member = tmp_path / "model.weights.h5"
    with zipfile.ZipFile(src) as zin:
        member.write_bytes(zin.read("model.weights.h5"))
        name = _rewrite_h5(member, rewrite, secrets)
        dst = tmp_path / "hostile.keras"
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                data = (member.read_bytes() if item.filename == "model.weights.h5"
                        else zin.read(item.filename))
                zout.writestr(item.filename, data)
    return dst, name


def _load(container, path):
    flavour, _, config_key = CONTAINERS[container]
    if config_key is None:
        return fastlstm.load_model(path)
    with open(kf.path(kf.case(flavour, "many_to_one")["files"][config_key])) as f:
        model = fastlstm.model_from_json(f.read())
    model.load_weights(path)
    return model


@pytest.mark.parametrize("container,kind", list(_params()))
def test_hdf5_pointing_outside_the_weights_is_refused(container, kind, secrets, tmp_path):
    rewrite, problem = HOSTILE[kind]
    path, dataset = _hostile_copy(container, rewrite, secrets, tmp_path)
    with pytest.raises(fastlstm.ModelFormatError) as err:
        _load(container, path)
    message = str(err.value)
    assert dataset in message, message
    assert re.search(problem, message), message


@pytest.mark.parametrize("container", list(CONTAINERS))
def test_external_link_on_the_way_to_a_weight_is_refused(container, secrets, tmp_path):
    """The group holding the weight, moved into another file and linked back."""
    def rewrite(f, name, secrets):
        group = _parent(name)
        with h5py.File(secrets["h5"], "a") as other:
            f.copy(f[group], other, "moved")
        del f[group]
        f[group] = h5py.ExternalLink(str(secrets["h5"]), "/moved")

    path, dataset = _hostile_copy(container, rewrite, secrets, tmp_path)
    with pytest.raises(fastlstm.ModelFormatError,
                       match=re.escape(_parent(dataset)) + " is an external link"):
        _load(container, path)


@pytest.mark.parametrize("container", list(CONTAINERS))
def test_soft_link_inside_the_weights_still_loads(container, secrets, tmp_path):
    path, _ = _hostile_copy(container, _soft_link_inside, secrets, tmp_path)
    flavour, key, _ = CONTAINERS[container]
    reference = _load(container, kf.path(kf.case(flavour, "many_to_one")["files"][key]))
    x = np.random.default_rng(0).uniform(-1, 1, (3, 10, 4)).astype(np.float32)
    assert np.array_equal(_load(container, path).predict(x), reference.predict(x))


# -- .keras zip bombs -----------------------------------------------------------------------------
KERAS_SRC = kf.path(kf.case("keras3", "many_to_one")["files"]["keras"])
BOMB_ZEROS = 1 << 30
_CHUNK = bytes(4 << 20)


def _write_keras(dst, weights_writer, replace=None):
    """KERAS_SRC rewritten: model.weights.h5 streamed by ``weights_writer(file)``, other members
    copied or replaced by ``replace[name]``."""
    replace = replace or {}
    with zipfile.ZipFile(KERAS_SRC) as zin, \
            zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
        for item in zin.infolist():
            if item.filename == "model.weights.h5":
                with zout.open("model.weights.h5", "w", force_zip64=True) as f:
                    weights_writer(f, zin.read(item.filename))
            else:
                zout.writestr(item.filename, replace.get(item.filename,
                                                          zin.read(item.filename)))
    return dst


def _zeros(f, n):
    while n > 0:
        f.write(_CHUNK[:n])
        n -= len(_CHUNK)


@pytest.fixture(scope="module")
def weights_bomb(tmp_path_factory):
    """The real model.weights.h5 (a valid HDF5 start) followed by 1 GiB of zeros."""
    def writer(f, real):
        f.write(real)
        _zeros(f, BOMB_ZEROS)
    return _write_keras(tmp_path_factory.mktemp("bomb") / "bomb.keras", writer)


_MEASURE = """
import json, resource, sys, time
import fastlstm
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    fastlstm.load_model(sys.argv[1])
    error = None
except Exception as e:
    error = [type(e).__name__, str(e)]
seconds = time.perf_counter() - start
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"error": error, "seconds": seconds, "rss_growth_kib": grown}))
"""


def _load_measured(path) -> dict:
    """load_model in a fresh interpreter: its wall time and peak RSS growth (ru_maxrss)."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _assert_cheap_refusal(result, pattern):
    assert result["error"] is not None, "loaded a zip bomb"
    kind, message = result["error"]
    assert kind == "ModelFormatError", result
    assert re.search(pattern, message), message
    assert result["seconds"] < 2.0, result
    assert result["rss_growth_kib"] < 100 << 10, result


def _model_bound() -> int:
    from fastlstm.io.keras_zip import weights_bound

    with open(kf.path(kf.case("keras3", "many_to_one")["files"]["json"])) as f:
        return weights_bound(fastlstm.model_from_json(f.read()))


def test_weights_bomb_is_refused_before_inflating(weights_bomb):
    assert os.path.getsize(weights_bomb) < 8 << 20
    result = _load_measured(weights_bomb)
    _assert_cheap_refusal(result, r"model\.weights\.h5")
    assert f"{_model_bound()} bytes" in result["error"][1]


def _lie_about_size(src, dst, member, size):
    """Copy of the zip whose central directory says ``member`` inflates to ``size`` bytes
    (zipfile trusts the central directory, in its zip64 extra field when there is one)."""
    data = bytearray(open(src, "rb").read())
    with zipfile.ZipFile(src) as zf:
        true_size = zf.getinfo(member).file_size
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_len, extra_len = struct.unpack_from("<HH", data, at + 28)
        if bytes(data[at + 46:at + 46 + name_len]) == member.encode():
            extra = at + 46 + name_len
            end = extra + extra_len
            while extra < end:
                tag, length = struct.unpack_from("<HH", data, extra)
                if tag == 1:  # zip64: uncompressed size first
                    assert struct.unpack_from("<Q", data, extra + 4)[0] == true_size
                    struct.pack_into("<Q", data, extra + 4, size)
                extra += 4 + length
            if struct.unpack_from("<I", data, at + 24)[0] != 0xFFFFFFFF:
                struct.pack_into("<I", data, at + 24, size)
        at = data.find(b"PK\x01\x02", at + 4)
    with open(dst, "wb") as f:
        f.write(data)
    with zipfile.ZipFile(dst) as zf:
        assert zf.getinfo(member).file_size == size
    return dst


def test_weights_bomb_declaring_a_small_size_is_refused_while_inflating(weights_bomb, tmp_path):
    liar = _lie_about_size(weights_bomb, tmp_path / "liar.keras", "model.weights.h5", 1 << 20)
    result = _load_measured(liar)
    _assert_cheap_refusal(result, r"model\.weights\.h5")


@pytest.fixture
def bytes_read(monkeypatch):
    """{member name: decompressed bytes handed out by zipfile} (clear it before the load)."""
    counts = {}
    original = zipfile.ZipExtFile.read

    def read(self, n=-1):
        data = original(self, n)
        counts[self.name] = counts.get(self.name, 0) + len(data)
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", read)
    return counts


def test_weights_member_without_hdf5_signature_is_refused_after_its_first_bytes(tmp_path,
                                                                                 bytes_read):
    path = _write_keras(tmp_path / "not_hdf5.keras", lambda f, real: _zeros(f, 8 << 20))
    bytes_read.clear()
    with pytest.raises(fastlstm.ModelFormatError, match=r"model\.weights\.h5.*HDF5 signature"):
        fastlstm.load_model(path)
    assert bytes_read.get("model.weights.h5", 0) <= 4096, bytes_read


def test_json_member_not_starting_with_a_brace_is_refused_after_its_first_bytes(tmp_path,
                                                                                 bytes_read):
    config = b"\xef\xbb\xbf \n\t" + b"[" * (8 << 20)
    path = _write_keras(tmp_path / "not_json.keras", lambda f, real: f.write(real),
                        replace={"config.json": config})
    bytes_read.clear()
    with pytest.raises(fastlstm.ModelFormatError, match=r"config\.json.*'\{'"):
        fastlstm.load_model(path)
    assert bytes_read.get("config.json", 0) <= 4096, bytes_read


def test_json_members_may_start_with_bom_and_whitespace(tmp_path):
    with zipfile.ZipFile(KERAS_SRC) as zin:
        config = b"\xef\xbb\xbf \n" + zin.read("config.json")
        metadata = b"\n  " + zin.read("metadata.json")
    path = _write_keras(tmp_path / "bom.keras", lambda f, real: f.write(real),
                        replace={"config.json": config, "metadata.json": metadata})
    x = np.random.default_rng(1).uniform(-1, 1, (2, 10, 4)).astype(np.float32)
    assert np.array_equal(fastlstm.load_model(path).predict(x),
                          fastlstm.load_model(KERAS_SRC).predict(x))
