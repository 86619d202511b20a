"""What a service can rely on: damaged files and odd inputs give exceptions, results do not
depend on the input's dtype or layout, threads overlap without disturbing each other, and
nothing leaks."""
import gc
import os
import shutil
import threading
import zipfile

import h5py
import numpy as np
import pytest

import fastlstm
import keras_fixtures as kf

LOAD_ERRORS = (fastlstm.ModelFormatError, fastlstm.UnsupportedConfigError, ValueError)


@pytest.fixture(scope="module")
def many_to_one():
    return kf.load(kf.case("keras3", "many_to_one"), "keras")


# -- files ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["h5", "keras"])
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_files_raise(tmp_path, fmt, keep):
    src = kf.path(kf.case("keras2", "stacked")["files"][fmt])
    data = open(src, "rb").read()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(LOAD_ERRORS):
        fastlstm.load_model(cut)


def _rezip(src, dst, drop=(), add=()):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if item.filename not in drop:
                zout.writestr(item, zin.read(item.filename))
        for name, data in add:
            zout.writestr(name, data)


@pytest.mark.parametrize("member,message", [("config.json", "without config.json"),
                                            ("model.weights.h5", "no model.weights.h5")])
def test_keras_zip_missing_members(tmp_path, member, message):
    src = kf.path(kf.case("keras3", "stacked")["files"]["keras"])
    _rezip(src, tmp_path / "m.keras", drop=[member])
    with pytest.raises(fastlstm.ModelFormatError, match=message):
        fastlstm.load_model(tmp_path / "m.keras")


def test_keras_zip_bomb_is_refused_while_decompressing(tmp_path):
    """A config.json that inflates past the 64 MiB bound: refused after reading at most the
    bound, whatever size the zip directory claims."""
    src = kf.path(kf.case("keras3", "stacked")["files"]["keras"])
    bomb = b"{" + b" " * (70 << 20) + b"}"
    _rezip(src, tmp_path / "bomb.keras", drop=["config.json"], add=[("config.json", bomb)])
    assert (tmp_path / "bomb.keras").stat().st_size < 1 << 20
    with pytest.raises(fastlstm.ModelFormatError, match="config.json.*(declares|decompresses)"):
        fastlstm.load_model(tmp_path / "bomb.keras")


def test_keras_zip_reads_only_the_expected_members(tmp_path):
    src = kf.path(kf.case("keras3", "stacked")["files"]["keras"])
    _rezip(src, tmp_path / "extra.keras",
           add=[("assets/payload.py", b"raise SystemExit('imported!')"),
                ("assets/huge.bin", b"\0" * (80 << 20))])
    model = fastlstm.load_model(tmp_path / "extra.keras")
    reference = fastlstm.load_model(src)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 7, 3))
    assert np.array_equal(model.predict(x), reference.predict(x))


def test_missing_weight_dataset_names_the_layer(tmp_path):
    src = kf.path(kf.case("keras2", "stacked")["files"]["h5"])
    dst = tmp_path / "m.h5"
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        group = f["model_weights"]
        layer = next(name for name in group if name.startswith("lstm"))
        victim = []
        group[layer].visit(lambda n: victim.append(n) if isinstance(group[layer][n],
                                                                    h5py.Dataset) else None)
        del group[layer][victim[0]]
    with pytest.raises(fastlstm.ModelFormatError, match=layer):
        fastlstm.load_model(dst)


# -- inputs ---------------------------------------------------------------------------------------
def test_any_dtype_and_layout_gives_identical_results(many_to_one):
    x = np.random.default_rng(1).integers(-3, 4, (5, 10, 4)).astype(np.float32)
    expected = many_to_one.predict(x)
    big = np.zeros((10, 20, 8), np.float32)
    big[::2, ::2, ::2] = x
    variants = {
        "float64": x.astype(np.float64),
        "int64": x.astype(np.int64),
        "int8": x.astype(np.int8),
        "fortran": np.asfortranarray(x),
        "strided view": big[::2, ::2, ::2],
        "reversed view": x[::-1][::-1],
        "nested lists": x.tolist(),
        "float16": x.astype(np.float16),
    }
    for name, v in variants.items():
        assert np.array_equal(many_to_one.predict(v), expected), name


