"""The C kernel against a NumPy reference cell, across its two code paths and thread counts."""
import numpy as np
import pytest

import fastlstm
from fastlstm import _kernels
from isa_params import isa_params
from fastlstm.activations import C_IDS, c_activation
from fastlstm.layers.base import LoadContext
from fastlstm.layers.lstm import LSTM

from reference_lstm import lstm_reference

PATHS = isa_params()


def _c_activation(name):
    """The C activation of a public name, or of hard_sigmoid_k2 / _k3 (Keras 2's and 3's)."""
    if name.startswith("hard_sigmoid_k"):
        return c_activation("hard_sigmoid", int(name[-1]))
    return c_activation(name, 3)


@pytest.fixture
def kernel_path():
    before = _kernels.get_isa()
    yield fastlstm.set_kernel_path
    _kernels.set_isa(before)


def make_layer(n_features, units, rng, keras_version=(3, 15), **config):
    cfg = {"name": "lstm", "units": units, **config}
    layer = LSTM(cfg, LoadContext(keras_version))
    layer.build([(None, None, n_features)])
    weights = [rng.uniform(-0.5, 0.5, s).astype(np.float32) for s in layer.weight_shapes()]
    layer.set_weights(weights)
    return layer, weights


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("units", [1, 7, 8, 9, 33])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_kernel_matches_reference(kernel_path, path, units, go_backwards):
    kernel_path(path)
    rng = np.random.default_rng(units)
    layer, (k, r, b) = make_layer(5, units, rng, return_sequences=True, return_state=True,
                                  go_backwards=go_backwards)
    x = rng.uniform(-1, 1, (3, 11, 5)).astype(np.float32)
    seq, h, c = layer.call([x])
    ref_seq, ref_h, ref_c = lstm_reference(x, k, r, b, go_backwards=go_backwards)
    np.testing.assert_allclose(seq, ref_seq, atol=2e-6, rtol=1e-5)
    np.testing.assert_allclose(h, ref_h, atol=2e-6, rtol=1e-5)
    np.testing.assert_allclose(c, ref_c, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("activation,recurrent_activation,version,ref_rec", [
    ("relu", "hard_sigmoid", (2, 15), "hard_sigmoid_k2"),
    ("relu", "hard_sigmoid", (3, 15), "hard_sigmoid_k3"),
    ("gelu", "softmax", (3, 15), "softmax"),
    ("softmax", "sigmoid", (3, 15), "sigmoid"),
    ("linear", "sigmoid", (2, 15), "sigmoid"),
])
def test_kernel_activations_match_reference(kernel_path, path, activation, recurrent_activation,
                                            version, ref_rec):
    kernel_path(path)
    rng = np.random.default_rng(7)
    layer, (k, r, b) = make_layer(4, 13, rng, keras_version=version, activation=activation,
                                  recurrent_activation=recurrent_activation)
    x = rng.uniform(-1, 1, (2, 9, 4)).astype(np.float32)
    out = layer.call([x])[0]
    _, ref_h, _ = lstm_reference(x, k, r, b, activation, ref_rec)
    np.testing.assert_allclose(out, ref_h, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("path", PATHS)
def test_thread_count_is_bitwise_irrelevant(kernel_path, path):
    kernel_path(path)
    rng = np.random.default_rng(11)
    layer, _ = make_layer(6, 19, rng, return_sequences=True)
    x = rng.uniform(-1, 1, (9, 13, 6)).astype(np.float32)
    one = layer.call([x], n_threads=1)[0]
    for n in (2, 3, 8):
        assert np.array_equal(layer.call([x], n_threads=n)[0], one)


def test_rows_are_independent():
    rng = np.random.default_rng(5)
    layer, _ = make_layer(3, 10, rng)
    x = rng.uniform(-1, 1, (4, 6, 3)).astype(np.float32)
    full = layer.call([x], n_threads=2)[0]
    for i in range(4):
        assert np.array_equal(layer.call([x[i:i + 1]])[0][0], full[i])


def test_activation_table_matches_c_header():
    assert len(C_IDS) == _kernels.ACTIVATION_COUNT


def test_build_info_reports_paths():
    info = fastlstm.build_info()
    assert info["isa"] in info["isas_supported"]
    assert info["kernel_path"] == {"avx2": "avx2+fma"}.get(info["isa"], info["isa"])
    assert info["avx2_compiled"] == ("avx2" in info["isas_compiled"])
    assert set(info["isas_supported"]) <= set(info["isas_compiled"]) <= set(_kernels.ISA_NAMES)
    assert info["isas_supported"][0] == "portable"
    assert isinstance(info["openmp"], bool)
    assert info["num_threads"] >= 1


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name,reference", [
    ("sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x))),
    ("tanh", np.tanh),
])
def test_sigmoid_tanh_accurate_over_the_whole_range(kernel_path, path, name, reference):
    """The vectorised sigmoid/tanh stay within 1e-6 absolute of the exact (float64) values, from
    denormals to overflow, and saturate exactly."""
    kernel_path(path)
    grid = np.concatenate([np.linspace(-120, 120, 200001), np.linspace(-1e-3, 1e-3, 2001),
                           [-np.inf, -1e30, -89.0, -88.0, 0.0, 88.0, 89.0, 1e30, np.inf]])
    x = grid.astype(np.float32).reshape(1, -1)
    got = x.copy()
    _kernels.activation_apply(_c_activation(name), got)
    with np.errstate(over="ignore"):
        exact = reference(x.astype(np.float64))
    assert np.abs(got - exact).max() <= 1e-6
    assert not np.isnan(got).any()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n_batch", [1, 2])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_unit_parallel_schedule(kernel_path, path, n_batch, go_backwards):
    """Few rows on several threads split the units, meet at a barrier every step and take the
    input projection chunk by chunk (150 steps = 3 chunks): same results as the reference and
    bitwise the same as one thread."""
    kernel_path(path)
    rng = np.random.default_rng(n_batch)
    layer, (k, r, b) = make_layer(6, 70, rng, return_sequences=True, return_state=True,
                                  go_backwards=go_backwards)
    x = rng.uniform(-1, 1, (n_batch, 150, 6)).astype(np.float32)
    one = layer.call([x], n_threads=1)
    two = layer.call([x], n_threads=2)
    for a, c in zip(one, two):
        assert np.array_equal(a, c)
    ref_seq, ref_h, ref_c = lstm_reference(x, k, r, b, go_backwards=go_backwards)
    np.testing.assert_allclose(two[0], ref_seq, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(two[2], ref_c, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("path", PATHS)
def test_default_cell_stays_accurate_over_long_strongly_recurrent_sequences(kernel_path, path):
    """The default cell (sigmoid, tanh) through 200 steps of large weights, where any bias in the
    gate arithmetic builds up in c: within a few float32 roundings of the float64 reference."""
    kernel_path(path)
    rng = np.random.default_rng(1)
    layer, _ = make_layer(16, 64, rng, return_sequences=True, return_state=True)
    k = (rng.standard_normal((16, 256)) * 0.75).astype(np.float32)
    r = (rng.standard_normal((64, 256)) * 0.375).astype(np.float32)
    b = (rng.standard_normal(256) * 3).astype(np.float32)
    layer.set_weights([k, r, b])
    x = (rng.standard_normal((32, 200, 16)) * 2).astype(np.float32)
    seq, _, c = layer.call([x])
    ref_seq, _, ref_c = lstm_reference(x, k, r, b)
    assert np.abs(ref_c).max() > 10  # the cell state really accumulates
    assert np.abs(seq - ref_seq).max() <= 5e-6
    assert np.abs(c - ref_c).max() <= 1e-6 * np.abs(ref_c).max() + 2e-6


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_nan_and_huge_inputs_stay_in_their_row(kernel_path, path, activation):
    """A NaN in one row's input makes that row NaN from that step on, as in Keras, and no other
    row changes; inputs of 1e30 saturate the gates instead of producing NaN."""
    kernel_path(path)
    rng = np.random.default_rng(5)
    layer, (k, r, b) = make_layer(3, 20, rng, return_sequences=True, activation=activation)
    x = rng.uniform(-1, 1, (5, 8, 3)).astype(np.float32)
    clean = layer.call([x])[0]
    x[1, 4, 0] = np.nan
    x[3] *= np.float32(1e30)
    got = layer.call([x])[0]
    assert np.isnan(got[1, 4:]).all() and np.array_equal(got[1, :4], clean[1, :4])
    for row in (0, 2, 4):
        assert np.array_equal(got[row], clean[row])
    if activation == "tanh":  # relu is unbounded: 1e30 inputs may overflow there, as in Keras
        assert np.isfinite(got[3]).all()
        with np.errstate(over="ignore"):
            ref = lstm_reference(x[3:4], k, r, b)[0]
        np.testing.assert_allclose(got[3:4], ref, atol=2e-6)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", ["relu", "relu6", "hard_sigmoid_k2", "hard_sigmoid_k3",
                                  "sigmoid", "tanh"])
def test_nan_stays_nan_through_element_wise_activations(kernel_path, path, name):
    """tf.nn.relu, relu6 and the hard sigmoids keep NaN (a max/min that drops it would turn a
    broken input into a plausible number)."""
    kernel_path(path)
    x = np.array([[np.nan, -1.0, 0.5, 2.0] * 4], np.float32)
    got = x.copy()
    _kernels.activation_apply(_c_activation(name), got)
    assert np.isnan(got[0, ::4]).all() and not np.isnan(got[0, 1::4]).any()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n_in", [1, 3, 4, 5, 64])
@pytest.mark.parametrize("n_out", [1, 7, 8, 9, 16, 17, 24, 31])
@pytest.mark.parametrize("with_bias", [False, True])
def test_dense_matches_float64_product(kernel_path, path, n_in, n_out, with_bias):
    """Full vectors of outputs and the masked tails: of 8 lanes (portable, AVX2) and of 16
    (AVX-512, whose last <= 8 outputs take 8-lane vectors)."""
    kernel_path(path)
    rng = np.random.default_rng(n_in * 100 + n_out)
    x = rng.uniform(-1, 1, (5, n_in)).astype(np.float32)
    kernel = rng.uniform(-1, 1, (n_in, n_out)).astype(np.float32)
    bias = rng.uniform(-1, 1, n_out).astype(np.float32) if with_bias else None
    got = _kernels.dense_forward(x, kernel, bias, c_activation("linear", 3))
    want = x.astype(np.float64) @ kernel.astype(np.float64)
    if with_bias:
        want += bias
    assert got.shape == (5, n_out)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * n_in)


