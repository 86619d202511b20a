"""The GRU and SimpleRNN cells and masked steps in the C driver: the two code paths agree, the
thread count and its schedule (rows or unit blocks) never change a bit, and a masked step
leaves the state alone. Their values against Keras are in the fixtures (test_formats.py)."""
import numpy as np
import pytest

import fastlstm
from fastlstm import _kernels
from isa_params import isa_params
from fastlstm.layers.base import LoadContext
from fastlstm.layers.gru import GRU
from fastlstm.layers.lstm import LSTM
from fastlstm.layers.simple_rnn import SimpleRNN

PATHS = isa_params()
CELLS = [
    (GRU, {"reset_after": True}),
    (GRU, {"reset_after": False}),
    (SimpleRNN, {}),
    (LSTM, {}),
]
CELL_IDS = ["gru", "gru_reset_before", "simple_rnn", "lstm"]


@pytest.fixture
def kernel_path():
    before = _kernels.get_isa()
    yield fastlstm.set_kernel_path
    _kernels.set_isa(before)


def make_layer(cls, n_features, units, rng, scale=0.5, **config):
    layer = cls({"name": "rnn", "units": units, **config}, LoadContext((3, 15)))
    layer.build([(None, None, n_features)])
    layer.set_weights([rng.uniform(-scale, scale, s).astype(np.float32)
                       for s in layer.weight_shapes()])
    return layer


@pytest.mark.parametrize("cls,config", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n_batch,units", [(1, 70), (2, 40), (7, 19)])
def test_thread_count_and_schedule_are_bitwise_irrelevant(kernel_path, cls, config, path,
                                                          n_batch, units):
    """Batch 1-2 on 2 threads splits the units (barrier per step, input projection by chunks of
    64 steps: 150 steps = 3 chunks); batch 7 splits the rows."""
    kernel_path(path)
    rng = np.random.default_rng(units)
    layer = make_layer(cls, 6, units, rng, return_sequences=True, return_state=True, **config)
    x = rng.uniform(-1, 1, (n_batch, 150, 6)).astype(np.float32)
    one = layer.call([x], n_threads=1)
    for n in (2, 3):
        for a, b in zip(one, layer.call([x], n_threads=n)):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("cls,config", CELLS, ids=CELL_IDS)
def test_paths_agree_on_long_sequences(kernel_path, cls, config):
    """Within float32 roundings over 200 steps (weights small enough that the recurrence does
    not amplify them: a SimpleRNN at U(-0.5, 0.5) doubles any difference every few steps)."""
    rng = np.random.default_rng(2)
    layer = make_layer(cls, 9, 37, rng, scale=0.25, return_sequences=True, go_backwards=True,
                       **config)
    x = rng.uniform(-1, 1, (5, 200, 9)).astype(np.float32)
    results = {}
    for path in _kernels.supported_isas():
        kernel_path(path)
        results[path] = layer.call([x])[0]
    for path in _kernels.supported_isas()[1:]:
        np.testing.assert_allclose(results[path], results["portable"], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cls,config", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("path", PATHS)
def test_masked_steps_keep_the_state(kernel_path, cls, config, path):
    """A row whose steps are masked ends in the state of the same row run on its unmasked steps
    alone; outputs at masked steps repeat the previous output (zeros before the first) or are
    zeros with zero_output_for_mask; the thread count changes nothing."""
    kernel_path(path)
    rng = np.random.default_rng(4)
    layer = make_layer(cls, 3, 12, rng, return_sequences=True, return_state=True, **config)
    x = rng.uniform(-1, 1, (4, 9, 3)).astype(np.float32)
    mask = np.ones((4, 9), bool)
    mask[0, 6:] = False       # trailing padding
    mask[1, :3] = False       # leading
    mask[2, [2, 5]] = False   # inside
    mask[3] = False           # everything
    got = layer.call([x], mask=mask)
    for a, b in zip(got, layer.call([x], mask=mask, n_threads=2)):
        assert np.array_equal(a, b)
    seq = got[0]
    for row in range(3):
        alone = layer.call([x[row:row + 1, mask[row]]])
        for state, ref in zip(got[1:], alone[1:]):
            np.testing.assert_allclose(state[row], ref[0], atol=1e-6)
        np.testing.assert_allclose(seq[row, mask[row]], alone[0][0], atol=1e-6)
    assert np.array_equal(seq[1, :3], np.zeros((3, 12), np.float32))
    assert np.array_equal(seq[2, 2], seq[2, 1]) and np.array_equal(seq[2, 5], seq[2, 4])
    assert np.array_equal(seq[0, 6:], np.repeat(seq[0, 5:6], 3, axis=0))
    assert not seq[3].any() and not got[1][3].any()
    layer.zero_output_for_mask = True
    zeroed = layer.call([x], mask=mask)[0]
    assert not zeroed[~mask].any() and np.array_equal(zeroed[mask], seq[mask])


def test_mask_shape_is_checked():
    layer = make_layer(GRU, 3, 4, np.random.default_rng(0))
    x = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ValueError, match=r"mask has shape \(2, 4\), expected \(2, 5\)"):
        layer.call([x], mask=np.ones((2, 4), bool))


@pytest.mark.parametrize("cls,config", CELLS[:3], ids=CELL_IDS[:3])
def test_generation_in_c_matches_a_predict_loop(cls, config):
    """Stateful GRU/SimpleRNN stacks generate in the C feedback loop, on a persistent team
    when the layer is large enough: the same bits as one-step predict calls."""
    import json

    layer_config = {"class_name": cls.keras_class,
                    "config": {"name": "rnn", "units": 160, "stateful": True, **config}}
    model_json = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [1, 1, 4]}},
        layer_config,
        {"class_name": "Dense", "config": {"name": "d", "units": 4, "activation": "tanh"}}]}})
    rng = np.random.default_rng(9)
    models = []
    for _ in range(2):
        m = fastlstm.model_from_json(model_json, keras_version="3.15")
        models.append(m)
    weights = None
    for m in models:
        leaves = [l for l in m.sublayers()]
        if weights is None:
            weights = [[rng.uniform(-0.3, 0.3, s).astype(np.float32) for s in l.weight_shapes()]
                       for l in leaves]
        for l, w in zip(leaves, weights):
            l.set_weights(w)
    x = rng.uniform(-1, 1, (1, 1, 4)).astype(np.float32)
    fastlstm.set_num_threads(2)
    try:
        generated = models[0].generate(x, 30)
        y = x
        for k in range(30):
            y = models[1].predict(y).reshape(1, 1, 4)
            assert np.array_equal(generated[:, k], y[:, 0]), k
    finally:
        fastlstm.set_num_threads(fastlstm.build_info()["num_threads"])