def test_empty_batch_gives_empty_output(many_to_one):
    out = many_to_one.predict(np.zeros((0, 10, 4), np.float32))
    assert out.shape == (0, 1) and out.dtype == np.float32
    seq = kf.load(kf.case("keras3", "many_to_many_td"), "keras")
    assert seq.predict(np.zeros((0, 5, 4))).shape == (0, 5, 3)


@pytest.mark.parametrize("name", ["layers_misc", "merge_branches", "embedding_mask_zero",
                                  "bidirectional_merge_modes", "conv1d_causal_dilated"])
def test_empty_batch_on_the_layer_by_layer_path(name):
    """Models that do not compile to one stack (or forced off it) run layer by layer; an empty
    batch gives empty outputs of the shapes Keras's summary records."""
    case_ = kf.case("keras3", name)
    model = kf.load(case_, "keras", fuse=False)
    inputs = [np.zeros((0,) + tuple(d or 3 for d in layer.batch_shape[1:]), np.float32)
              for layer in model.input_layers]
    outs = model.predict(inputs if len(inputs) > 1 else inputs[0])
    outs = outs if isinstance(outs, list) else [outs]
    assert [o.shape[0] for o in outs] == [0] * len(model.output_shapes)
    for out, declared in zip(outs, model.output_shapes):
        assert all(d is None or d == g for d, g in zip(declared[1:], out.shape[1:]))


def test_ragged_input_is_a_value_error(many_to_one):
    with pytest.raises(ValueError, match="could not make an array"):
        many_to_one.predict([[[0.0] * 4] * 10, [[0.0] * 4] * 9])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_one_row_leaves_the_other_rows_alone(bad):
    model = kf.load(kf.case("keras3", "stacked"), "keras")
    x = np.random.default_rng(2).uniform(-1, 1, (6, 7, 3)).astype(np.float32)
    clean = model.predict(x)
    x[2, 3, 1] = bad
    got = model.predict(x)
    rows = [0, 1, 3, 4, 5]
    assert np.array_equal(got[rows], clean[rows])


