"""Fuzzing with hypothesis, a bounded number of cases per run: mutated real model files through
the loaders, and random shapes, dtypes and memory layouts through predict and the kernel entry
point. Never a crash or a stray exception type: either one of the library's documented errors,
or (inputs) exactly the result of the clean float32 array."""
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import fastlstm
from fastlstm import _kernels
from fastlstm.activations import c_activation
import keras_fixtures as kf

FILE_ERRORS = (fastlstm.ModelFormatError, fastlstm.UnsupportedConfigError)
INPUT_ERRORS = (ValueError, TypeError)
SEEDS = [("keras2", "stacked", "h5"), ("keras3", "stacked", "keras"), ("keras3", "stacked", "h5"),
         ("keras2", "stateful_generation_b1", "h5"), ("keras3", "encoder_decoder_state", "keras"),
         ("keras2", "stacked", "weights"), ("keras2", "keras1_lstm", "keras1"),
         ("keras2", "cudnn_gru", "cudnn"), ("keras3", "embedding_lstm_stack_masked", "keras"),
         ("keras2", "bidirectional_stacked", "h5"), ("keras3", "merge_branches", "h5")]
FUZZ = settings(max_examples=int(os.environ.get("FASTLSTM_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _seed_bytes():
    return {seed: open(kf.path(kf.case(seed[0], seed[1])["files"][seed[2]]), "rb").read()
            for seed in SEEDS}


SEED_BYTES = _seed_bytes()


@st.composite
def mutation(draw):
    """(seed file, kind, parameters): small to print when a case fails."""
    seed = draw(st.sampled_from(SEEDS))
    n = len(SEED_BYTES[seed])
    kind = draw(st.sampled_from(["flip", "zero-run", "truncate", "splice"]))
    if kind == "flip":
        params = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)),
                               min_size=1, max_size=16))
    elif kind == "zero-run":
        params = (draw(st.integers(0, n - 1)), draw(st.integers(1, 4096)))
    elif kind == "truncate":
        params = draw(st.integers(0, n - 1))
    else:  # a run of bytes copied from elsewhere in the file (plausible-looking structures)
        params = (draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1)),
                  draw(st.integers(1, 512)))
    return seed, kind, params


def _apply(seed, kind, params) -> bytes:
    data = bytearray(SEED_BYTES[seed])
    if kind == "flip":
        for i, v in params:
            data[i] = v
    elif kind == "zero-run":
        i, n = params
        data[i:i + n] = bytes(len(data[i:i + n]))
    elif kind == "truncate":
        data = data[:params]
    else:
        i, j, n = params
        chunk = data[j:j + n]
        data[i:i + len(chunk)] = chunk
    return bytes(data)


STORAGE_OVERRUN = (("keras2", "stacked", "weights"), "flip",
                   [(1303, 13), (21013, 10), (5837, 14), (1076, 12), (12576, 52), (14817, 247),
                    (10414, 20)])


@FUZZ
@given(mutation())
# Found by this test (each example once crashed or escaped): h5py's TypeError on a damaged string attribute; an absurd allocation
# request inside libhdf5 (fatal under ASan's default allocator options, see .ci/sanitize).
@example((("keras2", "stateful_generation_b1", "h5"), "flip",
          [(1818, 189), (9272, 216), (9265, 222), (9038, 23), (12765, 107), (1200, 106),
           (3479, 50), (1189, 160), (7157, 159), (13357, 242), (2007, 173), (3746, 35),
           (225, 188), (11521, 19)]))
@example((("keras2", "stateful_generation_b1", "h5"), "splice", (6494, 9451, 306)))
# model_config's type turned into a variable-length sequence: reading it segfaulted libhdf5.
@example((("keras2", "stateful_generation_b1", "h5"), "flip",
          [(456, 165), (1009, 25), (1140, 80), (3574, 250), (2475, 252), (12999, 52),
           (8821, 233), (553, 119), (9936, 119), (15098, 144), (5736, 166)]))
@example((("keras3", "stacked", "h5"), "flip",
          [(8082, 16), (857, 214), (24089, 229), (886, 74), (10780, 145), (27899, 178),
           (25491, 213), (31505, 25), (8551, 218), (6904, 189)]))
# keras_version stored in 12 bytes where its type needs 16: H5A__read copied past the buffer.
@example(STORAGE_OVERRUN)
def test_mutated_model_files_load_or_raise_a_format_error(case):
    (flavour, name, fmt), kind, params = case
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.keras" if fmt == "keras" else "m.h5")
        with open(path, "wb") as f:
            f.write(_apply(*case))
        try:
            if fmt == "weights":
                model = kf.load(kf.case(flavour, name), "h5")
                model.load_weights(path)
            else:
                model = fastlstm.load_model(path)
        except FILE_ERRORS:
            return
        shape = [1 if d is None else d for d in model.input_layers[0].batch_shape]
        try:
            model.predict([np.zeros(shape, np.float32)] * len(model.input_layers)
                          if len(model.input_layers) > 1 else np.zeros(shape, np.float32))
        except INPUT_ERRORS:
            pass  # e.g. a mutated config now declares other shapes