SIMD = [p for p in _kernels.ISA_NAMES if p != "portable"]


@pytest.mark.parametrize("cls,config", CELLS, ids=CELL_IDS)
def test_every_simd_isa_gives_the_same_bits_on_random_shapes(kernel_path, cls, config):
    """The SIMD instantiations of one kernel body (AVX2's 8 lanes, AVX-512's 16) run each
    unit's same chain of FMAs and the same update, so they agree to the bit, on any batch
    (register blocks and their rests), any units (partial blocks) and any thread count."""
    supported = [p for p in SIMD if p in _kernels.supported_isas()]
    if len(supported) < 2:
        pytest.skip(f"needs two SIMD instruction sets; this machine runs {supported} of {SIMD}")
    rng = np.random.default_rng(7)
    before = fastlstm.get_num_threads()
    try:
        for _ in range(12):
            n_batch, n_units = int(rng.integers(1, 30)), int(rng.integers(1, 140))
            n_features, n_steps = int(rng.integers(1, 20)), int(rng.integers(1, 12))
            layer = make_layer(cls, n_features, n_units, rng, return_sequences=True, **config)
            x = rng.uniform(-1, 1, (n_batch, n_steps, n_features)).astype(np.float32)
            outs = []
            for path in supported:
                kernel_path(path)
                for n in (1, 2):
                    fastlstm.set_num_threads(n)
                    outs.append(layer.call([x], n_threads=n)[0])
            for out in outs[1:]:
                assert np.array_equal(out, outs[0]), (n_batch, n_units, n_features, n_steps)
    finally:
        fastlstm.set_num_threads(before)