# -- threads --------------------------------------------------------------------------------------
def test_threads_sharing_a_stateless_model_match_serial_calls(many_to_one):
    xs = [np.random.default_rng(i).uniform(-1, 1, (3 + i, 10, 4)) for i in range(16)]
    expected = [many_to_one.predict(x) for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(20):
            got[i] = many_to_one.predict(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, e in zip(got, expected):
        assert np.array_equal(g, e)


def test_predict_releases_the_gil():
    """While one thread is inside a long predict, another keeps running Python code."""
    model = kf.load(kf.case("keras3", "many_to_many_td"), "keras")
    x = np.random.default_rng(3).uniform(-1, 1, (64, 4000, 4)).astype(np.float32)
    started = threading.Event()

    def long_call():
        started.set()
        model.predict(x)

    t = threading.Thread(target=long_call)
    t.start()
    started.wait()
    ticks = 0
    while t.is_alive():
        ticks += 1
    t.join()
    assert ticks > 10000  # the GIL held through the call would leave a handful at most


def test_stateful_model_under_concurrent_calls_keeps_a_consistent_state():
    """Calls from many threads are serialised by the model's lock: with one input for all of
    them, the final state is that of as many sequential calls."""
    case = kf.case("keras3", "stateful_generation_b1")
    shared, serial = kf.load(case, "keras"), kf.load(case, "keras")
    x = np.random.default_rng(4).uniform(-1, 1, (1, 1, 3)).astype(np.float32)

    def work():
        for _ in range(25):
            shared.predict(x)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(200):
        serial.predict(x)
    for name, (h, c) in shared.get_states().items():
        np.testing.assert_allclose(h, serial.get_states()[name][0], atol=1e-6)
        np.testing.assert_allclose(c, serial.get_states()[name][1], atol=1e-6)


# -- resources ------------------------------------------------------------------------------------
def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
@pytest.mark.skipif(bool(os.environ.get("FASTLSTM_SANITIZED")),
                    reason="AddressSanitizer holds freed memory in quarantine")
def test_no_leak_over_many_predict_calls_and_loads(many_to_one):
    x1 = np.zeros((1, 10, 4), np.float32)
    x8 = np.zeros((8, 10, 4))
    for _ in range(2000):
        many_to_one.predict(x1)
        many_to_one.predict(x8)
    gc.collect()
    before = _rss_bytes()
    for _ in range(50000):
        many_to_one.predict(x1)
        many_to_one.predict(x8)
    gc.collect()
    assert _rss_bytes() - before < 8 << 20
    path = kf.path(kf.case("keras3", "stacked")["files"]["keras"])
    for _ in range(50):
        fastlstm.load_model(path).predict(np.zeros((2, 7, 3)))
    gc.collect()
    before = _rss_bytes()
    for i in range(1000):
        fastlstm.load_model(path).predict(np.zeros((2, 7, 3)))
        if i % 100 == 0:
            gc.collect()
    gc.collect()
    assert _rss_bytes() - before < 16 << 20


def test_global_heap_that_would_hang_libhdf5_is_refused(tmp_path):
    """A free-space object of size 0 in a global heap collection makes libhdf5 1.14 walk in
    place forever (found by tests/test_fuzz.py); fastlstm checks the collections first."""
    data = bytearray(open(kf.path(kf.case("keras2", "stacked")["files"]["h5"]), "rb").read())
    at = data.find(b"GCOL")
    assert at > 0  # Keras 2 keeps model_config in a global heap
    data[at + 16:at + 18] = b"\0\0"          # object index 0: free space
    data[at + 24:at + 32] = bytes(8)         # of size 0
    bad = tmp_path / "hang.h5"
    bad.write_bytes(bytes(data))
    with pytest.raises(fastlstm.ModelFormatError, match="global heap object 0"):
        fastlstm.load_model(bad)


def test_a_huge_declared_weight_is_refused_before_it_is_read(tmp_path):
    """A weight dataset declaring 2^30 floats (a few KB on disk, never written): refused from
    its shape, nothing allocated."""
    case = kf.case("keras2", "stacked")
    dst = tmp_path / "w.h5"
    shutil.copy(kf.path(case["files"]["weights"]), dst)
    with h5py.File(dst, "a") as f:
        found = []
        f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset)
                     and "kernel" in n and "lstm" in n else None)
        victim = found[0]
        del f[victim]
        f.create_dataset(victim, shape=(1 << 30,), dtype="f4", chunks=(1 << 16,),
                         compression="gzip")
    assert dst.stat().st_size < 1 << 20
    model = kf.load(case, "h5")
    before = _rss_bytes()
    with pytest.raises(fastlstm.ModelFormatError, match=r"shape \(1073741824,\)"):
        model.load_weights(dst)
    assert _rss_bytes() - before < 64 << 20


def test_attribute_of_a_type_keras_never_writes_is_refused_before_it_is_read(tmp_path):
    """model_config as a variable-length sequence of bytes instead of a variable-length string:
    libhdf5 1.14 segfaults reading it (found by tests/test_fuzz.py); fastlstm checks the type."""
    src = kf.path(kf.case("keras2", "stacked")["files"]["h5"])
    dst = tmp_path / "m.h5"
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        text = f.attrs["model_config"]
        del f.attrs["model_config"]
        seq = np.empty((), dtype=h5py.vlen_dtype(np.uint8))
        seq[()] = np.frombuffer(text.encode(), np.uint8)
        f.attrs.create("model_config", seq)
    with pytest.raises(fastlstm.ModelFormatError, match="'model_config' has HDF5 type class 9"):
        fastlstm.load_model(dst)