MODELS = {"var_len": kf.load(kf.case("keras3", "many_to_many_td"), "keras"),   # (None, None, 4)
          "fixed": kf.load(kf.case("keras2", "many_to_one"), "h5")}            # (None, 10, 4)
DTYPES = ["float32", "float64", "float16", "int8", "int32", "int64", "uint8", "bool",
          "complex64", "object", "U3"]


@st.composite
def odd_input(draw):
    batch = draw(st.integers(0, 4))
    steps = draw(st.sampled_from([1, 3, 10, 0, 11]))
    feats = draw(st.sampled_from([4, 4, 4, 3, 5]))
    values = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(values).integers(-3, 4, (batch, steps, feats)).astype(np.float32)
    dtype = draw(st.sampled_from(DTYPES))
    layout = draw(st.sampled_from(["C", "F", "strided", "reversed", "list", "2d", "4d"]))
    return x, dtype, layout


def _shape(x, dtype, layout):
    y = x.astype(dtype)
    if layout == "F":
        return np.asfortranarray(y)
    if layout == "strided":
        big = np.zeros(tuple(2 * d for d in y.shape), y.dtype)
        big[1::2, ::2, 1::2] = y
        return big[1::2, ::2, 1::2]
    if layout == "reversed":
        return y[::-1, ::-1][::-1, ::-1]
    if layout == "list":
        return y.tolist()
    if layout == "2d":
        return y.reshape(y.shape[0], y.shape[1] * y.shape[2])
    if layout == "4d":
        return y[..., None]
    return y


@FUZZ
@given(odd_input(), st.sampled_from(sorted(MODELS)))
def test_predict_on_odd_inputs_is_exact_or_a_clear_error(case, which):
    x, dtype, layout = case
    model = MODELS[which]
    given_x = _shape(x, dtype, layout)
    try:
        got = model.predict(given_x)
    except INPUT_ERRORS as e:
        assert str(e)  # names what was expected and given
        return
    reference = model.predict(np.ascontiguousarray(np.asarray(given_x, dtype=np.float32)))
    assert got.dtype == np.float32 and np.array_equal(got, reference)
    if dtype in ("float32", "float64", "int8", "int32", "int64", "float16") and layout not in (
            "2d", "4d"):
        assert np.array_equal(got, model.predict(x))


@FUZZ
@given(st.integers(0, 3), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9),
       st.sampled_from(["ok", "h", "c", "out", "x_dtype", "x_order", "threads"]))
def test_kernel_entry_checks_every_buffer(n_batch, n_steps, n_features, n_units, broken):
    rng = np.random.default_rng(n_units)
    n_blocks = (n_units + 7) // 8
    kernel = _kernels.RecurrentKernel(
        _kernels.CELLS["lstm"],
        rng.uniform(-1, 1, n_blocks * (n_features + n_units) * 4 * 8).astype(np.float32),
        np.zeros(n_blocks * 4 * 8, np.float32), n_features, n_units, c_activation("tanh", 3),
        c_activation("sigmoid", 3))
    x = rng.uniform(-1, 1, (n_batch, n_steps, n_features)).astype(np.float32)
    h = np.zeros((n_batch, n_units), np.float32)
    c = np.zeros((n_batch, n_units), np.float32)
    out = np.zeros((n_batch, n_units), np.float32)
    threads = 2
    if broken == "h":
        h = np.zeros((n_batch + 1, n_units), np.float32)
    elif broken == "c":
        c = np.zeros((n_batch, n_units + 1), np.float32)
    elif broken == "out":
        out = np.zeros((n_batch, n_steps, n_units), np.float32)
    elif broken == "x_dtype":
        x = x.astype(np.float64)
    elif broken == "x_order":
        x = np.concatenate([x, x], 2)[:, :, ::2]
        if x.flags.c_contiguous:  # empty, or one value per row: no layout to get wrong
            broken = "ok"
    elif broken == "threads":
        threads = 0
    if broken == "ok":
        x = np.ascontiguousarray(x)
        kernel.forward(x, h, c, out, False, False, threads)
        assert np.isfinite(out).all()
    else:
        with pytest.raises(INPUT_ERRORS):
            kernel.forward(x, h, c, out, False, False, threads)


def test_attribute_with_fewer_bytes_than_its_type_needs_is_refused(tmp_path):
    path = tmp_path / "w.h5"
    path.write_bytes(_apply(*STORAGE_OVERRUN))
    model = kf.load(kf.case("keras2", "stacked"), "h5")
    with pytest.raises(fastlstm.ModelFormatError,
                       match="'keras_version' stores 12 bytes for 1 values of 16 bytes"):
        model.load_weights(path)