def test_an_isa_that_fails_its_self_test_warns_and_falls_back(monkeypatch):
    """A miscompiled or misdetected path (simulated: its known answers are off by one) is not
    used: set_isa warns and takes the next instruction set down."""
    from fastlstm import _runtime

    supported = _kernels.supported_isas()
    if len(supported) < 2:
        pytest.skip(f"needs an instruction set besides portable; this machine runs {supported}")
    top, before = supported[-1], _kernels.get_isa()
    real = _runtime._known_answers
    monkeypatch.setattr(_runtime, "_tested", {"portable": True})
    monkeypatch.setattr(_runtime, "_known_answers",
                        lambda: [a + (_kernels.get_isa() == top) for a in real()])
    try:
        with pytest.warns(RuntimeWarning, match=f"the {top} kernels disagree with the portable"):
            fastlstm.set_isa(top)
        assert _kernels.get_isa() == supported[-2]
    finally:
        _kernels.set_isa(before)


@pytest.mark.parametrize("activation", ["linear", "tanh", "sigmoid", "relu", "elu"])
def test_dense_gives_the_same_bits_on_every_simd_isa(kernel_path, activation):
    """The Dense body's sums in the same order on 8 and 16 lanes, and its activation through
    the same vector math: AVX2 and AVX-512 agree to the bit on every output count."""
    simd = [p for p in _kernels.ISA_NAMES if p != "portable" and p in _kernels.supported_isas()]
    if len(simd) < 2:
        pytest.skip(f"needs two SIMD instruction sets; this machine runs {simd}")
    rng = np.random.default_rng(3)
    for n_out in (1, 5, 8, 9, 15, 16, 17, 23, 24, 40):
        x = rng.uniform(-2, 2, (7, 37)).astype(np.float32)
        kernel = rng.uniform(-1, 1, (37, n_out)).astype(np.float32)
        bias = rng.uniform(-1, 1, n_out).astype(np.float32)
        outs = []
        for path in simd:
            kernel_path(path)
            outs.append(_kernels.dense_forward(x, kernel, bias, c_activation(activation, 3)))
        for out in outs[1:]:
            assert np.array_equal(out, outs[0]), n_out


# A single row walks its unit blocks backward on every other step, and on every other one-step
# call of a thread on a layer (src/rnn_cells.h, src/rnn.c): the walk must change no unit's
# arithmetic. 55 units are 7 blocks: on AVX-512 groups of 4, 2 and 1 blocks, elsewhere 3 pairs
# and a single block, taken in both orders. A sequence in one call, the same steps one call
# each, the row inside a batch (which never walks backward) and on two threads: the same bits.
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
def test_the_walk_of_a_rows_blocks_changes_no_bits(kernel_path, path, cell):
    from small_models import chain_model

    kernel_path(path)
    _kernels.set_isa(path)  # this path even if it failed its self-test: the bits tell here
    n_features, n_steps = 5, 13
    units = 55 if cell != "SimpleRNN" else 4 * 55  # a SimpleRNN block is 32 units
    x = np.random.default_rng(3).uniform(-1, 1, (5, n_steps, n_features)).astype(np.float32)
    whole = chain_model((1, None, n_features), units, None, return_sequences=True, cell=cell,
                        seed=4)
    seq = whole.predict(x[2:3])
    stream = chain_model((1, 1, n_features), units, None, stateful=True, return_sequences=True,
                         cell=cell, seed=4)
    steps = np.concatenate([stream.predict(x[2:3, t:t + 1]) for t in range(n_steps)], axis=1)
    batch = chain_model((None, None, n_features), units, None, return_sequences=True,
                        cell=cell, seed=4)
    rows = batch.predict(x)
    before = fastlstm.get_num_threads()
    fastlstm.set_num_threads(2)
    try:
        two = whole.predict(x[2:3])
    finally:
        fastlstm.set_num_threads(before)
    assert np.array_equal(steps, seq)
    assert np.array_equal(rows[2:3], seq)
    assert np.array_equal(two, seq)
